/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nn_internal.h — what the sources of lib/nn/ share and nothing else in
 * libmoe needs: the unchecked kernels and slab plumbing behind the public
 * layer, LM and vision calls. Not installed. */
#ifndef MOE_NN_INTERNAL_H
#define MOE_NN_INTERNAL_H

#include "internal.h"
#include "private.h"

/* Unchecked expert kernels (expert_impl.h) for the MoE layer, which sizes
 * its own buffers; float and double. */
#include "moe/expert.h"
void moei_expert_fwd(const moe_expert_config *cfg, int D, const float *p, int N, const float *x,
                     float *cache, float *y);
void moei_expert_bwd(const moe_expert_config *cfg, int D, const float *p, int N, const float *x,
                     const float *cache, const float *dy, float *g, float *dx, float *work);
void moei_expert_fwd_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                         const double *x, double *cache, double *y);
void moei_expert_bwd_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                         const double *x, const double *cache, const double *dy, double *g,
                         double *dx, double *work);

#include "moe/optim.h"
/* One training step over a model's flat slabs, as torch's clip_grad_norm_
 * then the optimizer: *grad_norm (may be NULL) = ‖g‖₂ accumulated in
 * double; a non-finite norm is MOE_EDOM and changes nothing; clip > 0
 * scales g by min(1, clip / (norm + 1e-6)); then moe_optim_step at the
 * schedule's rate for the optimizer's step count. `what` names the caller
 * in messages. Shared by moe_lm_step and moe_vision_step. */
int moei_clip_step(float *params, float *grads, size_t n, moe_optim *o,
                   const moe_lr_schedule *sched, double clip, double *grad_norm, const char *what);
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
