/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_objective.c — the block objectives of the EM M-step (gmoe_em.c):
 * an expert's weighted squared error and the gate's weighted
 * log-likelihood over blocks of samples, with gradients and Hessian.
 * Shape letters: N samples, D input width, S shared (k1), E routed (k2),
 * C = S + E mixture components (shared first). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_blas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>

#include "internal.h"
#include "gmoe_impl.h"
#include "moe/error.h"
#include "moe/gmoe.h"
#include "vmath.h"

/* ---- M-step block objectives ------------------------------------------ */

/* Weighted squared error of a ReLU expert, p = ([b], w[D], a):
 * h = a relu(b + wᵀx). Returns (1/W) Σ w_n e_n², grad likewise. */
double moei_gmoe_relu_sse(int has_bias, int D, size_t n, const double *X, const double *Y,
                          const double *wt, double wsum, const double *p, double *grad)
{
  const double b = has_bias ? p[0] : 0.0;
  const double *w = p + has_bias;
  const double a = p[has_bias + D];
  double f = 0, ga = 0, gb = 0;
  double gw[64];
  double *gwp = D <= 64 ? gw : grad + has_bias;  /* accumulate in place for big D */
  for (int k = 0; k < D; k++) gwp[k] = 0;
  for (size_t t = 0; t < n; t++) {
    const double *x = X + t * D;
    double z = b;
    for (int k = 0; k < D; k++) z += w[k] * x[k];
    double act = z > 0 ? z : 0;
    double e = Y[t] - a * act;
    double we = wt[t] * e;
    f += we * e;
    if (grad) {
      ga -= we * act;
      if (z > 0) {
        double c = we * a;
        gb -= c;
        for (int k = 0; k < D; k++) gwp[k] -= c * x[k];
      }
    }
  }
  double s = 1.0 / wsum;
  if (grad) {
    if (has_bias) grad[0] = 2 * gb * s;
    for (int k = 0; k < D; k++) grad[has_bias + k] = 2 * gwp[k] * s;
    grad[has_bias + D] = 2 * ga * s;
  }
  return f * s;
}

double moe_gmoe_expert_objective(moe_gmoe_expert kind, int has_bias, int d, size_t n,
                                 const double *X, const double *Y, const double *w,
                                 const double *p, double *grad)
{
  double ws = 0;
  for (size_t t = 0; t < n; t++) ws += w[t];
  if (kind == MOE_GMOE_RELU) return moei_gmoe_relu_sse(has_bias, d, n, X, Y, w, ws, p, grad);
  /* linear, p = (b, w[D]) */
  double f = 0;
  if (grad) for (int k = 0; k <= d; k++) grad[k] = 0;
  for (size_t t = 0; t < n; t++) {
    double e = Y[t] - p[0] - dot(p + 1, X + t * d, d);
    f += w[t] * e * e;
    if (grad) {
      grad[0] -= 2 * w[t] * e;
      for (int k = 0; k < d; k++) grad[1 + k] -= 2 * w[t] * e * X[t * d + k];
    }
  }
  if (grad) for (int k = 0; k <= d; k++) grad[k] /= ws;
  return f / ws;
}

/* ---- the gate over blocks of samples --------------------------------- */

/* The gate at GATE_BLOCK samples at a time, in arrays of nb·E (row b is
 * sample b): u the logits β1ᵀx + β0, lg the log weights (−inf outside
 * the chosen set) and sg = σ(u) (normalised sigmoid) in the block's
 * scratch; the weights G, 1 − σ(u) as OM (normalised sigmoid; 1 outside
 * the set) and the chosen set SEL (fixsel's if given) in the caller's
 * arrays (the block's own, or the E-step's whole-sample ones). exp and log run through SLEEF's vector kernels
 * (vmath.h, 1.0 ULP), which is what makes the EM fast: the gate's
 * transcendental functions were three quarters of its time. */

void moei_gmoe_gate_blk_free(gate_blk *k)
{
  if (!k) return;
  free(k->u);
  free(k->sel);
  free(k);
}

