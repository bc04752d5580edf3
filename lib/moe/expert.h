/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/expert.h — experts: a map R^D → R^D applied row-wise to N rows.
 *
 *   linear  y = x Wᵀ + b                  W (D, D), b (D)
 *   FFN     h = x W1ᵀ + b1                W1 (F, D), b1 (F)
 *           a = act(h)
 *           y = a W2ᵀ + b2                W2 (D, F), b2 (D)
 *
 * Weights use PyTorch's nn.Linear layout (out, in), so a state_dict copies
 * over unchanged. The biases exist only when cfg->bias is non-zero.
 * Activations: ReLU, GELU (the exact erf form, PyTorch's default), SiLU,
 * tanh.
 *
 * An expert's parameters are one contiguous block of
 * moe_expert_param_count() scalars, in the order W, b (linear) or
 * W1, b1, W2, b2 (FFN); moe_expert_view() names the pieces. Gradients use
 * the same layout and are ACCUMULATED (+=), so a caller can sum over
 * batches and the MoE layer can sum over token groups.
 *
 * The forward pass leaves what the backward pass needs in a caller-owned
 * cache (a and act'(h) for an FFN, so backward evaluates no exp or erf;
 * nothing for linear); the backward pass needs a scratch buffer. Both
 * sizes are given by the functions below.
 *
 * GELU, SiLU and tanh evaluate erf, exp and tanh with SLEEF's u10 kernels
 * (documented bound 1.0 ULP; tanhf 1.0001 ULP), whose results are the same
 * bits on every machine (see lib/vmath.h); ReLU is exact.
 *
 * The library checks its gradients against double twins of these
 * functions (suffix _f64); they are internal, not part of the API. */
#ifndef MOE_EXPERT_H
#define MOE_EXPERT_H

#include <stddef.h>
#include <gsl/gsl_rng.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MOE_EXPERT_LINEAR = 0, MOE_EXPERT_FFN = 1 } moe_expert_kind;

typedef enum { MOE_ACT_RELU = 0, MOE_ACT_GELU = 1, MOE_ACT_SILU = 2, MOE_ACT_TANH = 3 } moe_act;

typedef struct {
  moe_expert_kind kind;
  int F;       /* hidden width (FFN only; ignored for linear) */
  moe_act act; /* FFN only */
  int bias;    /* non-zero: the affine maps carry biases */
} moe_expert_config;

/* Parse "relu" | "gelu" | "silu" | "tanh" / "linear" | "ffn" (for YAML). */
int moe_act_parse(const char *name, moe_act *act);
int moe_expert_kind_parse(const char *name, moe_expert_kind *kind);
const char *moe_act_name(moe_act act);

/* MOE_EINVAL unless D >= 1, kind and act are known, and F >= 1 for an FFN. */
int moe_expert_check(const moe_expert_config *cfg, int D);

/* Scalars in one expert's parameter block (0 if cfg is invalid). */
size_t moe_expert_param_count(const moe_expert_config *cfg, int D);
/* Scalars of forward cache for N rows: 2·N·F for an FFN, 0 for linear. */
size_t moe_expert_cache_count(const moe_expert_config *cfg, int N);
/* Scalars of backward scratch for N rows: N·F for an FFN, 0 for linear. */
size_t moe_expert_work_count(const moe_expert_config *cfg, int N);

/* Offsets of the named tensors inside a parameter block; -1 where absent
 * (biases off; W1..b2 for linear, W/b for FFN). */
typedef struct {
  long W, b;           /* linear: W (D, D), b (D) */
  long W1, b1, W2, b2; /* FFN: W1 (F, D), b1 (F), W2 (D, F), b2 (D) */
} moe_expert_view;
int moe_expert_view_get(const moe_expert_config *cfg, int D, moe_expert_view *view);

/* Forward for N rows.
 *   p     (param_count)   parameters
 *   x     (N, D)          in
 *   cache (cache_count)   out: kept for the backward pass (may be NULL for linear)
 *   y     (N, D)          out
 * MOE_EINVAL for bad sizes / NULL; N == 0 is a no-op. Values are not
 * checked for NaN/Inf (moe_layer_forward checks its output). */
int moe_expert_forward(const moe_expert_config *cfg, int D, const float *p, int N,
                       const float *x, float *cache, float *y);

/* Backward for N rows, given the forward's x and cache.
 *   dy   (N, D)          in
 *   g    (param_count)   parameter gradients, ACCUMULATED
 *   dx   (N, D)          out (overwritten); NULL skips the input gradient
 *   work (work_count)    scratch (may be NULL for linear) */
int moe_expert_backward(const moe_expert_config *cfg, int D, const float *p, int N,
                        const float *x, const float *cache, const float *dy, float *g,
                        float *dx, float *work);

/* Initialise a parameter block: weights ~ N(0, 1/fan_in) (fan_in = D for
 * W, W1; F for W2), biases 0. Draws from r in block order. */
int moe_expert_init(const moe_expert_config *cfg, int D, float *p, gsl_rng *r);

#ifdef __cplusplus
}
#endif
#endif
