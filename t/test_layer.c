/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_layer.c — the MoE layer: finite-difference gradients (double) for
 * every gate × expert × S × combine × balance-loss (× router z-loss) combination, a naive
 * per-token reference for the forward pass, the combine rules' algebra,
 * the routing record, determinism, and every error path. */
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"
#include "fdcheck.h"

enum { D = 4, E = 4, F = 5, T = 6 };

/* objective: L = Σ y ⊙ R + L_aux, with a fixed random projection R (T, D) */
typedef struct {
  moe_layer_f64 *l;
  double x[T * D], y[T * D], R[T * D];
  int idx0[T * E]; /* the selection at the base point */
  int K;
} fdctx;

static double objective(void *p)
{
  fdctx *c = p;
  if (moe_layer_forward_f64(c->l, T, c->x, c->y))
    return NAN;
  if (memcmp(moe_layer_chosen_f64(c->l), c->idx0, sizeof(int) * T * c->K) != 0)
    return NAN; /* a perturbation crossed a top-K boundary: the check is void */
  double L = moe_layer_aux_loss_f64(c->l);
  for (int i = 0; i < T * D; i++)
    L += c->y[i] * c->R[i];
  return L;
}

/* Smallest gap, over tokens, between the K-th and (K+1)-th selection
 * scores (s + b): FD steps of 1e-6 cannot cross a gap of 1e-3. */
static double selection_margin(moe_layer_f64 *l, int K, int use_bias)
{
  if (K == E)
    return INFINITY;
  const double *s = moe_layer_scores_f64(l), *b = moe_layer_bias_f64(l);
  const int *idx = moe_layer_chosen_f64(l);
  double m = INFINITY;
  for (int t = 0; t < T; t++) {
    double kth = s[t * E + idx[t * K + K - 1]] + (use_bias ? b[idx[t * K + K - 1]] : 0);
    for (int e = 0; e < E; e++) {
      int chosen = 0;
      for (int k = 0; k < K; k++)
        chosen |= idx[t * K + k] == e;
      if (!chosen) {
        double gap = kth - (s[t * E + e] + (use_bias ? b[e] : 0));
        if (gap < m)
          m = gap;
      }
    }
  }
  return m;
}

static const char *gate_names[] = {"softmax", "softmax_topk", "sigmoid_topk", "sigmoid_norm_topk",
                                   "sigmoid_norm", "deepseek_v3", "softmax_topk+bias+scale"};
static const char *expert_names[] = {"linear", "ffn-relu", "ffn-gelu", "ffn-silu", "ffn-tanh"};

static moe_layer_config make_config(int g, int x, int S, int comb, double coef, int ebias)
{
  moe_layer_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.D = D;
  cfg.E = E;
  cfg.S = S;
  if (g == 6) {
    moe_gate_preset("softmax_topk", &cfg.gate);
    cfg.gate.use_bias = 1;
    cfg.gate.route_scale = 1.7;
  } else {
    moe_gate_preset(gate_names[g], &cfg.gate);
  }
  cfg.K = (g == 0 || g == 4) ? E : 2; /* the dense presets at K = E */
  cfg.expert.kind = x == 0 ? MOE_EXPERT_LINEAR : MOE_EXPERT_FFN;
  cfg.expert.F = F;
  cfg.expert.act = (moe_act)(x == 0 ? 0 : x - 1);
  cfg.expert.bias = ebias;
  cfg.combine = comb ? MOE_COMBINE_ADDITIVE : MOE_COMBINE_PAPER;
  cfg.balance_coef = coef;
  return cfg;
}

/* Draw parameters, bias and input until every token's top-K selection has
 * a margin of 1e-3; returns the number of draws (0 on failure). */
