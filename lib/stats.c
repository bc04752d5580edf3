/* SPDX-License-Identifier: GPL-3.0-or-later */
/* stats.c — summaries, log-log fits and bootstrap intervals (GSL). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "internal.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/stats.h"

int moe_stats_summarize(const double *x, size_t n, moe_stats_summary *s)
{
  MOE_CHECK_ARG(x && s, "moe_stats_summarize: NULL argument");
  if (n == 0) return moe_error(MOE_EINVAL, "moe_stats_summarize: empty sample");
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return moe_error(MOE_EDOM, "moe_stats_summarize: x[%zu] is not finite", i);
  double *v = n <= SIZE_MAX / sizeof *v ? malloc(n * sizeof *v) : NULL; /* (N) sorted copy */
  if (!v) return moe_error(MOE_ENOMEM, "moe_stats_summarize: %zu values", n);
  memcpy(v, x, n * sizeof *v);
  moei_gsl_enter(); /* GSL's statistics and t quantile report through its handler */
  gsl_sort(v, 1, n);
  s->n = n;
  s->mean = gsl_stats_mean(x, 1, n);
  s->median = gsl_stats_median_from_sorted_data(v, 1, n);
  s->min = v[0];
  s->max = v[n - 1];
  s->trmean = gsl_stats_trmean_from_sorted_data(0.1, v, 1, n);
  free(v);
  if (n >= 2) {
    s->sd = gsl_stats_sd_m(x, 1, n, s->mean);
    s->se = s->sd / sqrt((double)n);
    double t = gsl_cdf_tdist_Pinv(0.975, (double)(n - 1));
    s->ci95_lo = s->mean - t * s->se;
    s->ci95_hi = s->mean + t * s->se;
  } else {
    s->sd = s->se = s->ci95_lo = s->ci95_hi = NAN;
  }
  moei_gsl_leave();
  return MOE_OK;
}

static int scale_x(double x, moe_stats_xscale scale, double *out)
{
  if (!(x > 0) || !isfinite(x)) return 0;
  if (scale == MOE_STATS_X_OVER_LOG) {
    if (!(x > 1)) return 0;
    *out = log(x / log(x));
  } else {
    *out = log(x);
  }
  return 1;
}

/* Fit on already-transformed points lx, ly (N). */
static int fit_logs(const double *lx, const double *ly, size_t n, moe_stats_fit *f)
{
  double c0, c1, cov00, cov01, cov11, sumsq;
  int distinct = 0;
  for (size_t i = 1; i < n; i++) if (lx[i] != lx[0]) distinct = 1;
  if (n < 2 || !distinct) return moe_error(MOE_EINVAL, "log-log fit: need at least 2 distinct x (got %zu points)", n);
  moei_gsl_enter();
  gsl_fit_linear(lx, 1, ly, 1, n, &c0, &c1, &cov00, &cov01, &cov11, &sumsq);
  f->n = n;
  f->intercept = c0;
  f->slope = c1;
  f->slope_se = n >= 3 ? sqrt(cov11) : NAN;
  double tss = gsl_stats_tss(ly, 1, n);
  moei_gsl_leave();
  f->r2 = tss > 0 ? 1 - sumsq / tss : 1;
  return MOE_OK;
}

int moe_stats_fit_loglog(const double *x, const double *y, size_t n, moe_stats_xscale scale, moe_stats_fit *f)
{
  MOE_CHECK_ARG(x && y && f, "moe_stats_fit_loglog: NULL argument");
  double *lx = n <= SIZE_MAX / 2 / sizeof *lx ? malloc((n ? n : 1) * 2 * sizeof *lx) : NULL;
  double *ly = lx ? lx + n : NULL; /* (N), (N) */
  if (!lx) return moe_error(MOE_ENOMEM, "moe_stats_fit_loglog: %zu points", n);
  for (size_t i = 0; i < n; i++) {
    if (!scale_x(x[i], scale, &lx[i])) {
      free(lx);
      return moe_error(MOE_EDOM, "log-log fit: x[%zu] = %g must be > %d", i, x[i], scale == MOE_STATS_X_OVER_LOG ? 1 : 0);
    }
    if (!(y[i] > 0) || !isfinite(y[i])) {
      free(lx);
      return moe_error(MOE_EDOM, "log-log fit: y[%zu] = %g must be positive and finite", i, y[i]);
    }
    ly[i] = log(y[i]);
  }
  int rc = fit_logs(lx, ly, n, f);
  free(lx);
  return rc;
}

static int check_groups(const moe_stats_groups *d)
{
  MOE_CHECK_ARG(d && d->x && d->y && d->off, "stats: NULL group data");
  if (d->off[0] != 0) return moe_error(MOE_EINVAL, "stats: off[0] must be 0");
  for (size_t g = 0; g < d->G; g++)
    if (d->off[g + 1] <= d->off[g]) return moe_error(MOE_EINVAL, "stats: group %zu has no replications", g);
  return MOE_OK;
}

/* centre of v[0..n) for n <= cap using scratch (n); v unchanged */
static double center_scratch(const double *v, size_t n, moe_stats_center c, double *scratch)
{
  if (c == MOE_STATS_MEAN) return gsl_stats_mean(v, 1, n);
  memcpy(scratch, v, n * sizeof *scratch);
  gsl_sort(scratch, 1, n);
  return c == MOE_STATS_MEDIAN ? gsl_stats_median_from_sorted_data(scratch, 1, n)
                               : gsl_stats_trmean_from_sorted_data(0.1, scratch, 1, n);
}

double moe_stats_center_of(const double *y, size_t n, moe_stats_center c)
{
  if (!y || n == 0) return NAN;
  double *t = c == MOE_STATS_MEAN ? NULL : malloc(n * sizeof *t);
  if (c != MOE_STATS_MEAN && !t) return NAN;
  double v = center_scratch(y, n, c, t);
  free(t);
  return v;
}

