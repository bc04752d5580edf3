/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_limit.c — `moebench gmoe-limit`: computes and prints the
 * misspecified limit Ǧ2 that Thm 4's loss D4 is measured against (the
 * files cached in experiments/limits/), from the synthetic task's truths. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/rng.h"
#include "moe/version.h"
#include "synthetic.h"
#include "verbs.h"

static int limit_usage(FILE *f)
{
  fprintf(
      f,
      "usage: moebench gmoe-limit EXPERIMENT [--gate softmax|nsigmoid] [--d D] [--n N] [--seed S]\n"
      "                           [--restarts R] [--k1 K1] [--k2 K2] [--max-iter M] [--tol T]\n"
      "                           [--tol-kind rel|abs] [--init truth_perturbed|random] [--branch "
      "J]\n"
      "Fit the over-specified model (default k1=2, k2=3) on one large sample (default n=1000000,\n"
      "seed 2505, 3 restarts from the perturbed truth, tol 1e-9 abs, at most 1000 iterations) and\n"
      "print it as a moebench-gmoe text model: the cached misspecified limit G2 of Thm 4's loss "
      "D4.\n"
      "The KL minimisers form several branches (which true routed expert the extra fitted experts\n"
      "duplicate); by default one fit per branch is printed, the extra atoms of branch J starting\n"
      "as copies of true routed expert J (--branch J: that branch only). D4 takes the min over "
      "them.\n"
      "  moebench gmoe-limit thm4 > experiments/limits/thm4.txt\n");
  return f == stdout ? 0 : 2;
}

