/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_gmoe_mle.c — EM that reaches the MLE (issue 12): the full-likelihood
 * gradient against finite differences, SQUAREM and the polish never lower
 * the log-likelihood, the total-log-likelihood stopping rule, the starts,
 * the exact Thm 4 representation P* (its gate equals the truth's to
 * 1e-12), a fit that ended below the truth's log-likelihood under the
 * paper's rule and reaches it now, and gmoe-limit's fit landing on P*. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <unistd.h>

#include <gsl/gsl_errno.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/rng.h"
#include "moe/voronoi.h"
#include "tap.h"

static const char *const THMS[] = {"thm1", "thm2", "thm3", "thm4", "gatecmp"};

static void sample(const char *name, int d, size_t n, uint64_t seed, moe_gmoe **t, double **X, double **Y)
{
  moe_gmoe_truth(name, d, t);
  *X = malloc(n * (size_t)d * sizeof **X);
  *Y = malloc(n * sizeof **Y);
  gsl_rng *r = moe_rng_alloc(seed);
  moe_gmoe_sample(*t, r, n, *X, *Y);
  gsl_rng_free(r);
}

/* A fitting problem on truth `name`: n samples (seed), the model k1 = 2,
 * k2 = 3 started by `init` (init_seed), its workspace initialised. */
typedef struct {
  moe_gmoe *t, *m;
  double *X, *Y;
  moe_gmoe_em *w;
} problem;

static problem problem_new(const char *name, int d, size_t n, uint64_t seed, moe_gmoe_init_kind init,
                           uint64_t init_seed)
{
  problem p;
  sample(name, d, n, seed, &p.t, &p.X, &p.Y);
  p.m = moe_gmoe_alloc(d, 2, 3, p.t->gate, p.t->shared_kind, p.t->routed_kind);
  gsl_rng *r = moe_rng_alloc(init_seed);
  moe_gmoe_init_params(p.m, p.t, init, 0.5, r, n, p.X, p.Y);
  gsl_rng_free(r);
  p.w = moe_gmoe_em_alloc(p.m, n);
  moe_gmoe_em_init(p.w, p.m, n, p.X, p.Y);
  return p;
}

static void problem_free(problem *p)
{
  moe_gmoe_em_free(p->w);
  moe_gmoe_free(p->m);
  moe_gmoe_free(p->t);
  free(p->X);
  free(p->Y);
}

/* ∇ℓ by Fisher's identity against central differences of ℓ(θ). */
static void test_gradient(void)
{
  for (int e = 0; e < 5; e++)
    for (int d = 1; d <= 2; d++) {
      const size_t n = 300;
      problem pb = problem_new(THMS[e], d, n, 70 + e + 10 * d, MOE_GMOE_INIT_RANDOM, 3 + e);
      moe_gmoe *t = pb.t;
      moe_gmoe_em *w = pb.w;
      const int P = moe_gmoe_em_nparams(w);
      ok(P == 2 * (3 + d + (t->shared_kind == MOE_GMOE_RELU)) + 3 * (2 + 2 * d + 1), "%s d=%d: %d parameters", THMS[e], d, P);
      double th[64], g[64], gn;
      moe_gmoe_em_get_params(w, th);
      moe_gmoe_em_gradient(w, g, &gn);
      double worst = 0, gmax = 0;
      for (int q = 0; q < P; q++) {
        const double h = 1e-6 * fmax(1.0, fabs(th[q]));
        double tq = th[q], fp, fm;
        th[q] = tq + h; moe_gmoe_em_set_params(w, th); fp = moe_gmoe_em_loglik(w);
        th[q] = tq - h; moe_gmoe_em_set_params(w, th); fm = moe_gmoe_em_loglik(w);
        th[q] = tq;
        double fd = (fp - fm) / (2 * h);
        worst = fmax(worst, fabs(fd - g[q]));
        gmax = fmax(gmax, fabs(g[q]));
      }
      moe_gmoe_em_set_params(w, th);
      ok(worst <= 1e-6 * fmax(1.0, gmax), "%s d=%d: gradient = central differences (worst %.3g, max |g| %.3g)", THMS[e], d,
         worst, gmax);
      double s = 0;
      for (int q = 0; q < P; q++) s += g[q] * g[q];
      is_close(gn, sqrt(s * (double)n), 0, 1e-12, "%s d=%d: norm = sqrt(n) |g|", THMS[e], d);
      problem_free(&pb);
    }
}

