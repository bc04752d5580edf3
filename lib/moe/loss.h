/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/loss.h — training losses with their gradients.
 *
 * Both losses are means (PyTorch's default reduction), accumulated in
 * double whatever the buffer type, and return MOE_EDOM if an input is not
 * finite. */
#ifndef MOE_LOSS_H
#define MOE_LOSS_H

#include <stddef.h>

#include "moe/token.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean squared error over n scalars:
 *   loss = (1/n) Σ (pred − target)²,   dpred = 2 (pred − target) / n
 * The sum is 8 chains in double (element i in chain i mod 8, each in
 * element order) added pairwise in a fixed order: the same bits on every
 * machine, and not one chain of n dependent additions. On MOE_EDOM the
 * message names the first element that is not finite and dpred is left
 * as it was.
 * pred, target (n) in; *loss out (may be NULL); dpred (n) out, overwritten,
 * or NULL to skip. n == 0 is MOE_EINVAL (the mean is undefined). */
int moe_loss_mse(size_t n, const float *pred, const float *target, double *loss, float *dpred);

/* Cross-entropy of T rows of V logits against target ids:
 *   loss = (1/T) Σ_t [logsumexp(l_t) − l_t[y_t]],
 *   dlogits = (softmax(l_t) − onehot(y_t)) / T
 * computed with the max subtracted (stable for any finite logits).
 * logits (T, V), targets (T) in; *loss out (may be NULL); dlogits (T, V)
 * out, overwritten, or NULL (it may alias logits). A target >= V is
 * MOE_ERANGE; T == 0 is MOE_EINVAL. */
int moe_loss_ce(int T, int V, const float *logits, const moe_token *targets, double *loss,
                float *dlogits);

#ifdef __cplusplus
}
#endif
#endif
