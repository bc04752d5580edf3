/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_gate.c — the gate family: finite-difference gradients (double) for
 * every preset and several K, the selection rules (stable ties, bias for
 * selection only, dense order), weight identities, the balancing step, and
 * every error path. */
#include <string.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"
#include "fdcheck.h"

enum { T = 7, E = 5 };

typedef struct {
  moe_gate_config cfg;
  int K;
  double logits[T * E], bias[E], s[T * E], w[T * E], R[T * E];
  int idx[T * E], idx0[T * E];
} fdctx;

static double objective(void *p)
{
  fdctx *c = p;
  if (moe_gate_forward_f64(&c->cfg, T, E, c->K, c->logits, c->bias, c->s, c->idx, c->w))
    return NAN;
  if (memcmp(c->idx, c->idx0, sizeof(int) * T * c->K))
    return NAN;
  double L = 0;
  for (int i = 0; i < T * c->K; i++)
    L += c->w[i] * c->R[i];
  return L;
}

/* Smallest gap between a chosen and an unchosen selection score. */
static double margin(const fdctx *c)
{
  double m = INFINITY;
  if (c->K == E)
    return m;
  for (int t = 0; t < T; t++) {
    double sel[E];
    for (int e = 0; e < E; e++)
      sel[e] = c->s[t * E + e] + (c->cfg.use_bias ? c->bias[e] : 0);
    double kth = sel[c->idx[t * c->K + c->K - 1]];
    for (int e = 0; e < E; e++) {
      int chosen = 0;
      for (int k = 0; k < c->K; k++)
        chosen |= c->idx[t * c->K + k] == e;
      if (!chosen && kth - sel[e] < m)
        m = kth - sel[e];
    }
  }
  return m;
}

static void fd_presets(void)
{
  gsl_rng *r = moe_rng_alloc(1905);
  const char *name;
  for (int pi = 0; (name = moe_gate_preset_name(pi)) != NULL; pi++)
    for (int K = 1; K <= E; K += 2) /* 1, 3, 5 = dense */
      for (int scaled = 0; scaled < 2; scaled++) {
        fdctx c;
        memset(&c, 0, sizeof c);
        moe_gate_preset(name, &c.cfg);
        if (scaled)
          c.cfg.route_scale *= 1.37;
        c.K = K;
        int drawn = 0;
        for (int a = 0; a < 50 && !drawn; a++) {
          moe_rng_normal_f64(r, c.logits, T * E, 1.5);
          moe_rng_normal_f64(r, c.bias, E, 0.1);
          moe_gate_forward_f64(&c.cfg, T, E, K, c.logits, c.bias, c.s, c.idx, c.w);
          drawn = margin(&c) > 1e-3;
        }
        memcpy(c.idx0, c.idx, sizeof c.idx);
        moe_rng_normal_f64(r, c.R, T * K, 1.0);
        double dl[T * E];
        int rc = moe_gate_backward_f64(&c.cfg, T, E, K, c.s, c.idx, c.R, dl);
        double err = fd_check(objective, &c, c.logits, dl, T * E, FD_H);
        ok(drawn && rc == 0 && err < 1e-7, "fd %s K=%d scale=%g: %.2g", name, K,
           c.cfg.route_scale, err);
      }
  gsl_rng_free(r);
}

