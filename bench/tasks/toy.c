/* SPDX-License-Identifier: GPL-3.0-or-later */
/* task_toy.c — the four routing variants of the paper on a toy regression.
 *
 * A fixed random "teacher" MoE layer (gate `teacher_gate`) (its own seed stream, the same for
 * every student variant of a replication) maps x ~ N(0, I_D) to
 * y = teacher(x) + noise. A student MoE layer of the chosen variant is
 * trained on n_train pairs with AdamW and a warmup-cosine schedule, then
 * evaluated on n_test fresh pairs. It is the quick, CPU-seconds analogue
 * of the paper's Table 2 comparison, and exercises the layer, gates,
 * optimizer and router metrics end to end.
 *
 * Variants (paper §4): smoe = softmax top-K renormalised, no shared;
 * smoe_sg = normalized sigmoid top-K, no shared; ds_v2 = shared + softmax
 * top-K; ds_v3 = shared + normalized sigmoid top-K. `gate`, `S` override.
 *
 * Router behaviour (paper §3.3) on a fixed probe set of test inputs, with
 * routing recorded at `checkpoints` evenly spaced steps: saturation of the
 * checkpoint at half of training against the final one, the mean change
 * rate between consecutive checkpoints, and Jain's index of the final
 * expert load on the test set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "moe/moe.h"
#include "moe/metrics.h"
#include "task.h"

static const char *const variants[] = {"smoe", "smoe_sg", "ds_v2", "ds_v3", NULL};
static const char *const gates[] = {
    "auto",        "softmax", "softmax_topk", "sigmoid_topk", "sigmoid_norm_topk", "sigmoid_norm",
    "deepseek_v3", NULL};
static const char *const acts[] = {"relu", "gelu", "silu", "tanh", NULL};
static const char *const combines[] = {"additive", "paper", NULL};

static const mb_param params[] = {
    {"variant", MB_STR, "ds_v3", 0, -1, variants, "routing variant of the paper (sets gate and S)"},
    {"gate", MB_STR, "auto", 0, -1, gates, "override the variant's gate preset"},
    {"S", MB_INT, "-1", -1, 16, NULL,
     "shared experts (-1: the variant's, 1 for ds_*, 0 otherwise)"},
    {"E", MB_INT, "8", 1, 256, NULL, "routed experts"},
    {"K", MB_INT, "2", 1, 256, NULL, "routed experts chosen per token"},
    {"D", MB_INT, "16", 1, 4096, NULL, "model width"},
    {"F", MB_INT, "32", 1, 16384, NULL, "expert hidden width"},
    {"act", MB_STR, "relu", 0, -1, acts, "expert activation"},
    {"combine", MB_STR, "additive", 0, -1, combines, "shared/routed combination rule"},
    {"balance_coef", MB_REAL, "0.01", 0, 10, NULL, "Switch balance-loss coefficient"},
    {"teacher_gate", MB_STR, "softmax_topk", 0, -1, gates + 1,
     "the teacher's gate: a softmax-routed teacher may favour softmax students"},
    {"teacher_E", MB_INT, "4", 1, 256, NULL, "teacher's routed experts"},
    {"teacher_K", MB_INT, "1", 1, 256, NULL, "teacher's experts per token"},
    {"teacher_seed", MB_INT, "2505", 0, 2147483647, NULL,
     "seed of the teacher and data (with rep)"},
    {"noise", MB_REAL, "0.1", 0, 100, NULL, "std of the label noise"},
    {"n_train", MB_INT, "4096", 1, 1e8, NULL, "training pairs"},
    {"n_test", MB_INT, "2048", 1, 1e8, NULL, "test pairs"},
    {"batch", MB_INT, "128", 1, 1e6, NULL, "tokens per step"},
    {"steps", MB_INT, "400", 1, 1e8, NULL, "optimizer steps"},
    {"lr", MB_REAL, "0.003", 0, 10, NULL, "peak learning rate (AdamW)"},
    {"weight_decay", MB_REAL, "0.01", 0, 10, NULL, "AdamW decoupled weight decay"},
    {"warmup", MB_INT, "20", 0, 1e8, NULL, "warmup steps of the cosine schedule"},
    {"checkpoints", MB_INT, "10", 2, 1000, NULL, "routing snapshots for router metrics"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {"test_mse",    "train_mse", "noise_floor",
                                      "aux_loss",    "load_jain", "saturation_half",
                                      "change_rate", "params",    NULL};

static int check(const mb_cell *c, const char **bad, char *err, size_t n)
{
  if (mb_cell_int(c, "K") > mb_cell_int(c, "E")) {
    *bad = "K";
    snprintf(err, n, "K=%ld must not exceed E=%ld", mb_cell_int(c, "K"), mb_cell_int(c, "E"));
    return 1;
  }
  if (mb_cell_int(c, "teacher_K") > mb_cell_int(c, "teacher_E")) {
    *bad = "teacher_K";
    snprintf(err, n, "teacher_K=%ld must not exceed teacher_E=%ld", mb_cell_int(c, "teacher_K"),
             mb_cell_int(c, "teacher_E"));
    return 1;
  }
  if (mb_cell_int(c, "checkpoints") > mb_cell_int(c, "steps")) {
    *bad = "checkpoints";
    snprintf(err, n, "checkpoints=%ld must not exceed steps=%ld", mb_cell_int(c, "checkpoints"),
             mb_cell_int(c, "steps"));
    return 1;
  }
  if (mb_cell_int(c, "warmup") > mb_cell_int(c, "steps")) {
    *bad = "warmup";
    snprintf(err, n, "warmup=%ld must not exceed steps=%ld", mb_cell_int(c, "warmup"),
             mb_cell_int(c, "steps"));
    return 1;
  }
  return 0;
}

/* The student's configuration from the cell: the variant's preset
 * (moe_layer_config_variant) with E routed and K chosen as given and S
 * shared (1 for ds_* unless `S` says otherwise); `gate`, `S`, `act`,
 * `combine` override it. */
