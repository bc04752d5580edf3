/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_threads.c — intra-model threads change no bit: the MoE layer, the
 * LM and the vision model on 1, 2, 3 and 7 threads give bit-identical
 * forward outputs, losses, routing, every gradient, dx and the parameters
 * after a few optimizer steps. The reference is the one-thread code (the
 * code as it was before threads existed); the shapes are chosen so that
 * every split happens: more rows than a GEMM granule (48), experts with
 * no tokens, PAPER and ADDITIVE combines, shared experts with weight ≠ 1,
 * balance and z-losses, linear and FFN experts. Plus the error paths of
 * the set_threads calls. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "moe/moe.h"
#include "tap.h"

static const int counts[] = {1, 2, 3, 7};
#define NC ((int)(sizeof counts / sizeof counts[0]))

static int same(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static float *dup(const float *p, size_t n)
{
  float *q = malloc(n * sizeof *q);
  memcpy(q, p, n * sizeof *q);
  return q;
}

/* ---- the layer ---- */

typedef struct {
  float *y, *dx, *g, *w;
  int *idx;
  double aux;
} layer_run;

/* layer_once with a collapsed router (1: W_r zero, every token ties and
 * takes the lowest experts) or a skewed one (2: W_r zero but for
 * w_r[0][0] = 10, and a selection bias of 0.45 for expert 0: with
 * sigmoid scores, expert 0 takes the tokens with x_0 > −0.29, ~62%) */
static int collapse_router;

static int layer_once(const moe_layer_config *cfg, int T, int nt, layer_run *out)
{
  moe_layer *l = moe_layer_alloc(cfg, T);
  if (!l)
    return 1;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 2385);
  int rc = moe_layer_init_params(l, r);
  if (cfg->S > 0 && cfg->combine == MOE_COMBINE_PAPER)
    for (int i = 0; i < cfg->S; i++)
      moe_layer_shared_logits(l)[i] = (float)(0.37 * i - 0.2);
  /* with a selection bias, expert E−1 gets no token */
  if (cfg->gate.use_bias)
    moe_layer_bias(l)[cfg->E - 1] = -100;
  if (collapse_router)
    memset(moe_layer_router(l), 0, (size_t)cfg->E * cfg->D * sizeof(float));
  if (collapse_router == 2) {
    moe_layer_router(l)[0] = 10;
    moe_layer_bias(l)[0] = 0.45f;
  }
  rc |= moe_layer_set_threads(l, nt);
  const size_t TD = (size_t)T * cfg->D, n = moe_layer_param_count(l);
  float *x = malloc(TD * sizeof *x), *dy = malloc(TD * sizeof *dy);
  out->y = malloc(TD * sizeof *out->y);
  out->dx = malloc(TD * sizeof *out->dx);
  /* two steps: the second reuses the scratch of the first */
  for (int step = 0; step < 2 && !rc; step++) {
    for (size_t i = 0; i < TD; i++) {
      x[i] = (float)gsl_ran_gaussian(r, 1.0);
      dy[i] = (float)gsl_ran_gaussian(r, 0.3);
    }
    rc |= moe_layer_forward(l, T, x, out->y);
    rc |= moe_layer_backward(l, dy, out->dx);
  }
  out->aux = moe_layer_aux_loss(l);
  out->g = dup(moe_layer_grads(l), n);
  out->w = dup(moe_layer_weights(l), (size_t)T * cfg->K);
  out->idx = malloc((size_t)T * cfg->K * sizeof *out->idx);
  memcpy(out->idx, moe_layer_chosen(l), (size_t)T * cfg->K * sizeof *out->idx);
  free(x);
  free(dy);
  gsl_rng_free(r);
  moe_layer_free(l);
  return rc;
}

static void layer_free_run(layer_run *a)
{
  free(a->y);
  free(a->dx);
  free(a->g);
  free(a->w);
  free(a->idx);
}

