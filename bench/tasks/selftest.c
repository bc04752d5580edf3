/* SPDX-License-Identifier: GPL-3.0-or-later */
/* task_selftest.c — a cheap deterministic task for testing the harness
 * itself: its metrics depend only on its parameters and seed, it can be
 * told to fail or to take time (to test failures, resume and -j).
 *
 * Tests that signal a run or a worker need it in a known state, not a
 * guessed one: with MOEBENCH_SELFTEST_HOLD set to a directory, a cell with
 * sleep_ms > 0 writes "PID PPID PGID" to DIR/PID (atomically) and then
 * waits for a signal instead of sleeping (at most 10 minutes). The
 * environment, not a parameter, turns this on, so cell ids and metrics are
 * the same with and without it. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "moe/rng.h"
#include "task.h"

static const char *const modes[] = {"plain", "noisy", NULL};

static const mb_param params[] = {
    {"x", MB_REAL, "1.0", -1e6, 1e6, NULL, "a real parameter"},
    {"n", MB_INT, "10", 1, 1e7, NULL, "number of random draws averaged"},
    {"k", MB_INT, "1", 1, 64, NULL, "must not exceed e (cross-field check)"},
    {"e", MB_INT, "4", 1, 64, NULL, "upper bound for k"},
    {"mode", MB_STR, "plain", 0, -1, modes,
     "plain: value = x*n; noisy: adds the mean of n U(0,1) draws"},
    {"fail", MB_BOOL, "false", 0, -1, NULL, "fail on purpose (tests failure recording)"},
    {"sleep_ms", MB_INT, "0", 0, 600000, NULL, "sleep this long before returning"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {"value", "draw_mean", NULL};

static int check(const mb_cell *c, const char **bad_key, char *err, size_t errlen)
{
  if (mb_cell_int(c, "k") > mb_cell_int(c, "e")) {
    *bad_key = "k";
    snprintf(err, errlen, "k=%ld must not exceed e=%ld", mb_cell_int(c, "k"), mb_cell_int(c, "e"));
    return 1;
  }
  return 0;
}

/* Announce this worker in dir, then wait to be killed. 1 if announced. */
static int hold(const char *dir)
{
  char tmp[4200], path[4200];
  long pid = (long)getpid();
  snprintf(tmp, sizeof tmp, "%s/.%ld.tmp", dir, pid);
  snprintf(path, sizeof path, "%s/%ld", dir, pid);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return 0;
  fprintf(f, "%ld %ld %ld\n", pid, (long)getppid(), (long)getpgrp());
  if (fclose(f) || rename(tmp, path))
    return 0;
  struct timespec ts = {1, 0};
  for (int i = 0; i < 600; i++)
    nanosleep(&ts, NULL);
  return 1;
}

static int run(const mb_cell *c, uint64_t seed, mb_result *r, char *err, size_t errlen)
{
  long n = mb_cell_int(c, "n"), ms = mb_cell_int(c, "sleep_ms");
  const char *hd = getenv("MOEBENCH_SELFTEST_HOLD");
  if (ms > 0 && hd && *hd) {
    if (!hold(hd)) {
      snprintf(err, errlen, "MOEBENCH_SELFTEST_HOLD=%s: cannot announce the worker there", hd);
      return 1;
    }
    snprintf(err, errlen, "held for 10 minutes without a signal (MOEBENCH_SELFTEST_HOLD)");
    return 1;
  }
  if (ms > 0) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  if (mb_cell_bool(c, "fail")) {
    snprintf(err, errlen, "failed on purpose (fail: true)");
    return 1;
  }
  gsl_rng *g = moe_rng_alloc(seed);
  if (!g) {
    snprintf(err, errlen, "no memory");
    return 1;
  }
  double m = 0;
  for (long i = 0; i < n; i++)
    m += gsl_rng_uniform(g);
  m /= n;
  gsl_rng_free(g);
  double v = mb_cell_real(c, "x") * n;
  if (mb_cell_str(c, "mode")[0] == 'n')
    v += m;
  mb_result_metric(r, "value", v);
  mb_result_metric(r, "draw_mean", m);
  return 0;
}

const mb_task mb_task_selftest = {
    "selftest", "deterministic toy task for testing the harness", params, metrics, check, run,
};
