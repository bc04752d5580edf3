/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/metrics.h — router behaviour metrics (paper §3.3 / App. H).
 *
 * A routing record is the (N, k) array of expert indices chosen for N items
 * (tokens, or vocabulary types as in the paper's analysis), as produced by
 * the MoE layer. Sets are compared as sets: order within a row and repeated
 * indices do not matter (a repeated index counts once). */
#ifndef MOE_METRICS_H
#define MOE_METRICS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Router saturation (OLMoE): Sat = (1/N) Σ_i |E_i(t) ∩ E_i(T)| / k, where
 * idx_t and idx_final are (N, k) records at checkpoint t and at the final
 * checkpoint. Result in [0, 1]; *out. */
int moe_metrics_saturation(const int *idx_t, const int *idx_final, size_t N, int k, int E,
                           double *out);

/* Router change rate (this paper): CR = (1/N) Σ_i |E_i(t+1) \ E_i(t)| / k
 * between consecutive checkpoints. In [0, 1]. */
int moe_metrics_change_rate(const int *idx_t, const int *idx_next, size_t N, int k, int E,
                            double *out);

/* Jain's fairness index J(r) = (Σ r_e)² / (n Σ r_e²) of n non-negative
 * shares r (token counts or routing weight per expert); in [1/n, 1].
 * All-zero r is rejected (MOE_EDOM). */
int moe_metrics_jain(const double *r, size_t n, double *out);

/* Expert load from a routing record: count[e] = number of (item, slot)
 * pairs routed to e; if weights (N, k) is given, weight[e] = Σ of their
 * routing weights (else weight may be NULL). count (E), weight (E). */
int moe_metrics_expert_counts(const int *idx, const float *weights, size_t N, int k, int E,
                     double *count, double *weight);

#ifdef __cplusplus
}
#endif
#endif
