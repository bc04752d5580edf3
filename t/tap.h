/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tap.h — a tiny TAP producer for the C tests (header only).
 *
 * Each check prints one "ok N - name" / "not ok N - name" line; finish with
 * `return tap_done();`, which prints the plan and returns non-zero if any
 * check failed, so a failing test can never exit 0. */
#ifndef MOE_TAP_H
#define MOE_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_vresult(int pass, const char *fmt, va_list ap)
{
  tap_n++;
  if (!pass)
    tap_failed++;
  printf("%sok %d - ", pass ? "" : "not ", tap_n);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
}

/* ok(cond, "name %d", x) */
static inline int ok(int pass, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  tap_vresult(pass, fmt, ap);
  va_end(ap);
  return pass;
}

static inline void diag(const char *fmt, ...)
{
  va_list ap;
  printf("# ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

/* |got - want| <= abs_tol + rel_tol*|want|; NaN never passes. */
static inline int is_close(double got, double want, double abs_tol, double rel_tol, const char *fmt, ...)
{
  int pass = isfinite(got) && isfinite(want) && fabs(got - want) <= abs_tol + rel_tol * fabs(want);
  va_list ap;
  va_start(ap, fmt);
  tap_vresult(pass, fmt, ap);
  va_end(ap);
  if (!pass)
    diag("  got %.17g, want %.17g (diff %.3g)", got, want, got - want);
  return pass;
}

static inline int is_int(long got, long want, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  tap_vresult(got == want, fmt, ap);
  va_end(ap);
  if (got != want)
    diag("  got %ld, want %ld", got, want);
  return got == want;
}

/* Max |a-b| over n doubles / floats; used to compare tensors. */
static inline double tap_maxdiff_f64(const double *a, const double *b, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= m)) m = d; /* NaN propagates */
  }
  return m;
}

static inline double tap_maxdiff_f32(const float *a, const float *b, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

static inline void tap_skip(const char *why) { printf("1..0 # SKIP %s\n", why); exit(0); }

static inline int tap_done(void)
{
  printf("1..%d\n", tap_n);
  return tap_failed ? 1 : 0;
}

/* Path of a test data file: $srcdir/t/<name> (srcdir set by make check). */
static inline const char *tap_datafile(const char *name)
{
  static char buf[4096];
  const char *s = getenv("srcdir");
  snprintf(buf, sizeof buf, "%s/t/%s", s && *s ? s : ".", name);
  return buf;
}

#endif