static void layer_case(const char *name, const moe_layer_config *cfg, int T)
{
  layer_run ref;
  int rc1 = layer_once(cfg, T, 1, &ref);
  if (!ok(rc1 == 0, "layer %s: one thread runs%s%s", name, rc1 ? ": " : "",
          rc1 ? moe_last_error() : ""))
    return;
  moe_layer *l = moe_layer_alloc(cfg, T);
  const size_t n = moe_layer_param_count(l), TD = (size_t)T * cfg->D, TK = (size_t)T * cfg->K;
  moe_layer_free(l);
  for (int c = 1; c < NC; c++) {
    layer_run a;
    int rc = layer_once(cfg, T, counts[c], &a);
    ok(rc == 0 && same(a.y, ref.y, TD * sizeof(float)) && a.aux == ref.aux &&
           same(a.w, ref.w, TK * sizeof(float)) && same(a.idx, ref.idx, TK * sizeof(int)),
       "layer %s, %d threads: y, aux loss and routing bit-identical to 1 thread", name, counts[c]);
    ok(rc == 0 && same(a.g, ref.g, n * sizeof(float)) && same(a.dx, ref.dx, TD * sizeof(float)),
       "layer %s, %d threads: every gradient and dx bit-identical to 1 thread", name, counts[c]);
    layer_free_run(&a);
  }
  layer_free_run(&ref);
}

/* The layer's failures on n threads are the one-thread failures: the
 * first non-finite x, logit, selection bias or output in element order,
 * the same message, MOE_EDOM. kind: 0 two NaNs in x, 1 a token whose
 * logits overflow, 2 a NaN selection bias, 3 an infinite expert weight. */
static int layer_fail(const moe_layer_config *cfg, int T, int nt, int kind, char *msg, size_t cap)
{
  moe_layer *l = moe_layer_alloc(cfg, T);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 77);
  int rc = !l || moe_layer_init_params(l, r) || moe_layer_set_threads(l, nt);
  const int D = cfg->D;
  float *x = malloc((size_t)T * D * sizeof *x), *y = malloc((size_t)T * D * sizeof *y);
  for (size_t i = 0; i < (size_t)T * D; i++)
    x[i] = (float)gsl_ran_gaussian(r, 1.0);
  if (!rc) {
    if (kind == 0) {
      x[(size_t)146 * D] = NAN; /* the block after 97's, on its thread */
      x[(size_t)97 * D + 3] = NAN;
    } else if (kind == 1) {
      for (int d = 0; d < D; d++)
        x[(size_t)121 * D + d] = 3e38f; /* the router's logits of token 121 overflow */
    } else if (kind == 2) {
      moe_layer_bias(l)[3] = NAN;
    } else {
      moe_layer_routed_expert(l, 2)[5] = INFINITY;
    }
    rc = moe_layer_forward(l, T, x, y);
  }
  snprintf(msg, cap, "%s", moe_last_error());
  free(x);
  free(y);
  gsl_rng_free(r);
  moe_layer_free(l);
  return rc;
}

static void layer_fail_tests(void)
{
  moe_layer_config b;
  moe_layer_config_variant(&b, "ds_v3_bias", (moe_variant_sizes){.D = 16, .F = 12, .N = 9, .K = 3, .shared = 1});
  const char *what[] = {"NaN in x", "overflowing logits", "NaN selection bias", "Inf expert weight"};
  const char *expect[] = {"x[97][3] is nan", "token 121", "bias[3] is nan", "layer forward: y["};
  for (int kind = 0; kind < 4; kind++) {
    char ref[512], got[512];
    int rc1 = layer_fail(&b, 150, 1, kind, ref, sizeof ref);
    ok(rc1 == MOE_EDOM && strstr(ref, expect[kind]), "layer, %s, 1 thread: MOE_EDOM (%s)",
       what[kind], ref);
    for (int c = 1; c < NC; c++) {
      int rc = layer_fail(&b, 150, counts[c], kind, got, sizeof got);
      ok(rc == rc1 && strcmp(got, ref) == 0, "layer, %s, %d threads: the one-thread error (%s)",
         what[kind], counts[c], got);
    }
  }
}

