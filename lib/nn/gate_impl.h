/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gate_impl.h — the gate family, written once for REAL (see real.h).
 * Included by gate.c; not installed. */

/* Stable top-K over one token's selection scores s + b (b may be NULL):
 * one pass in expert order keeping the K best in idx, sorted by
 * descending score; an expert enters only past the entries it strictly
 * beats, so among equal scores the lower index comes first and is kept —
 * the order and the set of a repeated argmax with a strict '>'. O(E) plus
 * O(K) per entry, no scratch. */
static void SFX(topk_select)(const REAL *s, const REAL *b, int E, int K, int *idx)
{
  int n = 0;
  for (int e = 0; e < E; e++) {
    const REAL v = b ? s[e] + b[e] : s[e];
    if (n == K) {
      const int last = idx[K - 1];
      if (!(v > (b ? s[last] + b[last] : s[last])))
        continue;
      n--; /* the last entry drops out */
    }
    int p = n;
    while (p > 0 && v > (b ? s[idx[p - 1]] + b[idx[p - 1]] : s[idx[p - 1]])) {
      idx[p] = idx[p - 1];
      p--;
    }
    idx[p] = e;
    n++;
  }
}

/* moe_gate_forward's work on tokens [t0, t1), the arguments checked:
 * each token's scores, choice and weights depend on its own logits only,
 * and the exponentials pass through one kernel whatever the span (vmath.h),
 * so any split of the tokens gives the bits of one call over all of them
 * (the MoE layer runs spans on its threads). */
void SFX(moei_gate_rows)(const moe_gate_config *cfg, int t0, int t1, int E, int K,
                         const REAL *logits, const REAL *bias, REAL *scores, int *idx,
                         REAL *weights)
{
  const int T = t1 - t0;
  if (T <= 0)
    return;
  logits += (size_t)t0 * E;
  scores += (size_t)t0 * E;
  idx += (size_t)t0 * K;
  weights += (size_t)t0 * K;
  const REAL scale = (REAL)cfg->route_scale;
  /* scores of all T·E logits: the exponentials in one SLEEF pass (≤ 1 ULP,
   * vmath.h), the arithmetic around it element-wise */
  const size_t TE = (size_t)T * E;
  if (cfg->score == MOE_SCORE_SOFTMAX) {
    for (int t = 0; t < T; t++) {
      const REAL *l = logits + (size_t)t * E;
      REAL *s = scores + (size_t)t * E, m = l[0];
      for (int e = 1; e < E; e++)
        if (l[e] > m)
          m = l[e];
      for (int e = 0; e < E; e++)
        s[e] = l[e] - m;
    }
    R_VEXP(TE, scores, scores);
    for (int t = 0; t < T; t++) {
      REAL *s = scores + (size_t)t * E, z = 0;
      for (int e = 0; e < E; e++)
        z += s[e];
      for (int e = 0; e < E; e++)
        s[e] /= z;
    }
  } else {
    for (size_t i = 0; i < TE; i++)
      scores[i] = -logits[i];
    R_VEXP(TE, scores, scores);
    for (size_t i = 0; i < TE; i++)
      scores[i] = 1 / (1 + scores[i]);
  }
  for (int t = 0; t < T; t++) {
    REAL *s = scores + (size_t)t * E;
    int *ix = idx + (size_t)t * K;
    REAL *w = weights + (size_t)t * K;
    if (K == E) {
      for (int k = 0; k < K; k++)
        ix[k] = k;
    } else {
      SFX(topk_select)(s, cfg->use_bias ? bias : NULL, E, K, ix);
    }
    REAL z = 0;
    for (int k = 0; k < K; k++) {
      w[k] = s[ix[k]];
      z += w[k];
    }
    if (cfg->normalize) {
      z += (REAL)1e-20;
      for (int k = 0; k < K; k++)
        w[k] = scale * (w[k] / z);
    } else if (scale != 1) {
      for (int k = 0; k < K; k++)
        w[k] *= scale;
    }
  }
}

/* moe_gate_forward's refusal of non-finite input, given the first
 * non-finite logit bad (TE if none) of the TE = T·E: that logit, else the
 * first non-finite selection bias (use_bias gates), else MOE_OK. */
int SFX(moei_gate_finite)(const moe_gate_config *cfg, int E, const REAL *logits, size_t bad,
                          size_t TE, const REAL *bias)
{
  if (bad < TE)
    return moe_error(MOE_EDOM, "gate forward: logit %zu (token %zu, expert %zu) is %g", bad,
                     bad / (size_t)E, bad % (size_t)E, (double)logits[bad]);
  if (cfg->use_bias)
    for (int e = 0; e < E; e++)
      if (!isfinite(bias[e]))
        return moe_error(MOE_EDOM, "gate forward: bias[%d] is %g", e, (double)bias[e]);
  return MOE_OK;
}

