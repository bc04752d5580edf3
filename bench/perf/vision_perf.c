/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vision_perf.c — training throughput of the image classifier with an MoE
 * connector (moe/vision.h): forward + backward + clipped AdamW step on
 * random patch batches, at one size given on the command line. Prints one
 * line
 *   vision size=NAME variant=.. P=.. D=.. L=.. Lh=.. H=.. F=.. E=.. K=.. S=.. Fm=.. B=..
 *      threads=.. params=.. ms/step=.. cpu_ms/step=.. images/s=.. rss_peak_MB=.. core=.. core_source=..
 *      params_fnv=..
 *      step_GFLOPs=.. sgemm_GFLOPs=.. of_sgemm=.. sgemm_shape=MxNxK omp_regions/step=..
 *      serial_cpu_frac=..
 * where ms/step is the median over the timed steps, step_GFLOPs its
 * FLOPs (3× moe_vision_flops_parts' total per image) per second,
 * sgemm_GFLOPs one-thread sgemm at the model's largest product and
 * serial_cpu_frac the share of the timed steps' CPU time outside OpenMP
 * regions, libgomp's own start-up and barriers left out (omp_account.c; the serial fraction with --threads >= 2 and
 * OMP_WAIT_POLICY=passive) and partition_speedup the speed-up the fixed
 * partition allows on --threads idle cores (serial part plus work over
 * the serial part plus each region's busiest thread). --blas-core
 * auto|NAME chooses OpenBLAS's kernels as `moebench run --blas-core` does
 * (core_source says who chose them). Not a test: `make
 * bench-perf` runs it interleaved with bench/perf/torch_vision_baseline.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <gsl/gsl_cblas.h> /* cblas_sgemm, resolved to the BLAS linked first */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "moe/moe.h"
#include "harness/results.h" /* mb_blas_core_select, as moebench run's --blas-core */
#include "omp_account.h"

static double now_c(clockid_t c)
{
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double now(void) { return now_c(CLOCK_MONOTONIC); }

static double now_cpu(void) { return now_c(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define USAGE_PROG "vision-perf"
#define USAGE_OPTS                                                                                 \
  "--size NAME --variant NAME --P --D --L --Lh --H --F --Fm --N --K --s --B --steps --threads "    \
  "--regions --blas-core auto|NAME"
#define USAGE_FILE "bench/perf/vision_perf.c"

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
  int P = 7, D = 32, L = 1, Lh = 1, H = 2, F = 64, Fm = 32, N = 8, K = 4, s = 1, Bt = 64;
  const char *blas_core = NULL;
  int steps = 20, warm = 3, threads = 1, regions = 0;
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
    else if (!strcmp(k, "--P")) {
      if (!whole(k, v, &P))
        return 2;
    } else if (!strcmp(k, "--D")) {
      if (!whole(k, v, &D))
        return 2;
    } else if (!strcmp(k, "--L")) {
      if (!whole(k, v, &L))
        return 2;
    } else if (!strcmp(k, "--Lh")) {
      if (!whole(k, v, &Lh))
        return 2;
    } else if (!strcmp(k, "--H")) {
      if (!whole(k, v, &H))
        return 2;
    } else if (!strcmp(k, "--F")) {
      if (!whole(k, v, &F))
        return 2;
    } else if (!strcmp(k, "--Fm")) {
      if (!whole(k, v, &Fm))
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
      fprintf(stderr, "vision-perf: unknown option %s (try --help)\n", k);
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
  moe_blas_set_threads(1); /* --threads are the model's own (moe_vision_set_threads) */
  moe_layer_config f;
  if (moe_layer_config_variant(&f, variant,
                               (moe_variant_sizes){.D = D, .F = Fm, .N = N, .K = K, .shared = s})) {
    fprintf(stderr, "vision-perf: %s\n", moe_last_error());
    return 2;
  }
  f.expert.act = MOE_ACT_GELU;
  f.combine = MOE_COMBINE_PAPER;
  f.balance_coef = 0.01;
  f.zloss_coef = 0.001;
  moe_vision_config cfg = moe_vision_config_make(28, 28, P, 10, D, H, L, Lh, F, &f);
  moe_vision *m = moe_vision_alloc(&cfg, Bt);
  if (!m) {
    fprintf(stderr, "vision-perf: %s\n", moe_last_error());
    return 1;
  }
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 1);
  moe_vision_init_params(m, r);
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, moe_vision_param_count(m));
  if (moe_vision_set_threads(m, threads) || moe_optim_set_threads(o, threads)) {
    fprintf(stderr, "vision-perf: %s\n", moe_last_error());
    return 2;
  }
  moe_lr_schedule sch = {MOE_LR_WARMUP_COSINE, 3e-3, 0, steps + warm, 0.1};
  const size_t nx = (size_t)Bt * moe_vision_num_patches(&cfg) * moe_vision_patch_dim(&cfg);
  float *x = malloc(nx * sizeof *x);
  moe_token *y = malloc((size_t)Bt * sizeof *y);
  double *ms = malloc(sizeof(double) * (steps > 0 ? steps : 1));
  /* timed steps, CPU ms: all, in parallel regions, the threads' work there, its critical path */
  double cpu_sum = 0, par_sum = 0, work_sum = 0, crit_sum = 0;
  long nreg = 0;
  const double call0 = now_cpu();
  for (int i = 0; i < warm + steps; i++) {
    for (size_t j = 0; j < nx; j++)
      x[j] = (float)gsl_ran_gaussian(r, 1.0);
    for (int b = 0; b < Bt; b++)
      y[b] = (moe_token)gsl_rng_uniform_int(r, 10);
    double t0 = now(), c0 = now_c(CLOCK_PROCESS_CPUTIME_ID), o0 = omp_account_cpu(),
           k0 = omp_account_critical(), w0 = omp_account_work(), loss;
    long r0 = omp_account_regions();
    int rc = moe_vision_forward(m, Bt, x, y, &loss);
    moe_vision_zero_grad(m);
    rc |= moe_vision_backward(m);
    rc |= moe_vision_step(m, o, &sch, 1.0, NULL);
    if (rc) {
      fprintf(stderr, "vision-perf: %s\n", moe_last_error());
      return 1;
    }
    if (i >= warm) {
      ms[i - warm] = 1e3 * (now() - t0);
      cpu_sum += 1e3 * (now_c(CLOCK_PROCESS_CPUTIME_ID) - c0);
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
  double med = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
  uint64_t hash = 1469598103934665603ull;
  const unsigned char *pb = (const unsigned char *)moe_vision_params(m);
  for (size_t i = 0; i < moe_vision_param_count(m) * sizeof(float); i++)
    hash = (hash ^ pb[i]) * 1099511628211ull;
  /* The yardstick: one-thread sgemm at the model's largest product, the
   * larger of the qkv projection (B·Np, 3D, D) and a dense FFN's first
   * matrix (B·Np, F, D), median of 3; the step's GFLOP/s count 3× the
   * forward's moe_vision_flops_parts total per image. */
  moe_vision_parts fp;
  const double step_gf =
      moe_vision_flops_parts(&cfg, &fp) ? 0 : 3 * fp.total * Bt / (med * 1e-3) / 1e9;
  const int gm = Bt * moe_vision_num_patches(&cfg), gn = 3 * D > F ? 3 * D : F, gk = D;
  float *ga = malloc((size_t)gm * gk * sizeof *ga), *gb = malloc((size_t)gn * gk * sizeof *gb),
        *gc = malloc((size_t)gm * gn * sizeof *gc);
  double sg[3] = {0, 0, 0};
  if (ga && gb && gc) {
    for (size_t j = 0; j < (size_t)gm * gk; j++)
      ga[j] = (float)gsl_rng_uniform(r) - 0.5f;
    for (size_t j = 0; j < (size_t)gn * gk; j++)
      gb[j] = (float)gsl_rng_uniform(r) - 0.5f;
    for (int k = 0; k < 4; k++) { /* one warm-up; ≥ 20 products a sample */
      double t0 = now();
      for (int j = 0; j < 20; j++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, gm, gn, gk, 1, ga, gk, gb, gk, 0, gc,
                    gn);
      if (k)
        sg[k - 1] = 20 * 2.0 * gm * gn * gk / (now() - t0) / 1e9;
    }
    qsort(sg, 3, sizeof *sg, cmp);
  }
  free(ga);
  free(gb);
  free(gc);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf(
      "vision size=%s variant=%s P=%d D=%d L=%d Lh=%d H=%d F=%d E=%d K=%d S=%d Fm=%d B=%d "
      "threads=%d "
      "params=%zu ms/step=%.3f cpu_ms/step=%.3f images/s=%.0f rss_peak_MB=%.1f core=%s core_source=%s "
      "params_fnv=%016llx "
      "step_GFLOPs=%.2f sgemm_GFLOPs=%.2f of_sgemm=%.2f sgemm_shape=%dx%dx%d omp_regions/step=%.0f "
      "serial_cpu_frac=%.4f partition_speedup=%.2f\n",
      size, variant, P, D, L, Lh, H, F, f.E, f.K, f.S, Fm, Bt, threads, moe_vision_param_count(m),
      med, cpu_sum / (steps > 0 ? steps : 1), Bt / (med * 1e-3), ru.ru_maxrss / 1024.0,
      moe_blas_corename(), mb_blas_core_source(), (unsigned long long)hash, step_gf, sg[1],
      sg[1] > 0 ? step_gf / sg[1] : 0, gm, gn, gk, (double)nreg / (steps > 0 ? steps : 1),
      cpu_sum - par_sum + work_sum > 0 ? (cpu_sum - par_sum) / (cpu_sum - par_sum + work_sum) : 1,
      cpu_sum - par_sum + crit_sum > 0
          ? (cpu_sum - par_sum + work_sum) / (cpu_sum - par_sum + crit_sum)
          : 1);
  free(x);
  free(y);
  free(ms);
  moe_optim_free(o);
  gsl_rng_free(r);
  moe_vision_free(m);
  return 0;
}
