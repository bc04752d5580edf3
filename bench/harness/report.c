/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report.c — `moebench report`: tables, rate fits and plots from the
 * result files of a matrix.
 *
 * The matrix is read from the copy `run` stored beside the results (or
 * from --matrix), expanded again, and each expanded cell's result file is
 * looked up by id, so a report only ever mixes cells of the matrix as it is
 * now; missing, failed and corrupt cells are counted and left out. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "matrix.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/stats.h"
#include "moe/version.h"
#include "results.h"
#include "verbs.h"

enum { F_MD = 1, F_CSV = 2, F_TEX = 4, F_JSON = 8 };

typedef struct {
  const mb_matrix *m;
  const char *dir;         /* the matrix's results directory */
  char repdir[4200];
  mb_rfile *rf;            /* (cells) */
  int *status;             /* (cells): 0 missing, 1 ok, 2 failed, 3 corrupt */
  size_t nok, nfailed, nmissing, ncorrupt;
  int bad;                 /* an output could not be written */
} store;

typedef struct {
  char **val;     /* one value per key */
  size_t *rank;   /* first-appearance rank of each value among the cells */
  size_t *cell;
  size_t n;
} group;

static void *xcalloc(size_t n, size_t s)
{
  void *p = calloc(n ? n : 1, s);
  if (!p) mb_oom(n * s);
  return p;
}

/* Groups of cells sharing the values of keys, ordered by the first
 * appearance (in expansion order) of each key's value, key by key. */
static size_t nkeys_cmp;
static int group_cmp(const void *a, const void *b)
{
  const group *x = a, *y = b;
  for (size_t k = 0; k < nkeys_cmp; k++)
    if (x->rank[k] != y->rank[k]) return x->rank[k] < y->rank[k] ? -1 : 1;
  return 0;
}

static group *group_cells(const store *s, char **keys, size_t nk, size_t *ng)
{
  const mb_matrix *m = s->m;
  group *g = NULL;
  size_t n = 0;
  size_t *rank = xcalloc(nk, sizeof *rank);
  for (size_t c = 0; c < m->ncells; c++) {
    size_t j;
    for (j = 0; j < n; j++) {
      size_t k;
      for (k = 0; k < nk; k++)
        if (strcmp(g[j].val[k], mb_xcell_get(&m->cells[c], keys[k]))) break;
      if (k == nk) break;
    }
    if (j == n) {
      g = realloc(g, (n + 1) * sizeof *g);
      if (!g) mb_oom(0);
      g[n].val = xcalloc(nk, sizeof *g[n].val);
      g[n].rank = xcalloc(nk, sizeof *g[n].rank);
      g[n].cell = xcalloc(m->ncells, sizeof *g[n].cell);
      g[n].n = 0;
      for (size_t k = 0; k < nk; k++) {
        g[n].val[k] = (char *)mb_xcell_get(&m->cells[c], keys[k]);
        /* rank = first cell index holding this value of key k */
        size_t r = 0;
        while (strcmp(mb_xcell_get(&m->cells[r], keys[k]), g[n].val[k])) r++;
        g[n].rank[k] = r;
      }
      n++;
    }
    g[j].cell[g[j].n++] = c;
  }
  free(rank);
  nkeys_cmp = nk;
  qsort(g, n, sizeof *g, group_cmp);
  *ng = n;
  return g;
}

static void groups_free(group *g, size_t n)
{
  for (size_t i = 0; i < n; i++) { free(g[i].val); free(g[i].rank); free(g[i].cell); }
  free(g);
}

static void label(mb_buf *b, char **keys, char **vals, size_t nk, const char *none)
{
  if (!nk) { mb_buf_puts(b, none); return; }
  for (size_t k = 0; k < nk; k++) mb_buf_printf(b, "%s%s=%s", k ? ", " : "", keys[k], vals[k]);
}

/* Metric values of the ok cells among cells[0..n) (and in mask if given). */
static size_t values(const store *s, const size_t *cells, size_t n, const char *metric, const int *mask, double *out)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t c = cells[i];
    double v;
    if (mask && !mask[c]) continue;
    if (s->status[c] != 1 || !mb_rfile_metric(&s->rf[c], metric, &v) || !isfinite(v)) continue;
    out[k++] = v;
  }
  return k;
}

/* ---- metric families (NAME@X: a metric at index X, e.g. a training step
 * or a layer) and paired values ---- */

static int is_family(const char *metric) { return metric[0] && metric[strlen(metric) - 1] == '@'; }

/* The (index, value) pairs of family fam in a result, sorted by index;
 * returns how many (finite values only). *out is malloc'd (free it). */
static size_t family_points(const mb_rfile *rf, const char *fam, double **out)
{
  size_t L = strlen(fam), n = 0;
  double *p = xcalloc(2 * rf->nm + 2, sizeof *p);
  for (size_t i = 0; i < rf->nm; i++) {
    char *end;
    if (strncmp(rf->mname[i], fam, L) || !rf->mname[i][L]) continue;
    double x = strtod(rf->mname[i] + L, &end);
    if (*end || !isfinite(x) || !isfinite(rf->mval[i])) continue;
    size_t k = n++;
    while (k > 0 && p[2 * (k - 1)] > x) { p[2 * k] = p[2 * (k - 1)]; p[2 * k + 1] = p[2 * (k - 1) + 1]; k--; }
    p[2 * k] = x;
    p[2 * k + 1] = rf->mval[i];
  }
  *out = p;
  return n;
}

/* A metric's value in an ok cell; a family gives its value at the last index. */
static int cell_metric(const store *s, size_t c, const char *metric, double *v)
{
  if (s->status[c] != 1) return 0;
  if (!is_family(metric)) return mb_rfile_metric(&s->rf[c], metric, v) && isfinite(*v);
  double *p;
  size_t n = family_points(&s->rf[c], metric, &p);
  if (n) *v = p[2 * (n - 1) + 1];
  free(p);
  return n > 0;
}

/* The baseline of cell c for a paired table: the cell with the same rep and
 * parameters except the row key, which equals t->paired. */
static long baseline_cell(const store *s, const mb_table *t, size_t c)
{
  const mb_matrix *m = s->m;
  for (size_t b = 0; b < m->ncells; b++) {
    if (m->cells[b].rep != m->cells[c].rep || strcmp(mb_xcell_get(&m->cells[b], t->rows[0]), t->paired)) continue;
    int same = 1;
    for (const mb_param *p = m->task->params; p->name && same; p++)
      if (strcmp(p->name, t->rows[0]) && strcmp(mb_cell_str(m->cells[b].cell, p->name), mb_cell_str(m->cells[c].cell, p->name)))
        same = 0;
    if (same) return (long)b;
  }
  return -1;
}

/* A table's value for cell c: the metric, or (paired) the metric minus the
 * baseline's, or (reach) the first index at which the cell's family is at
 * most the baseline's last value, over the cell's last index. */
static int table_value(const store *s, const mb_table *t, size_t c, double *v)
{
  if (!t->paired) return cell_metric(s, c, t->metric, v);
  long b = baseline_cell(s, t, c);
  double vb;
  if (b < 0 || s->status[c] != 1 || !cell_metric(s, (size_t)b, t->metric, &vb)) return 0;
  if (!t->reach) {
    double vc;
    if (!cell_metric(s, c, t->metric, &vc)) return 0;
    *v = vc - vb;
    return 1;
  }
  double *p;
  size_t n = family_points(&s->rf[c], t->metric, &p);
  int ok = 0;
  for (size_t i = 0; i < n && !ok; i++)
    if (p[2 * i + 1] <= vb && p[2 * (n - 1)] != 0) { *v = p[2 * i] / p[2 * (n - 1)]; ok = 1; }
  free(p);
  return ok;
}

static void write_out(store *s, const char *file, const mb_buf *b)
{
  char path[4600], err[5000];
  snprintf(path, sizeof path, "%s/%s", s->repdir, file);
  if (b->oom || mb_write_atomic(path, b->s ? b->s : "", b->n, err, sizeof err)) {
    fprintf(stderr, "moebench report: %s\n", b->oom ? "out of memory" : err);
    s->bad = 1;
    return;
  }
  fprintf(stderr, "moebench report: wrote %s\n", path);
}

/* Parameters (other than rep) whose values differ between cells that share
 * the grouping keys a..b: such cells are pooled into one statistic, which
 * is usually a mistake in the matrix (a table or fit missing a key).
 * Appends "k1, k2" to out; returns how many. */
