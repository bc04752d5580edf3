/* SPDX-License-Identifier: GPL-3.0-or-later */
/* perf.c — micro-benchmark of one MoE layer step (forward, backward with
 * dx, AdamW) and of the optimizer alone, against single-thread sgemm at
 * the layer's expert-GEMM shape, all measured in the same process.
 *
 *   bench/perf/moe-perf [--reps R] [--steps N] [--act NAME] [--gate NAME]
 *                       [--threads N] [--collapse] [--shape T,D,E,K,F,S]...
 *       runs every shape R times (R repetitions of N timed steps each,
 *       after two warm-up steps) and prints one line per shape; --threads
 *       gives the layer and AdamW N threads of their own
 *       (moe_layer_set_threads, moe_optim_set_threads; BLAS is set to one
 *       thread, moe_blas_set_threads(1), whatever OPENBLAS_NUM_THREADS says),
 *       and a second line per shape, "moe-threads ... wall_ms_med=..
 *       layer_wall_ms_med=.. params_fnv=..", gives the step's median wall
 *       time, the same less the MSE loss call (the harness's loss, which
 *       has no threads: the layer's forward, backward and AdamW alone),
 *       and a hash of the parameters after the run, equal for every N.
 *       --collapse zeroes the router's weights before every step: every
 *       token ties and takes the lowest-numbered experts (a collapsed
 *       router, the most skewed load a layer can have).
 *   bench/perf/moe-perf --optim N [--reps R]
 *       AdamW alone on N parameters: min and median ns/param over R steps.
 *   bench/perf/moe-perf --blas
 *       prints the BLAS library, its core name, threads and configuration.
 *   bench/perf/moe-perf --serve
 *       reads commands on stdin and answers one line each, so that a driver
 *       (bench/perf/torch_baseline.py) can interleave libmoe and PyTorch
 *       repetitions in one run:
 *         shape T D E K F S ACT GATE   build the layer  → "ok params=P"
 *         step N                       N steps          → "step cpu_ms=.. wall_ms=.."
 *         optim N                      N AdamW steps    → "optim cpu_ns=.. wall_ns=.." (per param)
 *         sgemm N                      N expert GEMMs   → "sgemm cpu_gflops=.. wall_gflops=.."
 *         quit
 *       Each answer is the median over its N calls.
 *
 * Times are process CPU time (the machine may be shared: CPU time does not
 * count the slices another process had) and wall time. The step is what a
 * training loop does: zero_grad, forward, MSE loss, backward (with dx),
 * AdamW. FLOPs, as in torch_baseline.py: forward = router 2TDE + the
 * T·(K+S) expert evaluations of 4DF; a step is 3× forward (backward 2×).
 * The sgemm reference multiplies (T·K/E, D) by (D, F)ᵀ — one expert's
 * first matrix on its average share of rows — as the forward does.
 * Not a test: nothing is asserted. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moe/moe.h"

static double now(clockid_t c)
{
  struct timespec ts;
  clock_gettime(c, &ts);
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

typedef struct {
  int T, D, E, K, F, S;
  int collapse; /* the router zeroed before every step (--collapse) */
  moe_layer *l;
  moe_optim *o;
  gsl_rng *r;
  float *x, *y, *tg, *dy, *dx;
  float *a, *b, *c; /* sgemm operands */
  int gm, gn, gk;   /* sgemm shape */
  double loss_wall; /* wall seconds of the last step's MSE loss call */
} bench;

static void bench_free(bench *b)
{
  moe_layer_free(b->l);
  moe_optim_free(b->o);
  gsl_rng_free(b->r);
  free(b->x);
  free(b->y);
  free(b->tg);
  free(b->dy);
  free(b->dx);
  free(b->a);
  free(b->b);
  free(b->c);
  memset(b, 0, sizeof *b);
}

static double step_flops(const bench *b)
{
  double fwd = 2.0 * b->T * b->D * b->E + (double)b->T * (b->K + b->S) * 4.0 * b->D * b->F;
  return 3.0 * fwd;
}

/* collapse: the router's weights zeroed before every step, so that every
 * token ties and takes the lowest-numbered experts (a collapsed router:
 * the most skewed load a layer can have). */
