/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report.c — `moebench report`: tables, rate fits and plots from the
 * result files of a matrix. This file reads the results, groups cells,
 * formats numbers, and writes provenance, claims and the report's files;
 * the tables are in report_table.c, the fits in report_fit.c, the plots
 * in report_plot.c, `moebench plan` in report_plan.c (report_int.h).
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
#include <unistd.h>

#include "matrix.h"
#include "power.h"
#include "report.h"
#include "report_int.h"
#include "moe/stats.h"
#include "moe/version.h"
#include "results.h"
#include "verbs.h"

/* Groups of cells sharing the values of keys, ordered by the first
 * appearance (in expansion order) of each key's value, key by key. */
static size_t nkeys_cmp;
static int group_cmp(const void *a, const void *b)
{
  const group *x = a, *y = b;
  for (size_t k = 0; k < nkeys_cmp; k++)
    if (x->rank[k] != y->rank[k])
      return x->rank[k] < y->rank[k] ? -1 : 1;
  return 0;
}

group *mb_rep_group_cells(const store *s, char **keys, size_t nk, size_t *ng)
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
        if (strcmp(g[j].val[k], mb_xcell_get(&m->cells[c], keys[k])))
          break;
      if (k == nk)
        break;
    }
    if (j == n) {
      g = realloc(g, (n + 1) * sizeof *g);
      if (!g)
        mb_oom(0);
      g[n].val = xcalloc(nk, sizeof *g[n].val);
      g[n].rank = xcalloc(nk, sizeof *g[n].rank);
      g[n].cell = xcalloc(m->ncells, sizeof *g[n].cell);
      g[n].n = 0;
      for (size_t k = 0; k < nk; k++) {
        g[n].val[k] = (char *)mb_xcell_get(&m->cells[c], keys[k]);
        /* rank = first cell index holding this value of key k */
        size_t r = 0;
        while (strcmp(mb_xcell_get(&m->cells[r], keys[k]), g[n].val[k]))
          r++;
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

void mb_rep_groups_free(group *g, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(g[i].val);
    free(g[i].rank);
    free(g[i].cell);
  }
  free(g);
}

void mb_rep_label(mb_buf *b, char **keys, char **vals, size_t nk, const char *none)
{
  if (!nk) {
    mb_buf_puts(b, none);
    return;
  }
  for (size_t k = 0; k < nk; k++)
    mb_buf_printf(b, "%s%s=%s", k ? ", " : "", keys[k], vals[k]);
}

/* Metric values of the ok cells among cells[0..n) (and in mask if given). */
size_t mb_rep_values(const store *s, const size_t *cells, size_t n, const char *metric,
                     const int *mask, double *out)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t c = cells[i];
    double v;
    if (mask && !mask[c])
      continue;
    if (s->status[c] != 1 || !mb_rfile_metric(&s->rf[c], metric, &v) || !isfinite(v))
      continue;
    out[k++] = v;
  }
  return k;
}

/* ---- metric families (NAME@X: a metric at index X, e.g. a training step
 * or a layer) and paired values ---- */

static int is_family(const char *metric) { return metric[0] && metric[strlen(metric) - 1] == '@'; }

/* The (index, value) pairs of family fam in a result, sorted by index;
 * returns how many (finite values only). *out is malloc'd (free it). */
size_t mb_rep_family_points(const mb_rfile *rf, const char *fam, double **out)
{
  size_t L = strlen(fam), n = 0;
  double *p = xcalloc(2 * rf->nm + 2, sizeof *p);
  for (size_t i = 0; i < rf->nm; i++) {
    char *end;
    if (strncmp(rf->mname[i], fam, L) || !rf->mname[i][L])
      continue;
    double x = strtod(rf->mname[i] + L, &end);
    if (*end || !isfinite(x) || !isfinite(rf->mval[i]))
      continue;
    size_t k = n++;
    while (k > 0 && p[2 * (k - 1)] > x) {
      p[2 * k] = p[2 * (k - 1)];
      p[2 * k + 1] = p[2 * (k - 1) + 1];
      k--;
    }
    p[2 * k] = x;
    p[2 * k + 1] = rf->mval[i];
  }
  *out = p;
  return n;
}

/* A metric's value in an ok cell; a family gives its value at the last index. */
static int cell_metric(const store *s, size_t c, const char *metric, double *v)
{
  if (s->status[c] != 1)
    return 0;
  if (!is_family(metric))
    return mb_rfile_metric(&s->rf[c], metric, v) && isfinite(*v);
  double *p;
  size_t n = mb_rep_family_points(&s->rf[c], metric, &p);
  if (n)
    *v = p[2 * (n - 1) + 1];
  free(p);
  return n > 0;
}

/* The baseline of cell c for a paired table: the cell with the same rep and
 * parameters except the row key, which equals t->paired. */
long mb_rep_baseline_cell(const store *s, const mb_table *t, size_t c)
{
  const mb_matrix *m = s->m;
  for (size_t b = 0; b < m->ncells; b++) {
    if (m->cells[b].rep != m->cells[c].rep ||
        strcmp(mb_xcell_get(&m->cells[b], t->rows[0]), t->paired))
      continue;
    int same = 1;
    for (const mb_param *p = m->task->params; p->name && same; p++)
      if (strcmp(p->name, t->rows[0]) &&
          strcmp(mb_cell_str(m->cells[b].cell, p->name), mb_cell_str(m->cells[c].cell, p->name)))
        same = 0;
    if (same)
      return (long)b;
  }
  return -1;
}