static size_t pooled(const store *s, char **a, size_t na, char **b, size_t nb, mb_buf *out)
{
  const mb_matrix *m = s->m;
  char **keys = xcalloc(na + nb, sizeof *keys);
  for (size_t i = 0; i < na; i++) keys[i] = a[i];
  for (size_t i = 0; i < nb; i++) keys[na + i] = b[i];
  size_t ng, count = 0;
  group *g = group_cells(s, keys, na + nb, &ng);
  for (const mb_param *p = m->task->params; p->name; p++) {
    int grouped = 0;
    for (size_t k = 0; k < na + nb; k++) if (!strcmp(keys[k], p->name)) grouped = 1;
    if (grouped) continue;
    int varies = 0;
    for (size_t i = 0; i < ng && !varies; i++)
      for (size_t c = 1; c < g[i].n && !varies; c++)
        if (strcmp(mb_cell_str(m->cells[g[i].cell[c]].cell, p->name), mb_cell_str(m->cells[g[i].cell[0]].cell, p->name)))
          varies = 1;
    if (varies) mb_buf_printf(out, "%s%s", count++ ? ", " : "", p->name);
  }
  groups_free(g, ng);
  free(keys);
  return count;
}

/* ---- number formatting ---- */

static void fmt_num(mb_buf *b, double v, int exact)
{
  if (isnan(v)) mb_buf_puts(b, "n/a");
  else if (exact) mb_buf_printf(b, "%.17g", v);
  else mb_buf_printf(b, "%.4g", v);
}

static void tex_escape(mb_buf *b, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '_': case '%': case '&': case '#': case '$': case '{': case '}':
      mb_buf_printf(b, "\\%c", *s); break;
    case '\\': mb_buf_puts(b, "\\textbackslash{}"); break;
    case '~': mb_buf_puts(b, "\\textasciitilde{}"); break;
    case '^': mb_buf_puts(b, "\\textasciicircum{}"); break;
    default: mb_buf_add(b, s, 1);
    }
  }
}

static void md_escape(mb_buf *b, const char *s)
{
  for (; *s; s++) {
    if (*s == '|') mb_buf_puts(b, "\\|");
    else if (*s == '\n' || *s == '\r') mb_buf_puts(b, " ");
    else mb_buf_add(b, s, 1);
  }
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or newline. */
static void csv_field(mb_buf *b, const char *s)
{
  if (!strpbrk(s, ",\"\n\r")) { mb_buf_puts(b, s); return; }
  mb_buf_puts(b, "\"");
  for (; *s; s++) {
    if (*s == '"') mb_buf_puts(b, "\"\"");
    else mb_buf_add(b, s, 1);
  }
  mb_buf_puts(b, "\"");
}

/* A stat of a summary as text (md/tex) */
static void stat_text(mb_buf *b, const moe_stats_summary *sm, int stat)
{
  if (sm->n == 0) return;
  switch (stat) {
  case MB_S_MEAN: fmt_num(b, sm->mean, 0); break;
  case MB_S_SD: fmt_num(b, sm->sd, 0); break;
  case MB_S_SE: fmt_num(b, sm->se, 0); break;
  case MB_S_CI95:
    if (isnan(sm->ci95_lo)) mb_buf_puts(b, "n/a");
    else { mb_buf_puts(b, "["); fmt_num(b, sm->ci95_lo, 0); mb_buf_puts(b, ", "); fmt_num(b, sm->ci95_hi, 0); mb_buf_puts(b, "]"); }
    break;
  case MB_S_N: mb_buf_printf(b, "%zu", sm->n); break;
  case MB_S_MEDIAN: fmt_num(b, sm->median, 0); break;
  case MB_S_MIN: fmt_num(b, sm->min, 0); break;
  case MB_S_MAX: fmt_num(b, sm->max, 0); break;
  case MB_S_TRMEAN: fmt_num(b, sm->trmean, 0); break;
  }
}

static void json_num(mb_buf *b, double v)
{
  if (isnan(v)) mb_buf_puts(b, "null");
  else mb_buf_json_num(b, v);
}

/* ---- tables ---- */

typedef struct {
  group *rows, *cols;
  size_t nr, nc;
  moe_stats_summary *sum;   /* (nr, nc) */
} grid;

static void grid_build(const store *s, const mb_table *t, grid *g)
{
  const mb_matrix *m = s->m;
  g->rows = group_cells(s, t->rows, t->nrows, &g->nr);
  g->cols = group_cells(s, t->cols, t->ncols, &g->nc);
  g->sum = xcalloc(g->nr * g->nc, sizeof *g->sum);
  int *mask = xcalloc(m->ncells, sizeof *mask);
  double *v = xcalloc(m->ncells, sizeof *v);
  for (size_t j = 0; j < g->nc; j++) {
    memset(mask, 0, m->ncells * sizeof *mask);
    for (size_t i = 0; i < g->cols[j].n; i++) mask[g->cols[j].cell[i]] = 1;
    for (size_t r = 0; r < g->nr; r++) {
      size_t k = 0;
      for (size_t i = 0; i < g->rows[r].n; i++) {
        size_t c = g->rows[r].cell[i];
        if (mask[c] && table_value(s, t, c, &v[k])) k++;
      }
      moe_stats_summary *sm = &g->sum[r * g->nc + j];
      memset(sm, 0, sizeof *sm);
      if (k) moe_stats_summarize(v, k, sm);
    }
  }
  free(mask);
  free(v);
}

static void grid_free(grid *g)
{
  groups_free(g->rows, g->nr);
  groups_free(g->cols, g->nc);
  free(g->sum);
}

static void col_head(mb_buf *b, const mb_table *t, const grid *g, size_t j, int stat, int tex)
{
  mb_buf l;
  mb_buf_init(&l);
  if (t->ncols) { label(&l, t->cols, g->cols[j].val, t->ncols, ""); mb_buf_puts(&l, " "); }
  mb_buf_puts(&l, mb_stat_names[stat]);
  if (tex) tex_escape(b, l.s); else md_escape(b, l.s);
  mb_buf_free(&l);
}

static void table_md(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "|");
  for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, " "); md_escape(b, t->rows[k]); mb_buf_puts(b, " |"); }
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < t->nstats; q++) { mb_buf_puts(b, " "); col_head(b, t, g, j, t->stats[q], 0); mb_buf_puts(b, " |"); }
  mb_buf_puts(b, "\n|");
  for (size_t k = 0; k < t->nrows; k++) mb_buf_puts(b, "---|");
  for (size_t j = 0; j < g->nc * t->nstats; j++) mb_buf_puts(b, "---:|");
  mb_buf_puts(b, "\n");
  for (size_t r = 0; r < g->nr; r++) {
    mb_buf_puts(b, "|");
    for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, " "); md_escape(b, g->rows[r].val[k]); mb_buf_puts(b, " |"); }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < t->nstats; q++) {
        mb_buf_puts(b, " ");
        stat_text(b, &g->sum[r * g->nc + j], t->stats[q]);
        mb_buf_puts(b, " |");
      }
    mb_buf_puts(b, "\n");
  }
}

static void table_tex(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "\\begin{tabular}{");
  for (size_t k = 0; k < t->nrows; k++) mb_buf_puts(b, "l");
  for (size_t j = 0; j < g->nc * t->nstats; j++) mb_buf_puts(b, "r");
  mb_buf_puts(b, "}\n\\toprule\n");
  int first = 1;
  for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, first ? "" : " & "); first = 0; tex_escape(b, t->rows[k]); }
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < t->nstats; q++) { mb_buf_puts(b, " & "); col_head(b, t, g, j, t->stats[q], 1); }
  mb_buf_puts(b, " \\\\\n\\midrule\n");
  for (size_t r = 0; r < g->nr; r++) {
    for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, k ? " & " : ""); tex_escape(b, g->rows[r].val[k]); }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < t->nstats; q++) {
        mb_buf c;
        mb_buf_init(&c);
        mb_buf_add(&c, "", 0);
        stat_text(&c, &g->sum[r * g->nc + j], t->stats[q]);
        mb_buf_puts(b, " & ");
        tex_escape(b, c.s);
        mb_buf_free(&c);
      }
    mb_buf_puts(b, " \\\\\n");
  }
  mb_buf_puts(b, "\\bottomrule\n\\end{tabular}\n");
}

/* csv and json are long ("tidy"): one record per (row, column) group with
 * every statistic at full precision. */
static void table_csv(mb_buf *b, const mb_table *t, const grid *g)
{
  for (size_t k = 0; k < t->nrows; k++) mb_buf_printf(b, "%s,", t->rows[k]);
  for (size_t k = 0; k < t->ncols; k++) mb_buf_printf(b, "%s,", t->cols[k]);
  mb_buf_puts(b, "metric,n,mean,sd,se,ci95_lo,ci95_hi,median,min,max,trmean\n");
  for (size_t r = 0; r < g->nr; r++)
    for (size_t j = 0; j < g->nc; j++) {
      const moe_stats_summary *sm = &g->sum[r * g->nc + j];
      if (!sm->n) continue;
      for (size_t k = 0; k < t->nrows; k++) { csv_field(b, g->rows[r].val[k]); mb_buf_puts(b, ","); }
      for (size_t k = 0; k < t->ncols; k++) { csv_field(b, g->cols[j].val[k]); mb_buf_puts(b, ","); }
      mb_buf_printf(b, "%s,%zu", t->metric, sm->n);
      double v[] = {sm->mean, sm->sd, sm->se, sm->ci95_lo, sm->ci95_hi, sm->median, sm->min, sm->max, sm->trmean};
      for (int i = 0; i < 9; i++) {
        mb_buf_puts(b, ",");
        if (!isnan(v[i])) mb_buf_printf(b, "%.17g", v[i]);
      }
      mb_buf_puts(b, "\n");
    }
}

