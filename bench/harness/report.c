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
#include "power.h"
#include "report.h"
#include "report_int.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/stats.h"
#include "moe/version.h"
#include "results.h"
#include "verbs.h"

enum { F_MD = 1, F_CSV = 2, F_TEX = 4, F_JSON = 8, F_HTML = 16 };

typedef struct {
  const mb_matrix *m;
  const char *dir;         /* the matrix's results directory */
  char repdir[4200];
  mb_rfile *rf;            /* (cells) */
  int *status;             /* (cells): 0 missing, 1 ok, 2 failed, 3 corrupt, 4 diverged */
  size_t nok, nfailed, nmissing, ncorrupt, ndiverged;
  int bad;                 /* an output could not be written */
} store;

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

void mb_rep_label(mb_buf *b, char **keys, char **vals, size_t nk, const char *none)
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
  g->nstats = 0;
  for (size_t q = 0; q < t->nstats; q++) g->stats[g->nstats++] = t->stats[q];
  g->power = t->paired && !t->reach;
  if (!g->power) return;
  int has_sd = 0;
  for (size_t q = 0; q < t->nstats; q++) if (t->stats[q] == MB_S_SD) has_sd = 1;
  if (!has_sd) g->stats[g->nstats++] = MB_S_SD;
  g->stats[g->nstats++] = X_MDE;
  g->stats[g->nstats++] = X_P;
  g->stats[g->nstats++] = X_PHOLM;
  g->stats[g->nstats++] = X_HOLM;
  if (!isnan(t->power_effect)) g->stats[g->nstats++] = X_NFOR;
  size_t k = g->nr * g->nc;
  g->mde = xcalloc(k, sizeof *g->mde);
  g->p = xcalloc(k, sizeof *g->p);
  g->padj = xcalloc(k, sizeof *g->padj);
  g->nfor = xcalloc(k, sizeof *g->nfor);
  for (size_t i = 0; i < k; i++) {
    const moe_stats_summary *sm = &g->sum[i];
    g->mde[i] = g->p[i] = g->padj[i] = g->nfor[i] = NAN;
    /* the baseline row (each cell minus itself) is no comparison */
    if (sm->n < 2 || (sm->sd == 0 && sm->mean == 0)) continue;
    g->mde[i] = sm->sd * mb_power_mde((double)sm->n, MB_ALPHA, MB_POWER);
    g->p[i] = mb_power_pvalue(sm->mean, sm->sd, sm->n);
    if (!isnan(t->power_effect) && sm->sd > 0) g->nfor[i] = ceil(mb_power_n_for(t->power_effect / sm->sd, MB_ALPHA, MB_POWER));
    else if (!isnan(t->power_effect)) g->nfor[i] = 2;
  }
}

/* Holm over every comparison of the paired tables of one family (a
 * table's `family`, else its name). */
static void holm_families(const mb_matrix *m, grid *gs)
{
  int *done = xcalloc(m->ntables, sizeof *done);
  for (size_t a = 0; a < m->ntables; a++) {
    if (!gs[a].power || done[a]) continue;
    const char *fam = m->tables[a].family ? m->tables[a].family : m->tables[a].name;
    size_t total = 0;
    for (size_t b = a; b < m->ntables; b++) {
      const char *fb = m->tables[b].family ? m->tables[b].family : m->tables[b].name;
      if (gs[b].power && !strcmp(fam, fb)) total += gs[b].nr * gs[b].nc;
    }
    double *p = xcalloc(total, sizeof *p), *adj = xcalloc(total, sizeof *adj);
    size_t k = 0, members = 0;
    for (size_t b = a; b < m->ntables; b++) {
      const char *fb = m->tables[b].family ? m->tables[b].family : m->tables[b].name;
      if (!gs[b].power || strcmp(fam, fb)) continue;
      for (size_t i = 0; i < gs[b].nr * gs[b].nc; i++) { p[k++] = gs[b].p[i]; if (!isnan(gs[b].p[i])) members++; }
    }
    mb_power_holm(p, total, adj);
    k = 0;
    for (size_t b = a; b < m->ntables; b++) {
      const char *fb = m->tables[b].family ? m->tables[b].family : m->tables[b].name;
      if (!gs[b].power || strcmp(fam, fb)) continue;
      for (size_t i = 0; i < gs[b].nr * gs[b].nc; i++) gs[b].padj[i] = adj[k++];
      gs[b].nfamily = members;
      done[b] = 1;
    }
    free(p);
    free(adj);
  }
  free(done);
}

static void grid_free(grid *g)
{
  groups_free(g->rows, g->nr);
  groups_free(g->cols, g->nc);
  free(g->sum);
  free(g->mde); free(g->p); free(g->padj); free(g->nfor);
}

void mb_rep_stat_name(mb_buf *b, const mb_table *t, int stat)
{
  switch (stat) {
  case X_MDE: mb_buf_puts(b, "mde80"); break;
  case X_P: mb_buf_puts(b, "p"); break;
  case X_PHOLM: mb_buf_puts(b, "p_holm"); break;
  case X_HOLM: mb_buf_puts(b, "holm"); break;
  case X_NFOR: mb_buf_printf(b, "n for %.4g", t->power_effect); break;
  default: mb_buf_puts(b, mb_stat_names[stat]);
  }
}

/* Text of statistic stat of grid entry i (md, tex, brief). */
void mb_rep_cell_text(mb_buf *b, const grid *g, size_t i, int stat)
{
  const moe_stats_summary *sm = &g->sum[i];
  if (stat < MB_S_COUNT) { stat_text(b, sm, stat); return; }
  if (sm->n == 0) return;
  switch (stat) {
  case X_MDE: fmt_num(b, g->mde[i], 0); break;
  case X_P: fmt_num(b, g->p[i], 0); break;
  case X_PHOLM: fmt_num(b, g->padj[i], 0); break;
  case X_HOLM:
    if (isnan(g->p[i])) mb_buf_puts(b, "n/a");
    else mb_buf_puts(b, g->padj[i] < MB_ALPHA ? "differs" : g->p[i] < MB_ALPHA ? "raw only" : "-");
    break;
  case X_NFOR:
    if (isnan(g->nfor[i])) mb_buf_puts(b, "n/a");
    else if (isinf(g->nfor[i])) mb_buf_puts(b, ">1e7");
    else mb_buf_printf(b, "%.0f", g->nfor[i]);
    break;
  }
}

static void col_head(mb_buf *b, const mb_table *t, const grid *g, size_t j, int stat, int tex)
{
  mb_buf l;
  mb_buf_init(&l);
  if (t->ncols) { mb_rep_label(&l, t->cols, g->cols[j].val, t->ncols, ""); mb_buf_puts(&l, " "); }
  mb_rep_stat_name(&l, t, stat);
  if (tex) tex_escape(b, l.s); else md_escape(b, l.s);
  mb_buf_free(&l);
}

static void table_md(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "|");
  for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, " "); md_escape(b, t->rows[k]); mb_buf_puts(b, " |"); }
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) { mb_buf_puts(b, " "); col_head(b, t, g, j, g->stats[q], 0); mb_buf_puts(b, " |"); }
  mb_buf_puts(b, "\n|");
  for (size_t k = 0; k < t->nrows; k++) mb_buf_puts(b, "---|");
  for (size_t j = 0; j < g->nc * g->nstats; j++) mb_buf_puts(b, "---:|");
  mb_buf_puts(b, "\n");
  for (size_t r = 0; r < g->nr; r++) {
    mb_buf_puts(b, "|");
    for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, " "); md_escape(b, g->rows[r].val[k]); mb_buf_puts(b, " |"); }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < g->nstats; q++) {
        mb_buf_puts(b, " ");
        mb_rep_cell_text(b, g, r * g->nc + j, g->stats[q]);
        mb_buf_puts(b, " |");
      }
    mb_buf_puts(b, "\n");
  }
}

