/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_plot.c — the report's plots: gnuplot scripts and data per plot,
 * rendered to SVG when gnuplot is installed (report_int.h). */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "matrix.h"
#include "report_int.h"

/* ---- plots ---- */

const char *mb_rep_find_gnuplot(char *buf, size_t len)
{
  const char *env = getenv("MOEBENCH_GNUPLOT");
  if (env) {
    if (!*env)
      return NULL; /* set but empty: plotting disabled */
    if (access(env, X_OK) == 0) {
      snprintf(buf, len, "%s", env);
      return buf;
    }
    return NULL;
  }
  const char *path = getenv("PATH");
  if (!path)
    return NULL;
  while (*path) {
    size_t L = strcspn(path, ":");
    snprintf(buf, len, "%.*s/gnuplot", (int)L, L ? path : ".");
    if (access(buf, X_OK) == 0)
      return buf;
    path += L;
    if (*path)
      path++;
  }
  return NULL;
}

static void gp_quote(mb_buf *b, const char *s)
{
  mb_buf_puts(b, "\"");
  for (; *s; s++) {
    if (*s == '\n') {
      mb_buf_puts(b, "\\n");
      continue;
    } /* a line break in a title */
    if (*s == '"' || *s == '\\')
      mb_buf_add(b, "\\", 1);
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
        if (!strcmp(refs[r].key[k], by[q]) && strcmp(refs[r].val[k], vals[q]))
          all = 0;
    if (all)
      return &refs[r];
  }
  return NULL;
}

/* A group's title: the plot's titles entry that selects it, with the
 * by-values that entry does not name on a second line; else its label. */
static void group_title(mb_buf *b, const mb_plot *p, char **vals, const char *labeltext)
{
  const mb_ref *t = match_ref(p->titles, p->ntitles, p->by, p->nby, vals);
  const char *tt = mb_rep_ref_get(t, "title");
  if (!tt) {
    mb_buf_puts(b, labeltext);
    return;
  }
  mb_buf_puts(b, tt);
  int open = 0;
  for (size_t q = 0; q < p->nby; q++) {
    if (mb_rep_ref_get(t, p->by[q]))
      continue;
    mb_buf_printf(b, "%s%s=%s", open ? ", " : "\n", p->by[q], vals[q]);
    open = 1;
  }
}

static void errbar(const mb_plot *p, const moe_stats_summary *sm, double *lo, double *hi)
{
  *lo = *hi = sm->mean;
  if (p->errorbars == MB_S_SD && !isnan(sm->sd)) {
    *lo = sm->mean - sm->sd;
    *hi = sm->mean + sm->sd;
  }
  if (p->errorbars == MB_S_SE && !isnan(sm->se)) {
    *lo = sm->mean - sm->se;
    *hi = sm->mean + sm->se;
  }
  if (p->errorbars == MB_S_CI95 && !isnan(sm->ci95_lo)) {
    *lo = sm->ci95_lo;
    *hi = sm->ci95_hi;
  }
}

/* Data rows of a family plot (x "@"): at each index any cell of the group
 * reports, the summary over the cells reporting it. */
static void family_rows(const store *s, const group *g, const mb_plot *p, mb_buf *dat)
{
  double **pts = xcalloc(g->n, sizeof *pts), *xs = NULL, *v = xcalloc(g->n, sizeof *v);
  size_t *np = xcalloc(g->n, sizeof *np), nx = 0;
  for (size_t c = 0; c < g->n; c++) {
    if (s->status[g->cell[c]] != 1)
      continue;
    np[c] = mb_rep_family_points(&s->rf[g->cell[c]], p->y, &pts[c]);
    xs = realloc(xs, (nx + np[c] + 1) * sizeof *xs);
    if (!xs)
      mb_oom((nx + np[c] + 1) * sizeof *xs);
    for (size_t k = 0; k < np[c]; k++)
      xs[nx++] = pts[c][2 * k];
  }
  if (nx)
    qsort(xs, nx, sizeof *xs, mb_rep_dbl_cmp);
  for (size_t a = 0; a < nx; a++) {
    if (a > 0 && xs[a] == xs[a - 1])
      continue;
    size_t nv = 0;
    for (size_t c = 0; c < g->n; c++)
      for (size_t k = 0; k < np[c]; k++)
        if (pts[c][2 * k] == xs[a])
          v[nv++] = pts[c][2 * k + 1];
    moe_stats_summary sm;
    moe_stats_summarize(v, nv, &sm);
    double lo, hi;
    errbar(p, &sm, &lo, &hi);
    mb_buf_printf(dat, "%.17g %.17g %.17g %.17g %zu\n", xs[a], sm.mean, lo, hi, nv);
  }
  for (size_t c = 0; c < g->n; c++)
    free(pts[c]);
  free(pts);
  free(xs);
  free(v);
  free(np);
}