static void table_json(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "{\"table\": ");
  mb_buf_json_str(b, t->name);
  mb_buf_puts(b, ", \"metric\": ");
  mb_buf_json_str(b, t->metric);
  mb_buf_puts(b, ", \"records\": [");
  int first = 1;
  for (size_t r = 0; r < g->nr; r++)
    for (size_t j = 0; j < g->nc; j++) {
      const moe_stats_summary *sm = &g->sum[r * g->nc + j];
      if (!sm->n) continue;
      mb_buf_puts(b, first ? "\n  {" : ",\n  {");
      first = 0;
      for (size_t k = 0; k < t->nrows; k++) { mb_buf_json_str(b, t->rows[k]); mb_buf_puts(b, ": "); mb_buf_json_str(b, g->rows[r].val[k]); mb_buf_puts(b, ", "); }
      for (size_t k = 0; k < t->ncols; k++) { mb_buf_json_str(b, t->cols[k]); mb_buf_puts(b, ": "); mb_buf_json_str(b, g->cols[j].val[k]); mb_buf_puts(b, ", "); }
      mb_buf_printf(b, "\"n\": %zu", sm->n);
      const char *nm[] = {"mean", "sd", "se", "ci95_lo", "ci95_hi", "median", "min", "max", "trmean"};
      double v[] = {sm->mean, sm->sd, sm->se, sm->ci95_lo, sm->ci95_hi, sm->median, sm->min, sm->max, sm->trmean};
      for (int i = 0; i < 9; i++) { mb_buf_printf(b, ", \"%s\": ", nm[i]); json_num(b, v[i]); }
      mb_buf_puts(b, "}");
    }
  mb_buf_puts(b, "\n]}\n");
}

/* ---- brief.txt: the few lines for a terminal ---- */

#define BRIEF_COLS 100   /* characters per line at most */
#define BRIEF_ROWS 16    /* body rows per table at most */

/* Is table/fit `name` part of the terminal summary? The matrix's
 * `summary:` list if it has one; otherwise every fit, or failing that the
 * first table. */
static int in_brief(const mb_matrix *m, const char *name, int is_fit)
{
  if (m->nsummary) {
    for (size_t i = 0; i < m->nsummary; i++) if (!strcmp(m->summary[i], name)) return 1;
    return 0;
  }
  if (m->nfits) return is_fit;
  return !is_fit && m->ntables && !strcmp(m->tables[0].name, name);
}

/* Aligned plain text of cell[r * nc + c] (row 0 is the header), indented
 * by two spaces: columns that would pass BRIEF_COLS and rows past
 * BRIEF_ROWS are left out with a line saying where the rest is. */
static void text_table(mb_buf *b, char **cell, size_t nr, size_t nc, size_t nfirst_left, const char *rest)
{
  size_t *w = xcalloc(nc, sizeof *w), used = 2, keep = 0;
  for (size_t c = 0; c < nc; c++)
    for (size_t r = 0; r < nr; r++) { size_t L = strlen(cell[r * nc + c]); if (L > w[c]) w[c] = L; }
  for (size_t c = 0; c < nc; c++) {
    size_t add = w[c] + (c ? 2 : 0);
    if (c > 0 && used + add > BRIEF_COLS) break;
    used += add;
    keep++;
  }
  size_t show = nr > BRIEF_ROWS + 1 ? BRIEF_ROWS + 1 : nr;
  for (size_t r = 0; r < show; r++) {
    mb_buf_puts(b, "  ");
    for (size_t c = 0; c < keep; c++) {
      const char *t = cell[r * nc + c];
      int pad = (int)(w[c] - strlen(t));
      if (c < nfirst_left) mb_buf_printf(b, "%s%*s", t, c + 1 < keep ? pad : 0, "");
      else mb_buf_printf(b, "%*s%s", pad, "", t);
      if (c + 1 < keep) mb_buf_puts(b, "  ");
    }
    mb_buf_puts(b, "\n");
  }
  if (show < nr || keep < nc) {
    mb_buf_puts(b, "  (");
    if (show < nr) mb_buf_printf(b, "%zu more row%s", nr - show, nr - show > 1 ? "s" : "");
    if (show < nr && keep < nc) mb_buf_puts(b, ", ");
    if (keep < nc) mb_buf_printf(b, "%zu more column%s", nc - keep, nc - keep > 1 ? "s" : "");
    mb_buf_printf(b, ": %s)\n", rest);
  }
  free(w);
}

static char *xdup(const char *s)
{
  char *d = strdup(s ? s : "");
  if (!d) mb_oom(0);
  return d;
}

static void brief_table(mb_buf *b, const store *s, const mb_table *t, const grid *g)
{
  size_t nc = t->nrows + g->nc * t->nstats, nr = g->nr + 1;
  char **cell = xcalloc(nr * nc, sizeof *cell);
  for (size_t k = 0; k < t->nrows; k++) cell[k] = xdup(t->rows[k]);
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < t->nstats; q++) {
      mb_buf h;
      mb_buf_init(&h);
      mb_buf_add(&h, "", 0);
      if (t->ncols) { for (size_t k = 0; k < t->ncols; k++) mb_buf_printf(&h, "%s%s", k ? "," : "", g->cols[j].val[k]); mb_buf_puts(&h, " "); }
      mb_buf_puts(&h, mb_stat_names[t->stats[q]]);
      cell[t->nrows + j * t->nstats + q] = h.s;
    }
  for (size_t r = 0; r < g->nr; r++) {
    for (size_t k = 0; k < t->nrows; k++) cell[(r + 1) * nc + k] = xdup(g->rows[r].val[k]);
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < t->nstats; q++) {
        mb_buf v;
        mb_buf_init(&v);
        mb_buf_add(&v, "", 0);
        stat_text(&v, &g->sum[r * g->nc + j], t->stats[q]);
        cell[(r + 1) * nc + t->nrows + j * t->nstats + q] = v.s;
      }
  }
  char rest[4400];
  snprintf(rest, sizeof rest, "%s/%s.md", s->repdir, t->name);
  mb_buf_printf(b, "%s: %s over the replications\n", t->name, t->metric);
  text_table(b, cell, nr, nc, t->nrows, rest);
  for (size_t i = 0; i < nr * nc; i++) free(cell[i]);
  free(cell);
}

/* ---- fits ---- */

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

static int dbl_cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const mb_ref *find_ref(const mb_fit *f, const group *g)
{
  for (size_t r = 0; r < f->nrefs; r++) {
    int all = 1;
    for (size_t k = 0; k < f->refs[r].n && all; k++)
      for (size_t q = 0; q < f->nby; q++)
        if (!strcmp(f->refs[r].key[k], f->by[q]) && strcmp(f->refs[r].val[k], g->val[q])) all = 0;
    if (all) return &f->refs[r];
  }
  return NULL;
}

static const char *ref_get(const mb_ref *r, const char *key)
{
  for (size_t k = 0; r && k < r->n; k++) if (!strcmp(r->key[k], key)) return r->val[k];
  return NULL;
}

static const char *const center_label[] = {"mean", "median", "trmean"};

/* Rows centre-major: the first ng rows use f->centers[0] (so plots, which
 * index rows by group, draw the first centre), then the next centre ...
 * Rows of a centre other than the mean carry " [median]" / " [trmean]". */
