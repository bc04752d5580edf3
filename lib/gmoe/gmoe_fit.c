/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_fit.c — EM starts (perturbed truth, random) and the fitting driver
 * moe_gmoe_fit (restarts x EM iterations until the stopping test). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "internal.h"
#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/rng.h"

/* ---- initialisation and the driver ------------------------------------ */

void moe_gmoe_fit_opts_default(moe_gmoe_fit_opts *o)
{
  o->restarts = 1;
  o->init = MOE_GMOE_INIT_TRUTH;
  o->init_sd = 0.5;
  o->max_iter = 1000;
  o->tol = 1.0;
  o->tol_kind = MOE_GMOE_TOL_TOTAL;
  o->inner_iter = 2;
  o->var_floor = 1e-6;
  o->bfgs = -1;
  o->dup_routed = -1;
  o->start = MOE_GMOE_START_SLOPE0;
  o->squarem = 1;
  o->polish = 300;
  o->polish_bfgs = 0;
  o->grad_tol = 1e-2;
}

/* Map fitted atoms to true atoms: the first k* are the identity, the rest
 * random copies (or all copies of atom `dup` if 0 <= dup < k*). owner (K),
 * copies (K*) counted. */
static void assign_atoms(gsl_rng *r, int K, int Kt, int dup, int *owner, int *copies)
{
  for (int j = 0; j < Kt; j++) copies[j] = 0;
  for (int i = 0; i < K; i++) {
    owner[i] = i < Kt ? i : (dup >= 0 && dup < Kt) ? dup : (int)gsl_rng_uniform_int(r, (unsigned long)Kt);
    copies[owner[i]]++;
  }
}

static int init_params(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_init_kind kind, double init_sd, int dup,
                       moe_gmoe_start_kind start, gsl_rng *r, size_t n, const double *X, const double *Y);

int moe_gmoe_init_params(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_init_kind kind,
                         double init_sd, gsl_rng *r, size_t n, const double *X, const double *Y)
{
  return init_params(fit, truth, kind, init_sd, -1, MOE_GMOE_START_SLOPE0, r, n, X, Y);
}

int moe_gmoe_init_start(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_start_kind start, int dup_routed,
                        double init_sd, gsl_rng *r)
{
  return init_params(fit, truth, MOE_GMOE_INIT_TRUTH, init_sd, dup_routed, start, r, 0, NULL, NULL);
}