static void table_tex(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "\\begin{tabular}{");
  for (size_t k = 0; k < t->nrows; k++) mb_buf_puts(b, "l");
  for (size_t j = 0; j < g->nc * g->nstats; j++) mb_buf_puts(b, "r");
  mb_buf_puts(b, "}\n\\toprule\n");
  int first = 1;
  for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, first ? "" : " & "); first = 0; tex_escape(b, t->rows[k]); }
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) { mb_buf_puts(b, " & "); col_head(b, t, g, j, g->stats[q], 1); }
  mb_buf_puts(b, " \\\\\n\\midrule\n");
  for (size_t r = 0; r < g->nr; r++) {
    for (size_t k = 0; k < t->nrows; k++) { mb_buf_puts(b, k ? " & " : ""); tex_escape(b, g->rows[r].val[k]); }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < g->nstats; q++) {
        mb_buf c;
        mb_buf_init(&c);
        mb_buf_add(&c, "", 0);
        mb_rep_cell_text(&c, g, r * g->nc + j, g->stats[q]);
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
  mb_buf_puts(b, "metric,n,mean,sd,se,ci95_lo,ci95_hi,median,min,max,trmean");
  if (g->power) mb_buf_puts(b, isnan(t->power_effect) ? ",mde80,p,p_holm" : ",mde80,p,p_holm,n_for_effect");
  mb_buf_puts(b, "\n");
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
      if (g->power) {
        size_t k = r * g->nc + j;
        double w[] = {g->mde[k], g->p[k], g->padj[k], g->nfor[k]};
        for (int i = 0; i < (isnan(t->power_effect) ? 3 : 4); i++) {
          mb_buf_puts(b, ",");
          if (!isnan(w[i])) mb_buf_printf(b, "%.17g", w[i]);
        }
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
      if (g->power) {
        size_t k = r * g->nc + j;
        const char *pn[] = {"mde80", "p", "p_holm", "n_for_effect"};
        double w[] = {g->mde[k], g->p[k], g->padj[k], g->nfor[k]};
        for (int i = 0; i < (isnan(t->power_effect) ? 3 : 4); i++) { mb_buf_printf(b, ", \"%s\": ", pn[i]); json_num(b, w[i]); }
      }
      mb_buf_puts(b, "}");
    }
  mb_buf_puts(b, "\n]}\n");
}

/* What a table shows, after "Table NAME: ". */
void mb_rep_table_caption(mb_buf *b, const mb_table *t)
{
  if (t->reach)
    mb_buf_printf(b, "first %s index at which %s reaches its final value at %s=%s (same replication), "
                     "as a fraction of the run; replications that never reach it are left out (n)",
                  t->metric, t->metric, t->rows[0], t->paired);
  else if (t->paired)
    mb_buf_printf(b, "%s minus %s's value at %s=%s (paired by replication)", t->metric, t->metric, t->rows[0], t->paired);
  else
    mb_buf_printf(b, "%s over replications", t->metric);
}

