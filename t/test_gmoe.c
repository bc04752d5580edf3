/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_gmoe.c — the Gaussian MoE with shared experts: truths, density,
 * sampler, text form, gradients, EM (monotone, recovers the truth,
 * deterministic) and every error path. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gsl/gsl_integration.h>
#include <gsl/gsl_randist.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/rng.h"
#include "tap.h"

static const char *const THMS[] = {"thm1", "thm2", "thm3", "thm4", "gatecmp"};

/* ∫ y^p f(y|x) dy by qagi */
typedef struct { const moe_gmoe *m; const double *x; int p; } mom_ctx;
static double mom_f(double y, void *v)
{
  mom_ctx *c = v;
  return pow(y, c->p) * moe_gmoe_density(c->m, c->x, y);
}
static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The components can sit far apart with small variances, so a single
 * qagi misses peaks: integrate the body [a, b] with qagp, breakpoints at
 * the component means, and the two tails with qagil / qagiu. */
static double moment(const moe_gmoe *m, const double *x, int p)
{
  gsl_integration_workspace *w = gsl_integration_workspace_alloc(4000);
  mom_ctx c = {m, x, p};
  gsl_function F = {mom_f, &c};
  double pts[16], smax = 0;
  int np = 0;
  for (int i = 0; i < m->k1; i++) { pts[1 + np++] = moe_gmoe_shared_mean(m, i, x); smax = fmax(smax, sqrt(m->tau[i])); }
  for (int j = 0; j < m->k2; j++) { pts[1 + np++] = moe_gmoe_routed_mean(m, j, x); smax = fmax(smax, sqrt(m->nu[j])); }
  qsort(pts + 1, (size_t)np, sizeof *pts, cmp_double);
  int u = 1;   /* drop coincident breakpoints */
  for (int k = 2; k <= np; k++) if (pts[k] > pts[u] + 1e-9) pts[++u] = pts[k];
  np = u;
  double a = pts[1] - 12 * smax, b = pts[np] + 12 * smax;
  pts[0] = a; pts[np + 1] = b;
  double body = NAN, lo = NAN, hi = NAN, err;
  gsl_integration_qagp(&F, pts, (size_t)np + 2, 1e-12, 1e-10, 4000, w, &body, &err);
  gsl_integration_qagil(&F, a, 1e-13, 1e-10, 4000, w, &lo, &err);
  gsl_integration_qagiu(&F, b, 1e-13, 1e-10, 4000, w, &hi, &err);
  gsl_integration_workspace_free(w);
  return lo + body + hi;
}

/* Closed-form conditional moments of the mixture. */
static void mix_moments(const moe_gmoe *m, const double *x, double *mean, double *var)
{
  double g[16], e1 = 0, e2 = 0;
  moe_gmoe_gate_eval(m, x, g);
  for (int i = 0; i < m->k1; i++) {
    double h = moe_gmoe_shared_mean(m, i, x), w = 0.5 * m->omega[i];
    e1 += w * h; e2 += w * (h * h + m->tau[i]);
  }
  for (int j = 0; j < m->k2; j++) {
    double h = moe_gmoe_routed_mean(m, j, x), w = 0.5 * g[j];
    e1 += w * h; e2 += w * (h * h + m->nu[j]);
  }
  *mean = e1; *var = e2 - e1 * e1;
}

/* A fitted-shape model with high-entropy parameters. */
static moe_gmoe *odd_model(int d, moe_gmoe_gate gate, moe_gmoe_expert sk, moe_gmoe_expert rk, int topk)
{
  moe_gmoe *m = moe_gmoe_alloc(d, 2, 3, gate, sk, rk);
  m->topk = topk;
  m->omega[0] = 0.385; m->omega[1] = 0.615;
  for (int i = 0; i < 2; i++) {
    m->kappa0[i] = 0.317 - 0.9 * i;
    for (int k = 0; k < d; k++) m->kappa1[i * d + k] = 1.73 * (i ? -1 : 1) + 0.21 * k;
    m->kappa2[i] = -2.385 + 1.1 * i;
    m->tau[i] = 0.287 + 0.2 * i;
  }
  for (int j = 0; j < 3; j++) {
    m->beta0[j] = -0.41 + 0.53 * j;
    for (int k = 0; k < d; k++) m->beta1[j * d + k] = 1.37 * (j - 1) + 0.3 * k;
    m->eta0[j] = rk == MOE_GMOE_LINEAR ? 0.77 - 0.6 * j : 0;
    for (int k = 0; k < d; k++) m->eta1[j * d + k] = 2.11 * (1 - j) - 0.17 * k;
    m->eta2[j] = rk == MOE_GMOE_RELU ? 1.93 - 0.4 * j : 1;
    m->nu[j] = 0.331 + 0.1 * j;
  }
  return m;
}

