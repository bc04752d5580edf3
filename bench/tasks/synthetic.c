/* SPDX-License-Identifier: GPL-3.0-or-later */
/* synthetic.c — the paper's convergence study (App. G.1): sample n
 * points from a true Gaussian MoE with shared experts, fit the
 * over-specified model by EM, report the theorem's Voronoi loss. Its
 * truths serve `moebench gmoe-limit` too (gmoe_limit.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/rng.h"
#include "moe/version.h"
#include "moe/voronoi.h"
#include "task.h"
#include "synthetic.h"

/* MOEBENCH_PKGDATADIR comes unquoted from Makefile.am */
#ifndef MOEBENCH_PKGDATADIR
#define MOEBENCH_PKGDATADIR / usr / share / moebench
#endif
#define SYN_STR_(x) #x
#define SYN_STR(x) SYN_STR_(x)
#define SYN_LIMITS_INSTALLED SYN_STR(MOEBENCH_PKGDATADIR) "/experiments"

static const char *const experiments[] = {"thm1", "thm2", "thm3", "thm4", "gatecmp", NULL};
static const char *const gates[] = {"default", "softmax", "nsigmoid", NULL};
static const char *const inits[] = {"truth_perturbed", "random", NULL};
static const char *const tolkinds[] = {"rel", "abs", "total", NULL};
static const char *const starts[] = {"slope0", "copy", "exact", NULL};
static const char *const d4refs[] = {"auto", "min", "pstar", "pad", "limit", NULL};
static const char *const msolvers[] = {"auto", "newton", "bfgs", NULL};
static const char *const polishers[] = {"second", "bfgs", NULL};
static const char *const losses[] = {"default", "D1", "D2", "D3", "D4", "D5", NULL};

