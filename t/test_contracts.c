/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_contracts.c — what libmoe promises on bad input, as a library user
 * who changes nothing sees it:
 *   - GSL's default error handler (print and abort) stays installed here,
 *     as in any program that never calls gsl_set_error_handler, and libmoe
 *     paths that make GSL report an error return instead of aborting; the
 *     caller's handler is the one installed afterwards, also when two
 *     threads use libmoe at once;
 *   - NaN/Inf: the layer refuses a non-finite x, output (from a non-finite
 *     parameter) or dy, and the optimizer refuses a non-finite gradient or
 *     parameter without changing anything;
 *   - sizes: products that do not fit are MOE_EINVAL / MOE_ENOMEM with a
 *     message, never a wrapped (short) allocation. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/idx.h"
#include "moe/layer.h"
#include "moe/optim.h"
#include "moe/rng.h"
#include "moe/stats.h"
#include "moe/voronoi.h"
#include "nn/private.h"
#include "tap.h"

static int has(const char *needle) { return strstr(moe_last_error(), needle) != NULL; }

/* ---- GSL's handler ------------------------------------------------------- */

/* ReLU alignment with an outer weight whose square underflows: the quartic's
 * leading coefficient is 0 and gsl_poly_complex_solve reports GSL_EINVAL
 * through the handler (GSL's default aborts). The result must fall back to
 * no rescaling (s = 1). */
static double align_underflow(void)
{
  const double p[2] = {2.385, 1e-200}, pt[2] = {1.37, 0.71};
  double out[2];
  return moe_voronoi_relu_align(1, p, pt, out);
}

static int app_handler_calls;
static void app_handler(const char *reason, const char *file, int line, int gsl_errno)
{
  (void)reason; (void)file; (void)line; (void)gsl_errno;
  app_handler_calls++;
}

static void *align_loop(void *arg)
{
  int *okp = arg;
  *okp = 1;
  for (int i = 0; i < 2000; i++)
    if (align_underflow() != 1.0) *okp = 0;
  return NULL;
}

