/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/stats.h — summaries over seeds and log-log rate fits (GSL).
 *
 * What the reports need to turn replicated runs into the paper's numbers:
 * a summary of a sample (mean, spread, a t-based 95% interval, order
 * statistics), the least-squares slope of log(y) on log(x) — or on
 * log(x / log x), the paper's second scale — and a bootstrap interval for
 * that slope that resamples the replications within each x. */
#ifndef MOE_STATS_H
#define MOE_STATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  size_t n;
  double mean;
  double sd;               /* sample standard deviation (n - 1); NaN if n < 2 */
  double se;               /* sd / sqrt(n); NaN if n < 2 */
  double ci95_lo, ci95_hi; /* mean -/+ t_{0.975, n-1} se; NaN if n < 2 */
  double median, min, max;
  double trmean;           /* 10%-trimmed mean: the mean of the order statistics
                              x_(k+1) .. x_(n-k), k = floor(0.1 n) (GSL) */
} moe_stats_summary;

/* Summary of x[0..n), n >= 1, all finite. MOE_EINVAL if n == 0,
 * MOE_EDOM on a non-finite value. */
int moe_stats_summarize(const double *x, size_t n, moe_stats_summary *s);

/* How x enters the fit: log(x), or log(x / log x) (needs every x > e^0 = 1
 * so that log x > 0; the paper's rates on the n / log n scale). */
typedef enum { MOE_STATS_X_LOG = 0, MOE_STATS_X_OVER_LOG = 1 } moe_stats_xscale;

typedef struct {
  size_t n;            /* points fitted */
  double slope, intercept;
  double slope_se;     /* from the residuals; NaN if n < 3 */
  double r2;
} moe_stats_fit;

/* Least squares of log(y[i]) on the scaled log(x[i]) (gsl_fit_linear).
 * Needs n >= 2 distinct x, every x > 0 (> 1 for MOE_STATS_X_OVER_LOG) and
 * every y > 0: MOE_EINVAL / MOE_EDOM otherwise. */
int moe_stats_fit_loglog(const double *x, const double *y, size_t n, moe_stats_xscale scale,
                         moe_stats_fit *f);

/* Replicated data: G groups (one per x value); group g has x[g] and the
 * replications y[off[g] .. off[g+1]) (off has G+1 entries, off[0] = 0). */
typedef struct {
  size_t G;
  const double *x;     /* (G) */
  const double *y;     /* (off[G]) */
  const size_t *off;   /* (G + 1) */
} moe_stats_groups;

/* Fit log(mean y within group) on the scaled log(x). */
int moe_stats_fit_groups(const moe_stats_groups *d, moe_stats_xscale scale, moe_stats_fit *f);

/* The within-group centre a fit uses: the mean (the paper's), the median,
 * or the 10%-trimmed mean (robust to a few saturated fits). */
typedef enum { MOE_STATS_MEAN = 0, MOE_STATS_MEDIAN = 1, MOE_STATS_TRMEAN = 2 } moe_stats_center;

/* The centre of y[0..n) (n >= 1; y is not modified). */
double moe_stats_center_of(const double *y, size_t n, moe_stats_center c);

/* moe_stats_fit_groups / moe_stats_bootstrap_slope with another centre:
 * log(centre of group g) on the scaled log(x); the bootstrap recomputes
 * that centre on each resample. With MOE_STATS_MEAN they are the plain
 * functions. */
int moe_stats_fit_groups_center(const moe_stats_groups *d, moe_stats_xscale scale, moe_stats_center c,
                                moe_stats_fit *f);
int moe_stats_bootstrap_slope_center(const moe_stats_groups *d, moe_stats_xscale scale, moe_stats_center c, size_t B,
                                     uint64_t seed, double level, double *lo, double *hi);

/* Percentile bootstrap interval [lo, hi] at level (e.g. 0.95) for the slope
 * of moe_stats_fit_groups: B times, resample each group's replications
 * with replacement (same count), recompute the group means and refit.
 * Deterministic given seed (moe_rng_alloc). Resamples whose mean is not
 * positive are skipped; MOE_EDOM if more than half are. B >= 1. */
int moe_stats_bootstrap_slope(const moe_stats_groups *d, moe_stats_xscale scale, size_t B, uint64_t seed,
                              double level, double *lo, double *hi);

#ifdef __cplusplus
}
#endif
#endif
