/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_table.c — the report's tables (a grid of statistics per row and
 * column group, paired differences, power, Holm families) in Markdown,
 * LaTeX, CSV and JSON, and brief.txt, the few lines for a terminal
 * (report_int.h). */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "report_int.h"
#include "power.h"

/* ---- tables ---- */

/* A stat of a summary as text (md/tex) */
static void stat_text(mb_buf *b, const moe_stats_summary *sm, int stat)
{
  if (sm->n == 0)
    return;
  switch (stat) {
  case MB_S_MEAN: mb_rep_fmt_num(b, sm->mean, 0); break;
  case MB_S_SD: mb_rep_fmt_num(b, sm->sd, 0); break;
  case MB_S_SE: mb_rep_fmt_num(b, sm->se, 0); break;
  case MB_S_CI95:
    if (isnan(sm->ci95_lo))
      mb_buf_puts(b, "n/a");
    else {
      mb_buf_puts(b, "[");
      mb_rep_fmt_num(b, sm->ci95_lo, 0);
      mb_buf_puts(b, ", ");
      mb_rep_fmt_num(b, sm->ci95_hi, 0);
      mb_buf_puts(b, "]");
    }
    break;
  case MB_S_N: mb_buf_printf(b, "%zu", sm->n); break;
  case MB_S_MEDIAN: mb_rep_fmt_num(b, sm->median, 0); break;
  case MB_S_MIN: mb_rep_fmt_num(b, sm->min, 0); break;
  case MB_S_MAX: mb_rep_fmt_num(b, sm->max, 0); break;
  case MB_S_TRMEAN: mb_rep_fmt_num(b, sm->trmean, 0); break;
  }
}

void mb_rep_grid_build(const store *s, const mb_table *t, grid *g)
{
  const mb_matrix *m = s->m;
  g->rows = mb_rep_group_cells(s, t->rows, t->nrows, &g->nr);
  g->cols = mb_rep_group_cells(s, t->cols, t->ncols, &g->nc);
  g->sum = xcalloc(g->nr * g->nc, sizeof *g->sum);
  int *mask = xcalloc(m->ncells, sizeof *mask);
  double *v = xcalloc(m->ncells, sizeof *v);
  for (size_t j = 0; j < g->nc; j++) {
    memset(mask, 0, m->ncells * sizeof *mask);
    for (size_t i = 0; i < g->cols[j].n; i++)
      mask[g->cols[j].cell[i]] = 1;
    for (size_t r = 0; r < g->nr; r++) {
      size_t k = 0;
      for (size_t i = 0; i < g->rows[r].n; i++) {
        size_t c = g->rows[r].cell[i];
        if (mask[c] && mb_rep_table_value(s, t, c, &v[k]))
          k++;
      }
      moe_stats_summary *sm = &g->sum[r * g->nc + j];
      memset(sm, 0, sizeof *sm);
      if (k)
        moe_stats_summarize(v, k, sm);
    }
  }
  free(mask);
  free(v);
  g->nstats = 0;
  for (size_t q = 0; q < t->nstats; q++)
    g->stats[g->nstats++] = t->stats[q];
  g->power = t->paired && !t->reach;
  if (!g->power)
    return;
  int has_sd = 0;
  for (size_t q = 0; q < t->nstats; q++)
    if (t->stats[q] == MB_S_SD)
      has_sd = 1;
  if (!has_sd)
    g->stats[g->nstats++] = MB_S_SD;
  g->stats[g->nstats++] = X_MDE;
  g->stats[g->nstats++] = X_P;
  g->stats[g->nstats++] = X_PHOLM;
  g->stats[g->nstats++] = X_HOLM;
  if (!isnan(t->power_effect))
    g->stats[g->nstats++] = X_NFOR;
  size_t k = g->nr * g->nc;
  g->mde = xcalloc(k, sizeof *g->mde);
  g->p = xcalloc(k, sizeof *g->p);
  g->padj = xcalloc(k, sizeof *g->padj);
  g->nfor = xcalloc(k, sizeof *g->nfor);
  for (size_t i = 0; i < k; i++) {
    const moe_stats_summary *sm = &g->sum[i];
    g->mde[i] = g->p[i] = g->padj[i] = g->nfor[i] = NAN;
    /* the baseline row (each cell minus itself) is no comparison */
    if (sm->n < 2 || (sm->sd == 0 && sm->mean == 0))
      continue;
    g->mde[i] = sm->sd * mb_power_mde((double)sm->n, MB_ALPHA, MB_POWER);
    g->p[i] = mb_power_pvalue(sm->mean, sm->sd, sm->n);
    if (!isnan(t->power_effect) && sm->sd > 0)
      g->nfor[i] = ceil(mb_power_n_for(t->power_effect / sm->sd, MB_ALPHA, MB_POWER));
    else if (!isnan(t->power_effect))
      g->nfor[i] = 2;
  }
}