static void test_gsl_handler(void)
{
  /* nothing set: GSL's default handler is installed */
  double s = align_underflow();
  ok(s == 1.0, "GSL error inside libmoe (poly solve, leading term 0) with GSL's default handler: "
               "no abort, s = %g", s);
  gsl_error_handler_t *h = gsl_set_error_handler(NULL);
  ok(h == NULL, "GSL's default handler is back after the call");

  gsl_set_error_handler(app_handler);
  align_underflow();
  ok(app_handler_calls == 0, "libmoe's own GSL errors do not reach the application's handler");
  h = gsl_set_error_handler(NULL);
  ok(h == app_handler, "the application's handler is back after the call");

  pthread_t th[2];
  int good[2] = {0, 0};
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, align_loop, &good[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  ok(good[0] && good[1], "two threads, 2000 calls each: no abort, every result s = 1");
  h = gsl_set_error_handler(NULL);
  ok(h == NULL, "after both threads: GSL's default handler installed again");

  /* stats and the bootstrap (GSL sort, quantiles, t quantile) under the
   * default handler: valid input works; n = 1 gives NaN spread, no error */
  const double x[5] = {2.385, 1.37, 0.71, 3.1, 2.0};
  moe_stats_summary sm;
  ok(moe_stats_summarize(x, 5, &sm) == MOE_OK && sm.n == 5, "summary under GSL's default handler");
  const double gx[3] = {100, 200, 400}, gy[6] = {1.0, 1.1, 0.7, 0.72, 0.5, 0.52};
  const size_t off[4] = {0, 2, 4, 6};
  moe_stats_groups g = {3, gx, gy, off};
  double lo = 0, hi = 0;
  int rc = moe_stats_bootstrap_slope(&g, MOE_STATS_X_LOG, 200, 7, 0.95, &lo, &hi);
  ok(rc == MOE_OK && lo < hi && hi < 0, "bootstrap quantiles under GSL's default handler [%.3f, %.3f]",
     lo, hi);
}

/* ---- NaN / Inf ------------------------------------------------------------ */

static moe_layer *small_layer(gsl_rng *r, int S)
{
  moe_layer_config c = moe_layer_config_default((moe_layer_sizes){.D = 3, .E = 4, .K = 2, .S = S, .F = 5});
  moe_layer *l = moe_layer_alloc(&c, 6);
  if (l) moe_layer_init_params(l, r);
  return l;
}

static void fill(float *x, size_t n, float a)
{
  for (size_t i = 0; i < n; i++) x[i] = a * (float)((i * 7 + 3) % 11) - 1.2f;
}

static void test_layer_nan(gsl_rng *r)
{
  moe_layer *l = small_layer(r, 2);
  if (!ok(l != NULL, "layer alloc")) return;
  float x[18], y[18], dy[18], dx[18];
  fill(x, 18, 0.31f);
  fill(dy, 18, 0.17f);
  ok(moe_layer_forward(l, 6, x, y) == MOE_OK, "finite forward");

  /* a NaN in a routed expert some token chose */
  int e = moe_layer_chosen(l)[0];
  float *blk = moe_layer_routed_expert(l, e);
  size_t pe = (moe_layer_param_count(l) - 4 * 3 - 2) / 6; /* (W_r, σ, S + E blocks) */
  float keep = blk[pe - 1];
  blk[pe - 1] = NAN; /* last scalar of the block: a W2 weight, after the ReLU */
  int rc = moe_layer_forward(l, 6, x, y);
  ok(rc == MOE_EDOM && has("layer forward: y["), "NaN in a chosen expert's weights: MOE_EDOM (%s)",
     moe_last_error());
  ok(moe_layer_backward(l, dy, dx) == MOE_EINVAL, "  ...and no backward of that forward");
  blk[pe - 1] = keep;

  /* an infinite shared logit */
  float *sig = moe_layer_shared_logits(l);
  sig[1] = INFINITY;
  ok(moe_layer_forward(l, 6, x, y) == MOE_EDOM, "Inf shared logit: MOE_EDOM (%s)", moe_last_error());
  sig[1] = 0;

  /* dy: refused before any gradient or dx is written */
  ok(moe_layer_forward(l, 6, x, y) == MOE_OK, "finite forward again");
  size_t n = moe_layer_param_count(l);
  float *g = moe_layer_grads(l);
  for (size_t i = 0; i < n; i++) g[i] = 0.25f;
  for (size_t i = 0; i < 18; i++) dx[i] = 7.0f;
  dy[11] = -INFINITY;
  rc = moe_layer_backward(l, dy, dx);
  int untouched = 1;
  for (size_t i = 0; i < n; i++) untouched &= g[i] == 0.25f;
  for (size_t i = 0; i < 18; i++) untouched &= dx[i] == 7.0f;
  ok(rc == MOE_EDOM && has("dy[3][2]"), "-Inf in dy: MOE_EDOM naming dy[3][2] (%s)", moe_last_error());
  ok(untouched, "  ...gradients and dx untouched");
  dy[11] = NAN;
  ok(moe_layer_backward(l, dy, NULL) == MOE_EDOM, "NaN in dy, dx NULL: MOE_EDOM");
  moe_layer_free(l);

  /* the double twin */
  moe_layer_config c = moe_layer_config_default((moe_layer_sizes){.D = 3, .E = 4, .K = 2, .S = 0, .F = 5});
  moe_layer_f64 *ld = moe_layer_alloc_f64(&c, 2);
  moe_layer_init_params_f64(ld, r);
  double xd[6] = {0.3, -1.1, 2.385, 0.7, 0.1, -0.4}, yd[6];
  double *W = moe_layer_routed_expert_f64(ld, 0);
  for (int e2 = 0; e2 < 4; e2++) moe_layer_routed_expert_f64(ld, e2)[pe - 1] = NAN;
  ok(moe_layer_forward_f64(ld, 2, xd, yd) == MOE_EDOM && W, "double twin: NaN expert weight: MOE_EDOM");
  moe_layer_free_f64(ld);

  /* gmoe: a NaN response is refused by the E-step */
  moe_gmoe *t = NULL;
  moe_gmoe_em *w = NULL;
  double X[8], Y[8];
  for (int i = 0; i < 8; i++) { X[i] = -2.0 + 0.55 * i; Y[i] = 0.3 * i - 1.0; }
  Y[5] = NAN;
  int rcg = moe_gmoe_truth("thm1", 1, &t);
  if (!rcg) w = moe_gmoe_em_alloc(t, 8);
  ok(w && moe_gmoe_em_init(w, t, 8, X, Y) == MOE_EDOM, "gmoe: NaN in Y: MOE_EDOM (%s)", moe_last_error());
  moe_gmoe_em_free(w);
  w = rcg ? NULL : moe_gmoe_em_alloc(t, SIZE_MAX / 2);
  ok(!rcg && !w && has("no memory"), "gmoe: workspace for SIZE_MAX/2 points (nmax·C wraps): ENOMEM (%s)",
     moe_last_error());
  moe_gmoe_free(t);
  moe_batcher *bt = moe_batcher_alloc(SIZE_MAX / 4, 8, 1, MOE_BATCH_KEEP_LAST);
  ok(!bt && has("out of memory"), "batcher for SIZE_MAX/4 indices (n·8 wraps): ENOMEM (%s)",
     moe_last_error());
}

static void test_optim_nan(moe_optim_kind kind)
{
  const char *name = kind == MOE_OPTIM_SGD ? "sgd" : "adamw";
  moe_optim_config c = moe_optim_defaults(kind);
  if (kind == MOE_OPTIM_SGD) c.momentum = 0.9;
  moe_optim *a = moe_optim_alloc(&c, 5), *b = moe_optim_alloc(&c, 5);
  float pa[5] = {0.3f, -1.1f, 2.385f, 0.7f, 0.1f}, pb[5], g[5] = {0.2f, -0.4f, 0.1f, 1.3f, -0.9f};
  float bad[5];
  memcpy(pb, pa, sizeof pa);
  memcpy(bad, g, sizeof g);
  bad[3] = NAN;
  int rc = moe_optim_step(a, pa, bad, 0.01);
  ok(rc == MOE_EDOM && has("grads[3]"), "%s: NaN gradient refused (%s)", name, moe_last_error());
  ok(!memcmp(pa, pb, sizeof pa) && moe_optim_steps(a) == 0, "%s:   ...params and step count unchanged", name);
  bad[3] = INFINITY;
  ok(moe_optim_step(a, pa, bad, 0.01) == MOE_EDOM, "%s: Inf gradient refused", name);
  /* the refused steps left no trace in the moments: a and a fresh b agree */
  ok(moe_optim_step(a, pa, g, 0.01) == MOE_OK && moe_optim_step(b, pb, g, 0.01) == MOE_OK &&
     !memcmp(pa, pb, sizeof pa), "%s:   ...moments unchanged (next step equals a fresh optimizer's)", name);
  float keep = pa[0];
  pa[0] = NAN;
  ok(moe_optim_step(a, pa, g, 0.01) == MOE_EDOM && has("params[0]"), "%s: NaN parameter refused (%s)",
     name, moe_last_error());
  pa[0] = keep;
  ok(moe_optim_step(a, pa, g, NAN) == MOE_EDOM, "%s: NaN lr refused", name);
  moe_optim_free(a);
  moe_optim_free(b);
}

/* ---- sizes ---------------------------------------------------------------- */

static void test_sizes(void)
{
  moe_layer_config c = moe_layer_config_default((moe_layer_sizes){.D = 8, .E = 4, .K = 2, .S = 1, .F = 16});
  moe_layer *l = moe_layer_alloc(&c, INT_MAX / 2 + 1);
  ok(!l && has("max_T·K"), "max_T·K > INT_MAX: refused (%s)", moe_last_error());
  c = moe_layer_config_default((moe_layer_sizes){.D = 65536, .E = 4, .K = 1, .S = 1, .F = 16});
  l = moe_layer_alloc(&c, 65536);
  ok(!l && has("max_T·D"), "max_T·D > INT_MAX: refused (%s)", moe_last_error());
  /* (S + E) expert blocks of 2·F·D scalars: 2^31 · 2^41 wraps a 64-bit size */
  c = moe_layer_config_default((moe_layer_sizes){.D = 1 << 20, .E = INT_MAX, .K = 1, .S = 1, .F = 1 << 20});
  l = moe_layer_alloc(&c, 1);
  int code = l ? MOE_OK : (has("no memory") ? MOE_ENOMEM : -1);
  ok(!l && code == MOE_ENOMEM, "parameter count that wraps size_t: ENOMEM, no short slab (%s)",
     moe_last_error());
  moe_layer_free(l);
  c = moe_layer_config_default((moe_layer_sizes){.D = 1 << 14, .E = 1 << 14, .K = 1, .S = 1 << 14, .F = 1 << 14});
  l = moe_layer_alloc(&c, 1);
  ok(!l && has("no memory"), "2^44 parameters: ENOMEM with a message (%s)", moe_last_error());

  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, SIZE_MAX / 2);
  ok(!o && has("n="), "optimizer for SIZE_MAX/2 floats: n·4 wraps: ENOMEM (%s)", moe_last_error());
  o = moe_optim_alloc(&oc, SIZE_MAX / 4 + 1);
  ok(!o, "optimizer for SIZE_MAX/4 + 1 floats (bytes + 63 wraps): ENOMEM");

  const double gx[2] = {10, 20}, gy[2] = {1.0, 0.5};
  const size_t off[3] = {0, 1, 2};
  moe_stats_groups g = {2, gx, gy, off};
  double lo, hi;
  int rc = moe_stats_bootstrap_slope(&g, MOE_STATS_X_LOG, SIZE_MAX - 2, 1, 0.95, &lo, &hi);
  ok(rc == MOE_ENOMEM, "bootstrap with B = SIZE_MAX - 2 (buffer size wraps): ENOMEM (%s)",
     moe_last_error());
}

int main(void)
{
  gsl_rng *r = moe_rng_alloc(2505);
  test_gsl_handler();
  test_layer_nan(r);
  test_optim_nan(MOE_OPTIM_SGD);
  test_optim_nan(MOE_OPTIM_ADAMW);
  test_sizes();
  gsl_rng_free(r);
  return tap_done();
}
