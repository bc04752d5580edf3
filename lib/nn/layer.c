/* SPDX-License-Identifier: GPL-3.0-or-later */
/* layer.c — the MoE layer (see moe/layer.h). The numerical code is in
 * layer_impl.h, compiled here for float and for double. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"
#include "moe/blas.h"
#include "moe/layer.h"
#include "moe/rng.h"

moe_layer_config moe_layer_config_default(moe_layer_sizes n)
{
  const int D = n.D, E = n.E, K = n.K, S = n.S, F = n.F;
  moe_layer_config c;
  memset(&c, 0, sizeof c);
  c.D = D;
  c.E = E;
  c.K = K;
  c.S = S;
  moe_gate_preset("softmax_topk", &c.gate);
  c.expert.kind = MOE_EXPERT_FFN;
  c.expert.F = F;
  c.expert.act = MOE_ACT_RELU;
  c.expert.bias = 0;
  c.combine = MOE_COMBINE_PAPER;
  c.balance_coef = 0;
  return c;
}

static const char *const moe_variant_names[] = {"smoe",       "smoe_sg", "ds_v2", "ds_v3",
                                                "ds_v3_bias", "dense",   NULL};

int moe_variant_parse(const char *name, moe_variant *v)
{
  MOE_CHECK_ARG(name && v, "variant: NULL argument");
  int i = 0, rc = moei_parse_name("variant", name, moe_variant_names, &i);
  if (rc == MOE_OK)
    *v = (moe_variant)i;
  return rc;
}

const char *moe_variant_name(moe_variant v)
{
  return (int)v >= 0 && v < MOE_VARIANT_COUNT ? moe_variant_names[v] : NULL;
}

const char *moe_layer_variant_name(int i) { return moe_variant_name((moe_variant)i); }

int moe_variant_has_shared(moe_variant v)
{
  return v == MOE_VARIANT_DS_V2 || v == MOE_VARIANT_DS_V3 || v == MOE_VARIANT_DS_V3_BIAS;
}

int moe_variant_is_dense(moe_variant v) { return v == MOE_VARIANT_DENSE; }

int moe_variant_uses_bias(moe_variant v) { return v == MOE_VARIANT_DS_V3_BIAS; }

int moe_variant_sigmoid(moe_variant v)
{
  return v == MOE_VARIANT_SMOE_SG || v == MOE_VARIANT_DS_V3 || v == MOE_VARIANT_DS_V3_BIAS;
}

int moe_layer_config_for(moe_layer_config *cfg, moe_variant v, moe_variant_sizes n)
{
  const int D = n.D, F = n.F, N = n.N, K = n.K;
  int s = n.shared;
  const char *variant = moe_variant_name(v);
  MOE_CHECK_ARG(cfg, "layer variant: NULL argument");
  MOE_CHECK_ARG(variant, "layer variant: unknown variant %d", (int)v);
  if (moe_variant_has_shared(v))
    MOE_CHECK_ARG(s >= 0 && s < K && s < N,
                  "layer variant %s: s=%d shared must be in [0, K=%d) and below N=%d", variant,
                  s, K, N);
  else
    s = 0;
  MOE_CHECK_ARG(F >= 1 && K >= 1, "layer variant %s: F=%d K=%d (need >= 1)", variant, F, K);
  moe_layer_config c =
      moe_layer_config_default((moe_layer_sizes){.D = D, .E = N - s, .K = K - s, .S = s, .F = F});
  if (moe_variant_is_dense(v)) { /* one expert of the active width, weight exactly 1 */
    MOE_CHECK_ARG(F <= INT_MAX / K, "layer variant dense: width K*F overflows (K=%d F=%d)", K, F);
    c.E = 1;
    c.K = 1;
    c.expert.F = K * F;
  }
  int rc = moe_gate_preset(moe_variant_sigmoid(v) ? "sigmoid_norm_topk" : "softmax_topk", &c.gate);
  if (rc)
    return rc;
  c.gate.use_bias = moe_variant_uses_bias(v);
  c.combine = MOE_COMBINE_ADDITIVE;
  rc = moe_layer_check(&c);
  if (rc)
    return rc;
  *cfg = c;
  return MOE_OK;
}

int moe_layer_config_variant(moe_layer_config *cfg, const char *variant, moe_variant_sizes n)
{
  MOE_CHECK_ARG(cfg && variant, "layer variant: NULL argument");
  moe_variant v;
  int rc = moe_variant_parse(variant, &v);
  return rc ? rc : moe_layer_config_for(cfg, v, n);
}

static const char *const moe_combine_names[] = {"paper", "additive", NULL};

int moe_combine_parse(const char *name, moe_combine *c)
{
  int i = 0, rc = moei_parse_name("combine rule", name, moe_combine_names, &i);
  if (rc == MOE_OK) *c = (moe_combine)i;
  return rc;
}

int moe_layer_check(const moe_layer_config *cfg)
{
  MOE_CHECK_ARG(cfg, "layer: NULL config");
  MOE_CHECK_ARG(cfg->D >= 1, "layer: D=%d < 1", cfg->D);
  MOE_CHECK_ARG(cfg->S >= 0, "layer: S=%d < 0", cfg->S);
  MOE_CHECK_ARG(cfg->combine == MOE_COMBINE_PAPER || cfg->combine == MOE_COMBINE_ADDITIVE,
                "layer: unknown combine rule %d", (int)cfg->combine);
  MOE_CHECK_ARG(isfinite(cfg->balance_coef) && cfg->balance_coef >= 0,
                "layer: balance_coef=%g (must be finite and >= 0)", cfg->balance_coef);
  MOE_CHECK_ARG(isfinite(cfg->zloss_coef) && cfg->zloss_coef >= 0,
                "layer: zloss_coef=%g (must be finite and >= 0)", cfg->zloss_coef);
  int rc = moe_gate_check(&cfg->gate, cfg->E, cfg->K);
  if (rc)
    return rc;
  return moe_expert_check(&cfg->expert, cfg->D);
}

/* The gather/scatter loops are elementwise: vectorising them changes no
 * result bit (GCC keeps floating-point sums in order without
 * -fassociative-math), and plain -O2 GCC 12 leaves them scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize")
#endif

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "par_impl.h"
#include "layer_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "par_impl.h"
#include "layer_impl.h"