static void layer_tests(void)
{
  /* PAPER, 2 shared (weights ½ω ≠ 1), GELU FFN, balance and z-loss */
  moe_layer_config a = moe_layer_config_default((moe_layer_sizes){.D = 24, .E = 6, .K = 2, .S = 2, .F = 20});
  a.expert.act = MOE_ACT_GELU;
  a.expert.bias = 1;
  a.balance_coef = 0.01;
  a.zloss_coef = 0.001;
  layer_case("paper S=2 gelu", &a, 203);
  /* the ds_v3_bias variant: ADDITIVE, sigmoid gates, an expert unused */
  moe_layer_config b;
  moe_layer_config_variant(&b, "ds_v3_bias", (moe_variant_sizes){.D = 16, .F = 12, .N = 9, .K = 3, .shared = 1});
  b.balance_coef = 0.02;
  layer_case("ds_v3_bias", &b, 150);
  /* linear experts, K = 1, no shared */
  moe_layer_config c = moe_layer_config_default((moe_layer_sizes){.D = 10, .E = 5, .K = 1, .S = 0, .F = 1});
  c.expert.kind = MOE_EXPERT_LINEAR;
  layer_case("linear K=1", &c, 97);
  /* dense: one expert takes every token */
  moe_layer_config d;
  moe_layer_config_variant(&d, "dense", (moe_variant_sizes){.D = 16, .F = 8, .N = 4, .K = 2});
  layer_case("dense", &d, 100);
  /* dense, its products in 8 row blocks (T = 500: 11 granules), biases,
   * a dx product wider than one K-panel (F = 160 > MOE_GEMM_FUSE_K) */
  moe_layer_config e = moe_layer_config_default((moe_layer_sizes){.D = 20, .E = 1, .K = 1, .S = 0, .F = 160});
  e.expert.act = MOE_ACT_GELU;
  e.expert.bias = 1;
  layer_case("dense F=160 bias, 8 blocks", &e, 500);
  /* dense linear expert with a bias */
  moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = 12, .E = 1, .K = 1, .S = 0, .F = 1});
  f.expert.kind = MOE_EXPERT_LINEAR;
  f.expert.bias = 1;
  layer_case("dense linear bias", &f, 260);
  /* shared linear experts with biases, PAPER (scaled dy): their products
   * in 7 row blocks (T = 300) */
  moe_layer_config g = moe_layer_config_default((moe_layer_sizes){.D = 12, .E = 4, .K = 2, .S = 2, .F = 1});
  g.expert.kind = MOE_EXPERT_LINEAR;
  g.expert.bias = 1;
  layer_case("shared linear S=2 bias, 7 blocks", &g, 300);
  /* a routed expert with more than half of the expert rows (split into
   * row blocks): a collapsed router sending all 400 tokens to one expert
   * with weight 1 (its rows x and dy themselves, 8 blocks), the same with
   * PAPER's routed factor ½ and biases (dy gathered), and a skewed one
   * (~62% of 500 tokens: x and dy rows gathered) */
  moe_layer_config h;
  moe_layer_config_variant(&h, "ds_v3", (moe_variant_sizes){.D = 16, .F = 24, .N = 4, .K = 1});
  collapse_router = 1;
  layer_case("ds_v3 K=1, router collapsed on one expert", &h, 400);
  h = moe_layer_config_default((moe_layer_sizes){.D = 16, .E = 4, .K = 1, .S = 0, .F = 24});
  h.expert.bias = 1;
  layer_case("paper K=1 bias, router collapsed", &h, 400);
  moe_layer_config_variant(&h, "ds_v3_bias", (moe_variant_sizes){.D = 16, .F = 24, .N = 5, .K = 1});
  collapse_router = 2;
  layer_case("ds_v3_bias K=1, router skewed to one expert", &h, 500);
  collapse_router = 0;

  moe_layer *l = moe_layer_alloc(&a, 8);
  ok(moe_layer_set_threads(l, 0) == MOE_EINVAL && strstr(moe_last_error(), "n=0"),
     "layer threads 0: MOE_EINVAL naming n (%s)", moe_last_error());
  ok(moe_layer_set_threads(l, MOE_THREADS_MAX + 1) == MOE_EINVAL,
     "layer threads above MOE_THREADS_MAX: MOE_EINVAL");
  ok(moe_layer_get_threads(l) == 1, "  and the count stays 1");
  ok(moe_layer_set_threads(NULL, 2) == MOE_EINVAL, "layer threads on NULL: MOE_EINVAL");
  ok(moe_layer_set_threads(l, 4) == 0 && moe_layer_get_threads(l) == 4, "layer threads 4: set");
  moe_layer_free(l);
}