/* The analytic Hessian (Louis' identity) against central differences of
 * the analytic gradient, on every truth's shape (both gates, top-K, ReLU
 * and linear experts), at a random start and at a point near the MLE;
 * its gradient output = moe_gmoe_em_gradient. */
static void test_hessian(void)
{
  for (int e = 0; e < 5; e++)
    for (int d = 1; d <= 2; d++)
      for (int near = 0; near <= 1; near++) {
        const size_t n = 400;
        problem pb =
            problem_new(THMS[e], d, n, 170 + e + 10 * d, near ? MOE_GMOE_INIT_TRUTH : MOE_GMOE_INIT_RANDOM, 13 + e);
        moe_gmoe_em *w = pb.w;
        if (near)
          for (int k = 0; k < 30; k++) moe_gmoe_em_squarem(w);
        const int P = moe_gmoe_em_nparams(w);
        double th[64], g[64], g0[64], gp[64], gm[64], *H = malloc((size_t)P * P * sizeof *H);
        moe_gmoe_em_get_params(w, th);
        moe_gmoe_em_gradient(w, g0, NULL);
        is_int(moe_gmoe_em_hessian(w, g, H), MOE_OK, "%s d=%d %s: hessian runs", THMS[e], d, near ? "near the MLE" : "random start");
        double gd = 0, gmax = 0;
        for (int q = 0; q < P; q++) { gd = fmax(gd, fabs(g[q] - g0[q])); gmax = fmax(gmax, fabs(g0[q])); }
        ok(gd <= 1e-12 * fmax(1.0, gmax), "%s d=%d %s: its gradient = moe_gmoe_em_gradient (diff %.3g)", THMS[e], d,
           near ? "near" : "random", gd);
        double worst = 0, hmax = 0, asym = 0;
        for (int q = 0; q < P; q++) {
          /* small h: near the MLE the gate can be nearly saturated, with
           * large third derivatives (the differences converge as h²) */
          const double h = 1e-7 * fmax(1.0, fabs(th[q]));
          const double tq = th[q];
          th[q] = tq + h; moe_gmoe_em_set_params(w, th); moe_gmoe_em_gradient(w, gp, NULL);
          th[q] = tq - h; moe_gmoe_em_set_params(w, th); moe_gmoe_em_gradient(w, gm, NULL);
          th[q] = tq;
          for (int u = 0; u < P; u++) {
            const double fd = (gp[u] - gm[u]) / (2 * h);
            worst = fmax(worst, fabs(fd - H[(size_t)u * P + q]));
            hmax = fmax(hmax, fabs(H[(size_t)u * P + q]));
            asym = fmax(asym, fabs(H[(size_t)u * P + q] - H[(size_t)q * P + u]));
          }
        }
        moe_gmoe_em_set_params(w, th);
        ok(worst <= 1e-5 * fmax(1.0, hmax), "%s d=%d %s: Hessian = central differences of the gradient (worst %.3g, max |H| %.3g)",
           THMS[e], d, near ? "near" : "random", worst, hmax);
        ok(asym == 0, "%s d=%d %s: Hessian exactly symmetric", THMS[e], d, near ? "near" : "random");
        free(H);
        problem_free(&pb);
      }
  ok(moe_gmoe_em_hessian(NULL, NULL, NULL) == MOE_EINVAL, "hessian(NULL): EINVAL");
}

/* The scores' outer product B = (1/N) Σ s_n s_nᵀ against the per-sample
 * scores taken one sample at a time (a workspace of N = 1 at each point:
 * its gradient is that sample's score), and its gradient = the gradient. */
