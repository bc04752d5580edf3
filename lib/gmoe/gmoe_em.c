/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_em.c — the maximum-likelihood fit of a Gaussian MoE by generalised
 * EM: the M-step block objectives (with their gradients and Hessian), the
 * EM workspace, one E+M iteration and the stopping test.
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
static double relu_sse(int has_bias, int D, size_t n, const double *X, const double *Y,
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
  if (kind == MOE_GMOE_RELU) return relu_sse(has_bias, d, n, X, Y, w, ws, p, grad);
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
enum { GATE_BLOCK = 256 };
typedef struct {
  double *u, *lg, *g, *sg, *om, *tmp;  /* (GATE_BLOCK, E) each */
  double *s, *ls, *mx;                  /* (GATE_BLOCK) */
  unsigned char *sel;                   /* (GATE_BLOCK, E) */
} gate_blk;

static void gate_blk_free(gate_blk *k)
{
  if (!k) return;
  free(k->u);
  free(k->sel);
  free(k);
}

static gate_blk *gate_blk_alloc(int E)
{
  gate_blk *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  const size_t nE = (size_t)GATE_BLOCK * (size_t)E;
  k->u = malloc((6 * nE + 3 * (size_t)GATE_BLOCK) * sizeof(double));
  k->sel = malloc(nE);
  if (!k->u || !k->sel) { gate_blk_free(k); return NULL; }
  k->lg = k->u + nE; k->g = k->lg + nE; k->sg = k->g + nE; k->om = k->sg + nE; k->tmp = k->om + nE;
  k->s = k->tmp + nE; k->ls = k->s + GATE_BLOCK; k->mx = k->ls + GATE_BLOCK;
  return k;
}

static void gate_block(moe_gmoe_gate gate, int topk, int D, int E, const double *b0, const double *b1,
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
static double gate_obj(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                       const double *R, size_t ldr, const double *beta, double *grad, gate_blk *k,
                       const unsigned char *fixsel)
{
  const double *b0 = beta, *b1 = beta + E;
  double f = 0;
  if (grad) for (int q = 0; q < E * (D + 1); q++) grad[q] = 0;
  for (size_t t0 = 0; t0 < n; t0 += GATE_BLOCK) {
    const size_t nb = n - t0 < GATE_BLOCK ? n - t0 : GATE_BLOCK;
    gate_block(gate, topk, D, E, b0, b1, X + t0 * D, nb, fixsel ? fixsel + t0 * E : NULL, k, k->g, k->om, k->sel);
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
static double gate_obj_hess(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
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
    gate_block(gate, topk, D, E, b0, b1, X + t0 * D, nb, fixsel ? fixsel + t0 * E : NULL, k, k->g, k->om, k->sel);
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
  gate_blk *k = gate_blk_alloc(E);
  if (!hu || !k) { free(hu); gate_blk_free(k); return moe_error(MOE_ENOMEM, "gmoe_gate_hessian: no memory"); }
  double v = gate_obj_hess(m->gate, m->topk, m->d, E, n, X, R, (size_t)E, beta, grad, H, k, hu, NULL);
  if (f) *f = v;
  free(hu);
  gate_blk_free(k);
  return MOE_OK;
}

double moe_gmoe_gate_objective(const moe_gmoe *m, size_t n, const double *X, const double *R,
                               const double *beta, double *grad)
{
  gate_blk *k = gate_blk_alloc(m->k2);
  if (!k) return NAN;
  double f = gate_obj(m->gate, m->topk, m->d, m->k2, n, X, R, (size_t)m->k2, beta, grad, k, NULL);
  gate_blk_free(k);
  return f;
}

/* ---- EM workspace ----------------------------------------------------- */

struct moe_gmoe_em {
  int D, S, E, C;
  size_t nmax, n;
  moe_gmoe *m;                 /* the model being fitted (not owned) */
  const double *X, *Y;         /* (N, D), (N) */
  double *R;                   /* (N, C) responsibilities */
  double *wcol;                /* (N) one component's weights */
  double *u, *lc;              /* (E), (C) scratch */
  unsigned char *selfix;       /* (N, E) top-K sets held during the gate M-step */
  double *mass;                /* (C) responsibility mass per component */
  double ll, ll_prev;
  int iter;
  int inner_iter;
  double var_floor;
  gsl_multimin_fdfminimizer *min_shared, *min_routed, *min_gate;
  gsl_vector *v_shared, *v_routed, *v_gate;
  int gate_bfgs;               /* 1: BFGS for the gate; 0: Newton (default) */
  double *gH, *gG, *gD, *hu;   /* Newton: (P, P), (P), (P), (E, E) */
  double *gH2, *gG2;           /* Newton: the trial point's (P, P), (P) */
  double *gcb, *gcg;           /* gate BFGS: the last point and its gradient (P) each */
  gate_blk *blk;               /* the gate over blocks of samples */
  double *sv;                  /* (GATE_BLOCK, nparams) per-sample scores */
  double *gall, *omall;        /* (N, E) the last E-step's gate g and 1 − σ */
  unsigned char *selall;       /* (N, E) its chosen sets */
  int second_order;            /* polish: LM and Newton before BFGS (default 1) */
  gsl_matrix *evec;            /* (P, P) */
  gsl_vector *eval;            /* (P) */
  gsl_eigen_symmv_workspace *eig;
  int expert_bfgs;             /* 1: BFGS for ReLU experts; 0: Gauss-Newton (default) */
  gsl_matrix *evec_x;          /* (D+2, D+2) expert Gauss-Newton */
  gsl_vector *eval_x;
  gsl_eigen_symmv_workspace *eig_x;
};

static void em_free_minimizers(moe_gmoe_em *w)
{
  if (w->min_shared) gsl_multimin_fdfminimizer_free(w->min_shared);
  if (w->min_routed) gsl_multimin_fdfminimizer_free(w->min_routed);
  if (w->min_gate) gsl_multimin_fdfminimizer_free(w->min_gate);
  if (w->v_shared) gsl_vector_free(w->v_shared);
  if (w->v_routed) gsl_vector_free(w->v_routed);
  if (w->v_gate) gsl_vector_free(w->v_gate);
  if (w->evec) gsl_matrix_free(w->evec);
  if (w->eval) gsl_vector_free(w->eval);
  if (w->eig) gsl_eigen_symmv_free(w->eig);
  free(w->gH);
  free(w->gH2);
  gate_blk_free(w->blk);
  free(w->sv);
  moei_free_aligned(w->gall);
  moei_free_aligned(w->omall);
  free(w->selall);
  if (w->evec_x) gsl_matrix_free(w->evec_x);
  if (w->eval_x) gsl_vector_free(w->eval_x);
  if (w->eig_x) gsl_eigen_symmv_free(w->eig_x);
}

void moe_gmoe_em_free(moe_gmoe_em *w)
{
  if (!w) return;
  em_free_minimizers(w);
  moei_free_aligned(w->R);
  moei_free_aligned(w->wcol);
  free(w->u);
  free(w->selfix);
  free(w);
}

moe_gmoe_em *moe_gmoe_em_alloc(const moe_gmoe *shape, size_t nmax)
{
  if (!shape || nmax < 1) {
    moe_error(MOE_EINVAL, "gmoe_em_alloc: need a model and nmax >= 1");
    return NULL;
  }
  moe_gmoe_em *w = calloc(1, sizeof *w);
  if (!w) { moe_error(MOE_ENOMEM, "gmoe_em_alloc: no memory"); return NULL; }
  w->D = shape->d; w->S = shape->k1; w->E = shape->k2; w->C = w->S + w->E;
  w->nmax = nmax;
  w->inner_iter = 1;
  w->second_order = 1;
  w->var_floor = 1e-6;
  size_t nC = 0, nE = 0; /* nmax·C responsibilities, nmax·E chosen flags: checked, no wrap */
  int fits = moei_mul(nmax, (size_t)w->C, &nC) && moei_mul(nmax, (size_t)w->E, &nE);
  w->R = fits ? moei_alloc_array(nC, sizeof(double)) : NULL;
  w->wcol = moei_alloc_array(nmax, sizeof(double));
  w->u = malloc((size_t)(w->E + 2 * w->C) * sizeof(double));
  w->selfix = shape->topk > 0 && fits ? malloc(nE) : NULL;
  w->gall = fits ? moei_alloc_array(nE, sizeof(double)) : NULL;
  w->omall = fits ? moei_alloc_array(nE, sizeof(double)) : NULL;
  w->selall = fits ? malloc(nE) : NULL;
  int ds = w->D + 2, dr = w->D + 1, dg = w->E * (w->D + 1);
  const gsl_multimin_fdfminimizer_type *T = gsl_multimin_fdfminimizer_vector_bfgs2;
  moei_gsl_enter(); /* GSL's allocators report failure through the handler */
  w->min_shared = gsl_multimin_fdfminimizer_alloc(T, (size_t)ds);
  w->min_routed = gsl_multimin_fdfminimizer_alloc(T, (size_t)dr);
  w->min_gate = gsl_multimin_fdfminimizer_alloc(T, (size_t)dg);
  w->v_shared = gsl_vector_alloc((size_t)ds);
  w->v_routed = gsl_vector_alloc((size_t)dr);
  w->v_gate = gsl_vector_alloc((size_t)dg);
  w->gH = malloc(((size_t)dg * dg + 2 * (size_t)dg + (size_t)w->E * w->E) * sizeof(double));
  w->gH2 = malloc(((size_t)dg * dg + 3 * (size_t)dg) * sizeof(double));
  w->blk = gate_blk_alloc(w->E);
  w->sv = malloc((size_t)GATE_BLOCK * (size_t)(w->S * (w->D + 4) + w->E * (2 * w->D + 3)) * sizeof(double));
  w->evec = gsl_matrix_alloc((size_t)dg, (size_t)dg);
  w->eval = gsl_vector_alloc((size_t)dg);
  w->eig = gsl_eigen_symmv_alloc((size_t)dg);
  w->evec_x = gsl_matrix_alloc((size_t)ds, (size_t)ds);
  w->eval_x = gsl_vector_alloc((size_t)ds);
  w->eig_x = gsl_eigen_symmv_alloc((size_t)ds);
  moei_gsl_leave();
  if (!w->R || !w->wcol || !w->u || (shape->topk > 0 && !w->selfix) || !w->min_shared || !w->min_routed ||
      !w->min_gate || !w->v_shared || !w->v_routed || !w->v_gate || !w->gH || !w->gH2 || !w->blk || !w->sv || !w->gall || !w->omall || !w->selall || !w->evec || !w->eval || !w->eig ||
      !w->evec_x || !w->eval_x || !w->eig_x ||
      w->E > 64 || w->D > 64) {
    moe_gmoe_em_free(w);
    moe_error(MOE_ENOMEM, "gmoe_em_alloc: no memory for n=%zu", nmax);
    return NULL;
  }
  w->lc = w->u + w->E;
  w->mass = w->lc + w->C;
  w->gG = w->gH + (size_t)dg * dg;
  w->gD = w->gG + dg;
  w->hu = w->gD + dg;
  w->gG2 = w->gH2 + (size_t)dg * dg;
  w->gcb = w->gG2 + dg;
  w->gcg = w->gcb + dg;
  return w;
}

void moe_gmoe_em_set_polish(moe_gmoe_em *w, int second_order) { w->second_order = second_order != 0; }
void moe_gmoe_em_set_gate_solver(moe_gmoe_em *w, int use_bfgs) { w->gate_bfgs = use_bfgs != 0; }
void moe_gmoe_em_set_expert_solver(moe_gmoe_em *w, int use_bfgs) { w->expert_bfgs = use_bfgs != 0; }

void moe_gmoe_em_set_inner(moe_gmoe_em *w, int inner_iter, double var_floor)
{
  if (inner_iter >= 1) w->inner_iter = inner_iter;
  if (var_floor > 0) w->var_floor = var_floor;
}

/* E-step: responsibilities R at the current parameters and ℓ (mean). */
static int em_estep(moe_gmoe_em *w)
{
  const moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C;
  double cs[64], is[64];   /* per-component constants, small C fast path */
  double *cst = C <= 64 ? cs : malloc(2 * (size_t)C * sizeof *cst);
  if (!cst) return moe_error(MOE_ENOMEM, "gmoe_em: no memory");
  double *inv = C <= 64 ? is : cst + C;
  for (int i = 0; i < S; i++) {
    cst[i] = LOG_HALF + log(m->omega[i]) - 0.5 * (LOG_2PI + log(m->tau[i]));
    inv[i] = 0.5 / m->tau[i];
  }
  for (int j = 0; j < E; j++) {
    cst[S + j] = LOG_HALF - 0.5 * (LOG_2PI + log(m->nu[j]));
    inv[S + j] = 0.5 / m->nu[j];
  }
  double *lc = w->lc;
  double ll = 0;
  /* Blocks of B samples: the log-components shifted by their row max go
   * into R, then exp over the block and log of the row sums run through
   * SLEEF's vector kernels (lib/vmath.h: u10, 1.0 ULP documented). ℓ is
   * still summed sample by sample in order. */
  enum { B = GATE_BLOCK };
  double mxb[B], sb[B];
  for (size_t t0 = 0; t0 < w->n; t0 += B) {
    const size_t nb = w->n - t0 < B ? w->n - t0 : B;
    /* the gate values go straight to gall, omall, selall: em_grad and
     * em_hess, which run at this same point, read them there */
    gate_block(m->gate, m->topk, D, E, m->beta0, m->beta1, w->X + t0 * D, nb, NULL, w->blk, w->gall + t0 * E,
               w->omall + t0 * E, w->selall + t0 * E);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = w->X + t * D;
      const double y = w->Y[t];
      double mx = -INFINITY;
      for (int i = 0; i < S; i++) {
        double e = y - moe_gmoe_shared_mean(m, i, x);
        lc[i] = cst[i] - e * e * inv[i];
        if (lc[i] > mx) mx = lc[i];
      }
      const double *lg = w->blk->lg + b * E;
      for (int j = 0; j < E; j++) {
        double e = y - moe_gmoe_routed_mean(m, j, x);
        lc[S + j] = cst[S + j] + lg[j] - e * e * inv[S + j];
        if (lc[S + j] > mx) mx = lc[S + j];
      }
      double *r = w->R + t * C;
      for (int c = 0; c < C; c++) r[c] = lc[c] - mx;
      mxb[b] = mx;
    }
    double *rb = w->R + t0 * C;
    moei_vexp_f64(nb * (size_t)C, rb, rb);
    for (size_t b = 0; b < nb; b++) {
      double *r = rb + b * C, s = 0;
      for (int c = 0; c < C; c++) s += r[c];
      double is_ = 1.0 / s;
      for (int c = 0; c < C; c++) r[c] *= is_;
      sb[b] = s;
    }
    moei_vlog_f64(nb, sb, sb);
    for (size_t b = 0; b < nb; b++) ll += mxb[b] + sb[b];
  }
  if (C > 64) free(cst);
  ll /= (double)w->n;
  if (!isfinite(ll)) return moe_error(MOE_EDOM, "gmoe_em: non-finite log-likelihood at iteration %d", w->iter);
  w->ll = ll;
  return MOE_OK;
}

int moe_gmoe_em_init(moe_gmoe_em *w, moe_gmoe *m, size_t n, const double *X, const double *Y)
{
  MOE_CHECK_ARG(w && m && X && Y, "gmoe_em_init: NULL argument");
  MOE_CHECK_ARG(n >= 1 && n <= w->nmax, "gmoe_em_init: n=%zu not in 1..%zu", n, w->nmax);
  MOE_CHECK_ARG(m->d == w->D && m->k1 == w->S && m->k2 == w->E,
                "gmoe_em_init: model shape (d,k1,k2)=(%d,%d,%d) differs from the workspace's (%d,%d,%d)",
                m->d, m->k1, m->k2, w->D, w->S, w->E);
  int rc = moe_gmoe_validate(m);
  if (rc) return rc;
  w->m = m; w->n = n; w->X = X; w->Y = Y;
  w->iter = 0;
  w->ll_prev = NAN;
  return em_estep(w);
}

/* BFGS on one ReLU expert's weighted SSE. */
typedef struct {
  int has_bias, D;
  size_t n;
  const double *X, *Y, *wt;
  double wsum;
} relu_ctx;

static double relu_f(const gsl_vector *v, void *p)
{
  relu_ctx *c = p;
  double f = relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, NULL);
  return isfinite(f) ? f : GSL_POSINF;
}
static void relu_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  relu_ctx *c = p;
  relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, g->data);
}
static void relu_fdf(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  relu_ctx *c = p;
  *f = relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, g->data);
}

