/* SPDX-License-Identifier: GPL-3.0-or-later */
/* lm_perf.c — training throughput of the MoE language model (moe/lm.h):
 * forward + backward + clipped AdamW step on random token batches, at
 * one size given on the command line. Prints one line
 *   lm size=NAME variant=.. V=.. T=.. D=.. L=.. H=.. E=.. K=.. S=.. F=.. B=..
 *      threads=.. params=.. ms/step=.. tokens/s=.. rss_peak_MB=.. must_hold_MB=..
 *      core=.. core_source=.. params_fnv=..
 * where ms/step is the median wall time over the timed steps (tokens/s
 * from it; tokens/cpu_s from the median process CPU time, steadier on a
 * shared machine), rss_peak is
 * getrusage's maximum resident set, and must_hold is what training has
 * to keep: parameters, gradients and AdamW's two moments (16 bytes per
 * parameter) plus the activations the backward pass needs (logits,
 * per block LN outputs, qkv, attention probabilities, the residual
 * stream, the routed rows and expert hidden activations).
 * serial_cpu_frac is the process CPU time of the timed steps spent outside
 * OpenMP parallel regions over that plus the threads' work inside them
 * (omp_account.c; libgomp's own start-up and barriers left out): the
 * serial fraction of the step when --threads >= 2 and OMP_WAIT_POLICY=passive (at one thread
 * most parallel code is not entered as a region); partition_speedup is
 * serial part plus work over the serial part plus each region's critical
 * path (its busiest thread): the speed-up the fixed partition allows with
 * --threads on as many idle cores, whatever the cores the run had.
 * --blas-core auto|NAME chooses OpenBLAS's kernels as `moebench run
 * --blas-core` does (core_source says who chose them). Not a test:
 * `make bench-perf` runs it interleaved with bench/perf/torch_lm_baseline.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>
#include <gsl/gsl_rng.h>

#include "moe/moe.h"
#include "harness/results.h" /* mb_blas_core_select, as moebench run's --blas-core */
#include "omp_account.h"

