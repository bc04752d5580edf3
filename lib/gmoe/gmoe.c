/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe.c — Gaussian MoE with shared experts (paper eq. 1 / eq. 8): model,
 * truths, density and sampler. The text form is in gmoe_io.c, the EM
 * fitter in gmoe_em.c, its starts and driver in gmoe_fit.c.
 * Shape letters: N samples, D input width, S shared (k1), E routed (k2),
 * C = S + E mixture components (shared first). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "internal.h"
#include "gmoe_impl.h"
#include "moe/error.h"
#include "moe/gmoe.h"

/* ---- model ------------------------------------------------------------ */

moe_gmoe *moe_gmoe_alloc(int d, int k1, int k2, moe_gmoe_gate gate,
                         moe_gmoe_expert shared_kind, moe_gmoe_expert routed_kind)
{
  if (d < 1 || k1 < 1 || k2 < 1) {
    moe_error(MOE_EINVAL, "gmoe: need d >= 1, k1 >= 1, k2 >= 1 (got d=%d k1=%d k2=%d)", d, k1, k2);
    return NULL;
  }
  if (d > 4096 || k1 > 4096 || k2 > 4096) {
    moe_error(MOE_EINVAL, "gmoe: d=%d k1=%d k2=%d too large (max 4096 each)", d, k1, k2);
    return NULL;
  }
  moe_gmoe *m = calloc(1, sizeof *m);
  size_t S = (size_t)k1, E = (size_t)k2, D = (size_t)d;
  size_t total = S * (4 + D) + E * (4 + 2 * D);
  double *slab = m ? moei_alloc_aligned(total * sizeof *slab) : NULL;
  if (!slab) {
    free(m);
    moe_error(MOE_ENOMEM, "gmoe: cannot allocate a model (d=%d k1=%d k2=%d)", d, k1, k2);
    return NULL;
  }
  m->d = d; m->k1 = k1; m->k2 = k2;
  m->gate = gate; m->shared_kind = shared_kind; m->routed_kind = routed_kind;
  m->topk = 0;
  double *p = slab;
  m->omega = p; p += S;
  m->kappa0 = p; p += S;
  m->kappa1 = p; p += S * D;
  m->kappa2 = p; p += S;
  m->tau = p; p += S;
  m->beta0 = p; p += E;
  m->beta1 = p; p += E * D;
  m->eta0 = p; p += E;
  m->eta1 = p; p += E * D;
  m->eta2 = p; p += E;
  m->nu = p;
  m->slab_ = slab;
  for (int i = 0; i < k1; i++) { m->omega[i] = 1.0 / k1; m->kappa2[i] = 1; m->tau[i] = 1; }
  for (int j = 0; j < k2; j++) { m->eta2[j] = 1; m->nu[j] = 1; }
  return m;
}

void moe_gmoe_free(moe_gmoe *m)
{
  if (!m) return;
  moei_free_aligned(m->slab_);
  free(m);
}

static size_t slab_len(const moe_gmoe *m)
{
  size_t S = (size_t)m->k1, E = (size_t)m->k2, D = (size_t)m->d;
  return S * (4 + D) + E * (4 + 2 * D);
}

int moe_gmoe_copy(moe_gmoe *dst, const moe_gmoe *src)
{
  MOE_CHECK_ARG(dst && src, "gmoe_copy: NULL model");
  MOE_CHECK_ARG(dst->d == src->d && dst->k1 == src->k1 && dst->k2 == src->k2,
                "gmoe_copy: shapes differ (d,k1,k2) = (%d,%d,%d) vs (%d,%d,%d)",
                dst->d, dst->k1, dst->k2, src->d, src->k1, src->k2);
  dst->gate = src->gate; dst->shared_kind = src->shared_kind;
  dst->routed_kind = src->routed_kind; dst->topk = src->topk;
  memcpy(dst->slab_, src->slab_, slab_len(src) * sizeof(double));
  return MOE_OK;
}

moe_gmoe *moe_gmoe_clone(const moe_gmoe *m)
{
  moe_gmoe *c = moe_gmoe_alloc(m->d, m->k1, m->k2, m->gate, m->shared_kind, m->routed_kind);
  if (c) moe_gmoe_copy(c, m);
  return c;
}