static void test_score_outer(void)
{
  for (int e = 0; e < 5; e++)
    for (int d = 1; d <= 2; d++) {
      const size_t n = 300;   /* more than one block of 256 */
      problem pb = problem_new(THMS[e], d, n, 170 + e + 10 * d, MOE_GMOE_INIT_RANDOM, 33 + e);
      moe_gmoe *m = pb.m;
      const double *X = pb.X, *Y = pb.Y;
      moe_gmoe_em *w = pb.w, *w1 = moe_gmoe_em_alloc(m, 1);
      const int P = moe_gmoe_em_nparams(w);
      double g[64], g0[64], s1[64], *B = malloc((size_t)P * P * sizeof *B), *Bref = calloc((size_t)P * P, sizeof *Bref);
      is_int(moe_gmoe_em_score_outer(w, g, B), MOE_OK, "%s d=%d: score_outer runs", THMS[e], d);
      moe_gmoe_em_gradient(w, g0, NULL);
      double gd = 0;
      for (int q = 0; q < P; q++) gd = fmax(gd, fabs(g[q] - g0[q]));
      for (size_t t1 = 0; t1 < n; t1++) {
        moe_gmoe_em_init(w1, m, 1, X + t1 * d, Y + t1);
        moe_gmoe_em_gradient(w1, s1, NULL);
        for (int q = 0; q < P; q++)
          for (int u = 0; u < P; u++) Bref[(size_t)q * P + u] += s1[q] * s1[u] / (double)n;
      }
      double bd = 0, bmax = 0, asym = 0;
      for (int q = 0; q < P * P; q++) {
        bd = fmax(bd, fabs(B[q] - Bref[q]));
        bmax = fmax(bmax, fabs(Bref[q]));
      }
      for (int q = 0; q < P; q++)
        for (int u = 0; u < P; u++) asym = fmax(asym, fabs(B[(size_t)q * P + u] - B[(size_t)u * P + q]));
      ok(gd <= 1e-12 * fmax(1.0, fabs(g0[0])) + 1e-14, "%s d=%d: its gradient = moe_gmoe_em_gradient (diff %.3g)", THMS[e], d, gd);
      ok(bd <= 1e-10 * bmax && asym == 0, "%s d=%d: B = mean of per-sample score outer products (diff %.3g of %.3g)",
         THMS[e], d, bd, bmax);
      free(B);
      free(Bref);
      moe_gmoe_em_free(w1);
      problem_free(&pb);
    }
  ok(moe_gmoe_em_score_outer(NULL, NULL, NULL) == MOE_EINVAL, "score_outer(NULL): EINVAL");
  moe_error_clear();
}

/* SQUAREM cycles and the polish never lower ℓ; the polish (second order,
 * or BFGS rounds only) ends at a stationary point; TOL_TOTAL is
 * N |Δℓ| ≤ tol. */
