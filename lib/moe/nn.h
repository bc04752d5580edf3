/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/nn.h — the pre-LN transformer block around the MoE layer:
 * LayerNorm, multi-head self-attention (causal or not) and a moe_layer as
 * its FFN. The language model (moe/lm.h) is built from blocks and its own
 * embeddings; the image model (moe/vision.h) reuses the block with
 * causal = 0.
 *
 * Dimension letters (fixed for the whole module): B sequences, T
 * positions, N = B·T tokens, D width, H heads, hs = D/H head size,
 * V vocabulary. Activations are row-major: (B, T, D) is N rows of D.
 *
 * The pieces (the library's internal kernels; the caller of a block owns
 * no buffer of theirs):
 *
 *   embedding   out[b,t] = wte[tok[b,t]] + wpe[t]             (wpe optional)
 *   layernorm   y = (x − μ)·r ⊙ w + b,  μ = mean(x), r = 1/√(var(x) + 1e-5)
 *               var is the biased (1/D) variance, as torch.nn.LayerNorm
 *   attention   qkv (B, T, 3D) holds q | k | v per token, head h at
 *               columns h·hs .. h·hs+hs−1 of each third;
 *               a[b,h] = softmax(q_h k_hᵀ / √hs  [+ −∞ above the diagonal
 *               if causal]),  out[b,t, h·hs..] = a[b,h] v_h
 *
 * Forwards overwrite their outputs; backwards ACCUMULATE (+=) into
 * parameter gradients, so residual branches add up without temporaries
 * (llm.c's convention).
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
 * The library checks its gradients against double twins of these
 * functions (suffix _f64); they are internal, not part of the API. */
#ifndef MOE_NN_H
#define MOE_NN_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#include "moe/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

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
 * count gives the bits of one thread (of one BLAS thread: n > 1 sets
 * BLAS to one, as moe_layer_set_threads says).
 * MOE_ENOMEM when the n attention scratch matrices cannot be allocated. */
int moe_block_set_threads(moe_block *b, int n);

float *moe_block_params(moe_block *b);
float *moe_block_grads(moe_block *b);
moe_layer *moe_block_ffn(moe_block *b); /* routing records, bias, its slab views */

#ifdef __cplusplus
}
#endif
#endif