static fitrow *fit_compute(const store *s, const mb_fit *f, size_t *nrows)
{
  const mb_matrix *m = s->m;
  size_t ng;
  group *g = group_cells(s, f->by, f->nby, &ng);
  const size_t nc = f->ncenters ? f->ncenters : 1;
  fitrow *out = xcalloc(ng * nc, sizeof *out);
  double *xs = xcalloc(m->ncells, sizeof *xs), *y = xcalloc(m->ncells, sizeof *y);
  double *gx = xcalloc(m->ncells, sizeof *gx);
  size_t *off = xcalloc(m->ncells + 1, sizeof *off);
  for (size_t ci = 0; ci < nc; ci++)
  for (size_t i = 0; i < ng; i++) {
    const moe_stats_center ctr = f->ncenters ? (moe_stats_center)f->centers[ci] : MOE_STATS_MEAN;
    fitrow *r = &out[ci * ng + i];
    mb_buf l;
    mb_buf_init(&l);
    label(&l, f->by, g[i].val, f->nby, "all");
    const size_t plain = l.n;
    if (ctr != MOE_STATS_MEAN) mb_buf_printf(&l, " [%s]", center_label[ctr]);
    r->label = l.s;
    r->val = xcalloc(f->nby ? f->nby : 1, sizeof *r->val);
    for (size_t q = 0; q < f->nby; q++) r->val[q] = xdup(g[i].val[q]);
    r->ref = find_ref(f, &g[i]);
    r->lo = r->hi = r->lon = r->hin = NAN;
    /* distinct x values of the group's cells, ascending */
    size_t nx = 0;
    for (size_t c = 0; c < g[i].n; c++) xs[nx++] = strtod(mb_xcell_get(&m->cells[g[i].cell[c]], f->x), NULL);
    qsort(xs, nx, sizeof *xs, dbl_cmp);
    size_t G = 0, k = 0;
    off[0] = 0;
    for (size_t a = 0; a < nx; a++) {
      if (a > 0 && xs[a] == xs[a - 1]) continue;
      size_t before = k;
      for (size_t c = 0; c < g[i].n; c++) {
        size_t cell = g[i].cell[c];
        double v;
        if (strtod(mb_xcell_get(&m->cells[cell], f->x), NULL) != xs[a]) continue;
        if (s->status[cell] != 1 || !mb_rfile_metric(&s->rf[cell], f->y, &v) || !isfinite(v)) continue;
        double ex;
        if (f->exclude && mb_rfile_metric(&s->rf[cell], f->exclude, &ex) && ex != 0) continue;
        y[k++] = v;
      }
      if (k == before) continue;
      gx[G] = xs[a];
      off[++G] = k;
    }
    r->npoints = G;
    r->ncells = k;
    if (G) { r->xmin = gx[0]; r->xmax = gx[G - 1]; }
    moe_stats_groups d = {G, gx, y, off};
    if (G < 2) { snprintf(r->why, sizeof r->why, "fewer than 2 values of %s with results", f->x); continue; }
    if (moe_stats_fit_groups_center(&d, MOE_STATS_X_LOG, ctr, &r->f)) {
      snprintf(r->why, sizeof r->why, "%s", moe_last_error());
      continue;
    }
    r->ok = 1;
    uint64_t seed = moe_seed_derive(m->seed, "fit");
    mb_buf sl;
    mb_buf_init(&sl);
    /* the mean's seed is the one used before centres existed */
    mb_buf_printf(&sl, "fit:%s:%.*s", f->name, (int)plain, r->label);
    if (ctr != MOE_STATS_MEAN) mb_buf_printf(&sl, ":%s", center_label[ctr]);
    seed = moe_seed_derive(m->seed, sl.s);
    mb_buf_free(&sl);
    if (f->bootstrap > 0 &&
        moe_stats_bootstrap_slope_center(&d, MOE_STATS_X_LOG, ctr, (size_t)f->bootstrap, seed, 0.95, &r->lo, &r->hi))
      r->lo = r->hi = NAN;
    if (gx[0] > 1 && moe_stats_fit_groups_center(&d, MOE_STATS_X_OVER_LOG, ctr, &r->fn) == MOE_OK) {
      r->ok_nlogn = 1;
      if (f->bootstrap > 0 &&
          moe_stats_bootstrap_slope_center(&d, MOE_STATS_X_OVER_LOG, ctr, (size_t)f->bootstrap,
                                           moe_seed_derive(seed, "nlogn"), 0.95, &r->lon, &r->hin))
        r->lon = r->hin = NAN;
    }
  }
  free(xs); free(y); free(gx); free(off);
  groups_free(g, ng);
  *nrows = ng * nc;
  return out;
}

static void rate_text(mb_buf *b, int ok, double slope, double lo, double hi)
{
  if (!ok) { mb_buf_puts(b, "n/a"); return; }
  mb_buf_printf(b, "%.3f", -slope);
  if (!isnan(lo)) mb_buf_printf(b, " [%.3f, %.3f]", -hi, -lo);
}

static void fit_md(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n, int tex)
{
  const char *head[] = {"group", "loss", "rate [95% CI]", "rate on n/log n", "paper", "theory"};
  if (tex) {
    mb_buf_puts(b, "\\begin{tabular}{llllll}\n\\toprule\n");
    for (int i = 0; i < 6; i++) { mb_buf_puts(b, i ? " & " : ""); tex_escape(b, head[i]); }
    mb_buf_puts(b, " \\\\\n\\midrule\n");
  } else {
    mb_buf_puts(b, "| group | loss | rate [95% CI] | rate on n/log n | paper | theory |\n|---|---|---:|---:|---:|---:|\n");
  }
  for (size_t i = 0; i < n; i++) {
    mb_buf c[6];
    for (int k = 0; k < 6; k++) { mb_buf_init(&c[k]); mb_buf_add(&c[k], "", 0); }
    mb_buf_puts(&c[0], r[i].label);
    const char *loss = ref_get(r[i].ref, "loss");
    mb_buf_puts(&c[1], loss ? loss : f->y);
    rate_text(&c[2], r[i].ok, r[i].f.slope, r[i].lo, r[i].hi);
    rate_text(&c[3], r[i].ok_nlogn, r[i].fn.slope, r[i].lon, r[i].hin);
    const char *p = ref_get(r[i].ref, "paper"), *t = ref_get(r[i].ref, "theory");
    mb_buf_puts(&c[4], p ? p : "");
    mb_buf_puts(&c[5], t ? t : "");
    if (tex) {
      for (int k = 0; k < 6; k++) { mb_buf_puts(b, k ? " & " : ""); tex_escape(b, c[k].s); }
      mb_buf_puts(b, " \\\\\n");
    } else {
      mb_buf_puts(b, "|");
      for (int k = 0; k < 6; k++) { mb_buf_puts(b, " "); md_escape(b, c[k].s); mb_buf_puts(b, " |"); }
      mb_buf_puts(b, "\n");
    }
    for (int k = 0; k < 6; k++) mb_buf_free(&c[k]);
  }
  if (tex) mb_buf_puts(b, "\\bottomrule\n\\end{tabular}\n");
}

static void brief_fit(mb_buf *b, const store *s, const mb_fit *f, const fitrow *r, size_t n)
{
  size_t nb = f->nby ? f->nby : 1, nc = nb + 4, nr = n + 1;
  char **cell = xcalloc(nr * nc, sizeof *cell);
  for (size_t q = 0; q < nb; q++) cell[q] = xdup(f->nby ? f->by[q] : "group");
  cell[nb] = xdup("loss");
  cell[nb + 1] = xdup("rate [95% CI]");
  cell[nb + 2] = xdup("paper");
  cell[nb + 3] = xdup("theory");
  for (size_t i = 0; i < n; i++) {
    char **row = cell + (i + 1) * nc;
    for (size_t q = 0; q < nb; q++) row[q] = xdup(f->nby ? r[i].val[q] : "all");
    const char *centre = r[i].label ? strstr(r[i].label, " [") : NULL;   /* " [median]", " [trmean]" */
    if (centre) {   /* rows of the other centres say which they are */
      mb_buf lb;
      mb_buf_init(&lb);
      mb_buf_printf(&lb, "%s%s", row[nb - 1], centre);
      free(row[nb - 1]);
      row[nb - 1] = lb.s;
    }
    const char *loss = ref_get(r[i].ref, "loss"), *p = ref_get(r[i].ref, "paper"), *t = ref_get(r[i].ref, "theory");
    row[nb] = xdup(loss ? loss : f->y);
    mb_buf rt;
    mb_buf_init(&rt);
    mb_buf_add(&rt, "", 0);
    rate_text(&rt, r[i].ok, r[i].f.slope, r[i].lo, r[i].hi);
    row[nb + 1] = rt.s;
    row[nb + 2] = xdup(p ? p : "-");
    row[nb + 3] = xdup(t ? t : "-");
  }
  char rest[4400];
  snprintf(rest, sizeof rest, "%s/%s.md", s->repdir, f->name);
  mb_buf_printf(b, "%s: rate = -slope of log(%s %s) on log %s", f->name, f->ncenters > 1 ? "centre of" : "mean", f->y,
                f->x);
  if (f->bootstrap > 0) mb_buf_puts(b, ", 95% bootstrap CI");
  mb_buf_puts(b, "\n");
  text_table(b, cell, nr, nc, nb + 1, rest);
  for (size_t i = 0; i < nr * nc; i++) free(cell[i]);
  free(cell);
}

static void fit_csv(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n)
{
  mb_buf_puts(b, "group,loss,points,cells,x_min,x_max,rate,rate_ci95_lo,rate_ci95_hi,slope,slope_se,intercept,r2,"
                 "rate_nlogn,rate_nlogn_ci95_lo,rate_nlogn_ci95_hi,paper,theory\n");
  for (size_t i = 0; i < n; i++) {
    const char *loss = ref_get(r[i].ref, "loss"), *p = ref_get(r[i].ref, "paper"), *t = ref_get(r[i].ref, "theory");
    csv_field(b, r[i].label);
    mb_buf_puts(b, ",");
    csv_field(b, loss ? loss : f->y);
    mb_buf_printf(b, ",%zu,%zu,", r[i].npoints, r[i].ncells);
    double v[] = {r[i].xmin, r[i].xmax,
                  r[i].ok ? -r[i].f.slope : NAN, -r[i].hi, -r[i].lo, r[i].ok ? r[i].f.slope : NAN,
                  r[i].ok ? r[i].f.slope_se : NAN, r[i].ok ? r[i].f.intercept : NAN, r[i].ok ? r[i].f.r2 : NAN,
                  r[i].ok_nlogn ? -r[i].fn.slope : NAN, -r[i].hin, -r[i].lon};
    for (int k = 0; k < 12; k++) { if (!isnan(v[k]) && r[i].npoints) mb_buf_printf(b, "%.17g", v[k]); mb_buf_puts(b, ","); }
    csv_field(b, p ? p : "");
    mb_buf_puts(b, ",");
    csv_field(b, t ? t : "");
    mb_buf_puts(b, "\n");
  }
}