int moe_stats_fit_groups(const moe_stats_groups *d, moe_stats_xscale scale, moe_stats_fit *f)
{
  return moe_stats_fit_groups_center(d, scale, MOE_STATS_MEAN, f);
}

int moe_stats_fit_groups_center(const moe_stats_groups *d, moe_stats_xscale scale, moe_stats_center c,
                                moe_stats_fit *f)
{
  int rc = check_groups(d);
  if (rc) return rc;
  MOE_CHECK_ARG(c >= MOE_STATS_MEAN && c <= MOE_STATS_TRMEAN, "moe_stats_fit_groups: unknown centre %d", (int)c);
  double *m = d->G <= SIZE_MAX / sizeof *m ? malloc((d->G ? d->G : 1) * sizeof *m) : NULL; /* (G) group centres */
  if (!m) return moe_error(MOE_ENOMEM, "moe_stats_fit_groups: %zu groups", d->G);
  for (size_t g = 0; g < d->G; g++) {
    m[g] = moe_stats_center_of(d->y + d->off[g], d->off[g + 1] - d->off[g], c);
    if (isnan(m[g])) { free(m); return moe_error(MOE_ENOMEM, "moe_stats_fit_groups: no memory"); }
  }
  rc = moe_stats_fit_loglog(d->x, m, d->G, scale, f);
  free(m);
  return rc;
}

int moe_stats_bootstrap_slope(const moe_stats_groups *d, moe_stats_xscale scale, size_t B, uint64_t seed,
                              double level, double *lo, double *hi)
{
  return moe_stats_bootstrap_slope_center(d, scale, MOE_STATS_MEAN, B, seed, level, lo, hi);
}

int moe_stats_bootstrap_slope_center(const moe_stats_groups *d, moe_stats_xscale scale, moe_stats_center c, size_t B,
                                     uint64_t seed, double level, double *lo, double *hi)
{
  int rc = check_groups(d);
  if (rc) return rc;
  MOE_CHECK_ARG(lo && hi && B >= 1 && level > 0 && level < 1, "moe_stats_bootstrap_slope: bad arguments");
  MOE_CHECK_ARG(c >= MOE_STATS_MEAN && c <= MOE_STATS_TRMEAN, "moe_stats_bootstrap_slope: unknown centre %d", (int)c);
  size_t G = d->G, kmax = 0;
  for (size_t g = 0; g < G; g++) if (d->off[g + 1] - d->off[g] > kmax) kmax = d->off[g + 1] - d->off[g];
  /* (G) scaled log x, (G) log centres, (G) scratch, (B) slopes, 2 (K) resample and sort
   * scratch: sizes checked, no wrap */
  size_t cnt = 0, k2 = 0, bytes = 0;
  double *lx = NULL;
  if (moei_mul(G, 3, &cnt) && moei_mul(kmax, 2, &k2) && B < SIZE_MAX && k2 <= SIZE_MAX - 1 - B &&
      cnt <= SIZE_MAX - 1 - B - k2 &&
      moei_mul(cnt + B + 1 + k2, sizeof *lx, &bytes))
    lx = malloc(bytes);
  if (!lx) return moe_error(MOE_ENOMEM, "moe_stats_bootstrap_slope: B=%zu", B);
  double *ly = lx + G, *tmp = ly + G, *slopes = tmp + G, *rs = slopes + B + 1, *rt = rs + kmax;
  for (size_t g = 0; g < G; g++)
    if (!scale_x(d->x[g], scale, &lx[g])) {
      free(lx);
      return moe_error(MOE_EDOM, "bootstrap: x[%zu] = %g out of the domain of the scale", g, d->x[g]);
    }
  gsl_rng *r = moe_rng_alloc(seed);
  if (!r) { free(lx); return MOE_ENOMEM; }
  size_t kept = 0;
  moei_gsl_enter(); /* gsl_rng_uniform_int refuses k > 2^32 - 1 through the handler */
  for (size_t b = 0; b < B; b++) {
    int good = 1;
    for (size_t g = 0; g < G; g++) {
      size_t k = d->off[g + 1] - d->off[g];
      double mean;
      if (c == MOE_STATS_MEAN) {   /* the original summation order: bit-identical to before */
        double s = 0;
        for (size_t i = 0; i < k; i++) s += d->y[d->off[g] + gsl_rng_uniform_int(r, k)];
        mean = s / (double)k;
      } else {
        for (size_t i = 0; i < k; i++) rs[i] = d->y[d->off[g] + gsl_rng_uniform_int(r, k)];
        mean = center_scratch(rs, k, c, rt);
      }
      if (!(mean > 0) || !isfinite(mean)) good = 0;
      else ly[g] = log(mean);
    }
    if (!good) continue;
    moe_stats_fit f;
    memcpy(tmp, lx, G * sizeof *tmp);
    if (fit_logs(tmp, ly, G, &f)) { moei_gsl_leave(); gsl_rng_free(r); free(lx); return MOE_EINVAL; }
    slopes[kept++] = f.slope;
  }
  gsl_rng_free(r);
  if (kept * 2 < B) {
    moei_gsl_leave();
    free(lx);
    return moe_error(MOE_EDOM, "bootstrap: %zu of %zu resamples had a non-positive mean", B - kept, B);
  }
  gsl_sort(slopes, 1, kept);
  double a = (1 - level) / 2;
  *lo = gsl_stats_quantile_from_sorted_data(slopes, 1, kept, a);
  *hi = gsl_stats_quantile_from_sorted_data(slopes, 1, kept, 1 - a);
  moei_gsl_leave();
  free(lx);
  return MOE_OK;
}
