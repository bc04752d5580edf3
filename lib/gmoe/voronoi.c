/* SPDX-License-Identifier: GPL-3.0-or-later */
/* voronoi.c — Voronoi cells and the losses D1–D5 (see moe/voronoi.h for
 * every formula and for the choices made on the paper's pitfalls).
 * Shape letters: D input width, S fitted shared atoms, E fitted routed
 * atoms; St, Et the reference (true or limit) atoms. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_multimin.h>
#include <gsl/gsl_poly.h>

#include "internal.h"
#include "moe/error.h"
#include "moe/voronoi.h"

void moe_voronoi_opts_default(moe_voronoi_opts *o, moe_voronoi_kind kind)
{
  o->kind = kind;
  o->align_relu = 1;
  o->min_shift = 1;
  o->sigmoid_scale = 1;
  o->topk = 1;
  o->limit = NULL;
  o->limits = NULL;
  o->nlimits = 0;
}

int moe_voronoi_r(int m)
{
  if (m <= 1) return 1;
  if (m == 2) return 4;
  if (m == 3) return 6;
  return 7;   /* the paper only gives r(m) ≥ 7 for m ≥ 4 */
}

static double align_cost(int ni, const double *p, const double *pt, double s)
{
  double e = p[ni] * s - pt[ni], c = e * e;
  for (int k = 0; k < ni; k++) { double d = p[k] / s - pt[k]; c += d * d; }
  return c;
}

double moe_voronoi_relu_align(int ni, const double *p, const double *pt, double *out)
{
  /* d/ds of ‖(p_in/s, a s) − (pt_in, a*)‖² = 0, times s³/2:
   *   a² s⁴ − a a* s³ + (Σ b b*) s − Σ b² = 0. */
  double a = p[ni], at = pt[ni], bb = 0, bbt = 0;
  for (int k = 0; k < ni; k++) { bb += p[k] * p[k]; bbt += p[k] * pt[k]; }
  double best = 1.0, bestc = align_cost(ni, p, pt, 1.0);
  if (a != 0 && bb > 0 && isfinite(a) && isfinite(bb) && isfinite(at) && isfinite(bbt)) {
    double c[5] = {-bb, bbt, 0.0, -a * at, a * a}, z[8];
    moei_gsl_enter(); /* a failed QR iteration must not reach GSL's aborting handler */
    gsl_poly_complex_workspace *w = gsl_poly_complex_workspace_alloc(5);
    if (w && gsl_poly_complex_solve(c, 5, w, z) == GSL_SUCCESS) {
      for (int k = 0; k < 4; k++) {
        double re = z[2 * k], im = z[2 * k + 1];
        if (re > 0 && fabs(im) <= 1e-9 * (1 + fabs(re))) {
          double cost = align_cost(ni, p, pt, re);
          if (cost < bestc) { bestc = cost; best = re; }
        }
      }
    }
    if (w) gsl_poly_complex_workspace_free(w);
    moei_gsl_leave();
  }
  for (int k = 0; k < ni; k++) out[k] = p[k] / best;
  out[ni] = p[ni] * best;
  return best;
}

/* κ of shared atom i: ReLU (κ0, κ1[D], κ2), linear (κ0, κ1[D]). */
static int kappa_len(const moe_gmoe *m) { return m->shared_kind == MOE_GMOE_RELU ? m->d + 2 : m->d + 1; }
static void kappa_vec(const moe_gmoe *m, int i, double *v)
{
  v[0] = m->kappa0[i];
  memcpy(v + 1, m->kappa1 + (size_t)i * m->d, (size_t)m->d * sizeof *v);
  if (m->shared_kind == MOE_GMOE_RELU) v[m->d + 1] = m->kappa2[i];
}
/* η of routed atom j: ReLU (η1[D], η2), linear (η0, η1[D]); both D+1. */
static void eta_vec(const moe_gmoe *m, int j, double *v)
{
  if (m->routed_kind == MOE_GMOE_RELU) {
    memcpy(v, m->eta1 + (size_t)j * m->d, (size_t)m->d * sizeof *v);
    v[m->d] = m->eta2[j];
  } else {
    v[0] = m->eta0[j];
    memcpy(v + 1, m->eta1 + (size_t)j * m->d, (size_t)m->d * sizeof *v);
  }
}

