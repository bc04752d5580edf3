/* SPDX-License-Identifier: GPL-3.0-or-later */
/* perf_synthetic.c — timing of the synthetic study (not installed).
 *
 *   bench/perf/perf_synthetic [--em-only] [REPS [NMAX]]
 *
 * 1. EM throughput for each experiment at n = 10^3, 10^4, 10^5: REPS
 *    repetitions (default 5; at least 3) of 10 EM iterations from the same
 *    perturbed-truth start (2 solver steps per M-step block, BFGS for a
 *    normalised-sigmoid gate, as the fit runs), repetitions outermost so that a change of load
 *    on a shared machine hits every n alike. Reported per (experiment, n):
 *    EM iterations/s and sample-iterations/s (n × iterations/s), median and
 *    best over the repetitions, from process CPU time (other processes'
 *    time slices do not count), and the E-step alone (moe_gmoe_em_init) in
 *    ns/sample. The fit's setup and the data draw are not timed.
 *    --em-only stops here.
 * 2. Wall time of whole cells of the synthetic task (sample, fit with the
 *    paper's stopping rule, loss) on the paper-synthetic grid, REPS
 *    replications per point (default 2), n <= NMAX (default 100000), and
 *    the projected time of the full study (40 replications) on 2 cores.
 * 3. For each experiment, the least-squares slope of log(mean loss) on
 *    log n and on log(n / log n) over the points run: a preliminary rate
 *    (reported as -slope) before the harness's bootstrap fits; with few
 *    replications it is noisy (doc/synthetic-findings.md: the bootstrap
 *    intervals over 8 replications).
 *
 *   bench/perf/perf_synthetic --d4-sensitivity LIMIT_A LIMIT_B [REPS [NMAX]]
 *
 * fits thm4 cells once each and reports D4 against two cached limits
 * (e.g. two `moebench gmoe-limit thm4` runs with other seeds or n), to
 * show how much D4 depends on the constructed G2 (doc/thm4-limit.md).
 * Run with OPENBLAS_NUM_THREADS=1 (the harness does). Timings are process
 * CPU time (user + sys), so a loaded machine slows the run but not the
 * numbers much. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moe/gmoe.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/voronoi.h"
#include "task.h"

extern const mb_task mb_task_synthetic;

static const char *const EXPS[] = {"thm1", "thm2", "thm3", "thm4"};

static double now(void) /* CPU seconds of this process */
{
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double cpu_now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_dbl);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Section 1: EM throughput, repetitions outermost (see the header). */
enum { EM_ITERS = 10, NSIZES = 3 };
static int em_throughput(int reps)
{
  const long sizes[NSIZES] = {1000, 10000, 100000};
  double *it_s[4][NSIZES], *es[4][NSIZES];
  moe_gmoe *truth[4], *model[4][NSIZES];
  moe_gmoe_em *ws[4][NSIZES];
  double *X[4][NSIZES], *Y[4][NSIZES];
  for (int e = 0; e < 4; e++)
    for (int k = 0; k < NSIZES; k++) {
      const long n = sizes[k];
      if (k == 0 && moe_gmoe_truth(EXPS[e], 1, &truth[e]))
        return 1;
      X[e][k] = malloc(n * sizeof **X);
      Y[e][k] = malloc(n * sizeof **Y);
      it_s[e][k] = malloc(reps * sizeof **it_s);
      es[e][k] = malloc(reps * sizeof **es);
      gsl_rng *r = moe_rng_alloc(42);
      moe_gmoe_sample(truth[e], r, (size_t)n, X[e][k], Y[e][k]);
      model[e][k] =
          moe_gmoe_alloc(1, 2, 3, truth[e]->gate, truth[e]->shared_kind, truth[e]->routed_kind);
      ws[e][k] = moe_gmoe_em_alloc(model[e][k], (size_t)n);
      if (ws[e][k]) { /* the fit's settings: 2 solver steps, BFGS for a normalised-sigmoid gate */
        moe_gmoe_em_set_inner(ws[e][k], 2, 1e-6);
        moe_gmoe_em_set_gate_solver(ws[e][k], truth[e]->gate == MOE_GMOE_NSIGMOID);
      }
      gsl_rng_free(r);
      if (!X[e][k] || !Y[e][k] || !it_s[e][k] || !es[e][k] || !model[e][k] || !ws[e][k])
        return 1;
    }
  for (int rep = 0; rep < reps; rep++)
    for (int e = 0; e < 4; e++)
      for (int k = 0; k < NSIZES; k++) {
        const long n = sizes[k];
        gsl_rng *r = moe_rng_alloc(43);
        moe_gmoe_init_params(model[e][k], truth[e], MOE_GMOE_INIT_TRUTH, 0.5, r, (size_t)n, X[e][k],
                             Y[e][k]);
        gsl_rng_free(r);
        double c0 = cpu_now();
        if (moe_gmoe_em_init(ws[e][k], model[e][k], (size_t)n, X[e][k], Y[e][k]))
          return 1;
        es[e][k][rep] = (cpu_now() - c0) * 1e9 / n;
        c0 = cpu_now();
        for (int it = 0; it < EM_ITERS; it++)
          moe_gmoe_em_iterate(ws[e][k]);
        it_s[e][k][rep] = EM_ITERS / (cpu_now() - c0);
      }
  printf(
      "EM throughput (k1=2, k2=3, perturbed-truth start, 2 solver steps, the fit's M-step solvers; "
      "%d repetitions of %d iterations, process CPU time; median [best])\n",
      reps, EM_ITERS);
  printf("%-6s %8s %22s %28s %16s\n", "exp", "n", "EM iterations/s", "sample-iterations/s",
         "E-step ns/sample");
  for (int e = 0; e < 4; e++)
    for (int k = 0; k < NSIZES; k++) {
      const long n = sizes[k];
      double med = median_of(it_s[e][k], reps), best = it_s[e][k][reps - 1];
      double emed = median_of(es[e][k], reps);
      printf("%-6s %8ld %12.1f [%7.1f] %16.3g [%9.3g] %16.1f\n", EXPS[e], n, med, best, med * n,
             best * n, emed);
      moe_gmoe_em_free(ws[e][k]);
      moe_gmoe_free(model[e][k]);
      free(X[e][k]);
      free(Y[e][k]);
      free(it_s[e][k]);
      free(es[e][k]);
      if (k == NSIZES - 1)
        moe_gmoe_free(truth[e]);
    }
  fflush(stdout);
  return 0;
}