/* The power columns of a paired table, explained (nothing for others). */
void mb_rep_table_legend(mb_buf *b, const mb_table *t, const grid *g)
{
  if (!t->paired || t->reach) return;
  mb_buf_printf(b, "sd: of the paired differences; mde80: the smallest difference a two-sided paired t test at "
                   "level 0.05 detects with power 0.8 at this n (noncentral t, sd as estimated); p: that test "
                   "of no difference; p_holm: Holm-adjusted over the %zu comparisons of family `%s`; holm: "
                   "differs (p_holm < 0.05), raw only (p < 0.05 only), or -",
                g->nfamily, t->family ? t->family : t->name);
  if (!isnan(t->power_effect))
    mb_buf_printf(b, "; n for %.6g: replications for power 0.8 against a difference of %.6g", t->power_effect,
                  t->power_effect);
  mb_buf_puts(b, ".");
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
  size_t nc = t->nrows + g->nc * g->nstats, nr = g->nr + 1;
  char **cell = xcalloc(nr * nc, sizeof *cell);
  for (size_t k = 0; k < t->nrows; k++) cell[k] = xdup(t->rows[k]);
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) {
      mb_buf h;
      mb_buf_init(&h);
      mb_buf_add(&h, "", 0);
      if (t->ncols) { for (size_t k = 0; k < t->ncols; k++) mb_buf_printf(&h, "%s%s", k ? "," : "", g->cols[j].val[k]); mb_buf_puts(&h, " "); }
      mb_rep_stat_name(&h, t, g->stats[q]);
      cell[t->nrows + j * g->nstats + q] = h.s;
    }
  for (size_t r = 0; r < g->nr; r++) {
    for (size_t k = 0; k < t->nrows; k++) cell[(r + 1) * nc + k] = xdup(g->rows[r].val[k]);
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < g->nstats; q++) {
        mb_buf v;
        mb_buf_init(&v);
        mb_buf_add(&v, "", 0);
        mb_rep_cell_text(&v, g, r * g->nc + j, g->stats[q]);
        cell[(r + 1) * nc + t->nrows + j * g->nstats + q] = v.s;
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

const char *mb_rep_ref_get(const mb_ref *r, const char *key)
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
    mb_rep_label(&l, f->by, g[i].val, f->nby, "all");
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

void mb_rep_rate_text(mb_buf *b, int ok, double slope, double lo, double hi)
{
  if (!ok) { mb_buf_puts(b, "n/a"); return; }
  mb_buf_printf(b, "%.3f", -slope);
  if (!isnan(lo)) mb_buf_printf(b, " [%.3f, %.3f]", -hi, -lo);
}

const char *const mb_rep_fit_head[6] = {"group", "loss", "rate [95% CI]", "rate on n/log n", "paper", "theory"};

/* The six cells of a fit row (each buffer initialised by the caller). */
void mb_rep_fit_cells(mb_buf c[6], const mb_fit *f, const fitrow *r)
{
  mb_buf_puts(&c[0], r->label);
  const char *loss = mb_rep_ref_get(r->ref, "loss");
  mb_buf_puts(&c[1], loss ? loss : f->y);
  mb_rep_rate_text(&c[2], r->ok, r->f.slope, r->lo, r->hi);
  mb_rep_rate_text(&c[3], r->ok_nlogn, r->fn.slope, r->lon, r->hin);
  const char *p = mb_rep_ref_get(r->ref, "paper"), *t = mb_rep_ref_get(r->ref, "theory");
  mb_buf_puts(&c[4], p ? p : "");
  mb_buf_puts(&c[5], t ? t : "");
}

static void fit_md(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n, int tex)
{
  const char *const *head = mb_rep_fit_head;
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
    mb_rep_fit_cells(c, f, &r[i]);
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

/* What a fit shows, after "Fit NAME: ". */
void mb_rep_fit_caption(mb_buf *b, const mb_fit *fit)
{
  mb_buf_printf(b, "rate = -slope of log(%s %s) on log %s",
                fit->ncenters > 1 ? "centre" : center_label[fit->ncenters ? fit->centers[0] : 0], fit->y, fit->x);
  if (fit->exclude) mb_buf_printf(b, "; cells with %s != 0 left out", fit->exclude);
  if (fit->ncenters > 1) {
    mb_buf_puts(b, "; centres: ");
    for (size_t q = 0; q < fit->ncenters; q++) mb_buf_printf(b, "%s%s", q ? ", " : "", center_label[fit->centers[q]]);
    mb_buf_puts(b, " (10%-trimmed)");
  }
  if (fit->bootstrap > 0) mb_buf_printf(b, " (95%% CI: %ld bootstrap resamples of the replications)", fit->bootstrap);
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
    const char *loss = mb_rep_ref_get(r[i].ref, "loss"), *p = mb_rep_ref_get(r[i].ref, "paper"), *t = mb_rep_ref_get(r[i].ref, "theory");
    row[nb] = xdup(loss ? loss : f->y);
    mb_buf rt;
    mb_buf_init(&rt);
    mb_buf_add(&rt, "", 0);
    mb_rep_rate_text(&rt, r[i].ok, r[i].f.slope, r[i].lo, r[i].hi);
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
    const char *loss = mb_rep_ref_get(r[i].ref, "loss"), *p = mb_rep_ref_get(r[i].ref, "paper"), *t = mb_rep_ref_get(r[i].ref, "theory");
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
    const char *loss = mb_rep_ref_get(r[i].ref, "loss"), *p = mb_rep_ref_get(r[i].ref, "paper"), *t = mb_rep_ref_get(r[i].ref, "theory");
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
  const char *tt = mb_rep_ref_get(t, "title");
  if (!tt) { mb_buf_puts(b, labeltext); return; }
  mb_buf_puts(b, tt);
  int open = 0;
  for (size_t q = 0; q < p->nby; q++) {
    if (mb_rep_ref_get(t, p->by[q])) continue;
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
    const char *l = mb_rep_ref_get(fr[q].ref, "loss");
    if (!l || (yname && strcmp(yname, l))) same_loss = 0;
    if (l && !yname) yname = l;
  }
  if (!same_loss) yname = p->y;
  mb_buf_printf(&dat, "# moebench report: plot %s of matrix %s: %s vs %s; columns: x mean low high n\n", p->name,
                m->name, p->y, p->x);
  for (size_t i = 0; i < ng; i++) {
    mb_buf l;
    mb_buf_init(&l);
    mb_rep_label(&l, p->by, g[i].val, p->nby, "all");
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
      const char *loss = row ? mb_rep_ref_get(row->ref, "loss") : NULL;
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
        const char *rv = mb_rep_ref_get(row->ref, lab[k]);
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
static size_t provenance_rows(const store *s, mb_prov_row **out)
{
  /* fields, and (third) whether the field is left out when no cell has it:
   * the data fingerprints that tasks reading data files record */
  static const char *const fields[][3] = {
    {"moebench", NULL, NULL}, {"git_commit", NULL, NULL}, {"git_commit", "tree", NULL}, {"compiler", NULL, NULL},
    {"cflags", NULL, NULL}, {"gsl", NULL, NULL}, {"blas", "name", NULL}, {"blas", "core", NULL},
    {"blas", "core_source", "opt"}, {"blas", "threads", NULL}, {"cpu", NULL, NULL}, {"hostname", NULL, NULL},
    {"os", NULL, NULL}, {"notes", "data_sha256", "opt"}, {"notes", "data_files", "opt"}};
  const mb_matrix *m = s->m;
  mb_prov_row *r = NULL;
  size_t n = 0;
  for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
    size_t first = n;
    int any = 0;
    for (size_t c = 0; c < m->ncells; c++) {
      if (s->status[c] != 1) continue;
      const int note = !strcmp(fields[f][0], "notes"), tree = fields[f][1] && !strcmp(fields[f][1], "tree");
      const mb_json *p = note ? s->rf[c].doc : mb_json_get(s->rf[c].doc, "provenance");
      const mb_json *v = mb_json_get(p, fields[f][0]);
      if (fields[f][1] && !tree) v = mb_json_get(v, fields[f][1]);
      const char *t = v && (v->type == MB_J_STR || v->type == MB_J_NUM) ? v->text : "(none)";
      if (tree) {   /* git describe --dirty: the source tree the binary was built from */
        size_t L = strlen(t);
        t = !strcmp(t, "(none)") || !strcmp(t, "unknown") ? "unknown"
            : L >= 6 && !strcmp(t + L - 6, "-dirty") ? "dirty (uncommitted changes)" : "clean";
      }
      if (strcmp(t, "(none)")) any = 1;
      size_t k = first;
      while (k < n && strcmp(r[k].value, t)) k++;
      if (k == n) {
        r = realloc(r, (n + 1) * sizeof *r);
        if (!r) mb_oom(0);
        snprintf(r[n].field, sizeof r[n].field, "%s%s%s", fields[f][0], fields[f][1] ? "." : "",
                 fields[f][1] ? fields[f][1] : "");
        r[n].value = t;
        r[n++].cells = 0;
      }
      r[k].cells++;
    }
    if (!any && fields[f][2]) n = first;
  }
  *out = r;
  return n;
}

static void provenance_md(store *s, const mb_prov_row *r, size_t n)
{
  mb_buf b;
  mb_buf_init(&b);
  mb_buf_printf(&b, "## Provenance of %s\n\n| field | value | cells |\n|---|---|---:|\n", s->m->name);
  for (size_t k = 0; k < n; k++) {
    mb_buf_printf(&b, "| %s | ", r[k].field);
    md_escape(&b, r[k].value);
    mb_buf_printf(&b, " | %zu |\n", r[k].cells);
  }
  /* Different OpenBLAS kernels give different bits: cells of one matrix
   * that ran on several (nodes of different CPUs, a job script without
   * OPENBLAS_CORETYPE) are not one reproducible run. */
  size_t ncores = 0;
  mb_buf w;
  mb_buf_init(&w);
  for (size_t k = 0; k < n; k++)
    if (!strcmp(r[k].field, "blas.core")) mb_buf_printf(&w, "%s%s: %zu cells", ncores++ ? ", " : "", r[k].value, r[k].cells);
  if (ncores > 1) {
    fprintf(stderr, "moebench report: warning: %s: the cells ran on %zu different BLAS cores (%s); "
            "their bits are not comparable: pin OPENBLAS_CORETYPE (moebench slurm does)\n", s->m->name, ncores, w.s);
    mb_buf_printf(&b, "\n**Warning:** the cells ran on %zu different BLAS cores; their bits are not comparable "
                  "(pin `OPENBLAS_CORETYPE`).\n", ncores);
  }
  mb_buf_free(&w);
  write_out(s, "provenance.md", &b);
  mb_buf_free(&b);
}

/* ---- claims ---- */

/* Each claim of m from its comparison in the grids gs (one per table). */
static mb_claim_res *claims_resolve(const mb_matrix *m, const grid *gs)
{
  mb_claim_res *out = xcalloc(m->nclaims, sizeof *out);
  for (size_t i = 0; i < m->nclaims; i++) {
    const mb_claim *q = &m->claims[i];
    mb_claim_res *c = &out[i];
    c->q = q;
    c->verdict = "unresolved";
    c->mean = c->lo = c->hi = NAN;
    size_t ti = 0;
    while (ti < m->ntables && strcmp(m->tables[ti].name, q->table)) ti++;
    if (ti == m->ntables) continue;   /* the parser refuses such a claim */
    const grid *g = &gs[ti];
    const moe_stats_summary *sm = NULL;
    for (size_t r = 0; r < g->nr; r++) {
      if (strcmp(g->rows[r].val[0], q->row)) continue;
      for (size_t j = 0; j < g->nc; j++) {
        int all = 1;
        for (size_t k = 0; k < q->column.n && all; k++)
          if (strcmp(g->cols[j].val[k], q->column.val[k])) all = 0;
        if (all) sm = &g->sum[r * g->nc + j];
      }
    }
    if (!sm || sm->n < 2 || isnan(sm->ci95_lo)) { c->n = sm ? sm->n : 0; continue; }
    c->n = sm->n;
    c->mean = sm->mean;
    c->lo = sm->ci95_lo;
    c->hi = sm->ci95_hi;
    const int below = c->hi < 0, above = c->lo > 0;
    if (q->expect == MB_EXPECT_LT0) c->verdict = below ? "confirmed" : above ? "refuted" : "unresolved";
    else if (q->expect == MB_EXPECT_GT0) c->verdict = above ? "confirmed" : below ? "refuted" : "unresolved";
    else c->verdict = below || above ? "confirmed" : "unresolved";
  }
  return out;
}

const char *const mb_rep_expect_text[] = {"< 0", "> 0", "!= 0"};

static void claims_md(mb_buf *b, const mb_claim_res *c, size_t n)
{
  mb_buf_puts(b, "### Claims\n\nEach claim is resolved from its comparison's 95% paired interval: confirmed when the "
                 "interval lies on the expected side of 0, refuted when it lies on the other side, else unresolved.\n\n"
                 "| claim | table | comparison | expected | n | mean | 95% CI | verdict |\n|---|---|---|---|---:|---:|---:|---|\n");
  for (size_t i = 0; i < n; i++) {
    const mb_claim *q = c[i].q;
    mb_buf_puts(b, "| ");
    md_escape(b, q->claim);
    mb_buf_puts(b, " | ");
    md_escape(b, q->table);
    mb_buf_puts(b, " | ");
    md_escape(b, q->row);
    for (size_t k = 0; k < q->column.n; k++) {
      mb_buf_printf(b, ", %s=", q->column.key[k]);
      md_escape(b, q->column.val[k]);
    }
    mb_buf_printf(b, " | %s | %zu | ", mb_rep_expect_text[q->expect], c[i].n);
    fmt_num(b, c[i].mean, 0);
    mb_buf_puts(b, " | ");
    if (isnan(c[i].lo)) mb_buf_puts(b, "n/a");
    else { mb_buf_puts(b, "["); fmt_num(b, c[i].lo, 0); mb_buf_puts(b, ", "); fmt_num(b, c[i].hi, 0); mb_buf_puts(b, "]"); }
    mb_buf_printf(b, " | %s |\n", c[i].verdict);
  }
  mb_buf_puts(b, "\n");
}

/* ---- driver ---- */

/* Load the result of every cell of m from dir/cells (s->repdir is kept). */
static void store_load(store *s, const mb_matrix *m, const char *dir, const char *who)
{
  char err[5000];
  char keep[sizeof s->repdir];
  memcpy(keep, s->repdir, sizeof keep);
  memset(s, 0, sizeof *s);
  memcpy(s->repdir, keep, sizeof keep);
  s->m = m;
  s->dir = dir;
  s->rf = xcalloc(m->ncells, sizeof *s->rf);
  s->status = xcalloc(m->ncells, sizeof *s->status);
  for (size_t c = 0; c < m->ncells; c++) {
    char p[4400];
    snprintf(p, sizeof p, "%s/cells/%s.json", dir, m->cells[c].id);
    int r = mb_rfile_load(p, &s->rf[c], err, sizeof err);
    if (r == 1) { fprintf(stderr, "%s: corrupt result, treated as missing: %s\n", who, err); s->status[c] = 3; s->ncorrupt++; }
    else if (r < 0) { s->status[c] = 0; s->nmissing++; }
    else if (strcmp(s->rf[c].id, m->cells[c].id)) {
      fprintf(stderr, "%s: %s: holds id %s, treated as missing\n", who, p, s->rf[c].id);
      s->status[c] = 3; s->ncorrupt++;
    } else if (s->rf[c].ok) { s->status[c] = 1; s->nok++; }
    else if (s->rf[c].diverged) { s->status[c] = 4; s->ndiverged++; }
    else { s->status[c] = 2; s->nfailed++; }
  }
}

/* Cells that name the same data (their `data` parameter, or the whole
 * matrix for a task without one) must have read the same bytes: their
 * "data_sha256" notes (mb_result_fingerprint) must agree. Returns the
 * number of conflicts, each named on stderr; cells without a fingerprint
 * (older results, tasks that read no files) are not compared. */
static int allow_mixed_data;
static size_t mixed_data(const store *s, const char *who)
{
  const mb_matrix *m = s->m;
  size_t nk = 0, bad = 0;
  const char **key = xcalloc(m->ncells + 1, sizeof *key), **fp = xcalloc(m->ncells + 1, sizeof *fp);
  size_t *first = xcalloc(m->ncells + 1, sizeof *first);
  for (size_t c = 0; c < m->ncells; c++) {
    if (s->status[c] != 1 && s->status[c] != 4) continue;
    const mb_json *notes = mb_json_get(s->rf[c].doc, "notes");
    const char *f = notes ? mb_json_str(notes, "data_sha256") : NULL;
    if (!f) continue;
    const char *k = mb_xcell_get(&m->cells[c], "data");
    if (!k) k = "";
    size_t i = 0;
    while (i < nk && strcmp(key[i], k)) i++;
    if (i == nk) { key[nk] = k; fp[nk] = f; first[nk++] = c; continue; }
    if (strcmp(fp[i], f)) {
      if (bad++ < 5)
        fprintf(stderr, "%s: cells %s and %s both read data '%s' but of different content (data_sha256 %.12s... vs "
                "%.12s...): not combined%s\n", who, m->cells[first[i]].id, m->cells[c].id, k, fp[i], f,
                allow_mixed_data ? " (--allow-mixed-data: combined anyway)" : "; --allow-mixed-data to combine them");
    }
  }
  free(key);
  free(fp);
  free(first);
  return bad;
}

static void store_free(store *s)
{
  for (size_t c = 0; c < s->m->ncells; c++) mb_rfile_free(&s->rf[c]);
  free(s->rf);
  free(s->status);
}

/* The record of a sequential run in dir (sequential.json) and the number
 * of replications it reached, or NULL (no record: 0; unreadable: -1 with
 * a message). */
static mb_json *seq_record(const char *dir, long *n, const char *who)
{
  char p[4200], err[5000];
  snprintf(p, sizeof p, "%s/sequential.json", dir);
  *n = 0;
  if (access(p, F_OK)) return NULL;
  mb_json *j = mb_json_load(p, err, sizeof err);
  double v;
  if (!j || strcmp(mb_json_str(j, "format") ? mb_json_str(j, "format") : "", MB_SEQ_FORMAT) ||
      !mb_json_as_double(mb_json_get(j, "replications"), &v) || !(v >= 1) || v > 1e6) {
    fprintf(stderr, "%s: %s: %s\n", who, j ? p : err, j ? "not a " MB_SEQ_FORMAT " record (or no replications in it)" : "unreadable");
    mb_json_free(j);
    *n = -1;
    return NULL;
  }
  *n = (long)v;
  return j;
}

/* The sequential run's record in Markdown. */
static void seq_md(mb_buf *b, const mb_json *j)
{
  double v;
  const mb_json *rounds = mb_json_get(j, "rounds");
  mb_buf_puts(b, "### Sequential replication (`moebench run --until-resolved`)\n\n");
  const char *st = mb_json_str(j, "stopped");
  mb_buf_printf(b, "Confidence sequence: %s. ", mb_json_str(j, "method") ? mb_json_str(j, "method") : "?");
  if (mb_json_as_double(mb_json_get(j, "half_width"), &v)) mb_buf_printf(b, "Target half-width %.6g; ", v);
  if (mb_json_as_double(mb_json_get(j, "max_replications"), &v)) mb_buf_printf(b, "at most %.0f replications; ", v);
  if (mb_json_as_double(mb_json_get(j, "replications"), &v))
    mb_buf_printf(b, "%s at %.0f replications after %zu round(s)%s%s.\n\n", st ? "stopped" : "in progress", v,
                  rounds ? rounds->n : 0, st ? ": " : "", st ? st : "");
  mb_buf_puts(b, "| round | n | comparison | pairs | mean | sd | 95% CS | half-width | resolved |\n"
                 "|---:|---:|---|---:|---:|---:|---:|---:|---|\n");
  for (size_t r = 0; rounds && r < rounds->n; r++) {
    const mb_json *rd = rounds->items[r], *cs = mb_json_get(rd, "comparisons");
    double rn = 0, nn = 0;
    mb_json_as_double(mb_json_get(rd, "round"), &rn);
    mb_json_as_double(mb_json_get(rd, "replications"), &nn);
    for (size_t k = 0; cs && k < cs->n; k++) {
      const mb_json *c = cs->items[k];
      double x[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
      const char *f[] = {"pairs", "mean", "sd", "cs_lo", "cs_hi", "half_width"};
      for (int i = 0; i < 6; i++) mb_json_as_double(mb_json_get(c, f[i]), &x[i]);
      mb_buf_printf(b, "| %.0f | %.0f | ", rn, nn);
      md_escape(b, mb_json_str(c, "comparison") ? mb_json_str(c, "comparison") : "?");
      mb_buf_printf(b, " | %.0f | ", x[0]);
      fmt_num(b, x[1], 0); mb_buf_puts(b, " | ");
      fmt_num(b, x[2], 0);
      if (isnan(x[5])) mb_buf_puts(b, " | unbounded | inf");   /* too few pairs yet */
      else {
        mb_buf_puts(b, " | [");
        fmt_num(b, x[3], 0); mb_buf_puts(b, ", ");
        fmt_num(b, x[4], 0); mb_buf_puts(b, "] | ");
        fmt_num(b, x[5], 0);
      }
      mb_buf_printf(b, " | %s |\n", mb_json_str(c, "resolved") ? mb_json_str(c, "resolved") : "?");
    }
  }
  mb_buf_puts(b, "\n");
}

/* Report the matrix whose results are in dir. With html, also its HTML:
 * report/report.html (formats & F_HTML) and its part of a joined page
 * appended to page (when given, with the matrix's name in *pagename). */
static int report_dir(const char *dir, const char *matrix_file, int formats, int plot, mb_buf *page, char **pagename)
{
  char mpath[4200], err[5000];
  if (matrix_file) snprintf(mpath, sizeof mpath, "%s", matrix_file);
  else snprintf(mpath, sizeof mpath, "%s/matrix.yaml", dir);
  int st;
  /* a sequential run decided its replication count: report those cells */
  long seqn;
  mb_json *seq = seq_record(dir, &seqn, "moebench report");
  if (seqn < 0) return 1;
  mb_matrix_set_replications(seqn);
  mb_matrix *m = mb_matrix_load_stderr(mpath, &st);
  mb_matrix_set_replications(0);
  if (!m) { mb_json_free(seq); return st; }
  store s;
  snprintf(s.repdir, sizeof s.repdir, "%s/report", dir);
  if (mb_mkdirs(s.repdir, err, sizeof err)) { fprintf(stderr, "moebench report: %s\n", err); mb_matrix_free(m); mb_json_free(seq); return 1; }
  store_load(&s, m, dir, "moebench report");
  fprintf(stderr, "moebench report: %s: %zu cells: %zu ok, %zu diverged, %zu failed, %zu missing, %zu corrupt\n",
          m->name, m->ncells, s.nok, s.ndiverged, s.nfailed, s.nmissing, s.ncorrupt);
  size_t nmixed = mixed_data(&s, "moebench report");
  if (nmixed && !allow_mixed_data) {
    fprintf(stderr, "moebench report: %s: %zu cell(s) read other data than cells of the same configuration: "
            "nothing written\n", m->name, nmixed);
    store_free(&s);
    mb_matrix_free(m);
    mb_json_free(seq);
    return 1;
  }

  /* summary.md: everything in Markdown, for doc/results.md */
  mb_buf sum;
  mb_buf_init(&sum);
  mb_buf_printf(&sum, "## %s\n\n", m->name);
  if (m->description) { md_escape(&sum, m->description); mb_buf_puts(&sum, "\n\n"); }
  mb_buf_printf(&sum, "Task `%s`, seed %llu, %zu cells (%ld replications): %zu ok, %zu diverged, %zu failed, %zu missing.\n\n",
                m->task->name, (unsigned long long)m->seed, m->ncells, m->replications, s.nok, s.ndiverged,
                s.nfailed, s.nmissing + s.ncorrupt);
  /* brief.txt: what a terminal shows (mb-bench.sh prints it) */
  mb_buf brief;
  mb_buf_init(&brief);
  mb_buf_printf(&brief, "%s: %zu cells: %zu ok, %zu diverged, %zu failed, %zu missing\n", m->name, m->ncells, s.nok,
                s.ndiverged, s.nfailed, s.nmissing + s.ncorrupt);
  if (m->description) {
    const char *d = m->description;
    mb_buf_printf(&brief, "%.*s%s\n", strlen(d) > BRIEF_COLS ? BRIEF_COLS - 3 : (int)strlen(d), d,
                  strlen(d) > BRIEF_COLS ? "..." : "");
  }
  static const char *ext[] = {"md", "csv", "tex", "json"};
  const int html = (formats & F_HTML) || page;
  mb_html h;
  if (html) {
    plot = 1;   /* a page shows the figures */
    mb_html_begin(&h, m, s.nok, s.ndiverged, s.nfailed, s.nmissing + s.ncorrupt);
  }
  grid *gs = xcalloc(m->ntables, sizeof *gs);
  for (size_t i = 0; i < m->ntables; i++) grid_build(&s, &m->tables[i], &gs[i]);
  holm_families(m, gs);
  if (seq) seq_md(&sum, seq);
  if (seq && html) mb_html_seq(&h, seq);
  if (m->nclaims) {
    mb_claim_res *cr = claims_resolve(m, gs);
    size_t k[3] = {0, 0, 0};
    for (size_t i = 0; i < m->nclaims; i++) k[cr[i].verdict[0] == 'c' ? 0 : cr[i].verdict[0] == 'r' ? 1 : 2]++;
    claims_md(&sum, cr, m->nclaims);
    mb_buf_printf(&brief, "Claims: %zu confirmed, %zu refuted, %zu unresolved (of %zu)\n", k[0], k[1], k[2], m->nclaims);
    if (html) mb_html_claims(&h, cr, m->nclaims);
    free(cr);
  }
  for (size_t i = 0; i < m->ntables; i++) {
    const mb_table *t = &m->tables[i];
    grid g = gs[i];
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
    mb_buf_printf(&sum, "### Table `%s`: ", t->name);
    mb_rep_table_caption(&sum, t);
    mb_buf_puts(&sum, "\n\n");
    size_t before = sum.n;
    mb_rep_table_legend(&sum, t, &g);
    if (sum.n > before) mb_buf_puts(&sum, "\n\n");
    table_md(&sum, t, &g);
    mb_buf pk;
    mb_buf_init(&pk);
    const size_t npk = pooled(&s, t->rows, t->nrows, t->cols, t->ncols, &pk);
    if (npk) {
      fprintf(stderr, "moebench report: note: table '%s' pools cells that differ in: %s\n", t->name, pk.s);
      mb_buf_printf(&sum, "\nPooled over the replications and over: %s.\n", pk.s);
    }
    if (html) mb_html_table(&h, t, &g, npk ? pk.s : NULL);
    mb_buf_free(&pk);
    mb_buf_puts(&sum, "\n");
    grid_free(&g);
  }
  free(gs);
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
    mb_buf_printf(&sum, "### Fit `%s`: ", fit->name);
    mb_rep_fit_caption(&sum, fit);
    mb_buf_puts(&sum, "\n\n");
    fit_md(&sum, fit, r, n, 0);
    for (size_t k = 0; k < n; k++)
      if (!r[k].ok) mb_buf_printf(&sum, "\n- %s: no fit (%s)", r[k].label, r[k].why);
    mb_buf pk;
    mb_buf_init(&pk);
    char *xkey[1] = {fit->x};
    const size_t npk = pooled(&s, fit->by, fit->nby, xkey, 1, &pk);
    if (npk) {
      fprintf(stderr, "moebench report: note: fit '%s' pools cells that differ in: %s\n", fit->name, pk.s);
      mb_buf_printf(&sum, "\nEach point pools the replications and: %s.\n", pk.s);
    }
    if (html) mb_html_fit(&h, fit, r, n, npk ? pk.s : NULL);
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
    for (size_t i = 0; i < m->nplots; i++) {
      const int before = rendered;
      plot_one(&s, &m->plots[i], gnuplot, &rendered);
      if (!html) continue;
      char svg[4600];
      snprintf(svg, sizeof svg, "%s/%s.svg", s.repdir, m->plots[i].name);
      mb_html_figure(&h, &m->plots[i], rendered > before ? svg : NULL,
                     !gnuplot ? "gnuplot not found" : rendered > before ? NULL : "gnuplot failed");
    }
    for (size_t i = 0; i < m->nplots; i++)
      if (rendered) mb_buf_printf(&sum, "![%s](%s.svg)\n\n", m->plots[i].name, m->plots[i].name);
    for (size_t i = 0; i < m->nplots; i++)
      mb_buf_printf(&brief, "%s %s/%s.%s\n", i ? "       " : "Figure:", s.repdir, m->plots[i].name, rendered ? "png" : "gp");
  }
  if (seq) {
    double v;
    const char *stp = mb_json_str(seq, "stopped");
    if (mb_json_as_double(mb_json_get(seq, "replications"), &v))
      mb_buf_printf(&brief, "Sequential: %s at %.0f replications%s%s (details in summary.md)\n", stp ? "stopped" : "in progress", v,
                    stp ? ": " : "", stp ? stp : "");
  }
  mb_buf_printf(&brief, "Tables: %s/summary.md (every table and fit; .csv/.tex/.json beside it)\n", s.repdir);
  write_out(&s, "brief.txt", &brief);
  write_out(&s, "summary.md", &sum);
  mb_prov_row *prov;
  size_t nprov = provenance_rows(&s, &prov);
  provenance_md(&s, prov, nprov);
  if (html) {
    mb_html_cells(&h, s.status, s.rf);
    mb_html_provenance(&h, prov, nprov);
    mb_buf body, out;
    mb_buf_init(&body);
    mb_html_finish(&h, brief.s ? brief.s : "", &body);
    if (formats & F_HTML) {
      mb_buf_init(&out);
      mb_html_page(&out, m->name, body.s ? body.s : "", NULL, 0);
      write_out(&s, "report.html", &out);
      mb_buf_free(&out);
    }
    if (page) {
      mb_buf_add(page, body.s ? body.s : "", body.n);
      *pagename = xdup(m->name);
    }
    mb_buf_free(&body);
  }
  free(prov);
  mb_buf_free(&brief);
  mb_buf_free(&sum);
  int rc = s.bad ? 1 : 0;
  store_free(&s);
  mb_matrix_free(m);
  mb_json_free(seq);
  return rc;
}

static const char report_usage[] =
  "usage: moebench report DIR... [--format md|csv|tex|json|html]... [--plot]\n"
  "                       [--matrix FILE] [--page FILE]\n"
  "Aggregate the results under DIR (a results root: every NAME/ in it with a\n"
  "matrix.yaml; or one NAME directory) into DIR/NAME/report/: one file per\n"
  "table and fit of the matrix in each format, summary.md, provenance.md, and with --plot\n"
  "gnuplot scripts (.gp, .dat) rendered to .png and .svg when gnuplot is found.\n"
  "  --format F   md (default), csv, tex, json or html (report.html: one\n"
  "               self-contained page with every table, fit and figure;\n"
  "               implies --plot); repeat or comma-separate\n"
  "  --plot       write plots\n"
  "  --matrix F   use matrix file F instead of the stored DIR/NAME/matrix.yaml\n"
  "  --allow-mixed-data  combine cells whose data fingerprints (data_sha256)\n"
  "               differ for the same `data`; without it such a report is refused\n"
  "  --page F     also write F: one HTML page of every matrix reported, with\n"
  "               a table of contents (several DIRs allowed)\n"
  "Exit status: 0 written, 1 an output could not be written or the cells read\n"
  "different data, 2 usage or validation error.\n";

/* The matrices of one DIR argument joined into the page (if any). */
typedef struct {
  mb_buf body;
  char **names;
  size_t n;
} pagebuf;

static int report_one(pagebuf *pg, const char *dir, const char *mfile, int formats, int plot)
{
  mb_buf *page = pg ? &pg->body : NULL;
  char *name = NULL;
  if (pg) {
    pg->names = realloc(pg->names, (pg->n + 1) * sizeof *pg->names);
    if (!pg->names) mb_oom(0);
  }
  int rc = report_dir(dir, mfile, formats, plot, page, &name);
  if (pg && name) pg->names[pg->n++] = name;
  return rc;
}

static int report_arg(pagebuf *pg, const char *dir, const char *mfile, int formats, int plot)
{
  char p[4200];
  struct stat st;
  snprintf(p, sizeof p, "%s/cells", dir);
  if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) return report_one(pg, dir, mfile, formats, plot);
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) { fprintf(stderr, "moebench report: %s: not a directory\n", dir); return 2; }
  if (mfile) {
    /* a results root and an explicit matrix: its NAME directory */
    int rc;
    mb_matrix *m = mb_matrix_load_stderr(mfile, &rc);
    if (!m) return rc;
    snprintf(p, sizeof p, "%s/%s", dir, m->name);
    mb_matrix_free(m);
    return report_one(pg, p, mfile, formats, plot);
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
    int r = report_one(pg, p, NULL, formats, plot);
    if (r > rc) rc = r;
    free(names[i]);
  }
  free(names);
  return rc;
}

int mb_verb_report(int argc, char **argv)
{
  const char *mfile = NULL, *pagefile = NULL;
  const char **dirs = NULL;
  size_t ndirs = 0;
  int formats = 0, plot = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(report_usage, stdout); return 0; }
    if (!strcmp(a, "--version")) { printf("moebench report %s (libmoe %s)\n", MOE_VERSION_STRING, moe_version()); return 0; }
  }
  dirs = xcalloc((size_t)argc, sizeof *dirs);
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
        else if (!strcmp(tok, "html")) formats |= F_HTML;
        else { fprintf(stderr, "moebench report: unknown format '%s' (md, csv, tex, json, html)\n", tok); free(dirs); return 2; }
      }
      if (!*v) { fprintf(stderr, "moebench report: --format needs a value\n"); free(dirs); return 2; }
      continue;
    }
    if (!strcmp(a, "--plot")) plot = 1;
    else if (!strcmp(a, "--allow-mixed-data")) allow_mixed_data = 1;
    else if (!strcmp(a, "--matrix") || !strcmp(a, "--page")) {
      if (i + 1 >= argc || !argv[i + 1][0]) {
        fprintf(stderr, "moebench report: %s needs a file\n", a);
        free(dirs);
        return 2;
      }
      if (a[2] == 'm') mfile = argv[++i]; else pagefile = argv[++i];
    } else if (!strncmp(a, "--matrix=", 9)) mfile = a + 9;
    else if (!strncmp(a, "--page=", 7)) pagefile = a + 7;
    else if (a[0] == '-' && a[1]) { fprintf(stderr, "moebench report: unknown option '%s'\n%s", a, report_usage); free(dirs); return 2; }
    else dirs[ndirs++] = a;
  }
  if (!ndirs) { fputs(report_usage, stderr); free(dirs); return 2; }
  if (ndirs > 1 && !pagefile) {
    fprintf(stderr, "moebench report: one directory at a time (several only with --page FILE)\n");
    free(dirs);
    return 2;
  }
  if (ndirs > 1 && mfile) { fprintf(stderr, "moebench report: --matrix needs a single directory\n"); free(dirs); return 2; }
  if (!formats) formats = F_MD;
  pagebuf pg = {{0}, NULL, 0};
  mb_buf_init(&pg.body);
  int rc = 0;
  for (size_t i = 0; i < ndirs; i++) {
    int r = report_arg(pagefile ? &pg : NULL, dirs[i], mfile, formats, plot);
    if (r > rc) rc = r;
  }
  if (pagefile && pg.n) {
    mb_buf out;
    char err[5000];
    mb_buf_init(&out);
    mb_html_page(&out, "moebench results", pg.body.s ? pg.body.s : "", pg.names, pg.n);
    if (out.oom || mb_write_atomic(pagefile, out.s ? out.s : "", out.n, err, sizeof err)) {
      fprintf(stderr, "moebench report: cannot write the page %s: %s\n", pagefile, out.oom ? "out of memory" : err);
      if (rc < 1) rc = 1;
    } else fprintf(stderr, "moebench report: wrote %s (%zu matri%s)\n", pagefile, pg.n, pg.n > 1 ? "ces" : "x");
    mb_buf_free(&out);
  } else if (pagefile) {
    fprintf(stderr, "moebench report: no matrix reported: %s not written\n", pagefile);
    if (rc < 1) rc = 1;
  }
  for (size_t i = 0; i < pg.n; i++) free(pg.names[i]);
  free(pg.names);
  mb_buf_free(&pg.body);
  free(dirs);
  return rc;
}

