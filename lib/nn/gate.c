/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gate.c — the routing gate family (see moe/gate.h). The numerical code is
 * in gate_impl.h, compiled here for float and for double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"
#include "moe/gate.h"
#include "vmath.h"

static const struct {
  const char *name;
  moe_gate_config cfg;
} presets[] = {
  {"softmax", {MOE_SCORE_SOFTMAX, 0, 1.0, 0}},
  {"softmax_topk", {MOE_SCORE_SOFTMAX, 1, 1.0, 0}},
  {"sigmoid_topk", {MOE_SCORE_SIGMOID, 0, 1.0, 0}},
  {"sigmoid_norm_topk", {MOE_SCORE_SIGMOID, 1, 1.0, 0}},
  {"sigmoid_norm", {MOE_SCORE_SIGMOID, 1, 1.0, 0}},
  {"deepseek_v3", {MOE_SCORE_SIGMOID, 1, 2.5, 1}},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

int moe_gate_preset(const char *name, moe_gate_config *cfg)
{
  MOE_CHECK_ARG(name && cfg, "gate preset: NULL argument");
  for (int i = 0; i < N_PRESETS; i++)
    if (strcmp(name, presets[i].name) == 0) {
      *cfg = presets[i].cfg;
      return MOE_OK;
    }
  return moe_error(MOE_EINVAL,
                   "unknown gate '%s' (known: softmax, softmax_topk, sigmoid_topk, "
                   "sigmoid_norm_topk, sigmoid_norm, deepseek_v3)",
                   name);
}

const char *moe_gate_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i].name : NULL; }

int moe_gate_check(const moe_gate_config *cfg, int E, int K)
{
  MOE_CHECK_ARG(cfg, "gate: NULL config");
  MOE_CHECK_ARG(E >= 1, "gate: E=%d < 1", E);
  MOE_CHECK_ARG(K >= 1 && K <= E, "gate: K=%d outside [1, E=%d]", K, E);
  MOE_CHECK_ARG(cfg->score == MOE_SCORE_SOFTMAX || cfg->score == MOE_SCORE_SIGMOID,
                "gate: unknown score function %d", (int)cfg->score);
  MOE_CHECK_ARG(isfinite(cfg->route_scale) && cfg->route_scale > 0, "gate: route_scale=%g",
                cfg->route_scale);
  return MOE_OK;
}

int moe_gate_expert_counts(int T, int E, int K, const int *idx, int *load)
{
  MOE_CHECK_ARG(T >= 0 && E >= 1 && K >= 1 && K <= E, "gate load: T=%d E=%d K=%d", T, E, K);
  MOE_CHECK_ARG(load && (idx || T == 0), "gate load: NULL buffer");
  memset(load, 0, (size_t)E * sizeof *load);
  for (size_t i = 0; i < (size_t)T * K; i++) {
    MOE_CHECK_ARG(idx[i] >= 0 && idx[i] < E, "gate load: idx[%zu]=%d out of [0,%d)", i, idx[i], E);
    load[idx[i]]++;
  }
  return MOE_OK;
}

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "gate_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "gate_impl.h"