int mb_verb_gmoe_limit(int argc, char **argv)
{
  const char *exp = NULL, *gate = NULL, *init = "truth_perturbed", *tk = "abs";
  long n = 1000000, d = 1, restarts = 3, k1 = 2, k2 = 3, maxit = 1000, branch = -1;
  unsigned long long seed = 2505;
  double tol = 1e-9;
  for (int a = 1; a < argc; a++) {
    const char *s = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
    char *end = NULL;
    if (!strcmp(s, "--help") || !strcmp(s, "-h"))
      return limit_usage(stdout);
    if (s[0] != '-') {
      if (exp) {
        fprintf(stderr, "moebench gmoe-limit: one experiment only ('%s' and '%s')\n", exp, s);
        return 2;
      }
      exp = s;
      continue;
    }
    if (!v) {
      fprintf(stderr, "moebench gmoe-limit: %s needs a value\n", s);
      return 2;
    }
    a++;
    errno = 0;
    if (!strcmp(s, "--gate"))
      gate = v;
    else if (!strcmp(s, "--init"))
      init = v;
    else if (!strcmp(s, "--tol-kind"))
      tk = v;
    else if (!strcmp(s, "--tol"))
      tol = strtod(v, &end);
    else if (!strcmp(s, "--seed"))
      seed = strtoull(v, &end, 10);
    else {
      long x = strtol(v, &end, 10);
      if (!strcmp(s, "--n"))
        n = x;
      else if (!strcmp(s, "--d"))
        d = x;
      else if (!strcmp(s, "--restarts"))
        restarts = x;
      else if (!strcmp(s, "--k1"))
        k1 = x;
      else if (!strcmp(s, "--k2"))
        k2 = x;
      else if (!strcmp(s, "--max-iter"))
        maxit = x;
      else if (!strcmp(s, "--branch"))
        branch = x;
      else {
        fprintf(stderr, "moebench gmoe-limit: unknown option '%s'\n", s);
        return limit_usage(stderr);
      }
    }
    if (end && (*end || errno)) {
      fprintf(stderr, "moebench gmoe-limit: bad number '%s' for %s\n", v, s);
      return 2;
    }
  }
  if (!exp)
    return limit_usage(stderr);
  if ((gate && strcmp(gate, "softmax") && strcmp(gate, "nsigmoid")) ||
      (strcmp(init, "truth_perturbed") && strcmp(init, "random")) ||
      (strcmp(tk, "rel") && strcmp(tk, "abs")) || n < 1 || d < 1 || d > 64 || k1 < 1 || k2 < 1 ||
      k2 > 30 || restarts < 1 || maxit < 0 || !(tol > 0) || branch < -1) {
    fprintf(stderr, "moebench gmoe-limit: invalid option value (see --help)\n");
    return 2;
  }
  char err[1024];
  moe_gmoe *t = NULL;
  if (mb_synthetic_truth(exp, gate, (int)d, 0, &t, err, sizeof err)) {
    fprintf(stderr, "moebench gmoe-limit: %s\n", err);
    return 2;
  }
  moe_gmoe *f = moe_gmoe_alloc((int)d, (int)k1, (int)k2, t->gate, t->shared_kind, t->routed_kind);
  double *X = malloc((size_t)n * (size_t)d * sizeof *X), *Y = malloc((size_t)n * sizeof *Y);
  int rc = 1;
  if (!f || !X || !Y) {
    fprintf(stderr, "moebench gmoe-limit: no memory for n=%ld\n", n);
    goto out;
  }
  gsl_rng *g = moe_rng_alloc(moe_seed_derive(seed, "limit-data"));
  moe_gmoe_sample(t, g, (size_t)n, X, Y);
  gsl_rng_free(g);
  if (branch >= t->k2) {
    fprintf(stderr, "moebench gmoe-limit: --branch %ld but %s has %d routed experts\n", branch, exp,
            t->k2);
    goto out;
  }
  for (long j = branch < 0 ? 0 : branch; j < (branch < 0 ? t->k2 : branch + 1); j++) {
    moe_gmoe_fit_opts o;
    moe_gmoe_fit_opts_default(&o);
    o.restarts = (int)restarts;
    o.init = !strcmp(init, "random") ? MOE_GMOE_INIT_RANDOM : MOE_GMOE_INIT_TRUTH;
    o.max_iter = (int)maxit;
    o.tol = tol;
    o.tol_kind = !strcmp(tk, "abs") ? MOE_GMOE_TOL_ABS : MOE_GMOE_TOL_REL;
    o.dup_routed = (int)j;
    char label[32];
    snprintf(label, sizeof label, "limit-fit-%ld", j);
    moe_gmoe_fit_info fi;
    if (moe_gmoe_fit(f, t, (size_t)n, X, Y, &o, moe_seed_derive(seed, label), &fi)) {
      fprintf(stderr, "moebench gmoe-limit: %s\n", moe_last_error());
      goto out;
    }
    double llt;
    moe_gmoe_loglik(t, (size_t)n, X, Y, &llt);
    char branch_opt[32];
    snprintf(branch_opt, sizeof branch_opt, " --branch %ld", branch);
    printf("# Misspecified limit G2 for experiment %s (gate %s, d=%ld), branch %ld: the "
           "over-specified\n"
           "# model (k1=%ld, k2=%ld) fitted by EM on ONE sample of n=%ld from the truth, started "
           "with the\n"
           "# extra routed atoms copying true routed expert %ld; it stands in for argmin KL (paper "
           "Cor. 1).\n"
           "# D4 uses the routed atoms only, and the min over the branches in this file. Not a "
           "true limit:\n"
           "# the best over-specified fit sits on a flat ridge (doc/thm4-limit.md).\n"
           "# produced by: moebench gmoe-limit %s%s%s --d %ld --n %ld --seed %llu --restarts %ld "
           "--k1 %ld --k2 %ld"
           " --max-iter %ld --tol %g --tol-kind %s --init %s%s\n"
           "# libmoe %s; data moe_seed_derive(seed, \"limit-data\"), fit moe_seed_derive(seed, "
           "\"%s\")\n"
           "# mean log-likelihood %.10f (truth %.10f); EM iterations %d, converged %d, best "
           "restart %d of %d\n",
           exp, mb_synthetic_gate_name(t->gate), d, j, k1, k2, n, j, exp, gate ? " --gate " : "",
           gate ? gate : "", d, n, seed, restarts, k1, k2, maxit, tol, tk, init,
           branch >= 0 ? branch_opt : "", moe_version(), label, fi.loglik, llt, fi.iterations,
           fi.converged, fi.best_restart, fi.restarts_used);
    if (moe_gmoe_write(stdout, f))
      goto out;
    fflush(stdout);
  }
  rc = 0;
out:
  moe_gmoe_free(t);
  moe_gmoe_free(f);
  free(X);
  free(Y);
  return rc;
}