/* A table's value for cell c: the metric, or (paired) the metric minus the
 * baseline's, or (reach) the first index at which the cell's family is at
 * most the baseline's last value, over the cell's last index. */
int mb_rep_table_value(const store *s, const mb_table *t, size_t c, double *v)
{
  if (!t->paired)
    return cell_metric(s, c, t->metric, v);
  long b = mb_rep_baseline_cell(s, t, c);
  double vb;
  if (b < 0 || s->status[c] != 1 || !cell_metric(s, (size_t)b, t->metric, &vb))
    return 0;
  if (!t->reach) {
    double vc;
    if (!cell_metric(s, c, t->metric, &vc))
      return 0;
    *v = vc - vb;
    return 1;
  }
  double *p;
  size_t n = mb_rep_family_points(&s->rf[c], t->metric, &p);
  int ok = 0;
  for (size_t i = 0; i < n && !ok; i++)
    if (p[2 * i + 1] <= vb && p[2 * (n - 1)] != 0) {
      *v = p[2 * i] / p[2 * (n - 1)];
      ok = 1;
    }
  free(p);
  return ok;
}

void mb_rep_write_out(store *s, const char *file, const mb_buf *b)
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

/* Whether ok cell c has the metric (a family "NAME@": any of its values). */
static int has_metric(const store *s, size_t c, const char *metric)
{
  const size_t len = strlen(metric);
  if (s->status[c] != 1)
    return 0;
  if (!len || metric[len - 1] != '@') {
    double v;
    return mb_rfile_metric(&s->rf[c], metric, &v);
  }
  double *pts = NULL;
  const size_t n = mb_rep_family_points(&s->rf[c], metric, &pts);
  free(pts);
  return n > 0;
}

/* Parameters (other than rep) whose values differ between ok cells that
 * share the grouping keys a..b and have the statistic's metric (or a value
 * of the family "NAME@"): such cells are pooled into one statistic,
 * which is usually a mistake in the matrix (a table, fit or plot missing
 * a key; e.g. a logistic-regression baseline pooled with the transformer
 * of the same variant). Cells without the metric are not counted: they
 * add nothing to the statistic. Appends "k1, k2" to out; returns how many. */
static size_t pooled(const store *s, char **a, size_t na, char **b, size_t nb, const char *metric,
                     mb_buf *out)
{
  const mb_matrix *m = s->m;
  char **keys = xcalloc(na + nb, sizeof *keys);
  for (size_t i = 0; i < na; i++)
    keys[i] = a[i];
  for (size_t i = 0; i < nb; i++)
    keys[na + i] = b[i];
  size_t ng, count = 0;
  group *g = mb_rep_group_cells(s, keys, na + nb, &ng);
  char *has = xcalloc(m->ncells, 1); /* once, not once per parameter */
  for (size_t c = 0; c < m->ncells; c++)
    has[c] = (char)has_metric(s, c, metric);
  for (const mb_param *p = m->task->params; p->name; p++) {
    int grouped = 0;
    for (size_t k = 0; k < na + nb; k++)
      if (!strcmp(keys[k], p->name))
        grouped = 1;
    if (grouped)
      continue;
    int varies = 0;
    for (size_t i = 0; i < ng && !varies; i++) {
      long first = -1;
      for (size_t c = 0; c < g[i].n && !varies; c++) {
        if (!has[g[i].cell[c]])
          continue;
        if (first < 0)
          first = (long)g[i].cell[c];
        else if (strcmp(mb_cell_str(m->cells[g[i].cell[c]].cell, p->name),
                        mb_cell_str(m->cells[first].cell, p->name)))
          varies = 1;
      }
    }
    if (varies)
      mb_buf_printf(out, "%s%s", count++ ? ", " : "", p->name);
  }
  mb_rep_groups_free(g, ng);
  free(has);
  free(keys);
  return count;
}

/* ---- number formatting ---- */

void mb_rep_fmt_num(mb_buf *b, double v, int exact)
{
  if (isnan(v))
    mb_buf_puts(b, "n/a");
  else if (exact)
    mb_buf_printf(b, "%.17g", v);
  else
    mb_buf_printf(b, "%.4g", v);
}

void mb_rep_tex_escape(mb_buf *b, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '_':
    case '%':
    case '&':
    case '#':
    case '$':
    case '{':
    case '}': mb_buf_printf(b, "\\%c", *s); break;
    case '\\': mb_buf_puts(b, "\\textbackslash{}"); break;
    case '~': mb_buf_puts(b, "\\textasciitilde{}"); break;
    case '^': mb_buf_puts(b, "\\textasciicircum{}"); break;
    default: mb_buf_add(b, s, 1);
    }
  }
}