static int init_params(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_init_kind kind, double init_sd, int dup,
                       moe_gmoe_start_kind start, gsl_rng *r, size_t n, const double *X, const double *Y)
{
  MOE_CHECK_ARG(fit && r, "gmoe_init: NULL argument");
  const int D = fit->d, S = fit->k1, E = fit->k2;
  if (kind == MOE_GMOE_INIT_TRUTH) {
    MOE_CHECK_ARG(truth, "gmoe_init: perturbed-truth initialisation needs the truth");
    MOE_CHECK_ARG(truth->d == D && truth->k1 <= S && truth->k2 <= E,
                  "gmoe_init: truth (d=%d k1=%d k2=%d) does not fit in the model (d=%d k1=%d k2=%d)",
                  truth->d, truth->k1, truth->k2, D, S, E);
    MOE_CHECK_ARG(truth->shared_kind == fit->shared_kind && truth->routed_kind == fit->routed_kind,
                  "gmoe_init: truth and model have different expert kinds");
    int owner[4096], copies[4096];
    assign_atoms(r, S, truth->k1, -1, owner, copies);
    double osum = 0;
    for (int i = 0; i < S; i++) {
      int j = owner[i];
      fit->omega[i] = truth->omega[j] / copies[j] * exp(init_sd / 5 * gsl_ran_gaussian(r, 1.0));
      osum += fit->omega[i];
      fit->kappa0[i] = truth->kappa0[j] + gsl_ran_gaussian(r, init_sd);
      for (int k = 0; k < D; k++)
        fit->kappa1[(size_t)i * D + k] = truth->kappa1[(size_t)j * D + k] + gsl_ran_gaussian(r, init_sd);
      fit->kappa2[i] = truth->kappa2[j] + (fit->shared_kind == MOE_GMOE_RELU ? gsl_ran_gaussian(r, init_sd) : 0);
      fit->tau[i] = truth->tau[j] * exp(init_sd / 5 * gsl_ran_gaussian(r, 1.0));
    }
    for (int i = 0; i < S; i++) fit->omega[i] /= osum;
    MOE_CHECK_ARG(dup < truth->k2, "gmoe_init: dup_routed=%d but the truth has %d routed atoms", dup, truth->k2);
    assign_atoms(r, E, truth->k2, dup, owner, copies);
    int seen[4096] = {0};
    for (int i = 0; i < E; i++) {
      int j = owner[i];
      /* SLOPE0: the second and later copies of a normalised-sigmoid atom
       * start with slope 0 (a copy of the true slope gives a gate that is
       * wrong wherever that slope matters) */
      int zero_slope = start == MOE_GMOE_START_SLOPE0 && truth->gate == MOE_GMOE_NSIGMOID && seen[j]++ > 0;
      double b0 = truth->beta0[j];
      if (copies[j] > 1) {
        if (truth->gate == MOE_GMOE_SOFTMAX) b0 -= log((double)copies[j]);
        else {
          double p = 1.0 / (1.0 + exp(-b0)) / copies[j];
          b0 = log(p / (1 - p));
        }
      }
      fit->beta0[i] = b0 + gsl_ran_gaussian(r, init_sd);
      for (int k = 0; k < D; k++)
        fit->beta1[(size_t)i * D + k] = (zero_slope ? 0.0 : truth->beta1[(size_t)j * D + k]) + gsl_ran_gaussian(r, init_sd);
      fit->eta0[i] = fit->routed_kind == MOE_GMOE_LINEAR ? truth->eta0[j] + gsl_ran_gaussian(r, init_sd) : 0;
      for (int k = 0; k < D; k++)
        fit->eta1[(size_t)i * D + k] = truth->eta1[(size_t)j * D + k] + gsl_ran_gaussian(r, init_sd);
      fit->eta2[i] = fit->routed_kind == MOE_GMOE_RELU ? truth->eta2[j] + gsl_ran_gaussian(r, init_sd) : 1;
      fit->nu[i] = truth->nu[j] * exp(init_sd / 5 * gsl_ran_gaussian(r, 1.0));
    }
    return moe_gmoe_validate(fit);
  }
  MOE_CHECK_ARG(X && Y && n >= 1, "gmoe_init: random initialisation needs data");
  double my = 0, vy = 0, vx = 0;
  for (size_t t = 0; t < n; t++) my += Y[t];
  my /= (double)n;
  for (size_t t = 0; t < n; t++) vy += (Y[t] - my) * (Y[t] - my);
  vy = n > 1 ? vy / (double)(n - 1) : 1.0;
  if (!(vy > 1e-12)) vy = 1.0;
  for (size_t t = 0; t < n * (size_t)D; t++) vx += X[t] * X[t];
  vx /= (double)(n * (size_t)D);
  if (!(vx > 1e-12)) vx = 1.0;
  double sy = sqrt(vy), slope = sy / sqrt(vx);
  double osum = 0;
  for (int i = 0; i < S; i++) {
    fit->omega[i] = -log(1.0 - gsl_rng_uniform(r)) + 1e-12;   /* Dirichlet(1) */
    osum += fit->omega[i];
    int relu = fit->shared_kind == MOE_GMOE_RELU;
    fit->kappa0[i] = relu ? gsl_ran_gaussian(r, 1.0) : my + gsl_ran_gaussian(r, sy);
    for (int k = 0; k < D; k++) fit->kappa1[(size_t)i * D + k] = gsl_ran_gaussian(r, relu ? 3.0 : slope);
    fit->kappa2[i] = relu ? gsl_ran_gaussian(r, sy) : 1;
    fit->tau[i] = vy * (0.2 + 0.8 * gsl_rng_uniform(r));
  }
  for (int i = 0; i < S; i++) fit->omega[i] /= osum;
  for (int j = 0; j < E; j++) {
    int relu = fit->routed_kind == MOE_GMOE_RELU;
    fit->beta0[j] = gsl_ran_gaussian(r, 1.0);
    for (int k = 0; k < D; k++) fit->beta1[(size_t)j * D + k] = gsl_ran_gaussian(r, 1.0);
    fit->eta0[j] = relu ? 0 : my + gsl_ran_gaussian(r, sy);
    for (int k = 0; k < D; k++) fit->eta1[(size_t)j * D + k] = gsl_ran_gaussian(r, relu ? 3.0 : slope);
    fit->eta2[j] = relu ? gsl_ran_gaussian(r, sy) : 1;
    fit->nu[j] = vy * (0.2 + 0.8 * gsl_rng_uniform(r));
  }
  return moe_gmoe_validate(fit);
}