static int student_config(const mb_cell *c, moe_layer_config *cfg)
{
  const char *v = mb_cell_str(c, "variant"), *g = mb_cell_str(c, "gate");
  int shared = !strncmp(v, "ds_", 3);
  int E = (int)mb_cell_int(c, "E"), K = (int)mb_cell_int(c, "K");
  int S = mb_cell_int(c, "S") >= 0 ? (int)mb_cell_int(c, "S") : shared;
  int s = shared ? S : 0; /* the preset counts shared experts among N and K */
  if (moe_layer_config_variant(cfg, v,
                               (moe_variant_sizes){.D = (int)mb_cell_int(c, "D"),
                                                   .F = (int)mb_cell_int(c, "F"),
                                                   .N = E + s,
                                                   .K = K + s,
                                                   .shared = s}))
    return -1;
  if (strcmp(g, "auto") && moe_gate_preset(g, &cfg->gate))
    return -1;
  cfg->S = S;
  if (moe_act_parse(mb_cell_str(c, "act"), &cfg->expert.act))
    return -1;
  if (moe_combine_parse(mb_cell_str(c, "combine"), &cfg->combine))
    return -1;
  cfg->balance_coef = mb_cell_real(c, "balance_coef");
  return moe_layer_check(cfg);
}

static int make_data(moe_layer *teacher, gsl_rng *r, int n, int D, double noise, float *x, float *y,
                     int chunk)
{
  moe_rng_normal_f32(r, x, (size_t)n * D, 1.0);
  for (int i = 0; i < n; i += chunk) {
    int T = n - i < chunk ? n - i : chunk;
    if (moe_layer_forward(teacher, T, x + (size_t)i * D, y + (size_t)i * D))
      return -1;
  }
  for (size_t i = 0; i < (size_t)n * D; i++)
    y[i] += (float)gsl_ran_gaussian(r, noise);
  return 0;
}

/* Mean squared error of the layer on (x, y), n rows, in chunks. */
static int evaluate(moe_layer *l, int n, int D, const float *x, const float *y, float *out,
                    int chunk, double *mse)
{
  double s = 0;
  for (int i = 0; i < n; i += chunk) {
    int T = n - i < chunk ? n - i : chunk;
    if (moe_layer_forward(l, T, x + (size_t)i * D, out))
      return -1;
    for (size_t j = 0; j < (size_t)T * D; j++) {
      double d = (double)out[j] - y[(size_t)i * D + j];
      s += d * d;
    }
  }
  *mse = s / ((double)n * D);
  return 0;
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    goto out;                                                                                      \
  } while (0)