static int draw_point(fdctx *c, gsl_rng *r, int use_bias)
{
  for (int attempt = 1; attempt <= 50; attempt++) {
    moe_layer_init_params_f64(c->l, r);
    size_t n = moe_layer_param_count_f64(c->l);
    double *p = moe_layer_params_f64(c->l);
    /* non-zero biases and shared logits, so their gradients are exercised */
    for (size_t i = 0; i < n; i++)
      if (p[i] == 0)
        p[i] = gsl_ran_gaussian(r, 0.3);
    if (use_bias)
      moe_rng_normal_f64(r, moe_layer_bias_f64(c->l), E, 0.05);
    moe_rng_normal_f64(r, c->x, T * D, 1.0);
    if (moe_layer_forward_f64(c->l, T, c->x, c->y))
      return 0;
    if (selection_margin(c->l, c->K, use_bias) > 1e-3) {
      memcpy(c->idx0, moe_layer_chosen_f64(c->l), sizeof(int) * T * c->K);
      return attempt;
    }
  }
  return 0;
}

static void fd_all(void)
{
  gsl_rng *r = moe_rng_alloc(20250516);
  int n_cfg = 0;
  for (int g = 0; g < 7; g++)
    for (int x = 0; x < 5; x++)
      for (int S = 0; S <= 2; S++)
        for (int comb = 0; comb < 2; comb++)
          for (int withaux = 0; withaux < 3; withaux++) {
            /* withaux: 0 none, 1 balance loss, 2 balance loss + router z-loss */
            int ebias = (n_cfg++ % 4) < 2;
            moe_layer_config cfg = make_config(g, x, S, comb, withaux ? 0.37 : 0.0, ebias);
            cfg.zloss_coef = withaux == 2 ? 0.23 : 0.0;
            fdctx c;
            memset(&c, 0, sizeof c);
            c.K = cfg.K;
            c.l = moe_layer_alloc_f64(&cfg, T);
            if (!c.l || !draw_point(&c, r, cfg.gate.use_bias)) {
              ok(0, "fd %s %s S=%d %s aux=%d: setup (%s)", gate_names[g], expert_names[x], S,
                 comb ? "additive" : "paper", withaux, moe_last_error());
              moe_layer_free_f64(c.l);
              continue;
            }
            moe_rng_normal_f64(r, c.R, T * D, 1.0);
            /* analytic */
            moe_layer_zero_grad_f64(c.l);
            double dx[T * D];
            int rc = moe_layer_forward_f64(c.l, T, c.x, c.y);
            rc |= moe_layer_backward_f64(c.l, c.R, dx);
            size_t n = moe_layer_param_count_f64(c.l);
            double *ga = malloc(n * sizeof *ga);
            memcpy(ga, moe_layer_grads_f64(c.l), n * sizeof *ga);
            double ep = fd_check(objective, &c, moe_layer_params_f64(c.l), ga, n, FD_H);
            double ex = fd_check(objective, &c, c.x, dx, T * D, FD_H);
            ok(rc == 0 && ep < 1e-6 && ex < 1e-6,
               "fd %s %s%s S=%d %s aux=%d: params %.2g, x %.2g (%zu params)", gate_names[g],
               expert_names[x], ebias ? "+b" : "", S, comb ? "additive" : "paper", withaux, ep,
               ex, n);
            free(ga);
            moe_layer_free_f64(c.l);
          }
  gsl_rng_free(r);
}

/* A dense layer (E = K = 1, no shared expert), whose products are cut
 * into row blocks (moei_expert_fwd_blocked / _bwd_blocked): 100 rows,
 * three blocks. Gradients by finite differences, an FFN and a linear
 * expert, each with its biases. */
enum { TB = 100, DB = 3, FB = 4 };
typedef struct {
  moe_layer_f64 *l;
  double x[TB * DB], y[TB * DB], R[TB * DB];
} fd_dense_ctx;

static double objective_dense(void *p)
{
  fd_dense_ctx *c = p;
  if (moe_layer_forward_f64(c->l, TB, c->x, c->y))
    return NAN;
  double L = 0;
  for (int i = 0; i < TB * DB; i++)
    L += c->y[i] * c->R[i];
  return L;
}

