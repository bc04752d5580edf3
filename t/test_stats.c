/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_stats.c — the stats module: summaries checked by hand, log-log fits
 * on data with a known slope, bootstrap determinism, every error path.
 * Reference numbers: mean/sd by hand (below) and numpy (np.polyfit with
 * cov=True, np.std(ddof=1)); t_{0.975,4} = 2.7764451051977987 (tables). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/error.h"
#include "moe/stats.h"
#include "tap.h"

/* Robust summaries against NumPy (t/gen_robust_stats.py): median,
 * 10%-trimmed mean, and the log-log fits on mean / median / trimmed mean. */
static void test_robust_fixture(void)
{
  const char *path = tap_datafile("data/stats/robust_stats.txt");
  FILE *f = fopen(path, "r");
  ok(f != NULL, "open %s", path);
  if (!f) return;
  char line[1 << 16];
  size_t G = 0;
  while (fgets(line, sizeof line, f) && line[0] == '#') {}
  G = strtoul(line, NULL, 10);
  double gx[16], y[4096], med[16], trm[16], ref[3][4];
  size_t off[17] = {0};
  for (size_t g = 0; g < G && g < 16; g++) {
    long k;
    if (fscanf(f, "%lf %ld", &gx[g], &k) != 2) break;
    for (long i = 0; i < k; i++) if (fscanf(f, "%lf", &y[off[g] + i]) != 1) break;
    off[g + 1] = off[g] + (size_t)k;
  }
  for (size_t g = 0; g < G; g++) if (fscanf(f, "%lf %lf", &med[g], &trm[g]) != 2) break;
  int nread = 0;
  for (int c = 0; c < 3; c++) nread += fscanf(f, "%lf %lf %lf %lf", &ref[c][0], &ref[c][1], &ref[c][2], &ref[c][3]);
  fclose(f);
  ok(G == 7 && nread == 12, "fixture: %zu groups, %d fit numbers", G, nread);
  double wm = 0, wt = 0;
  for (size_t g = 0; g < G; g++) {
    moe_stats_summary s;
    moe_stats_summarize(y + off[g], off[g + 1] - off[g], &s);
    wm = fmax(wm, fabs(s.median - med[g]) / med[g]);
    wt = fmax(wt, fabs(s.trmean - trm[g]) / trm[g]);
    wt = fmax(wt, fabs(moe_stats_center_of(y + off[g], off[g + 1] - off[g], MOE_STATS_TRMEAN) - trm[g]) / trm[g]);
    wm = fmax(wm, fabs(moe_stats_center_of(y + off[g], off[g + 1] - off[g], MOE_STATS_MEDIAN) - med[g]) / med[g]);
  }
  ok(wm <= 1e-14, "median = numpy's (worst rel. %.3g)", wm);
  ok(wt <= 1e-13, "10%%-trimmed mean = numpy/scipy's (worst rel. %.3g)", wt);
  moe_stats_groups d = {G, gx, y, off};
  const char *names[] = {"mean", "median", "trmean"};
  double lo[3], hi[3];
  for (int c = 0; c < 3; c++) {
    moe_stats_fit ft, fn;
    is_int(moe_stats_fit_groups_center(&d, MOE_STATS_X_LOG, (moe_stats_center)c, &ft), MOE_OK, "%s fit", names[c]);
    is_int(moe_stats_fit_groups_center(&d, MOE_STATS_X_OVER_LOG, (moe_stats_center)c, &fn), MOE_OK, "%s fit (n/log n)",
           names[c]);
    is_close(ft.slope, ref[c][0], 1e-12, 1e-12, "%s: slope on log x = numpy polyfit", names[c]);
    is_close(ft.intercept, ref[c][1], 1e-12, 1e-12, "%s: intercept", names[c]);
    is_close(fn.slope, ref[c][2], 1e-12, 1e-12, "%s: slope on log(x/log x)", names[c]);
    is_close(fn.intercept, ref[c][3], 1e-12, 1e-12, "%s: intercept (n/log n)", names[c]);
    is_int(moe_stats_bootstrap_slope_center(&d, MOE_STATS_X_LOG, (moe_stats_center)c, 400, 9, 0.95, &lo[c], &hi[c]),
           MOE_OK, "%s: bootstrap", names[c]);
    ok(lo[c] <= ft.slope && ft.slope <= hi[c], "%s: CI [%.3f, %.3f] holds the slope %.3f", names[c], lo[c], hi[c], ft.slope);
    double lo2, hi2;
    moe_stats_bootstrap_slope_center(&d, MOE_STATS_X_LOG, (moe_stats_center)c, 400, 9, 0.95, &lo2, &hi2);
    ok(lo2 == lo[c] && hi2 == hi[c], "%s: bootstrap deterministic", names[c]);
  }
  /* the outliers widen the mean's interval far more than the robust ones' */
  ok(hi[0] - lo[0] > 2 * (hi[1] - lo[1]), "heavy tails: mean CI width %.3f vs median %.3f (trimmed %.3f: ~12%% "
     "outliers survive a 10%% trim)", hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
  double l0, h0;
  moe_stats_bootstrap_slope(&d, MOE_STATS_X_LOG, 400, 9, 0.95, &l0, &h0);
  ok(l0 == lo[0] && h0 == hi[0], "centre MEAN = the plain bootstrap, bit for bit");
  ok(moe_stats_fit_groups_center(&d, MOE_STATS_X_LOG, (moe_stats_center)7, &(moe_stats_fit){0}) == MOE_EINVAL,
     "unknown centre: EINVAL");
  ok(isnan(moe_stats_center_of(y, 0, MOE_STATS_MEDIAN)), "centre of nothing: NaN");
}

/* The percentile bootstrap against NumPy with the same resample indices
 * (t/gen_bootstrap_fixture.py reimplements GSL's mt19937 and
 * gsl_rng_uniform_int): B resamples exactly, each group resampled with
 * its own count, the centre recomputed, the slope refitted, GSL's
 * quantile rule. */
static void test_bootstrap_fixture(void)
{
  const char *path = tap_datafile("data/stats/bootstrap.txt");
  FILE *f = fopen(path, "r");
  ok(f != NULL, "open %s", path);
  if (!f) return;
  char line[1 << 12];
  while (fgets(line, sizeof line, f) && line[0] == '#') {}
  size_t G = strtoul(line, NULL, 10);
  double gx[8], y[256], level, want[3][2];
  size_t off[9] = {0}, B = 0;
  unsigned long long seed = 0;
  int nread = 0;
  for (size_t g = 0; g < G && g < 8; g++) {
    long k;
    if (fscanf(f, "%lf %ld", &gx[g], &k) != 2 || k < 1 || off[g] + (size_t)k > 256) break;
    for (long i = 0; i < k; i++) nread += fscanf(f, "%lf", &y[off[g] + i]);
    off[g + 1] = off[g] + (size_t)k;
  }
  nread += fscanf(f, "%zu %llu %lf", &B, &seed, &level);
  for (int c = 0; c < 3; c++) nread += fscanf(f, "%lf %lf", &want[c][0], &want[c][1]);
  fclose(f);
  ok(G == 5 && off[G] == 35 && nread == 35 + 3 + 6, "bootstrap fixture: %zu groups, %zu values", G, off[G]);
  moe_stats_groups d = {G, gx, y, off};
  struct { moe_stats_xscale s; moe_stats_center c; const char *what; } k[3] = {
    {MOE_STATS_X_LOG, MOE_STATS_MEAN, "mean, log x"},
    {MOE_STATS_X_LOG, MOE_STATS_MEDIAN, "median, log x"},
    {MOE_STATS_X_OVER_LOG, MOE_STATS_MEAN, "mean, log(x / log x)"}};
  for (int c = 0; c < 3; c++) {
    double lo = NAN, hi = NAN;
    int rc = moe_stats_bootstrap_slope_center(&d, k[c].s, k[c].c, B, seed, level, &lo, &hi);
    ok(rc == 0 && fabs(lo - want[c][0]) <= 1e-12 && fabs(hi - want[c][1]) <= 1e-12,
       "bootstrap (%s, B=%zu): [%.15g, %.15g] = numpy's [%.15g, %.15g]", k[c].what, B, lo, hi, want[c][0],
       want[c][1]);
  }
}

int main(void)
{
  test_bootstrap_fixture();
  test_robust_fixture();
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