/* Holm over every comparison of the paired tables of one family (a
 * table's `family`, else its name). */
void mb_rep_holm_families(const mb_matrix *m, grid *gs)
{
  int *done = xcalloc(m->ntables, sizeof *done);
  for (size_t a = 0; a < m->ntables; a++) {
    if (!gs[a].power || done[a])
      continue;
    const char *fam = m->tables[a].family ? m->tables[a].family : m->tables[a].name;
    size_t total = 0;
    for (size_t b = a; b < m->ntables; b++) {
      const char *fb = m->tables[b].family ? m->tables[b].family : m->tables[b].name;
      if (gs[b].power && !strcmp(fam, fb))
        total += gs[b].nr * gs[b].nc;
    }
    double *p = xcalloc(total, sizeof *p), *adj = xcalloc(total, sizeof *adj);
    size_t k = 0, members = 0;
    for (size_t b = a; b < m->ntables; b++) {
      const char *fb = m->tables[b].family ? m->tables[b].family : m->tables[b].name;
      if (!gs[b].power || strcmp(fam, fb))
        continue;
      for (size_t i = 0; i < gs[b].nr * gs[b].nc; i++) {
        p[k++] = gs[b].p[i];
        if (!isnan(gs[b].p[i]))
          members++;
      }
    }
    mb_power_holm(p, total, adj);
    k = 0;
    for (size_t b = a; b < m->ntables; b++) {
      const char *fb = m->tables[b].family ? m->tables[b].family : m->tables[b].name;
      if (!gs[b].power || strcmp(fam, fb))
        continue;
      for (size_t i = 0; i < gs[b].nr * gs[b].nc; i++)
        gs[b].padj[i] = adj[k++];
      gs[b].nfamily = members;
      done[b] = 1;
    }
    free(p);
    free(adj);
  }
  free(done);
}

void mb_rep_grid_free(grid *g)
{
  mb_rep_groups_free(g->rows, g->nr);
  mb_rep_groups_free(g->cols, g->nc);
  free(g->sum);
  free(g->mde);
  free(g->p);
  free(g->padj);
  free(g->nfor);
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
  if (stat < MB_S_COUNT) {
    stat_text(b, sm, stat);
    return;
  }
  if (sm->n == 0)
    return;
  switch (stat) {
  case X_MDE: mb_rep_fmt_num(b, g->mde[i], 0); break;
  case X_P: mb_rep_fmt_num(b, g->p[i], 0); break;
  case X_PHOLM: mb_rep_fmt_num(b, g->padj[i], 0); break;
  case X_HOLM:
    if (isnan(g->p[i]))
      mb_buf_puts(b, "n/a");
    else
      mb_buf_puts(b, g->padj[i] < MB_ALPHA ? "differs" : g->p[i] < MB_ALPHA ? "raw only" : "-");
    break;
  case X_NFOR:
    if (isnan(g->nfor[i]))
      mb_buf_puts(b, "n/a");
    else if (isinf(g->nfor[i]))
      mb_buf_puts(b, ">1e7");
    else
      mb_buf_printf(b, "%.0f", g->nfor[i]);
    break;
  }
}

static void col_head(mb_buf *b, const mb_table *t, const grid *g, size_t j, int stat, int tex)
{
  mb_buf l;
  mb_buf_init(&l);
  if (t->ncols) {
    mb_rep_label(&l, t->cols, g->cols[j].val, t->ncols, "");
    mb_buf_puts(&l, " ");
  }
  mb_rep_stat_name(&l, t, stat);
  if (tex)
    mb_rep_tex_escape(b, l.s);
  else
    mb_rep_md_escape(b, l.s);
  mb_buf_free(&l);
}