gate_blk *moei_gmoe_gate_blk_alloc(int E)
{
  gate_blk *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  const size_t nE = (size_t)GATE_BLOCK * (size_t)E;
  k->u = malloc((6 * nE + 3 * (size_t)GATE_BLOCK) * sizeof(double));
  k->sel = malloc(nE);
  if (!k->u || !k->sel) { moei_gmoe_gate_blk_free(k); return NULL; }
  k->lg = k->u + nE; k->g = k->lg + nE; k->sg = k->g + nE; k->om = k->sg + nE; k->tmp = k->om + nE;
  k->s = k->tmp + nE; k->ls = k->s + GATE_BLOCK; k->mx = k->ls + GATE_BLOCK;
  return k;
}

void moei_gmoe_gate_block(moe_gmoe_gate gate, int topk, int D, int E, const double *b0, const double *b1,
                          const double *X, size_t nb, const unsigned char *fixsel, gate_blk *k, double *G, double *OM,
                          unsigned char *SEL)
{
  const size_t nE = nb * (size_t)E;
  double *U = k->u, *LG = k->lg, *T = k->tmp;
  for (size_t b = 0; b < nb; b++) {
    const double *x = X + b * D;
    double *u = U + b * E;
    unsigned char *sel = SEL + b * E;
    for (int j = 0; j < E; j++) u[j] = dot(b1 + (size_t)j * D, x, D);
    if (fixsel) memcpy(sel, fixsel + b * E, (size_t)E);
    else if (topk > 0 && topk < E) topk_select(E, topk, u, sel);
    else for (int j = 0; j < E; j++) sel[j] = 1;
    for (int j = 0; j < E; j++) u[j] += b0[j];
  }
  if (gate == MOE_GMOE_SOFTMAX) {
    for (size_t b = 0; b < nb; b++) {
      const double *u = U + b * E;
      const unsigned char *sel = SEL + b * E;
      double mx = -INFINITY;
      for (int j = 0; j < E; j++) if (sel[j] && u[j] > mx) mx = u[j];
      k->mx[b] = mx;
      for (int j = 0; j < E; j++) T[b * E + j] = sel[j] ? u[j] - mx : -800.0;   /* exp(-800) = 0 */
    }
    moei_vexp_f64(nE, T, G);
    for (size_t b = 0; b < nb; b++) {
      double s = 0, *g = G + b * E;
      for (int j = 0; j < E; j++) s += g[j];
      k->s[b] = s;
    }
    moei_vlog_f64(nb, k->s, k->ls);
    for (size_t b = 0; b < nb; b++) {
      const double ls = k->mx[b] + k->ls[b], is = 1.0 / k->s[b];
      const unsigned char *sel = SEL + b * E;
      for (int j = 0; j < E; j++) {
        LG[b * E + j] = sel[j] ? U[b * E + j] - ls : -INFINITY;
        G[b * E + j] = sel[j] ? G[b * E + j] * is : 0.0;
      }
    }
    return;
  }
  /* σ(u) and log σ(u) from e = exp(−|u|) and log(1 + e) (e ∈ (0, 1]:
   * absolute error ~1e-16) */
  double *EX = OM, *SG = k->sg;   /* OM holds exp(−|u|) until it is overwritten element by element */
  for (size_t i = 0; i < nE; i++) T[i] = -fabs(U[i]);
  moei_vexp_f64(nE, T, EX);
  for (size_t i = 0; i < nE; i++) T[i] = 1.0 + EX[i];
  moei_vlog_f64(nE, T, LG);
  for (size_t i = 0; i < nE; i++) {   /* branch-free, so that it vectorises */
    const double inv = 1.0 / T[i], e = EX[i];
    const int pos = U[i] >= 0, on = SEL[i] != 0;
    const double sg = (pos ? 1.0 : e) * inv, om = (pos ? e : 1.0) * inv, lg = (pos ? 0.0 : U[i]) - LG[i];
    SG[i] = on ? sg : 0.0;
    OM[i] = on ? om : 1.0;
    LG[i] = on ? lg : -INFINITY;
  }
  for (size_t b = 0; b < nb; b++) {
    double s = 0;
    for (int j = 0; j < E; j++) s += SG[b * E + j];
    k->s[b] = s;
  }
  moei_vlog_f64(nb, k->s, k->ls);
  for (size_t b = 0; b < nb; b++) {
    const double ls = k->ls[b], is = 1.0 / k->s[b];
    for (int j = 0; j < E; j++) {
      const size_t i = b * E + j;
      LG[i] -= ls;          /* −inf stays −inf */
      G[i] = SG[i] * is;    /* 0 outside the set */
    }
  }
}