/* Run at most `iters` BFGS iterations from v; on return v holds the best
 * point seen if it improved on f0, else is unchanged. Returns new f. */
static double bfgs_improve(gsl_multimin_fdfminimizer *s, gsl_multimin_function_fdf *fn, gsl_vector *v,
                           double f0, int iters)
{
  moei_gsl_enter(); /* line searches may report through the handler */
  double step = 0.1 * (1.0 + gsl_blas_dnrm2(v));
  if (step > 1.0) step = 1.0;
  int set = gsl_multimin_fdfminimizer_set(s, fn, v, step, 0.1);
  for (int it = 0; !set && it < iters; it++) {
    if (gsl_multimin_fdfminimizer_iterate(s)) break;
    if (gsl_multimin_test_gradient(s->gradient, 1e-10) == GSL_SUCCESS) break;
  }
  moei_gsl_leave();
  if (set) return f0; /* s holds nothing from this start */
  double f1 = s->f;
  if (isfinite(f1) && f1 < f0) {
    gsl_vector_memcpy(v, s->x);
    return f1;
  }
  return f0;
}

/* Weighted least squares for a linear expert h = b + wᵀx: solve the
 * normal equations [Σ w x̃ x̃ᵀ] θ = Σ w x̃ y with x̃ = (1, x) by Cholesky
 * (a relative ridge of 1e-12 keeps them positive definite when the weights
 * concentrate on fewer than D+1 points). */
static int wls_linear(int D, size_t n, const double *X, const double *Y, const double *wt,
                      double *theta)
{
  const int P = D + 1;
  double Abuf[17 * 17], bbuf[17];
  double *A = P <= 17 ? Abuf : malloc((size_t)P * (P + 1) * sizeof *A);   /* (P, P) */
  if (!A) return moe_error(MOE_ENOMEM, "gmoe_em: no memory");
  double *b = P <= 17 ? bbuf : A + (size_t)P * P;                         /* (P) */
  memset(A, 0, (size_t)P * P * sizeof *A);
  memset(b, 0, (size_t)P * sizeof *b);
  for (size_t t = 0; t < n; t++) {
    const double *x = X + t * D;
    const double wv = wt[t];
    A[0] += wv;
    b[0] += wv * Y[t];
    for (int k = 0; k < D; k++) {
      const double wx = wv * x[k];
      A[k + 1] += wx;                                   /* row 0 */
      b[k + 1] += wx * Y[t];
      for (int l = 0; l <= k; l++) A[(size_t)(k + 1) * P + l + 1] += wx * x[l];   /* lower */
    }
  }
  for (int k = 1; k < P; k++) A[(size_t)k * P] = A[k];           /* column 0 */
  for (int k = 1; k < P; k++)
    for (int l = k + 1; l < P; l++) A[(size_t)k * P + l] = A[(size_t)l * P + k];
  double tr = 0;
  for (int k = 0; k < P; k++) tr += A[(size_t)k * P + k];
  /* The ridge (1e-10 of the trace) keeps the matrix positive definite well
   * above rounding, so GSL's Cholesky never reports (and never aborts). */
  for (int k = 0; k < P; k++) A[(size_t)k * P + k] += 1e-10 * tr + 1e-300;
  int st = MOE_EDOM;
  if (isfinite(tr) && tr > 0) {
    gsl_matrix_view Am = gsl_matrix_view_array(A, (size_t)P, (size_t)P);
    gsl_vector_view bv = gsl_vector_view_array(b, (size_t)P);
    gsl_vector_view tv = gsl_vector_view_array(theta, (size_t)P);
    moei_gsl_enter(); /* a matrix that is not positive definite is GSL_EDOM */
    st = gsl_linalg_cholesky_decomp1(&Am.matrix);
    if (!st) st = gsl_linalg_cholesky_solve(&Am.matrix, &bv.vector, &tv.vector);
    moei_gsl_leave();
  }
  if (P > 17) free(A);
  return st ? MOE_EDOM : MOE_OK;
}

