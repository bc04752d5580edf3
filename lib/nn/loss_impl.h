/* SPDX-License-Identifier: GPL-3.0-or-later */
/* loss_impl.h — MSE and cross-entropy, written once for REAL (see real.h).
 * Included by loss.c; not installed. */

/* Σ (pred − target)² in double as MSE_LANES chains, element i in chain
 * i % MSE_LANES, each in element order, then combined pairwise in a
 * fixed order: one result for a given n and inputs, whatever the machine's
 * vector width (the lanes are the code's, not the CPU's), and no longer
 * one chain of n dependent additions (latency-bound: ~1.4 ms at n = 2^20).
 * Not finite iff an input is not finite: a finite difference of floats
 * squares to at most ~5e77, far from overflowing a double sum. */
#ifndef MSE_LANES
#define MSE_LANES 8
#endif
MOE_VEC_CLONES static double SFX(mse_sum)(size_t n, const REAL *pred, const REAL *target)
{
  double a[MSE_LANES] = {0};
  size_t i = 0;
  for (; i + MSE_LANES <= n; i += MSE_LANES)
    for (int j = 0; j < MSE_LANES; j++) {
      double d = (double)pred[i + j] - (double)target[i + j];
      a[j] += d * d;
    }
  for (int j = 0; i < n; i++, j++) {
    double d = (double)pred[i] - (double)target[i];
    a[j] += d * d;
  }
  for (int w = MSE_LANES / 2; w > 0; w /= 2)
    for (int j = 0; j < w; j++)
      a[j] += a[j + w];
  return a[0];
}

int SFX(moe_loss_mse)(size_t n, const REAL *pred, const REAL *target, double *loss, REAL *dpred)
{
  MOE_CHECK_ARG(n > 0, "mse: n=0");
  MOE_CHECK_ARG(pred && target, "mse: NULL buffer");
  double acc = SFX(mse_sum)(n, pred, target);
  if (!isfinite(acc))
    for (size_t i = 0; i < n; i++)
      if (!isfinite(pred[i]) || !isfinite(target[i]))
        return moe_error(MOE_EDOM, "mse: element %zu: pred %g, target %g", i, (double)pred[i],
                         (double)target[i]);
  if (loss)
    *loss = acc / (double)n;
  if (dpred) {
    const REAL c = (REAL)(2.0 / (double)n);
    for (size_t i = 0; i < n; i++)
      dpred[i] = c * (pred[i] - target[i]);
  }
  return MOE_OK;
}

int SFX(moe_loss_ce)(int T, int V, const REAL *logits, const moe_token *targets, double *loss,
                     REAL *dlogits)
{
  MOE_CHECK_ARG(T > 0 && V > 0, "cross-entropy: T=%d V=%d", T, V);
  MOE_CHECK_ARG(logits && targets, "cross-entropy: NULL buffer");
  for (int t = 0; t < T; t++)
    if (targets[t] >= (moe_token)V)
      return moe_error(MOE_ERANGE, "cross-entropy: target[%d]=%lu outside [0, V=%d)", t,
                       (unsigned long)targets[t], V);
  for (size_t i = 0; i < (size_t)T * V; i++)
    if (!isfinite(logits[i]))
      return moe_error(MOE_EDOM, "cross-entropy: logit[%zu][%zu] is %g", i / (size_t)V,
                       i % (size_t)V, (double)logits[i]);
  double acc = 0;
  const REAL invT = (REAL)(1.0 / T);
  for (int t = 0; t < T; t++) {
    const REAL *l = logits + (size_t)t * V;
    REAL m = l[0];
    for (int v = 1; v < V; v++)
      if (l[v] > m)
        m = l[v];
    double z = 0;
    for (int v = 0; v < V; v++)
      z += exp((double)(l[v] - m));
    double lse = (double)m + log(z);
    acc += lse - (double)l[targets[t]];
    if (dlogits) {
      REAL *d = dlogits + (size_t)t * V;
      const moe_token y = targets[t];
      for (int v = 0; v < V; v++)
        d[v] = (REAL)exp((double)l[v] - lse) * invT; /* may overwrite l[v] when aliased */
      d[y] -= invT;
    }
  }
  if (loss)
    *loss = acc / T;
  return MOE_OK;
}
