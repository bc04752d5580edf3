/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/layer.h — the MoE layer: S shared experts + E routed experts, K of
 * them chosen per token by a gate (moe/gate.h).
 *
 * For each token x (D):
 *   l = W_r x                              router, W_r (E, D), no bias
 *   (idx, w) = gate(l)                     K experts and their weights
 *   r_t = Σ_k w_k · routed_{idx_k}(x)      the routed mixture
 *
 *   MOE_COMBINE_PAPER     y = ½ Σ_i ω_i shared_i(x) + ½ r_t,  ω = softmax(σ) over
 *                         S learnable shared logits σ (the paper's eq. 1 and 8:
 *                         two mixtures, each on the simplex, weighted ½–½).
 *                         With S == 0 there is no shared mixture to balance,
 *                         so y = r_t (no ½): halving would only rescale the
 *                         model and make S = 0 cells look artificially weak.
 *   MOE_COMBINE_ADDITIVE  y = Σ_i shared_i(x) + r_t  (DeepSeek-V2/V3: shared
 *                         experts always on with weight 1).
 *
 * Experts all share one moe_expert_config (moe/expert.h).
 *
 * Memory follows llm.c: all parameters live in one slab and the gradients
 * in a second slab with the same layout, so an optimizer is one flat loop
 * over moe_layer_param_count() scalars. Slab layout, in order:
 *   W_r           (E, D)
 *   shared logits (S)          PAPER combine only (absent for ADDITIVE)
 *   shared experts S × moe_expert_param_count(expert, D)
 *   routed experts E × moe_expert_param_count(expert, D)
 * The accessors below point into it; moe_layer_grad_of() maps a parameter
 * pointer to its gradient.
 *
 * The selection bias of a gate with use_bias (E) is layer state but NOT a
 * parameter (it has no gradient); it lives outside the slab and is trained
 * with moe_layer_bias_update().
 *
 * Balance loss (Switch Transformer style), computed by every forward:
 *   L_aux = coef · E · Σ_e f_e · P_e,
 *   f_e = (slots choosing e)/(T·K)          counted, no gradient
 *   P_e = mean_t p_{t,e},   p = softmax(l) for softmax gates,
 *                           p = sigmoid(l) / Σ_e sigmoid(l) for sigmoid gates.
 * When coef > 0 the backward pass adds ∂L_aux/∂θ to the gradients, i.e. it
 * differentiates  loss(y) + L_aux;  add moe_layer_aux_loss() to the loss you
 * report.
 *
 * Router z-loss (ST-MoE; the paper's vision runs use 0.001), on the router
 * logits l (before any selection bias):
 *   L_z = zcoef · (1/T) Σ_t (logsumexp_e l_{t,e})²,
 *   ∂L_z/∂l_{t,e} = zcoef · (2/T) · lse_t · softmax(l_t)_e.
 * With zloss_coef > 0 the forward adds L_z to moe_layer_aux_loss() (which
 * is then L_aux + L_z) and the backward adds its gradient; 0 (the default)
 * leaves everything as without it.
 *
 * Routing is computed by grouping: the rows routed to expert e are gathered
 * into one contiguous block, each expert runs one GEMM per weight matrix,
 * and the weighted outputs are scattered back expert by expert in index
 * order, tokens in order. Each expert runs fused (gather → GEMM → act →
 * GEMM → weighted scatter-add, and the mirror in backward) while its rows
 * are in cache; forward and backward allocate nothing. Every sum has a
 * fixed order, so results depend only on the inputs (and the BLAS kernel):
 *   y  = shared outputs (i = 0..S−1), then routed rows, experts in index
 *        order, tokens in order;
 *   dx = router part, then shared parts (i = 0..S−1), then routed rows in
 *        the same order.
 *
 * Threads (moe_layer_set_threads): with n > 1 the experts' forward and
 * backward run on n OpenMP threads, each expert (shared or routed) one
 * work item, but for a routed expert with more than half of the layer's
 * expert rows T·(K + S) (a collapsed router), whose products are cut into
 * row blocks (at most 8, at multiples of 48 rows; the same blocks, so
 * the same BLAS calls, on one thread), with their GEMMs on the calling
 * thread's BLAS, which moe_layer_set_threads(l, n > 1) sets to one
 * thread; the outputs, dx and the gradients are then summed in the order
 * above, so every thread count gives the bits of one thread. The per-token row dot products and the
 * router's dx product (rows cut at multiples of 48, where the BLAS kernel
 * computes every element as one call does) are split too. A layer is not
 * safe to use from two threads at once.
 *
 * The library checks its gradients against double twins of these
 * functions (suffix _f64); they are internal, not part of the API. */