static void test_monotone(int second_order)
{
  const char *pk = second_order ? "second-order polish" : "BFGS polish";
  for (int e = 0; e < 5; e++) {
    const size_t n = 600;
    moe_gmoe *t;
    double *X, *Y;
    sample(THMS[e], 1, n, 90 + e, &t, &X, &Y);
    moe_gmoe *m = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
    gsl_rng *r = moe_rng_alloc(11 + e);
    moe_gmoe_init_params(m, t, MOE_GMOE_INIT_RANDOM, 0.5, r, n, X, Y);
    gsl_rng_free(r);
    moe_gmoe_em *w = moe_gmoe_em_alloc(m, n);
    moe_gmoe_em_set_inner(w, 3, 1e-6);
    moe_gmoe_em_set_polish(w, second_order);
    moe_gmoe_em_init(w, m, n, X, Y);
    double prev = moe_gmoe_em_loglik(w), worst = 0;
    int rule_ok = 1, fails = 0;
    for (int it = 0; it < 40; it++) {
      if (moe_gmoe_em_squarem(w)) { fails++; break; }
      double ll = moe_gmoe_em_loglik(w);
      worst = fmax(worst, prev - ll);
      int want = (double)n * fabs(ll - prev) <= 0.05;
      if ((moe_gmoe_em_test(w, 0.05, MOE_GMOE_TOL_TOTAL) == MOE_OK) != want) rule_ok = 0;
      prev = ll;
    }
    ok(!fails, "%s: 40 SQUAREM cycles ran", THMS[e]);
    ok(worst <= 1e-12 * fabs(prev), "%s: SQUAREM never lowers the log-likelihood (worst drop %.3g)", THMS[e], worst);
    ok(rule_ok, "%s: em_test TOL_TOTAL is n |dl| <= tol", THMS[e]);
    ok(moe_gmoe_em_iterations(w) >= 80, "%s: every EM map counted (%d >= 2 per cycle)", THMS[e], moe_gmoe_em_iterations(w));
    int pit = 0;
    double gn = NAN, before = moe_gmoe_em_loglik(w);
    int how = -1;
    is_int(moe_gmoe_em_polish(w, 3000, 1e-3, &pit, &gn, &how), MOE_OK, "%s: %s runs", THMS[e], pk);
    ok(moe_gmoe_em_loglik(w) >= before - 1e-13 * fabs(before), "%s: %s never lowers the log-likelihood (%.10f -> %.10f)",
       THMS[e], pk, before, moe_gmoe_em_loglik(w));
    double ll;
    moe_gmoe_loglik(m, n, X, Y, &ll);
    is_close(moe_gmoe_em_loglik(w), ll, 1e-12, 1e-12, "%s: the model holds the polished point", THMS[e]);
    ok(how == 1 || how == 2, "%s: %s ends at a stationary point or a flat/kink maximum (how %d, %d iterations, "
       "sqrt(n)|grad| %.3g)", THMS[e], pk, how, pit, gn);
    ok(how != 1 || gn <= 1e-3, "%s: %s: how = 1 means the gradient test was met", THMS[e], pk);
    moe_gmoe_em_free(w);
    moe_gmoe_free(m);
    moe_gmoe_free(t);
    free(X);
    free(Y);
  }
}

/* P*: the same gate and density as thm4; the padded truth nearly so. */
static void test_pstar(void)
{
  for (int d = 1; d <= 3; d++) {
    moe_gmoe *t, *p, *pad;
    moe_gmoe_truth("thm4", d, &t);
    is_int(moe_gmoe_truth("thm4-pstar", d, &p), MOE_OK, "d=%d: thm4-pstar exists", d);
    is_int(moe_gmoe_truth("thm4-pad2", d, &pad), MOE_OK, "d=%d: thm4-pad2 exists", d);
    ok(p->k1 == 1 && p->k2 == 3 && p->gate == MOE_GMOE_NSIGMOID, "d=%d: P* has 3 routed atoms", d);
    is_close(p->beta0[0], -log(M_E - 2), 0, 1e-15, "d=%d: P* atom 1 beta0 = -ln(e-2)", d);
    is_close(1.0 / (1.0 + exp(-p->beta0[0])), 1.0 / (M_E - 1), 1e-15, 0, "d=%d: sigma(-ln(e-2)) = 1/(e-1)", d);
    double worst = 0, worstd = 0, worstp = 0;
    gsl_rng *r = moe_rng_alloc(5);
    for (int k = 0; k < 2000; k++) {
      double x[3], gt[2], gp[3], gq[3];
      for (int a = 0; a < d; a++) x[a] = -6 + 12 * gsl_rng_uniform(r);   /* also outside [-3, 3] */
      moe_gmoe_gate_eval(t, x, gt);
      moe_gmoe_gate_eval(p, x, gp);
      moe_gmoe_gate_eval(pad, x, gq);
      worst = fmax(worst, fmax(fabs(gp[0] - gt[0]), fabs(gp[1] + gp[2] - gt[1])));
      if (fabs(x[0]) <= 3 && (d < 2 || fabs(x[1]) <= 3) && (d < 3 || fabs(x[2]) <= 3))
        worstp = fmax(worstp, fmax(fabs(gq[0] - gt[0]), fabs(gq[1] + gq[2] - gt[1])));
      double y = -10 + 20 * gsl_rng_uniform(r);
      worstd = fmax(worstd, fabs(moe_gmoe_logdensity(p, x, y) - moe_gmoe_logdensity(t, x, y)));
    }
    gsl_rng_free(r);
    ok(worst <= 1e-12, "d=%d: P*'s gate (atoms 2+3 carry expert 2) equals the truth's to 1e-12 (worst %.3g)", d, worst);
    ok(worstd <= 1e-12, "d=%d: P*'s log-density equals the truth's (worst %.3g)", d, worstd);
    ok(worstp <= 1e-6 && worstp > 0, "d=%d: on [-3,3]^d the padded truth's gate is within 1e-6 of the truth's (%.3g)", d,
       worstp);
    moe_gmoe_free(t);
    moe_gmoe_free(p);
    moe_gmoe_free(pad);
  }
  moe_gmoe *x = NULL;
  ok(moe_gmoe_truth("thm4-nope", 1, &x) == MOE_EINVAL && !x, "thm4-nope: unknown");
  ok(strstr(moe_last_error(), "thm4-pstar") != NULL, "message lists thm4-pstar: %s", moe_last_error());
}