static void fit_json(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n)
{
  mb_buf_puts(b, "{\"fit\": ");
  mb_buf_json_str(b, f->name);
  mb_buf_puts(b, ", \"x\": ");
  mb_buf_json_str(b, f->x);
  mb_buf_puts(b, ", \"y\": ");
  mb_buf_json_str(b, f->y);
  mb_buf_puts(b, ", \"rate\": \"-slope of log(mean y) on log(x)\", \"groups\": [");
  for (size_t i = 0; i < n; i++) {
    const char *loss = ref_get(r[i].ref, "loss"), *p = ref_get(r[i].ref, "paper"), *t = ref_get(r[i].ref, "theory");
    mb_buf_puts(b, i ? ",\n  {\"group\": " : "\n  {\"group\": ");
    mb_buf_json_str(b, r[i].label);
    mb_buf_puts(b, ", \"loss\": ");
    mb_buf_json_str(b, loss ? loss : f->y);
    mb_buf_printf(b, ", \"points\": %zu, \"cells\": %zu", r[i].npoints, r[i].ncells);
    const char *nm[] = {"rate", "rate_ci95_lo", "rate_ci95_hi", "slope", "slope_se", "intercept", "r2",
                        "rate_nlogn", "rate_nlogn_ci95_lo", "rate_nlogn_ci95_hi"};
    double v[] = {r[i].ok ? -r[i].f.slope : NAN, -r[i].hi, -r[i].lo, r[i].ok ? r[i].f.slope : NAN,
                  r[i].ok ? r[i].f.slope_se : NAN, r[i].ok ? r[i].f.intercept : NAN, r[i].ok ? r[i].f.r2 : NAN,
                  r[i].ok_nlogn ? -r[i].fn.slope : NAN, -r[i].hin, -r[i].lon};
    for (int k = 0; k < 10; k++) { mb_buf_printf(b, ", \"%s\": ", nm[k]); json_num(b, v[k]); }
    mb_buf_puts(b, ", \"paper\": ");
    if (p) mb_buf_json_str(b, p); else mb_buf_puts(b, "null");
    mb_buf_puts(b, ", \"theory\": ");
    if (t) mb_buf_json_str(b, t); else mb_buf_puts(b, "null");
    if (!r[i].ok) { mb_buf_puts(b, ", \"note\": "); mb_buf_json_str(b, r[i].why); }
    mb_buf_puts(b, "}");
  }
  mb_buf_puts(b, "\n]}\n");
}

/* ---- plots ---- */

static const char *find_gnuplot(char *buf, size_t len)
{
  const char *env = getenv("MOEBENCH_GNUPLOT");
  if (env) {
    if (!*env) return NULL;   /* set but empty: plotting disabled */
    if (access(env, X_OK) == 0) { snprintf(buf, len, "%s", env); return buf; }
    return NULL;
  }
  const char *path = getenv("PATH");
  if (!path) return NULL;
  while (*path) {
    size_t L = strcspn(path, ":");
    snprintf(buf, len, "%.*s/gnuplot", (int)L, L ? path : ".");
    if (access(buf, X_OK) == 0) return buf;
    path += L;
    if (*path) path++;
  }
  return NULL;
}

static void gp_quote(mb_buf *b, const char *s)
{
  mb_buf_puts(b, "\"");
  for (; *s; s++) {
    if (*s == '\n') { mb_buf_puts(b, "\\n"); continue; }   /* a line break in a title */
    if (*s == '"' || *s == '\\') mb_buf_add(b, "\\", 1);
    mb_buf_add(b, s, 1);
  }
  mb_buf_puts(b, "\"");
}

/* The first of refs whose by-keys all match the group's values. */
static const mb_ref *match_ref(const mb_ref *refs, size_t n, char **by, size_t nby, char **vals)
{
  for (size_t r = 0; r < n; r++) {
    int all = 1;
    for (size_t k = 0; k < refs[r].n && all; k++)
      for (size_t q = 0; q < nby; q++)
        if (!strcmp(refs[r].key[k], by[q]) && strcmp(refs[r].val[k], vals[q])) all = 0;
    if (all) return &refs[r];
  }
  return NULL;
}

/* A group's title: the plot's titles entry that selects it, with the
 * by-values that entry does not name on a second line; else its label. */
static void group_title(mb_buf *b, const mb_plot *p, char **vals, const char *labeltext)
{
  const mb_ref *t = match_ref(p->titles, p->ntitles, p->by, p->nby, vals);
  const char *tt = ref_get(t, "title");
  if (!tt) { mb_buf_puts(b, labeltext); return; }
  mb_buf_puts(b, tt);
  int open = 0;
  for (size_t q = 0; q < p->nby; q++) {
    if (ref_get(t, p->by[q])) continue;
    mb_buf_printf(b, "%s%s=%s", open ? ", " : "\n", p->by[q], vals[q]);
    open = 1;
  }
}

static void errbar(const mb_plot *p, const moe_stats_summary *sm, double *lo, double *hi)
{
  *lo = *hi = sm->mean;
  if (p->errorbars == MB_S_SD && !isnan(sm->sd)) { *lo = sm->mean - sm->sd; *hi = sm->mean + sm->sd; }
  if (p->errorbars == MB_S_SE && !isnan(sm->se)) { *lo = sm->mean - sm->se; *hi = sm->mean + sm->se; }
  if (p->errorbars == MB_S_CI95 && !isnan(sm->ci95_lo)) { *lo = sm->ci95_lo; *hi = sm->ci95_hi; }
}

/* Data rows of a family plot (x "@"): at each index any cell of the group
 * reports, the summary over the cells reporting it. */
static void family_rows(const store *s, const group *g, const mb_plot *p, mb_buf *dat)
{
  double **pts = xcalloc(g->n, sizeof *pts), *xs = NULL, *v = xcalloc(g->n, sizeof *v);
  size_t *np = xcalloc(g->n, sizeof *np), nx = 0;
  for (size_t c = 0; c < g->n; c++) {
    if (s->status[g->cell[c]] != 1) continue;
    np[c] = family_points(&s->rf[g->cell[c]], p->y, &pts[c]);
    xs = realloc(xs, (nx + np[c] + 1) * sizeof *xs);
    if (!xs) mb_oom((nx + np[c] + 1) * sizeof *xs);
    for (size_t k = 0; k < np[c]; k++) xs[nx++] = pts[c][2 * k];
  }
  if (nx) qsort(xs, nx, sizeof *xs, dbl_cmp);
  for (size_t a = 0; a < nx; a++) {
    if (a > 0 && xs[a] == xs[a - 1]) continue;
    size_t nv = 0;
    for (size_t c = 0; c < g->n; c++)
      for (size_t k = 0; k < np[c]; k++)
        if (pts[c][2 * k] == xs[a]) v[nv++] = pts[c][2 * k + 1];
    moe_stats_summary sm;
    moe_stats_summarize(v, nv, &sm);
    double lo, hi;
    errbar(p, &sm, &lo, &hi);
    mb_buf_printf(dat, "%.17g %.17g %.17g %.17g %zu\n", xs[a], sm.mean, lo, hi, nv);
  }
  for (size_t c = 0; c < g->n; c++) free(pts[c]);
  free(pts); free(xs); free(v); free(np);
}

