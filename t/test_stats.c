/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_stats.c — the stats module: summaries checked by hand, log-log fits
 * on data with a known slope, bootstrap determinism, every error path.
 * Reference numbers: mean/sd by hand (below) and numpy (np.polyfit with
 * cov=True, np.std(ddof=1)); t_{0.975,4} = 2.7764451051977987 (tables). */
#include <math.h>

#include "moe/error.h"
#include "moe/stats.h"
#include "tap.h"

int main(void)
{
  moe_stats_summary s;
  /* 2.385 1.25 3.5 0.75 4.125: sum 12.01, mean 2.402; squared deviations
   * 0.000289 1.327104 1.205604 2.729104 2.968729 sum 8.23083, var 2.0577075 */
  const double a[] = {2.385, 1.25, 3.5, 0.75, 4.125};
  is_int(moe_stats_summarize(a, 5, &s), MOE_OK, "summary of 5 values");
  is_int((long)s.n, 5, "n");
  is_close(s.mean, 2.402, 1e-15, 0, "mean");
  is_close(s.sd, sqrt(2.0577075), 1e-14, 0, "sd (n-1)");
  is_close(s.se, sqrt(2.0577075 / 5), 1e-14, 0, "se");
  is_close(s.ci95_lo, 2.402 - 2.7764451051977987 * sqrt(2.0577075 / 5), 1e-12, 0, "ci95 low (t quantile)");
  is_close(s.ci95_hi, 2.402 + 2.7764451051977987 * sqrt(2.0577075 / 5), 1e-12, 0, "ci95 high");
  is_close(s.median, 2.385, 0, 0, "median (odd n)");
  is_close(s.min, 0.75, 0, 0, "min");
  is_close(s.max, 4.125, 0, 0, "max");
  is_close(a[0], 2.385, 0, 0, "input left unsorted");

  const double b[] = {4.25, 1.5, 3.75, 2.5};
  moe_stats_summarize(b, 4, &s);
  is_close(s.median, 3.125, 0, 0, "median (even n) = mean of middle two");

  const double c[] = {1.875};
  is_int(moe_stats_summarize(c, 1, &s), MOE_OK, "summary of one value");
  ok(s.mean == 1.875 && isnan(s.sd) && isnan(s.se) && isnan(s.ci95_lo), "n=1: mean, NaN spread");
  is_int(moe_stats_summarize(c, 0, &s), MOE_EINVAL, "empty sample: EINVAL");
  const double bad[] = {1.0, NAN};
  is_int(moe_stats_summarize(bad, 2, &s), MOE_EDOM, "NaN: EDOM");
  ok(strstr(moe_last_error(), "x[1]") != NULL, "message names the index: %s", moe_last_error());

  /* exact power law: slope -0.5, intercept log 3.7 */
  const double n[] = {100, 178, 316, 562, 1000};
  double y[5], z[5];
  for (int i = 0; i < 5; i++) y[i] = 3.7 * pow(n[i], -0.5);
  moe_stats_fit f;
  is_int(moe_stats_fit_loglog(n, y, 5, MOE_STATS_X_LOG, &f), MOE_OK, "fit exact power law");
  is_close(f.slope, -0.5, 1e-13, 0, "slope -0.5");
  is_close(f.intercept, log(3.7), 1e-12, 0, "intercept log 3.7");
  ok(f.slope_se < 1e-12 && f.r2 > 1 - 1e-12, "no residual: se %.3g r2 %.15g", f.slope_se, f.r2);

  /* noisy power law, numpy: slope -0.45661179, s.e. 0.014570121936705 */
  const double eps[] = {0.031, -0.027, 0.012, -0.019, 0.008};
  for (int i = 0; i < 5; i++) y[i] = 2 * pow(n[i], -0.45) * exp(eps[i]);
  moe_stats_fit_loglog(n, y, 5, MOE_STATS_X_LOG, &f);
  is_close(f.slope, -0.45661179, 5e-9, 0, "noisy slope matches numpy");
  is_close(f.intercept, 0.73220721, 5e-9, 0, "noisy intercept matches numpy");
  is_close(f.slope_se, 0.014570121936705, 1e-12, 0, "slope s.e. matches numpy");

  /* exact on the n / log n scale */
  for (int i = 0; i < 5; i++) z[i] = 0.8 * pow(n[i] / log(n[i]), -0.5);
  moe_stats_fit_loglog(n, z, 5, MOE_STATS_X_OVER_LOG, &f);
  is_close(f.slope, -0.5, 1e-13, 0, "slope -0.5 on log(n / log n)");
  moe_stats_fit_loglog(n, z, 5, MOE_STATS_X_LOG, &f);
  ok(f.slope > -0.5 + 0.02, "the same data is slower on plain log n (%.4f)", f.slope);

  const double x0[] = {0, 10}, x1[] = {1, 10}, x2[] = {10, 10}, yy[] = {1, 2}, yn[] = {1, -2};
  is_int(moe_stats_fit_loglog(x0, yy, 2, MOE_STATS_X_LOG, &f), MOE_EDOM, "x = 0: EDOM");
  is_int(moe_stats_fit_loglog(x1, yy, 2, MOE_STATS_X_OVER_LOG, &f), MOE_EDOM, "x = 1 on n/log n: EDOM");
  is_int(moe_stats_fit_loglog(x1, yy, 2, MOE_STATS_X_LOG, &f), MOE_OK, "x = 1 on log n is fine");
  is_int(moe_stats_fit_loglog(x1, yn, 2, MOE_STATS_X_LOG, &f), MOE_EDOM, "y < 0: EDOM");
  is_int(moe_stats_fit_loglog(x2, yy, 2, MOE_STATS_X_LOG, &f), MOE_EINVAL, "one distinct x: EINVAL");
  is_int(moe_stats_fit_loglog(n, y, 1, MOE_STATS_X_LOG, &f), MOE_EINVAL, "one point: EINVAL");

  /* replicated: factors average to 1, so the group means are exact */
  const double fac[] = {0.9, 1.05, 1.1, 0.95};
  double ry[20];
  size_t off[6];
  for (int g = 0; g < 5; g++) {
    off[g] = 4 * (size_t)g;
    for (int r = 0; r < 4; r++) ry[4 * g + r] = 3.7 * pow(n[g], -0.5) * fac[(r + g) % 4];
  }
  off[5] = 20;
  moe_stats_groups d = {5, n, ry, off};
  is_int(moe_stats_fit_groups(&d, MOE_STATS_X_LOG, &f), MOE_OK, "fit over group means");
  is_close(f.slope, -0.5, 1e-12, 0, "group-mean slope -0.5");
  double lo, hi, lo2, hi2, lo3, hi3;
  is_int(moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 500, 2505, 0.95, &lo, &hi), MOE_OK, "bootstrap");
  ok(lo < -0.5 && -0.5 < hi && hi - lo < 0.1, "95%% CI [%.4f, %.4f] brackets -0.5, narrow", lo, hi);
  moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 500, 2505, 0.95, &lo2, &hi2);
  ok(lo == lo2 && hi == hi2, "same seed: identical interval");
  moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 500, 2506, 0.95, &lo3, &hi3);
  ok(lo3 != lo || hi3 != hi, "another seed: another interval");
  moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 500, 2505, 0.5, &lo3, &hi3);
  ok(lo3 >= lo && hi3 <= hi && lo3 < hi3, "50%% interval inside the 95%% one");
  is_int(moe_stats_bootstrap_slope(&d, MOE_STATS_X_OVER_LOG, 200, 7, 0.95, &lo, &hi), MOE_OK, "bootstrap on n/log n");
  ok(lo < hi, "n/log n interval [%.4f, %.4f]", lo, hi);

  size_t boff[6] = {0, 4, 4, 12, 16, 20};
  moe_stats_groups e = {5, n, ry, boff};
  is_int(moe_stats_fit_groups(&e, MOE_STATS_X_LOG, &f), MOE_EINVAL, "empty group: EINVAL");
  is_int(moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 0, 1, 0.95, &lo, &hi), MOE_EINVAL, "B = 0: EINVAL");
  is_int(moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 10, 1, 1.0, &lo, &hi), MOE_EINVAL, "level 1: EINVAL");
  double neg[20];
  for (int i = 0; i < 20; i++) neg[i] = -ry[i];
  moe_stats_groups dn = {5, n, neg, off};
  is_int(moe_stats_bootstrap_slope(&dn, MOE_STATS_X_LOG, 10, 1, 0.95, &lo, &hi), MOE_EDOM, "negative means: EDOM");
  return tap_done();
}