static void selection(void)
{
  moe_gate_config g;
  moe_gate_preset("softmax_topk", &g);
  float l[E] = {0.5f, 2.385f, 2.385f, -1.0f, 2.385f}, s[E], w[E];
  int idx[E];
  int rc = moe_gate_forward(&g, 1, E, 2, l, NULL, s, idx, w);
  ok(rc == 0 && idx[0] == 1 && idx[1] == 2, "ties go to the lower index (%d, %d)", idx[0], idx[1]);
  is_close(w[0], 0.5, 1e-7, 0, "tied chosen weights are equal after renormalisation");
  float flat[E] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
  rc = moe_gate_forward(&g, 1, E, 3, flat, NULL, s, idx, w);
  ok(rc == 0 && idx[0] == 0 && idx[1] == 1 && idx[2] == 2, "all equal: first K experts");
  float l2[E] = {0.1f, -0.4f, 1.7f, 0.9f, -2.2f};
  rc = moe_gate_forward(&g, 1, E, 3, l2, NULL, s, idx, w);
  ok(rc == 0 && idx[0] == 2 && idx[1] == 3 && idx[2] == 0, "slots in descending score order");
  is_close(w[0] + w[1] + w[2], 1.0, 1e-6, 0, "softmax_topk weights sum to 1");
  is_close(w[1] / w[2], s[3] / s[0], 1e-6, 0, "renormalisation keeps score ratios");

  /* dense: slot k is expert k, weights are the scores */
  moe_gate_preset("softmax", &g);
  rc = moe_gate_forward(&g, 1, E, E, l2, NULL, s, idx, w);
  int ident = 1;
  for (int e = 0; e < E; e++)
    ident &= idx[e] == e && w[e] == s[e];
  ok(rc == 0 && ident, "dense softmax: identity slots, weights = scores");
  is_close(s[0] + s[1] + s[2] + s[3] + s[4], 1.0, 1e-6, 0, "softmax scores sum to 1");

  moe_gate_preset("sigmoid_topk", &g);
  rc = moe_gate_forward(&g, 1, E, 2, l2, NULL, s, idx, w);
  is_close(w[0], 1 / (1 + exp(-1.7)), 1e-6, 0, "sigmoid_topk weight is the raw sigmoid");
  moe_gate_preset("sigmoid_norm", &g);
  rc = moe_gate_forward(&g, 1, E, E, l2, NULL, s, idx, w);
  double z = 0;
  for (int e = 0; e < E; e++)
    z += 1 / (1 + exp(-l2[e]));
  is_close(w[4], (1 / (1 + exp(2.2))) / z, 1e-6, 0, "dense normalized sigmoid weight");

  /* bias: selection only */
  moe_gate_preset("deepseek_v3", &g);
  float b[E] = {0, 0, 0, 0, 3.0f};
  rc = moe_gate_forward(&g, 1, E, 2, l2, b, s, idx, w);
  ok(rc == 0 && idx[0] == 4 && idx[1] == 2, "bias +3 moves expert 4 to the front");
  is_close(w[0], 2.5 * s[4] / (s[4] + s[2]), 1e-6, 0, "weights use the unbiased scores");
  is_close(w[0] + w[1], 2.5, 1e-6, 0, "deepseek_v3 weights sum to 2.5");
  float bt[E] = {0.2f, 0.2f, 0, 0, 0};
  float lt[E] = {0, 0, 0.2f, 0.2f, 0};
  moe_gate_preset("sigmoid_topk", &g);
  g.use_bias = 1;
  rc = moe_gate_forward(&g, 1, E, 1, lt, bt, s, idx, w);
  ok(rc == 0 && idx[0] == 0, "ties in s + b also go to the lower index (%d)", idx[0]);

  /* extreme logits stay finite */
  float big[E] = {1000.0f, -1000.0f, 999.0f, 0, -50.0f};
  moe_gate_preset("softmax_topk", &g);
  rc = moe_gate_forward(&g, 1, E, 2, big, NULL, s, idx, w);
  ok(rc == 0 && isfinite(w[0]) && isfinite(w[1]) && w[0] > 0.7f, "softmax with |l| = 1000");
  float low[E] = {-200.0f, -300.0f, -250.0f, -400.0f, -500.0f};
  moe_gate_preset("sigmoid_norm_topk", &g);
  rc = moe_gate_forward(&g, 1, E, 2, low, NULL, s, idx, w);
  ok(rc == 0 && isfinite(w[0]) && isfinite(w[1]), "normalized sigmoid with all scores underflowing");
  float dw[2] = {1.5f, -0.5f}, dl[E];
  rc = moe_gate_backward(&g, 1, E, 2, s, idx, dw, dl);
  int fin = 1;
  for (int e = 0; e < E; e++)
    fin &= isfinite(dl[e]);
  ok(rc == 0 && fin, "its backward is finite too");
}