/* ---- comparisons for the sequential runner ---- */

size_t mb_report_comparisons(const mb_matrix *m, const char *dir, char *const *names, size_t k, double c, double w,
                             mb_comparison **out)
{
  store s;
  memset(&s, 0, sizeof s);
  store_load(&s, m, dir, "moebench run");
  mb_comparison *cs = NULL;
  size_t n = 0;
  for (size_t q = 0; q < k; q++)
    for (size_t i = 0; i < m->ntables; i++) {
      const mb_table *t = &m->tables[i];
      if (strcmp(t->name, names[q]) || !t->paired || t->reach) continue;
      grid g;
      grid_build(&s, t, &g);
      for (size_t r = 0; r < g.nr; r++) {
        if (!strcmp(g.rows[r].val[0], t->paired)) continue;   /* the baseline itself */
        for (size_t j = 0; j < g.nc; j++) {
          const moe_stats_summary *sm = &g.sum[r * g.nc + j];
          cs = realloc(cs, (n + 1) * sizeof *cs);
          if (!cs) mb_oom(0);
          mb_comparison *x = &cs[n++];
          mb_buf l;
          mb_buf_init(&l);
          mb_buf_printf(&l, "%s: %s=%s", t->name, t->rows[0], g.rows[r].val[0]);
          if (t->ncols) { mb_buf_puts(&l, ", "); mb_rep_label(&l, t->cols, g.cols[j].val, t->ncols, ""); }
          x->label = l.s ? l.s : xdup("");
          x->n = sm->n;
          x->mean = sm->n ? sm->mean : NAN;
          x->sd = sm->n >= 2 ? sm->sd : NAN;
          x->half_width = sm->n >= 2 ? mb_cs_tmix_halfwidth(sm->n, sm->sd, c, MB_ALPHA) : INFINITY;
          x->lo = x->mean - x->half_width;
          x->hi = x->mean + x->half_width;
          if (x->lo > 0 || x->hi < 0) x->resolved = "excludes 0";
          else if (x->half_width <= w) x->resolved = "narrow";
          else x->resolved = "no";
        }
      }
      grid_free(&g);
    }
  store_free(&s);
  *out = cs;
  return n;
}