static void test_truths(void)
{
  moe_gmoe *m;
  is_int(moe_gmoe_truth("thm1", 1, &m), MOE_OK, "thm1 truth");
  ok(m->k1 == 1 && m->k2 == 2 && m->gate == MOE_GMOE_SOFTMAX && m->shared_kind == MOE_GMOE_RELU &&
     m->routed_kind == MOE_GMOE_RELU, "thm1: 1 shared + 2 routed ReLU, softmax");
  ok(m->kappa1[0] == 6 && m->kappa2[0] == -8 && m->tau[0] == 0.25 && m->beta1[0] == 5 && m->beta1[1] == 5 &&
     m->beta0[0] == -0.5 && m->eta1[0] == -12 && m->eta1[1] == 12 && m->eta2[0] == 4 && m->nu[1] == 0.4,
     "thm1 parameters as in App. G.1");
  moe_gmoe_free(m);
  moe_gmoe_truth("thm2", 1, &m);
  ok(m->shared_kind == MOE_GMOE_LINEAR && m->kappa1[0] == 2 && m->tau[0] == 0.2 && m->eta1[0] == 8 &&
     m->eta0[0] == 2 && m->eta1[1] == -6 && m->eta0[1] == 1, "thm2 parameters");
  moe_gmoe_free(m);
  moe_gmoe_truth("thm3", 1, &m);
  ok(m->gate == MOE_GMOE_NSIGMOID && m->beta1[0] == 0 && m->beta1[1] == 0 && m->eta1[1] == 12,
     "thm3: normalised sigmoid, zero slopes");
  moe_gmoe_free(m);
  moe_gmoe_truth("thm4", 3, &m);
  ok(m->gate == MOE_GMOE_NSIGMOID && m->shared_kind == MOE_GMOE_RELU && m->routed_kind == MOE_GMOE_LINEAR &&
     m->kappa1[0] == 6 && m->kappa1[1] == -3 && m->kappa1[2] == 1.5 && m->beta1[3] == 5 && m->beta1[4] == -2.5 &&
     m->eta1[3] == -6 && m->eta1[5] == -1.5, "thm4 at d=3: extension θ_k = θ_1 (-1/2)^(k-1)");
  moe_gmoe_free(m);
  m = (moe_gmoe *)1;
  is_int(moe_gmoe_truth("thm9", 1, &m), MOE_EINVAL, "unknown experiment rejected");
  ok(strstr(moe_last_error(), "thm9") && strstr(moe_last_error(), "thm4"), "message names it and the known ones");
  ok(m == NULL, "out cleared on error");
  is_int(moe_gmoe_truth("thm1", 0, &m), MOE_EINVAL, "d = 0 rejected");
}

static void test_density(void)
{
  double x1[3] = {1.37, -0.52, 2.2}, x2[3] = {-2.71, 0.18, -1.0};
  for (int e = 0; e < 5; e++) {
    moe_gmoe *m;
    moe_gmoe_truth(THMS[e], 1, &m);
    for (int a = 0; a < 2; a++) {
      const double *x = a ? x2 : x1;
      double mean, var;
      mix_moments(m, x, &mean, &var);
      is_close(moment(m, x, 0), 1.0, 1e-8, 0, "%s: ∫ f(y|x=%.2f) dy = 1", THMS[e], x[0]);
      is_close(moment(m, x, 1), mean, 1e-7, 1e-8, "%s: E[Y|x=%.2f] by qagi = mixture mean", THMS[e], x[0]);
      double m2 = moment(m, x, 2);
      is_close(m2 - mean * mean, var, 1e-6, 1e-7, "%s: Var[Y|x=%.2f] by qagi = mixture variance", THMS[e], x[0]);
    }
    moe_gmoe_free(m);
  }
  /* fitted shapes: d = 3, both gates, top-K */
  double x3[3] = {0.91, -1.44, 2.385};
  for (int g = 0; g < 2; g++)
    for (int k = 0; k <= 2; k += 2) {
      moe_gmoe *m = odd_model(3, g, MOE_GMOE_RELU, MOE_GMOE_LINEAR, k);
      double gw[3];
      moe_gmoe_gate_eval(m, x3, gw);
      is_close(gw[0] + gw[1] + gw[2], 1.0, 1e-14, 0, "gate %d topk %d: weights sum to 1", g, k);
      if (k == 2) {
        /* slopes' scores β1ᵀx: j0: -1.37*.91+... choose the smallest to be dropped */
        double v[3];
        int lo = 0;
        for (int j = 0; j < 3; j++) {
          v[j] = 0;
          for (int q = 0; q < 3; q++) v[j] += m->beta1[j * 3 + q] * x3[q];
          if (v[j] < v[lo]) lo = j;
        }
        ok(gw[lo] == 0.0, "top-2: the expert with the lowest β1ᵀx gets weight 0");
      }
      is_close(moment(m, x3, 0), 1.0, 1e-8, 0, "gate %d topk %d d=3: density integrates to 1", g, k);
      double ld = moe_gmoe_logdensity(m, x3, 0.7), dd = moe_gmoe_density(m, x3, 0.7);
      is_close(ld, log(dd), 1e-12, 1e-12, "logdensity = log density");
      moe_gmoe_free(m);
    }
  /* far tail: log-density stays finite where the density underflows */
  moe_gmoe *m;
  moe_gmoe_truth("thm1", 1, &m);
  double x = 0.5;
  ok(isfinite(moe_gmoe_logdensity(m, &x, 400.0)) && moe_gmoe_density(m, &x, 400.0) == 0.0,
     "log-sum-exp: finite log-density at y = 400");
  moe_gmoe_free(m);
}