int moe_gmoe_fit(moe_gmoe *fit, const moe_gmoe *truth, size_t n, const double *X, const double *Y,
                 const moe_gmoe_fit_opts *o, uint64_t seed, moe_gmoe_fit_info *info)
{
  MOE_CHECK_ARG(fit && X && Y && o, "gmoe_fit: NULL argument");
  MOE_CHECK_ARG(n >= 1, "gmoe_fit: n must be >= 1 (got %zu)", n);
  MOE_CHECK_ARG(o->restarts >= 1, "gmoe_fit: restarts=%d must be >= 1", o->restarts);
  MOE_CHECK_ARG(o->max_iter >= 0, "gmoe_fit: max_iter=%d must be >= 0", o->max_iter);
  MOE_CHECK_ARG(o->tol > 0, "gmoe_fit: tol=%g must be > 0", o->tol);
  MOE_CHECK_ARG(o->polish >= 0 && (o->polish == 0 || o->grad_tol > 0), "gmoe_fit: polish=%d grad_tol=%g", o->polish,
                o->grad_tol);
  moe_gmoe_fit_info fi = {-INFINITY, 0, 0, -1, 0, 0, NAN, 0, 0, -1, NAN};
  moe_gmoe *cand = moe_gmoe_clone(fit), *best = moe_gmoe_clone(fit);
  moe_gmoe_em *w = moe_gmoe_em_alloc(fit, n);
  int rc = MOE_OK, last_rc = MOE_OK;
  char last_msg[512] = "";
  if (!cand || !best || !w) { rc = MOE_ENOMEM; goto done; }
  moe_gmoe_em_set_inner(w, o->inner_iter, o->var_floor);
  /* auto (-1): Newton for the softmax gate (its M-step objective is
   * concave); BFGS for the normalised sigmoid (not concave: on thm3 the
   * Newton steps ran into saturated gates and ended at a lower mean
   * log-likelihood than BFGS at 6 of the 7 sample sizes tried, 6
   * replications each); Gauss-Newton for ReLU experts. */
  moe_gmoe_em_set_gate_solver(w, o->bfgs < 0 ? fit->gate == MOE_GMOE_NSIGMOID : o->bfgs);
  moe_gmoe_em_set_expert_solver(w, o->bfgs > 0);
  moe_gmoe_em_set_polish(w, !o->polish_bfgs);
  for (int k = 0; k < o->restarts; k++) {
    char label[32];
    snprintf(label, sizeof label, "restart-%d", k);
    gsl_rng *r = moe_rng_alloc(moe_seed_derive(seed, label));
    if (!r) { rc = MOE_ENOMEM; goto done; }
    int st = init_params(cand, truth, o->init, o->init_sd, o->dup_routed, o->start, r, n, X, Y);
    gsl_rng_free(r);
    if (st && st != MOE_EDOM) { rc = st; goto done; }
    fi.restarts_used++;
    if (!st) st = moe_gmoe_em_init(w, cand, n, X, Y);
    int conv = 0, piters = 0, how = -1;
    double gnorm = NAN, ll_em = NAN;
    while (!st && moe_gmoe_em_iterations(w) < o->max_iter) {
      st = o->squarem && o->max_iter - moe_gmoe_em_iterations(w) >= 6 ? moe_gmoe_em_squarem(w) : moe_gmoe_em_iterate(w);
      if (!st && moe_gmoe_em_test(w, o->tol, o->tol_kind) == MOE_OK) { conv = 1; break; }
    }
    if (!st) ll_em = moe_gmoe_em_loglik(w);
    if (!st && o->polish > 0) st = moe_gmoe_em_polish(w, o->polish, o->grad_tol, &piters, &gnorm, &how);
    else if (!st) moe_gmoe_em_gradient(w, NULL, &gnorm);
    if (st) {   /* this restart degenerated: remember why, try the next */
      last_rc = st;
      snprintf(last_msg, sizeof last_msg, "%s", moe_last_error());
      continue;
    }
    fi.total_iterations += moe_gmoe_em_iterations(w);
    double ll = moe_gmoe_em_loglik(w);
    if (ll > fi.loglik) {
      fi.loglik = ll;
      fi.iterations = moe_gmoe_em_iterations(w);
      fi.converged = conv;
      fi.best_restart = k;
      fi.grad_norm = gnorm;
      fi.polish_iters = piters;
      fi.stationary = gnorm <= o->grad_tol || how == 2;
      fi.polish_how = how;
      fi.loglik_em = ll_em;
      moe_gmoe_copy(best, cand);
    }
  }
  if (fi.best_restart < 0) {
    rc = moe_error(last_rc ? last_rc : MOE_ENOCONV, "gmoe_fit: every restart failed (last: %s)", last_msg);
    goto done;
  }
  moe_gmoe_copy(fit, best);
  if (info) *info = fi;
done:
  if (rc == MOE_ENOMEM) moe_error(MOE_ENOMEM, "gmoe_fit: no memory for n=%zu", n);
  moe_gmoe_em_free(w);
  moe_gmoe_free(cand);
  moe_gmoe_free(best);
  return rc;
}