void mb_comparisons_free(mb_comparison *c, size_t n)
{
  for (size_t i = 0; i < n; i++) free(c[i].label);
  free(c);
}

/* ---- plan: replications and CPU from a pilot ---- */

static const char plan_usage[] =
  "usage: moebench plan MATRIX --pilot DIR [--half-width W | --effect X] [--format md|csv|json]\n"
  "From a pilot run of MATRIX (DIR: its results root or its NAME directory;\n"
  "at least 2 replications per cell), for every comparison of MATRIX's paired\n"
  "tables: the paired sd, the replications a target needs, and the CPU time\n"
  "they imply (the pilot's recorded cpu_s of the two cells of a pair).\n"
  "  --half-width W  95% interval half-width W: fixed-n t interval, and the\n"
  "                  confidence sequence `run --until-resolved` stops on\n"
  "  --effect X      a difference X (metric units) at power 0.8, two-sided 0.05\n"
  "Default: the matrix's sequential half_width, and each table's power effect.\n"
  "Exit status: 0 written, 1 no usable pilot results, 2 usage or validation error.\n";

typedef struct {
  char *label;
  size_t n;
  double mean, sd, mde, cpu_pair;   /* cpu_pair: mean CPU s of (cell + baseline) per replication */
  long n_t, n_cs;                   /* half-width target: fixed-n t, confidence sequence (0: > 1e6) */
  double n_effect, effect;          /* effect target (NaN: none) */
} planrow;

