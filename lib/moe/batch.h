/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/batch.h — language-model batches from a token stream.
 *
 * A window of length T is T inputs and their T next-token targets, so it
 * reads T + 1 consecutive tokens: x[t] = tokens[s + t], y[t] = tokens[s + t + 1].
 *
 * Training batches take B windows at starts drawn uniformly from
 * [0, n - T - 1] (gsl_rng_uniform_int), in order b = 0..B-1, so the batches
 * depend only on the stream's state: the same seed gives the same batches.
 *
 * Evaluation windows are sequential and non-overlapping in their targets:
 * window w starts at w * T; there are floor((n - 1) / T) of them, so every
 * token from 1 to W * T is predicted exactly once and the (n - 1) mod T
 * tokens at the end are left out. */
#ifndef MOE_BATCH_H
#define MOE_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#include "moe/token.h"

#ifdef __cplusplus
extern "C" {
#endif

/* B random windows. starts may be NULL. Needs n >= T + 1, T >= 1, and
 * n - T no larger than the generator's range. */
int moe_batch_random(const moe_token *tokens /* (n) */, size_t n, size_t T, size_t B, gsl_rng *r,
                     moe_token *x /* (B, T) */, moe_token *y /* (B, T) */,
                     size_t *starts /* (B) */);

/* Number of evaluation windows of length T in n tokens: floor((n - 1) / T). */
size_t moe_batch_eval_windows(size_t n, size_t T);

/* Evaluation windows first, first + 1, ... up to B of them or the last
 * window; *filled receives how many were written. MOE_ERANGE if first is
 * past the last window. */
int moe_batch_eval(const moe_token *tokens /* (n) */, size_t n, size_t T, size_t first, size_t B,
                   moe_token *x /* (B, T) */, moe_token *y /* (B, T) */, size_t *filled);

#ifdef __cplusplus
}
#endif
#endif
