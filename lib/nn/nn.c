/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nn.c — transformer components (see moe/nn.h). The numerical code is in
 * nn_impl.h, compiled here for float and for double. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"
#include "moe/nn.h"
#include "vmath.h"
#include "moe/rng.h"

int moe_block_check(const moe_block_config *cfg)
{
  MOE_CHECK_ARG(cfg, "block: NULL config");
  MOE_CHECK_ARG(cfg->D >= 1, "block: D=%d < 1", cfg->D);
  MOE_CHECK_ARG(cfg->H >= 1 && cfg->D % cfg->H == 0, "block: H=%d heads must divide D=%d",
                cfg->H, cfg->D);
  MOE_CHECK_ARG(cfg->ffn.D == cfg->D, "block: ffn.D=%d differs from D=%d", cfg->ffn.D, cfg->D);
  return moe_layer_check(&cfg->ffn);
}

/* The FFN's slab size without allocating a layer (moe/layer.h layout). */
static size_t ffn_param_count(const moe_layer_config *c)
{
  const size_t n_sigma = c->combine == MOE_COMBINE_PAPER ? (size_t)c->S : 0;
  return (size_t)c->E * c->D + n_sigma + (size_t)(c->S + c->E) * moe_expert_param_count(&c->expert, c->D);
}

size_t moe_block_param_count(const moe_block_config *cfg)
{
  if (moe_block_check(cfg))
    return 0;
  const size_t D = cfg->D;
  return 2 * D + 3 * D * D + D * D + 2 * D + ffn_param_count(&cfg->ffn);
}

/* The element-wise loops (LayerNorm's outputs and dx, the residual sums,
 * attention's normalisation) vectorise without changing a bit: with
 * -ffp-contract=off and without -fassociative-math every lane does the
 * scalar loop's operations in its order, and no sum is vectorised. Plain
 * -O2 GCC 12 leaves them scalar (its very-cheap cost model). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize")
#endif

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "par_impl.h"
#include "nn_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "par_impl.h"
#include "nn_impl.h"
