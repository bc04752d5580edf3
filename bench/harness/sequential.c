/* SPDX-License-Identifier: GPL-3.0-or-later */
/* sequential.c — `moebench run --until-resolved`: replications in rounds
 * until every comparison the matrix's `sequential:` names is resolved.
 *
 * Round 1 runs the matrix's `replications`; each later round adds `round`
 * more (rep n, n+1, ... — the cells a fixed-n run of the final count would
 * have), up to `max_replications`. After each round, every comparison of
 * the named paired tables gets its confidence sequence at its n (power.h:
 * the Gaussian-mixture t CS of Lai 1976 / Wang & Ramdas 2024, valid at
 * every n at once, so looking after every round costs no coverage); the
 * run stops when each one excludes 0 or is at most half_width on each
 * side. The CS is tuned (c) to be narrowest at the geometric mean of the
 * first and the largest replication count, fixed before any data.
 *
 * Each round is an ordinary `moebench run` of the matrix expanded with n
 * replications, so a rerun skips the cells done and replays the same
 * decisions from round 1: resumable, deterministic. The decisions are in
 * OUT/NAME/sequential.json (rewritten after each round), which `moebench
 * report` reads for the replication count and prints. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "power.h"
#include "report.h"
#include "results.h"
#include "verbs.h"

static void json_num_or_null(mb_buf *b, double v)
{
  if (isfinite(v))
    mb_buf_json_num(b, v);
  else
    mb_buf_puts(b, "null");
}

static void record_round(mb_buf *b, long round, long n, const mb_comparison *cs, size_t k)
{
  mb_buf_printf(b, "%s\n    {\"round\": %ld, \"replications\": %ld, \"comparisons\": [",
                round > 1 ? "," : "", round, n);
  for (size_t i = 0; i < k; i++) {
    mb_buf_puts(b, i ? ",\n      {\"comparison\": " : "\n      {\"comparison\": ");
    mb_buf_json_str(b, cs[i].label);
    mb_buf_printf(b, ", \"pairs\": %zu, \"mean\": ", cs[i].n);
    json_num_or_null(b, cs[i].mean);
    mb_buf_puts(b, ", \"sd\": ");
    json_num_or_null(b, cs[i].sd);
    mb_buf_puts(b, ", \"cs_lo\": ");
    json_num_or_null(b, cs[i].lo);
    mb_buf_puts(b, ", \"cs_hi\": ");
    json_num_or_null(b, cs[i].hi);
    mb_buf_puts(b, ", \"half_width\": ");
    json_num_or_null(b, cs[i].half_width);
    mb_buf_puts(b, ", \"resolved\": ");
    mb_buf_json_str(b, cs[i].resolved);
    mb_buf_puts(b, "}");
  }
  mb_buf_puts(b, "]}");
}

static int write_record(const char *path, const mb_matrix *m, double c, long n,
                        const mb_buf *rounds, const char *stopped)
{
  mb_buf b;
  char err[5000];
  mb_buf_init(&b);
  mb_buf_printf(&b, "{\"format\": \"%s\", \"matrix\": ", MB_SEQ_FORMAT);
  mb_buf_json_str(&b, m->name);
  mb_buf_puts(&b, ",\n  \"method\": \"Gaussian-mixture t confidence sequence (Lai 1976; Wang & "
                  "Ramdas 2024), alpha 0.05\"");
  mb_buf_puts(&b, ",\n  \"alpha\": ");
  mb_buf_json_num(&b, MB_ALPHA);
  mb_buf_puts(&b, ", \"c\": ");
  mb_buf_json_num(&b, c);
  mb_buf_puts(&b, ", \"half_width\": ");
  mb_buf_json_num(&b, m->sequential.half_width);
  mb_buf_printf(&b,
                ", \"first\": %ld, \"round\": %ld, \"max_replications\": %ld,\n  \"replications\": "
                "%ld, \"stopped\": ",
                m->file_replications, m->sequential.round, m->sequential.max_replications, n);
  if (stopped)
    mb_buf_json_str(&b, stopped);
  else
    mb_buf_puts(&b, "null");
  mb_buf_puts(&b, ",\n  \"rounds\": [");
  mb_buf_add(&b, rounds->s ? rounds->s : "", rounds->n);
  mb_buf_puts(&b, "\n  ]}\n");
  int r = b.oom || mb_write_atomic(path, b.s, b.n, err, sizeof err);
  if (r)
    fprintf(stderr, "moebench run: %s\n", b.oom ? "out of memory" : err);
  mb_buf_free(&b);
  return r;
}

int mb_run_until_resolved(int argc, char **argv)
{
  /* the arguments of an ordinary run, less --until-resolved */
  char **av = calloc((size_t)argc + 1, sizeof *av);
  const char *file = NULL, *out = "results";
  int ac = 0, quiet = 0;
  if (!av) {
    fprintf(stderr, "moebench run: out of memory\n");
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--until-resolved"))
      continue;
    av[ac++] = argv[i];
    if (i == 0)
      continue;
    if (!strcmp(a, "--shard") || !strncmp(a, "--shard=", 8)) {
      fprintf(stderr,
              "moebench run: --until-resolved decides on all cells: it cannot run a shard\n");
      free(av);
      return 2;
    }
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
      quiet = 1;
    if ((!strcmp(a, "--out") || !strcmp(a, "-j") || !strcmp(a, "--jobs") ||
         !strcmp(a, "--threads") || !strcmp(a, "--save-models") || !strcmp(a, "--blas-core") ||
         !strcmp(a, "--reuse-from") || !strcmp(a, "--dump-routing")) &&
        i + 1 < argc) {
      if (!strcmp(a, "--out"))
        out = argv[i + 1];
      av[ac++] = argv[++i];
    } else if (!strncmp(a, "--out=", 6))
      out = a + 6;
    else if (a[0] != '-' && !file)
      file = a;
  }
  if (!file) { /* the run's own usage message */
    int r = mb_verb_run(ac, av);
    free(av);
    return r;
  }
  int st;
  mb_matrix *m = mb_matrix_load_stderr(file, &st);
  if (!m) {
    free(av);
    return st;
  }
  if (!m->sequential.set) {
    fprintf(stderr,
            "moebench run: %s: --until-resolved needs a 'sequential:' key in the matrix "
            "(compare, half_width, max_replications; see moebench-matrix(5))\n",
            file);
    mb_matrix_free(m);
    free(av);
    return 2;
  }
  const mb_sequential *q = &m->sequential;
  const long first = m->file_replications, max = q->max_replications;
  const double c = mb_cs_tmix_c(MB_ALPHA, floor(sqrt((double)first * (double)max)) < 2
                                              ? 2
                                              : floor(sqrt((double)first * (double)max)));
  char dir[4200], rec[4400];
  snprintf(dir, sizeof dir, "%s/%s", out, m->name);
  snprintf(rec, sizeof rec, "%s/sequential.json", dir);
  mb_buf rounds;
  mb_buf_init(&rounds);
  int rc = 0;
  long n = first;
  for (long round = 1;; round++) {
    mb_matrix_set_replications(n);
    if (!quiet)
      fprintf(stderr, "moebench: sequential round %ld: %ld replications\n", round, n);
    rc = mb_verb_run(ac, av);
    mb_matrix *mn = rc ? NULL : mb_matrix_load_stderr(file, &st);
    mb_matrix_set_replications(0);
    if (rc) {
      fprintf(stderr,
              "moebench run: sequential round %ld did not complete (status %d): no decision; rerun "
              "to continue\n",
              round, rc);
      break;
    }
    if (!mn) {
      rc = st;
      break;
    }
    mb_comparison *cs;
    size_t k = mb_report_comparisons(mn, dir, q->compare, q->ncompare, c, q->half_width, &cs);
    mb_matrix_free(mn);
    record_round(&rounds, round, n, cs, k);
    int open = 0;
    for (size_t i = 0; i < k; i++)
      if (!strcmp(cs[i].resolved, "no"))
        open++;
    if (!quiet)
      for (size_t i = 0; i < k; i++)
        fprintf(stderr, "moebench:   %s: %zu pairs, mean %.4g, 95%% CS [%.4g, %.4g]: %s\n",
                cs[i].label, cs[i].n, cs[i].mean, cs[i].lo, cs[i].hi,
                strcmp(cs[i].resolved, "no") ? cs[i].resolved : "unresolved");
    mb_comparisons_free(cs, k);
    const char *stopped = !k         ? "no comparisons to resolve"
                          : !open    ? "resolved"
                          : n >= max ? "max_replications"
                                     : NULL;
    if (write_record(rec, m, c, n, &rounds, stopped)) {
      rc = 1;
      break;
    }
    if (stopped) {
      if (!quiet)
        fprintf(stderr,
                "moebench: sequential: stopped after round %ld at %ld replications: %s%s (record: "
                "%s)\n",
                round, n, stopped, open && k ? " with comparisons unresolved" : "", rec);
      break;
    }
    n = n + q->round > max ? max : n + q->round;
  }
  mb_buf_free(&rounds);
  mb_matrix_free(m);
  free(av);
  return rc;
}