static double norm2(const double *a, const double *b, int n)   /* ‖a − b‖² */
{
  double s = 0;
  for (int k = 0; k < n; k++) { double d = a[k] - b[k]; s += d * d; }
  return s;
}

typedef struct {
  const moe_gmoe *fit, *truth, *ref2;
  moe_voronoi_kind kind;
  int topk, D, S, St, E, Et, Lk, Le;
  double *ks;      /* (S, St, Lk) fitted κ aligned to each true atom */
  double *kt;      /* (St, Lk) */
  double *es;      /* (E, Et, Le) fitted η aligned to each reference atom */
  double *et;      /* (Et, Le) */
  int *cell1;      /* (S) */
  int *cell2;      /* (E) scratch */
  int *vsize;      /* (Et) scratch */
  double *b0;      /* (E) fitted β0 after shift / scale */
  double *b1;      /* (E, D) fitted β1 after shift */
  double shared_part;
} vctx;

static void vctx_free(vctx *c)
{
  free(c->ks); free(c->kt); free(c->es); free(c->et); free(c->cell1);
  free(c->cell2); free(c->vsize); free(c->b0); free(c->b1);
}

/* Shared block: cells and terms (independent of the gate). */
static double shared_terms(vctx *c)
{
  const moe_gmoe *f = c->fit, *t = c->truth;
  const int S = c->S, St = c->St, Lk = c->Lk, D = c->D;
  const int relu = f->shared_kind == MOE_GMOE_RELU;
  for (int i = 0; i < S; i++) {
    int bj = 0;
    double bd = INFINITY;
    for (int j = 0; j < St; j++) {
      double dt = f->tau[i] - t->tau[j];
      double dd = norm2(c->ks + ((size_t)i * St + j) * Lk, c->kt + (size_t)j * Lk, Lk) + dt * dt;
      if (dd < bd) { bd = dd; bj = j; }
    }
    c->cell1[i] = bj;
  }
  double loss = 0;
  for (int j = 0; j < St; j++) {
    int m = 0;
    double w = 0;
    for (int i = 0; i < S; i++) if (c->cell1[i] == j) { m++; w += f->omega[i]; }
    loss += fabs(w - t->omega[j]);
    int r = moe_voronoi_r(m);
    for (int i = 0; i < S; i++) {
      if (c->cell1[i] != j) continue;
      const double *k = c->ks + ((size_t)i * St + j) * Lk, *kt = c->kt + (size_t)j * Lk;
      double dtau = fabs(f->tau[i] - t->tau[j]), term;
      if (relu) {
        double dk2 = norm2(k, kt, Lk);
        term = m == 1 ? sqrt(dk2) + dtau : dk2 + dtau * dtau;
      } else {
        double dk1 = norm2(k + 1, kt + 1, D), dk0 = fabs(k[0] - kt[0]);
        term = m == 1 ? sqrt(dk1) + dk0 + dtau : dk1 + pow(dk0, r) + pow(dtau, r / 2.0);
      }
      loss += f->omega[i] * term;
    }
  }
  return loss;
}

static double sigm(double u) { return 1.0 / (1.0 + exp(-u)); }

/* Routed cells for the current c->b1 (shifted β1). */
static void routed_cells(vctx *c)
{
  const moe_gmoe *f = c->fit, *t = c->ref2;
  const int E = c->E, Et = c->Et, Le = c->Le, D = c->D;
  for (int j = 0; j < Et; j++) c->vsize[j] = 0;
  for (int i = 0; i < E; i++) {
    int bj = 0;
    double bd = INFINITY;
    for (int j = 0; j < Et; j++) {
      double dn = f->nu[i] - t->nu[j];
      double dd = norm2(c->b1 + (size_t)i * D, t->beta1 + (size_t)j * D, D) +
                  norm2(c->es + ((size_t)i * Et + j) * Le, c->et + (size_t)j * Le, Le) + dn * dn;
      if (dd < bd) { bd = dd; bj = j; }
    }
    c->cell2[i] = bj;
    c->vsize[bj]++;
  }
}

