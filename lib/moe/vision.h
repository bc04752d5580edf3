/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/vision.h — a small image classifier whose features pass through an
 * MoE connector: the CPU-scale analogue of the paper's vision experiment
 * (§4.4–4.5: a LLaVA-style model whose mlp2x_gelu connector is
 * sparse-upcycled into an MoE).
 *
 * Letters: B images, Np = (Hi/P)·(Wi/P) patches per image, pd = P·P values
 * per patch, N = B·Np patch tokens, D width, C classes, L encoder blocks,
 * Lh head blocks. For a batch of patches x (B, Np, pd) (moe/idx.h,
 * moe_idx_set_batch) and labels y (B) in [0, C):
 *
 *   h_0 = x Wpᵀ + bp + pos[p]          (N, D)   patch embedding, learned positions
 *   h_l = block_l(h_{l−1})  l = 1..L   pre-LN encoder blocks (moe/nn.h), NOT causal;
 *                                      FFN dense or, with moe_everywhere, the
 *                                      connector's MoE config
 *   u   = LN_c(h_L)                    (N, D)
 *   g_0 = connector(u)                 (N, D)   a moe_layer (moe/layer.h), cfg.moe:
 *                                      any gate, S shared, either combine rule;
 *                                      experts D → F_moe → D with the activation of
 *                                      cfg.moe.expert (the paper's mlp2x_gelu
 *                                      is GELU: set act = MOE_ACT_GELU for it);
 *                                      no residual around it (it is the connector)
 *   g_j = headblock_j(g_{j−1}) j=1..Lh pre-LN blocks, non-causal, dense FFN
 * The dense FFN (encoder blocks without moe_everywhere, and every head
 * block) is a moe_layer of the "dense" variant (moe/layer.h): one FFN
 * expert D → F → D, GELU whatever cfg.moe says, no biases, weight exactly
 * 1, additive combine, no balance loss or z-loss; its router W_r (1, D)
 * sits in the slab with gradient exactly 0 (weight decay still applies).
 *   z   = LN_f(g_Lh)                   (N, D)
 *   q_b = (1/Np) Σ_p z[b, p]           (B, D)   mean pool
 *   logits = q Wcᵀ + bc                (B, C)
 *   CE  = (1/B) Σ_b [logsumexp(logits_b) − logits_b[y_b]]
 *   aux = Σ over every moe_layer of its moe_layer_aux_loss (balance loss,
 *         coef moe.balance_coef, plus router z-loss, coef moe.zloss_coef;
 *         the dense FFNs add nothing)
 *   loss = CE + aux
 * The backward pass differentiates loss.
 *
 * Memory, as moe/lm.h: ONE parameter slab and ONE gradient slab of
 * moe_vision_param_count() scalars, in this order:
 *   Wp (D, pd), bp (D), pos (Np, D)
 *   encoder block 0 .. L−1     moe_block_param_count() each (moe/nn.h layout)
 *   lnc_w (D), lnc_b (D)
 *   connector                  moe_layer slab (moe/layer.h layout)
 *   head block 0 .. Lh−1       moe_block_param_count() each
 *   lnf_w (D), lnf_b (D)
 *   Wc (C, D), bc (C)
 * Blocks and layers are views into these slabs.
 *
 * Initialisation (moe_vision_init_params; draws from r in slab order):
 * Wp ~ N(0, 1/pd), bp 0, pos ~ N(0, 0.02²); every block by
 * moe_block_init_params(std 0.02, proj_std 0.02/√(2(L+Lh))); LN weights
 * 1, biases 0; the connector by moe_layer_init_params; Wc ~ N(0, 0.02²),
 * bc 0.
 *
 * Training step (moe_vision_step): as moe_lm_step — global gradient norm
 * (double), torch's clip_grad_norm_ rule, lr from the schedule,
 * moe_optim_step (AdamW). MOE_EDOM on a non-finite norm (nothing updated).
 *
 * Errors: MOE_EINVAL for a bad configuration (naming the field; a patch
 * side P that does not divide Hi and Wi is one), NULL buffers, B outside
 * [1, max_B], backward without a forward with labels; MOE_ERANGE for a
 * label outside [0, C) (naming the image); MOE_EDOM for a non-finite
 * input value (naming image, patch and element) or non-finite logits.
 * A failed forward leaves parameters untouched and forbids backward.
 *
 * moe_vision_logits() keeps the logits of the last forward through the
 * backward (moe_lm_logits does not).
 *
 * Determinism: fixed summation orders throughout; with a one-thread BLAS
 * results are bit-identical from run to run. Batch composition: see
 * moe/lm.h (the same holds here, per image).
 *
 * The library checks its gradients against double twins of these
 * functions (suffix _f64); they are internal, not part of the API. */
