/* SPDX-License-Identifier: GPL-3.0-or-later */
/* epoch_batcher.c — seeded per-epoch shuffles of 0..N-1 cut into batches.
 *
 * Each epoch starts again from the identity permutation before shuffling,
 * so epoch k's order is a function of (seed, k, N) alone and not of how
 * many epochs ran before: a resumed or sharded run sees the same batches. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <gsl/gsl_randist.h>

#include "moe/idx.h"
#include "moe/rng.h"
#include "moe/error.h"
#include "internal.h"

struct moe_batcher {
  size_t n, b;
  uint64_t seed;
  moe_batch_last last;
  size_t *order; /* (N) the current epoch's permutation */
};

moe_batcher *moe_batcher_alloc(size_t n, size_t b, uint64_t seed, moe_batch_last last)
{
  if (!(n > 0 && b > 0)) {
    moe_error(MOE_EINVAL, "moe_batcher_alloc: N=%zu and B=%zu must be positive", n, b);
    return NULL;
  }
  if (last != MOE_BATCH_KEEP_LAST && last != MOE_BATCH_DROP_LAST) {
    moe_error(MOE_EINVAL, "moe_batcher_alloc: unknown last-batch policy %d", (int)last);
    return NULL;
  }
  if (last == MOE_BATCH_DROP_LAST && b > n) {
    moe_error(MOE_EINVAL, "moe_batcher_alloc: B=%zu > N=%zu with DROP_LAST would give no batch", b, n);
    return NULL;
  }
  moe_batcher *bt = calloc(1, sizeof *bt);
  if (!bt) {
    moe_error(MOE_ENOMEM, "moe_batcher_alloc: out of memory");
    return NULL;
  }
  bt->order = n <= SIZE_MAX / sizeof *bt->order ? malloc(n * sizeof *bt->order) : NULL;
  if (!bt->order) {
    free(bt);
    moe_error(MOE_ENOMEM, "moe_batcher_alloc: out of memory for %zu indices", n);
    return NULL;
  }
  bt->n = n;
  bt->b = b;
  bt->seed = seed;
  bt->last = last;
  /* Until an epoch is chosen the order is the identity (unshuffled). */
  for (size_t i = 0; i < n; i++)
    bt->order[i] = i;
  return bt;
}

void moe_batcher_free(moe_batcher *bt)
{
  if (!bt)
    return;
  free(bt->order);
  free(bt);
}

int moe_batcher_epoch(moe_batcher *bt, unsigned long k)
{
  MOE_CHECK_ARG(bt, "moe_batcher_epoch: NULL argument");
  char label[32];
  snprintf(label, sizeof label, "epoch-%lu", k);
  gsl_rng *r = moe_rng_alloc(moe_seed_derive(bt->seed, label));
  if (!r)
    return MOE_ENOMEM;
  for (size_t i = 0; i < bt->n; i++)
    bt->order[i] = i;
  gsl_ran_shuffle(r, bt->order, bt->n, sizeof *bt->order);
  gsl_rng_free(r);
  return MOE_OK;
}

size_t moe_batcher_num_batches(const moe_batcher *bt)
{
  if (!bt)
    return 0;
  return bt->last == MOE_BATCH_DROP_LAST ? bt->n / bt->b : (bt->n + bt->b - 1) / bt->b;
}

size_t moe_batcher_batch(const moe_batcher *bt, size_t j, const size_t **idx)
{
  if (idx)
    *idx = NULL;
  if (!bt || j >= moe_batcher_num_batches(bt))
    return 0;
  size_t start = j * bt->b, len = bt->n - start < bt->b ? bt->n - start : bt->b;
  if (idx)
    *idx = bt->order + start;
  return len;
}