static double cell_cpu(const store *s, size_t c)
{
  double v;
  if (s->status[c] != 1) return NAN;
  const mb_json *t = mb_json_get(mb_json_get(s->rf[c].doc, "timing"), "cpu_s");
  return t && mb_json_as_double(t, &v) && v >= 0 ? v : NAN;
}

static void plan_num(mb_buf *b, double v, int f)
{
  if (isnan(v)) { mb_buf_puts(b, f == F_JSON ? "null" : f == F_CSV ? "" : "n/a"); return; }
  if (f == F_MD) fmt_num(b, v, 0);
  else mb_buf_printf(b, "%.17g", v);
}

static void plan_count(mb_buf *b, double v, int f)
{
  if (isnan(v)) plan_num(b, v, f);
  else if (isinf(v) || v > 1e6) mb_buf_puts(b, f == F_JSON ? "null" : f == F_CSV ? "" : ">1e6");
  else mb_buf_printf(b, "%.0f", v);
}

int mb_verb_plan(int argc, char **argv)
{
  const char *file = NULL, *pilot = NULL;
  double w = NAN, effect = NAN;
  int fmt = F_MD;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(plan_usage, stdout); return 0; }
    if (!strcmp(a, "--version")) { printf("moebench plan %s (libmoe %s)\n", MOE_VERSION_STRING, moe_version()); return 0; }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    int which = 0;
    if (!strcmp(a, "--pilot")) which = 1;
    else if (!strcmp(a, "--half-width")) which = 2;
    else if (!strcmp(a, "--effect")) which = 3;
    else if (!strcmp(a, "--format")) which = 4;
    if (which) {
      if (i + 1 >= argc) { fprintf(stderr, "moebench plan: %s needs a value\n", a); return 2; }
      v = argv[++i];
    }
    char *end;
    if (which == 1) pilot = v;
    else if (which == 2 || which == 3) {
      double d = strtod(v, &end);
      if (end == v || *end || !(d > 0) || !isfinite(d)) { fprintf(stderr, "moebench plan: %s must be a positive number, got '%s'\n", a, v); return 2; }
      if (which == 2) w = d; else effect = d;
    } else if (which == 4) {
      if (!strcmp(v, "md")) fmt = F_MD;
      else if (!strcmp(v, "csv")) fmt = F_CSV;
      else if (!strcmp(v, "json")) fmt = F_JSON;
      else { fprintf(stderr, "moebench plan: unknown format '%s' (md, csv, json)\n", v); return 2; }
    } else if (a[0] == '-' && a[1]) { fprintf(stderr, "moebench plan: unknown option '%s'\n%s", a, plan_usage); return 2; }
    else if (!file) file = a;
    else { fprintf(stderr, "moebench plan: one matrix file at a time\n"); return 2; }
  }
  if (!file || !pilot) { fputs(plan_usage, stderr); return 2; }
  int st;
  mb_matrix *m = mb_matrix_load_stderr(file, &st);
  if (!m) return st;
  if (isnan(w) && m->sequential.set) w = m->sequential.half_width;
  int any_effect = !isnan(effect);
  for (size_t i = 0; i < m->ntables; i++) if (!isnan(m->tables[i].power_effect)) any_effect = 1;
  if (isnan(w) && !any_effect) {
    fprintf(stderr, "moebench plan: no target: give --half-width W or --effect X (or put sequential: or power: {effect: X} in %s)\n", file);
    mb_matrix_free(m);
    return 2;
  }
  /* the pilot: DIR/NAME or DIR itself; its replication count from its
   * stored matrix or sequential record, so every pilot pair is found */
  char dir[4200], p[4400];
  snprintf(p, sizeof p, "%s/cells", pilot);
  if (access(p, F_OK) == 0) snprintf(dir, sizeof dir, "%s", pilot);
  else snprintf(dir, sizeof dir, "%s/%s", pilot, m->name);
  snprintf(p, sizeof p, "%s/cells", dir);
  if (access(p, F_OK)) {
    fprintf(stderr, "moebench plan: %s: no pilot results (neither %s/cells nor %s/%s/cells)\n", pilot, pilot, pilot, m->name);
    mb_matrix_free(m);
    return 2;
  }
  long reps = m->replications, seqn;
  mb_json *seq = seq_record(dir, &seqn, "moebench plan");
  mb_json_free(seq);
  if (seqn > reps) reps = seqn;
  snprintf(p, sizeof p, "%s/matrix.yaml", dir);
  mb_matrix *pm = NULL;
  mb_buf msgs;
  mb_buf_init(&msgs);
  if (access(p, R_OK) == 0 && mb_matrix_load(p, &pm, &msgs) == 0 && pm->replications > reps) reps = pm->replications;
  mb_matrix_free(pm);
  mb_buf_free(&msgs);
  const double c = m->sequential.set
                     ? mb_cs_tmix_c(MB_ALPHA, fmax(2, floor(sqrt((double)m->file_replications * (double)m->sequential.max_replications))))
                     : NAN;
  mb_matrix_free(m);
  mb_matrix_set_replications(reps);
  m = mb_matrix_load_stderr(file, &st);
  mb_matrix_set_replications(0);
  if (!m) return st;
  store s;
  memset(&s, 0, sizeof s);
  store_load(&s, m, dir, "moebench plan");
  planrow *rows = NULL;
  size_t nrow = 0, thin = 0;
  for (size_t i = 0; i < m->ntables; i++) {
    const mb_table *t = &m->tables[i];
    if (!t->paired || t->reach) continue;
    grid g;
    grid_build(&s, t, &g);
    double eff = !isnan(effect) ? effect : t->power_effect;
    for (size_t r = 0; r < g.nr; r++) {
      if (!strcmp(g.rows[r].val[0], t->paired)) continue;
      for (size_t j = 0; j < g.nc; j++) {
        const moe_stats_summary *sm = &g.sum[r * g.nc + j];
        rows = realloc(rows, (nrow + 1) * sizeof *rows);
        if (!rows) mb_oom(0);
        planrow *x = &rows[nrow++];
        mb_buf l;
        mb_buf_init(&l);
        mb_buf_printf(&l, "%s: %s=%s", t->name, t->rows[0], g.rows[r].val[0]);
        if (t->ncols) { mb_buf_puts(&l, ", "); mb_rep_label(&l, t->cols, g.cols[j].val, t->ncols, ""); }
        x->label = l.s;
        x->n = sm->n;
        x->mean = sm->n ? sm->mean : NAN;
        x->sd = sm->n >= 2 ? sm->sd : NAN;
        x->mde = sm->n >= 2 ? sm->sd * mb_power_mde((double)sm->n, MB_ALPHA, MB_POWER) : NAN;
        x->effect = eff;
        x->n_effect = NAN;
        x->n_t = x->n_cs = -1;
        if (sm->n < 2) { thin++; }
        else {
          if (!isnan(eff)) x->n_effect = sm->sd > 0 ? ceil(mb_power_n_for(eff / sm->sd, MB_ALPHA, MB_POWER)) : 2;
          if (!isnan(w)) {
            x->n_t = mb_power_n_halfwidth(sm->sd, w, MB_ALPHA, 1000000);
            double cc = isnan(c) ? mb_cs_tmix_c(MB_ALPHA, x->n_t > 2 ? (double)x->n_t : 2) : c;
            x->n_cs = mb_cs_tmix_n_halfwidth(sm->sd, w, cc, MB_ALPHA, 1000000);
          }
        }
        /* CPU of a pair: this row's cell and its baseline, per replication */
        double cpu = 0;
        size_t nc = 0;
        for (size_t a = 0; a < g.rows[r].n; a++) {
          size_t cell = g.rows[r].cell[a];
          int in = 0;
          for (size_t b = 0; b < g.cols[j].n && !in; b++) if (g.cols[j].cell[b] == cell) in = 1;
          if (!in) continue;
          long bc = baseline_cell(&s, t, cell);
          double u = cell_cpu(&s, cell), v = bc >= 0 ? cell_cpu(&s, (size_t)bc) : NAN;
          if (isnan(u) || isnan(v)) continue;
          cpu += u + v;
          nc++;
        }
        x->cpu_pair = nc ? cpu / (double)nc : NAN;
      }
    }
    grid_free(&g);
  }
  /* the whole matrix: CPU per replication (all cells) from the pilot */
  double all = 0;
  size_t nall = 0;
  for (size_t cidx = 0; cidx < m->ncells; cidx++) {
    double u = cell_cpu(&s, cidx);
    if (!isnan(u)) { all += u; nall++; }
  }
  double per_rep = nall ? all / (double)nall * (double)m->ncells / (double)reps : NAN;
  int rc = 0;
  if (!nrow) { fprintf(stderr, "moebench plan: %s has no paired tables (paired: without reach): nothing to plan\n", file); rc = 2; }
  else if (thin == nrow) {
    fprintf(stderr, "moebench plan: %s: fewer than 2 pilot pairs in every comparison: run the pilot with replications >= 2\n", dir);
    rc = 1;
  }
  double need_max = 0;
  mb_buf b;
  mb_buf_init(&b);
  if (!rc && fmt == F_MD) {
    mb_buf_printf(&b, "# Plan for %s from the pilot in %s (%ld replications scanned)\n\n", m->name, dir, reps);
    mb_buf_puts(&b, "| comparison | pilot n | mean | sd | mde80 at pilot n |");
    if (!isnan(w)) mb_buf_printf(&b, " n: t half-width %.4g | n: CS half-width %.4g |", w, w);
    if (any_effect) mb_buf_puts(&b, " effect | n: power 0.8 |");
    mb_buf_puts(&b, " CPU s per pair | CPU s at the largest n |\n|---|---:|---:|---:|---:|");
    if (!isnan(w)) mb_buf_puts(&b, "---:|---:|");
    if (any_effect) mb_buf_puts(&b, "---:|---:|");
    mb_buf_puts(&b, "---:|---:|\n");
  } else if (!rc && fmt == F_CSV) {
    mb_buf_puts(&b, "comparison,pilot_n,mean,sd,mde80,half_width,n_t_half_width,n_cs_half_width,effect,n_effect,cpu_s_pair,cpu_s_at_n\n");
  } else if (!rc) {
    mb_buf_printf(&b, "{\"plan\": ");
    mb_buf_json_str(&b, m->name);
    mb_buf_puts(&b, ", \"pilot\": ");
    mb_buf_json_str(&b, dir);
    mb_buf_printf(&b, ", \"replications_scanned\": %ld, \"comparisons\": [", reps);
  }
  for (size_t i = 0; !rc && i < nrow; i++) {
    const planrow *x = &rows[i];
    double big = NAN;   /* the largest n any target asks */
    if (x->n_t > 0) big = (double)x->n_t;
    if (x->n_cs > 0 && !(big >= (double)x->n_cs)) big = (double)x->n_cs;
    if (x->n_cs == 0 || x->n_t == 0) big = INFINITY;
    if (!isnan(x->n_effect) && !(big >= x->n_effect)) big = x->n_effect;
    if (isfinite(big) && big > need_max) need_max = big;
    double cpu_n = isfinite(big) ? big * x->cpu_pair : NAN;
    double nt = x->n_t > 0 ? (double)x->n_t : x->n_t == 0 ? INFINITY : NAN;
    double ncs = x->n_cs > 0 ? (double)x->n_cs : x->n_cs == 0 ? INFINITY : NAN;
    if (fmt == F_MD) {
      mb_buf_puts(&b, "| ");
      md_escape(&b, x->label);
      mb_buf_printf(&b, " | %zu | ", x->n);
      plan_num(&b, x->mean, fmt); mb_buf_puts(&b, " | ");
      plan_num(&b, x->sd, fmt); mb_buf_puts(&b, " | ");
      plan_num(&b, x->mde, fmt); mb_buf_puts(&b, " |");
      if (!isnan(w)) { mb_buf_puts(&b, " "); plan_count(&b, nt, fmt); mb_buf_puts(&b, " | "); plan_count(&b, ncs, fmt); mb_buf_puts(&b, " |"); }
      if (any_effect) { mb_buf_puts(&b, " "); plan_num(&b, x->effect, fmt); mb_buf_puts(&b, " | "); plan_count(&b, x->n_effect, fmt); mb_buf_puts(&b, " |"); }
      mb_buf_puts(&b, " "); plan_num(&b, x->cpu_pair, fmt); mb_buf_puts(&b, " | ");
      plan_num(&b, cpu_n, fmt); mb_buf_puts(&b, " |\n");
    } else if (fmt == F_CSV) {
      csv_field(&b, x->label);
      mb_buf_printf(&b, ",%zu,", x->n);
      double v[] = {x->mean, x->sd, x->mde, w};
      for (int k = 0; k < 4; k++) { plan_num(&b, v[k], fmt); mb_buf_puts(&b, ","); }
      plan_count(&b, nt, fmt); mb_buf_puts(&b, ",");
      plan_count(&b, ncs, fmt); mb_buf_puts(&b, ",");
      plan_num(&b, x->effect, fmt); mb_buf_puts(&b, ",");
      plan_count(&b, x->n_effect, fmt); mb_buf_puts(&b, ",");
      plan_num(&b, x->cpu_pair, fmt); mb_buf_puts(&b, ",");
      plan_num(&b, cpu_n, fmt); mb_buf_puts(&b, "\n");
    } else {
      mb_buf_puts(&b, i ? ",\n  {\"comparison\": " : "\n  {\"comparison\": ");
      mb_buf_json_str(&b, x->label);
      mb_buf_printf(&b, ", \"pilot_n\": %zu", x->n);
      const char *nm[] = {"mean", "sd", "mde80", "half_width"};
      double v[] = {x->mean, x->sd, x->mde, w};
      for (int k = 0; k < 4; k++) { mb_buf_printf(&b, ", \"%s\": ", nm[k]); plan_num(&b, v[k], fmt); }
      mb_buf_puts(&b, ", \"n_t_half_width\": "); plan_count(&b, nt, fmt);
      mb_buf_puts(&b, ", \"n_cs_half_width\": "); plan_count(&b, ncs, fmt);
      mb_buf_puts(&b, ", \"effect\": "); plan_num(&b, x->effect, fmt);
      mb_buf_puts(&b, ", \"n_effect\": "); plan_count(&b, x->n_effect, fmt);
      mb_buf_puts(&b, ", \"cpu_s_pair\": "); plan_num(&b, x->cpu_pair, fmt);
      mb_buf_puts(&b, ", \"cpu_s_at_n\": "); plan_num(&b, cpu_n, fmt);
      mb_buf_puts(&b, "}");
    }
  }
  if (!rc && fmt == F_MD) {
    mb_buf_printf(&b, "\nThe whole matrix (%zu cells at %ld replications) took ", m->ncells, reps);
    plan_num(&b, per_rep, fmt);
    mb_buf_printf(&b, " CPU s per replication in the pilot; at the largest n above (%.0f) it needs ", need_max);
    plan_num(&b, per_rep * need_max, fmt);
    mb_buf_printf(&b, " CPU s (%.3g CPU hours), %.0f replications more than the pilot's %ld.\n", per_rep * need_max / 3600,
                  need_max > (double)reps ? need_max - (double)reps : 0, reps);
    mb_buf_printf(&b, "\nn: t half-width: the fixed-n 95%% t interval; n: CS half-width: the anytime-valid confidence "
                      "sequence `moebench run --until-resolved` stops on%s; n: power 0.8: two-sided paired t at 0.05 "
                      "(noncentral t). All from the pilot's sd, itself uncertain at pilot n.\n",
                  isnan(c) ? " (tuned at the t interval's n)" : "");
    if (thin) mb_buf_printf(&b, "\n%zu comparison(s) had fewer than 2 pilot pairs (n/a).\n", thin);
  } else if (!rc && fmt == F_JSON) {
    mb_buf_puts(&b, "\n], \"cpu_s_per_replication\": ");
    plan_num(&b, per_rep, fmt);
    mb_buf_printf(&b, ", \"largest_n\": %.0f, \"cpu_s_at_largest_n\": ", need_max);
    plan_num(&b, per_rep * need_max, fmt);
    mb_buf_puts(&b, "}\n");
  }
  if (!rc) fwrite(b.s ? b.s : "", 1, b.n, stdout);
  mb_buf_free(&b);
  for (size_t i = 0; i < nrow; i++) free(rows[i].label);
  free(rows);
  store_free(&s);
  mb_matrix_free(m);
  return rc;
}
