/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fdcheck.h — central-difference gradient checks for the double twins.
 *
 * f(ctx) evaluates a scalar objective from the current contents of the
 * buffers it knows about; fd_check perturbs v[i] by ±h, compares
 * (f(+h) − f(−h)) / 2h with the analytic ga[i] and returns the largest
 *   |analytic − numeric| / max(|analytic| + |numeric|, FD_FLOOR)
 * over i (NaN if any evaluation is NaN, which objectives use to signal a
 * broken precondition such as a changed top-K selection). The floor keeps
 * small gradients from looking like relative failures: with h = 1e-6 the
 * rounding noise of an O(1) objective in double gives the central
 * difference an absolute error of ~1e-10, i.e. ~1e-6 relative on a 1e-4
 * gradient. A floor of 1e-2 bounds that noise at ~1e-8 while a wrong
 * gradient term still costs O(1). */
#ifndef MOE_FDCHECK_H
#define MOE_FDCHECK_H

#include <math.h>
#include <stddef.h>

#define FD_FLOOR 1e-2
#define FD_H 1e-6

typedef double (*fd_fn)(void *ctx);

static double fd_check(fd_fn f, void *ctx, double *v, const double *ga, size_t n, double h)
{
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + h;
    double fp = f(ctx);
    v[i] = keep - h;
    double fm = f(ctx);
    v[i] = keep;
    double num = (fp - fm) / (2 * h);
    double den = fabs(ga[i]) + fabs(num);
    double err = fabs(ga[i] - num) / (den > FD_FLOOR ? den : FD_FLOOR);
    if (!(err <= worst))
      worst = err; /* NaN sticks */
  }
  return worst;
}

/* Gradients are accumulated, never overwritten: g12 (backward on batch 1,
 * then on batch 2, no zeroing between) must be g1 + g2 (each from a zeroed
 * slab). Returns the largest |g12 − (g1 + g2)| / max(|g1| + |g2|, 1e-12)
 * over the n entries; a backward that overwrites a tensor makes it O(1).
 * *moved counts the entries where g1 and g2 both are non-zero, so a test
 * can tell the check saw something. */
static inline double accum_check(const double *g1, const double *g2, const double *g12, size_t n,
                          size_t *moved)
{
  double worst = 0;
  size_t both = 0;
  for (size_t i = 0; i < n; i++) {
    double den = fabs(g1[i]) + fabs(g2[i]);
    double err = fabs(g12[i] - (g1[i] + g2[i])) / (den > 1e-12 ? den : 1e-12);
    if (!(err <= worst))
      worst = err;
    both += g1[i] != 0 && g2[i] != 0;
  }
  if (moved)
    *moved = both;
  return worst;
}

#endif