int moe_gmoe_validate(const moe_gmoe *m)
{
  MOE_CHECK_ARG(m, "gmoe: NULL model");
  MOE_CHECK_ARG(m->d >= 1 && m->k1 >= 1 && m->k2 >= 1, "gmoe: bad sizes d=%d k1=%d k2=%d",
                m->d, m->k1, m->k2);
  MOE_CHECK_ARG(m->topk >= 0 && m->topk <= m->k2, "gmoe: topk=%d not in 0..k2=%d", m->topk, m->k2);
  MOE_CHECK_ARG(m->gate == MOE_GMOE_SOFTMAX || m->gate == MOE_GMOE_NSIGMOID, "gmoe: unknown gate %d",
                (int)m->gate);
  size_t len = slab_len(m);
  for (size_t i = 0; i < len; i++)
    if (!isfinite(m->slab_[i])) return moe_error(MOE_EDOM, "gmoe: non-finite parameter");
  double s = 0;
  for (int i = 0; i < m->k1; i++) {
    MOE_CHECK_ARG(m->omega[i] > 0, "gmoe: omega[%d]=%g must be > 0", i, m->omega[i]);
    MOE_CHECK_ARG(m->tau[i] > 0, "gmoe: tau[%d]=%g must be > 0 (a variance)", i, m->tau[i]);
    s += m->omega[i];
  }
  MOE_CHECK_ARG(fabs(s - 1) < 1e-9, "gmoe: shared weights sum to %.12g, not 1", s);
  for (int j = 0; j < m->k2; j++)
    MOE_CHECK_ARG(m->nu[j] > 0, "gmoe: nu[%d]=%g must be > 0 (a variance)", j, m->nu[j]);
  return MOE_OK;
}

/* ---- truths (the paper's App. G.1) ------------------------------------ */

static void extend(double *v, int d)  /* θ_k = θ_1 (-1/2)^(k-1) */
{
  for (int k = 1; k < d; k++) v[k] = v[k - 1] * -0.5;
}

static int thm4_exact(const char *name, int d, moe_gmoe **out);

int moe_gmoe_truth(const char *name, int d, moe_gmoe **out)
{
  MOE_CHECK_ARG(name && out, "gmoe_truth: NULL argument");
  MOE_CHECK_ARG(d >= 1, "gmoe_truth: d=%d must be >= 1", d);
  *out = NULL;
  if (!strncmp(name, "thm4-", 5)) return thm4_exact(name, d, out);
  int relu_routed, relu_shared, sig, sparse, gatecmp = 0;
  if (!strcmp(name, "thm1")) { relu_shared = 1; relu_routed = 1; sig = 0; sparse = 0; }
  else if (!strcmp(name, "thm2")) { relu_shared = 0; relu_routed = 0; sig = 0; sparse = 0; }
  else if (!strcmp(name, "thm3")) { relu_shared = 1; relu_routed = 1; sig = 1; sparse = 1; }
  else if (!strcmp(name, "thm4")) { relu_shared = 1; relu_routed = 0; sig = 1; sparse = 0; }
  else if (!strcmp(name, "gatecmp")) { relu_shared = 1; relu_routed = 0; sig = 0; sparse = 0; gatecmp = 1; }
  else
    return moe_error(MOE_EINVAL, "unknown experiment '%s' (known: thm1 thm2 thm3 thm4 gatecmp thm4-pstar thm4-pad1 thm4-pad2)",
                     name);
  moe_gmoe *m = moe_gmoe_alloc(d, 1, 2, sig ? MOE_GMOE_NSIGMOID : MOE_GMOE_SOFTMAX,
                               relu_shared ? MOE_GMOE_RELU : MOE_GMOE_LINEAR,
                               relu_routed ? MOE_GMOE_RELU : MOE_GMOE_LINEAR);
  if (!m) return MOE_ENOMEM;
  m->omega[0] = 1.0;
  if (relu_shared) {        /* κ0 = 0, κ1 = 6, κ2 = -8, τ = 0.25 */
    m->kappa0[0] = 0; m->kappa1[0] = 6; m->kappa2[0] = -8; m->tau[0] = 0.25;
  } else {                  /* κ0 = 0, κ1 = 2, τ = 0.2 */
    m->kappa0[0] = 0; m->kappa1[0] = 2; m->kappa2[0] = 1; m->tau[0] = 0.2;
  }
  extend(m->kappa1, d);
  m->beta0[0] = -0.5; m->beta0[1] = 0.5;
  double b1 = sparse ? 0.0 : 5.0;
  m->beta1[0] = b1; m->beta1[d] = gatecmp ? -3.0 : b1;
  if (relu_routed) {        /* η1 = ∓12, η2 = 4, ν = 0.4 */
    m->eta1[0] = -12; m->eta2[0] = 4; m->nu[0] = 0.4;
    m->eta1[d] = 12; m->eta2[1] = 4; m->nu[1] = 0.4;
  } else {                  /* (η1, η0) = (8, 2) and (-6, 1), ν = 0.4 */
    m->eta1[0] = 8; m->eta0[0] = 2; m->eta2[0] = 1; m->nu[0] = 0.4;
    m->eta1[d] = -6; m->eta0[1] = 1; m->eta2[1] = 1; m->nu[1] = 0.4;
  }
  for (int j = 0; j < 2; j++) { extend(m->beta1 + j * d, d); extend(m->eta1 + j * d, d); }
  *out = m;
  return MOE_OK;
}