static void test_sampler(void)
{
  /* Monte Carlo moments of Y vs ∫ E[Y|x] dx/6 and ∫ E[Y²|x] dx/6 (d = 1),
   * and the conditional mean on a narrow bin of x. */
  const size_t n = 200000;
  double *X = malloc(n * sizeof *X), *Y = malloc(n * sizeof *Y);
  for (int e = 0; e < 4; e++) {
    moe_gmoe *m;
    moe_gmoe_truth(THMS[e], 1, &m);
    gsl_rng *r = moe_rng_alloc(moe_seed_derive(2505, THMS[e]));
    is_int(moe_gmoe_sample(m, r, n, X, Y), MOE_OK, "%s: sample", THMS[e]);
    gsl_rng_free(r);
    double s1 = 0, s2 = 0, xmin = 1e9, xmax = -1e9, bs = 0, bs2 = 0;
    long bn = 0;
    for (size_t t = 0; t < n; t++) {
      s1 += Y[t]; s2 += Y[t] * Y[t];
      if (X[t] < xmin) xmin = X[t];
      if (X[t] > xmax) xmax = X[t];
      if (fabs(X[t] - 1.1) < 0.02) { bs += Y[t]; bs2 += Y[t] * Y[t]; bn++; }
    }
    ok(xmin >= -3 && xmax < 3 && xmin < -2.99 && xmax > 2.99, "%s: X ~ U[-3,3]", THMS[e]);
    /* exact E[Y], E[Y²] by integrating the closed-form conditional moments */
    double E1 = 0, E2 = 0;
    const int G = 60000;
    for (int k = 0; k < G; k++) {
      double x = -3 + 6 * (k + 0.5) / G, mu, v;
      mix_moments(m, &x, &mu, &v);
      E1 += mu / G; E2 += (v + mu * mu) / G;
    }
    double sd = sqrt(E2 - E1 * E1), se = sd / sqrt((double)n);
    double mc1 = s1 / n, mc2 = s2 / n;
    ok(fabs(mc1 - E1) < 4.5 * se, "%s: MC mean %.4f vs %.4f (4.5 se = %.4f)", THMS[e], mc1, E1, 4.5 * se);
    ok(fabs(mc2 - E2) < 0.02 * E2, "%s: MC E[Y²] %.3f vs %.3f", THMS[e], mc2, E2);
    double xb = 1.1, mub, vb;
    mix_moments(m, &xb, &mub, &vb);
    double bmean = bs / bn, bse = sqrt(vb / bn);
    /* the bin has width 0.04: allow the mean's variation across it */
    ok(fabs(bmean - mub) < 5 * bse + 0.3, "%s: E[Y|x≈1.1] MC %.3f vs %.3f (n=%ld)", THMS[e], bmean, mub, bn);
    moe_gmoe_free(m);
  }
  free(X); free(Y);
}