int SFX(moe_gate_forward)(const moe_gate_config *cfg, int T, int E, int K, const REAL *logits,
                          const REAL *bias, REAL *scores, int *idx, REAL *weights)
{
  int rc = moe_gate_check(cfg, E, K);
  if (rc)
    return rc;
  MOE_CHECK_ARG(T >= 0, "gate forward: T=%d < 0", T);
  if (T == 0)
    return MOE_OK;
  MOE_CHECK_ARG(logits && scores && idx && weights, "gate forward: NULL buffer");
  MOE_CHECK_ARG(!cfg->use_bias || bias, "gate forward: use_bias set but bias is NULL");
  const size_t TE = (size_t)T * E;
  rc = SFX(moei_gate_finite)(cfg, E, logits, R_FIRST_NONFINITE(logits, TE), TE, bias);
  if (rc)
    return rc;
  SFX(moei_gate_rows)(cfg, 0, T, E, K, logits, bias, scores, idx, weights);
  return MOE_OK;
}

/* Backward, per token, through the three stages in reverse:
 *   weights → chosen scores v:  w_k = c·v_k/Z, Z = Σv + ε, so
 *       dv_j = c·(dw_j − Σ_k dw_k v_k / Z) / Z     (normalize)
 *       dv_j = c·dw_j                              (otherwise)
 *   v → s: scatter dv into the chosen experts' slots (others get 0);
 *   s → logits: softmax  dl = s ⊙ (ds − ⟨s, ds⟩)
 *               sigmoid  dl = ds ⊙ s(1 − s). */
int SFX(moe_gate_backward)(const moe_gate_config *cfg, int T, int E, int K, const REAL *scores,
                           const int *idx, const REAL *dweights, REAL *dlogits)
{
  int rc = moe_gate_check(cfg, E, K);
  if (rc)
    return rc;
  MOE_CHECK_ARG(T >= 0, "gate backward: T=%d < 0", T);
  if (T == 0)
    return MOE_OK;
  MOE_CHECK_ARG(scores && idx && dweights && dlogits, "gate backward: NULL buffer");
  const REAL c = (REAL)cfg->route_scale;
  for (int t = 0; t < T; t++) {
    const REAL *s = scores + (size_t)t * E;
    const int *ix = idx + (size_t)t * K;
    const REAL *dw = dweights + (size_t)t * K;
    REAL *dl = dlogits + (size_t)t * E;
    for (int k = 0; k < K; k++)
      MOE_CHECK_ARG(ix[k] >= 0 && ix[k] < E, "gate backward: idx[%d][%d]=%d out of [0,%d)", t, k,
                    ix[k], E);
    /* dl holds ds until the last stage. */
    memset(dl, 0, (size_t)E * sizeof *dl);
    if (cfg->normalize) {
      REAL z = 0, dot = 0;
      for (int k = 0; k < K; k++)
        z += s[ix[k]];
      z += (REAL)1e-20;
      for (int k = 0; k < K; k++)
        dot += dw[k] * s[ix[k]];
      dot /= z;
      for (int k = 0; k < K; k++)
        dl[ix[k]] = c * (dw[k] - dot) / z;
    } else {
      for (int k = 0; k < K; k++)
        dl[ix[k]] = c * dw[k];
    }
    if (cfg->score == MOE_SCORE_SOFTMAX) {
      REAL dot = 0;
      for (int e = 0; e < E; e++)
        dot += s[e] * dl[e];
      for (int e = 0; e < E; e++)
        dl[e] = s[e] * (dl[e] - dot);
    } else {
      for (int e = 0; e < E; e++)
        dl[e] = dl[e] * s[e] * (1 - s[e]);
    }
  }
  return MOE_OK;
}

int SFX(moe_gate_bias_update)(int T, int E, int K, const int *idx, double gamma, REAL *bias)
{
  MOE_CHECK_ARG(T >= 0 && E >= 1 && K >= 1 && K <= E, "bias update: T=%d E=%d K=%d", T, E, K);
  MOE_CHECK_ARG(bias && (idx || T == 0), "bias update: NULL buffer");
  MOE_CHECK_ARG(isfinite(gamma), "bias update: gamma=%g", gamma);
  int *load = malloc((size_t)E * sizeof *load);
  if (!load)
    return moe_error(MOE_ENOMEM, "bias update: E=%d", E);
  int rc = moe_gate_expert_counts(T, E, K, idx, load);
  if (rc == MOE_OK) {
    /* Compare load·E with T·K in integers: exact, so sign(0) really is 0. */
    long long mean_times_E = (long long)T * K;
    for (int e = 0; e < E; e++) {
      long long le = (long long)load[e] * E;
      if (le < mean_times_E)
        bias[e] += (REAL)gamma;
      else if (le > mean_times_E)
        bias[e] -= (REAL)gamma;
    }
  }
  free(load);
  return rc;
}