#ifndef MOE_LAYER_H
#define MOE_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#include "moe/expert.h"
#include "moe/gate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MOE_COMBINE_PAPER = 0, MOE_COMBINE_ADDITIVE = 1 } moe_combine;

typedef struct {
  int D;                    /* model width */
  int E;                    /* routed experts */
  int K;                    /* routed experts chosen per token, 1..E (E = dense) */
  int S;                    /* shared experts, >= 0 */
  moe_gate_config gate;     /* score, normalize, route_scale, use_bias */
  moe_expert_config expert; /* one expert form for shared and routed */
  moe_combine combine;
  double balance_coef;      /* L_aux coefficient; 0 disables its gradient */
  double zloss_coef;        /* router z-loss coefficient (ST-MoE); 0 = none */
} moe_layer_config;

/* The sizes of a layer, by name, so that two of them cannot be swapped
 * without it showing:
 *   moe_layer_config_default((moe_layer_sizes){.D = 64, .E = 8, .K = 2, .S = 1, .F = 256})
 * A field left out is 0 (and moe_layer_check says which one is wrong). */
typedef struct {
  int D; /* model width */
  int E; /* routed experts */
  int K; /* routed experts chosen per token */
  int S; /* shared experts */
  int F; /* expert hidden width */
} moe_layer_sizes;

/* A starting configuration of sizes n: gate "softmax_topk", FFN experts of
 * width n.F with ReLU and no biases, PAPER combine, no balance loss. Adjust
 * fields, then moe_layer_check() or moe_layer_alloc() validates.
 *
 * Note the combine rule: PAPER (½ shared mixture + ½ routed mixture, the
 * paper's statistical model) is the default because moebench reproduces
 * the paper; DeepSeek-V2/V3 as deployed add the shared experts' outputs to
 * the routed mixture: set combine = MOE_COMBINE_ADDITIVE for that, or
 * start from moe_layer_config_variant() below, which does. */
moe_layer_config moe_layer_config_default(moe_layer_sizes n);

/* The paper's variants (table below), as a type: parse and name them here
 * and ask the predicates; nothing else compares variant names. */
typedef enum {
  MOE_VARIANT_SMOE,       /* "smoe" */
  MOE_VARIANT_SMOE_SG,    /* "smoe_sg" */
  MOE_VARIANT_DS_V2,      /* "ds_v2" */
  MOE_VARIANT_DS_V3,      /* "ds_v3" */
  MOE_VARIANT_DS_V3_BIAS, /* "ds_v3_bias" */
  MOE_VARIANT_DENSE,      /* "dense" */
  MOE_VARIANT_COUNT       /* how many there are (not a variant) */
} moe_variant;

/* Name -> variant; MOE_EINVAL (the message lists the names) otherwise. */
int moe_variant_parse(const char *name, moe_variant *v);
/* Variant -> its name; NULL outside [0, MOE_VARIANT_COUNT). */
const char *moe_variant_name(moe_variant v);
/* 1 if the variant has shared experts (the DeepSeek ones), else 0. */
int moe_variant_has_shared(moe_variant v);
/* 1 for the dense FFN baseline (no routing), else 0. */
int moe_variant_is_dense(moe_variant v);
/* 1 if selection uses DeepSeek-V3's aux-loss-free bias (moe_layer_bias_update). */
int moe_variant_uses_bias(moe_variant v);
/* 1 if the gate is the normalised sigmoid, 0 for softmax. */
int moe_variant_sigmoid(moe_variant v);

/* The sizes of a variant (moe_layer_config_variant), by name. */
typedef struct {
  int D;      /* model width */
  int F;      /* each expert's hidden width */
  int N;      /* experts in all, shared ones included */
  int K;      /* experts active per token, shared ones included */
  int shared; /* s, the shared experts of the DeepSeek variants (others ignore it) */
} moe_variant_sizes;

