/* SPDX-License-Identifier: GPL-3.0-or-later */
/* metrics.c — router saturation, change rate, Jain's index, expert load. */
#include <math.h>
#include <stdlib.h>

#include "moe/metrics.h"
#include "internal.h"

/* Rows are small (k experts out of E); a per-call bitmap of E flags keeps
 * set operations O(k) per row without sorting. */
static int check_record(const int *a, size_t N, int k, int E, const char *what)
{
  MOE_CHECK_ARG(a != NULL, "%s: NULL routing record", what);
  MOE_CHECK_ARG(k >= 1 && E >= 1 && k <= E, "%s: need 1 <= k=%d <= E=%d", what, k, E);
  for (size_t i = 0; i < N * (size_t)k; i++)
    if (a[i] < 0 || a[i] >= E)
      return moe_error(MOE_ERANGE, "%s: item %zu slot %zu: expert %d outside [0, %d)", what,
                       i / (size_t)k, i % (size_t)k, a[i], E);
  return MOE_OK;
}

/* Σ_i |A_i ∩ B_i| (distinct members) */
static int overlap(const int *a, const int *b, size_t N, int k, int E, double *sum)
{
  unsigned char *mark = calloc((size_t)E, 1);
  if (!mark) return moe_error(MOE_ENOMEM, "metrics: no memory for %d flags", E);
  double s = 0;
  for (size_t i = 0; i < N; i++) {
    const int *ai = a + i * (size_t)k, *bi = b + i * (size_t)k;
    for (int j = 0; j < k; j++) mark[bi[j]] = 1;
    for (int j = 0; j < k; j++)
      if (mark[ai[j]] == 1) { s += 1; mark[ai[j]] = 2; }
    for (int j = 0; j < k; j++) { mark[bi[j]] = 0; mark[ai[j]] = 0; }
  }
  free(mark);
  *sum = s;
  return MOE_OK;
}

int moe_metrics_saturation(const int *idx_t, const int *idx_final, size_t N, int k, int E,
                           double *out)
{
  int rc;
  MOE_CHECK_ARG(out != NULL && N > 0, "saturation: need N > 0 and an output");
  if ((rc = check_record(idx_t, N, k, E, "saturation")) ||
      (rc = check_record(idx_final, N, k, E, "saturation")))
    return rc;
  double s;
  if ((rc = overlap(idx_t, idx_final, N, k, E, &s))) return rc;
  *out = s / ((double)N * k);
  return MOE_OK;
}

int moe_metrics_change_rate(const int *idx_t, const int *idx_next, size_t N, int k, int E,
                            double *out)
{
  int rc;
  MOE_CHECK_ARG(out != NULL && N > 0, "change rate: need N > 0 and an output");
  if ((rc = check_record(idx_t, N, k, E, "change rate")) ||
      (rc = check_record(idx_next, N, k, E, "change rate")))
    return rc;
  /* |E(t+1) \ E(t)| = |E(t+1)| - |E(t+1) ∩ E(t)|, with |E(t+1)| counted
   * as distinct members. */
  double inter, distinct = 0;
  if ((rc = overlap(idx_next, idx_t, N, k, E, &inter))) return rc;
  if ((rc = overlap(idx_next, idx_next, N, k, E, &distinct))) return rc;
  *out = (distinct - inter) / ((double)N * k);
  return MOE_OK;
}

int moe_metrics_jain(const double *r, size_t n, double *out)
{
  MOE_CHECK_ARG(r != NULL && out != NULL && n > 0, "jain: need n > 0 shares");
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(r[i]) || r[i] < 0)
      return moe_error(MOE_EDOM, "jain: share %zu is %g (need finite, >= 0)", i, r[i]);
    s += r[i];
    s2 += r[i] * r[i];
  }
  if (s2 == 0) return moe_error(MOE_EDOM, "jain: all %zu shares are zero", n);
  *out = s * s / ((double)n * s2);
  return MOE_OK;
}

int moe_metrics_expert_counts(const int *idx, const float *weights, size_t N, int k, int E,
                     double *count, double *weight)
{
  int rc;
  MOE_CHECK_ARG(count != NULL, "load: NULL count");
  MOE_CHECK_ARG(!weights || weight, "load: weights given but no weight output");
  if ((rc = check_record(idx, N, k, E, "load"))) return rc;
  for (int e = 0; e < E; e++) {
    count[e] = 0;
    if (weight) weight[e] = 0;
  }
  for (size_t i = 0; i < N * (size_t)k; i++) {
    count[idx[i]] += 1;
    if (weights) weight[idx[i]] += weights[i];
  }
  return MOE_OK;
}