void mb_rep_plot_one(store *s, const mb_plot *p, const char *gnuplot, int *rendered)
{
  const mb_matrix *m = s->m;
  size_t ng;
  group *g = mb_rep_group_cells(s, p->by, p->nby, &ng);
  const mb_fit *fit = NULL;
  fitrow *fr = NULL;
  size_t nfr = 0;
  for (size_t i = 0; p->fit && i < m->nfits; i++)
    if (!strcmp(m->fits[i].name, p->fit))
      fit = &m->fits[i];
  if (fit)
    fr = mb_rep_fit_compute(s, fit, &nfr);
  mb_buf dat, gp, body;
  mb_buf_init(&dat);
  mb_buf_init(&gp);
  mb_buf_init(&body);
  double *xs = xcalloc(m->ncells, sizeof *xs), *v = xcalloc(m->ncells, sizeof *v);
  size_t *sel = xcalloc(m->ncells, sizeof *sel);
  const char *bars = p->errorbars >= 0 ? mb_stat_names[p->errorbars] : NULL;
  /* the y axis is named after the loss when every group's fit reference
   * names the same one (D1 ...), else after the metric */
  const char *yname = NULL;
  int same_loss = nfr > 0;
  for (size_t q = 0; q < nfr; q++) {
    const char *l = mb_rep_ref_get(fr[q].ref, "loss");
    if (!l || (yname && strcmp(yname, l)))
      same_loss = 0;
    if (l && !yname)
      yname = l;
  }
  if (!same_loss)
    yname = p->y;
  mb_buf_printf(&dat,
                "# moebench report: plot %s of matrix %s: %s vs %s; columns: x mean low high n\n",
                p->name, m->name, p->y, p->x);
  for (size_t i = 0; i < ng; i++) {
    mb_buf l;
    mb_buf_init(&l);
    mb_rep_label(&l, p->by, g[i].val, p->nby, "all");
    mb_buf_printf(&dat, "%s# %s\n", i ? "\n\n" : "", l.s);
    if (!strcmp(p->x, "@"))
      family_rows(s, &g[i], p, &dat);
    size_t nx = 0;
    if (!strcmp(p->x, "@"))
      goto clause;
    for (size_t c = 0; c < g[i].n; c++)
      xs[nx++] = strtod(mb_xcell_get(&m->cells[g[i].cell[c]], p->x), NULL);
    qsort(xs, nx, sizeof *xs, mb_rep_dbl_cmp);
    for (size_t a = 0; a < nx; a++) {
      if (a > 0 && xs[a] == xs[a - 1])
        continue;
      size_t k = 0;
      for (size_t c = 0; c < g[i].n; c++)
        if (strtod(mb_xcell_get(&m->cells[g[i].cell[c]], p->x), NULL) == xs[a])
          sel[k++] = g[i].cell[c];
      size_t nv = mb_rep_values(s, sel, k, p->y, NULL, v);
      if (!nv)
        continue;
      moe_stats_summary sm;
      moe_stats_summarize(v, nv, &sm);
      double lo = sm.mean, hi = sm.mean;
      if (p->errorbars == MB_S_SD && !isnan(sm.sd)) {
        lo = sm.mean - sm.sd;
        hi = sm.mean + sm.sd;
      }
      if (p->errorbars == MB_S_SE && !isnan(sm.se)) {
        lo = sm.mean - sm.se;
        hi = sm.mean + sm.se;
      }
      if (p->errorbars == MB_S_CI95 && !isnan(sm.ci95_lo)) {
        lo = sm.ci95_lo;
        hi = sm.ci95_hi;
      }
      mb_buf_printf(&dat, "%.17g %.17g %.17g %.17g %zu\n", xs[a], sm.mean, lo, hi, nv);
    }
  clause:;
    const fitrow *row = NULL;
    for (size_t q = 0; q < nfr; q++)
      if (fr[q].ok && !strcmp(fr[q].label, l.s))
        row = &fr[q];
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
    if (p->panels)
      snprintf(lc, sizeof lc, "rgb '#0060ad'");
    else
      snprintf(lc, sizeof lc, "%zu", i + 1);
    mb_buf_printf(&body, "%s'%s.dat' index %zu using 1:2%s with %s lw 2 lc %s title ",
                  p->panels ? "plot " : (i ? ", \\\n     " : "plot "), p->name, i,
                  bars ? ":3:4" : "", bars ? "yerrorlines" : "linespoints", lc);
    {
      mb_buf dt;
      mb_buf_init(&dt);
      if (p->panels)
        mb_buf_printf(&dt, "mean%s%s", bars ? " ± " : "", bars ? bars : "");
      else
        mb_buf_puts(&dt, gt.s);
      gp_quote(&body, dt.s);
      mb_buf_free(&dt);
    }
    if (row) {
      char t[160];
      snprintf(t, sizeof t, "fit: rate %.3f", -row->f.slope);
      mb_buf_printf(
          &body,
          ", \\\n     [%.17g:%.17g] exp(%.17g) * x**(%.17g) with lines lw 2 dt 2 lc %s title ",
          row->xmin, row->xmax, row->f.intercept, row->f.slope, lc);
      gp_quote(&body, t);
      double xm = sqrt(row->xmin * row->xmax), ym = exp(row->f.intercept) * pow(xm, row->f.slope);
      const char *lab[2] = {"paper", "theory"};
      const char *style[2] = {"dt 3 lw 2 lc rgb 'black'", "dt 4 lw 2 lc rgb 'gray50'"};
      for (int k = 0; k < 2; k++) {
        const char *rv = mb_rep_ref_get(row->ref, lab[k]);
        char *end;
        double rate = rv ? strtod(rv, &end) : NAN;
        if (!rv || *end || !isfinite(rate) || !isfinite(ym) || !(xm > 0))
          continue;
        if (!p->panels)
          snprintf(t, sizeof t, "%s: rate %s (%s)", lab[k], rv, gt.s);
        else if (rate == 0.5)
          snprintf(t, sizeof t, "%s: rate %s (n^-1/2)", lab[k], rv);
        else
          snprintf(t, sizeof t, "%s: rate %s", lab[k], rv);
        /* one panel: black and grey; several curves: the group's colour */
        char st[64];
        if (p->panels)
          snprintf(st, sizeof st, "%s", style[k]);
        else
          snprintf(st, sizeof st, "dt %d lw 1 lc %zu", k ? 4 : 3, i + 1);
        mb_buf_printf(&body,
                      ", \\\n     [%.17g:%.17g] %.17g * (x / %.17g)**(%.17g) with lines %s title ",
                      row->xmin, row->xmax, ym, xm, -rate, st);
        gp_quote(&body, t);
      }
    }
    if (p->panels)
      mb_buf_puts(&body, "\n");
    mb_buf_free(&gt);
    mb_buf_free(&l);
  }
  if (!p->panels)
    mb_buf_puts(&body, "\n");
  free(xs);
  free(v);
  free(sel);

  mb_buf_printf(&gp,
                "# gnuplot script written by moebench report (matrix %s, plot %s).\n"
                "# Renders %s.png and %s.svg from %s.dat: gnuplot %s.gp\n",
                m->name, p->name, p->name, p->name, p->name, p->name);
  /* legends below the plot, never over the data */
  mb_buf_puts(&gp, "set encoding utf8\nset key below left Left reverse noenhanced\nset grid\nset "
                   "bars small\nset offsets graph 0.03, graph 0.03, 0, 0\n");
  if (p->logx)
    mb_buf_puts(&gp, "set logscale x\n");
  if (p->logy)
    mb_buf_puts(&gp, "set logscale y\n");
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
  const char *terms[2][3] = {{"png",
                              "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) { set terminal "
                              "pngcairo size %d,%d } else { set terminal png size %d,%d }\n",
                              ""},
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
    if (p->panels)
      mb_buf_puts(&gp, "unset multiplot\n");
    mb_buf_puts(&gp, "unset output\n");
  }
  char f[300];
  snprintf(f, sizeof f, "%s.dat", p->name);
  mb_rep_write_out(s, f, &dat);
  snprintf(f, sizeof f, "%s.gp", p->name);
  mb_rep_write_out(s, f, &gp);
  if (gnuplot) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      if (chdir(s->repdir))
        _exit(127);
      execl(gnuplot, "gnuplot", f, (char *)NULL);
      _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws)) {
      fprintf(stderr, "moebench report: gnuplot failed on %s/%s\n", s->repdir, f);
      s->bad = 1;
    } else {
      fprintf(stderr, "moebench report: rendered %s/%s.png and %s.svg\n", s->repdir, p->name,
              p->name);
      (*rendered)++;
    }
  }
  mb_buf_free(&dat);
  mb_buf_free(&gp);
  mb_buf_free(&body);
  for (size_t q = 0; q < nfr; q++) {
    free(fr[q].label);
    for (size_t k = 0; fit && k < fit->nby; k++)
      free(fr[q].val[k]);
    free(fr[q].val);
  }
  free(fr);
  mb_rep_groups_free(g, ng);
}
