/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_expert.c — linear and FFN experts: finite-difference gradients
 * (double) for every kind × activation × bias, activation values against
 * PyTorch, gradient accumulation, and the error paths. */
#include <string.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"
#include "fdcheck.h"

enum { D = 5, F = 6, N = 4, P_MAX = 2 * F * D + F + D };

typedef struct {
  moe_expert_config cfg;
  double p[P_MAX], x[N * D], y[N * D], R[N * D], cache[2 * N * F];
} fdctx;

static double objective(void *v)
{
  fdctx *c = v;
  if (moe_expert_forward_f64(&c->cfg, D, c->p, N, c->x, c->cache, c->y))
    return NAN;
  double L = 0;
  for (int i = 0; i < N * D; i++)
    L += c->y[i] * c->R[i];
  return L;
}

static void fd_all(void)
{
  gsl_rng *r = moe_rng_alloc(31);
  for (int kind = 0; kind < 2; kind++)
    for (int act = 0; act < (kind ? 4 : 1); act++)
      for (int bias = 0; bias < 2; bias++) {
        fdctx c;
        memset(&c, 0, sizeof c);
        c.cfg = (moe_expert_config){(moe_expert_kind)kind, F, (moe_act)act, bias};
        size_t n = moe_expert_param_count(&c.cfg, D);
        moe_rng_normal_f64(r, c.p, n, 0.6);
        moe_rng_normal_f64(r, c.x, N * D, 1.0);
        moe_rng_normal_f64(r, c.R, N * D, 1.0);
        double g[P_MAX], dx[N * D], work[N * F];
        for (size_t i = 0; i < n; i++)
          g[i] = 0.125; /* gradients accumulate: start from a known non-zero */
        int rc = moe_expert_forward_f64(&c.cfg, D, c.p, N, c.x, c.cache, c.y);
        rc |= moe_expert_backward_f64(&c.cfg, D, c.p, N, c.x, c.cache, c.R, g, dx, work);
        for (size_t i = 0; i < n; i++)
          g[i] -= 0.125;
        double ep = fd_check(objective, &c, c.p, g, n, FD_H);
        double ex = fd_check(objective, &c, c.x, dx, N * D, FD_H);
        ok(rc == 0 && ep < 1e-7 && ex < 1e-7, "fd %s%s%s: params %.2g, x %.2g",
           kind ? "ffn-" : "linear", kind ? moe_act_name((moe_act)act) : "", bias ? "+bias" : "",
           ep, ex);
      }
  gsl_rng_free(r);
}

/* y = W2 act(W1 x) with identity-like weights exposes act itself; values
 * from torch.nn.functional (float64). */
static void activations(void)
{
  static const struct {
    moe_act act;
    double in, want;
  } cases[] = {
    {MOE_ACT_RELU, -0.731, 0.0},
    {MOE_ACT_RELU, 2.385, 2.385},
    {MOE_ACT_GELU, 1.0, 0.841344746068543},
    {MOE_ACT_GELU, -0.5, -0.15426876936299344},
    {MOE_ACT_GELU, 2.385, 2.364633147786113},
    {MOE_ACT_SILU, 1.0, 0.7310585786300049},
    {MOE_ACT_SILU, -2.385, -0.2011120159652167},
    {MOE_ACT_TANH, 0.731, 0.6236767579913203},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    moe_expert_config c = {MOE_EXPERT_FFN, 1, cases[i].act, 0};
    double p[2] = {1.0, 1.0}, x = cases[i].in, y, cache[2];
    int rc = moe_expert_forward_f64(&c, 1, p, 1, &x, cache, &y);
    is_close(rc ? NAN : y, cases[i].want, 1e-15, 1e-14, "%s(%g)", moe_act_name(cases[i].act),
             cases[i].in);
  }
}