static int run(const mb_cell *c, uint64_t seed, mb_result *res, char *err, size_t errlen)
{
  int rc = 1;
  moe_layer_config sc, tc;
  moe_layer *student = NULL, *teacher = NULL;
  moe_optim *opt = NULL;
  gsl_rng *r_teacher = NULL, *r_init = NULL, *r_data = NULL, *r_batch = NULL;
  float *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL, *xb = NULL, *yb = NULL, *out = NULL,
        *dy = NULL;
  int *snap = NULL;

  const char *bad;
  if (check(c, &bad, err, errlen))
    return 1; /* run() is callable without the harness */
  if (student_config(c, &sc))
    FAIL("student: %s", moe_last_error());
  const int D = sc.D, B = (int)mb_cell_int(c, "batch"), ntr = (int)mb_cell_int(c, "n_train"),
            nte = (int)mb_cell_int(c, "n_test"), steps = (int)mb_cell_int(c, "steps"),
            ncp = (int)mb_cell_int(c, "checkpoints");
  const int nprobe = nte < 512 ? nte : 512, chunk = B > nprobe ? B : nprobe;

  /* The cell seed differs between variants (it hashes the whole cell), but
   * a fair comparison needs the same teacher and data for every variant of
   * one replication: they come from teacher_seed and the replication. */
  char label[128];
  snprintf(label, sizeof label, "toy-teacher-rep-%s",
           mb_cell_str(c, "rep") ? mb_cell_str(c, "rep") : "0");
  uint64_t tseed = moe_seed_derive((uint64_t)mb_cell_int(c, "teacher_seed"), label);
  tc = sc;
  if (moe_gate_preset(mb_cell_str(c, "teacher_gate"), &tc.gate))
    FAIL("teacher: %s", moe_last_error());
  tc.E = (int)mb_cell_int(c, "teacher_E");
  tc.K = (int)mb_cell_int(c, "teacher_K");
  tc.S = 1;
  tc.combine = MOE_COMBINE_ADDITIVE;
  tc.balance_coef = 0;
  tc.expert.act = MOE_ACT_RELU;

  if (!(teacher = moe_layer_alloc(&tc, chunk)) || !(student = moe_layer_alloc(&sc, chunk)))
    FAIL("layer: %s", moe_last_error());
  if (!(r_teacher = moe_rng_alloc(tseed)) ||
      !(r_data = moe_rng_alloc(moe_seed_derive(tseed, "data"))) ||
      !(r_init = moe_rng_alloc(moe_seed_derive(seed, "init"))) ||
      !(r_batch = moe_rng_alloc(moe_seed_derive(seed, "batch"))))
    FAIL("rng: %s", moe_last_error());
  if (moe_layer_init_params(teacher, r_teacher) || moe_layer_init_params(student, r_init))
    FAIL("init: %s", moe_last_error());
  /* A sharper teacher router makes routing matter. */
  float *wr = moe_layer_router(teacher);
  for (int i = 0; i < tc.E * D; i++)
    wr[i] *= 3.0f;

  xtr = malloc(sizeof(float) * ntr * D);
  ytr = malloc(sizeof(float) * ntr * D);
  xte = malloc(sizeof(float) * nte * D);
  yte = malloc(sizeof(float) * nte * D);
  xb = malloc(sizeof(float) * B * D);
  yb = malloc(sizeof(float) * B * D);
  out = malloc(sizeof(float) * chunk * D);
  dy = malloc(sizeof(float) * B * D);
  snap = malloc(sizeof(int) * (size_t)ncp * nprobe * sc.K);
  if (!xtr || !ytr || !xte || !yte || !xb || !yb || !out || !dy || !snap)
    FAIL("out of memory");
  if (make_data(teacher, r_data, ntr, D, mb_cell_real(c, "noise"), xtr, ytr, chunk) ||
      make_data(teacher, r_data, nte, D, mb_cell_real(c, "noise"), xte, yte, chunk))
    FAIL("teacher: %s", moe_last_error());

  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  oc.weight_decay = mb_cell_real(c, "weight_decay");
  if (!(opt = moe_optim_alloc(&oc, moe_layer_param_count(student))))
    FAIL("optimizer: %s", moe_last_error());
  moe_lr_schedule sched = {MOE_LR_WARMUP_COSINE, mb_cell_real(c, "lr"), mb_cell_int(c, "warmup"),
                           steps, 0.1};

  double train_mse = 0, aux = 0;
  int cp = 0;
  for (int s = 0; s < steps; s++) {
    for (int b = 0; b < B; b++) {
      unsigned long i = gsl_rng_uniform_int(r_batch, (unsigned long)ntr);
      memcpy(xb + (size_t)b * D, xtr + i * D, sizeof(float) * D);
      memcpy(yb + (size_t)b * D, ytr + i * D, sizeof(float) * D);
    }
    double loss;
    int src;
    moe_layer_zero_grad(student);
    if ((src = moe_layer_forward(student, B, xb, out)) ||
        (src = moe_loss_mse((size_t)B * D, out, yb, &loss, dy)) ||
        (src = moe_layer_backward(student, dy, NULL)) ||
        (src = moe_optim_step(opt, moe_layer_params(student), moe_layer_grads(student),
                              moe_lr_at(&sched, s))))
      FAIL("step %d: %s%s", s, src == MOE_EDOM ? "training diverged: " : "", moe_last_error());
    train_mse = loss;
    aux = moe_layer_aux_loss(student);
    if (!isfinite(loss))
      FAIL("step %d: training diverged (loss %g)", s, loss);
    /* routing snapshot at evenly spaced steps, the last one at the end */
    if (cp < ncp && s + 1 == (int)((long)(cp + 1) * steps / ncp)) {
      int prc = moe_layer_forward(student, nprobe, xte, out);
      if (prc)
        FAIL("step %d: %s%s", s, prc == MOE_EDOM ? "training diverged: " : "", moe_last_error());
      memcpy(snap + (size_t)cp * nprobe * sc.K, moe_layer_chosen(student),
             sizeof(int) * nprobe * sc.K);
      cp++;
    }
  }

  double test_mse, jain, sat, cr = 0, v;
  if (evaluate(student, nte, D, xte, yte, out, chunk, &test_mse))
    FAIL("eval: %s", moe_last_error());
  /* load over the whole test set, accumulated chunk by chunk */
  double *load = calloc((size_t)sc.E, sizeof *load), *part = calloc((size_t)sc.E, sizeof *part);
  if (!load || !part) {
    free(load);
    free(part);
    FAIL("out of memory");
  }
  for (int i = 0; i < nte; i += chunk) {
    int T = nte - i < chunk ? nte - i : chunk;
    moe_layer_forward(student, T, xte + (size_t)i * D, out);
    moe_metrics_expert_counts(moe_layer_chosen(student), NULL, (size_t)T, sc.K, sc.E, part, NULL);
    for (int e = 0; e < sc.E; e++)
      load[e] += part[e];
  }
  int mrc = moe_metrics_jain(load, (size_t)sc.E, &jain);
  free(load);
  free(part);
  if (mrc)
    FAIL("jain: %s", moe_last_error());
  const int *fin = snap + (size_t)(ncp - 1) * nprobe * sc.K;
  if (moe_metrics_saturation(snap + (size_t)(ncp / 2 - 1) * nprobe * sc.K, fin, nprobe, sc.K, sc.E,
                             &sat))
    FAIL("saturation: %s", moe_last_error());
  for (int i = 0; i + 1 < ncp; i++) {
    if (moe_metrics_change_rate(snap + (size_t)i * nprobe * sc.K,
                                snap + (size_t)(i + 1) * nprobe * sc.K, nprobe, sc.K, sc.E, &v))
      FAIL("change rate: %s", moe_last_error());
    cr += v / (ncp - 1);
  }
  double nz = mb_cell_real(c, "noise");
  mb_result_metric(res, "test_mse", test_mse);
  mb_result_metric(res, "train_mse", train_mse);
  mb_result_metric(res, "noise_floor", nz * nz);
  mb_result_metric(res, "aux_loss", aux);
  mb_result_metric(res, "load_jain", jain);
  mb_result_metric(res, "saturation_half", sat);
  mb_result_metric(res, "change_rate", cr);
  mb_result_metric(res, "params", (double)moe_layer_param_count(student));
  rc = 0;
out:
  moe_layer_free(student);
  moe_layer_free(teacher);
  moe_optim_free(opt);
  gsl_rng_free(r_teacher);
  gsl_rng_free(r_init);
  gsl_rng_free(r_data);
  gsl_rng_free(r_batch);
  free(xtr);
  free(ytr);
  free(xte);
  free(yte);
  free(xb);
  free(yb);
  free(out);
  free(dy);
  free(snap);
  return rc;
}

const mb_task mb_task_toy = {
    "toy",  "the four routing variants on a teacher-student MoE regression (router metrics too)",
    params, metrics,
    check,  run,
};