/* ---- the LM ---- */

typedef struct {
  double loss[3];
  float *logits, *g, *p;
} lm_run;

static int lm_once(int nt, lm_run *out, size_t *np, size_t *nl)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, "ds_v3_bias", (moe_variant_sizes){.D = 24, .F = 12, .N = 7, .K = 3, .shared = 1});
  f.balance_coef = 0.01;
  moe_lm_config cfg = moe_lm_config_make(301, 16, 24, 2, 3, &f);
  const int B = 13, T = 16; /* 208 rows: five granules */
  moe_lm *m = moe_lm_alloc(&cfg, B);
  if (!m)
    return 1;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 7);
  int rc = moe_lm_init_params(m, r);
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  const size_t n = moe_lm_param_count(m);
  moe_optim *o = moe_optim_alloc(&oc, n);
  moe_lr_schedule sch = {MOE_LR_WARMUP_COSINE, 3e-3, 1, 3, 0.1};
  rc |= moe_lm_set_threads(m, nt) | moe_optim_set_threads(o, nt);
  uint32_t x[13 * 16], y[13 * 16];
  for (int s = 0; s < 3 && !rc; s++) {
    for (int i = 0; i < B * T; i++) {
      x[i] = (uint32_t)gsl_rng_uniform_int(r, 301);
      y[i] = (uint32_t)gsl_rng_uniform_int(r, 301);
    }
    rc |= moe_lm_forward(m, B, T, x, y, &out->loss[s]);
    if (s == 2) { /* the last step's logits and gradients, before the update */
      out->logits = dup(moe_lm_logits(m), (size_t)B * T * 301);
    }
    moe_lm_zero_grad(m);
    rc |= moe_lm_backward(m);
    if (s == 2)
      out->g = dup(moe_lm_grads(m), n);
    rc |= moe_lm_step(m, o, &sch, 1.0, NULL);
    rc |= moe_lm_bias_update(m, 1e-3);
  }
  if (moe_lm_get_threads(m) != nt)
    rc = 1; /* a forward must not change the count */
  out->p = dup(moe_lm_params(m), n);
  *np = n;
  *nl = (size_t)B * T * 301;
  moe_optim_free(o);
  gsl_rng_free(r);
  moe_lm_free(m);
  return rc;
}

static void lm_tests(void)
{
  lm_run ref;
  size_t n = 0, nl = 0;
  int rc1 = lm_once(1, &ref, &n, &nl);
  if (!ok(rc1 == 0, "lm: one thread runs%s%s", rc1 ? ": " : "", rc1 ? moe_last_error() : ""))
    return;
  for (int c = 1; c < NC; c++) {
    lm_run a;
    int rc = lm_once(counts[c], &a, &n, &nl);
    ok(rc == 0 && same(a.loss, ref.loss, sizeof a.loss) && same(a.logits, ref.logits, nl * 4),
       "lm, %d threads: losses of 3 steps and logits bit-identical to 1 thread", counts[c]);
    ok(rc == 0 && same(a.g, ref.g, n * 4), "lm, %d threads: every gradient bit-identical",
       counts[c]);
    ok(rc == 0 && same(a.p, ref.p, n * 4),
       "lm, %d threads: parameters after 3 AdamW steps bit-identical", counts[c]);
    free(a.logits);
    free(a.g);
    free(a.p);
  }
  free(ref.logits);
  free(ref.g);
  free(ref.p);
  ok(moe_lm_set_threads(NULL, 2) == MOE_EINVAL, "lm threads on NULL: MOE_EINVAL");
}

/* ---- the forward-only evaluation path ---- */

