/* SPDX-License-Identifier: GPL-3.0-or-later */
/* power.h — how many replications a paired comparison needs, and when a
 * sequential run may stop: the statistics behind report's power columns,
 * `moebench plan` and `moebench run --until-resolved`.
 *
 * Everything is about n paired differences d_1..d_n (a variant's metric
 * minus its baseline's, same replication), with mean m and sample sd s.
 *
 * Fixed n (the paired t test, two-sided, level alpha):
 *   p       = 2 P(T_{n-1} > |m| / (s / sqrt n))
 *   power   = P(|T'| > t_{1-alpha/2, n-1}),  T' noncentral t with n-1
 *             degrees of freedom and noncentrality delta sqrt n, where
 *             delta = effect / sigma (the standardised effect).
 *   P(T' > t) = E[Q(t sqrt(V/nu) - lambda)] with V ~ chi2_nu is integrated
 *   numerically (GSL QAG over the chi2 density's central 1 - 2e-14), so the
 *   noncentral t is exact to ~1e-12, not an approximation.
 *   MDE     = the delta whose power is `power` at this n (times s: metric
 *             units); n_for = the real n at which a given delta has that
 *             power (round up for a count). Same definitions as
 *             statsmodels' TTestPower (t/gen_power_fixtures.py checks).
 *
 * Families: Holm's step-down adjusted p-values (Holm 1979, "A simple
 * sequentially rejective multiple test procedure", Scand. J. Statist. 6):
 * sort p ascending, adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j)).
 *
 * Anytime-valid intervals (confidence sequences). The one used to stop is
 * the scale-invariant Gaussian-mixture t confidence sequence: Lai (1976),
 * "On confidence sequences", Ann. Statist. 4(2), with Lai's flat mixture
 * over the mean swapped for a Gaussian one as in Wang & Ramdas (2024),
 * "Anytime-valid t-tests and confidence sequences for Gaussian means with
 * unknown variance", Sequential Analysis. Against a mean mu, with
 * Q = sum (d_i - mu)^2 and S = sum (d_i - mu), the mixture (prior N(0,1/c)
 * on the standardised effect, right Haar over sigma) of the likelihood
 * ratios of the scale-invariant statistic is
 *     L_n(mu) = sqrt(c / (n + c)) (Q / (Q - S^2 / (n + c)))^(n/2),
 * a test martingale (L_1 = 1) under mu for Gaussian data whatever sigma,
 * so by Ville's inequality P(exists n: L_n(mu) >= 1/alpha) <= alpha. The
 * set {mu: L_n(mu) < 1/alpha} is the interval m +- h with
 *     K = exp((2/n) (log(1/alpha) + log((n + c)/c) / 2)),
 *     h^2 = (K - 1) (n - 1) s^2 / (n (1 - K c / (n + c)))
 * (the whole line while K c >= n + c). It is exact at every n >= 2 for
 * Gaussian differences, unlike the asymptotic CS below, which undercovers
 * at the n (2..30) of a benchmark (t/test_power.c measures both).
 *
 * The asymptotic CS (Waudby-Smith, Arnold, Wu & Ramdas 2024, "Time-uniform
 * central limit theory and asymptotic confidence sequences", Ann. Statist.,
 * Gaussian-mixture boundary with the running sd) is kept for comparison:
 *     h = s sqrt(2 (n rho2 + 1) / (n^2 rho2) log(sqrt(n rho2 + 1) / alpha)),
 *     rho2 = (-2 log alpha + log(-2 log alpha + 1)) / n_opt.
 *
 * Functions return NaN for arguments outside their domain (n < 2, s < 0,
 * alpha or power outside (0, 1)); they never exit. */
#ifndef MB_POWER_H
#define MB_POWER_H

#include <stddef.h>

#define MB_ALPHA 0.05 /* two-sided level of every interval and test */
#define MB_POWER 0.8  /* the power of "minimum detectable effect" */

/* Two-sided paired t power for standardised effect delta at (real) n >= 2. */
double mb_power_t(double delta, double n, double alpha);
/* Standardised minimum detectable effect at n: power(mde) = power. */
double mb_power_mde(double n, double alpha, double power);
/* The real n >= 2 at which delta reaches `power` (2 if it does at n = 2;
 * +inf if delta = 0 or above 1e7 replications). */
double mb_power_n_for(double delta, double alpha, double power);
/* Two-sided paired t p-value of mean m, sd s over n pairs (NaN if s = 0
 * and m = 0: a row compared with itself; 0 if s = 0 and m != 0). */
double mb_power_pvalue(double m, double s, size_t n);
/* Holm-adjusted p-values of p[0..k) into adj (NaN entries are left out of
 * the family and stay NaN). */
void mb_power_holm(const double *p, size_t k, double *adj);
/* The smallest n at which the fixed-n t interval's half-width
 * t_{1-alpha/2,n-1} s / sqrt n is at most w (0 if none up to nmax). */
long mb_power_n_halfwidth(double s, double w, double alpha, long nmax);

/* t-mixture confidence sequence: c tuned so that the half-width is
 * smallest at n_opt; the half-width at n (INFINITY while unbounded). */
double mb_cs_tmix_c(double alpha, double n_opt);
double mb_cs_tmix_halfwidth(size_t n, double s, double c, double alpha);
/* The smallest n at which that half-width is at most w, for sd s (0 if
 * none up to nmax). */
long mb_cs_tmix_n_halfwidth(double s, double w, double c, double alpha, long nmax);
/* Asymptotic (Gaussian-mixture, running variance) confidence sequence. */
double mb_cs_asymp_rho2(double alpha, double n_opt);
double mb_cs_asymp_halfwidth(size_t n, double s, double rho2, double alpha);

#endif
