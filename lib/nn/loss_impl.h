/* SPDX-License-Identifier: GPL-3.0-or-later */
/* loss_impl.h — MSE and cross-entropy, written once for REAL (see real.h).
 * Included by loss.c; not installed. */

int SFX(moe_loss_mse)(size_t n, const REAL *pred, const REAL *target, double *loss, REAL *dpred)
{
  MOE_CHECK_ARG(n > 0, "mse: n=0");
  MOE_CHECK_ARG(pred && target, "mse: NULL buffer");
  double acc = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(pred[i]) || !isfinite(target[i]))
      return moe_error(MOE_EDOM, "mse: element %zu: pred %g, target %g", i, (double)pred[i],
                       (double)target[i]);
    double d = (double)pred[i] - (double)target[i];
    acc += d * d;
  }
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
