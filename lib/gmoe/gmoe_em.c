/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_em.c — the maximum-likelihood fit of a Gaussian MoE by generalised
 * EM: the EM workspace, one E+M iteration and the stopping test. The
 * M-step's block objectives are in gmoe_objective.c, the polish on the
 * full likelihood and SQUAREM in gmoe_polish.c.
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

/* ---- EM workspace ----------------------------------------------------- */

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
  moei_gmoe_gate_blk_free(w->blk);
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
  w->blk = moei_gmoe_gate_blk_alloc(w->E);
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
int moei_gmoe_em_estep(moe_gmoe_em *w)
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
    moei_gmoe_gate_block(m->gate, m->topk, D, E, m->beta0, m->beta1, w->X + t0 * D, nb, NULL, w->blk, w->gall + t0 * E,
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
  return moei_gmoe_em_estep(w);
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
  double f = moei_gmoe_relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, NULL);
  return isfinite(f) ? f : GSL_POSINF;
}
static void relu_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  relu_ctx *c = p;
  moei_gmoe_relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, g->data);
}
static void relu_fdf(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  relu_ctx *c = p;
  *f = moei_gmoe_relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, g->data);
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
    c->cf = moei_gmoe_gate_obj(w->m->gate, w->m->topk, w->D, w->E, w->n, w->X, w->R + w->S, (size_t)w->C, beta, w->gcg,
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
int moei_gmoe_modified_newton_step(int P, double *H, const double *g, double *step, gsl_matrix *evec, gsl_vector *eval,
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
    int bad = !eig || moei_gmoe_modified_newton_step(P, M, gv, st, &ev.matrix, &lv.vector, eig);
    if (tmp) gsl_eigen_symmv_free(tmp);
    if (bad) break;
    double t = 1.0;
    int accepted = 0;
    for (int h = 0; h < 12; h++, t *= 0.5) {
      for (int i = 0; i < P; i++) tr[i] = p[i] + t * st[i];
      double ft = moei_gmoe_relu_sse(has_bias, D, n, w->X, w->Y, w->wcol, wsum, tr, NULL);
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
    double f0 = moei_gmoe_relu_sse(has_bias, D, n, w->X, w->Y, w->wcol, wsum, v->data, NULL), f1;
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
  double f = moei_gmoe_gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, R, ldr, v->data, G, H, w->blk, w->hu, fixsel);
  *f0 = f;
  if (P > 64 * 65 || !isfinite(f)) return f;
  for (int it = 0; it < w->inner_iter; it++) {
    double gmax = 0;
    for (int q = 0; q < P; q++) gmax = fmax(gmax, fabs(G[q]));
    if (!(gmax > 1e-12)) break;
    if (moei_gmoe_modified_newton_step(P, H, G, step, w->evec, w->eval, w->eig)) break;
    /* cap the step: the logits need not move by more than ~10 per update */
    double smax = 0;
    for (int q = 0; q < P; q++) smax = fmax(smax, fabs(step[q]));
    double t = smax > 10 ? 10 / smax : 1.0;
    const int last = it + 1 == w->inner_iter;
    int accepted = 0, have_h = 0;
    for (int h = 0; h < 12; h++, t *= 0.5) {
      for (int q = 0; q < P; q++) trial[q] = v->data[q] + t * step[q];
      double ft = h == 0 && !last
                      ? moei_gmoe_gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, R, ldr, trial, G2, H2, w->blk, w->hu, fixsel)
                      : moei_gmoe_gate_obj(m->gate, m->topk, D, E, w->n, w->X, R, ldr, trial, NULL, w->blk, fixsel);
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
      moei_gmoe_gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, R, ldr, v->data, G, H, w->blk, w->hu, fixsel);
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
  return moei_gmoe_em_estep(w);
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
