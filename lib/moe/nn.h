/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/nn.h — transformer components around the MoE layer: embeddings,
 * LayerNorm, multi-head self-attention (causal or not) and the pre-LN
 * residual block whose FFN is a moe_layer. The language model (moe/lm.h)
 * is built from them; an image model reuses the same block with
 * causal = 0.
 *
 * Dimension letters (fixed for the whole module): B sequences, T
 * positions, N = B·T tokens, D width, H heads, hs = D/H head size,
 * V vocabulary. Activations are row-major: (B, T, D) is N rows of D.
 *
 * Kernels (stateless; the caller owns every buffer):
 *
 *   embedding   out[b,t] = wte[tok[b,t]] + wpe[t]             (wpe optional)
 *   layernorm   y = (x − μ)·r ⊙ w + b,  μ = mean(x), r = 1/√(var(x) + 1e-5)
 *               var is the biased (1/D) variance, as torch.nn.LayerNorm
 *   attention   qkv (B, T, 3D) holds q | k | v per token, head h at
 *               columns h·hs .. h·hs+hs−1 of each third;
 *               a[b,h] = softmax(q_h k_hᵀ / √hs  [+ −∞ above the diagonal
 *               if causal]),  out[b,t, h·hs..] = a[b,h] v_h
 *
 * Forward kernels overwrite their outputs; backward kernels ACCUMULATE
 * (+=) into parameter gradients and, where stated, into dx, so residual
 * branches add up without temporaries (llm.c's convention).
 *
 * The block (pre-LN, GPT-2 / Switch Transformer order):
 *   a  = LN1(x)                      (N, D)
 *   x1 = x + attn(a) Woᵀ             attention: qkv = a Wqkvᵀ, Wqkv (3D, D), Wo (D, D)
 *   m  = LN2(x1)                     (N, D)
 *   y  = x1 + ffn(m)                 ffn: a moe_layer (moe/layer.h) over the N tokens
 * No biases in the projections (as the paper's code). A dense FFN is the
 * "dense" preset of moe_layer_config_variant (one expert, weight exactly 1).
 *
 * Block parameter slab, in order (moe_block_param_count() scalars):
 *   ln1_w (D), ln1_b (D), Wqkv (3D, D), Wo (D, D), ln2_w (D), ln2_b (D),
 *   ffn   (moe_layer_param_count scalars, the moe_layer slab layout)
 * The gradient slab mirrors it. A block is given its slabs by the caller
 * (views into a model's one slab, so an optimizer is one flat loop over
 * the whole model) or, with NULL, allocates its own. Its moe_layer works
 * on the same memory: moe_layer_params(moe_block_ffn(b)) points into the
 * block's slab. The FFN's selection bias (use_bias gates) is state, not a
 * parameter, and lives in the moe_layer.
 *
 * Initialisation (moe_block_init_params): LN weights 1, biases 0;
 * Wqkv ~ N(0, std²), Wo ~ N(0, proj_std²); the FFN by
 * moe_layer_init_params (router N(0, 1/D), W1 N(0, 1/D), W2 N(0, 1/F)),
 * then — following the paper's code — the second matrix of every routed
 * expert is scaled by 1/√E and of every shared expert by 1/√S (routed
 * values std (E·F)^−½, shared std (S·F)^−½), so the FFN output does not
 * grow with the expert count. Draws come from r in slab order.
 *
 * Errors: MOE_EINVAL for bad shapes and NULL buffers, MOE_ERANGE for a
 * token id >= V or a sequence longer than the block's max_T, MOE_EDOM for
 * non-finite inputs (checked where cheap: the block checks x, and the
 * FFN checks its input).
 *
 * Every function has a double twin with the suffix _f64 (moe_block_f64 for
 * the type) for finite-difference checks, except moe_block_check and
 * moe_block_param_count, which do not depend on the scalar type. */
#ifndef MOE_NN_H
#define MOE_NN_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#include "moe/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- kernels ---- */

/* out (B, T, D) = wte[tok] (+ wpe[t]). tok (B, T); wte (V, D); wpe (T, D)
 * or NULL. MOE_ERANGE (naming b, t) for a token id >= V. */
int moe_embedding_forward(int B, int T, int D, int V, const uint32_t *tok, const float *wte,
                          const float *wpe, float *out);
/* dwte (V, D) += scatter of dout (B, T, D) by tok; dwpe (T, D) += Σ_b dout
 * (skipped when NULL). Rows are added in token order (deterministic). */
int moe_embedding_backward(int B, int T, int D, int V, const uint32_t *tok, const float *dout,
                           float *dwte, float *dwpe);

/* y (N, D), mean (N), rstd (N) out. */
int moe_layernorm_forward(int N, int D, const float *x, const float *w, const float *b, float *y,
                          float *mean, float *rstd);
/* dx (N, D) += ∂/∂x, dw (D) += , db (D) += ; dx may be NULL. */
int moe_layernorm_backward(int N, int D, const float *x, const float *w, const float *mean,
                           const float *rstd, const float *dy, float *dx, float *dw, float *db);

/* Multi-head attention core (no projections). qkv (B, T, 3D) in;
 * att (B, H, T, T) out: the probabilities (0 above the diagonal when
 * causal), kept for the backward; out (B, T, D) out. D % H == 0. */
int moe_attention_forward(int B, int T, int D, int H, int causal, const float *qkv, float *att,
                          float *out);
/* dqkv (B, T, 3D) out (overwritten) from dout (B, T, D); work (T, T)
 * scratch. */
int moe_attention_backward(int B, int T, int D, int H, int causal, const float *qkv,
                           const float *att, const float *dout, float *dqkv, float *work);

/* ---- the pre-LN block ---- */

typedef struct {
  int D;                /* width */
  int H;                /* heads, D % H == 0 */
  int causal;           /* non-zero: position t attends to 0..t only */
  moe_layer_config ffn; /* the FFN; ffn.D must equal D */
} moe_block_config;

/* MOE_EINVAL (naming the field) unless usable. */
int moe_block_check(const moe_block_config *cfg);
/* Scalars in the block's parameter slab (0 if cfg is invalid). */
size_t moe_block_param_count(const moe_block_config *cfg);

typedef struct moe_block moe_block;
typedef struct moe_block_f64 moe_block_f64;

/* A block for up to max_B sequences of up to max_T positions. params and
 * grads: caller's slabs of moe_block_param_count() scalars each (kept, not
 * copied, not freed), or both NULL (the block allocates them). Parameters
 * are left as they are in the caller's slab (zero in an own slab). NULL
 * on failure (moe_last_error()). */
moe_block *moe_block_alloc(const moe_block_config *cfg, int max_B, int max_T, float *params,
                           float *grads);
void moe_block_free(moe_block *b);
const moe_block_config *moe_block_get_config(const moe_block *b);
int moe_block_init_params(moe_block *b, gsl_rng *r, double std, double proj_std);

/* y (B, T, D) from x (B, T, D); x is not kept (the block copies what the
 * backward needs). y may not alias x. */
int moe_block_forward(moe_block *b, int B, int T, const float *x, float *y);
/* Backward of the last forward: gradients ACCUMULATED into the grad slab;
 * dx (B, T, D) overwritten (NULL skips it). dy may alias dx. */
int moe_block_backward(moe_block *b, const float *dy, float *dx);
void moe_block_zero_grad(moe_block *b);
/* Threads for the block's forward and backward (1..MOE_THREADS_MAX, 1 by
 * default), its MoE layer's included (moe_layer_set_threads): LayerNorm
 * by rows (its weight gradients by columns, rows summed in order),
 * attention by (batch, head) pairs, the projections by row blocks (at
 * most 8, cut at multiples of 48 rows: the same blocks and BLAS calls
 * for every thread count, one thread doing them in turn). Every thread
 * count gives the bits of one thread.
 * MOE_ENOMEM when the n attention scratch matrices cannot be allocated. */
int moe_block_set_threads(moe_block *b, int n);

float *moe_block_params(moe_block *b);
float *moe_block_grads(moe_block *b);
moe_layer *moe_block_ffn(moe_block *b); /* routing records, bias, its slab views */

/* double twins */
int moe_embedding_forward_f64(int B, int T, int D, int V, const uint32_t *tok, const double *wte,
                              const double *wpe, double *out);
int moe_embedding_backward_f64(int B, int T, int D, int V, const uint32_t *tok,
                               const double *dout, double *dwte, double *dwpe);
int moe_layernorm_forward_f64(int N, int D, const double *x, const double *w, const double *b,
                              double *y, double *mean, double *rstd);
int moe_layernorm_backward_f64(int N, int D, const double *x, const double *w,
                               const double *mean, const double *rstd, const double *dy,
                               double *dx, double *dw, double *db);
int moe_attention_forward_f64(int B, int T, int D, int H, int causal, const double *qkv,
                              double *att, double *out);
int moe_attention_backward_f64(int B, int T, int D, int H, int causal, const double *qkv,
                               const double *att, const double *dout, double *dqkv, double *work);
moe_block_f64 *moe_block_alloc_f64(const moe_block_config *cfg, int max_B, int max_T,
                                   double *params, double *grads);
void moe_block_free_f64(moe_block_f64 *b);
const moe_block_config *moe_block_get_config_f64(const moe_block_f64 *b);
int moe_block_init_params_f64(moe_block_f64 *b, gsl_rng *r, double std, double proj_std);
int moe_block_forward_f64(moe_block_f64 *b, int B, int T, const double *x, double *y);
int moe_block_backward_f64(moe_block_f64 *b, const double *dy, double *dx);
void moe_block_zero_grad_f64(moe_block_f64 *b);
int moe_block_set_threads_f64(moe_block_f64 *b, int n);
double *moe_block_params_f64(moe_block_f64 *b);
double *moe_block_grads_f64(moe_block_f64 *b);
moe_layer_f64 *moe_block_ffn_f64(moe_block_f64 *b);

#ifdef __cplusplus
}
#endif
#endif