/* Gate objective -(1/N) Σ_n Σ_j R_nj log g_j, with R rows of stride ldr.
 * beta = (β0[E], β1[E, D]); grad in the same packing (may be NULL).
 * fixsel (N, E) or NULL: a top-K set held fixed. k: block scratch. */
double moei_gmoe_gate_obj(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                          const double *R, size_t ldr, const double *beta, double *grad, gate_blk *k,
                          const unsigned char *fixsel)
{
  const double *b0 = beta, *b1 = beta + E;
  double f = 0;
  if (grad) for (int q = 0; q < E * (D + 1); q++) grad[q] = 0;
  for (size_t t0 = 0; t0 < n; t0 += GATE_BLOCK) {
    const size_t nb = n - t0 < GATE_BLOCK ? n - t0 : GATE_BLOCK;
    moei_gmoe_gate_block(gate, topk, D, E, b0, b1, X + t0 * D, nb, fixsel ? fixsel + t0 * E : NULL, k, k->g, k->om, k->sel);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = X + t * D, *r = R + t * ldr;
      const double *lg = k->lg + b * E, *g = k->g + b * E, *om = k->om + b * E;
      const unsigned char *sel = k->sel + b * E;
      double rs = 0;
      for (int j = 0; j < E; j++) {
        rs += r[j];
        if (r[j] > 0) f -= r[j] * lg[j];   /* r = 0 outside the chosen set */
      }
      if (!grad) continue;
      for (int j = 0; j < E; j++) {
        if (!sel[j]) continue;
        /* d(-Σ r log g)/du_j: softmax  -(r_j - rs g_j);
         * normalised sigmoid -(1 - σ(u_j)) (r_j - rs g_j). */
        double c = -(r[j] - rs * g[j]);
        if (gate == MOE_GMOE_NSIGMOID) c *= om[j];
        grad[j] += c;
        double *gw = grad + E + (size_t)j * D;
        for (int q = 0; q < D; q++) gw[q] += c * x[q];
      }
    }
  }
  double s = 1.0 / (double)n;
  if (grad) for (int q = 0; q < E * (D + 1); q++) grad[q] *= s;
  return f * s;
}

/* The same objective with its gradient and Hessian H (P, P), P = E(D+1),
 * in one pass. Per point, with x̃ = (1, x) and R = Σ_j r_j, the second
 * derivatives in the logits u are
 *   softmax:             h_jk = R (δ_jk g_j − g_j g_k)
 *   normalised sigmoid:  h_jk = δ_jk p_j (r_j + R (1 − 2σ_j)/S) − R p_j p_k / S²
 * with p_j = σ_j (1 − σ_j), S = Σ σ; the block (j, k) of H is Σ h_jk x̃ x̃ᵀ.
 * Scratch: k (blocks), hu (E, E). */