static int bench_init(bench *b, int T, int D, int E, int K, int F, int S, const char *act,
                      const char *gate, int threads, int collapse)
{
  memset(b, 0, sizeof *b);
  b->T = T;
  b->D = D;
  b->E = E;
  b->K = K;
  b->F = F;
  b->S = S;
  moe_layer_config cfg =
      moe_layer_config_default((moe_layer_sizes){.D = D, .E = E, .K = K, .S = S, .F = F});
  if (moe_gate_preset(gate, &cfg.gate) || moe_act_parse(act, &cfg.expert.act))
    return 1;
  /* what torch_baseline.py computes: DeepSeek's additive combine, no
   * balance loss */
  cfg.combine = MOE_COMBINE_ADDITIVE;
  cfg.balance_coef = 0;
  b->l = moe_layer_alloc(&cfg, T);
  b->r = moe_rng_alloc(2505);
  if (!b->l || !b->r || moe_layer_init_params(b->l, b->r))
    return 1;
  b->collapse = collapse;
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  b->o = moe_optim_alloc(&oc, moe_layer_param_count(b->l));
  if (!b->o || moe_layer_set_threads(b->l, threads) || moe_optim_set_threads(b->o, threads))
    return 1;
  size_t TD = (size_t)T * D;
  b->x = malloc(TD * sizeof *b->x);
  b->y = malloc(TD * sizeof *b->y);
  b->tg = malloc(TD * sizeof *b->tg);
  b->dy = malloc(TD * sizeof *b->dy);
  b->dx = malloc(TD * sizeof *b->dx);
  b->gm = T * K / E > 0 ? T * K / E : 1;
  b->gn = F;
  b->gk = D;
  b->a = malloc(sizeof(float) * b->gm * b->gk);
  b->b = malloc(sizeof(float) * b->gn * b->gk);
  b->c = malloc(sizeof(float) * b->gm * b->gn);
  if (!b->o || !b->x || !b->y || !b->tg || !b->dy || !b->dx || !b->a || !b->b || !b->c)
    return 1;
  moe_rng_normal_f32(b->r, b->x, TD, 1.0);
  moe_rng_normal_f32(b->r, b->tg, TD, 1.0);
  moe_rng_normal_f32(b->r, b->a, (size_t)b->gm * b->gk, 1.0);
  moe_rng_normal_f32(b->r, b->b, (size_t)b->gn * b->gk, 1.0);
  return 0;
}

/* One step: forward, the MSE loss against the fixed target (the
 * harness's loss: serial, no threads of its own; its wall time is kept
 * in b->loss_wall), backward with dx, AdamW. */
static int one_step(bench *b)
{
  double loss;
  if (b->collapse) /* AdamW moved it: collapsed again, every step */
    memset(moe_layer_router(b->l), 0, sizeof(float) * (size_t)b->E * b->D);
  moe_layer_zero_grad(b->l);
  if (moe_layer_forward(b->l, b->T, b->x, b->y))
    return 1;
  double w0 = now(CLOCK_MONOTONIC);
  if (moe_loss_mse((size_t)b->T * b->D, b->y, b->tg, &loss, b->dy))
    return 1;
  b->loss_wall = now(CLOCK_MONOTONIC) - w0;
  return moe_layer_backward(b->l, b->dy, b->dx) ||
         moe_optim_step(b->o, moe_layer_params(b->l), moe_layer_grads(b->l), 1e-3);
}

/* Median CPU and wall seconds of n calls of what; 0 or an error. */
#define TIMED(n, cpu, wall, what)                                                                  \
  do {                                                                                             \
    double *tc_ = malloc(sizeof(double) * (n)), *tw_ = malloc(sizeof(double) * (n));               \
    for (int i_ = 0; i_ < (n); i_++) {                                                             \
      double c0_ = now(CLOCK_PROCESS_CPUTIME_ID), w0_ = now(CLOCK_MONOTONIC);                      \
      if (what) {                                                                                  \
        free(tc_);                                                                                 \
        free(tw_);                                                                                 \
        return 1;                                                                                  \
      }                                                                                            \
      tc_[i_] = now(CLOCK_PROCESS_CPUTIME_ID) - c0_;                                               \
      tw_[i_] = now(CLOCK_MONOTONIC) - w0_;                                                        \
    }                                                                                              \
    cpu = median(tc_, (n));                                                                        \
    wall = median(tw_, (n));                                                                       \
    free(tc_);                                                                                     \
    free(tw_);                                                                                     \
  } while (0)

static int gemm_times(bench *b, int inner)
{
  for (int j = 0; j < inner; j++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b->gm, b->gn, b->gk, 1.0f, b->a, b->gk,
                b->b, b->gk, 0.0f, b->c, b->gn);
  return 0;
}

/* n steps: median CPU and wall seconds of a step, and (layer, if not
 * NULL) the median wall seconds of a step less its loss call: the
 * layer's forward, backward and AdamW, the work its threads split. */
