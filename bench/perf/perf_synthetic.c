/* SPDX-License-Identifier: GPL-3.0-or-later */
/* perf_synthetic.c — timing of the synthetic study (not installed).
 *
 *   bench/perf/perf_synthetic [REPS [NMAX]]
 *
 * 1. EM iterations (E+M maps) per CPU second and sample-iterations per CPU
 *    second (n x maps / s) for each experiment at n = 10^2 .. 10^5 (a fixed
 *    30 maps from the perturbed truth; setup and data draw not timed).
 * 2. CPU time of whole cells of the synthetic task (sample, fit with the
 *    task's defaults: SQUAREM EM to the total-log-likelihood rule, BFGS
 *    polish; loss) on the paper-synthetic grid, REPS replications per point
 *    (default 2), n <= NMAX (default 100000), and the projected time of the
 *    full study (40 replications) on 2 otherwise idle cores.
 * 3. For each experiment, the least-squares slope of log(mean loss) on
 *    log n and on log(n / log n) over the points run: a preliminary rate
 *    (reported as -slope) before the harness's bootstrap fits; with few
 *    replications it is noisy (paper.md §8 pitfall 7).
 *
 *   bench/perf/perf_synthetic --d4-sensitivity LIMIT_A LIMIT_B [REPS [NMAX]]
 *
 * fits thm4 cells once each and reports D4 against two cached limits
 * (e.g. two `moebench gmoe-limit thm4` runs with other seeds or n), to
 * show how much D4 depends on the constructed G2 (pitfall 5).
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

static double now(void)   /* CPU seconds of this process */
{
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static const char *const EXPS[] = {"thm1", "thm2", "thm3", "thm4"};
static const long GRID[] = {100, 187, 351, 658, 1233, 2310, 4329, 8111, 15199, 28480, 53367, 100000};

static int d4_sensitivity(const char *pa, const char *pb, int reps, long nmax)
{
  moe_gmoe **la, **lb, *t;
  int na, nb;
  if (moe_gmoe_read_all(pa, &la, &na) || moe_gmoe_read_all(pb, &lb, &nb)) {
    fprintf(stderr, "%s\n", moe_last_error());
    return 1;
  }
  moe_gmoe_truth("thm4", 1, &t);
  printf("D4 of the same fits against two limits (min over the models in each file)\n  A = %s (%d models)\n"
         "  B = %s (%d models)\n", pa, na, pb, nb);
  printf("%8s %12s %12s %12s\n", "n", "mean D4(A)", "mean D4(B)", "mean |A-B|");
  double sxa = 0, sya = 0, syb = 0, sxx = 0, sxya = 0, sxyb = 0;
  int np = 0;
  for (size_t g = 0; g < sizeof GRID / sizeof *GRID; g++) {
    long n = GRID[g];
    if (n > nmax) continue;
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
      ma += a / reps; mb += b / reps; md += fabs(a - b) / reps;
      moe_gmoe_free(f); free(X); free(Y);
    }
    printf("%8ld %12.4f %12.4f %12.4f\n", n, ma, mb, md);
    double x = log((double)n);
    sxa += x; sxx += x * x; sya += log(ma); syb += log(mb); sxya += x * log(ma); sxyb += x * log(mb);
    np++;
  }
  printf("rate (-slope on log n): A %.3f, B %.3f\n", -(np * sxya - sxa * sya) / (np * sxx - sxa * sxa),
         -(np * sxyb - sxa * syb) / (np * sxx - sxa * sxa));
  moe_gmoe_free_all(la, na); moe_gmoe_free_all(lb, nb); moe_gmoe_free(t);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc >= 4 && !strcmp(argv[1], "--d4-sensitivity"))
    return d4_sensitivity(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 4, argc > 5 ? atol(argv[5]) : 28480);
  int reps = argc > 1 ? atoi(argv[1]) : 2;
  long nmax = argc > 2 ? atol(argv[2]) : 100000;
  printf("EM iterations per CPU second / million sample-iterations per CPU second\n"
         "(30 E+M maps, perturbed-truth start, k1=2, k2=3, 5 solver steps per M-step block)\n");
  printf("%-6s %18s %18s %18s %18s\n", "", "n=100", "n=1000", "n=10000", "n=100000");
  for (int e = 0; e < 4; e++) {
    printf("%-6s", EXPS[e]);
    for (long n = 100; n <= 100000; n *= 10) {
      moe_gmoe *t;
      moe_gmoe_truth(EXPS[e], 1, &t);
      double *X = malloc(n * sizeof *X), *Y = malloc(n * sizeof *Y);
      gsl_rng *r = moe_rng_alloc(42);
      moe_gmoe_sample(t, r, (size_t)n, X, Y);
      moe_gmoe *m = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
      moe_gmoe_init_params(m, t, MOE_GMOE_INIT_TRUTH, 0.5, r, (size_t)n, X, Y);
      moe_gmoe_em *w = moe_gmoe_em_alloc(m, (size_t)n);
      moe_gmoe_em_set_inner(w, 5, 1e-6);
      moe_gmoe_em_set_gate_solver(w, t->gate == MOE_GMOE_NSIGMOID);
      moe_gmoe_em_init(w, m, (size_t)n, X, Y);
      double t0 = now();
      for (int it = 0; it < 30; it++) moe_gmoe_em_iterate(w);
      double dt = now() - t0;
      printf(" %8.1f / %7.2f", 30 / dt, 30.0 * n / dt / 1e6);
      fflush(stdout);
      moe_gmoe_em_free(w); moe_gmoe_free(m); moe_gmoe_free(t); gsl_rng_free(r); free(X); free(Y);
    }
    printf("\n");
  }

  printf("\nwhole cells (paper-synthetic settings, %d replications per point; CPU seconds)\n", reps);
  printf("%-6s %8s %9s %9s %9s %9s %9s\n", "exp", "n", "cpu/cell", "iters", "conv", "mean loss", "median");
  double total = 0, rate[4][2], medrate[4];
  for (int e = 0; e < 4; e++) {
    double exp_total = 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0, sz = 0, szz = 0, szy = 0, sm = 0, sxm = 0;
    int np = 0;
    for (size_t g = 0; g < sizeof GRID / sizeof *GRID; g++) {
      if (GRID[g] > nmax) continue;
      double sec = 0, its = 0, conv = 0, loss = 0;
      double *losses = malloc((size_t)reps * sizeof *losses);
      for (int rep = 0; rep < reps; rep++) {
        mb_cell *c = mb_cell_new("synthetic");
        for (const mb_param *p = mb_task_synthetic.params; p->name; p++) mb_cell_set(c, p->name, p->deflt);
        char nb[32];
        snprintf(nb, sizeof nb, "%ld", GRID[g]);
        mb_cell_set(c, "experiment", EXPS[e]);
        mb_cell_set(c, "n", nb);
        mb_cell_set(c, "limit_file", "limits/thm4.txt");
        mb_result *r = mb_result_new();
        char err[512] = "";
        double t0 = now();
        int rc = mb_task_synthetic.run(c, moe_seed_derive_u64(2505, (uint64_t)(e * 1000 + g * 40 + rep)), r, err,
                                       sizeof err);
        sec += now() - t0;
        if (rc) { fprintf(stderr, "%s n=%ld: %s\n", EXPS[e], GRID[g], err); return 1; }
        for (size_t i = 0; i < mb_result_size(r); i++) {
          const char *nm = mb_result_name_at(r, i);
          double v = mb_result_value_at(r, i);
          if (!strcmp(nm, "em_iters")) its += v;
          if (!strcmp(nm, "converged")) conv += v;
          if (!strcmp(nm, "loss")) { loss += v; losses[rep] = v; }
        }
        mb_result_free(r);
        mb_cell_free(c);
      }
      for (int a = 1; a < reps; a++)   /* insertion sort for the median */
        for (int b = a; b > 0 && losses[b] < losses[b - 1]; b--) {
          double tmp = losses[b]; losses[b] = losses[b - 1]; losses[b - 1] = tmp;
        }
      double med = reps % 2 ? losses[reps / 2] : 0.5 * (losses[reps / 2 - 1] + losses[reps / 2]);
      free(losses);
      printf("%-6s %8ld %9.3f %9.1f %9.2f %9.4f %9.4f\n", EXPS[e], GRID[g], sec / reps, its / reps, conv / reps,
             loss / reps, med);
      double x = log((double)GRID[g]), z = log(GRID[g] / log((double)GRID[g])), y = log(loss / reps), ym = log(med);
      sx += x; sy += y; sxx += x * x; sxy += x * y; sz += z; szz += z * z; szy += z * y; sm += ym; sxm += x * ym;
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
  printf("\nsum over the grid of mean CPU seconds per cell: %.1f s (one replication of every cell)\n", total);
  printf("projected full study (40 replications, 2 idle cores): %.1f s = %.1f min\n", total * 40 / 2,
         total * 40 / 2 / 60);
  return 0;
}
