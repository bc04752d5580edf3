/* perf_synthetic.c — timing of the synthetic study (not installed).
 *
 *   bench/perf_synthetic [REPS [NMAX]]
 *
 * 1. EM iterations per second for each experiment at n = 10^3, 10^4, 10^5
 *    (a fixed 30 iterations from the perturbed truth; the fit's setup and
 *    the data draw are not timed).
 * 2. Wall time of whole cells of the synthetic task (sample, fit with the
 *    paper's stopping rule, loss) on the paper-synthetic grid, REPS
 *    replications per point (default 2), n <= NMAX (default 100000), and
 *    the projected time of the full study (40 replications) on 2 cores.
 * Run with OPENBLAS_NUM_THREADS=1 (the harness does). Timings are wall
 * clock and depend on the machine's load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moe/gmoe.h"
#include "moe/rng.h"
#include "task.h"

extern const mb_task mb_task_synthetic;

static double now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static const char *const EXPS[] = {"thm1", "thm2", "thm3", "thm4"};
static const long GRID[] = {100, 187, 351, 658, 1233, 2310, 4329, 8111, 15199, 28480, 53367, 100000};

int main(int argc, char **argv)
{
  int reps = argc > 1 ? atoi(argv[1]) : 2;
  long nmax = argc > 2 ? atol(argv[2]) : 100000;
  printf("EM iterations per second (30 iterations, perturbed-truth start, k1=2, k2=3)\n");
  printf("%-6s %10s %10s %10s\n", "", "n=1000", "n=10000", "n=100000");
  for (int e = 0; e < 4; e++) {
    printf("%-6s", EXPS[e]);
    for (long n = 1000; n <= 100000; n *= 10) {
      moe_gmoe *t;
      moe_gmoe_truth(EXPS[e], 1, &t);
      double *X = malloc(n * sizeof *X), *Y = malloc(n * sizeof *Y);
      gsl_rng *r = moe_rng_alloc(42);
      moe_gmoe_sample(t, r, (size_t)n, X, Y);
      moe_gmoe *m = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
      moe_gmoe_init_params(m, t, MOE_GMOE_INIT_TRUTH, 0.5, r, (size_t)n, X, Y);
      moe_gmoe_em *w = moe_gmoe_em_alloc(m, (size_t)n);
      moe_gmoe_em_init(w, m, (size_t)n, X, Y);
      double t0 = now();
      for (int it = 0; it < 30; it++) moe_gmoe_em_iterate(w);
      double dt = now() - t0;
      printf(" %10.1f", 30 / dt);
      fflush(stdout);
      moe_gmoe_em_free(w); moe_gmoe_free(m); moe_gmoe_free(t); gsl_rng_free(r); free(X); free(Y);
    }
    printf("\n");
  }

  printf("\nwhole cells (paper-synthetic settings, %d replications per point)\n", reps);
  printf("%-6s %8s %9s %9s %9s %9s\n", "exp", "n", "sec/cell", "iters", "conv", "loss");
  double total = 0;
  for (int e = 0; e < 4; e++) {
    double exp_total = 0;
    for (size_t g = 0; g < sizeof GRID / sizeof *GRID; g++) {
      if (GRID[g] > nmax) continue;
      double sec = 0, its = 0, conv = 0, loss = 0;
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
          if (!strcmp(nm, "loss")) loss += v;
        }
        mb_result_free(r);
        mb_cell_free(c);
      }
      printf("%-6s %8ld %9.3f %9.1f %9.2f %9.4f\n", EXPS[e], GRID[g], sec / reps, its / reps, conv / reps,
             loss / reps);
      fflush(stdout);
      exp_total += sec / reps;
    }
    total += exp_total;
  }
  printf("\nsum over the grid of mean seconds per cell: %.1f s (one replication of every cell)\n", total);
  printf("projected full study (40 replications, 2 cores): %.1f s = %.1f min\n", total * 40 / 2, total * 40 / 2 / 60);
  return 0;
}