/* SLOPE0 gives the duplicated normalised-sigmoid atom slope 0; COPY the
 * true slope; softmax splits keep the slope. */
static void test_starts(void)
{
  moe_gmoe *t4, *t1;
  moe_gmoe_truth("thm4", 1, &t4);
  moe_gmoe_truth("thm1", 1, &t1);
  moe_gmoe *m4 = moe_gmoe_alloc(1, 2, 3, t4->gate, t4->shared_kind, t4->routed_kind);
  moe_gmoe *m1 = moe_gmoe_alloc(1, 2, 3, t1->gate, t1->shared_kind, t1->routed_kind);
  gsl_rng *r = moe_rng_alloc(1);
  is_int(moe_gmoe_init_start(m4, t4, MOE_GMOE_START_SLOPE0, 1, 0.0, r), MOE_OK, "slope0 start");
  ok(m4->beta1[0] == 5 && m4->beta1[1] == 5 && m4->beta1[2] == 0, "slope0: slopes (5, 5, 0): %g %g %g", m4->beta1[0],
     m4->beta1[1], m4->beta1[2]);
  is_close(1 / (1 + exp(-m4->beta0[2])), 0.5 / (1 + exp(-0.5)), 1e-15, 0, "slope0: the copy's sigmoid is half the true one");
  is_int(moe_gmoe_init_start(m4, t4, MOE_GMOE_START_COPY, 1, 0.0, r), MOE_OK, "copy start");
  ok(m4->beta1[2] == 5, "copy: the duplicate keeps slope 5");
  is_int(moe_gmoe_init_start(m1, t1, MOE_GMOE_START_SLOPE0, 0, 0.0, r), MOE_OK, "softmax slope0 start");
  ok(m1->beta1[2] == 5 && fabs(m1->beta0[2] - (-0.5 - log(2))) < 1e-15, "softmax: exact split (slope 5, beta0 - log 2)");
  /* the exact start: P* embedded as is */
  moe_gmoe *p;
  moe_gmoe_truth("thm4-pstar", 1, &p);
  is_int(moe_gmoe_init_start(m4, p, MOE_GMOE_START_SLOPE0, -1, 0.0, r), MOE_OK, "exact start from P*");
  ok(m4->beta1[0] == 0 && m4->beta1[1] == 0 && m4->beta1[2] == -5, "exact start: P*'s slopes");
  ok(moe_gmoe_init_start(m4, t4, MOE_GMOE_START_SLOPE0, 2, 0.0, r) == MOE_EINVAL, "dup_routed out of range: EINVAL");
  gsl_rng_free(r);
  moe_gmoe_free(p);
  moe_gmoe_free(m4);
  moe_gmoe_free(m1);
  moe_gmoe_free(t4);
  moe_gmoe_free(t1);
}

/* Regression (issue 12): thm4 at n = 4000: the paper's rule (relative 1e-6
 * on the mean log-likelihood, one GEM step, copied slope) stops below the
 * truth's log-likelihood; the default fit reaches a stationary point above
 * it. */
