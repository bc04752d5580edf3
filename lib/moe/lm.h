/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/lm.h — a decoder-only transformer language model whose FFNs are
 * MoE layers (the paper's §4.1 "Switch Transformer baseline", small).
 *
 * For a batch of B sequences of T <= cfg.T token ids x (B, T) and their
 * next-token targets y (B, T):
 *
 *   h_0 = wte[x] + wpe[0..T−1]                 (N, D)   N = B·T
 *   h_l = block_l(h_{l−1})   l = 1..L          pre-LN, causal attention,
 *                                              FFN = moe_layer (moe/nn.h)
 *   z   = LN_f(h_L)                            (N, D)
 *   logits = z Wᵀ,  W = wte (tied) or head     (N, V)
 *   CE  = (1/N) Σ_t [logsumexp(logits_t) − logits_t[y_t]]
 *   aux = Σ_l (L_aux,l + L_z,l)                each block's balance loss, coef
 *                                              cfg.ffn.balance_coef, and router
 *                                              z-loss, coef cfg.ffn.zloss_coef
 *                                              (moe/layer.h; L_z is 0 when the
 *                                              coefficient is 0)
 *   loss = CE + aux
 * The T of the layer's formulas (f_e, P_e, the 1/T of L_z) is every token
 * of the forward, N = B·T: the balance and z-losses average over the whole
 * batch, not per sequence. moe_lm_aux_loss() returns aux, z-loss included.
 *
 * The backward pass differentiates loss (so the gradients of the balance
 * loss and of the z-loss are included when their coefficients are > 0). Positions are learned embeddings (the
 * paper's code uses RoPE; learned positions keep the model GPT-2-shaped
 * and the golden test simple).
 *
 * Memory, as llm.c: ONE parameter slab and ONE gradient slab of
 * moe_lm_param_count() scalars, in this order:
 *   wte  (V, D)
 *   wpe  (T, D)
 *   block 0 .. L−1, moe_block_param_count() each (moe/nn.h layout;
 *        the last part of each is that block's moe_layer slab)
 *   lnf_w (D), lnf_b (D)
 *   head (V, D)                                only when tie == 0
 * The blocks and their moe_layers are views into these slabs, so
 * moe_layer_params(moe_lm_ffn(m, l)) points inside moe_lm_params(m), and
 * an optimizer, a gradient norm or a checkpoint is one flat loop.
 *
 * Initialisation (moe_lm_init_params, GPT-2 with the paper's FFN init):
 * wte, wpe, head ~ N(0, 0.02²); each block by moe_block_init_params with
 * std 0.02 and proj_std 0.02/√(2L); LN_f weight 1, bias 0. Draws come
 * from r in slab order.
 *
 * Training step (moe_lm_step), PyTorch's torch.nn.utils.clip_grad_norm_ +
 * torch.optim.AdamW:
 *   n  = ‖g‖₂ over the whole gradient slab (accumulated in double)
 *   g ← g · min(1, clip / (n + 1e-6))          when clip > 0
 *   lr = moe_lr_at(schedule, moe_optim_steps(o))
 *   moe_optim_step(o, params, g, lr)            (AdamW, moe/optim.h)
 * A non-finite norm is MOE_EDOM and leaves parameters and optimizer alone.
 * AdamW's weight decay applies to every parameter of the slab alike: wte,
 * wpe and the head, every LayerNorm weight and bias, the attention and
 * expert weights, the routers W_r and the shared logits (no exclusion list
 * as in GPT-2's usual recipe; set weight_decay 0 for none). The selection
 * bias is not a parameter and is not decayed.
 * Aux-loss-free balancing (gates with use_bias) is a separate call,
 * moe_lm_bias_update(), after the step.
 *
 * Evaluation (moe_lm_evaluate) runs the windows of moe/batch.h
 * (moe_batch_eval: non-overlapping, every predicted token once) in
 * batches of max_B, and returns the mean CE over all predicted tokens
 * (accumulated in double) and ppl = exp(mean CE). The aux loss is not
 * part of it. It runs forwards, so afterwards the routing records and
 * logits are those of its last batch.
 *
 * Routing records: after a forward, moe_lm_ffn(m, l) is block l's
 * moe_layer; moe_layer_chosen / moe_layer_weights give the (N, K) chosen
 * experts and weights of each token (row b·T + t), moe_layer_expert_counts the
 * per-expert load.
 *
 * Checkpoint file (moe_lm_save / moe_lm_load), little-endian whatever the
 * host:
 *   magic   8 bytes "MOELMCK\n"
 *   version u32 = 2
 *   config  u32 V T D L H tie, E K S, gate score normalize use_bias,
 *           expert kind F act bias, combine; f64 route_scale balance_coef
 *           zloss_coef: every field of moe_lm_config (ffn.D is D)
 *   step    i64   (the caller's training step, for the record)
 *   n       u64   parameter count (checked against the config)
 *   params  n × f32
 *   bias    L × E × f32   each layer's selection bias (state, not a parameter)
 *   crc32   u32   zlib CRC-32 of every byte before it
 * Version 1 (before zloss_coef was recorded) lacks the last f64; it loads
 * with zloss_coef = 0, whatever the saved model trained with.
 * The AdamW moments are not part of a checkpoint (moe_optim keeps them);
 * a run resumed from one restarts them. Saving writes a temporary file
 * and renames it. Loading checks, in
 * order: the file opens (MOE_EIO), the magic (MOE_EFORMAT "not a moebench
 * LM checkpoint"), the version (MOE_EFORMAT), the config (MOE_EFORMAT,
 * naming the field), the size (MOE_EFORMAT "truncated: N bytes, expected
 * M"), the checksum (MOE_ECHECKSUM), finite parameters (MOE_EDOM). The
 * message names the file. Nothing is allocated on failure.
 *
 * Errors: MOE_EINVAL for bad configurations, shapes, B > max_B, backward
 * without a forward with targets; MOE_ERANGE for a token id or target
 * >= V (naming b and t) and for T > cfg.T ("sequence of T tokens exceeds
 * the context"); MOE_EDOM for non-finite activations (a NaN in a
 * parameter or input shows up in the FFN input or the logits and is
 * reported there, nothing is updated).
 *
 * Precision: the softmax exponentials use a vectorised polynomial expf
 * (<= 1.4 ulp) and sum in float lanes (terms <= 1) totalled in double.
 *
 * Determinism: every sum has a fixed order; for a given BLAS kernel and
 * thread count results are bit-identical from run to run.
 *
 * Batch composition: results are a deterministic function of the whole
 * batch (its tokens and its shape B, T), not of each sequence alone, for
 * every variant, dense included. A sequence alone, in a batch with others,
 * or cut to a prefix gives the same logits to rounding (relative
 * differences of ~1e-5 in float; t/test_lm.c checks < 1e-3 for dense,
 * smoe, ds_v2 and ds_v3_bias) but not bit for bit: the BLAS may take other
 * kernels for other matrix sizes (the dense variant's logits of a batch of
 * 6 and of each sequence alone differ in the last bits), and in routed
 * variants a token's bits can also depend on how many rows share its
 * expert's GEMM, which the other tokens decide. So a prefix run and a
 * batch run, or moe_lm_evaluate with another max_B, agree within
 * rounding, not bit for bit.
 *
 * The library checks its gradients against double twins of these
 * functions (suffix _f64); they are internal, not part of the API. */
#ifndef MOE_LM_H
#define MOE_LM_H

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
  int V;                /* vocabulary */
  int T;                /* context: longest sequence */
  int D;                /* width */
  int L;                /* blocks */
  int H;                /* attention heads, D % H == 0 */
  int tie;              /* non-zero: the LM head is wte (no head tensor) */
  moe_layer_config ffn; /* every block's FFN (ffn.D == D); ffn.balance_coef is
                           the aux-loss coefficient (0.01 in the paper) */
} moe_lm_config;

/* A configuration with the given sizes, tied head, and ffn as given
 * (its D is set to D). */
moe_lm_config moe_lm_config_make(int V, int T, int D, int L, int H, const moe_layer_config *ffn);

/* MOE_EINVAL (naming the field) unless usable. */
int moe_lm_check(const moe_lm_config *cfg);

/* Floating-point operations of one forward pass per token for sequences
 * of T tokens, counting the matrix products as this library computes them
 * (a multiply-add is 2): per block the qkv and output projections
 * 8·D², the attention scores and mixing 4·T·D (the full T × T product;
 * the causal mask is applied after it), the router 2·D·E and the K routed
 * plus S shared experts 4·D·F each (2·D² for a linear expert); the head
 * 2·V·D. A training step (forward + backward) is 3× this. 0 for an
 * invalid configuration. */
double moe_lm_flops_per_token(const moe_lm_config *cfg, int T);

/* moe_lm_flops_per_token by component (one forward, per token, sequences
 * of T tokens; a multiply-add is 2), so that embed_head + attention +
 * router + experts == total == moe_lm_flops_per_token(cfg, T):
 *   embed_head  the head 2·V·D (the embedding lookup costs no products)
 *   attention   L·(8·D² + 4·T·D): qkv and output projections, scores and
 *               mixing over the full T × T product as computed
 *   router      L·2·D·E
 *   experts     L·(K + S)·(4·D·F, or 2·D² for a linear expert)
 * LayerNorm, softmax, GELU/ReLU and the loss (O(D) or O(V) per token, no
 * products) are not counted. Parameters likewise (scalars):
 *   embed_head  wte V·D + wpe T·D, + the head V·D when untied
 *   attention   L·4·D² (Wqkv, Wo)
 *   norms       L·4·D + 2·D (the blocks' two LayerNorms and the final one)
 *   router      L·E·D, + L·S shared weights ω under the PAPER combine
 *   experts     L·(S + E)·moe_expert_param_count(expert, D)
 * summing to total == moe_lm_param_count() of a model of cfg. MOE_EINVAL
 * for an invalid configuration or T outside [1, cfg->T]. */
typedef struct {
  double embed_head, attention, router, experts, norms, total;
} moe_lm_parts;
int moe_lm_flops_parts(const moe_lm_config *cfg, int T, moe_lm_parts *out);
int moe_lm_param_parts(const moe_lm_config *cfg, moe_lm_parts *out);

typedef struct moe_lm moe_lm;

/* A model for batches of up to max_B sequences; parameters zero. NULL on
 * failure (moe_last_error()). */
moe_lm *moe_lm_alloc(const moe_lm_config *cfg, int max_B);
void moe_lm_free(moe_lm *m);
const moe_lm_config *moe_lm_get_config(const moe_lm *m);
int moe_lm_max_B(const moe_lm *m);
int moe_lm_init_params(moe_lm *m, gsl_rng *r);
/* The same law, each component from its own stream keyed by its name under
 * seed (wte, wpe, head; block l: qkv, proj, and its FFN's router, shared
 * expert i, routed expert e): models that differ only in their FFN
 * variant start from the same embeddings, attention and norms, and share
 * the experts they have in common (common random numbers). */
int moe_lm_init_params_keyed(moe_lm *m, uint64_t seed);

/* Forward on x (B, T) with targets y (B, T), or y == NULL for logits only
 * (no loss; *loss untouched). *loss = CE + aux (may be NULL). */
int moe_lm_forward(moe_lm *m, int B, int T, const moe_token *x, const moe_token *y, double *loss);
/* The forward for evaluation: the same loss, CE, aux, logits and routing
 * records, bit for bit, as moe_lm_forward, with the head's product and
 * each row's logsumexp fused per row block (while the block's logits are
 * in cache; the blocks and BLAS calls are moe_lm_forward's own). No
 * backward may follow (MOE_EINVAL). moe_lm_evaluate uses it. */
int moe_lm_forward_eval(moe_lm *m, int B, int T, const moe_token *x, const moe_token *y,
                        double *loss);
/* Backward of the last forward (which must have had targets): gradients
 * of CE + aux ACCUMULATED into the gradient slab. */
int moe_lm_backward(moe_lm *m);
void moe_lm_zero_grad(moe_lm *m);
/* Threads for forward, backward and evaluation, 1..MOE_THREADS_MAX (1 by
 * default): every block (moe_block_set_threads), the head's products by
 * row blocks (at most 8, cut at multiples of 48 rows, the same blocks
 * and BLAS calls for every thread count), the rows' logsumexp and
 * softmax; sums across rows keep their order. Every thread count gives
 * the bits of one thread, with any BLAS whose single-threaded call is a
 * function of its arguments (n > 1 sets BLAS to one thread, as
 * moe_layer_set_threads says). The optimizer has its own
 * (moe_optim_set_threads). */
int moe_lm_set_threads(moe_lm *m, int n);
int moe_lm_get_threads(const moe_lm *m);

/* The last forward: logits (B, T, V), its CE and aux parts (aux: balance
 * plus z-loss). moe_lm_logits() is NULL after moe_lm_backward (the backward
 * turns the logits into their gradient in place) and after a failed
 * forward; moe_vision_logits keeps its logits through the backward. */
const float *moe_lm_logits(const moe_lm *m);
double moe_lm_ce_loss(const moe_lm *m);
double moe_lm_aux_loss(const moe_lm *m);

/* Clip, schedule and AdamW (above). o must have been allocated for
 * moe_lm_param_count() parameters (not checkable here). *grad_norm receives the norm before
 * clipping (may be NULL). clip <= 0 disables clipping. */
int moe_lm_step(moe_lm *m, moe_optim *o, const moe_lr_schedule *sched, double clip,
                double *grad_norm);
/* Aux-loss-free balancing of every block whose gate has use_bias, from
 * the last forward's choices (moe_layer_bias_update); a no-op otherwise. */
int moe_lm_bias_update(moe_lm *m, double gamma);

/* Mean CE and perplexity over the evaluation windows of tokens (n);
 * *n_predicted (may be NULL) = windows · T. MOE_EINVAL if n < T + 1. */
int moe_lm_evaluate(moe_lm *m, const moe_token *tokens, size_t n, double *mean_ce, double *ppl,
                    size_t *n_predicted);

/* Slabs and named tensors. */
size_t moe_lm_param_count(const moe_lm *m);
float *moe_lm_params(moe_lm *m);
float *moe_lm_grads(moe_lm *m);
float *moe_lm_wte(moe_lm *m);   /* (V, D) */
float *moe_lm_wpe(moe_lm *m);   /* (T, D) */
float *moe_lm_lnf_w(moe_lm *m); /* (D) */
float *moe_lm_lnf_b(moe_lm *m); /* (D) */
float *moe_lm_head(moe_lm *m);  /* (V, D): wte when tied */
float *moe_lm_grad_of(moe_lm *m, const float *p);
moe_block *moe_lm_block(moe_lm *m, int l);
moe_layer *moe_lm_ffn(moe_lm *m, int l);

/* Checkpoints (format above). step is recorded and returned. */
int moe_lm_save(const moe_lm *m, const char *path, long step);
/* A new model (for max_B) from a checkpoint; *out = NULL on failure. */
int moe_lm_load(const char *path, int max_B, moe_lm **out, long *step);

#ifdef __cplusplus
}
#endif
#endif