/* Gate BFGS context: the routed responsibilities (columns S.. of R) and, for top-K
 * gates, the chosen sets at the start of the M-step (fixsel); and the
 * last point evaluated with its objective and gradient (cached: valid
 * within one M-step, where R and fixsel do not change). */
typedef struct {
  moe_gmoe_em *w;
  const unsigned char *fixsel;
  int cached;   /* w->gcb, w->gcg and cf hold a point, its gradient and objective */
  double cf;
} gate_ctx;

/* The objective and its gradient at β, always both: GSL's line search
 * asks for f at a trial point and then, mostly, for ∇f at the same point;
 * the gradient costs little beside the gate's exp and log, a second pass
 * over the data a whole evaluation. Same values as evaluating each apart. */
static double gate_eval_obj(gate_ctx *c, const double *beta, double *grad)
{
  moe_gmoe_em *w = c->w;
  const size_t P = (size_t)w->E * (size_t)(w->D + 1);
  if (!c->cached || memcmp(beta, w->gcb, P * sizeof *beta)) {
    c->cf = gate_obj(w->m->gate, w->m->topk, w->D, w->E, w->n, w->X, w->R + w->S, (size_t)w->C, beta, w->gcg,
                     w->blk, c->fixsel);
    memcpy(w->gcb, beta, P * sizeof *beta);
    c->cached = 1;
  }
  if (grad) memcpy(grad, w->gcg, P * sizeof *grad);
  return c->cf;
}
static double gate_f(const gsl_vector *v, void *p)
{
  double f = gate_eval_obj(p, v->data, NULL);
  return isfinite(f) ? f : GSL_POSINF;
}
static void gate_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  gate_eval_obj(p, v->data, g->data);
}
static void gate_fdf(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  *f = gate_eval_obj(p, v->data, g->data);
  if (!isfinite(*f)) *f = GSL_POSINF;
}

/* step = −H⁺ g with H's eigenvalues replaced by max(|λ|, 1e-10 max|λ|):
 * a descent direction for any symmetric H (GSL's eigensolver never calls
 * the error handler on a symmetric matrix). H is destroyed. Returns 0 on
 * success. */
static int modified_newton_step(int P, double *H, const double *g, double *step, gsl_matrix *evec, gsl_vector *eval,
                                gsl_eigen_symmv_workspace *eig)
{
  /* GSL's symmetric QR iteration has no iteration limit: it never ends on
   * a non-finite matrix, nor (seen on a saturated softmax gate, whose
   * whole Hessian was ~1e-318, subnormal) when entries are so small that
   * its relative chop test underflows. Refuse both (the callers then fall
   * back to BFGS); flush entries 250 orders of magnitude below the
   * largest (they cannot change the floored step). */
  double hmax = 0;
  for (size_t q = 0; q < (size_t)P * P; q++) {
    if (!isfinite(H[q])) return 1;
    hmax = fmax(hmax, fabs(H[q]));
  }
  for (int q = 0; q < P; q++) if (!isfinite(g[q])) return 1;
  if (!(hmax > 1e-200)) return 1;
  for (size_t q = 0; q < (size_t)P * P; q++) if (fabs(H[q]) < 1e-250 * hmax) H[q] = 0;
  gsl_matrix_view Hm = gsl_matrix_view_array(H, (size_t)P, (size_t)P);
  moei_gsl_enter();
  int est = gsl_eigen_symmv(&Hm.matrix, eval, evec, eig);
  moei_gsl_leave();
  if (est) return 1;
  double lmax = 0;
  for (int q = 0; q < P; q++) lmax = fmax(lmax, fabs(eval->data[q]));
  if (!(lmax > 0) || !isfinite(lmax)) return 1;
  const double floor_ = 1e-10 * lmax;
  for (int a = 0; a < P; a++) step[a] = 0;
  for (int q = 0; q < P; q++) {
    double pr = 0;
    for (int a = 0; a < P; a++) pr += gsl_matrix_get(evec, (size_t)a, (size_t)q) * g[a];
    pr /= fmax(fabs(eval->data[q]), floor_);
    for (int a = 0; a < P; a++) step[a] -= pr * gsl_matrix_get(evec, (size_t)a, (size_t)q);
  }
  return 0;
}

/* Gauss-Newton for one ReLU expert's weighted squared error, p = ([b],
 * w[D], a), h = a relu(b + wᵀx): J = (a 1[z>0], a 1[z>0] x, relu z);
 * one pass forms JᵀWJ and JᵀWe, the step is solved as above, step
 * halving accepts only decreases. p updated in place; returns the SSE. */
static double relu_gauss_newton(moe_gmoe_em *w, int has_bias, double *p, double wsum, double f0)
{
  const int D = w->D, P = has_bias + D + 1;
  const size_t n = w->n;
  double M[66 * 66], gv[66], st[66], tr[66], J[66];
  double f = f0;
  for (int it = 0; it < w->inner_iter; it++) {
    memset(M, 0, sizeof(double) * (size_t)P * P);
    memset(gv, 0, sizeof(double) * (size_t)P);
    const double b = has_bias ? p[0] : 0.0, a = p[has_bias + D];
    const double *wv = p + has_bias;
    for (size_t t = 0; t < n; t++) {
      const double *x = w->X + t * D;
      double z = b;
      for (int k = 0; k < D; k++) z += wv[k] * x[k];
      const double wt = w->wcol[t];
      if (z <= 0) {   /* only ∂h/∂a = relu(z) = 0: nothing to add but the residual */
        continue;
      }
      if (has_bias) J[0] = a;
      for (int k = 0; k < D; k++) J[has_bias + k] = a * x[k];
      J[has_bias + D] = z;
      double e = w->Y[t] - a * z;
      for (int i = 0; i < P; i++) {
        double wj = wt * J[i];
        gv[i] -= wj * e;                       /* ½ ∂SSE/∂p_i */
        for (int l = 0; l <= i; l++) M[i * P + l] += wj * J[l];
      }
    }
    for (int i = 0; i < P; i++)
      for (int l = 0; l < i; l++) M[l * P + i] = M[i * P + l];
    double gmax = 0;
    for (int i = 0; i < P; i++) gmax = fmax(gmax, fabs(gv[i]));
    if (!(gmax > 1e-14 * wsum)) break;
    gsl_matrix_view ev = gsl_matrix_submatrix(w->evec_x, 0, 0, (size_t)P, (size_t)P);
    gsl_vector_view lv = gsl_vector_subvector(w->eval_x, 0, (size_t)P);
    gsl_eigen_symmv_workspace *eig = P == D + 2 ? w->eig_x : NULL;
    gsl_eigen_symmv_workspace *tmp = NULL;
    if (!eig) {
      moei_gsl_enter();
      eig = tmp = gsl_eigen_symmv_alloc((size_t)P);
      moei_gsl_leave();
    }
    int bad = !eig || modified_newton_step(P, M, gv, st, &ev.matrix, &lv.vector, eig);
    if (tmp) gsl_eigen_symmv_free(tmp);
    if (bad) break;
    double t = 1.0;
    int accepted = 0;
    for (int h = 0; h < 12; h++, t *= 0.5) {
      for (int i = 0; i < P; i++) tr[i] = p[i] + t * st[i];
      double ft = relu_sse(has_bias, D, n, w->X, w->Y, w->wcol, wsum, tr, NULL);
      if (isfinite(ft) && ft < f) {
        accepted = 1 + (f - ft < 1e-14 * f);
        f = ft;
        memcpy(p, tr, (size_t)P * sizeof *p);
        break;
      }
    }
    if (accepted != 1) break;
  }
  return f;
}