/* The paper's variants (§4) under its rule of equal total and equal
 * active experts: n.N experts in all, n.K active per token, s = n.shared of
 * them shared in the DeepSeek variants, each expert an FFN of width n.F
 * (ReLU, no biases, as the paper's code), e.g.
 *   moe_layer_config_for(&cfg, MOE_VARIANT_DS_V3,
 *                        (moe_variant_sizes){.D = 64, .F = 128, .N = 8, .K = 4, .shared = 2})
 * gives 6 routed experts, 2 chosen, and 2 shared:
 *
 *   variant      gate preset          E      K      S   what it is
 *   "smoe"       softmax_topk         N      K      0   SMoE (renormalised top-K softmax)
 *   "smoe_sg"    sigmoid_norm_topk    N      K      0   SMoE-SG
 *   "ds_v2"      softmax_topk         N−s    K−s    s   DeepSeek-V2
 *   "ds_v3"      sigmoid_norm_topk    N−s    K−s    s   DeepSeek-V3 as the paper ran it
 *                                                       (no bias, no route scale)
 *   "ds_v3_bias" sigmoid_norm_topk    N−s    K−s    s   DeepSeek-V3 with its aux-loss-free
 *                + use_bias                             selection bias (train it with
 *                                                       moe_layer_bias_update)
 *   "dense"      softmax_topk         1      1      0   iso-FLOP dense FFN: one expert of
 *                                                       width K·F, the active width
 *
 * Combine rule: ADDITIVE for every preset (y = Σ shared + Σ_k w_k routed,
 * shared weight 1), because that is what the paper's language-model code
 * does (§4.2 of our notes: DeepSeek-V2/V3 layers add the shared FFN); the
 * ½–½ PAPER rule is the theory's (and the paper's vision code's) — set
 * cfg->combine afterwards to use it. "dense" is exactly a dense FFN: the
 * softmax of one logit is 1 and 1/(1 + 1e-20) rounds to 1, so its weight is
 * exactly 1 and, without z-loss, its router gradient exactly 0 (its
 * router costs D multiply-adds per token; it is still a parameter, so
 * weight decay shrinks it). With zloss_coef > 0 the z-loss of the one
 * logit, zcoef·(1/T) Σ_t l_t², gives W_r the gradient zcoef·(2/T) Σ_t l_t x_t.
 * balance_coef is left 0 (set it; for "dense" it would only add a
 * constant, with no gradient). MOE_EINVAL for an unknown variant
 * (the message lists them), s outside [0, K) for the DeepSeek variants,
 * or sizes moe_layer_check rejects. */
int moe_layer_config_for(moe_layer_config *cfg, moe_variant v, moe_variant_sizes n);
/* Same, by name (moe_variant_parse, then moe_layer_config_for). */
int moe_layer_config_variant(moe_layer_config *cfg, const char *variant, moe_variant_sizes n);
/* Name of the i-th variant (from 0), NULL past the end: moe_variant_name((moe_variant)i). */
const char *moe_layer_variant_name(int i);

/* Parse "paper" | "additive" (for YAML). */
int moe_combine_parse(const char *name, moe_combine *c);

/* MOE_EINVAL (with the offending field in the message) unless the
 * configuration is usable. */
int moe_layer_check(const moe_layer_config *cfg);

typedef struct moe_layer moe_layer;

/* A layer for up to max_T tokens per forward; parameters, gradients and
 * bias zero. NULL on failure (moe_last_error() says why): MOE_EINVAL for a
 * bad configuration, max_T < 1, or max_T·K or max_T·D above INT_MAX (the
 * routing slots and BLAS lengths are int); MOE_ENOMEM when memory is short
 * or a buffer's size (e.g. S·max_T·D scalars) does not fit a size_t. */
moe_layer *moe_layer_alloc(const moe_layer_config *cfg, int max_T);
void moe_layer_free(moe_layer *l);

/* The configuration the layer was built with. */
const moe_layer_config *moe_layer_get_config(const moe_layer *l);

/* Initialise the parameters from r (in slab order): W_r ~ N(0, 1/D),
 * experts by moe_expert_init, shared logits 0 (ω uniform). The selection
 * bias is reset to 0. */
int moe_layer_init_params(moe_layer *l, gsl_rng *r);
/* Same values' law, but each part from its own stream keyed by its name
 * under seed (router, shared expert i, routed expert e): a part gets the
 * same values in every layer that has it with the same shape, so variants
 * with different numbers of experts share their common ones (common random
 * numbers for paired comparisons). */
int moe_layer_init_params_keyed(moe_layer *l, uint64_t seed);

/* Forward for T (0..max_T) tokens: x (T, D) in, y (T, D) out. x is copied,
 * so the caller may reuse it before backward. MOE_EDOM if x, the router
 * logits or the output y contain a NaN or an infinity; a non-finite y from
 * a finite x means a non-finite parameter (router, expert weights, shared
 * logits) in use or an overflow. On MOE_EDOM there is no forward to
 * differentiate (backward returns MOE_EINVAL); y may hold partial values.
 * Parameters of experts no token chose are not read and not checked. */
int moe_layer_forward(moe_layer *l, int T, const float *x, float *y);

/* Backward of the last forward: dy (T, D) in; parameter gradients are
 * ACCUMULATED into the gradient slab; dx (T, D) is overwritten, or skipped
 * when NULL. Adds the balance loss gradient when balance_coef > 0.
 * MOE_EINVAL if no successful forward preceded it; MOE_EDOM if dy contains
 * a NaN or an infinity, checked before any gradient or dx is written. */
