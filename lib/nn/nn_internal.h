/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nn_internal.h — what the sources of lib/nn/ share and nothing else in
 * libmoe needs: the unchecked kernels and slab plumbing behind the public
 * layer, LM and vision calls. Not installed. */
#ifndef MOE_NN_INTERNAL_H
#define MOE_NN_INTERNAL_H

#include "internal.h"
#include "private.h"

#include "moe/gate.h"
/* moe_gate_forward's per-token work on tokens [t0, t1) of the arrays, the
 * arguments already checked (any split of the tokens gives the bits of
 * one call; the MoE layer runs spans on its threads). */
void moei_gate_rows(const moe_gate_config *cfg, int t0, int t1, int E, int K, const float *logits,
                    const float *bias, float *scores, int *idx, float *weights);
void moei_gate_rows_f64(const moe_gate_config *cfg, int t0, int t1, int E, int K,
                        const double *logits, const double *bias, double *scores, int *idx,
                        double *weights);
/* moe_gate_forward's errors for non-finite input: the first non-finite
 * logit bad (TE = T·E if none), else the first non-finite selection bias
 * (use_bias); MOE_OK if neither. One definition for the one-thread scan
 * and the MoE layer's threaded one. */
int moei_gate_finite(const moe_gate_config *cfg, int E, const float *logits, size_t bad, size_t TE,
                     const float *bias);
int moei_gate_finite_f64(const moe_gate_config *cfg, int E, const double *logits, size_t bad,
                         size_t TE, const double *bias);

/* Unchecked expert kernels (expert_impl.h) for the MoE layer, which sizes
 * its own buffers; float and double. */
#include "moe/expert.h"
/* A product C = A B with β = 0 followed by C += Z (an addend of our own)
 * may instead preload C with Z and ask for β = 1, α = 1: one pass over C
 * fewer, and OpenBLAS's own zeroing of C (its β = 0 pass) gone. Its bits
 * are those of the two steps as long as the whole inner dimension K is
 * one panel of the level-3 driver (driver/level3/level3.c: K <= GEMM_Q is
 * one panel): the kernel then adds its accumulated sum s to C once, as
 * fma(s, 1, C) or s·1 + C, which is round(s + Z); two steps give
 * round((s + 0) + Z), and s + 0 = s but for s = −0, which a kernel that
 * starts its sums at +0 only gives when every product underflows; it
 * changes the result only when Z is −0 too (then +0 against −0). With K
 * over one panel the kernel adds the panels' partial sums to C one after
 * the other and Z would enter first: other bits. So the fused form is
 * used only up to this K: the smallest sgemm/dgemm GEMM_Q of the x86-64
 * kernels Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) may pick (param.h:
 * Prescott sgemm and dgemm Q 128; Haswell and Zen 320/256, SkylakeX
 * 448/384, Cooperlake 320/384, Sandybridge 384/256, Bulldozer 168/168).
 * A product with β = 0 on that path is never −0 (the zeroed C plus s),
 * so an addend that is one (a dx) meets no −0 there. The small-matrix
 * kernels of SkylakeX and Cooperlake (chosen by the shape, never by β:
 * sgemm_small_kernel_permit_skylakex.c) store s for β = 0 and compute
 * round(s + C) for β = 1: the two steps' bits exactly. Mixed, a −0
 * addend stored by the small path met by s = −0 on the level-3 path
 * would differ; both need every product of a dot product to underflow
 * (below 2^−150: the kernels' sums start at +0). */
#define MOE_GEMM_FUSE_K 128
void moei_expert_fwd(const moe_expert_config *cfg, int D, const float *p, int N, const float *x,
                     float *cache, float *y);
/* dx_acc: dx holds an addend Z on entry and gets Z + (this expert's dx),
 * the product accumulated into it with β = 1 (see MOE_GEMM_FUSE_K; the
 * caller checks moei_expert_dx_fusable). */
int moei_expert_dx_fusable(const moe_expert_config *cfg, int D);
void moei_expert_bwd(const moe_expert_config *cfg, int D, const float *p, int N, const float *x,
                     const float *cache, const float *dy, float *g, float *dx, int dx_acc,
                     float *work);
/* The same for an expert that has every row (a dense FFN), its products
 * cut into par_gemm's row blocks on up to nt threads: the same calls, so
 * the same bits, for every nt (expert_impl.h). */
void moei_expert_fwd_blocked(const moe_expert_config *cfg, int D, const float *p, int N,
                             const float *x, float *cache, float *y, int nt);
void moei_expert_bwd_blocked(const moe_expert_config *cfg, int D, const float *p, int N,
                             const float *x, const float *cache, const float *dy, float *g,
                             float *dx, int dx_acc, float *work, int nt);
void moei_expert_fwd_blocked_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                                 const double *x, double *cache, double *y, int nt);
void moei_expert_bwd_blocked_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                                 const double *x, const double *cache, const double *dy,
                                 double *g, double *dx, int dx_acc, double *work, int nt);
/* Their pieces, for callers that run them among other work items (the
 * MoE layer's split expert): forward row block b of
 * moei_par_nblocks(N); the backward's items, phase 0 (n0 of them) all
 * before any of phase 1 (n1), each item's calls those of the blocked
 * function. */