void mb_rep_md_escape(mb_buf *b, const char *s)
{
  for (; *s; s++) {
    if (*s == '|')
      mb_buf_puts(b, "\\|");
    else if (*s == '\n' || *s == '\r')
      mb_buf_puts(b, " ");
    else
      mb_buf_add(b, s, 1);
  }
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or newline. */
void mb_rep_csv_field(mb_buf *b, const char *s)
{
  if (!strpbrk(s, ",\"\n\r")) {
    mb_buf_puts(b, s);
    return;
  }
  mb_buf_puts(b, "\"");
  for (; *s; s++) {
    if (*s == '"')
      mb_buf_puts(b, "\"\"");
    else
      mb_buf_add(b, s, 1);
  }
  mb_buf_puts(b, "\"");
}

void mb_rep_json_num(mb_buf *b, double v)
{
  if (isnan(v))
    mb_buf_puts(b, "null");
  else
    mb_buf_json_num(b, v);
}

/* ---- provenance ---- */

/* Where the results came from: the distinct values of a few provenance
 * fields over the ok cells, with counts (several values mean the cells were
 * produced by different builds or machines). */
static size_t provenance_rows(const store *s, mb_prov_row **out)
{
  /* fields, and (third) whether the field is left out when no cell has it:
   * the data fingerprints that tasks reading data files record */
  static const char *const fields[][3] = {{"moebench", NULL, NULL},
                                          {"git_commit", NULL, NULL},
                                          {"git_commit", "tree", NULL},
                                          {"compiler", NULL, NULL},
                                          {"cflags", NULL, NULL},
                                          {"gsl", NULL, NULL},
                                          {"blas", "name", NULL},
                                          {"blas", "core", NULL},
                                          {"blas", "core_source", "opt"},
                                          {"blas", "threads", NULL},
                                          {"cpu", NULL, NULL},
                                          {"hostname", NULL, NULL},
                                          {"os", NULL, NULL},
                                          {"notes", "data_sha256", "opt"},
                                          {"notes", "data_files", "opt"}};
  const mb_matrix *m = s->m;
  mb_prov_row *r = NULL;
  size_t n = 0;
  for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
    size_t first = n;
    int any = 0;
    for (size_t c = 0; c < m->ncells; c++) {
      if (s->status[c] != 1)
        continue;
      const int note = !strcmp(fields[f][0], "notes"),
                tree = fields[f][1] && !strcmp(fields[f][1], "tree");
      const mb_json *p = note ? s->rf[c].doc : mb_json_get(s->rf[c].doc, "provenance");
      const mb_json *v = mb_json_get(p, fields[f][0]);
      if (fields[f][1] && !tree)
        v = mb_json_get(v, fields[f][1]);
      const char *t = v && (v->type == MB_J_STR || v->type == MB_J_NUM) ? v->text : "(none)";
      if (tree) { /* git describe --dirty: the source tree the binary was built from */
        size_t L = strlen(t);
        t = !strcmp(t, "(none)") || !strcmp(t, "unknown") ? "unknown"
            : L >= 6 && !strcmp(t + L - 6, "-dirty")      ? "dirty (uncommitted changes)"
                                                          : "clean";
      }
      if (strcmp(t, "(none)"))
        any = 1;
      size_t k = first;
      while (k < n && strcmp(r[k].value, t))
        k++;
      if (k == n) {
        r = realloc(r, (n + 1) * sizeof *r);
        if (!r)
          mb_oom(0);
        snprintf(r[n].field, sizeof r[n].field, "%s%s%s", fields[f][0], fields[f][1] ? "." : "",
                 fields[f][1] ? fields[f][1] : "");
        r[n].value = t;
        r[n++].cells = 0;
      }
      r[k].cells++;
    }
    if (!any && fields[f][2])
      n = first;
  }
  *out = r;
  return n;
}

static void provenance_md(store *s, const mb_prov_row *r, size_t n)
{
  mb_buf b;
  mb_buf_init(&b);
  mb_buf_printf(&b, "## Provenance of %s\n\n| field | value | cells |\n|---|---|---:|\n",
                s->m->name);
  for (size_t k = 0; k < n; k++) {
    mb_buf_printf(&b, "| %s | ", r[k].field);
    mb_rep_md_escape(&b, r[k].value);
    mb_buf_printf(&b, " | %zu |\n", r[k].cells);
  }
  /* Different OpenBLAS kernels give different bits: cells of one matrix
   * that ran on several (nodes of different CPUs, a job script without
   * OPENBLAS_CORETYPE) are not one reproducible run. */
  size_t ncores = 0;
  mb_buf w;
  mb_buf_init(&w);
  for (size_t k = 0; k < n; k++)
    if (!strcmp(r[k].field, "blas.core"))
      mb_buf_printf(&w, "%s%s: %zu cells", ncores++ ? ", " : "", r[k].value, r[k].cells);
  if (ncores > 1) {
    fprintf(stderr,
            "moebench report: warning: %s: the cells ran on %zu different BLAS cores (%s); "
            "their bits are not comparable: pin OPENBLAS_CORETYPE (moebench slurm does)\n",
            s->m->name, ncores, w.s);
    mb_buf_printf(
        &b,
        "\n**Warning:** the cells ran on %zu different BLAS cores; their bits are not comparable "
        "(pin `OPENBLAS_CORETYPE`).\n",
        ncores);
  }
  mb_buf_free(&w);
  mb_rep_write_out(s, "provenance.md", &b);
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
    while (ti < m->ntables && strcmp(m->tables[ti].name, q->table))
      ti++;
    if (ti == m->ntables)
      continue; /* the parser refuses such a claim */
    const grid *g = &gs[ti];
    const moe_stats_summary *sm = NULL;
    for (size_t r = 0; r < g->nr; r++) {
      if (strcmp(g->rows[r].val[0], q->row))
        continue;
      for (size_t j = 0; j < g->nc; j++) {
        int all = 1;
        for (size_t k = 0; k < q->column.n && all; k++)
          if (strcmp(g->cols[j].val[k], q->column.val[k]))
            all = 0;
        if (all)
          sm = &g->sum[r * g->nc + j];
      }
    }
    if (!sm || sm->n < 2 || isnan(sm->ci95_lo)) {
      c->n = sm ? sm->n : 0;
      continue;
    }
    c->n = sm->n;
    c->mean = sm->mean;
    c->lo = sm->ci95_lo;
    c->hi = sm->ci95_hi;
    const int below = c->hi<0, above = c->lo> 0;
    if (q->expect == MB_EXPECT_LT0)
      c->verdict = below ? "confirmed" : above ? "refuted" : "unresolved";
    else if (q->expect == MB_EXPECT_GT0)
      c->verdict = above ? "confirmed" : below ? "refuted" : "unresolved";
    else
      c->verdict = below || above ? "confirmed" : "unresolved";
  }
  return out;
}