static void fd_dense(void)
{
  gsl_rng *r = moe_rng_alloc(4242);
  for (int x = 0; x < 2; x++) {
    moe_layer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.D = DB;
    cfg.E = 1;
    cfg.K = 1;
    moe_gate_preset("softmax", &cfg.gate);
    cfg.expert.kind = x ? MOE_EXPERT_FFN : MOE_EXPERT_LINEAR;
    cfg.expert.F = FB;
    cfg.expert.act = MOE_ACT_GELU;
    cfg.expert.bias = 1;
    static fd_dense_ctx c;
    memset(&c, 0, sizeof c);
    c.l = moe_layer_alloc_f64(&cfg, TB);
    if (!c.l) {
      ok(0, "fd dense %s: alloc (%s)", x ? "ffn-gelu" : "linear", moe_last_error());
      continue;
    }
    moe_layer_init_params_f64(c.l, r);
    size_t n = moe_layer_param_count_f64(c.l);
    double *p = moe_layer_params_f64(c.l);
    for (size_t i = 0; i < n; i++) /* non-zero biases, so their gradients count */
      if (p[i] == 0)
        p[i] = gsl_ran_gaussian(r, 0.3);
    moe_rng_normal_f64(r, c.x, TB * DB, 1.0);
    moe_rng_normal_f64(r, c.R, TB * DB, 1.0);
    static double dx[TB * DB];
    moe_layer_zero_grad_f64(c.l);
    int rc = moe_layer_forward_f64(c.l, TB, c.x, c.y);
    rc |= moe_layer_backward_f64(c.l, c.R, dx);
    double *ga = malloc(n * sizeof *ga);
    memcpy(ga, moe_layer_grads_f64(c.l), n * sizeof *ga);
    double ep = fd_check(objective_dense, &c, p, ga, n, FD_H);
    double ex = fd_check(objective_dense, &c, c.x, dx, TB * DB, FD_H);
    ok(rc == 0 && ep < 1e-6 && ex < 1e-6, "fd dense %s+b, %d rows: params %.2g, x %.2g (%zu params)",
       x ? "ffn-gelu" : "linear", TB, ep, ex, n);
    free(ga);
    moe_layer_free_f64(c.l);
  }
  gsl_rng_free(r);
}

/* The forward pass against a direct per-token evaluation in double. */
static void naive_reference(void)
{
  gsl_rng *r = moe_rng_alloc(77);
  for (int g = 0; g < 7; g++)
    for (int comb = 0; comb < 2; comb++) {
      int S = 1 + (g % 2);
      moe_layer_config cfg = make_config(g, 1 + (g % 4), S, comb, 0, g % 2);
      moe_layer_f64 *l = moe_layer_alloc_f64(&cfg, T);
      moe_layer_init_params_f64(l, r);
      double *sl = moe_layer_shared_logits_f64(l);
      if (sl)
        for (int i = 0; i < S; i++)
          sl[i] = 0.37 * (i + 1);
      if (cfg.gate.use_bias)
        moe_rng_normal_f64(r, moe_layer_bias_f64(l), E, 0.1);
      double x[T * D], y[T * D], want[T * D];
      moe_rng_normal_f64(r, x, T * D, 1.0);
      int rc = moe_layer_forward_f64(l, T, x, y);
      /* reference: logits, gate, experts one token at a time */
      double cache[2 * F], out[D], logits[E], s[E], w[E], omega[2] = {1, 1};
      int idx[E];
      if (sl) {
        double z = exp(sl[0]) + (S > 1 ? exp(sl[1]) : 0);
        omega[0] = exp(sl[0]) / z;
        omega[1] = S > 1 ? exp(sl[1]) / z : 0;
      }
      for (int t = 0; t < T; t++) {
        const double *xt = x + t * D;
        for (int e = 0; e < E; e++) {
          logits[e] = 0;
          for (int d = 0; d < D; d++)
            logits[e] += moe_layer_router_f64(l)[e * D + d] * xt[d];
        }
        rc |= moe_gate_forward_f64(&cfg.gate, 1, E, cfg.K, logits, moe_layer_bias_f64(l), s, idx,
                                   w);
        double half = comb == 0 ? 0.5 : 1.0;
        for (int d = 0; d < D; d++)
          want[t * D + d] = 0;
        for (int i = 0; i < S; i++) {
          moe_expert_forward_f64(&cfg.expert, D, moe_layer_shared_expert_f64(l, i), 1, xt, cache,
                                 out);
          double a = comb == 0 ? 0.5 * omega[i] : 1.0;
          for (int d = 0; d < D; d++)
            want[t * D + d] += a * out[d];
        }
        for (int k = 0; k < cfg.K; k++) {
          moe_expert_forward_f64(&cfg.expert, D, moe_layer_routed_expert_f64(l, idx[k]), 1, xt,
                                 cache, out);
          for (int d = 0; d < D; d++)
            want[t * D + d] += half * w[k] * out[d];
        }
      }
      double md = tap_maxdiff_f64(y, want, T * D);
      ok(rc == 0 && md < 1e-12, "forward = per-token reference: %s S=%d %s (max diff %.2g)",
         gate_names[g], S, comb ? "additive" : "paper", md);
      moe_layer_free_f64(l);
    }
  gsl_rng_free(r);
}