void mb_rep_table_md(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "|");
  for (size_t k = 0; k < t->nrows; k++) {
    mb_buf_puts(b, " ");
    mb_rep_md_escape(b, t->rows[k]);
    mb_buf_puts(b, " |");
  }
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) {
      mb_buf_puts(b, " ");
      col_head(b, t, g, j, g->stats[q], 0);
      mb_buf_puts(b, " |");
    }
  mb_buf_puts(b, "\n|");
  for (size_t k = 0; k < t->nrows; k++)
    mb_buf_puts(b, "---|");
  for (size_t j = 0; j < g->nc * g->nstats; j++)
    mb_buf_puts(b, "---:|");
  mb_buf_puts(b, "\n");
  for (size_t r = 0; r < g->nr; r++) {
    mb_buf_puts(b, "|");
    for (size_t k = 0; k < t->nrows; k++) {
      mb_buf_puts(b, " ");
      mb_rep_md_escape(b, g->rows[r].val[k]);
      mb_buf_puts(b, " |");
    }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < g->nstats; q++) {
        mb_buf_puts(b, " ");
        mb_rep_cell_text(b, g, r * g->nc + j, g->stats[q]);
        mb_buf_puts(b, " |");
      }
    mb_buf_puts(b, "\n");
  }
}

void mb_rep_table_tex(mb_buf *b, const mb_table *t, const grid *g)
{
  mb_buf_puts(b, "\\begin{tabular}{");
  for (size_t k = 0; k < t->nrows; k++)
    mb_buf_puts(b, "l");
  for (size_t j = 0; j < g->nc * g->nstats; j++)
    mb_buf_puts(b, "r");
  mb_buf_puts(b, "}\n\\toprule\n");
  int first = 1;
  for (size_t k = 0; k < t->nrows; k++) {
    mb_buf_puts(b, first ? "" : " & ");
    first = 0;
    mb_rep_tex_escape(b, t->rows[k]);
  }
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) {
      mb_buf_puts(b, " & ");
      col_head(b, t, g, j, g->stats[q], 1);
    }
  mb_buf_puts(b, " \\\\\n\\midrule\n");
  for (size_t r = 0; r < g->nr; r++) {
    for (size_t k = 0; k < t->nrows; k++) {
      mb_buf_puts(b, k ? " & " : "");
      mb_rep_tex_escape(b, g->rows[r].val[k]);
    }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < g->nstats; q++) {
        mb_buf c;
        mb_buf_init(&c);
        mb_buf_add(&c, "", 0);
        mb_rep_cell_text(&c, g, r * g->nc + j, g->stats[q]);
        mb_buf_puts(b, " & ");
        mb_rep_tex_escape(b, c.s);
        mb_buf_free(&c);
      }
    mb_buf_puts(b, " \\\\\n");
  }
  mb_buf_puts(b, "\\bottomrule\n\\end{tabular}\n");
}

/* csv and json are long ("tidy"): one record per (row, column) group with
 * every statistic at full precision. */
void mb_rep_table_csv(mb_buf *b, const mb_table *t, const grid *g)
{
  for (size_t k = 0; k < t->nrows; k++)
    mb_buf_printf(b, "%s,", t->rows[k]);
  for (size_t k = 0; k < t->ncols; k++)
    mb_buf_printf(b, "%s,", t->cols[k]);
  mb_buf_puts(b, "metric,n,mean,sd,se,ci95_lo,ci95_hi,median,min,max,trmean");
  if (g->power)
    mb_buf_puts(b, isnan(t->power_effect) ? ",mde80,p,p_holm" : ",mde80,p,p_holm,n_for_effect");
  mb_buf_puts(b, "\n");
  for (size_t r = 0; r < g->nr; r++)
    for (size_t j = 0; j < g->nc; j++) {
      const moe_stats_summary *sm = &g->sum[r * g->nc + j];
      if (!sm->n)
        continue;
      for (size_t k = 0; k < t->nrows; k++) {
        mb_rep_csv_field(b, g->rows[r].val[k]);
        mb_buf_puts(b, ",");
      }
      for (size_t k = 0; k < t->ncols; k++) {
        mb_rep_csv_field(b, g->cols[j].val[k]);
        mb_buf_puts(b, ",");
      }
      mb_buf_printf(b, "%s,%zu", t->metric, sm->n);
      double v[] = {sm->mean,   sm->sd,  sm->se,  sm->ci95_lo, sm->ci95_hi,
                    sm->median, sm->min, sm->max, sm->trmean};
      for (int i = 0; i < 9; i++) {
        mb_buf_puts(b, ",");
        if (!isnan(v[i]))
          mb_buf_printf(b, "%.17g", v[i]);
      }
      if (g->power) {
        size_t k = r * g->nc + j;
        double w[] = {g->mde[k], g->p[k], g->padj[k], g->nfor[k]};
        for (int i = 0; i < (isnan(t->power_effect) ? 3 : 4); i++) {
          mb_buf_puts(b, ",");
          if (!isnan(w[i]))
            mb_buf_printf(b, "%.17g", w[i]);
        }
      }
      mb_buf_puts(b, "\n");
    }
}