/* M-step for one expert (shared if is_shared) given its weights in wcol. */
static int mstep_expert(moe_gmoe_em *w, int is_shared, int idx, double wsum)
{
  moe_gmoe *m = w->m;
  const int D = w->D;
  const size_t n = w->n;
  moe_gmoe_expert kind = is_shared ? m->shared_kind : m->routed_kind;
  double *b = is_shared ? &m->kappa0[idx] : &m->eta0[idx];
  double *wv = (is_shared ? m->kappa1 : m->eta1) + (size_t)idx * D;
  double *a = is_shared ? &m->kappa2[idx] : &m->eta2[idx];
  double *var = is_shared ? &m->tau[idx] : &m->nu[idx];
  if (kind == MOE_GMOE_LINEAR) {
    double th[4097];
    if (wls_linear(D, n, w->X, w->Y, w->wcol, th) == MOE_OK) {
      /* accept only if the weighted SSE does not increase (rounding guard) */
      double f0 = 0, f1 = 0;
      for (size_t t = 0; t < n; t++) {
        const double *x = w->X + t * D;
        double e0 = w->Y[t] - *b - dot(wv, x, D), e1 = w->Y[t] - th[0] - dot(th + 1, x, D);
        f0 += w->wcol[t] * e0 * e0;
        f1 += w->wcol[t] * e1 * e1;
      }
      if (f1 <= f0 && isfinite(f1)) { *b = th[0]; memcpy(wv, th + 1, (size_t)D * sizeof *wv); }
    }
  } else {
    int has_bias = is_shared;
    relu_ctx ctx = {has_bias, D, n, w->X, w->Y, w->wcol, wsum};
    gsl_vector *v = is_shared ? w->v_shared : w->v_routed;
    gsl_multimin_fdfminimizer *s = is_shared ? w->min_shared : w->min_routed;
    if (has_bias) v->data[0] = *b;
    memcpy(v->data + has_bias, wv, (size_t)D * sizeof *wv);
    v->data[has_bias + D] = *a;
    double f0 = relu_sse(has_bias, D, n, w->X, w->Y, w->wcol, wsum, v->data, NULL), f1;
    if (w->expert_bfgs) {
      gsl_multimin_function_fdf fn = {relu_f, relu_df, relu_fdf, v->size, &ctx};
      f1 = bfgs_improve(s, &fn, v, f0, w->inner_iter);
    } else {
      f1 = relu_gauss_newton(w, has_bias, v->data, wsum, f0);
      if (!(f1 < f0)) {   /* no Gauss-Newton progress: BFGS from the same point */
        gsl_multimin_function_fdf fn = {relu_f, relu_df, relu_fdf, v->size, &ctx};
        f1 = bfgs_improve(s, &fn, v, f0, w->inner_iter);
      }
    }
    if (f1 < f0) {
      if (has_bias) *b = v->data[0];
      memcpy(wv, v->data + has_bias, (size_t)D * sizeof *wv);
      *a = v->data[has_bias + D];
    }
  }
  /* variance: closed form, clamped to the floor */
  double sse = 0;
  for (size_t t = 0; t < n; t++) {
    const double *x = w->X + t * D;
    double e = w->Y[t] - (is_shared ? moe_gmoe_shared_mean(m, idx, x) : moe_gmoe_routed_mean(m, idx, x));
    sse += w->wcol[t] * e * e;
  }
  double nv = sse / wsum;
  if (!(nv >= w->var_floor)) nv = w->var_floor;
  *var = nv;
  return MOE_OK;
}

/* Gate M-step by a modified Newton method: the Hessian's eigenvalues are
 * replaced by max(|λ|, 1e-10 max|λ|) (positive definite even where the
 * normalised-sigmoid objective is not convex, and harmless along the
 * softmax's flat shift direction, where the gradient vanishes), then a
 * step-halving line search accepts only decreases. The full step is tried
 * with the gradient and Hessian computed in the same pass, so an accepted
 * full step (the usual case) costs one pass over the data, not two.
 * v holds β on entry and the result on exit; *f0 receives the objective
 * at entry; returns the final objective (≤ *f0). */
static double gate_newton(moe_gmoe_em *w, gsl_vector *v, const unsigned char *fixsel, double *f0)
{
  const int E = w->E, D = w->D, P = E * (D + 1);
  moe_gmoe *m = w->m;
  double *trial = w->gD;   /* the trial point */
  double step[64 * 65];
  const double *R = w->R + w->S;
  const size_t ldr = (size_t)w->C;
  double *G = w->gG, *H = w->gH, *G2 = w->gG2, *H2 = w->gH2;
  double f = gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, R, ldr, v->data, G, H, w->blk, w->hu, fixsel);
  *f0 = f;
  if (P > 64 * 65 || !isfinite(f)) return f;
  for (int it = 0; it < w->inner_iter; it++) {
    double gmax = 0;
    for (int q = 0; q < P; q++) gmax = fmax(gmax, fabs(G[q]));
    if (!(gmax > 1e-12)) break;
    if (modified_newton_step(P, H, G, step, w->evec, w->eval, w->eig)) break;
    /* cap the step: the logits need not move by more than ~10 per update */
    double smax = 0;
    for (int q = 0; q < P; q++) smax = fmax(smax, fabs(step[q]));
    double t = smax > 10 ? 10 / smax : 1.0;
    const int last = it + 1 == w->inner_iter;
    int accepted = 0, have_h = 0;
    for (int h = 0; h < 12; h++, t *= 0.5) {
      for (int q = 0; q < P; q++) trial[q] = v->data[q] + t * step[q];
      double ft = h == 0 && !last
                      ? gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, R, ldr, trial, G2, H2, w->blk, w->hu, fixsel)
                      : gate_obj(m->gate, m->topk, D, E, w->n, w->X, R, ldr, trial, NULL, w->blk, fixsel);
      if (isfinite(ft) && ft < f) {
        double dec = f - ft;
        f = ft;
        memcpy(v->data, trial, (size_t)P * sizeof(double));
        accepted = 1 + (dec < 1e-14 * fabs(f));
        have_h = h == 0 && !last;
        break;
      }
    }
    if (accepted != 1 || last) break;   /* no decrease, or a negligible one: done */
    if (have_h) {
      double *tg = G, *th = H;
      G = G2; H = H2; G2 = tg; H2 = th;
    } else {
      gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, R, ldr, v->data, G, H, w->blk, w->hu, fixsel);
    }
  }
  return f;
}

int moe_gmoe_em_iterate(moe_gmoe_em *w)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_iterate: not initialised");
  moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C;
  const size_t n = w->n;
  /* ω */
  double tot = 0;
  double *mass = w->mass;
  for (int c = 0; c < C; c++) mass[c] = 0;
  for (size_t t = 0; t < n; t++) {
    const double *r = w->R + t * C;
    for (int c = 0; c < C; c++) mass[c] += r[c];
  }
  for (int i = 0; i < S; i++) tot += mass[i];
  if (tot > 0)
    for (int i = 0; i < S; i++) m->omega[i] = mass[i] > 0 ? mass[i] / tot : 1e-300;
  /* experts */
  const double tiny = 1e-10 * (double)n;
  for (int c = 0; c < C; c++) {
    if (!(mass[c] > tiny)) continue;     /* an empty component keeps its parameters */
    for (size_t t = 0; t < n; t++) w->wcol[t] = w->R[t * C + c];
    int rc = mstep_expert(w, c < S, c < S ? c : c - S, mass[c]);
    if (rc) return rc;
  }
  /* gate */
  gsl_vector *v = w->v_gate;
  memcpy(v->data, m->beta0, (size_t)E * sizeof(double));
  memcpy(v->data + E, m->beta1, (size_t)E * D * sizeof(double));
  /* With top-K, the chosen sets are held at their current values inside
   * BFGS (the objective is then smooth); the step is accepted only if the
   * true objective, with the sets the new β1 choose, improves. */
  gate_ctx gc = {w, NULL, 0, NAN};
  double f0 = NAN;
  if (w->gate_bfgs) f0 = gate_f(v, &gc);
  if (m->topk > 0 && m->topk < E) {
    for (size_t t = 0; t < n; t++) {
      double *u = w->u;
      for (int j = 0; j < E; j++) u[j] = dot(m->beta1 + (size_t)j * D, w->X + t * D, D);
      topk_select(E, m->topk, u, w->selfix + t * E);
    }
    gc.fixsel = w->selfix;   /* at β itself they are the free sets: f0 and its cached gradient stand */
  }
  double f1;
  if (w->gate_bfgs) {
    gsl_multimin_function_fdf fn = {gate_f, gate_df, gate_fdf, v->size, &gc};
    f1 = bfgs_improve(w->min_gate, &fn, v, f0, w->inner_iter);
  } else {
    f1 = gate_newton(w, v, gc.fixsel, &f0);
    if (!isfinite(f0)) f0 = GSL_POSINF;
    if (!(f1 < f0)) {   /* Newton made no progress (flat or indefinite region): BFGS from the same point */
      gsl_multimin_function_fdf fn = {gate_f, gate_df, gate_fdf, v->size, &gc};
      f1 = bfgs_improve(w->min_gate, &fn, v, f0, w->inner_iter);
    }
  }
  if (gc.fixsel && f1 < f0) {
    gate_ctx exact = {w, NULL, 0, NAN};
    f1 = gate_f(v, &exact);
  }
  if (f1 < f0) {
    memcpy(m->beta0, v->data, (size_t)E * sizeof(double));
    memcpy(m->beta1, v->data + E, (size_t)E * D * sizeof(double));
  }
  /* E-step at the new parameters: ℓ_t and the next responsibilities */
  w->ll_prev = w->ll;
  w->iter++;
  return em_estep(w);
}

int moe_gmoe_em_test(const moe_gmoe_em *w, double tol, moe_gmoe_tol_kind kind)
{
  if (!w || w->iter < 1 || !isfinite(w->ll_prev)) return MOE_GMOE_CONTINUE;
  double d = fabs(w->ll - w->ll_prev);
  if (kind == MOE_GMOE_TOL_TOTAL) d *= (double)w->n;   /* the change of the total log-likelihood */
  double lim = kind == MOE_GMOE_TOL_REL ? tol * fabs(w->ll_prev) : tol;
  return d <= lim ? MOE_OK : MOE_GMOE_CONTINUE;
}

double moe_gmoe_em_loglik(const moe_gmoe_em *w) { return w->ll; }
int moe_gmoe_em_iterations(const moe_gmoe_em *w) { return w->iter; }

/* ---- the full log-likelihood: packing, gradient, polish, SQUAREM -------
 *
 * θ packs every free parameter unconstrained: per shared expert i
 *   a_i (ω = softmax(a)), κ0_i, κ1_i[D], κ2_i (ReLU only), s_i,
 * per routed expert j
 *   β0_j, β1_j[D], η0_j (linear only), η1_j[D], η2_j (ReLU only), s_j,
 * with a variance v = var_floor + exp(s) (the floor stays a constraint).
 * The gradient of the mean log-likelihood ℓ is the gradient of Q at the
 * current point (Fisher's identity): with responsibilities r_nc and
 * residuals e = y − μ_c(x),
 *   ∂ℓ/∂a_i  = (1/N) Σ_n (r_ni − ω_i Σ_{i'} r_ni')
 *   ∂ℓ/∂μ_c  = (1/N) Σ_n r_nc e / v_c          (chained through μ's parameters)
 *   ∂ℓ/∂s_c  = (1/N) Σ_n r_nc (e²/v_c − 1)/2 · (v_c − floor)/v_c
 *   ∂ℓ/∂u_j  = (1/N) Σ_n (r_nj − R_n g_j) · [1 − σ(u_j) for the normalised sigmoid]
 * (R_n = Σ_j r_nj, routed only; top-K sets held fixed, as in the M-step). */