/* PAPER with S = 0 is the routed mixture alone (no ½); ADDITIVE with S = 0
 * is the same function; ω sums to 1; the record is consistent. */
static void combine_rules_and_record(void)
{
  gsl_rng *r = moe_rng_alloc(4242);
  moe_layer_config cp = make_config(3, 2, 0, 0, 0.0, 1), ca = make_config(3, 2, 0, 1, 0.0, 1);
  moe_layer_f64 *lp = moe_layer_alloc_f64(&cp, T), *la = moe_layer_alloc_f64(&ca, T);
  moe_layer_init_params_f64(lp, r);
  is_int((long)moe_layer_param_count_f64(lp), (long)moe_layer_param_count_f64(la),
         "S=0: PAPER and ADDITIVE have the same parameters");
  memcpy(moe_layer_params_f64(la), moe_layer_params_f64(lp),
         moe_layer_param_count_f64(lp) * sizeof(double));
  double x[T * D], yp[T * D], ya[T * D];
  moe_rng_normal_f64(r, x, T * D, 1.3);
  moe_layer_forward_f64(lp, T, x, yp);
  moe_layer_forward_f64(la, T, x, ya);
  ok(memcmp(yp, ya, sizeof yp) == 0, "S=0: PAPER output equals the routed mixture (no 1/2)");
  ok(moe_layer_shared_logits_f64(lp) == NULL && moe_layer_omega_f64(lp) == NULL,
     "S=0: no shared logits, no omega");
  moe_layer_free_f64(lp);
  moe_layer_free_f64(la);

  moe_layer_config c3 = make_config(5, 1, 3, 0, 0.01, 0);
  moe_layer *l = moe_layer_alloc(&c3, T);
  gsl_rng_set(r, 5);
  moe_layer_init_params(l, r);
  float *sl = moe_layer_shared_logits(l);
  sl[0] = 0.4f, sl[1] = -1.1f, sl[2] = 2.385f;
  is_int(moe_layer_shared_logits(l) - moe_layer_params(l), (long)E * D,
         "slab: shared logits follow W_r");
  ok(moe_layer_grad_of(l, sl) == moe_layer_grads(l) + E * D, "grad_of maps into the grad slab");
  ok(moe_layer_grad_of(l, sl + 100000) == NULL, "grad_of rejects a foreign pointer");
  is_int((long)moe_layer_param_count(l),
         (long)(E * D + 3 + (3 + E) * moe_expert_param_count(&c3.expert, D)),
         "slab: param count = W_r + shared logits + experts");
  float xf[T * D], yf[T * D];
  moe_rng_normal_f32(r, xf, T * D, 1.0);
  float *b = moe_layer_bias(l);
  b[3] = 5.0f; /* selection-only: expert 3 is chosen by every token */
  int rc = moe_layer_forward(l, T, xf, yf);
  const float *om = moe_layer_omega(l);
  is_close(om[0] + om[1] + om[2], 1.0, 1e-6, 0, "omega on the simplex");
  ok(om[2] > om[0] && om[0] > om[1], "omega ordered like the shared logits");
  const int *idx = moe_layer_chosen(l), *load = moe_layer_expert_counts(l);
  const float *w = moe_layer_weights(l), *s = moe_layer_scores(l);
  int all3 = 1, wsum_ok = 1, unbiased = 1;
  for (int t = 0; t < T; t++) {
    all3 &= idx[t * 2] == 3 || idx[t * 2 + 1] == 3;
    float ws = w[t * 2] + w[t * 2 + 1];
    wsum_ok &= fabsf(ws - 2.5f) < 1e-5f;
    float z = s[t * E + idx[t * 2]] + s[t * E + idx[t * 2 + 1]];
    unbiased &= fabsf(w[t * 2] - 2.5f * s[t * E + idx[t * 2]] / z) < 1e-5f;
  }
  ok(rc == 0 && all3, "bias +5 on expert 3: every token chooses it");
  ok(wsum_ok, "deepseek_v3 weights sum to route_scale 2.5");
  ok(unbiased, "weights come from the unbiased scores");
  is_int(load[0] + load[1] + load[2] + load[3], T * 2, "load sums to T*K");
  is_int(load[3], T, "load of the favoured expert is T");
  ok(moe_layer_aux_loss(l) > 0, "balance loss reported (%g)", moe_layer_aux_loss(l));
  is_int(moe_layer_last_T(l), T, "last_T");
  rc = moe_layer_bias_update(l, 0.001);
  is_close(b[3], 5.0 - 0.001, 1e-7, 0, "bias update lowers the over-loaded expert");
  moe_layer_free(l);
  gsl_rng_free(r);
}