/* Routed terms for the cells in c->cell2, only over reference atoms j with
 * bit j set in `mask`, using c->b0 / c->b1. */
static double routed_terms(const vctx *c, unsigned long mask)
{
  const moe_gmoe *f = c->fit, *t = c->ref2;
  const int E = c->E, Et = c->Et, Le = c->Le, D = c->D;
  const int relu = f->routed_kind == MOE_GMOE_RELU;
  double loss = 0;
  for (int j = 0; j < Et; j++) {
    if (!(mask >> j & 1ul)) continue;
    const int m = c->vsize[j], r = moe_voronoi_r(m);
    const double *et = c->et + (size_t)j * Le;
    double mass = 0;
    for (int i = 0; i < E; i++) {
      if (c->cell2[i] != j) continue;
      const double *e = c->es + ((size_t)i * Et + j) * Le;
      double db1 = norm2(c->b1 + (size_t)i * D, t->beta1 + (size_t)j * D, D);
      double dnu = fabs(f->nu[i] - t->nu[j]);
      double deta = norm2(e, et, Le);
      /* linear η = (η0, η1): split for the eq. 6 forms */
      double deta0 = relu ? 0 : fabs(e[0] - et[0]);
      double deta1 = relu ? 0 : norm2(e + 1, et + 1, D);
      double term;
      switch (c->kind) {
      case MOE_VORONOI_D3:
        mass += sigm(c->b0[i]);
        if (m == 1)
          term = sqrt(db1) + fabs(c->b0[i] - t->beta0[j]) +
                 (relu ? sqrt(deta) : sqrt(deta1) + deta0) + dnu;
        else
          term = db1 + (relu ? deta : pow(deta1, r / 4.0) + pow(deta0, r)) +
                 (relu ? dnu * dnu : pow(dnu, r / 2.0));
        loss += term;
        break;
      case MOE_VORONOI_D4:
        loss += sqrt(db1) + fabs(c->b0[i] - t->beta0[j]) + sqrt(deta) + dnu;
        break;
      default: {  /* D1, D2, D5: softmax weight e^{β0} */
        double wgt = exp(c->b0[i]);
        mass += wgt;
        if (m == 1)
          term = sqrt(db1) + (relu ? sqrt(deta) : sqrt(deta1) + deta0) + dnu;
        else if (relu)
          term = db1 + deta + dnu * dnu;
        else   /* ‖Δβ1‖^r + ‖Δη1‖^(r/2) + |Δη0|^r + |Δν|^(r/2); norm2 is squared */
          term = pow(db1, r / 2.0) + pow(deta1, r / 4.0) + pow(deta0, r) + pow(dnu, r / 2.0);
        loss += wgt * term;
      }
      }
    }
    if (c->kind == MOE_VORONOI_D3) {
      if (m > 1) loss += fabs(mass - sigm(t->beta0[j]));
    } else if (c->kind != MOE_VORONOI_D4) {
      loss += fabs(mass - exp(t->beta0[j]));
    }
  }
  return loss;
}

static int popcount(unsigned long v)
{
  int n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}

/* Routed part at shift (c0, c1[D]) (NULL: none) and sigmoid scale s (≤ 0:
 * none); D5 takes the max over K-subsets. */
static double routed_part(vctx *c, const double *shift, double s)
{
  const moe_gmoe *f = c->fit;
  const int E = c->E, D = c->D;
  for (int i = 0; i < E; i++) {
    double b0 = f->beta0[i];
    if (shift) b0 -= shift[0];
    if (s > 0) {
      double p = s * sigm(b0);
      if (p >= 1) p = 1 - 1e-16;
      b0 = log(p) - log1p(-p);
    }
    c->b0[i] = b0;
    for (int k = 0; k < D; k++)
      c->b1[(size_t)i * D + k] = f->beta1[(size_t)i * D + k] - (shift ? shift[1 + k] : 0.0);
  }
  routed_cells(c);
  if (c->kind != MOE_VORONOI_D5) return routed_terms(c, ~0ul);
  double best = -INFINITY;
  for (unsigned long mask = 0; mask < (1ul << c->Et); mask++)
    if (popcount(mask) == c->topk) {
      double v = routed_terms(c, mask);
      if (v > best) best = v;
    }
  return best;
}

