/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nn/private.h — the part of lib/nn's interface that is not libmoe's API:
 * the double twins of the float functions (suffix _f64, types moe_*_f64),
 * which exist so the tests can check gradients by finite differences, and
 * the raw transformer kernels the block is built from. Not installed and
 * not exported (libmoe.so exports what the headers of lib/moe/ declare,
 * nothing else: mk/lib.mk). lib/nn's sources include it; the tests
 * include it and link lib/libmoe_impl.la, in which every symbol is
 * visible ($(MOE_IMPL_LIBS)).
 *
 * A twin has the contract of its float function in lib/moe/<module>.h,
 * with double buffers and, for the models, double arithmetic throughout
 * (libm's exp where the float model uses a vectorised expf). */
#ifndef MOE_NN_PRIVATE_H
#define MOE_NN_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#include "moe/expert.h"
#include "moe/gate.h"
#include "moe/layer.h"
#include "moe/lm.h"
#include "moe/loss.h"
#include "moe/nn.h"
#include "moe/optim.h"
#include "moe/vision.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- transformer kernels (moe/nn.h's block; stateless, the caller owns
 * every buffer; forwards overwrite their outputs, backwards ACCUMULATE (+=)
 * into parameter gradients and, where stated, into dx) ---- */

/* out (B, T, D) = wte[tok] (+ wpe[t]). tok (B, T); wte (V, D); wpe (T, D)
 * or NULL. MOE_ERANGE (naming b, t) for a token id >= V. */
int moe_embedding_forward(int B, int T, int D, int V, const moe_token *tok, const float *wte,
                          const float *wpe, float *out);
/* dwte (V, D) += scatter of dout (B, T, D) by tok; dwpe (T, D) += Σ_b dout
 * (skipped when NULL). Rows are added in token order (deterministic). */
int moe_embedding_backward(int B, int T, int D, int V, const moe_token *tok, const float *dout,
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

/* ---- double twins, in the order of lib/moe/<module>.h ---- */

/* moe/gate.h */
int moe_gate_forward_f64(const moe_gate_config *cfg, int T, int E, int K, const double *logits,
                         const double *bias, double *scores, int *idx, double *weights);
int moe_gate_backward_f64(const moe_gate_config *cfg, int T, int E, int K, const double *scores,
                          const int *idx, const double *dweights, double *dlogits);
int moe_gate_bias_update_f64(int T, int E, int K, const int *idx, double gamma, double *bias);

/* moe/expert.h */
int moe_expert_forward_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                           const double *x, double *cache, double *y);
int moe_expert_backward_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                            const double *x, const double *cache, const double *dy, double *g,
                            double *dx, double *work);
int moe_expert_init_f64(const moe_expert_config *cfg, int D, double *p, gsl_rng *r);

/* moe/loss.h */
int moe_loss_mse_f64(size_t n, const double *pred, const double *target, double *loss,
                     double *dpred);
int moe_loss_ce_f64(int T, int V, const double *logits, const moe_token *targets, double *loss,
                    double *dlogits);

/* moe/optim.h */
typedef struct moe_optim_f64 moe_optim_f64;
moe_optim_f64 *moe_optim_alloc_f64(const moe_optim_config *cfg, size_t n);
void moe_optim_free_f64(moe_optim_f64 *o);
int moe_optim_step_f64(moe_optim_f64 *o, double *params, const double *grads, double lr);
long moe_optim_steps_f64(const moe_optim_f64 *o);
int moe_optim_set_threads_f64(moe_optim_f64 *o, int n);
void moe_optim_reset_f64(moe_optim_f64 *o);

/* moe/layer.h */
typedef struct moe_layer_f64 moe_layer_f64;
moe_layer_f64 *moe_layer_alloc_f64(const moe_layer_config *cfg, int max_T);
void moe_layer_free_f64(moe_layer_f64 *l);
const moe_layer_config *moe_layer_get_config_f64(const moe_layer_f64 *l);
int moe_layer_init_params_f64(moe_layer_f64 *l, gsl_rng *r);
int moe_layer_init_params_keyed_f64(moe_layer_f64 *l, uint64_t seed);
int moe_layer_forward_f64(moe_layer_f64 *l, int T, const double *x, double *y);
int moe_layer_backward_f64(moe_layer_f64 *l, const double *dy, double *dx);
void moe_layer_zero_grad_f64(moe_layer_f64 *l);
int moe_layer_set_threads_f64(moe_layer_f64 *l, int n);
int moe_layer_get_threads_f64(const moe_layer_f64 *l);
size_t moe_layer_param_count_f64(const moe_layer_f64 *l);
double *moe_layer_params_f64(moe_layer_f64 *l);
double *moe_layer_grads_f64(moe_layer_f64 *l);
double *moe_layer_router_f64(moe_layer_f64 *l);
double *moe_layer_shared_logits_f64(moe_layer_f64 *l);
double *moe_layer_shared_expert_f64(moe_layer_f64 *l, int i);
double *moe_layer_routed_expert_f64(moe_layer_f64 *l, int e);
double *moe_layer_grad_of_f64(moe_layer_f64 *l, const double *p);
double *moe_layer_bias_f64(moe_layer_f64 *l);
int moe_layer_bias_update_f64(moe_layer_f64 *l, double gamma);
int moe_layer_upcycle_f64(moe_layer_f64 *dst, const moe_layer_f64 *src);
int moe_layer_last_T_f64(const moe_layer_f64 *l);
const int *moe_layer_chosen_f64(const moe_layer_f64 *l);
const double *moe_layer_weights_f64(const moe_layer_f64 *l);
const double *moe_layer_scores_f64(const moe_layer_f64 *l);
const double *moe_layer_logits_f64(const moe_layer_f64 *l);
const int *moe_layer_expert_counts_f64(const moe_layer_f64 *l);
double moe_layer_aux_loss_f64(const moe_layer_f64 *l);
const double *moe_layer_omega_f64(const moe_layer_f64 *l);