const char *const mb_rep_expect_text[] = {"< 0", "> 0", "!= 0"};

static void claims_md(mb_buf *b, const mb_claim_res *c, size_t n)
{
  mb_buf_puts(b, "### Claims\n\nEach claim is resolved from its comparison's 95% paired interval: "
                 "confirmed when the "
                 "interval lies on the expected side of 0, refuted when it lies on the other side, "
                 "else unresolved.\n\n"
                 "| claim | table | comparison | expected | n | mean | 95% CI | verdict "
                 "|\n|---|---|---|---|---:|---:|---:|---|\n");
  for (size_t i = 0; i < n; i++) {
    const mb_claim *q = c[i].q;
    mb_buf_puts(b, "| ");
    mb_rep_md_escape(b, q->claim);
    mb_buf_puts(b, " | ");
    mb_rep_md_escape(b, q->table);
    mb_buf_puts(b, " | ");
    mb_rep_md_escape(b, q->row);
    for (size_t k = 0; k < q->column.n; k++) {
      mb_buf_printf(b, ", %s=", q->column.key[k]);
      mb_rep_md_escape(b, q->column.val[k]);
    }
    mb_buf_printf(b, " | %s | %zu | ", mb_rep_expect_text[q->expect], c[i].n);
    mb_rep_fmt_num(b, c[i].mean, 0);
    mb_buf_puts(b, " | ");
    if (isnan(c[i].lo))
      mb_buf_puts(b, "n/a");
    else {
      mb_buf_puts(b, "[");
      mb_rep_fmt_num(b, c[i].lo, 0);
      mb_buf_puts(b, ", ");
      mb_rep_fmt_num(b, c[i].hi, 0);
      mb_buf_puts(b, "]");
    }
    mb_buf_printf(b, " | %s |\n", c[i].verdict);
  }
  mb_buf_puts(b, "\n");
}

/* ---- driver ---- */

/* Load the result of every cell of m from dir/cells (s->repdir is kept). */
void mb_rep_store_load(store *s, const mb_matrix *m, const char *dir, const char *who)
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
    if (r == 1) {
      fprintf(stderr, "%s: corrupt result, treated as missing: %s\n", who, err);
      s->status[c] = 3;
      s->ncorrupt++;
    } else if (r < 0) {
      s->status[c] = 0;
      s->nmissing++;
    } else if (strcmp(s->rf[c].id, m->cells[c].id)) {
      fprintf(stderr, "%s: %s: holds id %s, treated as missing\n", who, p, s->rf[c].id);
      s->status[c] = 3;
      s->ncorrupt++;
    } else if (s->rf[c].ok) {
      s->status[c] = 1;
      s->nok++;
    } else if (s->rf[c].diverged) {
      s->status[c] = 4;
      s->ndiverged++;
    } else {
      s->status[c] = 2;
      s->nfailed++;
    }
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
    if (s->status[c] != 1 && s->status[c] != 4)
      continue;
    const mb_json *notes = mb_json_get(s->rf[c].doc, "notes");
    const char *f = notes ? mb_json_str(notes, "data_sha256") : NULL;
    if (!f)
      continue;
    const char *k = mb_xcell_get(&m->cells[c], "data");
    if (!k)
      k = "";
    size_t i = 0;
    while (i < nk && strcmp(key[i], k))
      i++;
    if (i == nk) {
      key[nk] = k;
      fp[nk] = f;
      first[nk++] = c;
      continue;
    }
    if (strcmp(fp[i], f)) {
      if (bad++ < 5)
        fprintf(stderr,
                "%s: cells %s and %s both read data '%s' but of different content (data_sha256 "
                "%.12s... vs "
                "%.12s...): not combined%s\n",
                who, m->cells[first[i]].id, m->cells[c].id, k, fp[i], f,
                allow_mixed_data ? " (--allow-mixed-data: combined anyway)"
                                 : "; --allow-mixed-data to combine them");
    }
  }
  free(key);
  free(fp);
  free(first);
  return bad;
}

void mb_rep_store_free(store *s)
{
  for (size_t c = 0; c < s->m->ncells; c++)
    mb_rfile_free(&s->rf[c]);
  free(s->rf);
  free(s->status);
}

/* The record of a sequential run in dir (sequential.json) and the number
 * of replications it reached, or NULL (no record: 0; unreadable: -1 with
 * a message). */