static void plot_one(store *s, const mb_plot *p, const char *gnuplot, int *rendered)
{
  const mb_matrix *m = s->m;
  size_t ng;
  group *g = group_cells(s, p->by, p->nby, &ng);
  const mb_fit *fit = NULL;
  fitrow *fr = NULL;
  size_t nfr = 0;
  for (size_t i = 0; p->fit && i < m->nfits; i++) if (!strcmp(m->fits[i].name, p->fit)) fit = &m->fits[i];
  if (fit) fr = fit_compute(s, fit, &nfr);
  mb_buf dat, gp, body;
  mb_buf_init(&dat); mb_buf_init(&gp); mb_buf_init(&body);
  double *xs = xcalloc(m->ncells, sizeof *xs), *v = xcalloc(m->ncells, sizeof *v);
  size_t *sel = xcalloc(m->ncells, sizeof *sel);
  const char *bars = p->errorbars >= 0 ? mb_stat_names[p->errorbars] : NULL;
  /* the y axis is named after the loss when every group's fit reference
   * names the same one (D1 ...), else after the metric */
  const char *yname = NULL;
  int same_loss = nfr > 0;
  for (size_t q = 0; q < nfr; q++) {
    const char *l = ref_get(fr[q].ref, "loss");
    if (!l || (yname && strcmp(yname, l))) same_loss = 0;
    if (l && !yname) yname = l;
  }
  if (!same_loss) yname = p->y;
  mb_buf_printf(&dat, "# moebench report: plot %s of matrix %s: %s vs %s; columns: x mean low high n\n", p->name,
                m->name, p->y, p->x);
  for (size_t i = 0; i < ng; i++) {
    mb_buf l;
    mb_buf_init(&l);
    label(&l, p->by, g[i].val, p->nby, "all");
    mb_buf_printf(&dat, "%s# %s\n", i ? "\n\n" : "", l.s);
    if (!strcmp(p->x, "@")) family_rows(s, &g[i], p, &dat);
    size_t nx = 0;
    if (!strcmp(p->x, "@")) goto clause;
    for (size_t c = 0; c < g[i].n; c++) xs[nx++] = strtod(mb_xcell_get(&m->cells[g[i].cell[c]], p->x), NULL);
    qsort(xs, nx, sizeof *xs, dbl_cmp);
    for (size_t a = 0; a < nx; a++) {
      if (a > 0 && xs[a] == xs[a - 1]) continue;
      size_t k = 0;
      for (size_t c = 0; c < g[i].n; c++)
        if (strtod(mb_xcell_get(&m->cells[g[i].cell[c]], p->x), NULL) == xs[a]) sel[k++] = g[i].cell[c];
      size_t nv = values(s, sel, k, p->y, NULL, v);
      if (!nv) continue;
      moe_stats_summary sm;
      moe_stats_summarize(v, nv, &sm);
      double lo = sm.mean, hi = sm.mean;
      if (p->errorbars == MB_S_SD && !isnan(sm.sd)) { lo = sm.mean - sm.sd; hi = sm.mean + sm.sd; }
      if (p->errorbars == MB_S_SE && !isnan(sm.se)) { lo = sm.mean - sm.se; hi = sm.mean + sm.se; }
      if (p->errorbars == MB_S_CI95 && !isnan(sm.ci95_lo)) { lo = sm.ci95_lo; hi = sm.ci95_hi; }
      mb_buf_printf(&dat, "%.17g %.17g %.17g %.17g %zu\n", xs[a], sm.mean, lo, hi, nv);
    }
  clause:;
    const fitrow *row = NULL;
    for (size_t q = 0; q < nfr; q++) if (fr[q].ok && !strcmp(fr[q].label, l.s)) row = &fr[q];
    mb_buf gt;
    mb_buf_init(&gt);
    group_title(&gt, p, g[i].val, l.s);
    if (p->panels) {
      /* each panel says what it shows, and its y axis names its loss */
      const char *loss = row ? ref_get(row->ref, "loss") : NULL;
      mb_buf yl;
      mb_buf_init(&yl);
      mb_buf_printf(&yl, "%s (mean%s%s)", loss ? loss : p->y, bars ? " ± " : "", bars ? bars : "");
      mb_buf_puts(&body, "set title ");
      gp_quote(&body, gt.s);
      mb_buf_puts(&body, " noenhanced\nset ylabel ");
      gp_quote(&body, p->ylabel ? p->ylabel : yl.s);
      mb_buf_puts(&body, " noenhanced\n");
      mb_buf_free(&yl);
    }
    /* one plot clause per group, then its fitted line and, where the fit's
     * reference gives them, the paper's and the theory's rates drawn
     * through the middle of the fitted line */
    /* one group per panel: one colour for all panels; several curves: one each */
    char lc[40];
    if (p->panels) snprintf(lc, sizeof lc, "rgb '#0060ad'");
    else snprintf(lc, sizeof lc, "%zu", i + 1);
    mb_buf_printf(&body, "%s'%s.dat' index %zu using 1:2%s with %s lw 2 lc %s title ", p->panels ? "plot " : (i ? ", \\\n     " : "plot "),
                  p->name, i, bars ? ":3:4" : "", bars ? "yerrorlines" : "linespoints", lc);
    {
      mb_buf dt;
      mb_buf_init(&dt);
      if (p->panels) mb_buf_printf(&dt, "mean%s%s", bars ? " ± " : "", bars ? bars : "");
      else mb_buf_puts(&dt, gt.s);
      gp_quote(&body, dt.s);
      mb_buf_free(&dt);
    }
    if (row) {
      char t[160];
      snprintf(t, sizeof t, "fit: rate %.3f", -row->f.slope);
      mb_buf_printf(&body, ", \\\n     [%.17g:%.17g] exp(%.17g) * x**(%.17g) with lines lw 2 dt 2 lc %s title ", row->xmin, row->xmax,
                    row->f.intercept, row->f.slope, lc);
      gp_quote(&body, t);
      double xm = sqrt(row->xmin * row->xmax), ym = exp(row->f.intercept) * pow(xm, row->f.slope);
      const char *lab[2] = {"paper", "theory"};
      const char *style[2] = {"dt 3 lw 2 lc rgb 'black'", "dt 4 lw 2 lc rgb 'gray50'"};
      for (int k = 0; k < 2; k++) {
        const char *rv = ref_get(row->ref, lab[k]);
        char *end;
        double rate = rv ? strtod(rv, &end) : NAN;
        if (!rv || *end || !isfinite(rate) || !isfinite(ym) || !(xm > 0)) continue;
        if (!p->panels) snprintf(t, sizeof t, "%s: rate %s (%s)", lab[k], rv, gt.s);
        else if (rate == 0.5) snprintf(t, sizeof t, "%s: rate %s (n^-1/2)", lab[k], rv);
        else snprintf(t, sizeof t, "%s: rate %s", lab[k], rv);
        /* one panel: black and grey; several curves: the group's colour */
        char st[64];
        if (p->panels) snprintf(st, sizeof st, "%s", style[k]);
        else snprintf(st, sizeof st, "dt %d lw 1 lc %zu", k ? 4 : 3, i + 1);
        mb_buf_printf(&body, ", \\\n     [%.17g:%.17g] %.17g * (x / %.17g)**(%.17g) with lines %s title ", row->xmin, row->xmax,
                      ym, xm, -rate, st);
        gp_quote(&body, t);
      }
    }
    if (p->panels) mb_buf_puts(&body, "\n");
    mb_buf_free(&gt);
    mb_buf_free(&l);
  }
  if (!p->panels) mb_buf_puts(&body, "\n");
  free(xs); free(v); free(sel);

  mb_buf_printf(&gp, "# gnuplot script written by moebench report (matrix %s, plot %s).\n"
                     "# Renders %s.png and %s.svg from %s.dat: gnuplot %s.gp\n", m->name, p->name, p->name, p->name, p->name, p->name);
  /* legends below the plot, never over the data */
  mb_buf_puts(&gp, "set encoding utf8\nset key below left Left reverse noenhanced\nset grid\nset bars small\nset offsets graph 0.03, graph 0.03, 0, 0\n");
  if (p->logx) mb_buf_puts(&gp, "set logscale x\n");
  if (p->logy) mb_buf_puts(&gp, "set logscale y\n");
  if (!p->panels) {
    mb_buf_puts(&gp, "set title ");
    gp_quote(&gp, p->title ? p->title : p->name);
    mb_buf_puts(&gp, " noenhanced\n");
  }
  mb_buf_puts(&gp, "set xlabel ");
  gp_quote(&gp, p->xlabel ? p->xlabel : p->x);
  mb_buf_puts(&gp, " noenhanced\nset ylabel ");
  {
    mb_buf yl;
    mb_buf_init(&yl);
    mb_buf_printf(&yl, "%s (mean%s%s)", yname, bars ? " ± " : "", bars ? bars : "");
    gp_quote(&gp, p->ylabel ? p->ylabel : yl.s);
    mb_buf_free(&yl);
  }
  mb_buf_puts(&gp, " noenhanced\n");
  size_t cols = ng > 1 ? (ng >= 4 ? 2 : ng) : 1, rows = (ng + cols - 1) / cols;
  const char *terms[2][3] = {{"png", "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) { set terminal pngcairo size %d,%d } else { set terminal png size %d,%d }\n", ""},
                             {"svg", "set terminal svg size %d,%d dynamic\n", ""}};
  for (int t = 0; t < 2; t++) {
    int w = p->panels ? 620 * (int)cols : 900, h = p->panels ? 470 * (int)rows + 40 : 700;
    mb_buf_printf(&gp, terms[t][1], w, h, w, h);
    mb_buf_printf(&gp, "set output '%s.%s'\n", p->name, terms[t][0]);
    if (p->panels) {
      mb_buf_printf(&gp, "set multiplot layout %zu,%zu title ", rows, cols);
      gp_quote(&gp, p->title ? p->title : p->name);
      mb_buf_puts(&gp, " noenhanced\n");
    }
    mb_buf_add(&gp, body.s ? body.s : "", body.n);
    if (p->panels) mb_buf_puts(&gp, "unset multiplot\n");
    mb_buf_puts(&gp, "unset output\n");
  }
  char f[300];
  snprintf(f, sizeof f, "%s.dat", p->name);
  write_out(s, f, &dat);
  snprintf(f, sizeof f, "%s.gp", p->name);
  write_out(s, f, &gp);
  if (gnuplot) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      if (chdir(s->repdir)) _exit(127);
      execl(gnuplot, "gnuplot", f, (char *)NULL);
      _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws)) {
      fprintf(stderr, "moebench report: gnuplot failed on %s/%s\n", s->repdir, f);
      s->bad = 1;
    } else {
      fprintf(stderr, "moebench report: rendered %s/%s.png and %s.svg\n", s->repdir, p->name, p->name);
      (*rendered)++;
    }
  }
  mb_buf_free(&dat); mb_buf_free(&gp); mb_buf_free(&body);
  for (size_t q = 0; q < nfr; q++) {
    free(fr[q].label);
    for (size_t k = 0; fit && k < fit->nby; k++) free(fr[q].val[k]);
    free(fr[q].val);
  }
  free(fr);
  groups_free(g, ng);
}