/* Same seed → identical bits through forward, backward and AdamW; float
 * and double twins agree to float precision. */
static void determinism(void)
{
  moe_layer_config cfg = make_config(5, 2, 1, 1, 0.01, 1);
  enum { TT = 37 };
  uint32_t sums[2];
  float keep[2][4096];
  size_t n = 0;
  for (int run = 0; run < 2; run++) {
    gsl_rng *r = moe_rng_alloc(moe_seed_derive(99, "determinism"));
    moe_layer *l = moe_layer_alloc(&cfg, TT);
    moe_layer_init_params(l, r);
    n = moe_layer_param_count(l);
    moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
    moe_optim *o = moe_optim_alloc(&oc, n);
    float x[TT * D], y[TT * D], dy[TT * D], dx[TT * D];
    for (int step = 0; step < 3; step++) {
      moe_rng_normal_f32(r, x, TT * D, 1.0);
      moe_rng_normal_f32(r, dy, TT * D, 1.0);
      moe_layer_zero_grad(l);
      moe_layer_forward(l, TT, x, y);
      moe_layer_backward(l, dy, dx);
      moe_layer_bias_update(l, 0.001);
      moe_optim_step(o, moe_layer_params(l), moe_layer_grads(l), 1e-2);
    }
    memcpy(keep[run], moe_layer_params(l), n * sizeof(float));
    uint32_t h = 2166136261u;
    const unsigned char *bytes = (const unsigned char *)keep[run];
    for (size_t i = 0; i < n * sizeof(float); i++)
      h = (h ^ bytes[i]) * 16777619u;
    sums[run] = h;
    moe_optim_free(o);
    moe_layer_free(l);
    gsl_rng_free(r);
  }
  ok(n <= 4096 && memcmp(keep[0], keep[1], n * sizeof(float)) == 0,
     "same seed: identical parameter bits after 3 forward/backward/AdamW steps (fnv %08x)",
     (unsigned)sums[0]);

  /* gradients accumulate; dx = NULL changes no parameter gradient */
  {
    gsl_rng *r = moe_rng_alloc(12);
    moe_layer_f64 *l = moe_layer_alloc_f64(&cfg, TT);
    moe_layer_init_params_f64(l, r);
    size_t np = moe_layer_param_count_f64(l);
    double x[TT * D], y[TT * D], dy[TT * D], dx[TT * D];
    double *g1 = malloc(np * sizeof *g1);
    moe_rng_normal_f64(r, x, TT * D, 1.0);
    moe_rng_normal_f64(r, dy, TT * D, 1.0);
    moe_layer_forward_f64(l, TT, x, y);
    moe_layer_zero_grad_f64(l);
    moe_layer_backward_f64(l, dy, dx);
    memcpy(g1, moe_layer_grads_f64(l), np * sizeof *g1);
    moe_layer_backward_f64(l, dy, NULL);
    double md = 0;
    for (size_t i = 0; i < np; i++)
      md = fmax(md, fabs(moe_layer_grads_f64(l)[i] - 2 * g1[i]));
    ok(md < 1e-13, "a second backward (dx = NULL) adds the same gradients (max diff %.2g)", md);
    free(g1);
    moe_layer_free_f64(l);
    gsl_rng_free(r);
  }

  /* float vs double on the same parameters */
  gsl_rng *r = moe_rng_alloc(3);
  moe_layer_f64 *ld = moe_layer_alloc_f64(&cfg, TT);
  moe_layer *lf = moe_layer_alloc(&cfg, TT);
  moe_layer_init_params_f64(ld, r);
  for (size_t i = 0; i < n; i++)
    moe_layer_params(lf)[i] = (float)moe_layer_params_f64(ld)[i];
  for (size_t i = 0; i < n; i++) /* exact float values in the double model too */
    moe_layer_params_f64(ld)[i] = moe_layer_params(lf)[i];
  double xd[TT * D], yd[TT * D];
  float xf[TT * D], yf[TT * D];
  moe_rng_normal_f64(r, xd, TT * D, 1.0);
  for (int i = 0; i < TT * D; i++)
    xf[i] = (float)xd[i], xd[i] = xf[i];
  moe_layer_forward_f64(ld, TT, xd, yd);
  moe_layer_forward(lf, TT, xf, yf);
  double md = 0;
  for (int i = 0; i < TT * D; i++)
    md = fmax(md, fabs(yd[i] - yf[i]));
  ok(md < 1e-5, "float and double twins agree (max diff %.2g)", md);
  moe_layer_free(lf);
  moe_layer_free_f64(ld);
  gsl_rng_free(r);
}