static void test_text(void)
{
  moe_gmoe *m = odd_model(2, MOE_GMOE_NSIGMOID, MOE_GMOE_RELU, MOE_GMOE_LINEAR, 2), *b = NULL;
  const char *path = "t_gmoe_roundtrip.txt";
  FILE *f = fopen(path, "w");
  is_int(moe_gmoe_write(f, m), MOE_OK, "write");
  fclose(f);
  is_int(moe_gmoe_read(path, &b), MOE_OK, "read back");
  ok(b && b->d == 2 && b->k1 == 2 && b->k2 == 3 && b->topk == 2 && b->gate == MOE_GMOE_NSIGMOID &&
     b->routed_kind == MOE_GMOE_LINEAR, "shape and kinds survive");
  ok(b && memcmp(b->slab_, m->slab_, (size_t)(2 * 6 + 3 * 8) * sizeof(double)) == 0,
     "round trip is bit-exact (%%.17g)");
  moe_gmoe_free(b);
  remove(path);
  struct { const char *text, *want; } bad[] = {
    {"", ":0: empty file"},
    {"moebench-gmoe 2\n", ":1: expected header"},
    {"moebench-gmoe 1\nd 1\nk1 1\nk2 1\ngate softmax\nshared_expert relu\nrouted_expert relu\n"
     "shared 1 0 6 -8\nrouted 0 0 0 1 1 1\n", ":8: 'shared' line needs 5 numbers, found 4"},
    {"moebench-gmoe 1\nd 1\nk1 1\nk2 1\ngate softmax\nshared_expert relu\nrouted_expert relu\n"
     "shared 1 0 6 -8 0.2x\n", ":8: 'shared' line needs 5 numbers, found a malformed"},
    {"moebench-gmoe 1\nd 1\nk1 1\nk2 1\ngate softmaxx\n", ":5: bad value 'softmaxx' for 'gate'"},
    {"moebench-gmoe 1\nd 1\n# fine\nfrobnicate 3\n", ":4: unknown key 'frobnicate'"},
    {"moebench-gmoe 1\nd 1\nk1 1\nk2 1\ngate softmax\nshared_expert relu\nrouted_expert relu\n"
     "shared 1 0 6 -8 0.25\n", ":8: found 1 shared and 0 routed lines"},
    {"moebench-gmoe 1\nd 1\nk1 1\nk2 1\ngate softmax\nshared_expert relu\nrouted_expert relu\n"
     "shared 1 0 6 -8 -0.25\nrouted 0 0 0 1 1 1\n", "invalid model: gmoe: tau[0]=-0.25 must be > 0"},
    {"moebench-gmoe 1\nshared 1 0 6 -8 0.25\n", ":2: parameter line before d"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    f = fopen(path, "w");
    fputs(bad[k].text, f);
    fclose(f);
    b = (moe_gmoe *)1;
    int rc = moe_gmoe_read(path, &b);
    ok(rc == MOE_EFORMAT && b == NULL && strstr(moe_last_error(), path) && strstr(moe_last_error(), bad[k].want),
       "malformed file %zu rejected: %s", k, moe_last_error());
  }
  /* several models in one file (the branches of a cached limit) */
  f = fopen(path, "w");
  moe_gmoe_write(f, m);
  fputs("# second model\n", f);
  m->beta0[2] = 2.385;
  moe_gmoe_write(f, m);
  fclose(f);
  moe_gmoe **all = NULL;
  int na = 0;
  is_int(moe_gmoe_read_all(path, &all, &na), MOE_OK, "read_all");
  ok(na == 2 && all[0]->beta0[2] != 2.385 && all[1]->beta0[2] == 2.385, "two models, in file order");
  moe_gmoe_free_all(all, na);
  is_int(moe_gmoe_read(path, &b), MOE_EFORMAT, "read (exactly one model) refuses a file of two");
  ok(strstr(moe_last_error(), "holds 2 models") != NULL, "message: %s", moe_last_error());
  f = fopen(path, "w");
  moe_gmoe_write(f, m);
  fputs("moebench-gmoe 1\nd 1\nk1 1\n", f);
  fclose(f);
  ok(moe_gmoe_read_all(path, &all, &na) == MOE_EFORMAT && strstr(moe_last_error(), ":18: found 0 shared"),
     "truncated second model: error at its last line (%s)", moe_last_error());
  remove(path);
  is_int(moe_gmoe_read("no/such/file.txt", &b), MOE_EIO, "missing file: EIO");
  ok(strstr(moe_last_error(), "no/such/file.txt") != NULL, "message names the file");
  moe_gmoe_free(m);
}

static void test_gradients(void)
{
  const size_t n = 257;
  const int d = 2;
  double X[257 * 2], Y[257], w[257];
  gsl_rng *r = moe_rng_alloc(77);
  for (size_t t = 0; t < n; t++) {
    X[2 * t] = -3 + 6 * gsl_rng_uniform(r);
    X[2 * t + 1] = -3 + 6 * gsl_rng_uniform(r);
    Y[t] = 2.385 * X[2 * t] - 1.3 + gsl_ran_gaussian(r, 1.0);
    w[t] = 0.05 + gsl_rng_uniform(r);
  }
  struct { moe_gmoe_expert kind; int bias; int np; const char *name; } ex[] = {
    {MOE_GMOE_RELU, 1, d + 2, "shared ReLU (κ0, κ1, κ2)"},
    {MOE_GMOE_RELU, 0, d + 1, "routed ReLU (η1, η2)"},
    {MOE_GMOE_LINEAR, 1, d + 1, "linear (b, w)"},
  };
  for (int e = 0; e < 3; e++) {
    double p[4] = {0.317, 1.21, -0.73, 2.385}, g[4], pp[4];
    moe_gmoe_expert_objective(ex[e].kind, ex[e].bias, d, n, X, Y, w, p, g);
    double md = 0;
    for (int q = 0; q < ex[e].np; q++) {
      const double h = 1e-6;
      memcpy(pp, p, sizeof p); pp[q] += h;
      double fp = moe_gmoe_expert_objective(ex[e].kind, ex[e].bias, d, n, X, Y, w, pp, NULL);
      pp[q] -= 2 * h;
      double fm = moe_gmoe_expert_objective(ex[e].kind, ex[e].bias, d, n, X, Y, w, pp, NULL);
      double fd = (fp - fm) / (2 * h);
      double rel = fabs(fd - g[q]) / (1e-6 + fabs(fd));
      if (rel > md) md = rel;
    }
    ok(md < 1e-6, "%s: gradient vs central differences (max rel %.2g)", ex[e].name, md);
  }
  /* gate: softmax, normalised sigmoid, top-2 softmax */
  double R[257 * 3];
  for (size_t t = 0; t < n; t++) {
    double a = gsl_rng_uniform(r), b = gsl_rng_uniform(r), c = gsl_rng_uniform(r), s = (a + b + c) / 0.83;
    R[3 * t] = a / s; R[3 * t + 1] = b / s; R[3 * t + 2] = c / s;
  }
  for (int g = 0; g < 3; g++) {
    moe_gmoe *m = odd_model(d, g == 1 ? MOE_GMOE_NSIGMOID : MOE_GMOE_SOFTMAX, MOE_GMOE_RELU, MOE_GMOE_RELU,
                            g == 2 ? 2 : 0);
    double beta[9] = {-0.41, 0.12, 0.65, -1.37, 0.2, 0.31, -0.05, 1.37, 0.9}, gr[9], bb[9];
    double *Ru = R;
    double Rt[257 * 3];
    if (g == 2) {   /* top-K: responsibilities vanish outside the chosen set */
      memcpy(Rt, R, sizeof Rt);
      for (size_t t = 0; t < n; t++) {
        double gw[3];
        memcpy(m->beta0, beta, 3 * sizeof(double));
        memcpy(m->beta1, beta + 3, 6 * sizeof(double));
        moe_gmoe_gate_eval(m, X + 2 * t, gw);
        for (int j = 0; j < 3; j++) if (gw[j] == 0) Rt[3 * t + j] = 0;
      }
      Ru = Rt;
    }
    /* the objective runs the gate over blocks of 256 samples through
     * SLEEF's vector exp/log: it must equal the sum over the points of
     * the per-point gate (moe_gmoe_gate_eval, glibc's exp/log), here with
     * n = 257 (a block and a tail of one), at these slopes and at 30×
     * them (saturated logits, where log σ needs its stable form) */
    for (int sc = 0; sc < 2; sc++) {
      double bs[9], ref = 0;
      for (int q = 0; q < 9; q++) bs[q] = (sc ? 30.0 : 1.0) * beta[q];
      memcpy(m->beta0, bs, 3 * sizeof(double));
      memcpy(m->beta1, bs + 3, 6 * sizeof(double));
      for (size_t t = 0; t < n; t++) {
        double gw[3];
        moe_gmoe_gate_eval(m, X + 2 * t, gw);
        for (int j = 0; j < 3; j++) if (Ru[3 * t + j] > 0) ref -= Ru[3 * t + j] * log(gw[j]);
      }
      ref /= (double)n;
      double fb = moe_gmoe_gate_objective(m, n, X, Ru, bs, NULL);
      is_close(fb, ref, 1e-12, 1e-12, "gate %s%s: blocked objective = sum of per-point gates",
               g == 0 ? "softmax" : g == 1 ? "normalised sigmoid" : "top-2 softmax", sc ? " (30x slopes)" : "");
    }
    moe_gmoe_gate_objective(m, n, X, Ru, beta, gr);
    double md = 0;
    for (int q = 0; q < 9; q++) {
      /* for top-K only the biases are differentiated: moving a slope may
       * change the chosen set (a jump the gradient rightly ignores) */
      if (g == 2 && q >= 3) continue;
      const double h = 1e-6;
      memcpy(bb, beta, sizeof bb); bb[q] += h;
      double fp = moe_gmoe_gate_objective(m, n, X, Ru, bb, NULL);
      bb[q] -= 2 * h;
      double fm = moe_gmoe_gate_objective(m, n, X, Ru, bb, NULL);
      double fd = (fp - fm) / (2 * h);
      double rel = fabs(fd - gr[q]) / (1e-6 + fabs(fd));
      if (rel > md) md = rel;
    }
    ok(md < 1e-6, "gate %s: gradient vs central differences (max rel %.2g)",
       g == 0 ? "softmax" : g == 1 ? "normalised sigmoid" : "top-2 softmax", md);
    /* Hessian (used by the Newton M-step) vs differences of the gradient */
    double H[81], G0[9], gp[9], gm[9], fv;
    is_int(moe_gmoe_gate_hessian(m, n, X, Ru, beta, G0, H, &fv), MOE_OK, "gate Hessian");
    is_close(fv, moe_gmoe_gate_objective(m, n, X, Ru, beta, NULL), 1e-14, 1e-13, "Hessian pass: same objective");
    double hd = 0, gd = 0;
    for (int q = 0; q < 9; q++) gd = fmax(gd, fabs(G0[q] - gr[q]));
    for (int q = 0; q < 9; q++) {
      if (g == 2 && q >= 3) continue;
      const double h = 1e-6;
      memcpy(bb, beta, sizeof bb); bb[q] += h;
      moe_gmoe_gate_objective(m, n, X, Ru, bb, gp);
      bb[q] -= 2 * h;
      moe_gmoe_gate_objective(m, n, X, Ru, bb, gm);
      for (int a = 0; a < 9; a++) {
        if (g == 2 && a >= 3) continue;
        double fd = (gp[a] - gm[a]) / (2 * h);
        hd = fmax(hd, fabs(fd - H[a * 9 + q]) / (1e-4 + fabs(fd)));
      }
    }
    ok(gd < 1e-15 && hd < 1e-5, "gate %s: Hessian vs differences of the gradient (max rel %.2g)",
       g == 0 ? "softmax" : g == 1 ? "normalised sigmoid" : "top-2 softmax", hd);
    moe_gmoe_free(m);
  }
  gsl_rng_free(r);
}

static void sample_truth(const char *name, size_t n, uint64_t seed, moe_gmoe **t, double **X, double **Y)
{
  moe_gmoe_truth(name, 1, t);
  *X = malloc(n * sizeof **X);
  *Y = malloc(n * sizeof **Y);
  gsl_rng *r = moe_rng_alloc(seed);
  moe_gmoe_sample(*t, r, n, *X, *Y);
  gsl_rng_free(r);
}

static void test_em_monotone(void)
{
  for (int e = 0; e < 5; e++) {
    const size_t n = 700;
    moe_gmoe *t;
    double *X, *Y;
    sample_truth(THMS[e], n, 31 + e, &t, &X, &Y);
    for (int topk = 0; topk <= 2; topk += 2) {
      if (topk && t->gate != MOE_GMOE_SOFTMAX) continue;
      moe_gmoe *m = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
      m->topk = topk;
      gsl_rng *r = moe_rng_alloc(5 + e);
      moe_gmoe_init_params(m, t, MOE_GMOE_INIT_RANDOM, 0.5, r, n, X, Y);
      gsl_rng_free(r);
      moe_gmoe_em *w = moe_gmoe_em_alloc(m, n);
      is_int(moe_gmoe_em_test(w, 1e-6, MOE_GMOE_TOL_REL), MOE_GMOE_CONTINUE, "test before init: continue");
      moe_gmoe_em_init(w, m, n, X, Y);
      double prev = moe_gmoe_em_loglik(w), worst = 0;
      double ll0 = prev;
      int rule_ok = 1, it;
      for (it = 0; it < 80; it++) {
        if (moe_gmoe_em_iterate(w)) break;
        double ll = moe_gmoe_em_loglik(w);
        if (prev - ll > worst) worst = prev - ll;
        int want_rel = fabs(ll - prev) <= 1e-6 * fabs(prev), want_abs = fabs(ll - prev) <= 1e-4;
        if ((moe_gmoe_em_test(w, 1e-6, MOE_GMOE_TOL_REL) == MOE_OK) != want_rel) rule_ok = 0;
        if ((moe_gmoe_em_test(w, 1e-4, MOE_GMOE_TOL_ABS) == MOE_OK) != want_abs) rule_ok = 0;
        prev = ll;
      }
      ok(it == 80, "%s topk=%d: 80 EM iterations ran", THMS[e], topk);
      ok(worst <= 1e-12 * fabs(prev), "%s topk=%d: log-likelihood never decreases (worst drop %.3g, %.4f -> %.4f)",
         THMS[e], topk, worst, ll0, prev);
      ok(rule_ok, "%s topk=%d: em_test follows the rel/abs stopping rules", THMS[e], topk);
      double ll;
      moe_gmoe_loglik(m, n, X, Y, &ll);
      is_close(moe_gmoe_em_loglik(w), ll, 1e-12, 1e-12, "%s topk=%d: em loglik = loglik of the model", THMS[e], topk);
      moe_gmoe_em_free(w);
      moe_gmoe_free(m);
    }
    moe_gmoe_free(t); free(X); free(Y);
  }
}

static void test_solvers_agree(void)
{
  /* the Newton / Gauss-Newton M-steps and the BFGS ones climb to the same
   * log-likelihood on the same data (within EM's own convergence). Only
   * softmax truths: there the gate M-step is concave; the normalised
   * sigmoid's is not, and from one start the two solvers can settle in
   * different local optima (seen on thm3: Newton at β0 ≈ (0.1, 3.3), BFGS
   * in the saturated region β0 ≈ (-4.9, -4.3), 7e-6 nats apart). */
  const size_t n = 3000;
  for (int e = 0; e < 2; e++) {
    moe_gmoe *t;
    double *X, *Y;
    sample_truth(THMS[e], n, 61 + e, &t, &X, &Y);
    double ll[2];
    int its[2];
    for (int b = 0; b < 2; b++) {
      moe_gmoe *m = moe_gmoe_alloc(1, 1, 2, t->gate, t->shared_kind, t->routed_kind);
      gsl_rng *r = moe_rng_alloc(3);
      moe_gmoe_init_params(m, t, MOE_GMOE_INIT_TRUTH, 0.3, r, n, X, Y);
      gsl_rng_free(r);
      moe_gmoe_em *w = moe_gmoe_em_alloc(m, n);
      moe_gmoe_em_set_gate_solver(w, b);
      moe_gmoe_em_set_expert_solver(w, b);
      moe_gmoe_em_set_inner(w, 10, 1e-6);
      moe_gmoe_em_init(w, m, n, X, Y);
      for (int it = 0; it < 400; it++) {
        moe_gmoe_em_iterate(w);
        if (moe_gmoe_em_test(w, 1e-12, MOE_GMOE_TOL_ABS) == MOE_OK) break;
      }
      ll[b] = moe_gmoe_em_loglik(w);
      its[b] = moe_gmoe_em_iterations(w);
      moe_gmoe_em_free(w);
      moe_gmoe_free(m);
    }
    is_close(ll[0], ll[1], 1e-6, 0, "%s exact model: Newton (%d its) and BFGS (%d its) M-steps reach the same log-likelihood",
             THMS[e], its[0], its[1]);
    moe_gmoe_free(t); free(X); free(Y);
  }
}

static void test_em_recovers(void)
{
  /* exactly specified fits (k1 = 1, k2 = 2) at n = 20000: parameters
   * within a few standard errors of the truth. Softmax: compare slope and
   * bias differences (shift invariance); ReLU: compare products and
   * ratios (positive rescaling). */
  const size_t n = 20000;
  for (int e = 0; e < 2; e++) {
    moe_gmoe *t;
    double *X, *Y;
    sample_truth(THMS[e], n, 404 + e, &t, &X, &Y);
    moe_gmoe *m = moe_gmoe_alloc(1, 1, 2, t->gate, t->shared_kind, t->routed_kind);
    moe_gmoe_fit_opts o;
    moe_gmoe_fit_opts_default(&o);
    o.init_sd = 0.3;
    moe_gmoe_fit_info fi;
    is_int(moe_gmoe_fit(m, t, n, X, Y, &o, 99, &fi), MOE_OK, "%s exact fit", THMS[e]);
    ok(fi.converged && fi.iterations > 1 && fi.iterations < 1000, "%s: converged in %d iterations", THMS[e],
       fi.iterations);
    double llt;
    moe_gmoe_loglik(t, n, X, Y, &llt);
    ok(fi.loglik >= llt, "%s: MLE log-likelihood %.5f >= truth's %.5f", THMS[e], fi.loglik, llt);
    double err = 0;
    if (e == 0) {  /* ReLU: κ2κ1, κ0/κ1, η2η1 */
      err = fmax(err, fabs(m->kappa2[0] * m->kappa1[0] - (-48)) / 48);
      err = fmax(err, fabs(m->kappa0[0] / m->kappa1[0]));
      for (int j = 0; j < 2; j++) err = fmax(err, fabs(m->eta2[j] * m->eta1[j] - t->eta2[j] * t->eta1[j]) / 48);
    } else {
      err = fmax(err, fabs(m->kappa1[0] - 2));
      err = fmax(err, fabs(m->kappa0[0]));
      for (int j = 0; j < 2; j++) {
        err = fmax(err, fabs(m->eta1[j] - t->eta1[j]) / fabs(t->eta1[j]));
        err = fmax(err, fabs(m->eta0[j] - t->eta0[j]));
      }
    }
    err = fmax(err, fabs(m->tau[0] - t->tau[0]) / t->tau[0]);
    for (int j = 0; j < 2; j++) err = fmax(err, fabs(m->nu[j] - t->nu[j]) / t->nu[j]);
    err = fmax(err, fabs((m->beta0[1] - m->beta0[0]) - 1.0));
    err = fmax(err, fabs(m->beta1[1] - m->beta1[0]) / 5);
    ok(err < 0.05, "%s: parameters recovered (max rel/abs error %.4f < 0.05)", THMS[e], err);
    moe_gmoe_free(m); moe_gmoe_free(t); free(X); free(Y);
  }
}

static void test_determinism_and_errors(void)
{
  const size_t n = 800;
  moe_gmoe *t;
  double *X, *Y;
  sample_truth("thm4", n, 8, &t, &X, &Y);
  moe_gmoe *a = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
  moe_gmoe *b = moe_gmoe_alloc(1, 2, 3, t->gate, t->shared_kind, t->routed_kind);
  moe_gmoe_fit_opts o;
  moe_gmoe_fit_opts_default(&o);
  o.restarts = 3;
  o.init = MOE_GMOE_INIT_RANDOM;
  o.max_iter = 60;
  moe_gmoe_fit_info fa, fb;
  moe_gmoe_fit(a, t, n, X, Y, &o, 1234, &fa);
  moe_gmoe_fit(b, t, n, X, Y, &o, 1234, &fb);
  ok(memcmp(a->slab_, b->slab_, (size_t)(2 * 5 + 3 * 6) * sizeof(double)) == 0 &&
     memcmp(&fa.loglik, &fb.loglik, sizeof(double)) == 0, "same seed: identical fitted bits");
  is_int(fa.restarts_used, 3, "three restarts used");
  ok(fa.best_restart >= 0 && fa.best_restart < 3, "best restart recorded (%d)", fa.best_restart);
  moe_gmoe_fit(b, t, n, X, Y, &o, 1235, &fb);
  ok(memcmp(a->slab_, b->slab_, (size_t)(2 * 5 + 3 * 6) * sizeof(double)) != 0, "another seed: another fit");

  /* error paths */
  ok(moe_gmoe_alloc(1, 0, 3, 0, 0, 0) == NULL && strstr(moe_last_error(), "k1=0"), "alloc: k1 = 0 rejected");
  ok(moe_gmoe_alloc(0, 1, 3, 0, 0, 0) == NULL, "alloc: d = 0 rejected");
  ok(moe_gmoe_alloc(1, 1, -2, 0, 0, 0) == NULL, "alloc: k2 < 0 rejected");
  is_int(moe_gmoe_fit(a, t, 0, X, Y, &o, 1, NULL), MOE_EINVAL, "fit: n = 0 rejected");
  ok(strstr(moe_last_error(), "n must be >= 1") != NULL, "fit: message says why");
  o.restarts = 0;
  is_int(moe_gmoe_fit(a, t, n, X, Y, &o, 1, NULL), MOE_EINVAL, "fit: restarts = 0 rejected");
  moe_gmoe_fit_opts_default(&o);
  moe_gmoe *small = moe_gmoe_alloc(1, 1, 1, t->gate, t->shared_kind, t->routed_kind);
  is_int(moe_gmoe_fit(small, t, n, X, Y, &o, 1, NULL), MOE_EINVAL, "fit: perturbed-truth init needs k2 >= k2*");
  ok(strstr(moe_last_error(), "does not fit") != NULL, "message: %s", moe_last_error());
  moe_gmoe *wrongkind = moe_gmoe_alloc(1, 2, 3, t->gate, MOE_GMOE_LINEAR, t->routed_kind);
  is_int(moe_gmoe_fit(wrongkind, t, n, X, Y, &o, 1, NULL), MOE_EINVAL, "fit: expert kinds must match the truth");
  moe_gmoe_em *w = moe_gmoe_em_alloc(a, 100);
  is_int(moe_gmoe_em_init(w, a, 101, X, Y), MOE_EINVAL, "em_init: n > nmax rejected");
  is_int(moe_gmoe_em_init(w, small, 50, X, Y), MOE_EINVAL, "em_init: shape mismatch rejected");
  a->tau[1] = -1;
  is_int(moe_gmoe_em_init(w, a, 50, X, Y), MOE_EINVAL, "em_init: negative variance rejected");
  a->tau[1] = 0.3;
  a->topk = 4;
  is_int(moe_gmoe_validate(a), MOE_EINVAL, "validate: topk > k2 rejected");
  a->topk = 0;
  a->omega[0] = 0.3; a->omega[1] = 0.3;
  is_int(moe_gmoe_validate(a), MOE_EINVAL, "validate: ω not summing to 1 rejected");
  a->omega[1] = 0.7;
  a->beta0[0] = NAN;
  is_int(moe_gmoe_validate(a), MOE_EDOM, "validate: NaN parameter rejected");
  gsl_rng *r = moe_rng_alloc(1);
  is_int(moe_gmoe_sample(a, r, 10, X, Y), MOE_EDOM, "sample: invalid model rejected");
  is_int(moe_gmoe_sample(t, r, 0, X, Y), MOE_EINVAL, "sample: n = 0 rejected");
  gsl_rng_free(r);
  ok(moe_gmoe_em_alloc(t, 0) == NULL, "em_alloc: nmax = 0 rejected");
  is_int(moe_gmoe_copy(small, t), MOE_EINVAL, "copy: shape mismatch rejected");
  moe_gmoe_em_free(w);
  moe_gmoe_free(small); moe_gmoe_free(wrongkind);
  moe_gmoe_free(a); moe_gmoe_free(b); moe_gmoe_free(t); free(X); free(Y);
}

int main(void)
{
  gsl_set_error_handler_off();   /* integration warnings become NaN results, not aborts */
  test_truths();
  test_density();
  test_sampler();
  test_text();
  test_gradients();
  test_em_monotone();
  test_solvers_agree();
  test_em_recovers();
  test_determinism_and_errors();
  return tap_done();
}
