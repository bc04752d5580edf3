/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_fit.c — the report's rate fits: the least-squares slope of log
 * loss on log n (and on log(n / log n)) per group, with bootstrap
 * intervals, in Markdown, LaTeX, CSV, JSON and brief.txt (report_int.h). */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "report_int.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/stats.h"

/* ---- fits ---- */

int mb_rep_dbl_cmp(const void *a, const void *b)
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
        if (!strcmp(f->refs[r].key[k], f->by[q]) && strcmp(f->refs[r].val[k], g->val[q]))
          all = 0;
    if (all)
      return &f->refs[r];
  }
  return NULL;
}

const char *mb_rep_ref_get(const mb_ref *r, const char *key)
{
  for (size_t k = 0; r && k < r->n; k++)
    if (!strcmp(r->key[k], key))
      return r->val[k];
  return NULL;
}

static const char *const center_label[] = {"mean", "median", "trmean"};

/* Rows centre-major: the first ng rows use f->centers[0] (so plots, which
 * index rows by group, draw the first centre), then the next centre ...
 * Rows of a centre other than the mean carry " [median]" / " [trmean]". */
fitrow *mb_rep_fit_compute(const store *s, const mb_fit *f, size_t *nrows)
{
  const mb_matrix *m = s->m;
  size_t ng;
  group *g = mb_rep_group_cells(s, f->by, f->nby, &ng);
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
      if (ctr != MOE_STATS_MEAN)
        mb_buf_printf(&l, " [%s]", center_label[ctr]);
      r->label = l.s;
      r->val = xcalloc(f->nby ? f->nby : 1, sizeof *r->val);
      for (size_t q = 0; q < f->nby; q++)
        r->val[q] = xdup(g[i].val[q]);
      r->ref = find_ref(f, &g[i]);
      r->lo = r->hi = r->lon = r->hin = NAN;
      /* distinct x values of the group's cells, ascending */
      size_t nx = 0;
      for (size_t c = 0; c < g[i].n; c++)
        xs[nx++] = strtod(mb_xcell_get(&m->cells[g[i].cell[c]], f->x), NULL);
      qsort(xs, nx, sizeof *xs, mb_rep_dbl_cmp);
      size_t G = 0, k = 0;
      off[0] = 0;
      for (size_t a = 0; a < nx; a++) {
        if (a > 0 && xs[a] == xs[a - 1])
          continue;
        size_t before = k;
        for (size_t c = 0; c < g[i].n; c++) {
          size_t cell = g[i].cell[c];
          double v;
          if (strtod(mb_xcell_get(&m->cells[cell], f->x), NULL) != xs[a])
            continue;
          if (s->status[cell] != 1 || !mb_rfile_metric(&s->rf[cell], f->y, &v) || !isfinite(v))
            continue;
          double ex;
          if (f->exclude && mb_rfile_metric(&s->rf[cell], f->exclude, &ex) && ex != 0)
            continue;
          y[k++] = v;
        }
        if (k == before)
          continue;
        gx[G] = xs[a];
        off[++G] = k;
      }
      r->npoints = G;
      r->ncells = k;
      if (G) {
        r->xmin = gx[0];
        r->xmax = gx[G - 1];
      }
      moe_stats_groups d = {G, gx, y, off};
      if (G < 2) {
        snprintf(r->why, sizeof r->why, "fewer than 2 values of %s with results", f->x);
        continue;
      }
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
      if (ctr != MOE_STATS_MEAN)
        mb_buf_printf(&sl, ":%s", center_label[ctr]);
      seed = moe_seed_derive(m->seed, sl.s);
      mb_buf_free(&sl);
      if (f->bootstrap > 0 &&
          moe_stats_bootstrap_slope_center(&d, MOE_STATS_X_LOG, ctr, (size_t)f->bootstrap, seed,
                                           0.95, &r->lo, &r->hi))
        r->lo = r->hi = NAN;
      if (gx[0] > 1 &&
          moe_stats_fit_groups_center(&d, MOE_STATS_X_OVER_LOG, ctr, &r->fn) == MOE_OK) {
        r->ok_nlogn = 1;
        if (f->bootstrap > 0 && moe_stats_bootstrap_slope_center(
                                    &d, MOE_STATS_X_OVER_LOG, ctr, (size_t)f->bootstrap,
                                    moe_seed_derive(seed, "nlogn"), 0.95, &r->lon, &r->hin))
          r->lon = r->hin = NAN;
      }
    }
  free(xs);
  free(y);
  free(gx);
  free(off);
  mb_rep_groups_free(g, ng);
  *nrows = ng * nc;
  return out;
}

void mb_rep_rate_text(mb_buf *b, int ok, double slope, double lo, double hi)
{
  if (!ok) {
    mb_buf_puts(b, "n/a");
    return;
  }
  mb_buf_printf(b, "%.3f", -slope);
  if (!isnan(lo))
    mb_buf_printf(b, " [%.3f, %.3f]", -hi, -lo);
}