static void eval_tests(void)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, "ds_v2", (moe_variant_sizes){.D = 24, .F = 12, .N = 8, .K = 3, .shared = 1});
  f.balance_coef = 0.01;
  moe_lm_config cfg = moe_lm_config_make(257, 20, 24, 2, 2, &f);
  const int B = 11, T = 20, N = B * T, K = f.K; /* 220 rows: 4 blocks of 48 and a tail */
  for (int nt = 1; nt <= 3; nt += 2) {
    moe_lm *m = moe_lm_alloc(&cfg, B);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 31);
    int rc = moe_lm_init_params(m, r) | moe_lm_set_threads(m, nt);
    uint32_t x[11 * 20], y[11 * 20];
    for (int i = 0; i < N; i++) {
      x[i] = (uint32_t)gsl_rng_uniform_int(r, 257);
      y[i] = (uint32_t)gsl_rng_uniform_int(r, 257);
    }
    double lt = 0, le = 0;
    rc |= moe_lm_forward(m, B, T, x, y, &lt);
    const double cet = moe_lm_ce_loss(m), auxt = moe_lm_aux_loss(m);
    float *logits = dup(moe_lm_logits(m), (size_t)N * 257);
    int *idx[2];
    float *w[2];
    for (int l = 0; l < 2; l++) {
      idx[l] = malloc((size_t)N * K * sizeof(int));
      memcpy(idx[l], moe_layer_chosen(moe_lm_ffn(m, l)), (size_t)N * K * sizeof(int));
      w[l] = dup(moe_layer_weights(moe_lm_ffn(m, l)), (size_t)N * K);
    }
    rc |= moe_lm_forward_eval(m, B, T, x, y, &le);
    int routing = 1;
    for (int l = 0; l < 2; l++) {
      routing &= same(idx[l], moe_layer_chosen(moe_lm_ffn(m, l)), (size_t)N * K * sizeof(int));
      routing &= same(w[l], moe_layer_weights(moe_lm_ffn(m, l)), (size_t)N * K * sizeof(float));
      free(idx[l]);
      free(w[l]);
    }
    ok(rc == 0 && le == lt && moe_lm_ce_loss(m) == cet && moe_lm_aux_loss(m) == auxt,
       "eval forward, %d thread(s): loss, CE and aux bit-identical to the training forward", nt);
    ok(moe_lm_logits(m) && same(moe_lm_logits(m), logits, (size_t)N * 257 * sizeof(float)),
       "eval forward, %d thread(s): logits bit-identical", nt);
    ok(routing, "eval forward, %d thread(s): chosen experts and weights bit-identical", nt);
    ok(moe_lm_backward(m) == MOE_EINVAL, "eval forward, %d thread(s): no backward after it", nt);
    rc = moe_lm_forward_eval(m, B, T, x, NULL, NULL);
    ok(rc == 0 && same(moe_lm_logits(m), logits, (size_t)N * 257 * sizeof(float)),
       "eval forward without targets: the same logits");
    x[5] = 257;
    ok(moe_lm_forward_eval(m, B, T, x, y, &le) == MOE_ERANGE, "eval forward: token id >= V refused");
    free(logits);
    gsl_rng_free(r);
    moe_lm_free(m);
  }
}

/* ---- the vision model ---- */

typedef struct {
  double loss[3];
  float *g, *p;
} vision_run;

