/* SPDX-License-Identifier: GPL-3.0-or-later */
/* power.c — paired t power, Holm, and confidence sequences (see power.h).
 *
 * Harness code, not libmoe: these serve the report and the runner, and
 * keeping them here leaves libmoe's ABI alone. GSL does the special
 * functions, quadrature, root finding and minimisation; the caller has
 * GSL's error handler off (moebench.c does), so a GSL failure comes back
 * as a status and ends as NaN here. */
#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_min.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_roots.h>

#include "power.h"

/* ---- the noncentral t ---- */

typedef struct {
  double nu, tc, lambda;
} nct_arg;

/* The two tails at +-tc of (Z + lambda) / sqrt(V / nu), given V = v. */
static double tails_given_v(double v, void *p)
{
  const nct_arg *a = p;
  double s = sqrt(v / a->nu);
  return (gsl_cdf_ugaussian_Q(a->tc * s - a->lambda) +
          gsl_cdf_ugaussian_P(-a->tc * s - a->lambda)) *
         gsl_ran_chisq_pdf(v, a->nu);
}

/* P(|T'| > tc) for T' noncentral t(nu, lambda): E over V ~ chi2_nu. */
static double nct_two_tails(double tc, double nu, double lambda)
{
  nct_arg a = {nu, tc, lambda};
  gsl_function f = {tails_given_v, &a};
  double lo = gsl_cdf_chisq_Pinv(1e-14, nu), hi = gsl_cdf_chisq_Qinv(1e-14, nu), r, e;
  if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
    return NAN;
  gsl_integration_workspace *w = gsl_integration_workspace_alloc(200);
  if (!w)
    return NAN;
  int st = gsl_integration_qag(&f, lo, hi, 1e-14, 1e-11, 200, GSL_INTEG_GAUSS61, w, &r, &e);
  gsl_integration_workspace_free(w);
  return st && st != GSL_EROUND ? NAN : r;
}

double mb_power_t(double delta, double n, double alpha)
{
  if (!(n >= 2) || !(alpha > 0 && alpha < 1) || !isfinite(delta))
    return NAN;
  double nu = n - 1, tc = gsl_cdf_tdist_Qinv(alpha / 2, nu);
  return nct_two_tails(tc, nu, fabs(delta) * sqrt(n));
}

/* ---- solving power = target ---- */

typedef struct {
  double n, delta, alpha, power;
} solve_arg;

static double power_gap_delta(double delta, void *p)
{
  const solve_arg *a = p;
  return mb_power_t(delta, a->n, a->alpha) - a->power;
}

static double power_gap_n(double n, void *p)
{
  const solve_arg *a = p;
  return mb_power_t(a->delta, n, a->alpha) - a->power;
}

/* The root of f in [lo, hi] (f(lo) < 0 < f(hi)) by Brent's method. */
static double brent(gsl_function *f, double lo, double hi)
{
  gsl_root_fsolver *s = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
  if (!s || gsl_root_fsolver_set(s, f, lo, hi)) {
    if (s)
      gsl_root_fsolver_free(s);
    return NAN;
  }
  double x = NAN;
  for (int i = 0; i < 200; i++) {
    if (gsl_root_fsolver_iterate(s)) {
      x = NAN;
      break;
    }
    x = gsl_root_fsolver_root(s);
    if (gsl_root_test_interval(gsl_root_fsolver_x_lower(s), gsl_root_fsolver_x_upper(s), 0,
                               1e-12) == GSL_SUCCESS)
      break;
  }
  gsl_root_fsolver_free(s);
  return x;
}

double mb_power_mde(double n, double alpha, double power)
{
  if (!(n >= 2) || !(alpha > 0 && alpha < 1) || !(power > alpha && power < 1))
    return NAN;
  solve_arg a = {n, 0, alpha, power};
  gsl_function f = {power_gap_delta, &a};
  double hi = 1;
  while (power_gap_delta(hi, &a) < 0) { /* power rises with delta */
    hi *= 2;
    if (hi > 1e9)
      return NAN;
  }
  return brent(&f, 0, hi);
}

double mb_power_n_for(double delta, double alpha, double power)
{
  if (!isfinite(delta) || !(alpha > 0 && alpha < 1) || !(power > alpha && power < 1))
    return NAN;
  if (delta == 0)
    return INFINITY;
  solve_arg a = {0, fabs(delta), alpha, power};
  gsl_function f = {power_gap_n, &a};
  if (power_gap_n(2, &a) >= 0)
    return 2;
  double lo = 2, hi = 4;
  while (power_gap_n(hi, &a) < 0) {
    lo = hi;
    hi *= 2;
    if (hi > 1e7)
      return INFINITY;
  }
  return brent(&f, lo, hi);
}