static int run_steps(bench *b, int n, double *cpu, double *wall, double *layer)
{
  double *tc = malloc(sizeof(double) * n), *tw = malloc(sizeof(double) * n),
         *tl = malloc(sizeof(double) * n);
  int rc = !tc || !tw || !tl;
  for (int i = 0; i < n && !rc; i++) {
    double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
    rc = one_step(b);
    tc[i] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    tw[i] = now(CLOCK_MONOTONIC) - w0;
    tl[i] = tw[i] - b->loss_wall;
  }
  if (!rc) {
    *cpu = median(tc, n);
    *wall = median(tw, n);
    if (layer)
      *layer = median(tl, n);
  }
  free(tc);
  free(tw);
  free(tl);
  return rc;
}

static int run_optim(bench *b, int n, double *cpu, double *wall)
{
  TIMED(n, *cpu, *wall, moe_optim_step(b->o, moe_layer_params(b->l), moe_layer_grads(b->l), 1e-3));
  return 0;
}

/* sgemm GFLOP/s: enough calls per sample to last ~1 ms */
static int run_sgemm(bench *b, int n, double *cpu_g, double *wall_g)
{
  double fl = 2.0 * b->gm * b->gn * b->gk;
  int inner = (int)(2e-3 * 50e9 / fl) + 1;
  double c, w;
  TIMED(n, c, w, gemm_times(b, inner));
  *cpu_g = fl * inner / c / 1e9;
  *wall_g = fl * inner / w / 1e9;
  return 0;
}

static int serve(void)
{
  char line[256], act[32], gate[64];
  bench b;
  memset(&b, 0, sizeof b);
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    int T, D, E, K, F, S, n;
    double c, w;
    if (sscanf(line, "shape %d %d %d %d %d %d %31s %63s", &T, &D, &E, &K, &F, &S, act, gate) == 8) {
      bench_free(&b);
      if (bench_init(&b, T, D, E, K, F, S, act, gate, 1, 0) || one_step(&b) || one_step(&b)) {
        printf("error %s\n", moe_last_error());
        continue;
      }
      printf("ok params=%zu\n", moe_layer_param_count(b.l));
    } else if (!b.l && strncmp(line, "quit", 4)) {
      printf("error no shape\n");
    } else if (sscanf(line, "step %d", &n) == 1 && n > 0) {
      if (run_steps(&b, n, &c, &w, NULL))
        printf("error %s\n", moe_last_error());
      else
        printf("step cpu_ms=%.4f wall_ms=%.4f\n", c * 1e3, w * 1e3);
    } else if (sscanf(line, "optim %d", &n) == 1 && n > 0) {
      double np = (double)moe_layer_param_count(b.l);
      if (run_optim(&b, n, &c, &w))
        printf("error %s\n", moe_last_error());
      else
        printf("optim cpu_ns=%.4f wall_ns=%.4f\n", c * 1e9 / np, w * 1e9 / np);
    } else if (sscanf(line, "sgemm %d", &n) == 1 && n > 0) {
      run_sgemm(&b, n, &c, &w);
      printf("sgemm cpu_gflops=%.3f wall_gflops=%.3f m=%d n=%d k=%d\n", c, w, b.gm, b.gn, b.gk);
    } else if (!strncmp(line, "quit", 4)) {
      break;
    } else {
      printf("error unknown command\n");
    }
  }
  bench_free(&b);
  return 0;
}

static int optim_alone(size_t n, int reps)
{
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, n);
  float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
  double *tc = malloc(sizeof(double) * reps), *tw = malloc(sizeof(double) * reps);
  gsl_rng *r = moe_rng_alloc(7);
  if (!o || !p || !g || !tc || !tw || !r)
    return 1;
  moe_rng_normal_f32(r, p, n, 1.0);
  moe_rng_normal_f32(r, g, n, 0.1);
  moe_optim_step(o, p, g, 1e-3); /* warm-up: pages touched, caches filled */
  for (int i = 0; i < reps; i++) {
    double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
    moe_optim_step(o, p, g, 1e-3);
    tc[i] = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e9 / (double)n;
    tw[i] = (now(CLOCK_MONOTONIC) - w0) * 1e9 / (double)n;
  }
  double med = median(tc, reps), mn = tc[0];
  printf("optim adamw n=%zu cpu_ns_med=%.3f cpu_ns_min=%.3f wall_ns_med=%.3f\n", n, med, mn,
         median(tw, reps));
  moe_optim_free(o);
  free(p);
  free(g);
  free(tc);
  free(tw);
  gsl_rng_free(r);
  return 0;
}