static int shared_np(const moe_gmoe *m) { return 1 + 1 + m->d + (m->shared_kind == MOE_GMOE_RELU) + 1; }
static int routed_np(const moe_gmoe *m)
{
  return 1 + m->d + (m->routed_kind == MOE_GMOE_LINEAR) + m->d + (m->routed_kind == MOE_GMOE_RELU) + 1;
}

int moe_gmoe_em_nparams(const moe_gmoe_em *w)
{
  return w && w->m ? w->S * shared_np(w->m) + w->E * routed_np(w->m) : 0;
}

static double var_to_s(double v, double fl)
{
  double e = v - fl;
  return log(e > 1e-12 * fl ? e : 1e-12 * fl);
}

static void em_pack(const moe_gmoe_em *w, double *th)
{
  const moe_gmoe *m = w->m;
  const int D = w->D;
  double *p = th;
  for (int i = 0; i < w->S; i++) {
    *p++ = log(m->omega[i]);
    *p++ = m->kappa0[i];
    for (int k = 0; k < D; k++) *p++ = m->kappa1[(size_t)i * D + k];
    if (m->shared_kind == MOE_GMOE_RELU) *p++ = m->kappa2[i];
    *p++ = var_to_s(m->tau[i], w->var_floor);
  }
  for (int j = 0; j < w->E; j++) {
    *p++ = m->beta0[j];
    for (int k = 0; k < D; k++) *p++ = m->beta1[(size_t)j * D + k];
    if (m->routed_kind == MOE_GMOE_LINEAR) *p++ = m->eta0[j];
    for (int k = 0; k < D; k++) *p++ = m->eta1[(size_t)j * D + k];
    if (m->routed_kind == MOE_GMOE_RELU) *p++ = m->eta2[j];
    *p++ = var_to_s(m->nu[j], w->var_floor);
  }
}

/* θ → model; 0 if every value is finite (ω renormalised). */
static int em_unpack(moe_gmoe_em *w, const double *th)
{
  moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, sn = shared_np(m);
  for (int q = 0; q < moe_gmoe_em_nparams(w); q++)
    if (!isfinite(th[q])) return 1;
  double amax = -INFINITY, os = 0;
  for (int i = 0; i < S; i++) amax = fmax(amax, th[(size_t)i * sn]);
  const double *p = th;
  for (int i = 0; i < S; i++) {
    m->omega[i] = exp(*p++ - amax);
    os += m->omega[i];
    m->kappa0[i] = *p++;
    for (int k = 0; k < D; k++) m->kappa1[(size_t)i * D + k] = *p++;
    if (m->shared_kind == MOE_GMOE_RELU) m->kappa2[i] = *p++;
    m->tau[i] = w->var_floor + exp(*p++);
  }
  for (int i = 0; i < S; i++) m->omega[i] = fmax(m->omega[i] / os, 1e-300);
  for (int j = 0; j < w->E; j++) {
    m->beta0[j] = *p++;
    for (int k = 0; k < D; k++) m->beta1[(size_t)j * D + k] = *p++;
    if (m->routed_kind == MOE_GMOE_LINEAR) m->eta0[j] = *p++;
    for (int k = 0; k < D; k++) m->eta1[(size_t)j * D + k] = *p++;
    if (m->routed_kind == MOE_GMOE_RELU) m->eta2[j] = *p++;
    m->nu[j] = w->var_floor + exp(*p++);
  }
  for (int i = 0; i < S; i++) if (!(m->tau[i] > 0) || !isfinite(m->tau[i])) return 1;
  for (int j = 0; j < w->E; j++) if (!(m->nu[j] > 0) || !isfinite(m->nu[j])) return 1;
  return 0;
}

/* Gradient of ℓ (mean) at the model's current parameters, using the
 * responsibilities R and the gate values of the last E-step (which must
 * be at this point); with B (P, P) also the scores' outer product. */
static void em_grad(moe_gmoe_em *w, double *grad, double *B)
{
  const moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C, sn = shared_np(m), rn = routed_np(m);
  const int P = moe_gmoe_em_nparams(w);
  const int srelu = m->shared_kind == MOE_GMOE_RELU, rrelu = m->routed_kind == MOE_GMOE_RELU;
  memset(grad, 0, (size_t)P * sizeof *grad);
  /* with B, each sample's score s_n is a row of sv (GATE_BLOCK, P);
   * grad += s_n, and B += svᵀ sv (BLAS dsyrk) after each block */
  double *acc = grad, *gr = grad + (size_t)S * sn;   /* routed block */
  if (B) memset(B, 0, (size_t)P * P * sizeof *B);
  for (size_t t0 = 0; t0 < w->n; t0 += GATE_BLOCK) {
    const size_t nb = w->n - t0 < GATE_BLOCK ? w->n - t0 : GATE_BLOCK;
    if (B) memset(w->sv, 0, nb * (size_t)P * sizeof *w->sv);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = w->X + t * D, *r = w->R + t * C;
      const double y = w->Y[t];
      if (B) {
        acc = w->sv + b * (size_t)P;
        gr = acc + (size_t)S * sn;
      }
      double rsh = 0;
      for (int i = 0; i < S; i++) rsh += r[i];
      for (int i = 0; i < S; i++) {
        double *g = acc + (size_t)i * sn;
        g[0] += r[i] - m->omega[i] * rsh;
        double z = dot(m->kappa1 + (size_t)i * D, x, D) + m->kappa0[i];
        double mu = srelu ? m->kappa2[i] * (z > 0 ? z : 0) : z;
        double e = y - mu, v = m->tau[i];
        double c = r[i] * e / v;                     /* ∂/∂μ */
        double dz = srelu ? (z > 0 ? c * m->kappa2[i] : 0) : c;
        g[1] += dz;
        for (int k = 0; k < D; k++) g[2 + k] += dz * x[k];
        if (srelu) g[2 + D] += c * (z > 0 ? z : 0);
        g[sn - 1] += 0.5 * r[i] * (e * e / v - 1);
      }
      const double *gw = w->gall + t * E, *om = w->omall + t * E;   /* the E-step's gate, at this point */
      const unsigned char *sel = w->selall + t * E;
      double rs = 0;
      for (int j = 0; j < E; j++) rs += r[S + j];
      for (int j = 0; j < E; j++) {
        double *g = gr + (size_t)j * rn;
        const double rj = r[S + j];
        if (sel[j]) {
          double cu = rj - rs * gw[j];
          if (m->gate == MOE_GMOE_NSIGMOID) cu *= om[j];
          g[0] += cu;
          for (int k = 0; k < D; k++) g[1 + k] += cu * x[k];
        }
        const double *e1 = m->eta1 + (size_t)j * D;
        double z = dot(e1, x, D);
        double mu = rrelu ? m->eta2[j] * (z > 0 ? z : 0) : z + m->eta0[j];
        double e = y - mu, v = m->nu[j];
        double c = rj * e / v;
        int q = 1 + D;
        if (!rrelu) g[q++] += c;
        double dz = rrelu ? (z > 0 ? c * m->eta2[j] : 0) : c;
        for (int k = 0; k < D; k++) g[q + k] += dz * x[k];
        q += D;
        if (rrelu) g[q++] += c * (z > 0 ? z : 0);
        g[q] += 0.5 * rj * (e * e / v - 1);
      }
      if (B)
        for (int q = 0; q < P; q++) grad[q] += acc[q];
    }
    if (B)   /* upper triangle of B += svᵀ sv */
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, P, (int)nb, 1.0, w->sv, P, 1.0, B, P);
  }
  gr = grad + (size_t)S * sn;
  const double s = 1.0 / (double)w->n;
  for (int q = 0; q < P; q++) grad[q] *= s;
  /* chain rule for v = floor + exp(s) */
  for (int i = 0; i < S; i++) grad[(size_t)i * sn + sn - 1] *= (m->tau[i] - w->var_floor) / m->tau[i];
  for (int j = 0; j < E; j++) gr[(size_t)j * rn + rn - 1] *= (m->nu[j] - w->var_floor) / m->nu[j];
  if (!B) return;
  /* B likewise: scaled by 1/N and by the chain factor of each variance
   * parameter on its row and column; the lower triangle mirrored */
  double *f = w->sv;
  for (int q = 0; q < P; q++) f[q] = 1;
  for (int i = 0; i < S; i++) f[(size_t)i * sn + sn - 1] = (m->tau[i] - w->var_floor) / m->tau[i];
  for (int j = 0; j < E; j++) f[(size_t)S * sn + (size_t)j * rn + rn - 1] = (m->nu[j] - w->var_floor) / m->nu[j];
  for (int q = 0; q < P; q++)
    for (int u = q; u < P; u++) B[(size_t)u * P + q] = B[(size_t)q * P + u] *= s * f[q] * f[u];
}