static double nm_f(const gsl_vector *v, void *p)
{
  double r = routed_part(p, v->data, -1);
  return isfinite(r) ? r : 1e300;
}

/* Minimise over the common softmax shift (pitfall 3). */
static double min_over_shift(vctx *c)
{
  const moe_gmoe *f = c->fit, *t = c->ref2;
  const int D = c->D, P = D + 1;
  double *start = calloc(2 * (size_t)P, sizeof *start);
  if (!start) return NAN;
  /* start 1: no shift; start 2: match total mass and weighted mean slope.
   * Log-sum-exp throughout: a fit may drift to a huge common β0 (softmax
   * cannot see it), where exp(β0) overflows but the shifted loss is fine. */
  double mxf = -HUGE_VAL, mxt = -HUGE_VAL, sf = 0, st = 0;
  for (int i = 0; i < c->E; i++) if (f->beta0[i] > mxf) mxf = f->beta0[i];
  for (int j = 0; j < c->Et; j++) if (t->beta0[j] > mxt) mxt = t->beta0[j];
  for (int i = 0; i < c->E; i++) sf += exp(f->beta0[i] - mxf);
  for (int j = 0; j < c->Et; j++) st += exp(t->beta0[j] - mxt);
  double *s2 = start + P;
  s2[0] = (mxf + log(sf)) - (mxt + log(st));
  for (int k = 0; k < D; k++) {
    double mf = 0, mt = 0;
    for (int i = 0; i < c->E; i++) mf += exp(f->beta0[i] - mxf) * f->beta1[(size_t)i * D + k];
    for (int j = 0; j < c->Et; j++) mt += exp(t->beta0[j] - mxt) * t->beta1[(size_t)j * D + k];
    s2[1 + k] = mf / sf - mt / st;
  }
  double best = routed_part(c, NULL, -1);
  moei_gsl_enter(); /* nmsimplex2 reports a non-finite cost through the handler */
  gsl_multimin_fminimizer *m = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, (size_t)P);
  gsl_vector *x = gsl_vector_alloc((size_t)P), *step = gsl_vector_alloc((size_t)P);
  if (m && x && step) {
    for (int a = 0; a < 2; a++) {
      memcpy(x->data, start + (size_t)a * P, (size_t)P * sizeof(double));
      if (!isfinite(x->data[0])) continue;
      gsl_vector_set_all(step, 0.5);
      gsl_multimin_function fn = {nm_f, (size_t)P, c};
      if (gsl_multimin_fminimizer_set(m, &fn, x, step)) continue;
      for (int it = 0; it < 2000; it++) {
        if (gsl_multimin_fminimizer_iterate(m)) break;
        if (gsl_multimin_fminimizer_size(m) < 1e-10) break;
      }
      double v = routed_part(c, m->x->data, -1);
      if (v < best) best = v;
    }
  }
  if (m) gsl_multimin_fminimizer_free(m);
  if (x) gsl_vector_free(x);
  if (step) gsl_vector_free(step);
  moei_gsl_leave();
  free(start);
  return best;
}

/* Minimise D3 over the common sigmoid scale (pitfall 4). */
static double min_over_scale(vctx *c)
{
  double mx = 0;
  for (int i = 0; i < c->E; i++) { double p = sigm(c->fit->beta0[i]); if (p > mx) mx = p; }
  double hi = log(1.0 / mx), lo = hi - log(1e4);
  const int G = 241;
  double best = routed_part(c, NULL, 1.0), bt = 0;
  int bk = -1;
  for (int k = 0; k < G; k++) {
    double lt = lo + (hi - lo) * k / (G - 1);
    double v = routed_part(c, NULL, exp(lt));
    if (v < best) { best = v; bk = k; bt = lt; }
  }
  if (bk >= 0) {   /* golden section on the bracket around the grid minimum */
    double h = (hi - lo) / (G - 1), a = bt - h, b = bt + h;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    const double g = 0.6180339887498949;
    double x1 = b - g * (b - a), x2 = a + g * (b - a);
    double f1 = routed_part(c, NULL, exp(x1)), f2 = routed_part(c, NULL, exp(x2));
    for (int it = 0; it < 60; it++) {
      if (f1 < f2) { b = x2; x2 = x1; f2 = f1; x1 = b - g * (b - a); f1 = routed_part(c, NULL, exp(x1)); }
      else { a = x1; x1 = x2; f1 = f2; x2 = a + g * (b - a); f2 = routed_part(c, NULL, exp(x2)); }
    }
    if (f1 < best) best = f1;
    if (f2 < best) best = f2;
  }
  return best;
}

