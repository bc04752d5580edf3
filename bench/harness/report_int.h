/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_int.h — inside `moebench report`: the data computed once (table
 * grids in report_table.c, fit rows in report_fit.c, claims and provenance
 * in report.c) and the writers that render it: Markdown, CSV, LaTeX and
 * JSON beside the data, plots in report_plot.c, HTML in report_html.c.
 * Every number and every cell's text comes from the former; the HTML
 * writer only lays it out, so the page and the Markdown cannot disagree.
 * `moebench plan` (report_plan.c) reads results the same way. */
#ifndef MB_REPORT_INT_H
#define MB_REPORT_INT_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "matrix.h"
#include "moe/stats.h"
#include "results.h"

/* Cells sharing the values of some keys. */
typedef struct {
  char **val;   /* one value per key */
  size_t *rank; /* first-appearance rank of each value among the cells */
  size_t *cell;
  size_t n;
} group;

/* Columns a paired table adds after its stats (ids past MB_S_*). */
enum { X_MDE = MB_S_COUNT, X_P, X_PHOLM, X_HOLM, X_NFOR, X_END };

/* A table's statistics: row groups x column groups. */
typedef struct {
  group *rows, *cols;
  size_t nr, nc;
  moe_stats_summary *sum; /* (nr, nc) */
  int stats[X_END];       /* the table's stats, then (power) sd, X_* */
  size_t nstats;
  int power;                     /* a paired table without reach: the power columns */
  double *mde, *p, *padj, *nfor; /* (nr, nc) with power, else NULL */
  size_t nfamily;                /* comparisons in the Holm family */
} grid;

/* One row of a rate fit. */
typedef struct {
  char *label; /* "mode=plain" or "all" */
  char **val;  /* the by-values, one per key of the fit */
  const mb_ref *ref;
  size_t npoints, ncells;
  int ok, ok_nlogn;
  char why[256];
  moe_stats_fit f, fn;     /* on log x, on log(x / log x) */
  double lo, hi, lon, hin; /* bootstrap CIs of the slopes (NaN if none) */
  double xmin, xmax;
} fitrow;

/* A claim resolved from its comparison's 95% paired interval. */
typedef struct {
  const mb_claim *q;
  const char *verdict; /* "confirmed", "refuted", "unresolved" */
  size_t n;            /* pairs */
  double mean, lo, hi; /* NaN when there are fewer than 2 pairs */
} mb_claim_res;

/* A provenance row: a field, one of its values over the ok cells, and how
 * many cells have it. */
typedef struct {
  char field[48];
  const char *value;
  size_t cells;
} mb_prov_row;

/* Shared text (Markdown, LaTeX, the brief and HTML use them). */
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

/* ---- inside report.c, report_table.c, report_fit.c, report_plot.c and
 * report_plan.c ---- */

/* The output formats (--format). */
enum { F_MD = 1, F_CSV = 2, F_TEX = 4, F_JSON = 8, F_HTML = 16 };

/* A matrix's results as a report reads them. */
typedef struct {
  const mb_matrix *m;
  const char *dir; /* the matrix's results directory */
  char repdir[4200];
  mb_rfile *rf; /* (cells) */
  int *status;  /* (cells): 0 missing, 1 ok, 2 failed, 3 corrupt, 4 diverged */
  size_t nok, nfailed, nmissing, ncorrupt, ndiverged;
  int bad; /* an output could not be written */
} store;

static inline void *xcalloc(size_t n, size_t s)
{
  void *p = calloc(n ? n : 1, s);
  if (!p)
    mb_oom(n * s);
  return p;
}

static inline char *xdup(const char *s)
{
  char *d = strdup(s ? s : "");
  if (!d)
    mb_oom(0);
  return d;
}

/* The cells of s, their groups and values (report.c). Groups of cells
 * share the values of keys, ordered by the first appearance (in expansion
 * order) of each key's value, key by key. */
group *mb_rep_group_cells(const store *s, char **keys, size_t nk, size_t *ng);
void mb_rep_groups_free(group *g, size_t n);
/* Metric values of the ok cells among cells[0..n) (and in mask if given)
 * into out; how many. */
