/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_plan.c — `moebench plan`: from a pilot run, the replications and
 * CPU time each comparison of a matrix's paired tables needs (report_int.h). */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "matrix.h"
#include "report_int.h"
#include "moe/version.h"
#include "power.h"
#include "verbs.h"

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
  double mean, sd, mde, cpu_pair; /* cpu_pair: mean CPU s of (cell + baseline) per replication */
  long n_t, n_cs;                 /* half-width target: fixed-n t, confidence sequence (0: > 1e6) */
  double n_effect, effect;        /* effect target (NaN: none) */
} planrow;

static double cell_cpu(const store *s, size_t c)
{
  double v;
  if (s->status[c] != 1)
    return NAN;
  const mb_json *t = mb_json_get(mb_json_get(s->rf[c].doc, "timing"), "cpu_s");
  return t && mb_json_as_double(t, &v) && v >= 0 ? v : NAN;
}

static void plan_num(mb_buf *b, double v, int f)
{
  if (isnan(v)) {
    mb_buf_puts(b, f == F_JSON ? "null" : f == F_CSV ? "" : "n/a");
    return;
  }
  if (f == F_MD)
    mb_rep_fmt_num(b, v, 0);
  else
    mb_buf_printf(b, "%.17g", v);
}

static void plan_count(mb_buf *b, double v, int f)
{
  if (isnan(v))
    plan_num(b, v, f);
  else if (isinf(v) || v > 1e6)
    mb_buf_puts(b, f == F_JSON ? "null" : f == F_CSV ? "" : ">1e6");
  else
    mb_buf_printf(b, "%.0f", v);
}

