/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/gate.h — the routing gate family: logits → scores → top-K → weights.
 *
 * One gate is four orthogonal choices, applied per token t in this order
 * (the order of DeepSeek-V3 and ggml's build_moe_ffn):
 *
 *   s_t  = score(l_t)                      softmax or sigmoid over E logits
 *   idx_t = top-K of (s_t + b)             b: optional selection-only bias
 *   v_tk = s_t[idx_tk]                     gathered from the UNBIASED scores
 *   w_tk = route_scale · v_tk / (Σ_k v_tk + 1e-20)   if normalize
 *   w_tk = route_scale · v_tk                         otherwise
 *
 * K == E is a dense gate. The familiar gates are points of this family:
 *
 *   preset               score    normalize  bias  scale  what it is
 *   "softmax"            softmax  no         no    1      dense softmax (K = E);
 *                                                         with K < E, Switch-style
 *   "softmax_topk"       softmax  yes        no    1      top-K softmax renormalised
 *                                                         over the chosen (DeepSeek-V2)
 *   "sigmoid_topk"       sigmoid  no         no    1      top-K sigmoid
 *   "sigmoid_norm_topk"  sigmoid  yes        no    1      normalized sigmoid top-K
 *   "sigmoid_norm"       sigmoid  yes        no    1      dense normalized sigmoid
 *                                                         (the paper's theory; K = E)
 *   "deepseek_v3"        sigmoid  yes        yes   2.5    DeepSeek-V3 routing
 *
 * A preset names the family; density comes from K alone, so "softmax" with
 * K < E is a legitimate gate rather than an error.
 *
 * The 1e-20 in the normalisation is the paper's code's guard against all
 * chosen sigmoid scores underflowing; it is part of the differentiated
 * function, so gradients stay exact.
 *
 * Top-K is a stable selection: among equal selection scores the lower expert
 * index wins, so routing is a function of the inputs alone. For K < E the K
 * slots of a token are in descending order of s + b; for K == E slot k holds
 * expert k (no selection is made).
 *
 * The bias changes which experts are chosen, never the weights, so it has
 * no gradient; it is trained by moe_gate_bias_update (aux-loss-free
 * balancing).
 *
 * The exponentials of softmax and sigmoid are SLEEF's u10 kernels over all
 * T·E logits at once (documented bound 1.0 ULP; deterministic, see
 * lib/vmath.h), so a score is within about 2 ULP of the exact one.
 *
 * The library checks its gradients against double twins of these
 * functions (suffix _f64); they are internal, not part of the API. */
#ifndef MOE_GATE_H
#define MOE_GATE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  MOE_SCORE_SOFTMAX = 0, /* s = softmax(l) over the E experts */
  MOE_SCORE_SIGMOID = 1  /* s_e = 1 / (1 + exp(-l_e)) */
} moe_score_fn;

typedef struct {
  moe_score_fn score;
  int normalize;      /* non-zero: divide the chosen scores by their sum */
  double route_scale; /* multiplies the final weights; 1.0 for none (must be finite, > 0) */
  int use_bias;       /* non-zero: select on s + b with a caller-held bias b (E) */
} moe_gate_config;

/* Fill *cfg from a preset name (table above). MOE_EINVAL for an unknown
 * name (the message lists the known ones) or NULL arguments. */
int moe_gate_preset(const char *name, moe_gate_config *cfg);

/* Name of the i-th preset (i from 0), NULL past the end; for help texts. */
const char *moe_gate_preset_name(int i);

/* Validate cfg for E experts, K chosen: MOE_EINVAL unless 1 <= K <= E,
 * score is known, route_scale is finite and > 0. */
int moe_gate_check(const moe_gate_config *cfg, int E, int K);

/* Forward for T tokens.
 *   logits  (T, E)  in
 *   bias    (E)     selection bias, read only if cfg->use_bias (else may be NULL)
 *   scores  (T, E)  out: s (kept for the backward pass)
 *   idx     (T, K)  out: chosen experts
 *   weights (T, K)  out: w
 * MOE_EINVAL for bad shapes / NULL, MOE_EDOM if a logit (or bias) is not
 * finite. T == 0 is a no-op. */
int moe_gate_forward(const moe_gate_config *cfg, int T, int E, int K, const float *logits,
                     const float *bias, float *scores, int *idx, float *weights);

/* Backward: the gradient of the weights to the gradient of the logits.
 *   scores   (T, E) and idx (T, K) as returned by the forward
 *   dweights (T, K) in
 *   dlogits  (T, E) out (overwritten) */
int moe_gate_backward(const moe_gate_config *cfg, int T, int E, int K, const float *scores,
                      const int *idx, const float *dweights, float *dlogits);

/* Aux-loss-free balancing step (DeepSeek-V3): with load_e the number of the
 * T·K slots of idx (T, K) that chose e and mean = T·K/E,
 *   b_e += gamma · sign(mean − load_e)            (sign(0) = 0)
 * so under-loaded experts become more likely to be chosen. bias (E) in/out. */
int moe_gate_bias_update(int T, int E, int K, const int *idx, double gamma, float *bias);

/* Count how many of the T·K slots chose each expert: load (E) out. */
int moe_gate_expert_counts(int T, int E, int K, const int *idx, int *load);

#ifdef __cplusplus
}
#endif
#endif