static int vctx_init(vctx *c, const moe_gmoe *fit, const moe_gmoe *truth, const moe_gmoe *ref2,
                     moe_voronoi_kind kind, int topk, int align)
{
  memset(c, 0, sizeof *c);
  MOE_CHECK_ARG(fit && truth && ref2, "voronoi: NULL model");
  MOE_CHECK_ARG(fit->d == truth->d && fit->d == ref2->d, "voronoi: input widths differ (fit d=%d, truth d=%d)",
                fit->d, truth->d);
  MOE_CHECK_ARG(fit->shared_kind == truth->shared_kind && fit->routed_kind == truth->routed_kind &&
                    fit->routed_kind == ref2->routed_kind,
                "voronoi: fitted and true models have different expert kinds");
  MOE_CHECK_ARG(ref2->k2 <= 30, "voronoi: at most 30 reference routed atoms (got %d)", ref2->k2);
  c->fit = fit; c->truth = truth; c->ref2 = ref2;
  c->kind = kind; c->topk = topk;
  c->D = fit->d; c->S = fit->k1; c->St = truth->k1; c->E = fit->k2; c->Et = ref2->k2;
  c->Lk = kappa_len(fit); c->Le = fit->d + 1;
  const int D = c->D, S = c->S, St = c->St, E = c->E, Et = c->Et, Lk = c->Lk, Le = c->Le;
  c->ks = malloc((size_t)S * St * Lk * sizeof(double));
  c->kt = malloc((size_t)St * Lk * sizeof(double));
  c->es = malloc((size_t)E * Et * Le * sizeof(double));
  c->et = malloc((size_t)Et * Le * sizeof(double));
  c->cell1 = malloc((size_t)S * sizeof(int));
  c->cell2 = malloc((size_t)E * sizeof(int));
  c->vsize = malloc((size_t)Et * sizeof(int));
  c->b0 = malloc((size_t)E * sizeof(double));
  c->b1 = malloc((size_t)E * D * sizeof(double));
  if (!c->ks || !c->kt || !c->es || !c->et || !c->cell1 || !c->cell2 || !c->vsize || !c->b0 || !c->b1) {
    vctx_free(c);
    return moe_error(MOE_ENOMEM, "voronoi: no memory");
  }
  for (int j = 0; j < St; j++) kappa_vec(truth, j, c->kt + (size_t)j * Lk);
  for (int j = 0; j < Et; j++) eta_vec(ref2, j, c->et + (size_t)j * Le);
  for (int i = 0; i < S; i++)
    for (int j = 0; j < St; j++) {
      double *v = c->ks + ((size_t)i * St + j) * Lk;
      kappa_vec(fit, i, v);
      if (align && fit->shared_kind == MOE_GMOE_RELU)
        moe_voronoi_relu_align(D + 1, v, c->kt + (size_t)j * Lk, v);
    }
  for (int i = 0; i < E; i++)
    for (int j = 0; j < Et; j++) {
      double *v = c->es + ((size_t)i * Et + j) * Le;
      eta_vec(fit, i, v);
      if (align && fit->routed_kind == MOE_GMOE_RELU)
        moe_voronoi_relu_align(D, v, c->et + (size_t)j * Le, v);
    }
  c->shared_part = shared_terms(c);
  return MOE_OK;
}