static void error_paths(void)
{
  moe_layer_config cfg = make_config(1, 1, 1, 0, 0.0, 0);
  moe_layer_config bad = cfg;
  bad.K = E + 1;
  ok(moe_layer_alloc(&bad, T) == NULL && strstr(moe_last_error(), "K=5"), "K > E rejected: %s",
     moe_last_error());
  bad = cfg;
  bad.K = 0;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "K = 0 rejected");
  bad = cfg;
  bad.S = -1;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "S < 0 rejected");
  bad = cfg;
  bad.D = 0;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "D = 0 rejected");
  bad = cfg;
  bad.expert.F = 0;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "FFN with F = 0 rejected");
  bad = cfg;
  bad.balance_coef = NAN;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "NaN balance_coef rejected");
  bad.balance_coef = 0;
  bad.zloss_coef = -1;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "negative zloss_coef rejected");
  bad = cfg;
  bad.combine = (moe_combine)7;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "unknown combine rejected");
  bad = cfg;
  bad.gate.route_scale = 0;
  ok(moe_layer_check(&bad) == MOE_EINVAL, "route_scale 0 rejected");
  ok(moe_layer_check(NULL) == MOE_EINVAL, "NULL config rejected");
  ok(moe_layer_alloc(&cfg, 0) == NULL, "max_T = 0 rejected");
  moe_layer_config dflt = moe_layer_config_default((moe_layer_sizes){.D = 8, .E = 6, .K = 2, .S = 1, .F = 16});
  ok(moe_layer_check(&dflt) == 0 && dflt.gate.normalize && dflt.expert.kind == MOE_EXPERT_FFN,
     "default config is valid: softmax_topk, FFN");
  moe_combine cb;
  ok(moe_combine_parse("additive", &cb) == 0 && cb == MOE_COMBINE_ADDITIVE, "parse additive");
  ok(moe_combine_parse("adittive", &cb) == MOE_EINVAL, "parse typo rejected");

  moe_layer *l = moe_layer_alloc(&cfg, T);
  gsl_rng *r = moe_rng_alloc(1);
  moe_layer_init_params(l, r);
  float x[T * D], y[T * D], dx[T * D];
  moe_rng_normal_f32(r, x, T * D, 1.0);
  ok(moe_layer_backward(l, y, dx) == MOE_EINVAL, "backward before forward rejected");
  ok(moe_layer_forward(l, T + 1, x, y) == MOE_EINVAL, "T > max_T rejected");
  ok(moe_layer_forward(l, -1, x, y) == MOE_EINVAL, "T < 0 rejected");
  ok(moe_layer_forward(l, T, NULL, y) == MOE_EINVAL, "NULL x rejected");
  ok(moe_layer_forward(NULL, T, x, y) == MOE_EINVAL, "NULL layer rejected");
  x[7] = NAN;
  ok(moe_layer_forward(l, T, x, y) == MOE_EDOM, "NaN input gives MOE_EDOM: %s", moe_last_error());
  ok(moe_layer_backward(l, y, dx) == MOE_EINVAL, "failed forward leaves nothing to differentiate");
  x[7] = 0.25f;
  moe_layer_router(l)[3] = INFINITY;
  ok(moe_layer_forward(l, T, x, y) == MOE_EDOM, "infinite router weight gives MOE_EDOM");
  moe_layer_router(l)[3] = 0.5f;
  ok(moe_layer_forward(l, 0, NULL, NULL) == 0 && moe_layer_backward(l, NULL, NULL) == 0 &&
         moe_layer_aux_loss(l) == 0,
     "T = 0 is a no-op");
  ok(moe_layer_shared_expert(l, 1) == NULL && moe_layer_routed_expert(l, E) == NULL,
     "expert accessors reject out-of-range indices");
  moe_layer_free(l);
  moe_layer_free(NULL);
  gsl_rng_free(r);
}