mb_json *mb_rep_seq_record(const char *dir, long *n, const char *who)
{
  char p[4200], err[5000];
  snprintf(p, sizeof p, "%s/sequential.json", dir);
  *n = 0;
  if (access(p, F_OK))
    return NULL;
  mb_json *j = mb_json_load(p, err, sizeof err);
  double v;
  if (!j || strcmp(mb_json_str(j, "format") ? mb_json_str(j, "format") : "", MB_SEQ_FORMAT) ||
      !mb_json_as_double(mb_json_get(j, "replications"), &v) || !(v >= 1) || v > 1e6) {
    fprintf(stderr, "%s: %s: %s\n", who, j ? p : err,
            j ? "not a " MB_SEQ_FORMAT " record (or no replications in it)" : "unreadable");
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
  mb_buf_printf(b, "Confidence sequence: %s. ",
                mb_json_str(j, "method") ? mb_json_str(j, "method") : "?");
  if (mb_json_as_double(mb_json_get(j, "half_width"), &v))
    mb_buf_printf(b, "Target half-width %.6g; ", v);
  if (mb_json_as_double(mb_json_get(j, "max_replications"), &v))
    mb_buf_printf(b, "at most %.0f replications; ", v);
  if (mb_json_as_double(mb_json_get(j, "replications"), &v))
    mb_buf_printf(b, "%s at %.0f replications after %zu round(s)%s%s.\n\n",
                  st ? "stopped" : "in progress", v, rounds ? rounds->n : 0, st ? ": " : "",
                  st ? st : "");
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
      for (int i = 0; i < 6; i++)
        mb_json_as_double(mb_json_get(c, f[i]), &x[i]);
      mb_buf_printf(b, "| %.0f | %.0f | ", rn, nn);
      mb_rep_md_escape(b, mb_json_str(c, "comparison") ? mb_json_str(c, "comparison") : "?");
      mb_buf_printf(b, " | %.0f | ", x[0]);
      mb_rep_fmt_num(b, x[1], 0);
      mb_buf_puts(b, " | ");
      mb_rep_fmt_num(b, x[2], 0);
      if (isnan(x[5]))
        mb_buf_puts(b, " | unbounded | inf"); /* too few pairs yet */
      else {
        mb_buf_puts(b, " | [");
        mb_rep_fmt_num(b, x[3], 0);
        mb_buf_puts(b, ", ");
        mb_rep_fmt_num(b, x[4], 0);
        mb_buf_puts(b, "] | ");
        mb_rep_fmt_num(b, x[5], 0);
      }
      mb_buf_printf(b, " | %s |\n", mb_json_str(c, "resolved") ? mb_json_str(c, "resolved") : "?");
    }
  }
  mb_buf_puts(b, "\n");
}

/* Report the matrix whose results are in dir. With html, also its HTML:
 * report/report.html (formats & F_HTML) and its part of a joined page
 * appended to page (when given, with the matrix's name in *pagename). */