void moei_expert_fwd_block(const moe_expert_config *cfg, int D, const float *p, int N, int b,
                           const float *x, float *cache, float *y);
void moei_expert_fwd_block_f64(const moe_expert_config *cfg, int D, const double *p, int N, int b,
                               const double *x, double *cache, double *y);
int moei_expert_bwd_nitems(const moe_expert_config *cfg, int D, int N, int has_dx, int phase);
int moei_expert_bwd_nitems_f64(const moe_expert_config *cfg, int D, int N, int has_dx, int phase);
void moei_expert_bwd_item(const moe_expert_config *cfg, int D, const float *p, int N,
                          const float *x, const float *cache, const float *dy, float *g, float *dx,
                          int dx_acc, float *work, int phase, int it);
void moei_expert_bwd_item_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                              const double *x, const double *cache, const double *dy, double *g,
                              double *dx, int dx_acc, double *work, int phase, int it);
void moei_expert_fwd_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                         const double *x, double *cache, double *y);
void moei_expert_bwd_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                         const double *x, const double *cache, const double *dy, double *g,
                         double *dx, int dx_acc, double *work);

#include "moe/optim.h"
/* One training step over a model's flat slabs, as torch's clip_grad_norm_
 * then the optimizer: *grad_norm (may be NULL) = ‖g‖₂ accumulated in
 * double; a non-finite norm is MOE_EDOM and changes nothing; clip > 0
 * scales g by min(1, clip / (norm + 1e-6)); then moe_optim_step at the
 * schedule's rate for the optimizer's step count. `what` names the caller
 * in messages. Shared by moe_lm_step and moe_vision_step. */
int moei_clip_step(float *params, float *grads, size_t n, moe_optim *o,
                   const moe_lr_schedule *sched, double clip, double *grad_norm, const char *what);
/* The token and position embedding on nt threads (nn_impl.h; moe/nn.h's
 * contract without its checks, bits of one thread), for moe_lm. */
void moei_embedding_forward(int nt, int B, int T, int D, const moe_token *tok, const float *wte,
                            const float *wpe, float *out);
void moei_embedding_forward_f64(int nt, int B, int T, int D, const moe_token *tok,
                                const double *wte, const double *wpe, double *out);
void moei_embedding_backward(int nt, int B, int T, int D, const moe_token *tok, const float *dout,
                             float *dwte, float *dwpe);
void moei_embedding_backward_f64(int nt, int B, int T, int D, const moe_token *tok,
                                 const double *dout, double *dwte, double *dwpe);
/* LayerNorm on nt threads (nn_impl.h; moe/nn.h's contract, bits of one
 * thread), for the models around the blocks. */
void moei_ln_forward(int nt, int N, int D, const float *x, const float *w, const float *b,
                     float *y, float *mean, float *rstd);
void moei_ln_forward_f64(int nt, int N, int D, const double *x, const double *w, const double *b,
                         double *y, double *mean, double *rstd);
void moei_ln_backward(int nt, int N, int D, const float *x, const float *w, const float *mean,
                      const float *rstd, const float *dy, float *dx, float *dw, float *db);
void moei_ln_backward_f64(int nt, int N, int D, const double *x, const double *w,
                          const double *mean, const double *rstd, const double *dy, double *dx,
                          double *dw, double *db);
/* Their pieces, for callers that fuse them with other row-wise work (each
 * row computed as above): the forward and the backward's dx of rows
 * [r0, r1) (dw, db += as well if dw: rows in order, so only where one
 * thread runs all rows in order), and dw, db += for the columns of block
 * cb (MOE_LN_COLS columns) over all N rows in row order. */
#define MOE_LN_COLS 16
void moei_ln_forward_rows(int r0, int r1, int D, const float *x, const float *w, const float *b,
                          float *y, float *mean, float *rstd);
void moei_ln_forward_rows_f64(int r0, int r1, int D, const double *x, const double *w,
                              const double *b, double *y, double *mean, double *rstd);
void moei_ln_backward_rows(int r0, int r1, int D, const float *x, const float *w,
                           const float *mean, const float *rstd, const float *dy, float *dx,
                           float *dw, float *db);
void moei_ln_backward_rows_f64(int r0, int r1, int D, const double *x, const double *w,
                               const double *mean, const double *rstd, const double *dy,
                               double *dx, double *dw, double *db);
void moei_ln_backward_cols(int cb, int N, int D, const float *x, const float *mean,
                           const float *rstd, const float *dy, float *dw, float *db);
void moei_ln_backward_cols_f64(int cb, int N, int D, const double *x, const double *mean,
                               const double *rstd, const double *dy, double *dw, double *db);
#include "moe/layer.h"
/* The MoE layer on a caller's parameter and gradient slabs (layer_impl.h):
 * its own are freed, the caller's are used as they are and never freed. */
void moei_layer_adopt(moe_layer *l, float *params, float *grads);
void moei_layer_adopt_f64(moe_layer_f64 *l, double *params, double *grads);

int moei_layer_init(moe_layer *l, const moei_init_src *src);
int moei_layer_init_f64(moe_layer_f64 *l, const moei_init_src *src);
#include "moe/nn.h"
int moei_block_init(moe_block *b, const moei_init_src *src, double std, double proj_std);
int moei_block_init_f64(moe_block_f64 *b, const moei_init_src *src, double std, double proj_std);

#endif