static const long GRID[] = {100,  187,  351,   658,   1233,  2310,
                            4329, 8111, 15199, 28480, 53367, 100000};

static int d4_sensitivity(const char *pa, const char *pb, int reps, long nmax)
{
  moe_gmoe **la, **lb, *t;
  int na, nb;
  if (moe_gmoe_read_all(pa, &la, &na) || moe_gmoe_read_all(pb, &lb, &nb)) {
    fprintf(stderr, "%s\n", moe_last_error());
    return 1;
  }
  moe_gmoe_truth("thm4", 1, &t);
  printf("D4 of the same fits against two limits (min over the models in each file)\n  A = %s (%d "
         "models)\n"
         "  B = %s (%d models)\n",
         pa, na, pb, nb);
  printf("%8s %12s %12s %12s\n", "n", "mean D4(A)", "mean D4(B)", "mean |A-B|");
  double sxa = 0, sya = 0, syb = 0, sxx = 0, sxya = 0, sxyb = 0;
  int np = 0;
  for (size_t g = 0; g < sizeof GRID / sizeof *GRID; g++) {
    long n = GRID[g];
    if (n > nmax)
      continue;
    double ma = 0, mb = 0, md = 0;
    for (int rep = 0; rep < reps; rep++) {
      uint64_t seed = moe_seed_derive_u64(2505, (uint64_t)(3000 + g * 40 + rep));
      double *X = malloc(n * sizeof *X), *Y = malloc(n * sizeof *Y);
      gsl_rng *r = moe_rng_alloc(moe_seed_derive(seed, "data"));
      moe_gmoe_sample(t, r, (size_t)n, X, Y);
      gsl_rng_free(r);
      moe_gmoe *f = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
      moe_gmoe_fit_opts o;
      moe_gmoe_fit_opts_default(&o);
      moe_gmoe_fit(f, t, (size_t)n, X, Y, &o, moe_seed_derive(seed, "fit"), NULL);
      moe_voronoi_opts vo;
      moe_voronoi_opts_default(&vo, MOE_VORONOI_D4);
      double a, b;
      vo.limits = (const moe_gmoe *const *)la;
      vo.nlimits = na;
      moe_voronoi_loss(f, t, &vo, &a);
      vo.limits = (const moe_gmoe *const *)lb;
      vo.nlimits = nb;
      moe_voronoi_loss(f, t, &vo, &b);
      ma += a / reps;
      mb += b / reps;
      md += fabs(a - b) / reps;
      moe_gmoe_free(f);
      free(X);
      free(Y);
    }
    printf("%8ld %12.4f %12.4f %12.4f\n", n, ma, mb, md);
    double x = log((double)n);
    sxa += x;
    sxx += x * x;
    sya += log(ma);
    syb += log(mb);
    sxya += x * log(ma);
    sxyb += x * log(mb);
    np++;
  }
  printf("rate (-slope on log n): A %.3f, B %.3f\n",
         -(np * sxya - sxa * sya) / (np * sxx - sxa * sxa),
         -(np * sxyb - sxa * syb) / (np * sxx - sxa * sxa));
  moe_gmoe_free_all(la, na);
  moe_gmoe_free_all(lb, nb);
  moe_gmoe_free(t);
  return 0;
}