int main(int argc, char **argv)
{
  int steps = 5, reps = 5, nshape = 0, shapes[32][6], threads = 1, threads_given = 0, collapse = 0;
  long optim_n = 0;
  const char *gate = "sigmoid_norm_topk", *act = "silu";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--serve"))
      return serve();
    if (!strcmp(argv[i], "--blas")) {
      printf("blas=%s core=%s threads=%d config=\"%s\"\n", moe_blas_name(), moe_blas_corename(),
             moe_blas_threads(), moe_blas_config());
      return 0;
    }
    if (!strcmp(argv[i], "--steps") && i + 1 < argc)
      steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--optim") && i + 1 < argc)
      optim_n = atol(argv[++i]);
    else if (!strcmp(argv[i], "--gate") && i + 1 < argc)
      gate = argv[++i];
    else if (!strcmp(argv[i], "--collapse"))
      collapse = 1;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = atoi(argv[++i]);
      threads_given = 1;
    } else if (!strcmp(argv[i], "--act") && i + 1 < argc)
      act = argv[++i];
    else if (!strcmp(argv[i], "--shape") && i + 1 < argc && nshape < 32) {
      int *s = shapes[nshape];
      if (sscanf(argv[++i], "%d,%d,%d,%d,%d,%d", &s[0], &s[1], &s[2], &s[3], &s[4], &s[5]) != 6) {
        fprintf(stderr, "moe-perf: --shape wants T,D,E,K,F,S\n");
        return 2;
      }
      nshape++;
    } else {
      printf("usage: moe-perf [--reps R] [--steps N] [--act NAME] [--gate NAME] "
             "[--threads N] [--collapse] [--shape T,D,E,K,F,S]... | --optim N [--reps R] | "
             "--serve\n");
      return strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  if (steps < 1)
    steps = 1;
  if (reps < 1)
    reps = 1;
  if (optim_n > 0)
    return optim_alone((size_t)optim_n, reps);
  if (threads_given) /* --threads are the layer's own; BLAS inside them on one */
    moe_blas_set_threads(1);
  if (!nshape) {
    int def[2][6] = {{2048, 256, 16, 2, 256, 1}, {512, 64, 8, 2, 64, 1}};
    memcpy(shapes, def, sizeof def);
    nshape = 2;
  }
  for (int i = 0; i < nshape; i++) {
    int *s = shapes[i];
    bench b;
    if (bench_init(&b, s[0], s[1], s[2], s[3], s[4], s[5], act, gate, threads, collapse) ||
        one_step(&b) ||
        one_step(&b)) {
      fprintf(stderr, "moe-perf: %s\n", moe_last_error());
      return 1;
    }
    double *tc = malloc(sizeof(double) * reps), *tw = malloc(sizeof(double) * reps),
           *gc = malloc(sizeof(double) * reps), *tl = malloc(sizeof(double) * reps), c, w;
    for (int r = 0; r < reps; r++) {
      if (run_steps(&b, steps, &tc[r], &tw[r], &tl[r])) {
        fprintf(stderr, "moe-perf: %s\n", moe_last_error());
        return 1;
      }
      run_sgemm(&b, 3, &gc[r], &w);
    }
    run_optim(&b, 5, &c, &w);
    double np = (double)moe_layer_param_count(b.l);
    double ms = median(tc, reps) * 1e3, msmin = tc[0] * 1e3, g = median(gc, reps);
    double gf = step_flops(&b) / (ms * 1e-3) / 1e9;
    printf("moe T=%d D=%d E=%d K=%d F=%d S=%d act=%s gate=%s cpu_ms_med=%.3f cpu_ms_min=%.3f "
           "wall_ms_med=%.3f GFLOP/s=%.2f sgemm_GFLOP/s=%.2f frac_sgemm=%.2f optim_ns/param=%.3f\n",
           s[0], s[1], s[2], s[3], s[4], s[5], act, gate, ms, msmin, median(tw, reps) * 1e3, gf, g,
           gf / g, c * 1e9 / np);
    if (threads_given) {
      /* FNV-1a of the parameters after the same steps: 1 and N threads agree */
      unsigned long long h = 1469598103934665603ull;
      const unsigned char *pb = (const unsigned char *)moe_layer_params(b.l);
      for (size_t j = 0; j < moe_layer_param_count(b.l) * sizeof(float); j++)
        h = (h ^ pb[j]) * 1099511628211ull;
      /* the last step's largest expert load (rows) */
      const int *cnt = moe_layer_expert_counts(b.l);
      int maxload = 0;
      for (int e = 0; e < s[2]; e++)
        maxload = cnt[e] > maxload ? cnt[e] : maxload;
      printf("moe-threads T=%d D=%d E=%d K=%d F=%d S=%d threads=%d blas_threads=%d max_load=%d "
             "wall_ms_med=%.3f layer_wall_ms_med=%.3f params_fnv=%016llx\n",
             s[0], s[1], s[2], s[3], s[4], s[5], threads, moe_blas_threads(), maxload,
             median(tw, reps) * 1e3,
             median(tl, reps) * 1e3, h);
    }
    fflush(stdout);
    free(tc);
    free(tw);
    free(gc);
    free(tl);
    bench_free(&b);
  }
  return 0;
}