int moe_voronoi_loss(const moe_gmoe *fit, const moe_gmoe *truth, const moe_voronoi_opts *o, double *loss)
{
  MOE_CHECK_ARG(fit && truth && o && loss, "voronoi_loss: NULL argument");
  MOE_CHECK_ARG(o->kind >= MOE_VORONOI_D1 && o->kind <= MOE_VORONOI_D5, "voronoi_loss: unknown loss D%d",
                (int)o->kind);
  const moe_gmoe *ref2 = truth;
  if (o->kind == MOE_VORONOI_D4) {
    MOE_CHECK_ARG(o->limit || (o->limits && o->nlimits > 0), "voronoi_loss: D4 needs the limit Ǧ2 (opts.limit)");
    if (o->limits && o->nlimits > 0) {   /* inf over the given limits */
      moe_voronoi_opts one = *o;
      one.limits = NULL;
      one.nlimits = 0;
      double best = INFINITY;
      for (int k = 0; k < o->nlimits; k++) {
        double v;
        one.limit = o->limits[k];
        int rc = moe_voronoi_loss(fit, truth, &one, &v);
        if (rc) return rc;
        if (v < best) best = v;
      }
      *loss = best;
      return MOE_OK;
    }
    ref2 = o->limit;
  }
  if (o->kind == MOE_VORONOI_D5)
    MOE_CHECK_ARG(o->topk >= 1 && o->topk <= truth->k2, "voronoi_loss: D5 needs 1 <= topk <= k2*=%d (got %d)",
                  truth->k2, o->topk);
  vctx c;
  int rc = vctx_init(&c, fit, truth, ref2, o->kind, o->topk, o->align_relu);
  if (rc) return rc;
  double routed;
  int softmax_loss = o->kind == MOE_VORONOI_D1 || o->kind == MOE_VORONOI_D2 || o->kind == MOE_VORONOI_D5;
  if (softmax_loss && o->min_shift) routed = min_over_shift(&c);
  else if (o->kind == MOE_VORONOI_D3 && o->sigmoid_scale) routed = min_over_scale(&c);
  else routed = routed_part(&c, NULL, -1);
  *loss = c.shared_part + routed;
  vctx_free(&c);
  if (!isfinite(*loss)) return moe_error(MOE_EDOM, "voronoi_loss: non-finite loss");
  return MOE_OK;
}

int moe_voronoi_cells(const moe_gmoe *fit, const moe_gmoe *truth, const moe_gmoe *ref2, int align_relu,
                      int *cell1, int *cell2)
{
  MOE_CHECK_ARG(cell1 && cell2, "voronoi_cells: NULL output");
  vctx c;
  int rc = vctx_init(&c, fit, truth, ref2 ? ref2 : truth, MOE_VORONOI_D1, 1, align_relu);
  if (rc) return rc;
  routed_part(&c, NULL, -1);
  memcpy(cell1, c.cell1, (size_t)c.S * sizeof(int));
  memcpy(cell2, c.cell2, (size_t)c.E * sizeof(int));
  vctx_free(&c);
  return MOE_OK;
}

int moe_voronoi_routed_error(const moe_gmoe *fit, const moe_gmoe *ref, int align_relu, double *err)
{
  MOE_CHECK_ARG(err, "voronoi_routed_error: NULL output");
  vctx c;
  int rc = vctx_init(&c, fit, ref, ref, MOE_VORONOI_D1, 1, align_relu);
  if (rc) return rc;
  const int E = c.E, Et = c.Et, Le = c.Le;
  /* cells on (η, ν) only: independent of the gate's parameterisation */
  for (int j = 0; j < Et; j++) c.vsize[j] = 0;
  for (int i = 0; i < E; i++) {
    int bj = 0;
    double bd = INFINITY;
    for (int j = 0; j < Et; j++) {
      double dn = fit->nu[i] - ref->nu[j];
      double dd = norm2(c.es + ((size_t)i * Et + j) * Le, c.et + (size_t)j * Le, Le) + dn * dn;
      if (dd < bd) { bd = dd; bj = j; }
    }
    c.cell2[i] = bj;
    c.vsize[bj]++;
  }
  int any_over = 0;
  for (int j = 0; j < Et; j++) any_over |= c.vsize[j] > 1;
  double m = 0;
  for (int i = 0; i < E; i++) {
    int j = c.cell2[i];
    if (any_over && c.vsize[j] < 2) continue;
    m = fmax(m, sqrt(norm2(c.es + ((size_t)i * Et + j) * Le, c.et + (size_t)j * Le, Le)));
  }
  *err = m;
  vctx_free(&c);
  return MOE_OK;
}