int moe_layer_backward(moe_layer *l, const float *dy, float *dx);

/* Set every gradient to 0. */
void moe_layer_zero_grad(moe_layer *l);

/* Threads for the forward and backward (above), 1..MOE_THREADS_MAX; 1
 * (the default) runs the one-thread code. The scratch of n > 1 (about
 * (K·max_T + S·max_T)·(2D + F) scalars) is allocated at the first such
 * call: MOE_ENOMEM if it cannot be, MOE_EINVAL for n out of range; the
 * thread count is unchanged on error. n > 1 also sets BLAS to one
 * thread, process-wide (moe_blas_set_threads(1), if it runs more): its
 * threads inside the layer's would oversubscribe the cores (on two cores
 * two layer threads over two OpenBLAS threads each ran 2x slower than
 * one) and their bits are BLAS's threaded ones. The bits every thread
 * count shares are those of one BLAS thread: n = 1 with BLAS on more
 * threads (which this leaves alone) gives other bits. The models'
 * set_threads (blocks, LM, vision) come here. moe_layer_get_threads: the
 * current count (0 for NULL). */
#define MOE_THREADS_MAX 1024
int moe_layer_set_threads(moe_layer *l, int n);
int moe_layer_get_threads(const moe_layer *l);

/* The slabs (param_count scalars each). */
size_t moe_layer_param_count(const moe_layer *l);
float *moe_layer_params(moe_layer *l);
float *moe_layer_grads(moe_layer *l);

/* Named tensors inside the parameter slab. */
float *moe_layer_router(moe_layer *l);               /* W_r (E, D) */
float *moe_layer_shared_logits(moe_layer *l);        /* (S); NULL unless PAPER with S > 0 */
float *moe_layer_shared_expert(moe_layer *l, int i); /* block of shared expert i, 0 <= i < S */
float *moe_layer_routed_expert(moe_layer *l, int e); /* block of routed expert e, 0 <= e < E */
/* The gradient of a parameter pointer p (into the parameter slab). */
float *moe_layer_grad_of(moe_layer *l, const float *p);

/* The selection bias (E) (use_bias gates; zeros otherwise, and unused). */
float *moe_layer_bias(moe_layer *l);
/* Aux-loss-free balancing step from the last forward's choices
 * (moe_gate_bias_update). */
int moe_layer_bias_update(moe_layer *l, double gamma);

/* Sparse upcycling (Komatsuzaki et al. 2023): initialise the experts of
 * dst from the one MLP of src, a layer with E = 1 and S = 0 (a dense
 * connector or FFN, e.g. moe_layer_config_for(MOE_VARIANT_DENSE) with
 * N = K = 1) whose expert has dst's kind, activation and bias. When the
 * widths agree, every shared and routed expert of dst becomes a bit-exact
 * copy of the MLP; dst's router, shared logits and selection bias are left
 * as they are (initialise them first: the router starts fresh). With
 * equal experts the routed weights (summing to 1) and ω make the layer
 * compute the MLP again under the PAPER combine (up to the rounding of
 * the weighted sums); ADDITIVE adds S + 1 copies. When dst has one expert
 * (E = 1, S = 0) of m times the MLP's width F, it is widened: each hidden
 * unit repeated m times (W1 rows and b1 in blocks of F), W2's columns
 * divided by m (exact for m a power of 2), b2 copied: the same function.
 * MOE_EINVAL for NULL, a source that is not one MLP, another D, kind,
 * activation or bias, or another width in any other case. */
int moe_layer_upcycle(moe_layer *dst, const moe_layer *src);

/* Record of the last forward (valid until the next forward).
 * moe_layer_last_T() is the number of tokens of the last forward, or -1
 * before the first forward (the record accessors then return data of no
 * meaning, and NULL where noted):
 * tokens, chosen experts (T, K), their weights (T, K), scores (T, E) and
 * router logits (T, E), the per-expert load (E) (slots choosing each
 * expert), the balance loss L_aux (coef included; 0 if coef is 0; NaN for
 * a NULL layer, as moe_lm_aux_loss) and ω (S) (NULL unless PAPER with
 * S > 0). */
int moe_layer_last_T(const moe_layer *l);
const int *moe_layer_chosen(const moe_layer *l);
const float *moe_layer_weights(const moe_layer *l);
const float *moe_layer_scores(const moe_layer *l);
const float *moe_layer_logits(const moe_layer *l);
const int *moe_layer_expert_counts(const moe_layer *l);
double moe_layer_aux_loss(const moe_layer *l);
const float *moe_layer_omega(const moe_layer *l);

#ifdef __cplusplus
}
#endif
#endif