/* Exact 3-atom representations of the thm4 truth (doc/thm4-limit.md).
 * With z = β1ᵀx (both true slopes are equal),
 *   σ(z + 1/2) / σ(z − 1/2) = 1 + (e − 1) σ(−z − 1/2),
 * so the true routed weights are proportional to 1 : 1 + (e−1)σ(−z−1/2),
 * i.e. to c : c : c(e−1)σ(−z−1/2) for any c; c = 1/(e−1) = σ(−ln(e−2))
 * makes every term a sigmoid:
 *   thm4-pstar: routed 1 = (β0, β1) = (−ln(e−2), 0) with expert 1,
 *               routed 2 = (−ln(e−2), 0) with expert 2,
 *               routed 3 = (−1/2, −β1*) with expert 2;
 *               the same conditional density as thm4 (KL = 0).
 *   thm4-padJ:  the truth plus a vanishing third atom: expert J's (η, ν)
 *               and slope β1*_J, β0 = β0*_J − B with B = 15.5 + 3‖β1*_J‖₁,
 *               so on X = [−3, 3]^d its sigmoid is below e^−15 ≈ 3e-7
 *               times atom J's (a constant slope-0 atom cannot vanish: the
 *               true sigmoids themselves fall to e^−15 at x = −3). */
static int thm4_exact(const char *name, int d, moe_gmoe **out)
{
  int pstar = !strcmp(name, "thm4-pstar"), pad = !strcmp(name, "thm4-pad1") ? 1 : !strcmp(name, "thm4-pad2") ? 2 : 0;
  if (!pstar && !pad)
    return moe_error(MOE_EINVAL, "unknown experiment '%s' (known: thm1 thm2 thm3 thm4 gatecmp thm4-pstar thm4-pad1 thm4-pad2)",
                     name);
  moe_gmoe *t = NULL;
  int rc = moe_gmoe_truth("thm4", d, &t);
  if (rc) return rc;
  moe_gmoe *m = moe_gmoe_alloc(d, 1, 3, t->gate, t->shared_kind, t->routed_kind);
  if (!m) { moe_gmoe_free(t); return MOE_ENOMEM; }
  m->omega[0] = t->omega[0]; m->kappa0[0] = t->kappa0[0]; m->kappa2[0] = t->kappa2[0]; m->tau[0] = t->tau[0];
  memcpy(m->kappa1, t->kappa1, (size_t)d * sizeof(double));
  int src[3] = {0, 1, pad ? pad - 1 : 1};   /* expert each atom carries */
  for (int j = 0; j < 3; j++) {
    int s = src[j];
    m->eta0[j] = t->eta0[s]; m->eta2[j] = t->eta2[s]; m->nu[j] = t->nu[s];
    memcpy(m->eta1 + (size_t)j * d, t->eta1 + (size_t)s * d, (size_t)d * sizeof(double));
  }
  if (pstar) {
    const double c = -log(M_E - 2.0);   /* σ(c) = 1/(e−1) */
    m->beta0[0] = c; m->beta0[1] = c; m->beta0[2] = t->beta0[0];   /* −1/2 */
    for (int k = 0; k < d; k++) {
      m->beta1[k] = 0; m->beta1[d + k] = 0;
      m->beta1[2 * d + k] = -t->beta1[k];
    }
  } else {
    m->beta0[0] = t->beta0[0]; m->beta0[1] = t->beta0[1];
    memcpy(m->beta1, t->beta1, 2 * (size_t)d * sizeof(double));
    const int J = pad - 1;
    double l1 = 0;
    for (int k = 0; k < d; k++) l1 += fabs(t->beta1[(size_t)J * d + k]);
    m->beta0[2] = t->beta0[J] - (15.5 + 3 * l1);
    for (int k = 0; k < d; k++) m->beta1[2 * d + k] = t->beta1[(size_t)J * d + k];
  }
  moe_gmoe_free(t);
  *out = m;
  return MOE_OK;
}

/* ---- evaluation ------------------------------------------------------- */

double moe_gmoe_shared_mean(const moe_gmoe *m, int i, const double *x)
{
  double z = dot(m->kappa1 + (size_t)i * m->d, x, m->d) + m->kappa0[i];
  return m->shared_kind == MOE_GMOE_RELU ? m->kappa2[i] * (z > 0 ? z : 0) : z;
}

double moe_gmoe_routed_mean(const moe_gmoe *m, int j, const double *x)
{
  const double *w = m->eta1 + (size_t)j * m->d;
  if (m->routed_kind == MOE_GMOE_RELU) {
    double z = dot(w, x, m->d);
    return m->eta2[j] * (z > 0 ? z : 0);
  }
  return dot(w, x, m->d) + m->eta0[j];
}