static void test_below_truth_regression(void)
{
  const size_t n = 4000;
  moe_gmoe *t;
  double *X, *Y;
  sample("thm4", 1, n, 2, &t, &X, &Y);
  double llt;
  moe_gmoe_loglik(t, n, X, Y, &llt);
  moe_gmoe *f = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
  moe_gmoe_fit_opts o;
  moe_gmoe_fit_info fi;
  moe_gmoe_fit_opts_default(&o);
  o.tol = 1e-6; o.tol_kind = MOE_GMOE_TOL_REL; o.inner_iter = 1; o.squarem = 0; o.polish = 0;
  o.start = MOE_GMOE_START_COPY;
  is_int(moe_gmoe_fit(f, t, n, X, Y, &o, 2505, &fi), MOE_OK, "paper rule fit");
  ok(fi.loglik < llt, "paper rule: ends BELOW the truth (gap %.3g nats/point, %d iterations, grad %.3g)", fi.loglik - llt,
     fi.iterations, fi.grad_norm);
  ok(!fi.stationary, "paper rule: not a stationary point");
  moe_gmoe_fit_opts_default(&o);
  is_int(moe_gmoe_fit(f, t, n, X, Y, &o, 2505, &fi), MOE_OK, "default fit");
  ok(fi.loglik >= llt, "default: ends above the truth (gap %.3g, %d EM maps, %d polish)", fi.loglik - llt, fi.iterations,
     fi.polish_iters);
  ok(fi.stationary && fi.grad_norm <= o.grad_tol, "default: stationary (sqrt(n)|grad| %.3g)", fi.grad_norm);
  ok(fi.loglik >= fi.loglik_em, "default: the polish did not lower the log-likelihood");
  moe_gmoe_free(f);
  moe_gmoe_free(t);
  free(X);
  free(Y);
}

/* gmoe-limit's construction (one n = 10^6 fit per branch, cached in
 * experiments/limits/thm4.txt): its branch 1 (extra atom duplicating true
 * expert 2) lands on P*; branch 0 (duplicating expert 1) is the truth with
 * a nearly vanishing atom, far from P*. */
static void test_limit_finds_pstar(void)
{
  const char *path = tap_datafile("../experiments/limits/thm4.txt");
  moe_gmoe **lims = NULL, *t, *p;
  int nl = 0;
  is_int(moe_gmoe_read_all(path, &lims, &nl), MOE_OK, "read %s", path);
  if (nl != 2) { ok(0, "two branches"); return; }
  moe_gmoe_truth("thm4", 1, &t);
  moe_gmoe_truth("thm4-pstar", 1, &p);
  moe_voronoi_opts vo;
  moe_voronoi_opts_default(&vo, MOE_VORONOI_D4);
  vo.limit = p;
  double d0, d1;
  moe_voronoi_loss(lims[1], t, &vo, &d1);
  moe_voronoi_loss(lims[0], t, &vo, &d0);
  ok(d1 < 0.6, "gmoe-limit branch 1 is near P*: D4(branch 1; P*) = %.3g", d1);
  ok(d0 > 10, "branch 0 is not: D4(branch 0; P*) = %.3g", d0);
  /* the routed atoms one by one: within 0.25 of P*'s (β0, β1), 0.01 of its η */
  int c1[2], c2[3];
  moe_voronoi_cells(lims[1], t, p, 1, c1, c2);
  int perm = c2[0] != c2[1] && c2[1] != c2[2] && c2[0] != c2[2];
  ok(perm, "branch 1's routed atoms fall in distinct P* cells (%d %d %d)", c2[0], c2[1], c2[2]);
  double wb = 0, we = 0;
  for (int i = 0; i < 3 && perm; i++) {
    int j = c2[i];
    wb = fmax(wb, fmax(fabs(lims[1]->beta0[i] - p->beta0[j]), fabs(lims[1]->beta1[i] - p->beta1[j])));
    we = fmax(we, fmax(fabs(lims[1]->eta0[i] - p->eta0[j]), fabs(lims[1]->eta1[i] - p->eta1[j])));
  }
  ok(perm && wb < 0.25 && we < 0.01, "branch 1 atom by atom: gate within %.3g, experts within %.3g of P*", wb, we);
  moe_gmoe_free_all(lims, nl);
  moe_gmoe_free(t);
  moe_gmoe_free(p);
}

/* Regression: a saturated softmax gate (one expert takes everything, the
 * others get weights ~1e-317) made the gate Hessian subnormal, and GSL's
 * symmetric eigensolver never returned. Now the step is refused (BFGS
 * fallback) and the EM map ends; the test hangs if the bug returns. */