static int vision_once(int nt, vision_run *out, size_t *np)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, "ds_v2", (moe_variant_sizes){.D = 16, .F = 12, .N = 6, .K = 3, .shared = 1});
  f.combine = MOE_COMBINE_PAPER;
  f.balance_coef = 0.01;
  f.zloss_coef = 0.001;
  moe_vision_config cfg = moe_vision_config_make(12, 12, 3, 5, 16, 2, 1, 1, 20, &f);
  cfg.moe_everywhere = 1;
  const int B = 7; /* 7 × 16 patches = 112 rows */
  moe_vision *m = moe_vision_alloc(&cfg, B);
  if (!m)
    return 1;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 11);
  int rc = moe_vision_init_params(m, r);
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  const size_t n = moe_vision_param_count(m);
  moe_optim *o = moe_optim_alloc(&oc, n);
  moe_lr_schedule sch = {MOE_LR_CONSTANT, 3e-3, 0, 0, 0};
  rc |= moe_vision_set_threads(m, nt) | moe_optim_set_threads(o, nt);
  const int Np = moe_vision_num_patches(&cfg), pd = moe_vision_patch_dim(&cfg);
  float *x = malloc((size_t)B * Np * pd * sizeof *x);
  moe_token y[7];
  for (int s = 0; s < 3 && !rc; s++) {
    for (size_t i = 0; i < (size_t)B * Np * pd; i++)
      x[i] = (float)gsl_rng_uniform(r);
    for (int b = 0; b < B; b++)
      y[b] = (moe_token)gsl_rng_uniform_int(r, 5);
    rc |= moe_vision_forward(m, B, x, y, &out->loss[s]);
    moe_vision_zero_grad(m);
    rc |= moe_vision_backward(m);
    if (s == 2)
      out->g = dup(moe_vision_grads(m), n);
    rc |= moe_vision_step(m, o, &sch, 1.0, NULL);
  }
  if (moe_vision_get_threads(m) != nt)
    rc = 1; /* a forward must not change the count */
  out->p = dup(moe_vision_params(m), n);
  *np = n;
  free(x);
  moe_optim_free(o);
  gsl_rng_free(r);
  moe_vision_free(m);
  return rc;
}

static void vision_tests(void)
{
  vision_run ref;
  size_t n = 0;
  int rc1 = vision_once(1, &ref, &n);
  if (!ok(rc1 == 0, "vision: one thread runs%s%s", rc1 ? ": " : "", rc1 ? moe_last_error() : ""))
    return;
  for (int c = 1; c < NC; c++) {
    vision_run a;
    int rc = vision_once(counts[c], &a, &n);
    ok(rc == 0 && same(a.loss, ref.loss, sizeof a.loss) && same(a.g, ref.g, n * 4),
       "vision, %d threads: losses of 3 steps and every gradient bit-identical", counts[c]);
    ok(rc == 0 && same(a.p, ref.p, n * 4),
       "vision, %d threads: parameters after 3 AdamW steps bit-identical", counts[c]);
    free(a.g);
    free(a.p);
  }
  free(ref.g);
  free(ref.p);
  ok(moe_vision_set_threads(NULL, 2) == MOE_EINVAL, "vision threads on NULL: MOE_EINVAL");
}

/* n > 1 puts BLAS on one thread (its threads inside the layer's would
 * oversubscribe the cores and change bits); n = 1 leaves it alone. */
static void blas_threads_tests(void)
{
  moe_blas_set_threads(2);
  if (moe_blas_threads() < 2) {
    for (int i = 0; i < 2; i++)
      ok(1, "layer threads and BLAS threads # SKIP BLAS cannot be given 2 threads (%s)",
         moe_blas_name());
    return;
  }
  moe_layer_config c =
      moe_layer_config_default((moe_layer_sizes){.D = 16, .E = 4, .K = 2, .S = 1, .F = 8});
  moe_layer *l = moe_layer_alloc(&c, 1);
  int rc = l ? moe_layer_set_threads(l, 1) : -1, bt = moe_blas_threads();
  ok(rc == 0 && bt == 2, "layer threads 1: BLAS left on its 2 threads (%d)", bt);
  rc = l ? moe_layer_set_threads(l, 2) : -1, bt = moe_blas_threads();
  ok(rc == 0 && bt == 1, "layer threads 2: BLAS set to 1 thread (%d)", bt);
  moe_layer_free(l);
}

int main(void)
{
  blas_threads_tests();
  moe_blas_set_threads(1);
  layer_tests();
  layer_fail_tests();
  lm_tests();
  eval_tests();
  vision_tests();
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, 10);
  ok(moe_optim_set_threads(o, -1) == MOE_EINVAL, "optimizer threads -1: MOE_EINVAL");
  moe_optim_free(o);
  return tap_done();
}
