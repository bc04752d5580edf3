/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_int.h — inside `moebench report`: the data report.c computes once
 * (table grids, fit rows, claims, provenance) and the writers that render
 * it: Markdown, CSV, LaTeX and JSON in report.c, HTML in report_html.c.
 * Every number and every cell's text comes from report.c; the HTML writer
 * only lays it out, so the page and the Markdown cannot disagree. */
#ifndef MB_REPORT_INT_H
#define MB_REPORT_INT_H

#include <stddef.h>

#include "json.h"
#include "matrix.h"
#include "moe/stats.h"
#include "results.h"

/* Cells sharing the values of some keys. */
typedef struct {
  char **val;     /* one value per key */
  size_t *rank;   /* first-appearance rank of each value among the cells */
  size_t *cell;
  size_t n;
} group;

/* Columns a paired table adds after its stats (ids past MB_S_*). */
enum { X_MDE = MB_S_COUNT, X_P, X_PHOLM, X_HOLM, X_NFOR, X_END };

/* A table's statistics: row groups x column groups. */
typedef struct {
  group *rows, *cols;
  size_t nr, nc;
  moe_stats_summary *sum;   /* (nr, nc) */
  int stats[X_END];         /* the table's stats, then (power) sd, X_* */
  size_t nstats;
  int power;                /* a paired table without reach: the power columns */
  double *mde, *p, *padj, *nfor;   /* (nr, nc) with power, else NULL */
  size_t nfamily;           /* comparisons in the Holm family */
} grid;

/* One row of a rate fit. */
typedef struct {
  char *label;              /* "mode=plain" or "all" */
  char **val;               /* the by-values, one per key of the fit */
  const mb_ref *ref;
  size_t npoints, ncells;
  int ok, ok_nlogn;
  char why[256];
  moe_stats_fit f, fn;      /* on log x, on log(x / log x) */
  double lo, hi, lon, hin;  /* bootstrap CIs of the slopes (NaN if none) */
  double xmin, xmax;
} fitrow;

/* A claim resolved from its comparison's 95% paired interval. */
typedef struct {
  const mb_claim *q;
  const char *verdict;      /* "confirmed", "refuted", "unresolved" */
  size_t n;                 /* pairs */
  double mean, lo, hi;      /* NaN when there are fewer than 2 pairs */
} mb_claim_res;

/* A provenance row: a field, one of its values over the ok cells, and how
 * many cells have it. */
typedef struct {
  char field[48];
  const char *value;
  size_t cells;
} mb_prov_row;

/* Shared text of report.c (Markdown, LaTeX, the brief and HTML use them). */
void mb_rep_label(mb_buf *b, char **keys, char **vals, size_t nk, const char *none);
void mb_rep_stat_name(mb_buf *b, const mb_table *t, int stat);
void mb_rep_cell_text(mb_buf *b, const grid *g, size_t i, int stat);
void mb_rep_rate_text(mb_buf *b, int ok, double slope, double lo, double hi);
const char *mb_rep_ref_get(const mb_ref *r, const char *key);
/* The sentence after "Table NAME: " / "Fit NAME: " and the paired
 * tables' column legend (empty for other tables). */
void mb_rep_table_caption(mb_buf *b, const mb_table *t);
void mb_rep_table_legend(mb_buf *b, const mb_table *t, const grid *g);
void mb_rep_fit_caption(mb_buf *b, const mb_fit *f);
/* "< 0", "> 0", "!= 0" by MB_EXPECT_*. */
extern const char *const mb_rep_expect_text[3];
/* The fit table's header and row i's cells (6 of them). */
extern const char *const mb_rep_fit_head[6];
void mb_rep_fit_cells(mb_buf c[6], const mb_fit *f, const fitrow *r);

/* ---- the HTML writer (report_html.c) ---- */

/* One matrix's part of a page, built section by section while report.c
 * writes its other outputs, then joined by mb_html_finish. */
typedef struct {
  const mb_matrix *m;
  mb_buf head, claims, seq, tables, fits, figs, cells, prov;
  size_t nfig;
} mb_html;

/* HTML-escape s (& < > " ') into b: every string from a matrix or a
 * result goes through it. */
void mb_html_esc(mb_buf *b, const char *s);
void mb_html_begin(mb_html *h, const mb_matrix *m, size_t nok, size_t ndiverged, size_t nfailed, size_t nmissing);
void mb_html_claims(mb_html *h, const mb_claim_res *c, size_t n);
void mb_html_seq(mb_html *h, const mb_json *seq);
void mb_html_table(mb_html *h, const mb_table *t, const grid *g, const char *pooled);
void mb_html_fit(mb_html *h, const mb_fit *f, const fitrow *r, size_t n, const char *pooled);
/* A figure from the SVG file at path (NULL or unreadable: a note that it
 * was not rendered, naming why). */
void mb_html_figure(mb_html *h, const mb_plot *p, const char *svgpath, const char *why);
/* Cells not ok: status per cell (0 missing, 2 failed, 3 corrupt, 4 diverged). */
void mb_html_cells(mb_html *h, const int *status, const mb_rfile *rf);
void mb_html_provenance(mb_html *h, const mb_prov_row *r, size_t n);
/* Join the sections (with the terminal brief as the summary box) into
 * body, as a <section> whose headings start at h1; frees h. */
void mb_html_finish(mb_html *h, const char *brief, mb_buf *body);
/* A whole page: one matrix's body (n = 0), or the bodies of the matrices
 * names[0..n) under title with a table of contents, their headings one
 * level down. */
void mb_html_page(mb_buf *out, const char *title, const char *body, char *const *names, size_t n);

#endif