static double now(clockid_t c)
{
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double now_cpu(void) { return now(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define USAGE_PROG "lm-perf"
#define USAGE_OPTS                                                                                 \
  "--size NAME --variant NAME --V --T --D --L --H --N --K --s --F --B --steps --threads "        \
  "--regions --blas-core auto|NAME"
#define USAGE_FILE "bench/perf/lm_perf.c"

/* v as a whole number >= 0, or a message and 0 */
static int whole(const char *k, const char *v, int *out)
{
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end || x < 0 || x > 1L << 30) {
    fprintf(stderr, "%s: %s '%s' is not a whole number (try --help)\n", USAGE_PROG, k, v);
    return 0;
  }
  *out = (int)x;
  return 1;
}

int main(int argc, char **argv)
{
  const char *size = "custom", *variant = "ds_v3";
  int V = 8000, T = 128, D = 128, L = 4, H = 4, N = 16, K = 4, s = 2, F = 32, Bt = 8;
  const char *blas_core = NULL;
  int steps = 10, warm = 2, threads = 1, regions = 0;
  for (int i = 1; i < argc; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
      printf("usage: %s [OPTION VALUE]...\n"
             "options: %s (whole numbers; see the comment at the top of %s)\n",
             USAGE_PROG, USAGE_OPTS, USAGE_FILE);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "%s: option %s needs a value (try --help)\n", USAGE_PROG, k);
      return 2;
    }
    if (!strcmp(k, "--size"))
      size = v;
    else if (!strcmp(k, "--variant"))
      variant = v;
    else if (!strcmp(k, "--blas-core"))
      blas_core = v;
    else if (!strcmp(k, "--V")) {
      if (!whole(k, v, &V))
        return 2;
    } else if (!strcmp(k, "--T")) {
      if (!whole(k, v, &T))
        return 2;
    } else if (!strcmp(k, "--D")) {
      if (!whole(k, v, &D))
        return 2;
    } else if (!strcmp(k, "--L")) {
      if (!whole(k, v, &L))
        return 2;
    } else if (!strcmp(k, "--H")) {
      if (!whole(k, v, &H))
        return 2;
    } else if (!strcmp(k, "--N")) {
      if (!whole(k, v, &N))
        return 2;
    } else if (!strcmp(k, "--K")) {
      if (!whole(k, v, &K))
        return 2;
    } else if (!strcmp(k, "--s")) {
      if (!whole(k, v, &s))
        return 2;
    } else if (!strcmp(k, "--F")) {
      if (!whole(k, v, &F))
        return 2;
    } else if (!strcmp(k, "--B")) {
      if (!whole(k, v, &Bt))
        return 2;
    } else if (!strcmp(k, "--steps")) {
      if (!whole(k, v, &steps))
        return 2;
    } else if (!strcmp(k, "--threads")) {
      if (!whole(k, v, &threads))
        return 2;
    } else if (!strcmp(k, "--regions")) {
      if (!whole(k, v, &regions))
        return 2;
    } else {
      fprintf(stderr, "lm-perf: unknown option %s (try --help)\n", k);
      return 2;
    }
  }
  /* moebench run --blas-core's choice of OpenBLAS kernels (re-executes
   * this program once with OPENBLAS_CORETYPE set when they differ) */
  if (blas_core) {
    int rc = mb_blas_core_select(blas_core, 1, argc - 1, argv + 1);
    if (rc)
      return rc;
  }
  moe_blas_set_threads(1); /* --threads are the model's own (moe_lm_set_threads) */
  moe_layer_config f;
  if (moe_layer_config_variant(&f, variant,
                               (moe_variant_sizes){.D = D, .F = F, .N = N, .K = K, .shared = s})) {
    fprintf(stderr, "lm-perf: %s\n", moe_last_error());
    return 2;
  }
  f.balance_coef = f.E > 1 ? 0.01 : 0;
  moe_lm_config cfg = moe_lm_config_make(V, T, D, L, H, &f);
  moe_lm *m = moe_lm_alloc(&cfg, Bt);
  if (!m) {
    fprintf(stderr, "lm-perf: %s\n", moe_last_error());
    return 1;
  }
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 1);
  moe_lm_init_params(m, r);
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, moe_lm_param_count(m));
  if (moe_lm_set_threads(m, threads) || moe_optim_set_threads(o, threads)) {
    fprintf(stderr, "lm-perf: %s\n", moe_last_error());
    return 2;
  }
  moe_lr_schedule sch = {MOE_LR_WARMUP_COSINE, 2.5e-4, 0, steps + warm, 0.1};
  const size_t Nt = (size_t)Bt * T;
  moe_token *x = malloc(Nt * sizeof *x), *y = malloc(Nt * sizeof *y);
  double *ms = malloc(sizeof(double) * (steps > 0 ? steps : 1));
  double *cpu = malloc(sizeof(double) * (steps > 0 ? steps : 1));
  /* timed steps, CPU ms: all, in parallel regions, the threads' work there, its critical path */
  double cpu_sum = 0, par_sum = 0, work_sum = 0, crit_sum = 0;
  long nreg = 0;
  const double call0 = now_cpu();
  for (int i = 0; i < warm + steps; i++) {
    for (size_t j = 0; j < Nt; j++) {
      x[j] = (moe_token)gsl_rng_uniform_int(r, V);
      y[j] = (moe_token)gsl_rng_uniform_int(r, V);
    }
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID), o0 = omp_account_cpu(),
           k0 = omp_account_critical(), w0 = omp_account_work(), loss;
    long r0 = omp_account_regions();
    int rc = moe_lm_forward(m, Bt, T, x, y, &loss);
    moe_lm_zero_grad(m);
    rc |= moe_lm_backward(m);
    rc |= moe_lm_step(m, o, &sch, 0.1, NULL);
    if (rc) {
      fprintf(stderr, "lm-perf: %s\n", moe_last_error());
      return 1;
    }
    if (i >= warm) {
      ms[i - warm] = 1e3 * (now(CLOCK_MONOTONIC) - t0);
      cpu[i - warm] = 1e3 * (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
      cpu_sum += cpu[i - warm];
      par_sum += 1e3 * (omp_account_cpu() - o0);
      crit_sum += 1e3 * (omp_account_critical() - k0);
      work_sum += 1e3 * (omp_account_work() - w0);
      nreg += omp_account_regions() - r0;
    }
  }
  if (regions) { /* every step's CPU time and each parallel region's share of it */
    const double sc = 1.0 / (warm + steps);
    printf("omp-step cpu_ms=%.3f threads=%d\n", 1e3 * (now_cpu() - call0) * sc, threads);
    omp_account_dump(stdout, sc);
  }
  qsort(ms, (size_t)steps, sizeof *ms, cmp);
  qsort(cpu, (size_t)steps, sizeof *cpu, cmp);
  double med = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
  double cmed = steps % 2 ? cpu[steps / 2] : 0.5 * (cpu[steps / 2 - 1] + cpu[steps / 2]);
  /* FNV-1a of the trained parameters: equal across runs with the same
   * thread count (and BLAS kernel) */
  uint64_t hash = 1469598103934665603ull;
  const unsigned char *pb = (const unsigned char *)moe_lm_params(m);
  for (size_t i = 0; i < moe_lm_param_count(m) * sizeof(float); i++)
    hash = (hash ^ pb[i]) * 1099511628211ull;
  /* The yardstick: one-thread sgemm at the model's largest product, the
   * head's logits (Nt, V) = z (Nt, D) headᵀ, median of 3; the step's
   * GFLOP/s count 3× moe_lm_flops_per_token per token. */
  const double step_gf = 3 * moe_lm_flops_per_token(&cfg, T) * (double)Nt / (med * 1e-3) / 1e9;
  float *ga = malloc(Nt * D * sizeof *ga), *gb = malloc((size_t)V * D * sizeof *gb),
        *gc = malloc(Nt * V * sizeof *gc);
  double sg[3] = {0, 0, 0};
  if (ga && gb && gc) {
    for (size_t j = 0; j < Nt * D; j++)
      ga[j] = (float)gsl_rng_uniform(r) - 0.5f;
    for (size_t j = 0; j < (size_t)V * D; j++)
      gb[j] = (float)gsl_rng_uniform(r) - 0.5f;
    for (int k = 0; k < 4; k++) { /* one warm-up */
      double t0 = now(CLOCK_MONOTONIC);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Nt, V, D, 1, ga, D, gb, D, 0, gc,
                  V);
      if (k)
        sg[k - 1] = 2.0 * Nt * V * D / (now(CLOCK_MONOTONIC) - t0) / 1e9;
    }
    qsort(sg, 3, sizeof *sg, cmp);
  }
  free(ga);
  free(gb);
  free(gc);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double P = (double)moe_lm_param_count(m), Nd = (double)Nt;
  const double Kf = f.K, Ff = f.expert.F, Sf = f.S;
  double act =
      Nd * V + Nd * D * 2 /* final LN in/out */ +
      L * Nd *
          (2 * D /* x, ln1 */ + 3 * D /* qkv */ + (double)H * T /* att */ + D /* attention out */ +
           2 * D /* x1, ln2 */ + Kf * (2 * D + 2 * Ff) /* routed rows in/out, h, a */ +
           Sf * (D + 2 * Ff) /* shared out, h, a */);
  double must = 16 * P + 4 * act;
  printf("lm size=%s variant=%s V=%d T=%d D=%d L=%d H=%d E=%d K=%d S=%d F=%d B=%d threads=%d "
         "params=%.0f ms/step=%.2f tokens/s=%.0f tokens/cpu_s=%.0f rss_peak_MB=%.1f "
         "must_hold_MB=%.1f core=%s core_source=%s params_fnv=%016llx "
         "step_GFLOPs=%.2f sgemm_GFLOPs=%.2f of_sgemm=%.2f omp_regions/step=%.0f "
         "serial_cpu_frac=%.4f partition_speedup=%.2f\n",
         size, variant, V, T, D, L, H, f.E, f.K, f.S, f.expert.F, Bt, threads, P, med,
         Nd / (med * 1e-3), Nd / (cmed * 1e-3), ru.ru_maxrss / 1024.0, must / (1024.0 * 1024.0),
         moe_blas_corename(), mb_blas_core_source(), (unsigned long long)hash, step_gf, sg[1],
         sg[1] > 0 ? step_gf / sg[1] : 0, (double)nreg / (steps > 0 ? steps : 1),
         cpu_sum - par_sum + work_sum > 0 ? (cpu_sum - par_sum) / (cpu_sum - par_sum + work_sum)
                                          : 1,
         cpu_sum - par_sum + crit_sum > 0
             ? (cpu_sum - par_sum + work_sum) / (cpu_sum - par_sum + crit_sum)
             : 1);
  free(x);
  free(y);
  free(ms);
  free(cpu);
  moe_optim_free(o);
  gsl_rng_free(r);
  moe_lm_free(m);
  return 0;
}
