/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_impl.h — helpers shared by the sources of lib/gmoe/; not installed.
 * The small ones are static inline so the E-step keeps them inlined. */
#ifndef MOE_GMOE_IMPL_H
#define MOE_GMOE_IMPL_H

#include <math.h>
#include <string.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_multimin.h>

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

/* ---- the EM fit (gmoe_objective.c, gmoe_em.c, gmoe_polish.c) ---------- */

/* The gate over blocks of samples: scratch for GATE_BLOCK samples (see
 * gmoe_objective.c). */
enum { GATE_BLOCK = 256 };
typedef struct {
  double *u, *lg, *g, *sg, *om, *tmp;  /* (GATE_BLOCK, E) each */
  double *s, *ls, *mx;                  /* (GATE_BLOCK) */
  unsigned char *sel;                   /* (GATE_BLOCK, E) */
} gate_blk;

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

/* gmoe_objective.c */
double moei_gmoe_relu_sse(int has_bias, int D, size_t n, const double *X, const double *Y,
                          const double *wt, double wsum, const double *p, double *grad);
void moei_gmoe_gate_blk_free(gate_blk *k);
gate_blk *moei_gmoe_gate_blk_alloc(int E);
void moei_gmoe_gate_block(moe_gmoe_gate gate, int topk, int D, int E, const double *b0, const double *b1,
                          const double *X, size_t nb, const unsigned char *fixsel, gate_blk *k, double *G, double *OM,
                          unsigned char *SEL);
double moei_gmoe_gate_obj(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                          const double *R, size_t ldr, const double *beta, double *grad, gate_blk *k,
                          const unsigned char *fixsel);
double moei_gmoe_gate_obj_hess(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                               const double *R, size_t ldr, const double *beta, double *grad, double *H,
                               gate_blk *k, double *hu, const unsigned char *fixsel);
/* gmoe_em.c: the E-step, and a descent step on an indefinite Hessian */
int moei_gmoe_em_estep(moe_gmoe_em *w);
int moei_gmoe_modified_newton_step(int P, double *H, const double *g, double *step, gsl_matrix *evec, gsl_vector *eval,
                                   gsl_eigen_symmv_workspace *eig);

#endif
