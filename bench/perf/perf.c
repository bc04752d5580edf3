/* SPDX-License-Identifier: GPL-3.0-or-later */
/* perf.c — micro-benchmark: one MoE layer's forward + backward + AdamW
 * step, against single-thread sgemm measured in the same run.
 *
 *   bench/perf/moe-perf [--steps N] [--shape T,D,E,K,F,S]... [--gate NAME]
 *
 * Prints, per shape: ms/step (median), tokens/s, GFLOP/s and the ratio to
 * sgemm throughput at the layer's expert-GEMM size, plus the BLAS library,
 * core name and thread count. Not a test: nothing is asserted. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moe/moe.h"

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The same count as bench/perf/torch_baseline.py: forward = router 2TDE + the
 * T·(K+S) expert evaluations of 4DF each; backward counted as 2× forward. */
static double step_flops(int T, int D, int E, int K, int F, int S)
{
  double fwd = 2.0 * T * D * E + (double)T * (K + S) * 4.0 * D * F;
  return 3.0 * fwd;
}

/* Median single-thread sgemm GFLOP/s for an (M, N) = (M, K) (K, N) product. */
static double sgemm_gflops(int M, int N, int K, int reps)
{
  float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N),
        *c = malloc(sizeof(float) * M * N);
  double *t = malloc(sizeof(double) * reps);
  for (long i = 0; i < (long)M * K; i++) a[i] = (float)((i % 13) * 0.0625 - 0.4);
  for (long i = 0; i < (long)K * N; i++) b[i] = (float)((i % 7) * 0.125 - 0.3);
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    t[r] = now() - t0;
  }
  double g = 2.0 * M * N * K / median(t, reps) / 1e9;
  free(a); free(b); free(c); free(t);
  return g;
}

static int bench_shape(int T, int D, int E, int K, int F, int S, const char *gate, int steps)
{
  moe_layer_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (moe_gate_preset(gate, &cfg.gate)) { fprintf(stderr, "%s\n", moe_last_error()); return 1; }
  cfg.D = D; cfg.E = E; cfg.K = K; cfg.S = S;
  cfg.expert.kind = MOE_EXPERT_FFN; cfg.expert.F = F; cfg.expert.act = MOE_ACT_RELU;
  cfg.combine = MOE_COMBINE_ADDITIVE;
  cfg.balance_coef = 0.01;
  moe_layer *l = moe_layer_alloc(&cfg, T);
  gsl_rng *r = moe_rng_alloc(2505);
  if (!l || !r || moe_layer_init_params(l, r)) { fprintf(stderr, "%s\n", moe_last_error()); return 1; }
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, moe_layer_param_count(l));
  float *x = malloc(sizeof(float) * T * D), *y = malloc(sizeof(float) * T * D),
        *tg = malloc(sizeof(float) * T * D), *dy = malloc(sizeof(float) * T * D);
  double *t = malloc(sizeof(double) * steps);
  moe_rng_normal_f32(r, x, (size_t)T * D, 1.0);
  moe_rng_normal_f32(r, tg, (size_t)T * D, 1.0);
  for (int s = -3; s < steps; s++) {
    double loss, t0 = now();
    moe_layer_zero_grad(l);
    if (moe_layer_forward(l, T, x, y) || moe_loss_mse((size_t)T * D, y, tg, &loss, dy) ||
        moe_layer_backward(l, dy, NULL) ||
        moe_optim_step(o, moe_layer_params(l), moe_layer_grads(l), 1e-3)) {
      fprintf(stderr, "step: %s\n", moe_last_error());
      return 1;
    }
    if (s >= 0) t[s] = now() - t0;
  }
  double ms = median(t, steps) * 1e3;
  double gf = step_flops(T, D, E, K, F, S) / (ms * 1e-3) / 1e9;
  /* sgemm at the size of one expert's first matrix over the routed rows */
  int rows = T * K / E > 0 ? T * K / E : 1;
  double peak = sgemm_gflops(rows > 64 ? rows : T, F, D, 20);
  printf("moe T=%d D=%d E=%d K=%d F=%d S=%d gate=%s ms/step=%.3f tokens/s=%.0f GFLOP/s=%.2f "
         "sgemm_GFLOP/s=%.2f ratio_to_sgemm=%.2f\n",
         T, D, E, K, F, S, gate, ms, T / (ms * 1e-3), gf, peak, gf / peak);
  fflush(stdout);
  free(x); free(y); free(tg); free(dy); free(t);
  moe_optim_free(o); moe_layer_free(l); gsl_rng_free(r);
  return 0;
}

int main(int argc, char **argv)
{
  int steps = 20, nshape = 0, shapes[16][6];
  const char *gate = "sigmoid_norm_topk";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--gate") && i + 1 < argc) gate = argv[++i];
    else if (!strcmp(argv[i], "--shape") && i + 1 < argc && nshape < 16) {
      int *s = shapes[nshape];
      if (sscanf(argv[++i], "%d,%d,%d,%d,%d,%d", &s[0], &s[1], &s[2], &s[3], &s[4], &s[5]) != 6) {
        fprintf(stderr, "moe-perf: --shape wants T,D,E,K,F,S\n");
        return 2;
      }
      nshape++;
    } else {
      printf("usage: moe-perf [--steps N] [--gate NAME] [--shape T,D,E,K,F,S]...\n");
      return strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  if (steps < 1) steps = 1;
  if (!nshape) {
    int def[2][6] = {{2048, 256, 16, 2, 256, 1}, {512, 64, 8, 2, 64, 1}};
    memcpy(shapes, def, sizeof def);
    nshape = 2;
  }
  printf("blas=%s core=%s threads=%d config=\"%s\"\n", moe_blas_name(), moe_blas_corename(),
         moe_blas_threads(), moe_blas_config());
  printf("sgemm 1024x1024x1024 GFLOP/s=%.2f\n", sgemm_gflops(1024, 1024, 1024, 5));
  for (int i = 0; i < nshape; i++)
    if (bench_shape(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], shapes[i][4],
                    shapes[i][5], gate, steps))
      return 1;
  return 0;
}