const char *const mb_rep_fit_head[6] = {"group",           "loss",  "rate [95% CI]",
                                        "rate on n/log n", "paper", "theory"};

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

void mb_rep_fit_md(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n, int tex)
{
  const char *const *head = mb_rep_fit_head;
  if (tex) {
    mb_buf_puts(b, "\\begin{tabular}{llllll}\n\\toprule\n");
    for (int i = 0; i < 6; i++) {
      mb_buf_puts(b, i ? " & " : "");
      mb_rep_tex_escape(b, head[i]);
    }
    mb_buf_puts(b, " \\\\\n\\midrule\n");
  } else {
    mb_buf_puts(b, "| group | loss | rate [95% CI] | rate on n/log n | paper | theory "
                   "|\n|---|---|---:|---:|---:|---:|\n");
  }
  for (size_t i = 0; i < n; i++) {
    mb_buf c[6];
    for (int k = 0; k < 6; k++) {
      mb_buf_init(&c[k]);
      mb_buf_add(&c[k], "", 0);
    }
    mb_rep_fit_cells(c, f, &r[i]);
    if (tex) {
      for (int k = 0; k < 6; k++) {
        mb_buf_puts(b, k ? " & " : "");
        mb_rep_tex_escape(b, c[k].s);
      }
      mb_buf_puts(b, " \\\\\n");
    } else {
      mb_buf_puts(b, "|");
      for (int k = 0; k < 6; k++) {
        mb_buf_puts(b, " ");
        mb_rep_md_escape(b, c[k].s);
        mb_buf_puts(b, " |");
      }
      mb_buf_puts(b, "\n");
    }
    for (int k = 0; k < 6; k++)
      mb_buf_free(&c[k]);
  }
  if (tex)
    mb_buf_puts(b, "\\bottomrule\n\\end{tabular}\n");
}

/* What a fit shows, after "Fit NAME: ". */
void mb_rep_fit_caption(mb_buf *b, const mb_fit *fit)
{
  mb_buf_printf(b, "rate = -slope of log(%s %s) on log %s",
                fit->ncenters > 1 ? "centre" : center_label[fit->ncenters ? fit->centers[0] : 0],
                fit->y, fit->x);
  if (fit->exclude)
    mb_buf_printf(b, "; cells with %s != 0 left out", fit->exclude);
  if (fit->ncenters > 1) {
    mb_buf_puts(b, "; centres: ");
    for (size_t q = 0; q < fit->ncenters; q++)
      mb_buf_printf(b, "%s%s", q ? ", " : "", center_label[fit->centers[q]]);
    mb_buf_puts(b, " (10%-trimmed)");
  }
  if (fit->bootstrap > 0)
    mb_buf_printf(b, " (95%% CI: %ld bootstrap resamples of the replications)", fit->bootstrap);
}