static void layout_and_init(void)
{
  moe_expert_config lin = {MOE_EXPERT_LINEAR, 0, MOE_ACT_RELU, 1};
  moe_expert_config ffn = {MOE_EXPERT_FFN, F, MOE_ACT_GELU, 1};
  moe_expert_view v;
  is_int((long)moe_expert_param_count(&lin, D), D * D + D, "linear+bias param count");
  is_int((long)moe_expert_param_count(&ffn, D), 2 * F * D + F + D, "ffn+bias param count");
  ok(moe_expert_view_get(&ffn, D, &v) == 0 && v.W1 == 0 && v.b1 == F * D && v.W2 == F * D + F &&
         v.b2 == 2 * F * D + F && v.W == -1,
     "ffn layout W1 b1 W2 b2");
  ffn.bias = 0;
  ok(moe_expert_view_get(&ffn, D, &v) == 0 && v.b1 == -1 && v.W2 == F * D, "ffn without bias");
  is_int((long)moe_expert_cache_count(&ffn, N), 2 * N * F, "ffn cache count");
  is_int((long)moe_expert_cache_count(&lin, N), 0, "linear needs no cache");
  float p[2 * F * D + F + D];
  gsl_rng *r = moe_rng_alloc(8);
  ffn.bias = 1;
  moe_expert_init(&ffn, D, p, r);
  double ss = 0;
  for (int i = 0; i < F * D; i++)
    ss += p[i] * p[i];
  ok(p[F * D] == 0 && p[2 * F * D + F] == 0, "init: biases 0");
  ok(ss / (F * D) > 0.05 && ss / (F * D) < 0.5, "init: W1 variance near 1/D (%.3f)", ss / (F * D));
  gsl_rng_free(r);
  moe_act a;
  moe_expert_kind k;
  ok(moe_act_parse("silu", &a) == 0 && a == MOE_ACT_SILU, "parse silu");
  ok(moe_act_parse("swish", &a) == MOE_EINVAL, "unknown activation rejected: %s",
     moe_last_error());
  ok(moe_expert_kind_parse("ffn", &k) == 0 && k == MOE_EXPERT_FFN, "parse ffn");
  ok(moe_expert_kind_parse("mlp", &k) == MOE_EINVAL, "unknown expert kind rejected");
}

static void errors(void)
{
  moe_expert_config c = {MOE_EXPERT_FFN, F, MOE_ACT_RELU, 0};
  float p[2 * F * D], x[N * D], y[N * D], cache[2 * N * F], g[2 * F * D], work[N * F];
  memset(p, 0, sizeof p);
  memset(x, 0, sizeof x);
  ok(moe_expert_forward(&c, 0, p, N, x, cache, y) == MOE_EINVAL, "D = 0");
  ok(moe_expert_forward(&c, D, p, -1, x, cache, y) == MOE_EINVAL, "N < 0");
  ok(moe_expert_forward(&c, D, p, N, x, NULL, y) == MOE_EINVAL, "FFN without cache");
  ok(moe_expert_forward(&c, D, NULL, N, x, cache, y) == MOE_EINVAL, "NULL params");
  ok(moe_expert_forward(&c, D, p, 0, NULL, NULL, NULL) == 0, "N = 0 is a no-op");
  ok(moe_expert_backward(&c, D, p, N, x, cache, y, g, NULL, NULL) == MOE_EINVAL,
     "FFN backward without work");
  ok(moe_expert_backward(&c, D, p, N, x, cache, NULL, g, NULL, work) == MOE_EINVAL, "NULL dy");
  c.F = 0;
  ok(moe_expert_check(&c, D) == MOE_EINVAL, "F = 0");
  c.F = F;
  c.act = (moe_act)11;
  ok(moe_expert_check(&c, D) == MOE_EINVAL, "unknown activation");
  c.kind = (moe_expert_kind)4;
  ok(moe_expert_check(&c, D) == MOE_EINVAL, "unknown kind");
  is_int((long)moe_expert_param_count(&c, D), 0, "invalid config has 0 parameters");
  ok(moe_expert_check(NULL, D) == MOE_EINVAL, "NULL config");
}

int main(void)
{
  fd_all();
  activations();
  layout_and_init();
  errors();
  return tap_done();
}