void moe_gmoe_gate_eval(const moe_gmoe *m, const double *x, double *g)
{
  int E = m->k2;
  double ub[MAXE_STACK], lb[MAXE_STACK];
  unsigned char sb[MAXE_STACK];
  double *u = E <= MAXE_STACK ? ub : malloc(2 * E * sizeof *u);
  double *lg = E <= MAXE_STACK ? lb : u + E;
  unsigned char *sel = E <= MAXE_STACK ? sb : malloc((size_t)E);
  if (!u || !sel) { for (int j = 0; j < E; j++) g[j] = NAN; goto out; }
  gate_log(m->gate, m->topk, m->d, E, m->beta0, m->beta1, x, u, lg, g, sel, NULL);
out:
  if (E > MAXE_STACK) { free(u); free(sel); }
}

double moe_gmoe_logdensity(const moe_gmoe *m, const double *x, double y)
{
  int S = m->k1, E = m->k2;
  double *g = malloc((size_t)(S + E + E) * sizeof *g);
  if (!g) return NAN;
  double *l = g + E;
  moe_gmoe_gate_eval(m, x, g);
  double mx = -INFINITY;
  for (int i = 0; i < S; i++) {
    double e = y - moe_gmoe_shared_mean(m, i, x);
    l[i] = LOG_HALF + log(m->omega[i]) - 0.5 * (LOG_2PI + log(m->tau[i])) - e * e / (2 * m->tau[i]);
    if (l[i] > mx) mx = l[i];
  }
  for (int j = 0; j < E; j++) {
    double e = y - moe_gmoe_routed_mean(m, j, x);
    l[S + j] = LOG_HALF + log(g[j]) - 0.5 * (LOG_2PI + log(m->nu[j])) - e * e / (2 * m->nu[j]);
    if (l[S + j] > mx) mx = l[S + j];
  }
  double s = 0;
  for (int c = 0; c < S + E; c++) s += exp(l[c] - mx);
  free(g);
  return mx + log(s);
}

double moe_gmoe_density(const moe_gmoe *m, const double *x, double y)
{
  return exp(moe_gmoe_logdensity(m, x, y));
}

int moe_gmoe_sample(const moe_gmoe *m, gsl_rng *r, size_t n, double *X, double *Y)
{
  MOE_CHECK_ARG(m && r && X && Y, "gmoe_sample: NULL argument");
  MOE_CHECK_ARG(n >= 1, "gmoe_sample: n must be >= 1");
  int rc = moe_gmoe_validate(m);
  if (rc) return rc;
  int D = m->d, E = m->k2, S = m->k1;
  double *g = malloc((size_t)E * sizeof *g);
  if (!g) return moe_error(MOE_ENOMEM, "gmoe_sample: no memory");
  for (size_t t = 0; t < n; t++) {
    double *x = X + t * D;                               /* (D) */
    for (int k = 0; k < D; k++) x[k] = -3.0 + 6.0 * gsl_rng_uniform(r);
    double u = gsl_rng_uniform(r), mean, var;
    if (u < 0.5) {                                        /* shared block */
      double v = gsl_rng_uniform(r), c = 0;
      int i = S - 1;
      for (int a = 0; a < S; a++) { c += m->omega[a]; if (v < c) { i = a; break; } }
      mean = moe_gmoe_shared_mean(m, i, x); var = m->tau[i];
    } else {                                              /* routed block */
      moe_gmoe_gate_eval(m, x, g);
      double v = gsl_rng_uniform(r), c = 0;
      int j = -1;
      for (int a = 0; a < E; a++) { c += g[a]; if (v < c) { j = a; break; } }
      if (j < 0) for (int a = E - 1; a >= 0; a--) if (g[a] > 0) { j = a; break; }
      mean = moe_gmoe_routed_mean(m, j, x); var = m->nu[j];
    }
    Y[t] = mean + gsl_ran_gaussian(r, sqrt(var));
  }
  free(g);
  return MOE_OK;
}

int moe_gmoe_loglik(const moe_gmoe *m, size_t n, const double *X, const double *Y, double *ll)
{
  MOE_CHECK_ARG(m && X && Y && ll, "gmoe_loglik: NULL argument");
  MOE_CHECK_ARG(n >= 1, "gmoe_loglik: n must be >= 1");
  double s = 0;
  for (size_t t = 0; t < n; t++) s += moe_gmoe_logdensity(m, X + t * m->d, Y[t]);
  *ll = s / (double)n;
  if (!isfinite(*ll)) return moe_error(MOE_EDOM, "gmoe_loglik: non-finite log-likelihood");
  return MOE_OK;
}