/* moe/nn.h */
typedef struct moe_block_f64 moe_block_f64;
int moe_embedding_forward_f64(int B, int T, int D, int V, const moe_token *tok, const double *wte,
                              const double *wpe, double *out);
int moe_embedding_backward_f64(int B, int T, int D, int V, const moe_token *tok,
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

/* moe/lm.h */
typedef struct moe_lm_f64 moe_lm_f64;
moe_lm_f64 *moe_lm_alloc_f64(const moe_lm_config *cfg, int max_B);
void moe_lm_free_f64(moe_lm_f64 *m);
const moe_lm_config *moe_lm_get_config_f64(const moe_lm_f64 *m);
int moe_lm_max_B_f64(const moe_lm_f64 *m);
int moe_lm_init_params_f64(moe_lm_f64 *m, gsl_rng *r);
int moe_lm_init_params_keyed_f64(moe_lm_f64 *m, uint64_t seed);
int moe_lm_forward_f64(moe_lm_f64 *m, int B, int T, const moe_token *x, const moe_token *y,
                       double *loss);
int moe_lm_forward_eval_f64(moe_lm_f64 *m, int B, int T, const moe_token *x, const moe_token *y,
                            double *loss);
int moe_lm_backward_f64(moe_lm_f64 *m);
void moe_lm_zero_grad_f64(moe_lm_f64 *m);
int moe_lm_set_threads_f64(moe_lm_f64 *m, int n);
int moe_lm_get_threads_f64(const moe_lm_f64 *m);
const double *moe_lm_logits_f64(const moe_lm_f64 *m);
double moe_lm_ce_loss_f64(const moe_lm_f64 *m);
double moe_lm_aux_loss_f64(const moe_lm_f64 *m);
size_t moe_lm_param_count_f64(const moe_lm_f64 *m);
double *moe_lm_params_f64(moe_lm_f64 *m);
double *moe_lm_grads_f64(moe_lm_f64 *m);
moe_block_f64 *moe_lm_block_f64(moe_lm_f64 *m, int l);
moe_layer_f64 *moe_lm_ffn_f64(moe_lm_f64 *m, int l);

/* moe/vision.h */
typedef struct moe_vision_f64 moe_vision_f64;
moe_vision_f64 *moe_vision_alloc_f64(const moe_vision_config *cfg, int max_B);
void moe_vision_free_f64(moe_vision_f64 *m);
const moe_vision_config *moe_vision_get_config_f64(const moe_vision_f64 *m);
int moe_vision_init_params_f64(moe_vision_f64 *m, gsl_rng *r);
int moe_vision_init_params_keyed_f64(moe_vision_f64 *m, uint64_t seed);
int moe_vision_forward_f64(moe_vision_f64 *m, int B, const double *x, const moe_token *y,
                           double *loss);
int moe_vision_backward_f64(moe_vision_f64 *m);
void moe_vision_zero_grad_f64(moe_vision_f64 *m);
int moe_vision_set_threads_f64(moe_vision_f64 *m, int n);
int moe_vision_get_threads_f64(const moe_vision_f64 *m);
const double *moe_vision_logits_f64(const moe_vision_f64 *m);
double moe_vision_ce_loss_f64(const moe_vision_f64 *m);
double moe_vision_aux_loss_f64(const moe_vision_f64 *m);
int moe_vision_bias_update_f64(moe_vision_f64 *m, double gamma);
int moe_vision_upcycle_f64(moe_vision_f64 *dst, const moe_vision_f64 *src);
size_t moe_vision_param_count_f64(const moe_vision_f64 *m);
double *moe_vision_params_f64(moe_vision_f64 *m);
double *moe_vision_grads_f64(moe_vision_f64 *m);
moe_layer_f64 *moe_vision_connector_f64(moe_vision_f64 *m);
moe_block_f64 *moe_vision_encoder_block_f64(moe_vision_f64 *m, int l);
moe_block_f64 *moe_vision_head_block_f64(moe_vision_f64 *m, int j);

#ifdef __cplusplus
}
#endif
#endif