#ifndef MOE_VISION_H
#define MOE_VISION_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#include "moe/layer.h"
#include "moe/nn.h"
#include "moe/optim.h"
#include "moe/token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int Hi, Wi;           /* image height and width in pixels */
  int P;                /* patch side; must divide Hi and Wi */
  int C;                /* classes */
  int D;                /* width */
  int H;                /* attention heads, D % H == 0 */
  int L;                /* encoder blocks, >= 0 */
  int Lh;               /* head blocks, >= 0 */
  int F;                /* width of the dense FFNs (encoder and head blocks) */
  int moe_everywhere;   /* non-zero: encoder FFNs use cfg.moe too */
  moe_layer_config moe; /* connector (moe.D == D) */
} moe_vision_config;

/* A configuration: Hi × Wi images, patch side P, C classes, D, H, L, Lh,
 * dense width F, connector moe as given (its D set to D), not everywhere. */
moe_vision_config moe_vision_config_make(int Hi, int Wi, int P, int C, int D, int H, int L,
                                         int Lh, int F, const moe_layer_config *moe);
/* MOE_EINVAL (naming the field) unless usable. */
int moe_vision_check(const moe_vision_config *cfg);
/* Patches per image Np and values per patch pd (0 if invalid). */
int moe_vision_num_patches(const moe_vision_config *cfg);
int moe_vision_patch_dim(const moe_vision_config *cfg);

/* Floating-point operations of one forward pass per IMAGE, by component,
 * counting the matrix products as this library computes them (a
 * multiply-add is 2; Np patches, pd = P·P):
 *   embed       2·Np·pd·D                    the patch embedding
 *   attention   (L + Lh)·Np·(8·D² + 4·Np·D)  projections, scores and mixing
 *   ffn         Np·Σ over the L + Lh blocks of their FFN: 2·D·E (its router;
 *               E = 1 for a dense FFN) + (K + S)·4·D·F_block
 *   router      Np·2·D·E                      the connector's router
 *   experts     Np·(K + S)·4·D·F_moe          the connector's active experts
 *               (2·D² each for linear experts)
 *   classifier  2·D·C
 *   norms       0 (LayerNorm, GELU, softmax, pooling: no products)
 * total is their sum; a training step is 3× it. The connector's share is
 * (router + experts) / total. Parameters likewise (scalars):
 *   embed       Wp D·pd + bp D + pos Np·D
 *   attention   (L + Lh)·4·D² (Wqkv, Wo)
 *   norms       (L + Lh)·4·D + 4·D (the blocks' two LayerNorms, LN_c, LN_f)
 *   ffn         the blocks' FFN slabs (router, experts)
 *   router      the connector's E·D, + S shared logits under PAPER
 *   experts     the connector's (S + E)·moe_expert_param_count(expert, D)
 *   classifier  C·D + C
 * summing to total == moe_vision_param_count() of a model of cfg.
 * MOE_EINVAL for an invalid configuration. */