static void hung(int sig)
{
  static const char msg[] = "not ok - saturated gate: the EM map never ended (the eigensolver loop is back)\n";
  (void)sig;
  if (write(1, msg, sizeof msg - 1) < 0) _exit(2);
  _exit(1);
}

static void test_saturated_gate(void)
{
  signal(SIGALRM, hung);
  alarm(300);   /* a guard against the hang, not a timing assertion: the maps take milliseconds */
  const size_t n = 200;
  moe_gmoe *t;
  double *X, *Y;
  sample("thm1", 1, n, 5, &t, &X, &Y);
  moe_gmoe *m = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
  gsl_rng *r = moe_rng_alloc(2);
  moe_gmoe_init_start(m, t, MOE_GMOE_START_SLOPE0, -1, 0.0, r);
  gsl_rng_free(r);
  m->beta0[0] = 729; m->beta0[1] = 0; m->beta0[2] = 0;
  m->beta1[0] = m->beta1[1] = m->beta1[2] = 0;
  moe_gmoe_em *w = moe_gmoe_em_alloc(m, n);
  moe_gmoe_em_set_inner(w, 5, 1e-6);
  is_int(moe_gmoe_em_init(w, m, n, X, Y), MOE_OK, "saturated gate: E-step");
  double ll0 = moe_gmoe_em_loglik(w);
  int rc = MOE_OK;
  for (int k = 0; k < 3 && !rc; k++) rc = moe_gmoe_em_iterate(w);
  alarm(0);
  is_int(rc, MOE_OK, "saturated gate: three EM maps end");
  ok(moe_gmoe_em_loglik(w) >= ll0, "saturated gate: log-likelihood did not drop");
  moe_gmoe_em_free(w);
  moe_gmoe_free(m);
  moe_gmoe_free(t);
  free(X);
  free(Y);
}

static void test_errors(void)
{
  moe_gmoe *t;
  moe_gmoe_truth("thm1", 1, &t);
  double X[4] = {0, 1, 2, 3}, Y[4] = {0, 1, 2, 3};
  moe_gmoe_fit_opts o;
  moe_gmoe_fit_opts_default(&o);
  ok(o.tol_kind == MOE_GMOE_TOL_TOTAL && o.squarem == 1 && o.polish > 0 && o.inner_iter > 1, "defaults aim at the MLE");
  o.polish = -1;
  moe_gmoe *f = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
  is_int(moe_gmoe_fit(f, t, 4, X, Y, &o, 1, NULL), MOE_EINVAL, "polish < 0: EINVAL");
  ok(moe_gmoe_em_polish(NULL, 1, 1, NULL, NULL, NULL) == MOE_EINVAL, "polish(NULL): EINVAL");
  ok(moe_gmoe_em_squarem(NULL) == MOE_EINVAL, "squarem(NULL): EINVAL");
  ok(moe_gmoe_em_gradient(NULL, NULL, NULL) == MOE_EINVAL, "gradient(NULL): EINVAL");
  moe_gmoe_em *w = moe_gmoe_em_alloc(f, 4);
  ok(moe_gmoe_em_polish(w, 1, 1, NULL, NULL, NULL) == MOE_EINVAL, "polish before init: EINVAL");
  moe_gmoe_em_init(w, f, 4, X, Y);
  ok(moe_gmoe_em_polish(w, 1, 0, NULL, NULL, NULL) == MOE_EINVAL, "grad_tol 0: EINVAL");
  double th[64];
  moe_gmoe_em_get_params(w, th);
  th[0] = NAN;
  ok(moe_gmoe_em_set_params(w, th) == MOE_EDOM, "NaN parameter: EDOM");
  moe_gmoe_em_free(w);
  moe_gmoe_free(f);
  moe_gmoe_free(t);
}

int main(void)
{
  gsl_set_error_handler_off();
  test_gradient();
  test_score_outer();
  test_hessian();
  test_monotone(1);
  test_monotone(0);
  test_pstar();
  test_starts();
  test_below_truth_regression();
  test_limit_finds_pstar();
  test_saturated_gate();
  test_errors();
  return tap_done();
}