/* Hessian of ℓ (mean) at the current point, analytically, by Louis'
 * identity (Louis 1982): with the complete-data log-likelihoods
 * ℓ_c = log π_c + log N(y; μ_c, v_c) (π_c = ω_i/2 for shared i, g_j(x)/2
 * for routed j) and the responsibilities r_c,
 *   ∇² log p = Σ_c r_c (∇²ℓ_c + ∇ℓ_c ∇ℓ_cᵀ) − s sᵀ,   s = Σ_c r_c ∇ℓ_c.
 * ∇ℓ_c is sparse: the weight (a) or gate (β) parameters, and component
 * c's expert. Per component, with e = y − μ, v = floor + e^σ, φ = v − floor:
 *   ∂ℓ/∂μ = e/v, ∂²ℓ/∂μ² = −1/v, ∂ℓ/∂σ = φ (e²/v − 1)/(2v),
 *   ∂²ℓ/∂μ∂σ = −φ e/v², ∂²ℓ/∂σ² = φ² (1/(2v²) − e²/v³) + ∂ℓ/∂σ;
 * μ linear in its parameters, or κ2·max(z, 0) (ReLU: ∂²μ/∂κ2∂z-param =
 * 1{z>0} x̃, the hinge's kink ignored, as in the gradient);
 * ∂ log ω_i/∂a_k = δ_ik − ω_k, ∂² = −(δ_kl ω_k − ω_k ω_l);
 * ∂ log g_j/∂u_k = δ_jk − g_k (softmax), δ_jk (1 − σ_j) − q_k
 * (normalised sigmoid, q_k = g_k (1 − σ_k)), over the chosen set (held
 * fixed, as in the gradient); Σ_j r_j ∂² log g_j/∂u_k∂u_l =
 * −R (δ_kl g_k − g_k g_l) (softmax), −δ_kl (r_k σ_k (1 − σ_k) +
 * R q_k (1 − 2σ_k)) + R q_k q_l (normalised sigmoid), times x̃ x̃ᵀ.
 * ∇ℓ_c has two disjoint parts, the weights' or gate's (w_c) and expert
 * c's (ê_c), so Σ_c r_c ∇ℓ_c ∇ℓ_cᵀ is formed block by block per sample
 * (the gate block as [Σ_j r_j d_j d_jᵀ] ⊗ x̃ x̃ᵀ); only − Σ s sᵀ is dense,
 * through BLAS (dsyrk) over batches of samples. One pass over the data,
 * against P gradient passes for a differenced Hessian.
 * grad (P) may be NULL; H (P, P) row-major, symmetric. */
/* One expert's part of em_hess for one sample, weighted by its
 * responsibility r: fills ê (eh: ne values ∂ℓ/∂μ · ∇μ, then ∂ℓ/∂σ) from
 * ∇μ (gmu) and adds r (∇²ℓ + ê êᵀ) to the expert's block of Hd (its ne
 * mean parameters from oe, σ at oe + ne) and r ê to the score sc. zin:
 * for a ReLU expert on the positive side, the nz = ne − 1 inputs of its
 * pre-activation (the scale is parameter ne − 1), else NULL. */
static void hess_expert(double *Hd, int P, double *sc, size_t oe, int ne, double r, const double *gmu, double *eh,
                        double v, double phi, double e, const double *zin)
{
#define HD(a, b) Hd[(size_t)(a) * P + (b)]
  const double dmu = e / v, ds = phi * (e * e / v - 1) / (2 * v);
  for (int a = 0; a < ne; a++) eh[a] = dmu * gmu[a];
  eh[ne] = ds;
  for (int a = 0; a <= ne; a++)
    for (int c = 0; c <= ne; c++) HD(oe + a, oe + c) += r * eh[a] * eh[c];
  for (int a = 0; a < ne; a++) {
    for (int c = 0; c < ne; c++) HD(oe + a, oe + c) -= r * gmu[a] * gmu[c] / v;
    const double hs = -r * phi * e / (v * v) * gmu[a];
    HD(oe + a, oe + ne) += hs;
    HD(oe + ne, oe + a) += hs;
  }
  if (zin)   /* ∂²μ/∂scale∂z-param = x̃ */
    for (int k = 0; k < ne - 1; k++) {
      const double h = r * dmu * zin[k];
      HD(oe + k, oe + ne - 1) += h;
      HD(oe + ne - 1, oe + k) += h;
    }
  HD(oe + ne, oe + ne) += r * (phi * phi * (0.5 / (v * v) - e * e / (v * v * v)) + ds);
  for (int a = 0; a <= ne; a++) sc[oe + a] += r * eh[a];
#undef HD
}

static int em_hess(moe_gmoe_em *w, double *grad, double *H)
{
  const moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C, sn = shared_np(m), rn = routed_np(m);
  const int P = moe_gmoe_em_nparams(w), D1 = D + 1;
  const int srelu = m->shared_kind == MOE_GMOE_RELU, rrelu = m->routed_kind == MOE_GMOE_RELU;
  const int nsig = m->gate == MOE_GMOE_NSIGMOID;
  enum { NB = 256 };   /* samples per dsyrk batch */
  const size_t PP = (size_t)P * (size_t)P;
  const size_t EE = (size_t)E * (size_t)E;
  double *buf = malloc(((size_t)NB * (size_t)P + PP + (size_t)P + 3 * (size_t)E + EE + 2 * (size_t)D1 + 2 +
                        (size_t)D1 + 2) * sizeof *buf);
  if (!buf) return moe_error(MOE_ENOMEM, "gmoe_em_hessian: no memory for P=%d", P);
  double *neg = buf, *Hd = neg + (size_t)NB * P, *gs = Hd + PP;
  double *q = gs + P, *sgm = q + E, *dj = sgm + E, *M = dj + E, *xt = M + EE, *gmu = xt + D1, *eh = gmu + D1 + 1;
  memset(H, 0, PP * sizeof *H);
  memset(Hd, 0, PP * sizeof *Hd);
  memset(gs, 0, (size_t)P * sizeof *gs);
  const size_t R0 = (size_t)S * sn;   /* first routed parameter */
#define HD(a, b) Hd[(size_t)(a) * P + (b)]
  for (size_t t0 = 0; t0 < w->n; t0 += NB) {
    const size_t nb = w->n - t0 < NB ? w->n - t0 : NB;
    memset(neg, 0, nb * (size_t)P * sizeof *neg);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = w->X + t * D, *r = w->R + t * C;
      const double y = w->Y[t];
      double *sc = neg + b * (size_t)P;   /* s, the sample's score */
      xt[0] = 1;
      for (int k = 0; k < D; k++) xt[1 + k] = x[k];
      /* shared experts and their weights; expert block at o+1 .. o+sn−1:
       * ∇μ (ne of them) then σ */
      double rsh = 0;
      for (int i = 0; i < S; i++) rsh += r[i];
      for (int i = 0; i < S; i++) {
        const double ri = r[i];
        const size_t o = (size_t)i * sn;
        for (int k = 0; k < S; k++) sc[(size_t)k * sn] += ri * ((k == i) - m->omega[k]);
        if (!(ri > 0)) continue;
        const double z = dot(m->kappa1 + (size_t)i * D, x, D) + m->kappa0[i];
        const int on = z > 0;
        const double mu = srelu ? m->kappa2[i] * (on ? z : 0) : z;
        const double v = m->tau[i], phi = v - w->var_floor, e = y - mu;
        const int ne = sn - 2;
        for (int a = 0; a < D1; a++) gmu[a] = srelu ? (on ? m->kappa2[i] * xt[a] : 0) : xt[a];
        if (srelu) gmu[D1] = on ? z : 0;
        hess_expert(Hd, P, sc, o + 1, ne, ri, gmu, eh, v, phi, e, srelu && on ? xt : NULL);
        /* weights × expert i: r (δ_ik − ω_k) ê */
        for (int k = 0; k < S; k++) {
          const double wk = ri * ((k == i) - m->omega[k]);
          for (int a = 0; a <= ne; a++) {
            HD((size_t)k * sn, o + 1 + a) += wk * eh[a];
            HD(o + 1 + a, (size_t)k * sn) += wk * eh[a];
          }
        }
      }
      /* weights: Σ_i r_i (e_i − ω)(e_i − ω)ᵀ − Σ r_i (diag ω − ω ωᵀ) */
      for (int k = 0; k < S; k++)
        for (int l = 0; l < S; l++) {
          double a = 0;
          for (int i = 0; i < S; i++) a += r[i] * ((k == i) - m->omega[k]) * ((l == i) - m->omega[l]);
          HD((size_t)k * sn, (size_t)l * sn) += a - rsh * ((k == l) * m->omega[k] - m->omega[k] * m->omega[l]);
        }
      /* routed experts and the gate; block j: gate at o .. o+D, expert
       * (∇μ then σ) at oe .. o+rn−1 */
      const double *gw = w->gall + t * E, *om = w->omall + t * E;
      const unsigned char *sel = w->selall + t * E;
      double rs = 0;
      for (int j = 0; j < E; j++) {
        rs += r[S + j];
        q[j] = sel[j] ? (nsig ? gw[j] * om[j] : gw[j]) : 0;
        sgm[j] = 1 - om[j];
      }
      memset(M, 0, EE * sizeof *M);
      for (int j = 0; j < E; j++) {
        const double rj = r[S + j];
        if (!sel[j] || !(rj > 0)) continue;   /* r = 0 outside the chosen set */
        const size_t o = R0 + (size_t)j * rn, oe = o + D1;
        for (int k = 0; k < E; k++) dj[k] = sel[k] ? (k == j) * (nsig ? om[j] : 1.0) - q[k] : 0;
        for (int k = 0; k < E; k++)
          for (int l = 0; l < E; l++) M[(size_t)k * E + l] += rj * dj[k] * dj[l];
        const double z = dot(m->eta1 + (size_t)j * D, x, D);
        const int on = z > 0;
        const double mu = rrelu ? m->eta2[j] * (on ? z : 0) : z + m->eta0[j];
        const double v = m->nu[j], phi = v - w->var_floor, e = y - mu;
        const int ne = rn - D1 - 1;
        int a0 = 0;
        if (!rrelu) gmu[a0++] = 1;
        for (int k = 0; k < D; k++) gmu[a0 + k] = rrelu ? (on ? m->eta2[j] * x[k] : 0) : x[k];
        if (rrelu) gmu[D] = on ? z : 0;
        hess_expert(Hd, P, sc, oe, ne, rj, gmu, eh, v, phi, e, rrelu && on ? x : NULL);
        /* gate × expert j: r d_k x̃ ê */
        for (int k = 0; k < E; k++) {
          if (dj[k] == 0) continue;
          const size_t og = R0 + (size_t)k * rn;
          for (int a = 0; a < D1; a++) {
            const double ga = rj * dj[k] * xt[a];
            sc[og + a] += ga;
            for (int c = 0; c <= ne; c++) {
              HD(og + a, oe + c) += ga * eh[c];
              HD(oe + c, og + a) += ga * eh[c];
            }
          }
        }
      }
      /* gate × gate: [Σ_j r_j d_j d_jᵀ + Σ_j r_j ∇²_u log g_j] ⊗ x̃ x̃ᵀ */
      for (int k = 0; k < E; k++) {
        if (!sel[k]) continue;
        for (int l = 0; l < E; l++) {
          if (!sel[l]) continue;
          const double h = nsig ? (k == l) * (r[S + k] * sgm[k] * om[k] + rs * q[k] * (1 - 2 * sgm[k])) - rs * q[k] * q[l]
                                : rs * ((k == l) * gw[k] - gw[k] * gw[l]);
          const double c = M[(size_t)k * E + l] - h;
          if (c == 0) continue;
          for (int a = 0; a < D1; a++)
            for (int u = 0; u < D1; u++) HD(R0 + (size_t)k * rn + a, R0 + (size_t)l * rn + u) += c * xt[a] * xt[u];
        }
      }
      for (int p = 0; p < P; p++) gs[p] += sc[p];
    }
    /* upper triangle: H −= Σ s sᵀ */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, P, (int)nb, -1.0, neg, P, 1.0, H, P);
  }