static int report_dir(const char *dir, const char *matrix_file, int formats, int plot, mb_buf *page,
                      char **pagename)
{
  char mpath[4200], err[5000];
  if (matrix_file)
    snprintf(mpath, sizeof mpath, "%s", matrix_file);
  else
    snprintf(mpath, sizeof mpath, "%s/matrix.yaml", dir);
  int st;
  /* a sequential run decided its replication count: report those cells
   * (or the matrix's own count, if raised above it later: the override
   * only raises) */
  long seqn;
  mb_json *seq = mb_rep_seq_record(dir, &seqn, "moebench report");
  if (seqn < 0)
    return 1;
  mb_matrix_set_replications(seqn);
  mb_matrix *m = mb_matrix_load_stderr(mpath, &st);
  mb_matrix_set_replications(0);
  if (!m) {
    mb_json_free(seq);
    return st;
  }
  store s;
  snprintf(s.repdir, sizeof s.repdir, "%s/report", dir);
  if (mb_mkdirs(s.repdir, err, sizeof err)) {
    fprintf(stderr, "moebench report: %s\n", err);
    mb_matrix_free(m);
    mb_json_free(seq);
    return 1;
  }
  mb_rep_store_load(&s, m, dir, "moebench report");
  fprintf(stderr,
          "moebench report: %s: %zu cells: %zu ok, %zu diverged, %zu failed, %zu missing, %zu "
          "corrupt\n",
          m->name, m->ncells, s.nok, s.ndiverged, s.nfailed, s.nmissing, s.ncorrupt);
  size_t nmixed = mixed_data(&s, "moebench report");
  if (nmixed && !allow_mixed_data) {
    fprintf(
        stderr,
        "moebench report: %s: %zu cell(s) read other data than cells of the same configuration: "
        "nothing written\n",
        m->name, nmixed);
    mb_rep_store_free(&s);
    mb_matrix_free(m);
    mb_json_free(seq);
    return 1;
  }

  /* summary.md: everything in Markdown, for doc/results.md */
  mb_buf sum;
  mb_buf_init(&sum);
  mb_buf_printf(&sum, "## %s\n\n", m->name);
  if (m->description) {
    mb_rep_md_escape(&sum, m->description);
    mb_buf_puts(&sum, "\n\n");
  }
  mb_buf_printf(&sum,
                "Task `%s`, seed %llu, %zu cells (%ld replications): %zu ok, %zu diverged, %zu "
                "failed, %zu missing.\n\n",
                m->task->name, (unsigned long long)m->seed, m->ncells, m->replications, s.nok,
                s.ndiverged, s.nfailed, s.nmissing + s.ncorrupt);
  /* brief.txt: what a terminal shows (mb-bench.sh prints it) */
  mb_buf brief;
  mb_buf_init(&brief);
  mb_buf_printf(&brief, "%s: %zu cells: %zu ok, %zu diverged, %zu failed, %zu missing\n", m->name,
                m->ncells, s.nok, s.ndiverged, s.nfailed, s.nmissing + s.ncorrupt);
  if (m->description) {
    const char *d = m->description;
    mb_buf_printf(&brief, "%.*s%s\n", strlen(d) > BRIEF_COLS ? BRIEF_COLS - 3 : (int)strlen(d), d,
                  strlen(d) > BRIEF_COLS ? "..." : "");
  }
  static const char *ext[] = {"md", "csv", "tex", "json"};
  const int html = (formats & F_HTML) || page;
  mb_html h;
  if (html) {
    plot = 1; /* a page shows the figures */
    mb_html_begin(&h, m, s.nok, s.ndiverged, s.nfailed, s.nmissing + s.ncorrupt);
  }
  grid *gs = xcalloc(m->ntables, sizeof *gs);
  for (size_t i = 0; i < m->ntables; i++)
    mb_rep_grid_build(&s, &m->tables[i], &gs[i]);
  mb_rep_holm_families(m, gs);
  if (seq)
    seq_md(&sum, seq);
  if (seq && html)
    mb_html_seq(&h, seq);
  if (m->nclaims) {
    mb_claim_res *cr = claims_resolve(m, gs);
    size_t k[3] = {0, 0, 0};
    for (size_t i = 0; i < m->nclaims; i++)
      k[cr[i].verdict[0] == 'c' ? 0 : cr[i].verdict[0] == 'r' ? 1 : 2]++;
    claims_md(&sum, cr, m->nclaims);
    mb_buf_printf(&brief, "Claims: %zu confirmed, %zu refuted, %zu unresolved (of %zu)\n", k[0],
                  k[1], k[2], m->nclaims);
    if (html)
      mb_html_claims(&h, cr, m->nclaims);
    free(cr);
  }
  for (size_t i = 0; i < m->ntables; i++) {
    const mb_table *t = &m->tables[i];
    grid g = gs[i];
    for (int f = 0; f < 4; f++) {
      if (!(formats & (1 << f)))
        continue;
      mb_buf b;
      mb_buf_init(&b);
      if (f == 0)
        mb_rep_table_md(&b, t, &g);
      else if (f == 1)
        mb_rep_table_csv(&b, t, &g);
      else if (f == 2)
        mb_rep_table_tex(&b, t, &g);
      else
        mb_rep_table_json(&b, t, &g);
      char fn[300];
      snprintf(fn, sizeof fn, "%s.%s", t->name, ext[f]);
      mb_rep_write_out(&s, fn, &b);
      mb_buf_free(&b);
    }
    if (mb_rep_in_brief(m, t->name, 0))
      mb_rep_brief_table(&brief, &s, t, &g);
    mb_buf_printf(&sum, "### Table `%s`: ", t->name);
    mb_rep_table_caption(&sum, t);
    mb_buf_puts(&sum, "\n\n");
    size_t before = sum.n;
    mb_rep_table_legend(&sum, t, &g);
    if (sum.n > before)
      mb_buf_puts(&sum, "\n\n");
    mb_rep_table_md(&sum, t, &g);
    mb_buf pk;
    mb_buf_init(&pk);
    const size_t npk = pooled(&s, t->rows, t->nrows, t->cols, t->ncols, t->metric, &pk);
    if (npk) {
      fprintf(stderr, "moebench report: note: table '%s' pools cells that differ in: %s\n", t->name,
              pk.s);
      mb_buf_printf(&sum, "\nPooled over the replications and over: %s.\n", pk.s);
    }
    if (html)
      mb_html_table(&h, t, &g, npk ? pk.s : NULL);
    mb_buf_free(&pk);
    mb_buf_puts(&sum, "\n");
    mb_rep_grid_free(&g);
  }
  free(gs);
  for (size_t i = 0; i < m->nfits; i++) {
    const mb_fit *fit = &m->fits[i];
    size_t n;
    fitrow *r = mb_rep_fit_compute(&s, fit, &n);
    for (int f = 0; f < 4; f++) {
      if (!(formats & (1 << f)))
        continue;
      mb_buf b;
      mb_buf_init(&b);
      if (f == 0)
        mb_rep_fit_md(&b, fit, r, n, 0);
      else if (f == 1)
        mb_rep_fit_csv(&b, fit, r, n);
      else if (f == 2)
        mb_rep_fit_md(&b, fit, r, n, 1);
      else
        mb_rep_fit_json(&b, fit, r, n);
      char fn[300];
      snprintf(fn, sizeof fn, "%s.%s", fit->name, ext[f]);
      mb_rep_write_out(&s, fn, &b);
      mb_buf_free(&b);
    }
    if (mb_rep_in_brief(m, fit->name, 1))
      mb_rep_brief_fit(&brief, &s, fit, r, n);
    mb_buf_printf(&sum, "### Fit `%s`: ", fit->name);
    mb_rep_fit_caption(&sum, fit);
    mb_buf_puts(&sum, "\n\n");
    mb_rep_fit_md(&sum, fit, r, n, 0);
    for (size_t k = 0; k < n; k++)
      if (!r[k].ok)
        mb_buf_printf(&sum, "\n- %s: no fit (%s)", r[k].label, r[k].why);
    mb_buf pk;
    mb_buf_init(&pk);
    char *xkey[1] = {fit->x};
    const size_t npk = pooled(&s, fit->by, fit->nby, xkey, 1, fit->y, &pk);
    if (npk) {
      fprintf(stderr, "moebench report: note: fit '%s' pools cells that differ in: %s\n", fit->name,
              pk.s);
      mb_buf_printf(&sum, "\nEach point pools the replications and: %s.\n", pk.s);
    }
    if (html)
      mb_html_fit(&h, fit, r, n, npk ? pk.s : NULL);
    mb_buf_free(&pk);
    for (size_t q = 0; q < fit->nrefs; q++) {
      int used = 0;
      for (size_t k = 0; k < n; k++)
        if (r[k].ref == &fit->refs[q])
          used = 1;
      if (!used)
        fprintf(stderr, "moebench report: warning: fit '%s': reference %zu matches no group\n",
                fit->name, q + 1);
    }
    mb_buf_puts(&sum, "\n");
    for (size_t k = 0; k < n; k++) {
      free(r[k].label);
      for (size_t q = 0; q < fit->nby; q++)
        free(r[k].val[q]);
      free(r[k].val);
    }
    free(r);
  }
  if (plot) {
    char gpbuf[4096];
    const char *gnuplot = mb_rep_find_gnuplot(gpbuf, sizeof gpbuf);
    int rendered = 0;
    if (!gnuplot && m->nplots)
      fprintf(stderr,
              "moebench report: note: gnuplot not found (PATH or MOEBENCH_GNUPLOT): wrote the .gp "
              "scripts and .dat files only; render them with `gnuplot NAME.gp` in %s\n",
              s.repdir);
    /* a plot pools like a table: its by-keys (and x, unless a family)
     * group the cells */
    mb_buf *pk = xcalloc(m->nplots, sizeof *pk);
    for (size_t i = 0; i < m->nplots; i++) {
      const mb_plot *pl = &m->plots[i];
      char *xkey[1] = {pl->x};
      mb_buf_init(&pk[i]);
      if (pooled(&s, pl->by, pl->nby, xkey, strcmp(pl->x, "@") ? 1 : 0, pl->y, &pk[i]))
        fprintf(stderr, "moebench report: note: plot '%s' pools cells that differ in: %s\n",
                pl->name, pk[i].s);
    }
    for (size_t i = 0; i < m->nplots; i++) {
      const int before = rendered;
      mb_rep_plot_one(&s, &m->plots[i], gnuplot, &rendered);
      if (!html)
        continue;
      char svg[4600];
      snprintf(svg, sizeof svg, "%s/%s.svg", s.repdir, m->plots[i].name);
      mb_html_figure(&h, &m->plots[i], rendered > before ? svg : NULL,
                     !gnuplot            ? "gnuplot not found"
                     : rendered > before ? NULL
                                         : "gnuplot failed",
                     pk[i].n ? pk[i].s : NULL);
    }
    for (size_t i = 0; i < m->nplots; i++) {
      if (rendered)
        mb_buf_printf(&sum, "![%s](%s.svg)\n\n", m->plots[i].name, m->plots[i].name);
      if (pk[i].n)
        mb_buf_printf(&sum, "Each point of `%s` pools the replications and: %s.\n\n",
                      m->plots[i].name, pk[i].s);
      mb_buf_free(&pk[i]);
    }
    free(pk);
    for (size_t i = 0; i < m->nplots; i++)
      mb_buf_printf(&brief, "%s %s/%s.%s\n", i ? "       " : "Figure:", s.repdir, m->plots[i].name,
                    rendered ? "png" : "gp");
  }
  if (seq) {
    double v;
    const char *stp = mb_json_str(seq, "stopped");
    if (mb_json_as_double(mb_json_get(seq, "replications"), &v))
      mb_buf_printf(&brief, "Sequential: %s at %.0f replications%s%s (details in summary.md)\n",
                    stp ? "stopped" : "in progress", v, stp ? ": " : "", stp ? stp : "");
  }
  mb_buf_printf(&brief, "Tables: %s/summary.md (every table and fit; .csv/.tex/.json beside it)\n",
                s.repdir);
  mb_rep_write_out(&s, "brief.txt", &brief);
  mb_rep_write_out(&s, "summary.md", &sum);
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
      mb_rep_write_out(&s, "report.html", &out);
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
  mb_rep_store_free(&s);
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
    if (!pg->names)
      mb_oom(0);
  }
  int rc = report_dir(dir, mfile, formats, plot, page, &name);
  if (pg && name)
    pg->names[pg->n++] = name;
  return rc;
}