size_t mb_rep_values(const store *s, const size_t *cells, size_t n, const char *metric,
                     const int *mask, double *out);
/* The (index, value) pairs of family fam in a result, sorted by index;
 * how many (finite values only). *out is malloc'd (free it). */
size_t mb_rep_family_points(const mb_rfile *rf, const char *fam, double **out);
/* The baseline of cell c for a paired table (the cell with the same rep
 * and parameters except the row key, which equals t->paired), or -1. */
long mb_rep_baseline_cell(const store *s, const mb_table *t, size_t c);
/* A table's value for cell c (the metric, or paired: minus the
 * baseline's, or reach: the index ratio); 1 if the cell has one. */
int mb_rep_table_value(const store *s, const mb_table *t, size_t c, double *v);
/* Write b to s->repdir/file atomically, saying so on stderr (s->bad on
 * failure). */
void mb_rep_write_out(store *s, const char *file, const mb_buf *b);
/* Number formatting and escaping (report.c). */
void mb_rep_fmt_num(mb_buf *b, double v, int exact);
void mb_rep_tex_escape(mb_buf *b, const char *s);
void mb_rep_md_escape(mb_buf *b, const char *s);
void mb_rep_csv_field(mb_buf *b, const char *s);
void mb_rep_json_num(mb_buf *b, double v);
/* Loading the results (report.c); the sequential record of a directory. */
void mb_rep_store_load(store *s, const mb_matrix *m, const char *dir, const char *who);
void mb_rep_store_free(store *s);
mb_json *mb_rep_seq_record(const char *dir, long *n, const char *who);

/* Tables and brief.txt (report_table.c). */
void mb_rep_grid_build(const store *s, const mb_table *t, grid *g);
void mb_rep_holm_families(const mb_matrix *m, grid *gs);
void mb_rep_grid_free(grid *g);
void mb_rep_table_md(mb_buf *b, const mb_table *t, const grid *g);
void mb_rep_table_tex(mb_buf *b, const mb_table *t, const grid *g);
void mb_rep_table_csv(mb_buf *b, const mb_table *t, const grid *g);
void mb_rep_table_json(mb_buf *b, const mb_table *t, const grid *g);
#define BRIEF_COLS 100 /* characters per line at most */
#define BRIEF_ROWS 16  /* body rows per table at most */
int mb_rep_in_brief(const mb_matrix *m, const char *name, int is_fit);
void mb_rep_text_table(mb_buf *b, char **cell, size_t nr, size_t nc, size_t nfirst_left,
                       const char *rest);
void mb_rep_brief_table(mb_buf *b, const store *s, const mb_table *t, const grid *g);

/* Rate fits (report_fit.c); dbl_cmp orders doubles for qsort. */
int mb_rep_dbl_cmp(const void *a, const void *b);
fitrow *mb_rep_fit_compute(const store *s, const mb_fit *f, size_t *nrows);
void mb_rep_fit_md(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n, int tex);
void mb_rep_brief_fit(mb_buf *b, const store *s, const mb_fit *f, const fitrow *r, size_t n);
void mb_rep_fit_csv(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n);
void mb_rep_fit_json(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n);

/* Plots (report_plot.c): gnuplot, where it is (NULL: not found). */
const char *mb_rep_find_gnuplot(char *buf, size_t len);
void mb_rep_plot_one(store *s, const mb_plot *p, const char *gnuplot, int *rendered);

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
void mb_html_begin(mb_html *h, const mb_matrix *m, size_t nok, size_t ndiverged, size_t nfailed,
                   size_t nmissing);
void mb_html_claims(mb_html *h, const mb_claim_res *c, size_t n);
void mb_html_seq(mb_html *h, const mb_json *seq);
void mb_html_table(mb_html *h, const mb_table *t, const grid *g, const char *pooled);
void mb_html_fit(mb_html *h, const mb_fit *f, const fitrow *r, size_t n, const char *pooled);
/* A figure from the SVG file at path (NULL or unreadable: a note that it
 * was not rendered, naming why). */
void mb_html_figure(mb_html *h, const mb_plot *p, const char *svgpath, const char *why,
                    const char *pooled);
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