#undef HD
  const double s = 1.0 / (double)w->n;
  for (int a = 0; a < P; a++)
    for (int c = a; c < P; c++) {
      const double v = (H[(size_t)a * P + c] + 0.5 * (Hd[(size_t)a * P + c] + Hd[(size_t)c * P + a])) * s;
      H[(size_t)a * P + c] = H[(size_t)c * P + a] = v;
    }
  if (grad)
    for (int p = 0; p < P; p++) grad[p] = gs[p] * s;
  free(buf);
  return MOE_OK;
}

int moe_gmoe_em_hessian(moe_gmoe_em *w, double *grad, double *H)
{
  MOE_CHECK_ARG(w && w->m && H, "gmoe_em_hessian: not initialised or H NULL");
  return em_hess(w, grad, H);
}

int moe_gmoe_em_gradient(moe_gmoe_em *w, double *grad, double *norm)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_gradient: not initialised");
  int P = moe_gmoe_em_nparams(w);
  double *g = grad ? grad : malloc((size_t)P * sizeof *g);
  if (!g) return moe_error(MOE_ENOMEM, "gmoe_em_gradient: no memory");
  em_grad(w, g, NULL);
  if (norm) {
    double s = 0;
    for (int q = 0; q < P; q++) s += g[q] * g[q];
    *norm = sqrt(s * (double)w->n);
  }
  if (!grad) free(g);
  return MOE_OK;
}

int moe_gmoe_em_score_outer(moe_gmoe_em *w, double *grad, double *B)
{
  MOE_CHECK_ARG(w && w->m && grad && B, "gmoe_em_score_outer: not initialised, or NULL output");
  em_grad(w, grad, B);
  return MOE_OK;
}

int moe_gmoe_em_get_params(const moe_gmoe_em *w, double *theta)
{
  MOE_CHECK_ARG(w && w->m && theta, "gmoe_em_get_params: not initialised");
  em_pack(w, theta);
  return MOE_OK;
}

int moe_gmoe_em_set_params(moe_gmoe_em *w, const double *theta)
{
  MOE_CHECK_ARG(w && w->m && theta, "gmoe_em_set_params: not initialised");
  if (em_unpack(w, theta)) return moe_error(MOE_EDOM, "gmoe_em_set_params: non-finite parameter");
  return em_estep(w);
}

/* −ℓ and its gradient at θ for gsl_multimin (the model and R move with θ). */
static double full_fdf(moe_gmoe_em *w, const double *th, double *grad)
{
  if (em_unpack(w, th)) return GSL_POSINF;
  if (em_estep(w)) { moe_error_clear(); return GSL_POSINF; }
  if (grad) {
    em_grad(w, grad, NULL);
    for (int q = 0; q < moe_gmoe_em_nparams(w); q++) grad[q] = -grad[q];
  }
  return -w->ll;
}
static double full_f(const gsl_vector *v, void *p) { return full_fdf(p, v->data, NULL); }
static void full_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  if (!isfinite(full_fdf(p, v->data, g->data))) gsl_vector_set_zero(g);
}
static void full_fdf3(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  *f = full_fdf(p, v->data, g->data);
  if (!isfinite(*f)) gsl_vector_set_zero(g);
}

/* BFGS from the current point until the gradient test, max_iter
 * iterations, or a stalled line search; restarted (fresh Hessian) from
 * the best point while that makes progress. Leaves the model, R and ℓ at
 * the best point. Returns 1 if the gradient test was met. */
static int polish_bfgs(moe_gmoe_em *w, gsl_multimin_fdfminimizer *s, gsl_vector *best, int max_iter, double grad_tol,
                       int *it)
{
  const int P = moe_gmoe_em_nparams(w);
  const double sq = sqrt((double)w->n);
  em_pack(w, best->data);
  double fbest = full_fdf(w, best->data, NULL);
  int met = 0;
  gsl_multimin_function_fdf fn = {full_f, full_df, full_fdf3, (size_t)P, w};
  for (int restart = 0; restart < 6 && *it < max_iter && isfinite(fbest) && !met; restart++) {
    gsl_multimin_fdfminimizer_set(s, &fn, best, 0.01, 0.1);
    if (!isfinite(s->f)) break;
    if (gsl_blas_dnrm2(s->gradient) * sq <= grad_tol) { met = 1; break; }
    int progressed = 0;
    while (*it < max_iter) {
      int st = gsl_multimin_fdfminimizer_iterate(s);
      ++*it;
      if (isfinite(s->f) && s->f < fbest) {
        if (s->f < fbest - 1e-15 * fabs(fbest)) progressed = 1;
        fbest = s->f;
        gsl_vector_memcpy(best, s->x);
      }
      if (st) break;
      if (gsl_blas_dnrm2(s->gradient) * sq <= grad_tol) { met = 1; break; }
    }
    if (!progressed) break;
  }
  if (em_unpack(w, best->data) || em_estep(w)) return -1;
  return met;
}

/* Scale a polish step so that no parameter moves by more than 5 (logits,
 * slopes, log-variances): along a direction where the likelihood keeps
 * rising towards a saturated gate (small n: the maximum is at infinity),
 * a second-order step can otherwise jump to parameters whose exp()
 * overflows; capped, the flat test stops it first. */
static void step_cap(int P, double *d)
{
  double m = 0;
  for (int q = 0; q < P; q++) m = fmax(m, fabs(d[q]));
  if (m > 5)
    for (int q = 0; q < P; q++) d[q] *= 5 / m;
}

/* Levenberg-Marquardt ascent of ℓ with the outer product of the
 * per-sample scores as its curvature (BHHH: Berndt, Hall, Hall & Hausman
 * 1974; for a correct model it estimates the Fisher information, so near
 * the maximum the steps are nearly Newton's, where EM creeps along the
 * over-specified model's flat directions). Step δ solves
 * (B + λ diag B) δ = ∇ℓ by Cholesky; λ is divided by 3 after a gain and
 * multiplied by 4 after a loss (10 tries). One gradient-and-B pass per
 * iteration plus one E-step per try. Leaves the model at the best point.
 * Returns 1 if the gradient test was met, 0 if not, -1 on a non-finite
 * log-likelihood at the start, -2 if out of memory. */
static int polish_lm(moe_gmoe_em *w, int max_iter, double grad_tol, int *it)
{
  const int P = moe_gmoe_em_nparams(w);
  const double sq = sqrt((double)w->n);
  double *buf = malloc(((size_t)2 * P * P + 4 * (size_t)P) * sizeof *buf);
  if (!buf) { moe_error(MOE_ENOMEM, "gmoe_em_polish: no memory for P=%d", P); return -2; }
  double *B = buf, *A = B + (size_t)P * P, *g = A + (size_t)P * P, *th = g + P, *tr = th + P, *d = tr + P;
  em_pack(w, th);
  double ll = w->ll, lam = 1e-3;
  int met = 0;
  if (!isfinite(ll)) { free(buf); return -1; }
  while (*it < max_iter) {
    em_grad(w, g, B);
    double gg = 0, dmax = 0;
    for (int q = 0; q < P; q++) { gg += g[q] * g[q]; dmax = fmax(dmax, B[(size_t)q * P + q]); }
    if (sqrt(gg) * sq <= grad_tol) { met = 1; break; }
    if (!(dmax > 0) || !isfinite(dmax) || !isfinite(gg)) break;
    int accepted = 0;
    ++*it;
    for (int tries = 0; tries < 10 && !accepted; tries++, lam *= 4) {
      memcpy(A, B, (size_t)P * P * sizeof *A);
      for (int q = 0; q < P; q++) A[(size_t)q * P + q] += lam * B[(size_t)q * P + q] + 1e-12 * dmax;
      gsl_matrix_view Am = gsl_matrix_view_array(A, (size_t)P, (size_t)P);
      gsl_vector_view gv = gsl_vector_view_array(g, (size_t)P), dv = gsl_vector_view_array(d, (size_t)P);
      moei_gsl_enter();
      int st = gsl_linalg_cholesky_decomp1(&Am.matrix);
      if (!st) st = gsl_linalg_cholesky_solve(&Am.matrix, &gv.vector, &dv.vector);
      moei_gsl_leave();
      if (st) continue;
      step_cap(P, d);
      for (int q = 0; q < P; q++) tr[q] = th[q] + d[q];
      if (em_unpack(w, tr) || em_estep(w)) { moe_error_clear(); continue; }
      if (isfinite(w->ll) && w->ll > ll) {
        accepted = 1;
        ll = w->ll;
        memcpy(th, tr, (size_t)P * sizeof *th);
        lam = fmax(lam / 12, 1e-9);   /* /4 undoes the loop's *4, then /3 */
      }
    }
    if (!accepted) break;
  }
  if (em_unpack(w, th) || em_estep(w)) { free(buf); return -1; }
  free(buf);
  return met;
}