double mb_power_pvalue(double m, double s, size_t n)
{
  if (n < 2 || !(s >= 0) || !isfinite(m))
    return NAN;
  if (s == 0)
    return m == 0 ? NAN : 0;
  double t = fabs(m) / (s / sqrt((double)n));
  return 2 * gsl_cdf_tdist_Q(t, (double)(n - 1));
}

/* ---- Holm ---- */

static const double *holm_p;
static int holm_cmp(const void *a, const void *b)
{
  double x = holm_p[*(const size_t *)a], y = holm_p[*(const size_t *)b];
  if (x != y)
    return x < y ? -1 : 1;
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  return i < j ? -1 : i > j;
}

void mb_power_holm(const double *p, size_t k, double *adj)
{
  size_t *ix = malloc((k ? k : 1) * sizeof *ix), m = 0;
  for (size_t i = 0; i < k; i++) {
    adj[i] = NAN;
    if (!isnan(p[i]) && ix)
      ix[m++] = i;
  }
  if (!ix)
    return;
  holm_p = p;
  qsort(ix, m, sizeof *ix, holm_cmp);
  double run = 0; /* step-down: an adjusted p never falls below an earlier one */
  for (size_t j = 0; j < m; j++) {
    double a = (double)(m - j) * p[ix[j]];
    if (a > 1)
      a = 1;
    if (a > run)
      run = a;
    adj[ix[j]] = run;
  }
  free(ix);
}

long mb_power_n_halfwidth(double s, double w, double alpha, long nmax)
{
  if (!(s >= 0) || !(w > 0) || !(alpha > 0 && alpha < 1))
    return 0;
  for (long n = 2; n <= nmax; n++)
    if (gsl_cdf_tdist_Qinv(alpha / 2, (double)(n - 1)) * s / sqrt((double)n) <= w)
      return n;
  return 0;
}

/* ---- confidence sequences ---- */

double mb_cs_tmix_halfwidth(size_t n, double s, double c, double alpha)
{
  if (n < 2 || !(s >= 0) || !(c > 0) || !(alpha > 0 && alpha < 1))
    return NAN;
  double N = (double)n;
  double K = exp((2 / N) * (log(1 / alpha) + 0.5 * log((N + c) / c)));
  double room = 1 - K * c / (N + c);
  if (!(room > 0))
    return INFINITY;
  return sqrt((K - 1) * (N - 1) * s * s / (N * room));
}

typedef struct {
  double n, alpha;
} tmix_arg;

static double tmix_width_logc(double lc, void *p)
{
  const tmix_arg *a = p;
  double h = mb_cs_tmix_halfwidth((size_t)a->n, 1, exp(lc), a->alpha);
  return isfinite(h) ? h : 1e300;
}

double mb_cs_tmix_c(double alpha, double n_opt)
{
  if (!(alpha > 0 && alpha < 1) || !(n_opt >= 2))
    return NAN;
  tmix_arg a = {floor(n_opt), alpha};
  gsl_function f = {tmix_width_logc, &a};
  /* a start inside the valley: the widths on a coarse grid of log c */
  double best = 0, bw = INFINITY;
  for (double lc = -12; lc <= 6; lc += 0.25) {
    double w = tmix_width_logc(lc, &a);
    if (w < bw) {
      bw = w;
      best = lc;
    }
  }
  gsl_min_fminimizer *m = gsl_min_fminimizer_alloc(gsl_min_fminimizer_brent);
  if (!m)
    return exp(best);
  if (gsl_min_fminimizer_set(m, &f, best, best - 0.25, best + 0.25) == GSL_SUCCESS) {
    for (int i = 0; i < 100; i++) {
      if (gsl_min_fminimizer_iterate(m))
        break;
      if (gsl_min_test_interval(gsl_min_fminimizer_x_lower(m), gsl_min_fminimizer_x_upper(m), 1e-9,
                                0) == GSL_SUCCESS)
        break;
    }
    best = gsl_min_fminimizer_x_minimum(m);
  }
  gsl_min_fminimizer_free(m);
  return exp(best);
}

long mb_cs_tmix_n_halfwidth(double s, double w, double c, double alpha, long nmax)
{
  if (!(s >= 0) || !(w > 0))
    return 0;
  for (long n = 2; n <= nmax; n++)
    if (mb_cs_tmix_halfwidth((size_t)n, s, c, alpha) <= w)
      return n;
  return 0;
}

double mb_cs_asymp_rho2(double alpha, double n_opt)
{
  if (!(alpha > 0 && alpha < 1) || !(n_opt > 0))
    return NAN;
  double l = -2 * log(alpha);
  return (l + log(l + 1)) / n_opt;
}

double mb_cs_asymp_halfwidth(size_t n, double s, double rho2, double alpha)
{
  if (n < 1 || !(s >= 0) || !(rho2 > 0) || !(alpha > 0 && alpha < 1))
    return NAN;
  double N = (double)n, a = N * rho2 + 1;
  return s * sqrt(2 * a / (N * N * rho2) * log(sqrt(a) / alpha));
}