void mb_rep_table_json(mb_buf *b, const mb_table *t, const grid *g)
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
      if (!sm->n)
        continue;
      mb_buf_puts(b, first ? "\n  {" : ",\n  {");
      first = 0;
      for (size_t k = 0; k < t->nrows; k++) {
        mb_buf_json_str(b, t->rows[k]);
        mb_buf_puts(b, ": ");
        mb_buf_json_str(b, g->rows[r].val[k]);
        mb_buf_puts(b, ", ");
      }
      for (size_t k = 0; k < t->ncols; k++) {
        mb_buf_json_str(b, t->cols[k]);
        mb_buf_puts(b, ": ");
        mb_buf_json_str(b, g->cols[j].val[k]);
        mb_buf_puts(b, ", ");
      }
      mb_buf_printf(b, "\"n\": %zu", sm->n);
      const char *nm[] = {"mean",   "sd",  "se",  "ci95_lo", "ci95_hi",
                          "median", "min", "max", "trmean"};
      double v[] = {sm->mean,   sm->sd,  sm->se,  sm->ci95_lo, sm->ci95_hi,
                    sm->median, sm->min, sm->max, sm->trmean};
      for (int i = 0; i < 9; i++) {
        mb_buf_printf(b, ", \"%s\": ", nm[i]);
        mb_rep_json_num(b, v[i]);
      }
      if (g->power) {
        size_t k = r * g->nc + j;
        const char *pn[] = {"mde80", "p", "p_holm", "n_for_effect"};
        double w[] = {g->mde[k], g->p[k], g->padj[k], g->nfor[k]};
        for (int i = 0; i < (isnan(t->power_effect) ? 3 : 4); i++) {
          mb_buf_printf(b, ", \"%s\": ", pn[i]);
          mb_rep_json_num(b, w[i]);
        }
      }
      mb_buf_puts(b, "}");
    }
  mb_buf_puts(b, "\n]}\n");
}

/* What a table shows, after "Table NAME: ". */
void mb_rep_table_caption(mb_buf *b, const mb_table *t)
{
  if (t->reach)
    mb_buf_printf(b,
                  "first %s index at which %s reaches its final value at %s=%s (same replication), "
                  "as a fraction of the run; replications that never reach it are left out (n)",
                  t->metric, t->metric, t->rows[0], t->paired);
  else if (t->paired)
    mb_buf_printf(b, "%s minus %s's value at %s=%s (paired by replication)", t->metric, t->metric,
                  t->rows[0], t->paired);
  else
    mb_buf_printf(b, "%s over replications", t->metric);
}

/* The power columns of a paired table, explained (nothing for others). */
void mb_rep_table_legend(mb_buf *b, const mb_table *t, const grid *g)
{
  if (!t->paired || t->reach)
    return;
  mb_buf_printf(
      b,
      "sd: of the paired differences; mde80: the smallest difference a two-sided paired t test at "
      "level 0.05 detects with power 0.8 at this n (noncentral t, sd as estimated); p: that test "
      "of no difference; p_holm: Holm-adjusted over the %zu comparisons of family `%s`; holm: "
      "differs (p_holm < 0.05), raw only (p < 0.05 only), or -",
      g->nfamily, t->family ? t->family : t->name);
  if (!isnan(t->power_effect))
    mb_buf_printf(b, "; n for %.6g: replications for power 0.8 against a difference of %.6g",
                  t->power_effect, t->power_effect);
  mb_buf_puts(b, ".");
}