/* Newton ascent of ℓ with the analytic Hessian (em_hess: one pass over
 * the data with the gradient) at every iteration; the step is
 * modified_newton_step's (|eigenvalues| floored: an ascent direction even
 * at a saddle), capped (step_cap), with step halving (8 tries). For the
 * curved, nearly flat valleys of an over-specified mixture, where the
 * BHHH curvature zigzags. Stops as "flat" when 10 iterations gained less
 * than 1e-2 in total log-likelihood (with ReLU experts ℓ has a kink
 * wherever a point crosses a hinge, and the gradient test may never be
 * met: the fit then sits on a kinked ridge whose remaining ascent is
 * statistically nil). Returns 1 if the gradient test was met, 2 if flat,
 * 0 if no ascent was found, -1 on a non-finite likelihood, -2 if the
 * Hessian's scratch could not be allocated (the model then stays at the
 * last accepted point). */
static int polish_newton(moe_gmoe_em *w, int max_iter, double grad_tol, int *it)
{
  const int P = moe_gmoe_em_nparams(w);
  const double sq = sqrt((double)w->n);
  double *buf = malloc(((size_t)P * P + 4 * (size_t)P) * sizeof *buf);
  gsl_matrix *evec = gsl_matrix_alloc((size_t)P, (size_t)P);
  gsl_vector *eval = gsl_vector_alloc((size_t)P);
  gsl_eigen_symmv_workspace *eig = gsl_eigen_symmv_alloc((size_t)P);
  int met = -1;
  if (!buf || !evec || !eval || !eig) {
    met = -2;
    moe_error(MOE_ENOMEM, "gmoe_em_polish: no memory for P=%d", P);
    goto out;
  }
  double *H = buf, *g = H + (size_t)P * P, *th = g + P, *tr = th + P, *d = tr + P;
  em_pack(w, th);
  double ll = w->ll, hist[10];
  if (!isfinite(ll)) goto out;
  met = 0;
  for (int k = 0; *it < max_iter; k++) {
    if (k >= 10 && (ll - hist[k % 10]) * (double)w->n < 1e-2) { met = 2; break; }
    hist[k % 10] = ll;
    if (em_hess(w, g, H)) { met = -2; break; }   /* no memory: its error stands */
    double gg = 0;
    for (int q = 0; q < P; q++) gg += g[q] * g[q];
    if (sqrt(gg) * sq <= grad_tol) { met = 1; break; }
    ++*it;
    for (int q = 0; q < P * P; q++) H[q] = -H[q];   /* of −ℓ */
    for (int q = 0; q < P; q++) g[q] = -g[q];
    if (modified_newton_step(P, H, g, d, evec, eval, eig)) break;
    step_cap(P, d);
    int accepted = 0;
    double t = 1.0;
    for (int h = 0; h < 8 && !accepted; h++, t *= 0.5) {
      for (int q = 0; q < P; q++) tr[q] = th[q] + t * d[q];
      if (em_unpack(w, tr) || em_estep(w)) { moe_error_clear(); continue; }
      if (isfinite(w->ll) && w->ll > ll) {
        accepted = 1;
        ll = w->ll;
        memcpy(th, tr, (size_t)P * sizeof *th);
      }
    }
    if (!accepted) break;   /* the exact Hessian's step finds no ascent: done (θ restored below) */
  }
  if (met >= 0 && (em_unpack(w, th) || em_estep(w))) met = -1;
out:
  free(buf);
  if (evec) gsl_matrix_free(evec);
  if (eval) gsl_vector_free(eval);
  if (eig) gsl_eigen_symmv_free(eig);
  return met;
}

int moe_gmoe_em_polish(moe_gmoe_em *w, int max_iter, double grad_tol, int *iters, double *grad_norm, int *how)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_polish: not initialised");
  MOE_CHECK_ARG(max_iter >= 0 && grad_tol > 0, "gmoe_em_polish: max_iter=%d, grad_tol=%g", max_iter, grad_tol);
  const int P = moe_gmoe_em_nparams(w);
  gsl_vector *best = gsl_vector_alloc((size_t)P);
  gsl_multimin_fdfminimizer *s = gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, (size_t)P);
  if (!best || !s) {
    if (best) gsl_vector_free(best);
    if (s) gsl_multimin_fdfminimizer_free(s);
    return moe_error(MOE_ENOMEM, "gmoe_em_polish: no memory");
  }
  /* Second order first (unless set off): at most 30 Levenberg-Marquardt
   * (BHHH) iterations, then Newton with the analytic Hessian until the
   * gradient test, a flat stretch, or no ascent. Then, if still short,
   * rounds of BFGS, each followed by three SQUAREM cycles: a ReLU
   * expert's likelihood has kinks where a data point sits at the hinge,
   * and the M-step's Gauss-Newton solver tends to park the hinge exactly
   * on a point: there the gradient jumps, BFGS's line search stalls, and
   * the EM maps (which handle the kink) move on. Stop when a round gains
   * less than 1e-3 in total log-likelihood. */
  int it = 0, rc = MOE_OK, met = 0, flat = 0;
  if (w->second_order) {
    met = polish_lm(w, max_iter < 30 ? max_iter : 30, grad_tol, &it);
    if (met == 0) met = polish_newton(w, max_iter, grad_tol, &it);
    if (met == -2) rc = MOE_ENOMEM;   /* em_hess has set the error */
    else if (met < 0) rc = moe_error(MOE_EDOM, "gmoe_em_polish: non-finite log-likelihood");
    if (met == 2) { flat = 1; met = 0; }
  }
  for (int round = 0; round < 20 && it < max_iter && !met && !flat && !rc; round++) {
    const double l0 = w->ll;
    met = polish_bfgs(w, s, best, max_iter, grad_tol, &it);
    if (met < 0) { rc = moe_error(MOE_EDOM, "gmoe_em_polish: non-finite log-likelihood"); break; }
    if (met) break;
    for (int k = 0; k < 3 && !rc; k++) rc = moe_gmoe_em_squarem(w);
    if (rc) break;
    if ((w->ll - l0) * (double)w->n < 1e-3) { flat = 1; break; }
  }
  w->ll_prev = w->ll;
  double gn = NAN;
  if (!rc) moe_gmoe_em_gradient(w, NULL, &gn);
  if (iters) *iters = it;
  if (grad_norm) *grad_norm = gn;
  if (how) *how = met > 0 ? 1 : flat ? 2 : 0;
  gsl_vector_free(best);
  gsl_multimin_fdfminimizer_free(s);
  return rc;
}

/* One SQUAREM cycle (Varadhan & Roland 2008, scheme S3, with the
 * monotone safeguard): θ1 = F(θ0), θ2 = F(θ1), r = θ1 − θ0,
 * v = θ2 − 2θ1 + θ0, α = −‖r‖/‖v‖ (≤ −1), θ' = θ0 − 2αr + α²v, then one
 * EM step from θ'. The result is accepted only if its log-likelihood is
 * ≥ that of θ2; otherwise α is moved halfway to −1 (3 tries) and finally
 * θ2 itself is taken (plain EM). Counts the EM maps it ran in iter. */
int moe_gmoe_em_squarem(moe_gmoe_em *w)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_squarem: not initialised");
  const int P = moe_gmoe_em_nparams(w);
  double *buf = malloc(4 * (size_t)P * sizeof *buf);
  if (!buf) return moe_error(MOE_ENOMEM, "gmoe_em_squarem: no memory");
  double *t0 = buf, *t1 = t0 + P, *t2 = t1 + P, *tp = t2 + P;
  const double ll0 = w->ll;
  em_pack(w, t0);
  int rc = moe_gmoe_em_iterate(w);
  if (!rc) { em_pack(w, t1); rc = moe_gmoe_em_iterate(w); }
  if (rc) { free(buf); return rc; }
  em_pack(w, t2);
  const double ll2 = w->ll;
  double rr = 0, vv = 0;
  for (int q = 0; q < P; q++) {
    double r = t1[q] - t0[q], v = t2[q] - 2 * t1[q] + t0[q];
    rr += r * r;
    vv += v * v;
  }
  int accepted = 0;
  if (vv > 0 && isfinite(rr) && isfinite(vv)) {
    double a = -sqrt(rr / vv);
    for (int tries = 0; tries < 4 && a < -1; tries++, a = (a - 1) / 2) {
      for (int q = 0; q < P; q++) {
        double r = t1[q] - t0[q], v = t2[q] - 2 * t1[q] + t0[q];
        tp[q] = t0[q] - 2 * a * r + a * a * v;
      }
      if (em_unpack(w, tp) || em_estep(w)) { moe_error_clear(); continue; }
      if (moe_gmoe_em_iterate(w)) { moe_error_clear(); continue; }
      if (isfinite(w->ll) && w->ll >= ll2) { accepted = 1; break; }
    }
  }
  if (!accepted) {   /* plain EM: back to θ2 */
    if (em_unpack(w, t2) || em_estep(w)) { free(buf); return moe_error(MOE_EDOM, "gmoe_em_squarem: lost θ2"); }
  }
  free(buf);
  w->ll_prev = ll0;   /* the test compares whole cycles; iter counts every EM map run */

  return MOE_OK;
}