static const mb_param params[] = {
    {"experiment", MB_STR, "thm1", 0, -1, experiments,
     "true model: thm1..thm4 (App. G.1) or gatecmp (Thm 4 experts, gate slopes 5 and -3)"},
    {"gate", MB_STR, "default", 0, -1, gates,
     "override the truth's (and fit's) gate: softmax | nsigmoid"},
    {"n", MB_INT, "1000", 1, 1e7, NULL, "sample size"},
    {"d", MB_INT, "1", 1, 64, NULL,
     "input dimension (d > 1 extends the truth, see moe_gmoe_truth)"},
    {"k1", MB_INT, "2", 1, 64, NULL, "fitted shared experts (>= the truth's 1)"},
    {"k2", MB_INT, "3", 1, 30, NULL, "fitted routed experts (>= the truth's 2)"},
    {"topk", MB_INT, "0", 0, 30, NULL,
     "K of a top-K softmax truth (0 = dense); the fit uses K + k2 - k2* (App. F)"},
    {"restarts", MB_INT, "1", 1, 100, NULL, "EM restarts; the best log-likelihood is kept"},
    {"init", MB_STR, "truth_perturbed", 0, -1, inits, "EM start: perturbed truth or random"},
    {"init_sd", MB_REAL, "0.5", 0, 100, NULL, "perturbation sd for init=truth_perturbed"},
    {"start", MB_STR, "slope0", 0, -1, starts,
     "init=truth_perturbed, extra routed atoms: slope0 (normalised-sigmoid copies start at slope "
     "0), copy (the true "
     "slope), exact (thm4: the exact 3-atom representation P*; elsewhere = slope0, whose splits "
     "are exact)"},
    {"em_max_iter", MB_INT, "1000", 0, 1000000, NULL, "EM maps at most (paper: 1000)"},
    {"em_tol", MB_REAL, "1", 1e-300, 1e6, NULL, "EM tolerance (paper: 1e-6 with tol_kind rel)"},
    {"tol_kind", MB_STR, "total", 0, -1, tolkinds,
     "on the mean log-likelihood l: rel |dl| <= tol |l| (paper); abs |dl| <= tol; total n |dl| <= "
     "tol"},
    {"inner_iter", MB_INT, "2", 1, 1000, NULL,
     "solver steps per M-step block (gate, ReLU experts); 1 = one GEM step (paper rule)"},
    {"squarem", MB_BOOL, "true", 0, -1, NULL,
     "accelerate EM by SQUAREM cycles (Varadhan & Roland 2008)"},
    {"polish", MB_INT, "300", 0, 1000000, NULL,
     "polish iterations at most (LM, Newton and BFGS together) after EM (0: none)"},
    {"polish_kind", MB_STR, "second", 0, -1, polishers,
     "polish: second (Levenberg-Marquardt, then Newton, then BFGS rounds) or bfgs (BFGS rounds "
     "only)"},
    {"grad_tol", MB_REAL, "1e-2", 1e-300, 1e6, NULL,
     "polish until sqrt(n) |grad mean log-lik| <= grad_tol"},
    {"d4_ref", MB_STR, "auto", 0, -1, d4refs,
     "D4's reference: auto (thm4: min over P* and the padded truth; else the limit file), min, "
     "pstar, pad, limit"},
    {"msolver", MB_STR, "auto", 0, -1, msolvers,
     "M-step solvers: auto (Newton for softmax gates, BFGS for normalised sigmoid, Gauss-Newton "
     "for ReLU "
     "experts), newton, or bfgs (gsl bfgs2 for gate and experts)"},
    {"loss", MB_STR, "default", 0, -1, losses,
     "Voronoi loss; default: D1/D2 (softmax, by expert kind), D3 (nsigmoid, all true slopes 0), D4 "
     "(nsigmoid), D5 (topk)"},
    {"limit_file", MB_STR, "", 0, -1, NULL,
     "D4's limit G2 (moebench gmoe-limit output); empty: limits/EXPERIMENT[-GATE][-dD].txt; "
     "relative paths are "
     "tried from the cwd, $MOEBENCH_MATRIX_DIR, ./experiments, $top_srcdir/experiments and the "
     "installed " SYN_LIMITS_INSTALLED},
    {"align_relu", MB_BOOL, "true", 0, -1, NULL,
     "align ReLU atoms by positive rescaling before D (pitfall 2)"},
    {"min_shift", MB_BOOL, "true", 0, -1, NULL,
     "minimise softmax losses over the common gate shift (pitfall 3)"},
    {"sigmoid_scale", MB_BOOL, "true", 0, -1, NULL,
     "minimise D3 over a common sigmoid scale (pitfall 4)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {"loss",
                                      "loss_raw",
                                      "loglik",
                                      "loglik_truth",
                                      "loglik_gap",
                                      "em_iters",
                                      "converged",
                                      "restarts_used",
                                      "best_restart",
                                      "em_iters_total",
                                      "routed_eta_err",
                                      "loglik_gap_em",
                                      "grad_norm",
                                      "polish_iters",
                                      "polish_how",
                                      "mle_ok",
                                      "gap_neg",
                                      "loss_pstar",
                                      "loss_pad",
                                      "loss_limit",
                                      "gate_fn_err",
                                      "gate_par_err",
                                      NULL};

#define TRUE_K1 1
#define TRUE_K2 2

static int check(const mb_cell *c, const char **bad_key, char *err, size_t errlen)
{
  long k1 = mb_cell_int(c, "k1"), k2 = mb_cell_int(c, "k2"), topk = mb_cell_int(c, "topk");
  const char *loss = mb_cell_str(c, "loss");
  if (k1 < TRUE_K1) {
    *bad_key = "k1";
    snprintf(err, errlen, "k1=%ld: the fitted model needs at least the truth's %d shared expert(s)",
             k1, TRUE_K1);
    return 1;
  }
  if (k2 < TRUE_K2) {
    *bad_key = "k2";
    snprintf(err, errlen, "k2=%ld: the fitted model needs at least the truth's %d routed experts",
             k2, TRUE_K2);
    return 1;
  }
  if (topk > TRUE_K2) {
    *bad_key = "topk";
    snprintf(err, errlen, "topk=%ld exceeds the truth's %d routed experts", topk, TRUE_K2);
    return 1;
  }
  if (loss && !strcmp(loss, "D5") && topk < 1) {
    *bad_key = "loss";
    snprintf(err, errlen, "loss D5 (Thm 5) needs topk >= 1");
    return 1;
  }
  return 0;
}

/* Resolve a limit file: absolute as is; relative tried from the cwd,
 * $MOEBENCH_MATRIX_DIR, ./experiments and $top_srcdir/experiments. */
static int resolve_limit(const char *given, char *out, size_t outlen)
{
  if (given[0] == '/') {
    snprintf(out, outlen, "%s", given);
    return access(out, R_OK) == 0;
  }
  /* last, the installed matrices' directory: a matrix copied out of it
   * still finds the limits that ship with it */
  const char *bases[5] = {".", getenv("MOEBENCH_MATRIX_DIR"), "experiments", NULL,
                          SYN_LIMITS_INSTALLED};
  char top[4096];
  const char *ts = getenv("top_srcdir");
  if (ts && *ts) {
    snprintf(top, sizeof top, "%s/experiments", ts);
    bases[3] = top;
  }
  for (int k = 0; k < 5; k++) {
    if (!bases[k] || !*bases[k])
      continue;
    if (snprintf(out, outlen, "%s/%s", bases[k], given) >= (int)outlen)
      continue;
    if (access(out, R_OK) == 0)
      return 1;
  }
  snprintf(out, outlen, "%s", given);
  return 0;
}

const char *mb_synthetic_gate_name(moe_gmoe_gate g)
{
  return g == MOE_GMOE_SOFTMAX ? "softmax" : "nsigmoid";
}

/* The experiment's truth with the gate / top-K overrides applied. */
int mb_synthetic_truth(const char *exp, const char *gate, int d, int topk, moe_gmoe **out,
                       char *err, size_t errlen)
{
  if (moe_gmoe_truth(exp, d, out)) {
    snprintf(err, errlen, "%s", moe_last_error());
    return 1;
  }
  if (gate && !strcmp(gate, "softmax"))
    (*out)->gate = MOE_GMOE_SOFTMAX;
  else if (gate && !strcmp(gate, "nsigmoid"))
    (*out)->gate = MOE_GMOE_NSIGMOID;
  (*out)->topk = topk;
  return 0;
}

static moe_voronoi_kind default_loss(const moe_gmoe *t)
{
  if (t->topk > 0 && t->gate == MOE_GMOE_SOFTMAX)
    return MOE_VORONOI_D5;
  if (t->gate == MOE_GMOE_NSIGMOID) {
    for (int j = 0; j < t->k2 * t->d; j++)
      if (t->beta1[j] != 0)
        return MOE_VORONOI_D4;
    return MOE_VORONOI_D3;
  }
  return t->shared_kind == MOE_GMOE_LINEAR || t->routed_kind == MOE_GMOE_LINEAR ? MOE_VORONOI_D2
                                                                                : MOE_VORONOI_D1;
}

static void default_limit_name(const char *exp, const moe_gmoe *t, int gate_overridden, char *out,
                               size_t len)
{
  char dpart[32] = "";
  if (t->d > 1)
    snprintf(dpart, sizeof dpart, "-d%d", t->d);
  snprintf(out, len, "limits/%s%s%s%s.txt", exp, gate_overridden ? "-" : "",
           gate_overridden ? mb_synthetic_gate_name(t->gate) : "", dpart);
}

/* Gate errors of a fit, for the identifiability figure:
 * gate function: the mean over a fixed x grid (d = 1: 601 points on
 *   [-3, 3]; d > 1: the first 2000 sample points) of Σ_j |Σ_{i∈V_j} g_i(x)
 *   − g*_j(x)|, fitted routed atoms i assigned to true experts j by the
 *   Voronoi cells around `ref`'s routed atoms (P* for thm4, whose atoms 2
 *   and 3 carry true expert 2; otherwise the truth);
 * gate parameters: Σ_i (|β0_i − β̌0| + ‖β1_i − β̌1‖) over the same cells
 *   against `ref`'s atoms (the gate part of D4). */
static void gate_errors(const moe_gmoe *f, const moe_gmoe *t, const moe_gmoe *ref, int ref_is_pstar,
                        const double *X, size_t n, double *gfe, double *gpe)
{
  int c1[64], c2[64];
  const int D = f->d, E = f->k2;
  if (f->k1 > 64 || E > 64 || ref->k2 > 64 || moe_voronoi_cells(f, t, ref, 1, c1, c2))
    return;
  double gp = 0;
  for (int i = 0; i < E; i++) {
    int j = c2[i];
    gp += fabs(f->beta0[i] - ref->beta0[j]);
    double s = 0;
    for (int k = 0; k < D; k++) {
      double dd = f->beta1[(size_t)i * D + k] - ref->beta1[(size_t)j * D + k];
      s += dd * dd;
    }
    gp += sqrt(s);
  }
  *gpe = gp;
  size_t M = D == 1 ? 601 : (n < 2000 ? n : 2000);
  double gf[64], gt[64], xs[64], acc = 0;
  for (size_t m = 0; m < M; m++) {
    const double *x = X + m * D;
    if (D == 1) {
      xs[0] = -3.0 + 6.0 * (double)m / 600.0;
      x = xs;
    }
    moe_gmoe_gate_eval(f, x, gf);
    moe_gmoe_gate_eval(t, x, gt);
    double sum[64] = {0};
    for (int i = 0; i < E; i++) {
      int j = c2[i];
      if (ref_is_pstar)
        j = j == 0 ? 0 : 1; /* P*: atoms 2, 3 carry expert 2 */
      if (j < t->k2)
        sum[j] += gf[i];
    }
    for (int j = 0; j < t->k2; j++)
      acc += fabs(sum[j] - gt[j]);
  }
  *gfe = acc / (double)M;
}

static int run(const mb_cell *c, uint64_t seed, mb_result *r, char *err, size_t errlen)
{
  const char *exp = mb_cell_str(c, "experiment"), *gate = mb_cell_str(c, "gate");
  long n = mb_cell_int(c, "n"), d = mb_cell_int(c, "d"), k1 = mb_cell_int(c, "k1"),
       k2 = mb_cell_int(c, "k2");
  long topk = mb_cell_int(c, "topk");
  const char *lossname = mb_cell_str(c, "loss"), *limit_file = mb_cell_str(c, "limit_file");
  const char *init = mb_cell_str(c, "init"), *tolkind = mb_cell_str(c, "tol_kind");
  if (!exp || n < 1 || d < 1 || k1 < 1 || k2 < 1) {
    snprintf(err, errlen, "synthetic: bad parameters (experiment=%s n=%ld d=%ld k1=%ld k2=%ld)",
             exp ? exp : "(none)", n, d, k1, k2);
    return 1;
  }
  const char *bad;
  if (check(c, &bad, err, errlen))
    return 1;
  moe_gmoe *t = NULL, *f = NULL, **lims = NULL, *pstar = NULL, *pads[2] = {NULL, NULL};
  int nlims = 0;
  double *X = NULL, *Y = NULL;
  int rc = 1;
  if (mb_synthetic_truth(exp, gate, (int)d, (int)topk, &t, err, errlen))
    goto done;
  X = malloc((size_t)n * (size_t)d * sizeof *X);
  Y = malloc((size_t)n * sizeof *Y);
  f = moe_gmoe_alloc((int)d, (int)k1, (int)k2, t->gate, t->shared_kind, t->routed_kind);
  if (!X || !Y || !f) {
    snprintf(err, errlen, "synthetic: no memory for n=%ld", n);
    goto done;
  }
  f->topk = topk > 0 ? (int)(topk + k2 - t->k2 < k2 ? topk + k2 - t->k2 : k2) : 0;
  gsl_rng *g = moe_rng_alloc(moe_seed_derive(seed, "data"));
  if (!g || moe_gmoe_sample(t, g, (size_t)n, X, Y)) {
    if (g)
      gsl_rng_free(g);
    snprintf(err, errlen, "synthetic: sampling failed: %s", moe_last_error());
    goto done;
  }
  gsl_rng_free(g);

  moe_voronoi_kind kind = default_loss(t);
  if (lossname && strcmp(lossname, "default"))
    kind = (moe_voronoi_kind)(lossname[1] - '0');
  const char *d4ref = mb_cell_str(c, "d4_ref"), *start = mb_cell_str(c, "start");
  int gate_over = gate && strcmp(gate, "default");
  /* thm4 (its own normalised-sigmoid gate, dense): the exact references */
  int analytic = !strcmp(exp, "thm4") && t->gate == MOE_GMOE_NSIGMOID && topk == 0 && k2 >= 3;
  if (d4ref && (!strcmp(d4ref, "min") || !strcmp(d4ref, "pstar") || !strcmp(d4ref, "pad")) &&
      kind == MOE_VORONOI_D4 && !analytic) {
    snprintf(
        err, errlen,
        "synthetic: d4_ref=%s needs experiment thm4 (its normalised-sigmoid gate, dense, k2 >= 3)",
        d4ref);
    goto done;
  }
  int want_limit = kind == MOE_VORONOI_D4 &&
                   (!analytic || (d4ref && !strcmp(d4ref, "limit")) || (limit_file && *limit_file));
  if (analytic) {
    if (moe_gmoe_truth("thm4-pstar", (int)d, &pstar) ||
        moe_gmoe_truth("thm4-pad1", (int)d, &pads[0]) ||
        moe_gmoe_truth("thm4-pad2", (int)d, &pads[1])) {
      snprintf(err, errlen, "synthetic: %s", moe_last_error());
      goto done;
    }
  }
  if (want_limit) { /* load Ǧ2 before the costly fit */
    char name[4096], path[4096];
    if (limit_file && *limit_file)
      snprintf(name, sizeof name, "%s", limit_file);
    else
      default_limit_name(exp, t, gate_over, name, sizeof name);
    if (!resolve_limit(name, path, sizeof path)) {
      snprintf(err, errlen,
               "synthetic: limit file '%s' not found (D4 needs Ǧ2: run `moebench gmoe-limit %s%s%s "
               "> %s`)",
               name, exp, gate_over ? " --gate " : "", gate_over ? gate : "", name);
      goto done;
    }
    if (moe_gmoe_read_all(path, &lims, &nlims)) {
      snprintf(err, errlen, "synthetic: %s", moe_last_error());
      goto done;
    }
    for (int k = 0; k < nlims; k++) {
      const moe_gmoe *lim = lims[k];
      if (lim->d != t->d || lim->gate != t->gate || lim->shared_kind != t->shared_kind ||
          lim->routed_kind != t->routed_kind) {
        snprintf(err, errlen,
                 "synthetic: %s: limit model %d (d=%d, gate %s) does not match experiment %s "
                 "(d=%d, gate %s)",
                 path, k + 1, lim->d, mb_synthetic_gate_name(lim->gate), exp, t->d,
                 mb_synthetic_gate_name(t->gate));
        goto done;
      }
    }
  }

  moe_gmoe_fit_opts o;
  moe_gmoe_fit_opts_default(&o);
  o.restarts = (int)mb_cell_int(c, "restarts");
  o.init = init && !strcmp(init, "random") ? MOE_GMOE_INIT_RANDOM : MOE_GMOE_INIT_TRUTH;
  o.init_sd = mb_cell_real(c, "init_sd");
  o.max_iter = (int)mb_cell_int(c, "em_max_iter");
  o.tol = mb_cell_real(c, "em_tol");
  o.tol_kind = tolkind && !strcmp(tolkind, "abs")     ? MOE_GMOE_TOL_ABS
               : tolkind && !strcmp(tolkind, "total") ? MOE_GMOE_TOL_TOTAL
                                                      : MOE_GMOE_TOL_REL;
  o.inner_iter = (int)mb_cell_int(c, "inner_iter");
  o.squarem = mb_cell_bool(c, "squarem");
  o.polish = (int)mb_cell_int(c, "polish");
  o.grad_tol = mb_cell_real(c, "grad_tol");
  const char *pk = mb_cell_str(c, "polish_kind");
  o.polish_bfgs = pk && !strcmp(pk, "bfgs");
  o.start = start && !strcmp(start, "copy") ? MOE_GMOE_START_COPY : MOE_GMOE_START_SLOPE0;
  const char *ms = mb_cell_str(c, "msolver");
  o.bfgs = !ms || !strcmp(ms, "auto") ? -1 : !strcmp(ms, "bfgs");
  moe_gmoe_fit_info fi;
  /* start=exact: start from P* (the exact over-parameterised truth) */
  const moe_gmoe *tfit = start && !strcmp(start, "exact") && analytic ? pstar : t;
  if (moe_gmoe_fit(f, tfit, (size_t)n, X, Y, &o, moe_seed_derive(seed, "fit"), &fi)) {
    snprintf(err, errlen, "synthetic: EM failed: %s", moe_last_error());
    goto done;
  }
  double llt = NAN;
  moe_gmoe_loglik(t, (size_t)n, X, Y, &llt);

  moe_voronoi_opts vo;
  moe_voronoi_opts_default(&vo, kind);
  vo.topk = (int)(topk > 0 ? topk : 1);
  vo.align_relu = mb_cell_bool(c, "align_relu");
  vo.min_shift = mb_cell_bool(c, "min_shift");
  vo.sigmoid_scale = mb_cell_bool(c, "sigmoid_scale");
  double loss = NAN, loss_raw, loss_pstar = NAN, loss_pad = NAN, loss_limit = NAN;
  if (kind == MOE_VORONOI_D4) {
    if (analytic) {
      vo.limit = pstar;
      if (moe_voronoi_loss(f, t, &vo, &loss_pstar))
        goto lossfail;
      vo.limit = NULL;
      vo.limits = (const moe_gmoe *const *)pads;
      vo.nlimits = 2;
      if (moe_voronoi_loss(f, t, &vo, &loss_pad))
        goto lossfail;
    }
    if (nlims > 0) {
      vo.limit = NULL;
      vo.limits = (const moe_gmoe *const *)lims;
      vo.nlimits = nlims;
      if (moe_voronoi_loss(f, t, &vo, &loss_limit))
        goto lossfail;
    }
    const char *ref = d4ref ? d4ref : "auto";
    loss = !strcmp(ref, "pstar")                ? loss_pstar
           : !strcmp(ref, "pad")                ? loss_pad
           : !strcmp(ref, "limit") || !analytic ? loss_limit
                                                : fmin(loss_pstar, loss_pad);
  } else if (moe_voronoi_loss(f, t, &vo, &loss)) {
    goto lossfail;
  }
  /* the reference D4 used for the expert error and raw loss */
  const moe_gmoe *ref4 = kind != MOE_VORONOI_D4 ? NULL
                         : analytic             ? pstar
                         : nlims > 0            ? lims[0]
                                                : NULL;
  double eta_err = NAN;
  if (kind == MOE_VORONOI_D4) { /* against the nearest of the references, like D4 */
    const moe_gmoe *refs[8];
    int nr = 0;
    if (analytic) {
      refs[nr++] = pstar;
      refs[nr++] = pads[0];
      refs[nr++] = pads[1];
    }
    for (int k = 0; k < nlims && nr < 8; k++)
      refs[nr++] = lims[k];
    for (int k = 0; k < nr; k++) {
      double e;
      if (!moe_voronoi_routed_error(f, refs[k], 1, &e) && !(e >= eta_err))
        eta_err = e;
    }
  } else if (moe_voronoi_routed_error(f, t, 1, &eta_err)) {
    eta_err = NAN;
  }
  double gfe = NAN, gpe = NAN;
  gate_errors(f, t, ref4 ? ref4 : t, analytic, X, (size_t)n, &gfe, &gpe);
  vo.align_relu = vo.min_shift = vo.sigmoid_scale = 0;
  vo.limit = ref4;
  vo.limits = NULL;
  vo.nlimits = 0;
  if (moe_voronoi_loss(f, t, &vo, &loss_raw))
    loss_raw = NAN;
  mb_result_metric(r, "loss", loss);
  mb_result_metric(r, "loss_raw", loss_raw);
  mb_result_metric(r, "loglik", fi.loglik);
  mb_result_metric(r, "loglik_truth", llt);
  /* > 0 for a genuine MLE of the over-specified model (it contains the truth) */
  mb_result_metric(r, "loglik_gap", fi.loglik - llt);
  mb_result_metric(r, "em_iters", fi.iterations);
  mb_result_metric(r, "converged", fi.converged);
  mb_result_metric(r, "restarts_used", fi.restarts_used);
  mb_result_metric(r, "best_restart", fi.best_restart);
  mb_result_metric(r, "em_iters_total", (double)fi.total_iterations);
  mb_result_metric(r, "routed_eta_err", eta_err);
  mb_result_metric(r, "loglik_gap_em", fi.loglik_em - llt);
  mb_result_metric(r, "grad_norm", fi.grad_norm);
  mb_result_metric(r, "polish_iters", fi.polish_iters);
  mb_result_metric(r, "polish_how", fi.polish_how);
  /* an MLE of the over-specified model (which contains the truth) is a
   * stationary point at or above the truth's log-likelihood */
  int gap_neg = !(fi.loglik - llt >= 0);
  mb_result_metric(r, "gap_neg", gap_neg);
  mb_result_metric(r, "mle_ok", fi.stationary && !gap_neg);
  mb_result_metric(r, "loss_pstar", loss_pstar);
  mb_result_metric(r, "loss_pad", loss_pad);
  mb_result_metric(r, "loss_limit", loss_limit);
  mb_result_metric(r, "gate_fn_err", gfe);
  mb_result_metric(r, "gate_par_err", gpe);
  char note[64];
  snprintf(note, sizeof note, "D%d", (int)kind);
  mb_result_note(r, "loss_kind", note);
  mb_result_note(r, "gate", mb_synthetic_gate_name(t->gate));
  rc = 0;
  goto done;
lossfail:
  snprintf(err, errlen, "synthetic: loss: %s", moe_last_error());
done:
  moe_gmoe_free(pstar);
  moe_gmoe_free(pads[0]);
  moe_gmoe_free(pads[1]);
  moe_gmoe_free(t);
  moe_gmoe_free(f);
  moe_gmoe_free_all(lims, nlims);
  free(X);
  free(Y);
  return rc;
}

const mb_task mb_task_synthetic = {
    "synthetic",
    "App. G.1 convergence study: EM fit of the over-specified Gaussian MoE, Voronoi loss D1-D5",
    params,
    metrics,
    check,
    run,
};