/* ---- provenance ---- */

/* Where the results came from: the distinct values of a few provenance
 * fields over the ok cells, with counts (several values mean the cells were
 * produced by different builds or machines). */
static void provenance_md(store *s)
{
  static const char *const fields[][2] = {
    {"moebench", NULL}, {"git_commit", NULL}, {"compiler", NULL}, {"cflags", NULL}, {"gsl", NULL},
    {"blas", "name"}, {"blas", "core"}, {"blas", "threads"}, {"cpu", NULL}, {"hostname", NULL}, {"os", NULL}};
  const mb_matrix *m = s->m;
  mb_buf b;
  mb_buf_init(&b);
  mb_buf_printf(&b, "## Provenance of %s\n\n| field | value | cells |\n|---|---|---:|\n", m->name);
  char **val = xcalloc(m->ncells, sizeof *val);
  size_t *cnt = xcalloc(m->ncells, sizeof *cnt), ncores = 0;
  for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
    size_t nv = 0;
    for (size_t c = 0; c < m->ncells; c++) {
      if (s->status[c] != 1) continue;
      const mb_json *p = mb_json_get(s->rf[c].doc, "provenance");
      const mb_json *v = mb_json_get(p, fields[f][0]);
      if (fields[f][1]) v = mb_json_get(v, fields[f][1]);
      const char *t = v && (v->type == MB_J_STR || v->type == MB_J_NUM) ? v->text : "(none)";
      size_t k = 0;
      while (k < nv && strcmp(val[k], t)) k++;
      if (k == nv) { val[nv] = (char *)t; cnt[nv++] = 0; }
      cnt[k]++;
    }
    for (size_t k = 0; k < nv; k++) {
      mb_buf_printf(&b, "| %s%s%s | ", fields[f][0], fields[f][1] ? "." : "", fields[f][1] ? fields[f][1] : "");
      md_escape(&b, val[k]);
      mb_buf_printf(&b, " | %zu |\n", cnt[k]);
    }
    /* Different OpenBLAS kernels give different bits: cells of one matrix
     * that ran on several (nodes of different CPUs, a job script without
     * OPENBLAS_CORETYPE) are not one reproducible run. */
    if (nv > 1 && fields[f][1] && !strcmp(fields[f][0], "blas") && !strcmp(fields[f][1], "core")) {
      mb_buf w;
      mb_buf_init(&w);
      for (size_t k = 0; k < nv; k++) mb_buf_printf(&w, "%s%s: %zu cells", k ? ", " : "", val[k], cnt[k]);
      fprintf(stderr, "moebench report: warning: %s: the cells ran on %zu different BLAS cores (%s); "
              "their bits are not comparable: pin OPENBLAS_CORETYPE (moebench slurm does)\n", m->name, nv, w.s);
      mb_buf_free(&w);
      ncores = nv;
    }
  }
  if (ncores > 1)
    mb_buf_printf(&b, "\n**Warning:** the cells ran on %zu different BLAS cores; their bits are not comparable "
                  "(pin `OPENBLAS_CORETYPE`).\n", ncores);
  free(val);
  free(cnt);
  write_out(s, "provenance.md", &b);
  mb_buf_free(&b);
}

/* ---- driver ---- */