/* Two backwards without zeroing add up: for every gate family, with
 * shared experts, expert biases, the selection bias, the balance loss and
 * the router z-loss, so every gradient tensor of the slab is written. */
static void accumulation(void)
{
  for (int g = 0; g < 7; g++) {
    moe_layer_config cfg = make_config(g, 2, 2, g % 2, 0.013, 1);
    cfg.zloss_coef = 0.002;
    moe_layer_f64 *l = moe_layer_alloc_f64(&cfg, T);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 500 + g);
    moe_layer_init_params_f64(l, r);
    const size_t n = moe_layer_param_count_f64(l);
    double *p = moe_layer_params_f64(l);
    for (size_t i = 0; i < n; i++)
      p[i] += gsl_ran_gaussian(r, 0.3);
    if (cfg.gate.use_bias)
      moe_rng_normal_f64(r, moe_layer_bias_f64(l), E, 0.05);
    double x[2][T * D], dy[2][T * D], y[T * D];
    for (int b = 0; b < 2; b++) {
      moe_rng_normal_f64(r, x[b], T * D, 1.0);
      moe_rng_normal_f64(r, dy[b], T * D, 1.0);
    }
    double *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    int rc = 0;
    for (int b = 0; b < 2; b++) {
      moe_layer_zero_grad_f64(l);
      rc |= moe_layer_forward_f64(l, T, x[b], y) | moe_layer_backward_f64(l, dy[b], NULL);
      memcpy(b ? g2 : g1, moe_layer_grads_f64(l), n * sizeof *g1);
    }
    moe_layer_zero_grad_f64(l);
    for (int b = 0; b < 2; b++)
      rc |= moe_layer_forward_f64(l, T, x[b], y) | moe_layer_backward_f64(l, dy[b], NULL);
    size_t moved;
    double err = accum_check(g1, g2, moe_layer_grads_f64(l), n, &moved);
    ok(rc == 0 && err < 1e-12 && moved > n / 2,
       "%s: two backwards without zeroing add up (%zu of %zu gradients, worst %.2g)",
       gate_names[g], moved, n, err);
    free(g1);
    free(g2);
    gsl_rng_free(r);
    moe_layer_free_f64(l);
  }
}

int main(void)
{
  accumulation();
  fd_all();
  fd_dense();
  naive_reference();
  combine_rules_and_record();
  determinism();
  error_paths();
  return tap_done();
}
