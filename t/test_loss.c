/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_loss.c — MSE and cross-entropy: values, finite-difference
 * gradients (double), stability at extreme logits, aliasing, errors. */
#include <float.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"
#include "fdcheck.h"

enum { T = 5, V = 7 };

typedef struct {
  double logits[T * V], pred[T * V], target[T * V];
  moe_token y[T];
} ctx;

static double ce_obj(void *p)
{
  ctx *c = p;
  double L;
  return moe_loss_ce_f64(T, V, c->logits, c->y, &L, NULL) ? NAN : L;
}

static double mse_obj(void *p)
{
  ctx *c = p;
  double L;
  return moe_loss_mse_f64(T * V, c->pred, c->target, &L, NULL) ? NAN : L;
}

int main(void)
{
  gsl_rng *r = moe_rng_alloc(2385);
  ctx c;
  moe_rng_normal_f64(r, c.logits, T * V, 2.0);
  moe_rng_normal_f64(r, c.pred, T * V, 1.0);
  moe_rng_normal_f64(r, c.target, T * V, 1.0);
  for (int t = 0; t < T; t++)
    c.y[t] = (3 * t + 1) % V;

  double g[T * V], L;
  ok(moe_loss_ce_f64(T, V, c.logits, c.y, &L, g) == 0, "ce runs");
  double err = fd_check(ce_obj, &c, c.logits, g, T * V, FD_H);
  ok(err < 1e-7, "ce gradient matches finite differences (%.2g)", err);
  double rowsum = 0;
  for (int v = 0; v < V; v++)
    rowsum += g[v];
  is_close(rowsum, 0, 1e-15, 0, "ce gradient rows sum to 0");
  ok(moe_loss_mse_f64(T * V, c.pred, c.target, &L, g) == 0, "mse runs");
  err = fd_check(mse_obj, &c, c.pred, g, T * V, FD_H);
  ok(err < 1e-7, "mse gradient matches finite differences (%.2g)", err);

  /* values */
  float z3[3] = {0.25f, 0.25f, 0.25f}, d3[3];
  moe_token y1 = 1;
  double Lf;
  moe_loss_ce(1, 3, z3, &y1, &Lf, d3);
  is_close(Lf, log(3.0), 1e-7, 0, "ce of equal logits is log V");
  is_close(d3[1], 1.0 / 3 - 1, 1e-7, 0, "ce gradient at the target is p - 1");
  float p2[2] = {1.5f, -0.5f}, t2[2] = {0.25f, 0.5f}, dp[2];
  moe_loss_mse(2, p2, t2, &Lf, dp);
  is_close(Lf, (1.25 * 1.25 + 1.0) / 2, 1e-7, 0, "mse value");
  is_close(dp[0], 1.25, 1e-7, 0, "mse gradient 2(p - t)/n");

  /* stability */
  float big[4] = {1e4f, -1e4f, 9990.0f, 0};
  moe_token y0 = 2;
  ok(moe_loss_ce(1, 4, big, &y0, &Lf, NULL) == 0 && fabs(Lf - 10.0) < 1e-3,
     "ce with logits 1e4 is finite and right (%.6g)", Lf);
  double hugeneg[3] = {-800, -801, -1e300};
  moe_token y2 = 2;
  ok(moe_loss_ce_f64(1, 3, hugeneg, &y2, &L, NULL) == 0 && isfinite(L),
     "ce of a far-below target is large and finite");

  /* aliasing: dlogits may be the logits buffer */
  float a[T * V], b[T * V], da[T * V];
  for (int i = 0; i < T * V; i++)
    a[i] = b[i] = (float)c.logits[i];
  double La, Lb;
  moe_loss_ce(T, V, a, c.y, &La, da);
  moe_loss_ce(T, V, b, c.y, &Lb, b);
  ok(La == Lb && memcmp(da, b, sizeof b) == 0, "ce with dlogits aliasing logits");

  /* errors */
  moe_token bad[T] = {0, 1, V, 2, 3};
  ok(moe_loss_ce(T, V, a, bad, &La, NULL) == MOE_ERANGE, "target = V: %s", moe_last_error());
  bad[2] = (moe_token)-1;
  ok(moe_loss_ce(T, V, a, bad, &La, NULL) == MOE_ERANGE, "target (moe_token)-1, above every V");
  ok(moe_loss_ce(0, V, a, c.y, &La, NULL) == MOE_EINVAL, "T = 0");
  ok(moe_loss_ce(T, 0, a, c.y, &La, NULL) == MOE_EINVAL, "V = 0");
  ok(moe_loss_ce(T, V, NULL, c.y, &La, NULL) == MOE_EINVAL, "NULL logits");
  a[4] = NAN;
  ok(moe_loss_ce(T, V, a, c.y, &La, NULL) == MOE_EDOM, "NaN logit: %s", moe_last_error());
  ok(moe_loss_mse(0, p2, t2, &Lf, NULL) == MOE_EINVAL, "mse n = 0");
  t2[1] = INFINITY;
  ok(moe_loss_mse(2, p2, t2, &Lf, NULL) == MOE_EDOM, "mse infinite target");
  ok(moe_loss_mse(2, NULL, t2, &Lf, NULL) == MOE_EINVAL, "mse NULL pred");

  /* the sum in lanes: every element counted once, whatever n's remainder
   * by the lane count; against a long double sum in element order */
  size_t nbig = 100003;
  float *pb = malloc(nbig * sizeof *pb), *tb = malloc(nbig * sizeof *tb),
        *db = malloc(nbig * sizeof *db);
  for (size_t i = 0; i < nbig; i++) {
    pb[i] = (float)gsl_ran_gaussian(r, 1.0);
    tb[i] = (float)gsl_ran_gaussian(r, 3.0);
  }
  for (size_t m = 1; m <= 17; m++) {
    size_t nn = m < 17 ? m : nbig;
    long double ref = 0;
    for (size_t i = 0; i < nn; i++)
      ref += ((long double)pb[i] - tb[i]) * ((long double)pb[i] - tb[i]);
    ref /= (long double)nn;
    int rc = moe_loss_mse(nn, pb, tb, &Lf, NULL);
    /* each lane is a chain of ~nn/8 additions, then 3 more: the bound */
    double tol = ((double)nn / 8 + 4) * DBL_EPSILON;
    ok(rc == 0 && fabs(Lf - (double)ref) <= tol * (double)ref,
       "mse over n = %zu: %.17g against %.17Lg", nn, Lf, ref);
  }
  /* a NaN in the vector body, then one in the tail: named, dpred untouched */
  for (size_t at = 40; at < nbig; at = nbig - 1) {
    float keep = pb[at];
    pb[at] = NAN;
    db[0] = 7.0f;
    char want[64];
    snprintf(want, sizeof want, "element %zu:", at);
    ok(moe_loss_mse(nbig, pb, tb, &Lf, db) == MOE_EDOM && strstr(moe_last_error(), want) &&
           db[0] == 7.0f,
       "mse with a NaN at %zu: EDOM, names it, dpred untouched (%s)", at, moe_last_error());
    pb[at] = keep;
    if (at == nbig - 1)
      break;
  }
  free(pb);
  free(tb);
  free(db);
  gsl_rng_free(r);
  return tap_done();
}