static int report_dir(const char *dir, const char *matrix_file, int formats, int plot)
{
  char mpath[4200], err[5000];
  if (matrix_file) snprintf(mpath, sizeof mpath, "%s", matrix_file);
  else snprintf(mpath, sizeof mpath, "%s/matrix.yaml", dir);
  int st;
  mb_matrix *m = mb_matrix_load_stderr(mpath, &st);
  if (!m) return st;
  store s;
  memset(&s, 0, sizeof s);
  s.m = m;
  s.dir = dir;
  snprintf(s.repdir, sizeof s.repdir, "%s/report", dir);
  if (mb_mkdirs(s.repdir, err, sizeof err)) { fprintf(stderr, "moebench report: %s\n", err); mb_matrix_free(m); return 1; }
  s.rf = xcalloc(m->ncells, sizeof *s.rf);
  s.status = xcalloc(m->ncells, sizeof *s.status);
  for (size_t c = 0; c < m->ncells; c++) {
    char p[4400];
    snprintf(p, sizeof p, "%s/cells/%s.json", dir, m->cells[c].id);
    int r = mb_rfile_load(p, &s.rf[c], err, sizeof err);
    if (r == 1) { fprintf(stderr, "moebench report: corrupt result, treated as missing: %s\n", err); s.status[c] = 3; s.ncorrupt++; }
    else if (r < 0) { s.status[c] = 0; s.nmissing++; }
    else if (strcmp(s.rf[c].id, m->cells[c].id)) {
      fprintf(stderr, "moebench report: %s: holds id %s, treated as missing\n", p, s.rf[c].id);
      s.status[c] = 3; s.ncorrupt++;
    } else if (s.rf[c].ok) { s.status[c] = 1; s.nok++; }
    else { s.status[c] = 2; s.nfailed++; }
  }
  fprintf(stderr, "moebench report: %s: %zu cells: %zu ok, %zu failed, %zu missing, %zu corrupt\n", m->name,
          m->ncells, s.nok, s.nfailed, s.nmissing, s.ncorrupt);

  /* summary.md: everything in Markdown, for doc/results.md */
  mb_buf sum;
  mb_buf_init(&sum);
  mb_buf_printf(&sum, "## %s\n\n", m->name);
  if (m->description) { md_escape(&sum, m->description); mb_buf_puts(&sum, "\n\n"); }
  mb_buf_printf(&sum, "Task `%s`, seed %llu, %zu cells (%ld replications): %zu ok, %zu failed, %zu missing.\n\n",
                m->task->name, (unsigned long long)m->seed, m->ncells, m->replications, s.nok, s.nfailed,
                s.nmissing + s.ncorrupt);
  /* brief.txt: what a terminal shows (mb-bench.sh prints it) */
  mb_buf brief;
  mb_buf_init(&brief);
  mb_buf_printf(&brief, "%s: %zu cells: %zu ok, %zu failed, %zu missing\n", m->name, m->ncells, s.nok, s.nfailed,
                s.nmissing + s.ncorrupt);
  if (m->description) {
    const char *d = m->description;
    mb_buf_printf(&brief, "%.*s%s\n", strlen(d) > BRIEF_COLS ? BRIEF_COLS - 3 : (int)strlen(d), d,
                  strlen(d) > BRIEF_COLS ? "..." : "");
  }
  static const char *ext[] = {"md", "csv", "tex", "json"};
  for (size_t i = 0; i < m->ntables; i++) {
    const mb_table *t = &m->tables[i];
    grid g;
    grid_build(&s, t, &g);
    for (int f = 0; f < 4; f++) {
      if (!(formats & (1 << f))) continue;
      mb_buf b;
      mb_buf_init(&b);
      if (f == 0) table_md(&b, t, &g);
      else if (f == 1) table_csv(&b, t, &g);
      else if (f == 2) table_tex(&b, t, &g);
      else table_json(&b, t, &g);
      char fn[300];
      snprintf(fn, sizeof fn, "%s.%s", t->name, ext[f]);
      write_out(&s, fn, &b);
      mb_buf_free(&b);
    }
    if (in_brief(m, t->name, 0)) brief_table(&brief, &s, t, &g);
    if (t->reach)
      mb_buf_printf(&sum, "### Table `%s`: first %s index at which %s reaches its final value at %s=%s (same replication), "
                          "as a fraction of the run; replications that never reach it are left out (n)\n\n",
                    t->name, t->metric, t->metric, t->rows[0], t->paired);
    else if (t->paired)
      mb_buf_printf(&sum, "### Table `%s`: %s minus %s's value at %s=%s (paired by replication)\n\n", t->name,
                    t->metric, t->metric, t->rows[0], t->paired);
    else
      mb_buf_printf(&sum, "### Table `%s`: %s over replications\n\n", t->name, t->metric);
    table_md(&sum, t, &g);
    mb_buf pk;
    mb_buf_init(&pk);
    if (pooled(&s, t->rows, t->nrows, t->cols, t->ncols, &pk)) {
      fprintf(stderr, "moebench report: note: table '%s' pools cells that differ in: %s\n", t->name, pk.s);
      mb_buf_printf(&sum, "\nPooled over the replications and over: %s.\n", pk.s);
    }
    mb_buf_free(&pk);
    mb_buf_puts(&sum, "\n");
    grid_free(&g);
  }
  for (size_t i = 0; i < m->nfits; i++) {
    const mb_fit *fit = &m->fits[i];
    size_t n;
    fitrow *r = fit_compute(&s, fit, &n);
    for (int f = 0; f < 4; f++) {
      if (!(formats & (1 << f))) continue;
      mb_buf b;
      mb_buf_init(&b);
      if (f == 0) fit_md(&b, fit, r, n, 0);
      else if (f == 1) fit_csv(&b, fit, r, n);
      else if (f == 2) fit_md(&b, fit, r, n, 1);
      else fit_json(&b, fit, r, n);
      char fn[300];
      snprintf(fn, sizeof fn, "%s.%s", fit->name, ext[f]);
      write_out(&s, fn, &b);
      mb_buf_free(&b);
    }
    if (in_brief(m, fit->name, 1)) brief_fit(&brief, &s, fit, r, n);
    mb_buf_printf(&sum, "### Fit `%s`: rate = -slope of log(%s %s) on log %s", fit->name,
                  fit->ncenters > 1 ? "centre" : center_label[fit->ncenters ? fit->centers[0] : 0], fit->y, fit->x);
    if (fit->exclude) mb_buf_printf(&sum, "; cells with %s != 0 left out", fit->exclude);
    if (fit->ncenters > 1) {
      mb_buf_puts(&sum, "; centres: ");
      for (size_t q = 0; q < fit->ncenters; q++) mb_buf_printf(&sum, "%s%s", q ? ", " : "", center_label[fit->centers[q]]);
      mb_buf_puts(&sum, " (10%-trimmed)");
    }
    if (fit->bootstrap > 0) mb_buf_printf(&sum, " (95%% CI: %ld bootstrap resamples of the replications)", fit->bootstrap);
    mb_buf_puts(&sum, "\n\n");
    fit_md(&sum, fit, r, n, 0);
    for (size_t k = 0; k < n; k++)
      if (!r[k].ok) mb_buf_printf(&sum, "\n- %s: no fit (%s)", r[k].label, r[k].why);
    mb_buf pk;
    mb_buf_init(&pk);
    char *xkey[1] = {fit->x};
    if (pooled(&s, fit->by, fit->nby, xkey, 1, &pk)) {
      fprintf(stderr, "moebench report: note: fit '%s' pools cells that differ in: %s\n", fit->name, pk.s);
      mb_buf_printf(&sum, "\nEach point pools the replications and: %s.\n", pk.s);
    }
    mb_buf_free(&pk);
    for (size_t q = 0; q < fit->nrefs; q++) {
      int used = 0;
      for (size_t k = 0; k < n; k++) if (r[k].ref == &fit->refs[q]) used = 1;
      if (!used) fprintf(stderr, "moebench report: warning: fit '%s': reference %zu matches no group\n", fit->name, q + 1);
    }
    mb_buf_puts(&sum, "\n");
    for (size_t k = 0; k < n; k++) {
      free(r[k].label);
      for (size_t q = 0; q < fit->nby; q++) free(r[k].val[q]);
      free(r[k].val);
    }
    free(r);
  }
  if (plot) {
    char gpbuf[4096];
    const char *gnuplot = find_gnuplot(gpbuf, sizeof gpbuf);
    int rendered = 0;
    if (!gnuplot && m->nplots)
      fprintf(stderr, "moebench report: note: gnuplot not found (PATH or MOEBENCH_GNUPLOT): wrote the .gp "
                      "scripts and .dat files only; render them with `gnuplot NAME.gp` in %s\n", s.repdir);
    for (size_t i = 0; i < m->nplots; i++) plot_one(&s, &m->plots[i], gnuplot, &rendered);
    for (size_t i = 0; i < m->nplots; i++)
      if (rendered) mb_buf_printf(&sum, "![%s](%s.svg)\n\n", m->plots[i].name, m->plots[i].name);
    for (size_t i = 0; i < m->nplots; i++)
      mb_buf_printf(&brief, "%s %s/%s.%s\n", i ? "       " : "Figure:", s.repdir, m->plots[i].name, rendered ? "png" : "gp");
  }
  mb_buf_printf(&brief, "Tables: %s/summary.md (every table and fit; .csv/.tex/.json beside it)\n", s.repdir);
  write_out(&s, "brief.txt", &brief);
  mb_buf_free(&brief);
  write_out(&s, "summary.md", &sum);
  provenance_md(&s);
  mb_buf_free(&sum);
  int rc = s.bad ? 1 : 0;
  for (size_t c = 0; c < m->ncells; c++) mb_rfile_free(&s.rf[c]);
  free(s.rf);
  free(s.status);
  mb_matrix_free(m);
  return rc;
}

static const char report_usage[] =
  "usage: moebench report DIR [--format md|csv|tex|json]... [--plot] [--matrix FILE]\n"
  "Aggregate the results under DIR (a results root: every NAME/ in it with a\n"
  "matrix.yaml; or one NAME directory) into DIR/NAME/report/: one file per\n"
  "table and fit of the matrix in each format, summary.md, provenance.md, and with --plot\n"
  "gnuplot scripts (.gp, .dat) rendered to .png and .svg when gnuplot is found.\n"
  "  --format F   md (default), csv, tex or json; repeat or comma-separate\n"
  "  --plot       write plots\n"
  "  --matrix F   use matrix file F instead of the stored DIR/NAME/matrix.yaml\n"
  "Exit status: 0 written, 1 an output could not be written, 2 usage or\n"
  "validation error.\n";

int mb_verb_report(int argc, char **argv)
{
  const char *dir = NULL, *mfile = NULL;
  int formats = 0, plot = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(report_usage, stdout); return 0; }
    if (!strcmp(a, "--version")) { printf("moebench report %s (libmoe %s)\n", MOE_VERSION_STRING, moe_version()); return 0; }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (!strcmp(a, "--format") || !strcmp(a, "-f")) v = i + 1 < argc ? argv[++i] : "";
    else if (!strncmp(a, "--format=", 9)) v = a + 9;
    if (v) {
      char buf[256];
      snprintf(buf, sizeof buf, "%s", v);
      for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "md")) formats |= F_MD;
        else if (!strcmp(tok, "csv")) formats |= F_CSV;
        else if (!strcmp(tok, "tex")) formats |= F_TEX;
        else if (!strcmp(tok, "json")) formats |= F_JSON;
        else { fprintf(stderr, "moebench report: unknown format '%s' (md, csv, tex, json)\n", tok); return 2; }
      }
      if (!*v) { fprintf(stderr, "moebench report: --format needs a value\n"); return 2; }
      continue;
    }
    if (!strcmp(a, "--plot")) plot = 1;
    else if (!strcmp(a, "--matrix")) {
      if (i + 1 >= argc) { fprintf(stderr, "moebench report: --matrix needs a file\n"); return 2; }
      mfile = argv[++i];
    } else if (!strncmp(a, "--matrix=", 9)) mfile = a + 9;
    else if (a[0] == '-' && a[1]) { fprintf(stderr, "moebench report: unknown option '%s'\n%s", a, report_usage); return 2; }
    else if (!dir) dir = a;
    else { fprintf(stderr, "moebench report: one directory at a time\n"); return 2; }
  }
  if (!dir) { fputs(report_usage, stderr); return 2; }
  if (!formats) formats = F_MD;
  char p[4200];
  struct stat st;
  snprintf(p, sizeof p, "%s/cells", dir);
  if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) return report_dir(dir, mfile, formats, plot);
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) { fprintf(stderr, "moebench report: %s: not a directory\n", dir); return 2; }
  if (mfile) {
    /* a results root and an explicit matrix: its NAME directory */
    int rc;
    mb_matrix *m = mb_matrix_load_stderr(mfile, &rc);
    if (!m) return rc;
    snprintf(p, sizeof p, "%s/%s", dir, m->name);
    mb_matrix_free(m);
    return report_dir(p, mfile, formats, plot);
  }
  /* a results root: every NAME/ with a stored matrix, in name order */
  char **names = NULL;
  size_t n = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s/matrix.yaml", dir, e->d_name);
    if (access(p, R_OK)) continue;
    names = realloc(names, (n + 1) * sizeof *names);
    if (!names || !(names[n] = strdup(e->d_name))) mb_oom(0);
    n++;
  }
  if (d) closedir(d);
  if (!n) { fprintf(stderr, "moebench report: %s: no NAME/matrix.yaml found (run `moebench run` first)\n", dir); return 2; }
  for (size_t i = 0; i + 1 < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) { char *t = names[i]; names[i] = names[j]; names[j] = t; }
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    int r = report_dir(p, NULL, formats, plot);
    if (r > rc) rc = r;
    free(names[i]);
  }
  free(names);
  return rc;
}
