/* SPDX-License-Identifier: GPL-3.0-or-later */
/* batch.c — deterministic language-model windows (see moe/batch.h). */
#include <string.h>

#include "moe/batch.h"
#include "internal.h"

int moe_batch_random(const moe_token *tokens, size_t n, size_t T, size_t B, gsl_rng *r, moe_token *x,
                     moe_token *y, size_t *starts)
{
  MOE_CHECK_ARG(tokens && r && x && y, "moe_batch_random: NULL argument");
  MOE_CHECK_ARG(T >= 1 && n >= T + 1, "moe_batch_random: %zu tokens cannot hold a window of T=%zu (+1)", n, T);
  /* gsl_rng_uniform_int(r, m) needs m <= the generator's range. */
  unsigned long range = gsl_rng_max(r) - gsl_rng_min(r);
  MOE_CHECK_ARG(n - T - 1 <= range, "moe_batch_random: %zu start positions exceed the generator's range", n - T);
  for (size_t b = 0; b < B; b++) {
    size_t s = (size_t)gsl_rng_uniform_int(r, (unsigned long)(n - T));
    memcpy(x + b * T, tokens + s, T * sizeof *x);
    memcpy(y + b * T, tokens + s + 1, T * sizeof *y);
    if (starts) starts[b] = s;
  }
  return MOE_OK;
}

size_t moe_batch_eval_windows(size_t n, size_t T)
{
  return T >= 1 && n >= 1 ? (n - 1) / T : 0;
}

int moe_batch_eval(const moe_token *tokens, size_t n, size_t T, size_t first, size_t B, moe_token *x,
                   moe_token *y, size_t *filled)
{
  MOE_CHECK_ARG(tokens && x && y && filled, "moe_batch_eval: NULL argument");
  MOE_CHECK_ARG(T >= 1, "moe_batch_eval: T must be >= 1");
  *filled = 0;
  size_t W = moe_batch_eval_windows(n, T);
  if (first >= W)
    return moe_error(MOE_ERANGE, "moe_batch_eval: window %zu >= number of windows %zu", first, W);
  size_t k = W - first < B ? W - first : B;
  for (size_t b = 0; b < k; b++) {
    size_t s = (first + b) * T;
    memcpy(x + b * T, tokens + s, T * sizeof *x);
    memcpy(y + b * T, tokens + s + 1, T * sizeof *y);
  }
  *filled = k;
  return MOE_OK;
}
