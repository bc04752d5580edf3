/* SPDX-License-Identifier: GPL-3.0-or-later */
/* expert.c — linear and FFN experts (see moe/expert.h). The numerical code
 * is in expert_impl.h, compiled here for float and for double. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn_internal.h"
#include "moe/expert.h"
#include "vmath.h"
#include "moe/rng.h"

static const char *const act_names[] = {"relu", "gelu", "silu", "tanh", NULL};

int moe_act_parse(const char *name, moe_act *act)
{
  int i = 0, rc = moei_parse_name("activation", name, act_names, &i);
  if (rc == MOE_OK) *act = (moe_act)i;
  return rc;
}

const char *moe_act_name(moe_act act)
{
  return (int)act >= 0 && (int)act < 4 ? act_names[act] : "unknown";
}

static const char *const moe_expert_kind_names[] = {"linear", "ffn", NULL};

int moe_expert_kind_parse(const char *name, moe_expert_kind *kind)
{
  int i = 0, rc = moei_parse_name("expert kind", name, moe_expert_kind_names, &i);
  if (rc == MOE_OK) *kind = (moe_expert_kind)i;
  return rc;
}

int moe_expert_check(const moe_expert_config *cfg, int D)
{
  MOE_CHECK_ARG(cfg, "expert: NULL config");
  MOE_CHECK_ARG(D >= 1, "expert: D=%d < 1", D);
  MOE_CHECK_ARG(cfg->kind == MOE_EXPERT_LINEAR || cfg->kind == MOE_EXPERT_FFN,
                "expert: unknown kind %d", (int)cfg->kind);
  if (cfg->kind == MOE_EXPERT_FFN) {
    MOE_CHECK_ARG(cfg->F >= 1, "expert: FFN hidden width F=%d < 1", cfg->F);
    MOE_CHECK_ARG((int)cfg->act >= 0 && (int)cfg->act < 4, "expert: unknown activation %d",
                  (int)cfg->act);
  }
  return MOE_OK;
}

int moe_expert_view_get(const moe_expert_config *cfg, int D, moe_expert_view *v)
{
  int rc = moe_expert_check(cfg, D);
  if (rc)
    return rc;
  MOE_CHECK_ARG(v, "expert view: NULL");
  long d = D, f = cfg->F, o = 0;
  v->W = v->b = v->W1 = v->b1 = v->W2 = v->b2 = -1;
  if (cfg->kind == MOE_EXPERT_LINEAR) {
    v->W = o;
    o += d * d;
    if (cfg->bias)
      v->b = o;
  } else {
    v->W1 = o;
    o += f * d;
    if (cfg->bias) {
      v->b1 = o;
      o += f;
    }
    v->W2 = o;
    o += d * f;
    if (cfg->bias)
      v->b2 = o;
  }
  return MOE_OK;
}

size_t moe_expert_param_count(const moe_expert_config *cfg, int D)
{
  if (moe_expert_check(cfg, D))
    return 0;
  size_t d = (size_t)D, f = (size_t)cfg->F, b = cfg->bias ? 1 : 0;
  return cfg->kind == MOE_EXPERT_LINEAR ? d * d + b * d : 2 * f * d + b * (f + d);
}

size_t moe_expert_cache_count(const moe_expert_config *cfg, int N)
{
  return cfg && cfg->kind == MOE_EXPERT_FFN && N > 0 && cfg->F > 0 ? 2 * (size_t)N * cfg->F : 0;
}

size_t moe_expert_work_count(const moe_expert_config *cfg, int N)
{
  return cfg && cfg->kind == MOE_EXPERT_FFN && N > 0 && cfg->F > 0 ? (size_t)N * cfg->F : 0;
}

/* The activation and bias loops are elementwise, so vectorising them
 * changes no result bit (GCC never reorders floating-point sums without
 * -fassociative-math); at plain -O2 GCC 12 leaves them scalar and the
 * branch on the sign of h mispredicts half the time. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize")
#endif

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "par_impl.h"
#include "expert_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "par_impl.h"
#include "expert_impl.h"