static int report_arg(pagebuf *pg, const char *dir, const char *mfile, int formats, int plot)
{
  char p[4200];
  struct stat st;
  snprintf(p, sizeof p, "%s/cells", dir);
  if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
    return report_one(pg, dir, mfile, formats, plot);
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "moebench report: %s: not a directory\n", dir);
    return 2;
  }
  if (mfile) {
    /* a results root and an explicit matrix: its NAME directory */
    int rc;
    mb_matrix *m = mb_matrix_load_stderr(mfile, &rc);
    if (!m)
      return rc;
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
    if (e->d_name[0] == '.')
      continue;
    snprintf(p, sizeof p, "%s/%s/matrix.yaml", dir, e->d_name);
    if (access(p, R_OK))
      continue;
    names = realloc(names, (n + 1) * sizeof *names);
    if (!names || !(names[n] = strdup(e->d_name)))
      mb_oom(0);
    n++;
  }
  if (d)
    closedir(d);
  if (!n) {
    fprintf(stderr, "moebench report: %s: no NAME/matrix.yaml found (run `moebench run` first)\n",
            dir);
    return 2;
  }
  for (size_t i = 0; i + 1 < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) {
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    int r = report_one(pg, p, NULL, formats, plot);
    if (r > rc)
      rc = r;
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
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(report_usage, stdout);
      return 0;
    }
    if (!strcmp(a, "--version")) {
      printf("moebench report %s (libmoe %s)\n", MOE_VERSION_STRING, moe_version());
      return 0;
    }
  }
  dirs = xcalloc((size_t)argc, sizeof *dirs);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (!strcmp(a, "--format") || !strcmp(a, "-f"))
      v = i + 1 < argc ? argv[++i] : "";
    else if (!strncmp(a, "--format=", 9))
      v = a + 9;
    if (v) {
      char buf[256];
      snprintf(buf, sizeof buf, "%s", v);
      for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "md"))
          formats |= F_MD;
        else if (!strcmp(tok, "csv"))
          formats |= F_CSV;
        else if (!strcmp(tok, "tex"))
          formats |= F_TEX;
        else if (!strcmp(tok, "json"))
          formats |= F_JSON;
        else if (!strcmp(tok, "html"))
          formats |= F_HTML;
        else {
          fprintf(stderr, "moebench report: unknown format '%s' (md, csv, tex, json, html)\n", tok);
          free(dirs);
          return 2;
        }
      }
      if (!*v) {
        fprintf(stderr, "moebench report: --format needs a value\n");
        free(dirs);
        return 2;
      }
      continue;
    }
    if (!strcmp(a, "--plot"))
      plot = 1;
    else if (!strcmp(a, "--allow-mixed-data"))
      allow_mixed_data = 1;
    else if (!strcmp(a, "--matrix") || !strcmp(a, "--page")) {
      if (i + 1 >= argc || !argv[i + 1][0]) {
        fprintf(stderr, "moebench report: %s needs a file\n", a);
        free(dirs);
        return 2;
      }
      if (a[2] == 'm')
        mfile = argv[++i];
      else
        pagefile = argv[++i];
    } else if (!strncmp(a, "--matrix=", 9))
      mfile = a + 9;
    else if (!strncmp(a, "--page=", 7))
      pagefile = a + 7;
    else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "moebench report: unknown option '%s'\n%s", a, report_usage);
      free(dirs);
      return 2;
    } else
      dirs[ndirs++] = a;
  }
  if (!ndirs) {
    fputs(report_usage, stderr);
    free(dirs);
    return 2;
  }
  if (ndirs > 1 && !pagefile) {
    fprintf(stderr, "moebench report: one directory at a time (several only with --page FILE)\n");
    free(dirs);
    return 2;
  }
  if (ndirs > 1 && mfile) {
    fprintf(stderr, "moebench report: --matrix needs a single directory\n");
    free(dirs);
    return 2;
  }
  if (!formats)
    formats = F_MD;
  pagebuf pg = {{0}, NULL, 0};
  mb_buf_init(&pg.body);
  int rc = 0;
  for (size_t i = 0; i < ndirs; i++) {
    int r = report_arg(pagefile ? &pg : NULL, dirs[i], mfile, formats, plot);
    if (r > rc)
      rc = r;
  }
  if (pagefile && pg.n) {
    mb_buf out;
    char err[5000];
    mb_buf_init(&out);
    mb_html_page(&out, "moebench results", pg.body.s ? pg.body.s : "", pg.names, pg.n);
    if (out.oom || mb_write_atomic(pagefile, out.s ? out.s : "", out.n, err, sizeof err)) {
      fprintf(stderr, "moebench report: cannot write the page %s: %s\n", pagefile,
              out.oom ? "out of memory" : err);
      if (rc < 1)
        rc = 1;
    } else
      fprintf(stderr, "moebench report: wrote %s (%zu matri%s)\n", pagefile, pg.n,
              pg.n > 1 ? "ces" : "x");
    mb_buf_free(&out);
  } else if (pagefile) {
    fprintf(stderr, "moebench report: no matrix reported: %s not written\n", pagefile);
    if (rc < 1)
      rc = 1;
  }
  for (size_t i = 0; i < pg.n; i++)
    free(pg.names[i]);
  free(pg.names);
  mb_buf_free(&pg.body);
  free(dirs);
  return rc;
}