/* ---- brief.txt: the few lines for a terminal ---- */

/* Is table/fit `name` part of the terminal summary? The matrix's
 * `summary:` list if it has one; otherwise every fit, or failing that the
 * first table. */
int mb_rep_in_brief(const mb_matrix *m, const char *name, int is_fit)
{
  if (m->nsummary) {
    for (size_t i = 0; i < m->nsummary; i++)
      if (!strcmp(m->summary[i], name))
        return 1;
    return 0;
  }
  if (m->nfits)
    return is_fit;
  return !is_fit && m->ntables && !strcmp(m->tables[0].name, name);
}

/* Aligned plain text of cell[r * nc + c] (row 0 is the header), indented
 * by two spaces: columns that would pass BRIEF_COLS and rows past
 * BRIEF_ROWS are left out with a line saying where the rest is. */
void mb_rep_text_table(mb_buf *b, char **cell, size_t nr, size_t nc, size_t nfirst_left,
                       const char *rest)
{
  size_t *w = xcalloc(nc, sizeof *w), used = 2, keep = 0;
  for (size_t c = 0; c < nc; c++)
    for (size_t r = 0; r < nr; r++) {
      size_t L = strlen(cell[r * nc + c]);
      if (L > w[c])
        w[c] = L;
    }
  for (size_t c = 0; c < nc; c++) {
    size_t add = w[c] + (c ? 2 : 0);
    if (c > 0 && used + add > BRIEF_COLS)
      break;
    used += add;
    keep++;
  }
  size_t show = nr > BRIEF_ROWS + 1 ? BRIEF_ROWS + 1 : nr;
  for (size_t r = 0; r < show; r++) {
    mb_buf_puts(b, "  ");
    for (size_t c = 0; c < keep; c++) {
      const char *t = cell[r * nc + c];
      int pad = (int)(w[c] - strlen(t));
      if (c < nfirst_left)
        mb_buf_printf(b, "%s%*s", t, c + 1 < keep ? pad : 0, "");
      else
        mb_buf_printf(b, "%*s%s", pad, "", t);
      if (c + 1 < keep)
        mb_buf_puts(b, "  ");
    }
    mb_buf_puts(b, "\n");
  }
  if (show < nr || keep < nc) {
    mb_buf_puts(b, "  (");
    if (show < nr)
      mb_buf_printf(b, "%zu more row%s", nr - show, nr - show > 1 ? "s" : "");
    if (show < nr && keep < nc)
      mb_buf_puts(b, ", ");
    if (keep < nc)
      mb_buf_printf(b, "%zu more column%s", nc - keep, nc - keep > 1 ? "s" : "");
    mb_buf_printf(b, ": %s)\n", rest);
  }
  free(w);
}

void mb_rep_brief_table(mb_buf *b, const store *s, const mb_table *t, const grid *g)
{
  size_t nc = t->nrows + g->nc * g->nstats, nr = g->nr + 1;
  char **cell = xcalloc(nr * nc, sizeof *cell);
  for (size_t k = 0; k < t->nrows; k++)
    cell[k] = xdup(t->rows[k]);
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) {
      mb_buf h;
      mb_buf_init(&h);
      mb_buf_add(&h, "", 0);
      if (t->ncols) {
        for (size_t k = 0; k < t->ncols; k++)
          mb_buf_printf(&h, "%s%s", k ? "," : "", g->cols[j].val[k]);
        mb_buf_puts(&h, " ");
      }
      mb_rep_stat_name(&h, t, g->stats[q]);
      cell[t->nrows + j * g->nstats + q] = h.s;
    }
  for (size_t r = 0; r < g->nr; r++) {
    for (size_t k = 0; k < t->nrows; k++)
      cell[(r + 1) * nc + k] = xdup(g->rows[r].val[k]);
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
  mb_rep_text_table(b, cell, nr, nc, t->nrows, rest);
  for (size_t i = 0; i < nr * nc; i++)
    free(cell[i]);
  free(cell);
}