static void balancing(void)
{
  /* T=4, E=4, K=2: mean load 2 */
  int idx[8] = {0, 1, 0, 2, 0, 1, 3, 1};
  int load[4];
  ok(moe_gate_expert_counts(4, 4, 2, idx, load) == 0 && load[0] == 3 && load[1] == 3 && load[2] == 1 &&
         load[3] == 1,
     "load counts");
  float b[4] = {0.25f, 0, -0.125f, 0};
  ok(moe_gate_bias_update(4, 4, 2, idx, 0.001, b) == 0, "bias update");
  is_close(b[0], 0.249, 1e-7, 0, "over-loaded expert 0 goes down");
  is_close(b[2], -0.124, 1e-7, 0, "under-loaded expert 2 goes up");
  int even[8] = {0, 1, 2, 3, 1, 0, 3, 2};
  double bd[4] = {0.5, 0.5, 0.5, 0.5};
  moe_gate_bias_update_f64(4, 4, 2, even, 0.001, bd);
  ok(bd[0] == 0.5 && bd[3] == 0.5, "exactly balanced: sign(0) = 0, no change");
  ok(moe_gate_expert_counts(4, 4, 2, (int[]){0, 1, 4, 0, 0, 0, 0, 0}, load) == MOE_EINVAL,
     "load rejects an index >= E");
  ok(moe_gate_bias_update(4, 4, 2, idx, NAN, b) == MOE_EINVAL, "NaN gamma rejected");
}

static void errors(void)
{
  moe_gate_config g;
  float l[T * E], s[T * E], w[T * E], b[E] = {0};
  int idx[T * E];
  for (int i = 0; i < T * E; i++)
    l[i] = 0.1f * (i % 7) - 0.3f;
  moe_gate_preset("softmax_topk", &g);
  ok(moe_gate_forward(&g, T, E, E + 1, l, NULL, s, idx, w) == MOE_EINVAL, "K > E: %s",
     moe_last_error());
  ok(moe_gate_forward(&g, T, E, 0, l, NULL, s, idx, w) == MOE_EINVAL, "K = 0");
  ok(moe_gate_forward(&g, T, 0, 1, l, NULL, s, idx, w) == MOE_EINVAL, "E = 0");
  ok(moe_gate_forward(&g, -1, E, 2, l, NULL, s, idx, w) == MOE_EINVAL, "T < 0");
  ok(moe_gate_forward(NULL, T, E, 2, l, NULL, s, idx, w) == MOE_EINVAL, "NULL config");
  ok(moe_gate_forward(&g, T, E, 2, NULL, NULL, s, idx, w) == MOE_EINVAL, "NULL logits");
  ok(moe_gate_forward(&g, T, E, 2, l, NULL, s, NULL, w) == MOE_EINVAL, "NULL idx");
  ok(moe_gate_forward(&g, 0, E, 2, NULL, NULL, NULL, NULL, NULL) == 0, "T = 0 is a no-op");
  l[9] = NAN;
  ok(moe_gate_forward(&g, T, E, 2, l, NULL, s, idx, w) == MOE_EDOM, "NaN logit: %s",
     moe_last_error());
  l[9] = -INFINITY;
  ok(moe_gate_forward(&g, T, E, 2, l, NULL, s, idx, w) == MOE_EDOM, "-inf logit");
  l[9] = 0.7f;
  g.use_bias = 1;
  ok(moe_gate_forward(&g, T, E, 2, l, NULL, s, idx, w) == MOE_EINVAL, "use_bias with NULL bias");
  b[2] = INFINITY;
  ok(moe_gate_forward(&g, T, E, 2, l, b, s, idx, w) == MOE_EDOM, "infinite bias");
  g.use_bias = 0;
  g.route_scale = -1;
  ok(moe_gate_check(&g, E, 2) == MOE_EINVAL, "negative route_scale");
  g.route_scale = NAN;
  ok(moe_gate_check(&g, E, 2) == MOE_EINVAL, "NaN route_scale");
  g.route_scale = 1;
  g.score = (moe_score_fn)9;
  ok(moe_gate_check(&g, E, 2) == MOE_EINVAL, "unknown score function");
  ok(moe_gate_preset("sigmoid-norm", &g) == MOE_EINVAL && strstr(moe_last_error(), "sigmoid_norm"),
     "unknown preset lists the known ones: %s", moe_last_error());
  ok(moe_gate_preset(NULL, &g) == MOE_EINVAL, "NULL preset name");
  moe_gate_preset("softmax_topk", &g);
  moe_gate_forward(&g, T, E, 2, l, NULL, s, idx, w);
  idx[3] = E;
  ok(moe_gate_backward(&g, T, E, 2, s, idx, w, l) == MOE_EINVAL, "backward: idx out of range");
  ok(moe_gate_backward(&g, T, E, 2, s, idx, NULL, l) == MOE_EINVAL, "backward: NULL dweights");
  is_int(moe_gate_preset_name(6) == NULL, 1, "six presets");
}

int main(void)
{
  fd_presets();
  selection();
  balancing();
  errors();
  return tap_done();
}