void mb_rep_brief_fit(mb_buf *b, const store *s, const mb_fit *f, const fitrow *r, size_t n)
{
  size_t nb = f->nby ? f->nby : 1, nc = nb + 4, nr = n + 1;
  char **cell = xcalloc(nr * nc, sizeof *cell);
  for (size_t q = 0; q < nb; q++)
    cell[q] = xdup(f->nby ? f->by[q] : "group");
  cell[nb] = xdup("loss");
  cell[nb + 1] = xdup("rate [95% CI]");
  cell[nb + 2] = xdup("paper");
  cell[nb + 3] = xdup("theory");
  for (size_t i = 0; i < n; i++) {
    char **row = cell + (i + 1) * nc;
    for (size_t q = 0; q < nb; q++)
      row[q] = xdup(f->nby ? r[i].val[q] : "all");
    const char *centre =
        r[i].label ? strstr(r[i].label, " [") : NULL; /* " [median]", " [trmean]" */
    if (centre) { /* rows of the other centres say which they are */
      mb_buf lb;
      mb_buf_init(&lb);
      mb_buf_printf(&lb, "%s%s", row[nb - 1], centre);
      free(row[nb - 1]);
      row[nb - 1] = lb.s;
    }
    const char *loss = mb_rep_ref_get(r[i].ref, "loss"), *p = mb_rep_ref_get(r[i].ref, "paper"),
               *t = mb_rep_ref_get(r[i].ref, "theory");
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
  mb_buf_printf(b, "%s: rate = -slope of log(%s %s) on log %s", f->name,
                f->ncenters > 1 ? "centre of" : "mean", f->y, f->x);
  if (f->bootstrap > 0)
    mb_buf_puts(b, ", 95% bootstrap CI");
  mb_buf_puts(b, "\n");
  mb_rep_text_table(b, cell, nr, nc, nb + 1, rest);
  for (size_t i = 0; i < nr * nc; i++)
    free(cell[i]);
  free(cell);
}

void mb_rep_fit_csv(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n)
{
  mb_buf_puts(b, "group,loss,points,cells,x_min,x_max,rate,rate_ci95_lo,rate_ci95_hi,slope,slope_"
                 "se,intercept,r2,"
                 "rate_nlogn,rate_nlogn_ci95_lo,rate_nlogn_ci95_hi,paper,theory\n");
  for (size_t i = 0; i < n; i++) {
    const char *loss = mb_rep_ref_get(r[i].ref, "loss"), *p = mb_rep_ref_get(r[i].ref, "paper"),
               *t = mb_rep_ref_get(r[i].ref, "theory");
    mb_rep_csv_field(b, r[i].label);
    mb_buf_puts(b, ",");
    mb_rep_csv_field(b, loss ? loss : f->y);
    mb_buf_printf(b, ",%zu,%zu,", r[i].npoints, r[i].ncells);
    double v[] = {r[i].xmin,
                  r[i].xmax,
                  r[i].ok ? -r[i].f.slope : NAN,
                  -r[i].hi,
                  -r[i].lo,
                  r[i].ok ? r[i].f.slope : NAN,
                  r[i].ok ? r[i].f.slope_se : NAN,
                  r[i].ok ? r[i].f.intercept : NAN,
                  r[i].ok ? r[i].f.r2 : NAN,
                  r[i].ok_nlogn ? -r[i].fn.slope : NAN,
                  -r[i].hin,
                  -r[i].lon};
    for (int k = 0; k < 12; k++) {
      if (!isnan(v[k]) && r[i].npoints)
        mb_buf_printf(b, "%.17g", v[k]);
      mb_buf_puts(b, ",");
    }
    mb_rep_csv_field(b, p ? p : "");
    mb_buf_puts(b, ",");
    mb_rep_csv_field(b, t ? t : "");
    mb_buf_puts(b, "\n");
  }
}

void mb_rep_fit_json(mb_buf *b, const mb_fit *f, const fitrow *r, size_t n)
{
  mb_buf_puts(b, "{\"fit\": ");
  mb_buf_json_str(b, f->name);
  mb_buf_puts(b, ", \"x\": ");
  mb_buf_json_str(b, f->x);
  mb_buf_puts(b, ", \"y\": ");
  mb_buf_json_str(b, f->y);
  mb_buf_puts(b, ", \"rate\": \"-slope of log(mean y) on log(x)\", \"groups\": [");
  for (size_t i = 0; i < n; i++) {
    const char *loss = mb_rep_ref_get(r[i].ref, "loss"), *p = mb_rep_ref_get(r[i].ref, "paper"),
               *t = mb_rep_ref_get(r[i].ref, "theory");
    mb_buf_puts(b, i ? ",\n  {\"group\": " : "\n  {\"group\": ");
    mb_buf_json_str(b, r[i].label);
    mb_buf_puts(b, ", \"loss\": ");
    mb_buf_json_str(b, loss ? loss : f->y);
    mb_buf_printf(b, ", \"points\": %zu, \"cells\": %zu", r[i].npoints, r[i].ncells);
    const char *nm[] = {"rate",
                        "rate_ci95_lo",
                        "rate_ci95_hi",
                        "slope",
                        "slope_se",
                        "intercept",
                        "r2",
                        "rate_nlogn",
                        "rate_nlogn_ci95_lo",
                        "rate_nlogn_ci95_hi"};
    double v[] = {r[i].ok ? -r[i].f.slope : NAN,
                  -r[i].hi,
                  -r[i].lo,
                  r[i].ok ? r[i].f.slope : NAN,
                  r[i].ok ? r[i].f.slope_se : NAN,
                  r[i].ok ? r[i].f.intercept : NAN,
                  r[i].ok ? r[i].f.r2 : NAN,
                  r[i].ok_nlogn ? -r[i].fn.slope : NAN,
                  -r[i].hin,
                  -r[i].lon};
    for (int k = 0; k < 10; k++) {
      mb_buf_printf(b, ", \"%s\": ", nm[k]);
      mb_rep_json_num(b, v[k]);
    }
    mb_buf_puts(b, ", \"paper\": ");
    if (p)
      mb_buf_json_str(b, p);
    else
      mb_buf_puts(b, "null");
    mb_buf_puts(b, ", \"theory\": ");
    if (t)
      mb_buf_json_str(b, t);
    else
      mb_buf_puts(b, "null");
    if (!r[i].ok) {
      mb_buf_puts(b, ", \"note\": ");
      mb_buf_json_str(b, r[i].why);
    }
    mb_buf_puts(b, "}");
  }
  mb_buf_puts(b, "\n]}\n");
}