static const char USAGE[] =
    "usage: perf_synthetic [--em-only] [REPS [NMAX]]\n"
    "       perf_synthetic --d4-sensitivity LIMIT_A LIMIT_B [REPS [NMAX]]\n";

/* a whole positive decimal number, or -1 */
static long count_arg(const char *s)
{
  char *end;
  long v = strtol(s, &end, 10);
  return *s && !*end && v > 0 ? v : -1;
}

int main(int argc, char **argv)
{
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return 0;
  }
  int d4 = argc > 1 && !strcmp(argv[1], "--d4-sensitivity");
  int em_only = argc > 1 && !strcmp(argv[1], "--em-only");
  const int first = d4 ? 4 : 1 + em_only; /* REPS, NMAX from here */
  long nums[2] = {0, 0};                  /* REPS, NMAX; 0: not given */
  if ((d4 && argc < 4) || argc > first + 2) {
    fputs(USAGE, stderr);
    return 2;
  }
  for (int a = first; a < argc; a++)
    if ((nums[a - first] = count_arg(argv[a])) < 0) {
      fprintf(stderr, "perf_synthetic: argument %d: '%s' %s\n%s", a, argv[a],
              argv[a][0] == '-' && a == 1 ? "is not an option" : "is not a positive whole number",
              USAGE);
      return 2;
    }
  if (d4)
    return d4_sensitivity(argv[2], argv[3], nums[0] ? (int)nums[0] : 4, nums[1] ? nums[1] : 28480);
  int reps = nums[0] ? (int)nums[0] : 2;
  long nmax = nums[1] ? nums[1] : 100000;
  if (em_throughput(em_only && nums[0] ? (reps < 3 ? 3 : reps) : 5)) {
    fprintf(stderr, "perf_synthetic: %s\n", moe_last_error());
    return 1;
  }
  if (em_only)
    return 0;

  printf("\nwhole cells (paper-synthetic settings, %d replications per point; CPU seconds)\n",
         reps);
  printf("%-6s %8s %9s %9s %9s %9s %9s\n", "exp", "n", "cpu/cell", "iters", "conv", "mean loss",
         "median");
  double total = 0, rate[4][2], medrate[4];
  for (int e = 0; e < 4; e++) {
    double exp_total = 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0, sz = 0, szz = 0, szy = 0, sm = 0, sxm = 0;
    int np = 0;
    for (size_t g = 0; g < sizeof GRID / sizeof *GRID; g++) {
      if (GRID[g] > nmax)
        continue;
      double sec = 0, its = 0, conv = 0, loss = 0;
      double *losses = malloc((size_t)reps * sizeof *losses);
      for (int rep = 0; rep < reps; rep++) {
        mb_cell *c = mb_cell_new("synthetic");
        for (const mb_param *p = mb_task_synthetic.params; p->name; p++)
          mb_cell_set(c, p->name, p->deflt);
        char nb[32];
        snprintf(nb, sizeof nb, "%ld", GRID[g]);
        mb_cell_set(c, "experiment", EXPS[e]);
        mb_cell_set(c, "n", nb);
        mb_cell_set(c, "limit_file", "limits/thm4.txt");
        mb_result *r = mb_result_new();
        char err[512] = "";
        double t0 = now();
        int rc = mb_task_synthetic.run(
            c, moe_seed_derive_u64(2505, (uint64_t)(e * 1000 + g * 40 + rep)), r, err, sizeof err);
        sec += now() - t0;
        if (rc) {
          fprintf(stderr, "%s n=%ld: %s\n", EXPS[e], GRID[g], err);
          return 1;
        }
        for (size_t i = 0; i < mb_result_size(r); i++) {
          const char *nm = mb_result_name_at(r, i);
          double v = mb_result_value_at(r, i);
          if (!strcmp(nm, "em_iters"))
            its += v;
          if (!strcmp(nm, "converged"))
            conv += v;
          if (!strcmp(nm, "loss")) {
            loss += v;
            losses[rep] = v;
          }
        }
        mb_result_free(r);
        mb_cell_free(c);
      }
      for (int a = 1; a < reps; a++) /* insertion sort for the median */
        for (int b = a; b > 0 && losses[b] < losses[b - 1]; b--) {
          double tmp = losses[b];
          losses[b] = losses[b - 1];
          losses[b - 1] = tmp;
        }
      double med = reps % 2 ? losses[reps / 2] : 0.5 * (losses[reps / 2 - 1] + losses[reps / 2]);
      free(losses);
      printf("%-6s %8ld %9.3f %9.1f %9.2f %9.4f %9.4f\n", EXPS[e], GRID[g], sec / reps, its / reps,
             conv / reps, loss / reps, med);
      double x = log((double)GRID[g]), z = log(GRID[g] / log((double)GRID[g])),
             y = log(loss / reps), ym = log(med);
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
      sz += z;
      szz += z * z;
      szy += z * y;
      sm += ym;
      sxm += x * ym;
      np++;
      fflush(stdout);
      exp_total += sec / reps;
    }
    total += exp_total;
    rate[e][0] = -(np * sxy - sx * sy) / (np * sxx - sx * sx);
    rate[e][1] = -(np * szy - sz * sy) / (np * szz - sz * sz);
    medrate[e] = -(np * sxm - sx * sm) / (np * sxx - sx * sx);
  }
  printf("\npreliminary rates (-slope of log mean loss; %d replications per n):\n", reps);
  printf("%-6s %12s %16s %14s\n", "exp", "on log n", "on log(n/log n)", "median, log n");
  for (int e = 0; e < 4; e++)
    printf("%-6s %12.3f %16.3f %14.3f\n", EXPS[e], rate[e][0], rate[e][1], medrate[e]);
  printf(
      "\nsum over the grid of mean CPU seconds per cell: %.1f s (one replication of every cell)\n",
      total);
  printf("projected full study (40 replications, 2 idle cores): %.1f s = %.1f min\n",
         total * 40 / 2, total * 40 / 2 / 60);
  return 0;
}