double moei_gmoe_gate_obj_hess(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                               const double *R, size_t ldr, const double *beta, double *grad, double *H,
                               gate_blk *k, double *hu, const unsigned char *fixsel)
{
  const double *b0 = beta, *b1 = beta + E;
  const int P = E * (D + 1), D1 = D + 1;
  double f = 0;
  double xt[65];
  memset(grad, 0, (size_t)P * sizeof *grad);
  memset(H, 0, (size_t)P * P * sizeof *H);
  for (size_t t0 = 0; t0 < n; t0 += GATE_BLOCK) {
    const size_t nb = n - t0 < GATE_BLOCK ? n - t0 : GATE_BLOCK;
    moei_gmoe_gate_block(gate, topk, D, E, b0, b1, X + t0 * D, nb, fixsel ? fixsel + t0 * E : NULL, k, k->g, k->om, k->sel);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = X + t * D, *r = R + t * ldr;
      const double *lg = k->lg + b * E, *g = k->g + b * E, *sg = k->sg + b * E, *om = k->om + b * E;
      const unsigned char *sel = k->sel + b * E;
      double rs = 0;
      for (int j = 0; j < E; j++) {
        rs += r[j];
        if (r[j] > 0) f -= r[j] * lg[j];
      }
      xt[0] = 1;
      for (int q = 0; q < D; q++) xt[1 + q] = x[q];
      if (gate == MOE_GMOE_SOFTMAX) {
        for (int j = 0; j < E; j++) {
          if (!sel[j]) continue;
          double c = -(r[j] - rs * g[j]);
          grad[j] += c;
          for (int q = 0; q < D; q++) grad[E + j * D + q] += c * x[q];
          for (int l = 0; l < E; l++) hu[j * E + l] = sel[l] ? rs * ((j == l) * g[j] - g[j] * g[l]) : 0;
        }
      } else {
        double S = 0, pj[64];
        for (int j = 0; j < E; j++) {
          pj[j] = sg[j] * om[j];
          S += sg[j];
        }
        for (int j = 0; j < E; j++) {
          if (!sel[j]) continue;
          double c = -om[j] * (r[j] - rs * g[j]);
          grad[j] += c;
          for (int q = 0; q < D; q++) grad[E + j * D + q] += c * x[q];
          for (int l = 0; l < E; l++)
            hu[j * E + l] = sel[l] ? (j == l) * pj[j] * (r[j] + rs * (om[j] - sg[j]) / S) - rs * pj[j] * pj[l] / (S * S)
                                   : 0;
        }
      }
      for (int j = 0; j < E; j++) {
        if (!sel[j]) continue;
        for (int l = 0; l < E; l++) {
          double h = hu[j * E + l];
          if (h == 0 || !sel[l]) continue;
          for (int a = 0; a < D1; a++) {
            int pa = a == 0 ? j : E + j * D + a - 1;
            double ha = h * xt[a];
            double *row = H + (size_t)pa * P;
            for (int c = 0; c < D1; c++) row[c == 0 ? l : E + l * D + c - 1] += ha * xt[c];
          }
        }
      }
    }
  }
  double s = 1.0 / (double)n;
  for (int q = 0; q < P; q++) grad[q] *= s;
  for (int q = 0; q < P * P; q++) H[q] *= s;
  return f * s;
}

int moe_gmoe_gate_hessian(const moe_gmoe *m, size_t n, const double *X, const double *R, const double *beta,
                          double *grad, double *H, double *f)
{
  MOE_CHECK_ARG(m && X && R && beta && grad && H && n >= 1, "gmoe_gate_hessian: bad argument");
  MOE_CHECK_ARG(m->k2 <= 64 && m->d <= 64, "gmoe_gate_hessian: at most 64 routed experts and 64 inputs");
  int E = m->k2;
  double *hu = malloc((size_t)E * E * sizeof *hu);
  gate_blk *k = moei_gmoe_gate_blk_alloc(E);
  if (!hu || !k) { free(hu); moei_gmoe_gate_blk_free(k); return moe_error(MOE_ENOMEM, "gmoe_gate_hessian: no memory"); }
  double v = moei_gmoe_gate_obj_hess(m->gate, m->topk, m->d, E, n, X, R, (size_t)E, beta, grad, H, k, hu, NULL);
  if (f) *f = v;
  free(hu);
  moei_gmoe_gate_blk_free(k);
  return MOE_OK;
}

double moe_gmoe_gate_objective(const moe_gmoe *m, size_t n, const double *X, const double *R,
                               const double *beta, double *grad)
{
  gate_blk *k = moei_gmoe_gate_blk_alloc(m->k2);
  if (!k) return NAN;
  double f = moei_gmoe_gate_obj(m->gate, m->topk, m->d, m->k2, n, X, R, (size_t)m->k2, beta, grad, k, NULL);
  moei_gmoe_gate_blk_free(k);
  return f;
}