int mb_verb_plan(int argc, char **argv)
{
  const char *file = NULL, *pilot = NULL;
  double w = NAN, effect = NAN;
  int fmt = F_MD;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(plan_usage, stdout);
      return 0;
    }
    if (!strcmp(a, "--version")) {
      printf("moebench plan %s (libmoe %s)\n", MOE_VERSION_STRING, moe_version());
      return 0;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    int which = 0;
    if (!strcmp(a, "--pilot"))
      which = 1;
    else if (!strcmp(a, "--half-width"))
      which = 2;
    else if (!strcmp(a, "--effect"))
      which = 3;
    else if (!strcmp(a, "--format"))
      which = 4;
    if (which) {
      if (i + 1 >= argc) {
        fprintf(stderr, "moebench plan: %s needs a value\n", a);
        return 2;
      }
      v = argv[++i];
    }
    char *end;
    if (which == 1)
      pilot = v;
    else if (which == 2 || which == 3) {
      double d = strtod(v, &end);
      if (end == v || *end || !(d > 0) || !isfinite(d)) {
        fprintf(stderr, "moebench plan: %s must be a positive number, got '%s'\n", a, v);
        return 2;
      }
      if (which == 2)
        w = d;
      else
        effect = d;
    } else if (which == 4) {
      if (!strcmp(v, "md"))
        fmt = F_MD;
      else if (!strcmp(v, "csv"))
        fmt = F_CSV;
      else if (!strcmp(v, "json"))
        fmt = F_JSON;
      else {
        fprintf(stderr, "moebench plan: unknown format '%s' (md, csv, json)\n", v);
        return 2;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "moebench plan: unknown option '%s'\n%s", a, plan_usage);
      return 2;
    } else if (!file)
      file = a;
    else {
      fprintf(stderr, "moebench plan: one matrix file at a time\n");
      return 2;
    }
  }
  if (!file || !pilot) {
    fputs(plan_usage, stderr);
    return 2;
  }
  int st;
  mb_matrix *m = mb_matrix_load_stderr(file, &st);
  if (!m)
    return st;
  if (isnan(w) && m->sequential.set)
    w = m->sequential.half_width;
  int any_effect = !isnan(effect);
  for (size_t i = 0; i < m->ntables; i++)
    if (!isnan(m->tables[i].power_effect))
      any_effect = 1;
  if (isnan(w) && !any_effect) {
    fprintf(stderr,
            "moebench plan: no target: give --half-width W or --effect X (or put sequential: or "
            "power: {effect: X} in %s)\n",
            file);
    mb_matrix_free(m);
    return 2;
  }
  /* the pilot: DIR/NAME or DIR itself; its replication count from its
   * stored matrix or sequential record, so every pilot pair is found */
  char dir[4200], p[4400];
  snprintf(p, sizeof p, "%s/cells", pilot);
  if (access(p, F_OK) == 0)
    snprintf(dir, sizeof dir, "%s", pilot);
  else
    snprintf(dir, sizeof dir, "%s/%s", pilot, m->name);
  snprintf(p, sizeof p, "%s/cells", dir);
  if (access(p, F_OK)) {
    fprintf(stderr, "moebench plan: %s: no pilot results (neither %s/cells nor %s/%s/cells)\n",
            pilot, pilot, pilot, m->name);
    mb_matrix_free(m);
    return 2;
  }
  long reps = m->replications, seqn;
  mb_json *seq = mb_rep_seq_record(dir, &seqn, "moebench plan");
  mb_json_free(seq);
  if (seqn > reps)
    reps = seqn;
  snprintf(p, sizeof p, "%s/matrix.yaml", dir);
  mb_matrix *pm = NULL;
  mb_buf msgs;
  mb_buf_init(&msgs);
  if (access(p, R_OK) == 0 && mb_matrix_load(p, &pm, &msgs) == 0 && pm->replications > reps)
    reps = pm->replications;
  mb_matrix_free(pm);
  mb_buf_free(&msgs);
  const double c =
      m->sequential.set
          ? mb_cs_tmix_c(MB_ALPHA, fmax(2, floor(sqrt((double)m->file_replications *
                                                      (double)m->sequential.max_replications))))
          : NAN;
  mb_matrix_free(m);
  mb_matrix_set_replications(reps);
  m = mb_matrix_load_stderr(file, &st);
  mb_matrix_set_replications(0);
  if (!m)
    return st;
  store s;
  memset(&s, 0, sizeof s);
  mb_rep_store_load(&s, m, dir, "moebench plan");
  planrow *rows = NULL;
  size_t nrow = 0, thin = 0;
  for (size_t i = 0; i < m->ntables; i++) {
    const mb_table *t = &m->tables[i];
    if (!t->paired || t->reach)
      continue;
    grid g;
    mb_rep_grid_build(&s, t, &g);
    double eff = !isnan(effect) ? effect : t->power_effect;
    for (size_t r = 0; r < g.nr; r++) {
      if (!strcmp(g.rows[r].val[0], t->paired))
        continue;
      for (size_t j = 0; j < g.nc; j++) {
        const moe_stats_summary *sm = &g.sum[r * g.nc + j];
        rows = realloc(rows, (nrow + 1) * sizeof *rows);
        if (!rows)
          mb_oom(0);
        planrow *x = &rows[nrow++];
        mb_buf l;
        mb_buf_init(&l);
        mb_buf_printf(&l, "%s: %s=%s", t->name, t->rows[0], g.rows[r].val[0]);
        if (t->ncols) {
          mb_buf_puts(&l, ", ");
          mb_rep_label(&l, t->cols, g.cols[j].val, t->ncols, "");
        }
        x->label = l.s;
        x->n = sm->n;
        x->mean = sm->n ? sm->mean : NAN;
        x->sd = sm->n >= 2 ? sm->sd : NAN;
        x->mde = sm->n >= 2 ? sm->sd * mb_power_mde((double)sm->n, MB_ALPHA, MB_POWER) : NAN;
        x->effect = eff;
        x->n_effect = NAN;
        x->n_t = x->n_cs = -1;
        if (sm->n < 2) {
          thin++;
        } else {
          if (!isnan(eff))
            x->n_effect = sm->sd > 0 ? ceil(mb_power_n_for(eff / sm->sd, MB_ALPHA, MB_POWER)) : 2;
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
          for (size_t b = 0; b < g.cols[j].n && !in; b++)
            if (g.cols[j].cell[b] == cell)
              in = 1;
          if (!in)
            continue;
          long bc = mb_rep_baseline_cell(&s, t, cell);
          double u = cell_cpu(&s, cell), v = bc >= 0 ? cell_cpu(&s, (size_t)bc) : NAN;
          if (isnan(u) || isnan(v))
            continue;
          cpu += u + v;
          nc++;
        }
        x->cpu_pair = nc ? cpu / (double)nc : NAN;
      }
    }
    mb_rep_grid_free(&g);
  }
  /* the whole matrix: CPU per replication (all cells) from the pilot */
  double all = 0;
  size_t nall = 0;
  for (size_t cidx = 0; cidx < m->ncells; cidx++) {
    double u = cell_cpu(&s, cidx);
    if (!isnan(u)) {
      all += u;
      nall++;
    }
  }
  double per_rep = nall ? all / (double)nall * (double)m->ncells / (double)reps : NAN;
  int rc = 0;
  if (!nrow) {
    fprintf(stderr,
            "moebench plan: %s has no paired tables (paired: without reach): nothing to plan\n",
            file);
    rc = 2;
  } else if (thin == nrow) {
    fprintf(stderr,
            "moebench plan: %s: fewer than 2 pilot pairs in every comparison: run the pilot with "
            "replications >= 2\n",
            dir);
    rc = 1;
  }
  double need_max = 0;
  mb_buf b;
  mb_buf_init(&b);
  if (!rc && fmt == F_MD) {
    mb_buf_printf(&b, "# Plan for %s from the pilot in %s (%ld replications scanned)\n\n", m->name,
                  dir, reps);
    mb_buf_puts(&b, "| comparison | pilot n | mean | sd | mde80 at pilot n |");
    if (!isnan(w))
      mb_buf_printf(&b, " n: t half-width %.4g | n: CS half-width %.4g |", w, w);
    if (any_effect)
      mb_buf_puts(&b, " effect | n: power 0.8 |");
    mb_buf_puts(&b, " CPU s per pair | CPU s at the largest n |\n|---|---:|---:|---:|---:|");
    if (!isnan(w))
      mb_buf_puts(&b, "---:|---:|");
    if (any_effect)
      mb_buf_puts(&b, "---:|---:|");
    mb_buf_puts(&b, "---:|---:|\n");
  } else if (!rc && fmt == F_CSV) {
    mb_buf_puts(&b, "comparison,pilot_n,mean,sd,mde80,half_width,n_t_half_width,n_cs_half_width,"
                    "effect,n_effect,cpu_s_pair,cpu_s_at_n\n");
  } else if (!rc) {
    mb_buf_printf(&b, "{\"plan\": ");
    mb_buf_json_str(&b, m->name);
    mb_buf_puts(&b, ", \"pilot\": ");
    mb_buf_json_str(&b, dir);
    mb_buf_printf(&b, ", \"replications_scanned\": %ld, \"comparisons\": [", reps);
  }
  for (size_t i = 0; !rc && i < nrow; i++) {
    const planrow *x = &rows[i];
    double big = NAN; /* the largest n any target asks */
    if (x->n_t > 0)
      big = (double)x->n_t;
    if (x->n_cs > 0 && !(big >= (double)x->n_cs))
      big = (double)x->n_cs;
    if (x->n_cs == 0 || x->n_t == 0)
      big = INFINITY;
    if (!isnan(x->n_effect) && !(big >= x->n_effect))
      big = x->n_effect;
    if (isfinite(big) && big > need_max)
      need_max = big;
    double cpu_n = isfinite(big) ? big * x->cpu_pair : NAN;
    double nt = x->n_t > 0 ? (double)x->n_t : x->n_t == 0 ? INFINITY : NAN;
    double ncs = x->n_cs > 0 ? (double)x->n_cs : x->n_cs == 0 ? INFINITY : NAN;
    if (fmt == F_MD) {
      mb_buf_puts(&b, "| ");
      mb_rep_md_escape(&b, x->label);
      mb_buf_printf(&b, " | %zu | ", x->n);
      plan_num(&b, x->mean, fmt);
      mb_buf_puts(&b, " | ");
      plan_num(&b, x->sd, fmt);
      mb_buf_puts(&b, " | ");
      plan_num(&b, x->mde, fmt);
      mb_buf_puts(&b, " |");
      if (!isnan(w)) {
        mb_buf_puts(&b, " ");
        plan_count(&b, nt, fmt);
        mb_buf_puts(&b, " | ");
        plan_count(&b, ncs, fmt);
        mb_buf_puts(&b, " |");
      }
      if (any_effect) {
        mb_buf_puts(&b, " ");
        plan_num(&b, x->effect, fmt);
        mb_buf_puts(&b, " | ");
        plan_count(&b, x->n_effect, fmt);
        mb_buf_puts(&b, " |");
      }
      mb_buf_puts(&b, " ");
      plan_num(&b, x->cpu_pair, fmt);
      mb_buf_puts(&b, " | ");
      plan_num(&b, cpu_n, fmt);
      mb_buf_puts(&b, " |\n");
    } else if (fmt == F_CSV) {
      mb_rep_csv_field(&b, x->label);
      mb_buf_printf(&b, ",%zu,", x->n);
      double v[] = {x->mean, x->sd, x->mde, w};
      for (int k = 0; k < 4; k++) {
        plan_num(&b, v[k], fmt);
        mb_buf_puts(&b, ",");
      }
      plan_count(&b, nt, fmt);
      mb_buf_puts(&b, ",");
      plan_count(&b, ncs, fmt);
      mb_buf_puts(&b, ",");
      plan_num(&b, x->effect, fmt);
      mb_buf_puts(&b, ",");
      plan_count(&b, x->n_effect, fmt);
      mb_buf_puts(&b, ",");
      plan_num(&b, x->cpu_pair, fmt);
      mb_buf_puts(&b, ",");
      plan_num(&b, cpu_n, fmt);
      mb_buf_puts(&b, "\n");
    } else {
      mb_buf_puts(&b, i ? ",\n  {\"comparison\": " : "\n  {\"comparison\": ");
      mb_buf_json_str(&b, x->label);
      mb_buf_printf(&b, ", \"pilot_n\": %zu", x->n);
      const char *nm[] = {"mean", "sd", "mde80", "half_width"};
      double v[] = {x->mean, x->sd, x->mde, w};
      for (int k = 0; k < 4; k++) {
        mb_buf_printf(&b, ", \"%s\": ", nm[k]);
        plan_num(&b, v[k], fmt);
      }
      mb_buf_puts(&b, ", \"n_t_half_width\": ");
      plan_count(&b, nt, fmt);
      mb_buf_puts(&b, ", \"n_cs_half_width\": ");
      plan_count(&b, ncs, fmt);
      mb_buf_puts(&b, ", \"effect\": ");
      plan_num(&b, x->effect, fmt);
      mb_buf_puts(&b, ", \"n_effect\": ");
      plan_count(&b, x->n_effect, fmt);
      mb_buf_puts(&b, ", \"cpu_s_pair\": ");
      plan_num(&b, x->cpu_pair, fmt);
      mb_buf_puts(&b, ", \"cpu_s_at_n\": ");
      plan_num(&b, cpu_n, fmt);
      mb_buf_puts(&b, "}");
    }
  }
  if (!rc && fmt == F_MD) {
    mb_buf_printf(&b, "\nThe whole matrix (%zu cells at %ld replications) took ", m->ncells, reps);
    plan_num(&b, per_rep, fmt);
    mb_buf_printf(&b,
                  " CPU s per replication in the pilot; at the largest n above (%.0f) it needs ",
                  need_max);
    plan_num(&b, per_rep * need_max, fmt);
    mb_buf_printf(&b, " CPU s (%.3g CPU hours), %.0f replications more than the pilot's %ld.\n",
                  per_rep * need_max / 3600, need_max > (double)reps ? need_max - (double)reps : 0,
                  reps);
    mb_buf_printf(&b,
                  "\nn: t half-width: the fixed-n 95%% t interval; n: CS half-width: the "
                  "anytime-valid confidence "
                  "sequence `moebench run --until-resolved` stops on%s; n: power 0.8: two-sided "
                  "paired t at 0.05 "
                  "(noncentral t). All from the pilot's sd, itself uncertain at pilot n.\n",
                  isnan(c) ? " (tuned at the t interval's n)" : "");
    if (thin)
      mb_buf_printf(&b, "\n%zu comparison(s) had fewer than 2 pilot pairs (n/a).\n", thin);
  } else if (!rc && fmt == F_JSON) {
    mb_buf_puts(&b, "\n], \"cpu_s_per_replication\": ");
    plan_num(&b, per_rep, fmt);
    mb_buf_printf(&b, ", \"largest_n\": %.0f, \"cpu_s_at_largest_n\": ", need_max);
    plan_num(&b, per_rep * need_max, fmt);
    mb_buf_puts(&b, "}\n");
  }
  if (!rc)
    fwrite(b.s ? b.s : "", 1, b.n, stdout);
  mb_buf_free(&b);
  for (size_t i = 0; i < nrow; i++)
    free(rows[i].label);
  free(rows);
  mb_rep_store_free(&s);
  mb_matrix_free(m);
  return rc;
}