typedef struct {
  double embed, attention, ffn, router, experts, classifier, norms, total;
} moe_vision_parts;
int moe_vision_flops_parts(const moe_vision_config *cfg, moe_vision_parts *out);
int moe_vision_param_parts(const moe_vision_config *cfg, moe_vision_parts *out);

typedef struct moe_vision moe_vision;

/* A model for batches of up to max_B images; parameters zero. NULL on
 * failure (moe_last_error()). */
moe_vision *moe_vision_alloc(const moe_vision_config *cfg, int max_B);
void moe_vision_free(moe_vision *m);
const moe_vision_config *moe_vision_get_config(const moe_vision *m);
int moe_vision_init_params(moe_vision *m, gsl_rng *r);
/* The same law, each component from its own stream keyed by its name under
 * seed (patch, pos, classifier; encoder block l, head block j, the
 * connector's router and experts), as moe_lm_init_params_keyed. */
int moe_vision_init_params_keyed(moe_vision *m, uint64_t seed);

/* Forward on x (B, Np, pd) with labels y (B), or y == NULL for logits only
 * (no loss; *loss untouched). *loss = CE + aux (may be NULL). */
int moe_vision_forward(moe_vision *m, int B, const float *x, const moe_token *y, double *loss);
/* Backward of the last forward (with labels): gradients of CE + aux
 * ACCUMULATED into the gradient slab. Once per forward. */
int moe_vision_backward(moe_vision *m);
void moe_vision_zero_grad(moe_vision *m);
/* Threads for forward and backward, 1..MOE_THREADS_MAX (1 by default):
 * every block and the connector (moe_block_set_threads,
 * moe_layer_set_threads), the patch embedding's products by row blocks
 * (the same blocks for every thread count, as moe_block_set_threads),
 * the LayerNorms by rows. Every thread count gives the bits of one
 * thread (of one BLAS thread: n > 1 sets BLAS to one, as
 * moe_layer_set_threads says). */
int moe_vision_set_threads(moe_vision *m, int n);
int moe_vision_get_threads(const moe_vision *m);

/* The last forward: logits (B, C), CE and aux parts. */
const float *moe_vision_logits(const moe_vision *m);
double moe_vision_ce_loss(const moe_vision *m);
double moe_vision_aux_loss(const moe_vision *m);

/* Clip, schedule and AdamW (above); *grad_norm (may be NULL) is the norm
 * before clipping; clip <= 0 disables clipping. */
int moe_vision_step(moe_vision *m, moe_optim *o, const moe_lr_schedule *sched, double clip,
                    double *grad_norm);
/* Aux-loss-free balancing of every moe_layer whose gate has use_bias. */
int moe_vision_bias_update(moe_vision *m, double gamma);
/* Sparse upcycling of the connector: dst's connector experts from the
 * one-MLP connector of src (moe_layer_upcycle: every shared and routed
 * expert a bit-exact copy, or one expert widened), and every parameter
 * outside the connector (patch embedding, positions, encoder blocks, LN_c,
 * head blocks, LN_f, classifier) copied from src; dst's router, shared
 * logits and selection bias are left as they were (initialise dst first,
 * e.g. moe_vision_init_params_keyed: the router starts fresh). The two
 * configurations must agree except in the connector, and neither may put
 * MoE everywhere. MOE_EINVAL otherwise (naming what differs). */
int moe_vision_upcycle(moe_vision *dst, const moe_vision *src);

size_t moe_vision_param_count(const moe_vision *m);
float *moe_vision_params(moe_vision *m);
float *moe_vision_grads(moe_vision *m);
/* Routing records and slab views: the connector, encoder block l
 * (0 <= l < L) and head block j (0 <= j < Lh); NULL out of range. */
moe_layer *moe_vision_connector(moe_vision *m);
moe_block *moe_vision_encoder_block(moe_vision *m, int l);
moe_block *moe_vision_head_block(moe_vision *m, int j);

#ifdef __cplusplus
}
#endif
#endif
