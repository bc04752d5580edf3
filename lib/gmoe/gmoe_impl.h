/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_impl.h — helpers shared by gmoe.c, gmoe_em.c and gmoe_fit.c; not
 * installed. static inline so the E-step keeps them inlined. */
#ifndef MOE_GMOE_IMPL_H
#define MOE_GMOE_IMPL_H

#include <math.h>
#include <string.h>

#include "moe/gmoe.h"

#define LOG_2PI 1.8378770664093454836
#define LOG_HALF (-0.69314718055994530942)
#define MAXE_STACK 64

static inline double dot(const double *a, const double *b, int d)
{
  double s = 0;
  for (int k = 0; k < d; k++) s += a[k] * b[k];
  return s;
}

static inline double log_sigmoid(double u)
{
  return u >= 0 ? -log1p(exp(-u)) : u - log1p(exp(u));
}

/* Top-K selection on the slopes' scores v_j = β1_jᵀx (no bias), ties to
 * the lower index: sel[j] = 1 for chosen. E is small, so selection by
 * repeated max is fine. */
static inline void topk_select(int E, int K, const double *v, unsigned char *sel)
{
  for (int j = 0; j < E; j++) sel[j] = 0;
  for (int k = 0; k < K; k++) {
    int best = -1;
    for (int j = 0; j < E; j++)
      if (!sel[j] && (best < 0 || v[j] > v[best])) best = j;
    sel[best] = 1;
  }
}

/* Gate at one x: lg (E) log weights (−inf outside the top-K), g (E) the
 * weights, u (E) the logits β1ᵀx + β0. sel (E) receives the chosen set;
 * if fixsel is not NULL it is used instead of selecting (the gate M-step
 * holds the top-K set fixed inside its line searches). */
static inline void gate_log(moe_gmoe_gate gate, int topk, int D, int E, const double *beta0,
                     const double *beta1, const double *x, double *u, double *lg, double *g,
                     unsigned char *sel, const unsigned char *fixsel)
{
  for (int j = 0; j < E; j++) u[j] = dot(beta1 + (size_t)j * D, x, D);
  if (fixsel) memcpy(sel, fixsel, (size_t)E);
  else if (topk > 0 && topk < E) topk_select(E, topk, u, sel);
  else for (int j = 0; j < E; j++) sel[j] = 1;   /* (a loop: GCC misreads memset here once inlined) */
  for (int j = 0; j < E; j++) u[j] += beta0[j];
  if (gate == MOE_GMOE_SOFTMAX) {
    double mx = -INFINITY;
    for (int j = 0; j < E; j++) if (sel[j] && u[j] > mx) mx = u[j];
    double s = 0;
    for (int j = 0; j < E; j++) {
      g[j] = sel[j] ? exp(u[j] - mx) : 0.0;
      s += g[j];
    }
    double ls = mx + log(s), is = 1.0 / s;
    for (int j = 0; j < E; j++) {
      lg[j] = sel[j] ? u[j] - ls : -INFINITY;
      g[j] *= is;
    }
  } else {
    /* σ(u) and log σ(u) from one exp(−|u|) and one log1p */
    double s = 0;
    for (int j = 0; j < E; j++) {
      if (!sel[j]) { g[j] = 0; lg[j] = -INFINITY; continue; }
      double e = exp(-fabs(u[j])), l1 = log(1.0 + e);   /* e ∈ (0,1]: absolute error ~1e-16, and log is cheaper than log1p */
      g[j] = u[j] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      lg[j] = u[j] >= 0 ? -l1 : u[j] - l1;
      s += g[j];
    }
    double ls = log(s), is = 1.0 / s;
    for (int j = 0; j < E; j++) {
      if (!sel[j]) continue;
      lg[j] -= ls;
      g[j] *= is;
    }
  }
}

#endif