/* ---- comparisons for the sequential runner ---- */

size_t mb_report_comparisons(const mb_matrix *m, const char *dir, char *const *names, size_t k,
                             double c, double w, mb_comparison **out)
{
  store s;
  memset(&s, 0, sizeof s);
  mb_rep_store_load(&s, m, dir, "moebench run");
  mb_comparison *cs = NULL;
  size_t n = 0;
  for (size_t q = 0; q < k; q++)
    for (size_t i = 0; i < m->ntables; i++) {
      const mb_table *t = &m->tables[i];
      if (strcmp(t->name, names[q]) || !t->paired || t->reach)
        continue;
      grid g;
      mb_rep_grid_build(&s, t, &g);
      for (size_t r = 0; r < g.nr; r++) {
        if (!strcmp(g.rows[r].val[0], t->paired))
          continue; /* the baseline itself */
        for (size_t j = 0; j < g.nc; j++) {
          const moe_stats_summary *sm = &g.sum[r * g.nc + j];
          cs = realloc(cs, (n + 1) * sizeof *cs);
          if (!cs)
            mb_oom(0);
          mb_comparison *x = &cs[n++];
          mb_buf l;
          mb_buf_init(&l);
          mb_buf_printf(&l, "%s: %s=%s", t->name, t->rows[0], g.rows[r].val[0]);
          if (t->ncols) {
            mb_buf_puts(&l, ", ");
            mb_rep_label(&l, t->cols, g.cols[j].val, t->ncols, "");
          }
          x->label = l.s ? l.s : xdup("");
          x->n = sm->n;
          x->mean = sm->n ? sm->mean : NAN;
          x->sd = sm->n >= 2 ? sm->sd : NAN;
          x->half_width = sm->n >= 2 ? mb_cs_tmix_halfwidth(sm->n, sm->sd, c, MB_ALPHA) : INFINITY;
          x->lo = x->mean - x->half_width;
          x->hi = x->mean + x->half_width;
          if (x->lo > 0 || x->hi < 0)
            x->resolved = "excludes 0";
          else if (x->half_width <= w)
            x->resolved = "narrow";
          else
            x->resolved = "no";
        }
      }
      mb_rep_grid_free(&g);
    }
  mb_rep_store_free(&s);
  *out = cs;
  return n;
}

void mb_comparisons_free(mb_comparison *c, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(c[i].label);
  free(c);
}
