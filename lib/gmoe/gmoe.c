/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe.c — Gaussian MoE with shared experts (paper eq. 1 / eq. 8): model,
 * density, sampler, text form, and the maximum-likelihood fit by EM.
 * Shape letters: N samples, D input width, S shared (k1), E routed (k2),
 * C = S + E mixture components (shared first). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_blas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_randist.h>

#include "internal.h"
#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/rng.h"
#include "vmath.h"

#define LOG_2PI 1.8378770664093454836
#define LOG_HALF (-0.69314718055994530942)

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

/* ---- truths (paper.md §3.3) ------------------------------------------- */

static void extend(double *v, int d)  /* θ_k = θ_1 (-1/2)^(k-1) */
{
  for (int k = 1; k < d; k++) v[k] = v[k - 1] * -0.5;
}

int moe_gmoe_truth(const char *name, int d, moe_gmoe **out)
{
  MOE_CHECK_ARG(name && out, "gmoe_truth: NULL argument");
  MOE_CHECK_ARG(d >= 1, "gmoe_truth: d=%d must be >= 1", d);
  *out = NULL;
  int relu_routed, relu_shared, sig, sparse, gatecmp = 0;
  if (!strcmp(name, "thm1")) { relu_shared = 1; relu_routed = 1; sig = 0; sparse = 0; }
  else if (!strcmp(name, "thm2")) { relu_shared = 0; relu_routed = 0; sig = 0; sparse = 0; }
  else if (!strcmp(name, "thm3")) { relu_shared = 1; relu_routed = 1; sig = 1; sparse = 1; }
  else if (!strcmp(name, "thm4")) { relu_shared = 1; relu_routed = 0; sig = 1; sparse = 0; }
  else if (!strcmp(name, "gatecmp")) { relu_shared = 1; relu_routed = 0; sig = 0; sparse = 0; gatecmp = 1; }
  else
    return moe_error(MOE_EINVAL, "unknown experiment '%s' (known: thm1 thm2 thm3 thm4 gatecmp)", name);
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

/* ---- evaluation ------------------------------------------------------- */

static inline double dot(const double *a, const double *b, int d)
{
  double s = 0;
  for (int k = 0; k < d; k++) s += a[k] * b[k];
  return s;
}

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

static inline double log_sigmoid(double u)
{
  return u >= 0 ? -log1p(exp(-u)) : u - log1p(exp(u));
}

/* Top-K selection on the slopes' scores v_j = β1_jᵀx (no bias), ties to
 * the lower index: sel[j] = 1 for chosen. E is small, so selection by
 * repeated max is fine. */
static void topk_select(int E, int K, const double *v, unsigned char *sel)
{
  for (int j = 0; j < E; j++) sel[j] = 0;
  for (int k = 0; k < K; k++) {
    int best = -1;
    for (int j = 0; j < E; j++)
      if (!sel[j] && (best < 0 || v[j] > v[best])) best = j;
    sel[best] = 1;
  }
}

/* Gate at one x: lg (E) log weights (−inf outside the top-K), g (E) the
 * weights, u (E) the logits β1ᵀx + β0. sel (E) receives the chosen set;
 * if fixsel is not NULL it is used instead of selecting (the gate M-step
 * holds the top-K set fixed inside its line searches). */
static void gate_log(moe_gmoe_gate gate, int topk, int D, int E, const double *beta0,
                     const double *beta1, const double *x, double *u, double *lg, double *g,
                     unsigned char *sel, const unsigned char *fixsel)
{
  for (int j = 0; j < E; j++) u[j] = dot(beta1 + (size_t)j * D, x, D);
  if (fixsel) memcpy(sel, fixsel, (size_t)E);
  else if (topk > 0 && topk < E) topk_select(E, topk, u, sel);
  else memset(sel, 1, (size_t)E);
  for (int j = 0; j < E; j++) u[j] += beta0[j];
  if (gate == MOE_GMOE_SOFTMAX) {
    double mx = -INFINITY;
    for (int j = 0; j < E; j++) if (sel[j] && u[j] > mx) mx = u[j];
    double s = 0;
    for (int j = 0; j < E; j++) {
      g[j] = sel[j] ? exp(u[j] - mx) : 0.0;
      s += g[j];
    }
    double ls = mx + log(s), is = 1.0 / s;
    for (int j = 0; j < E; j++) {
      lg[j] = sel[j] ? u[j] - ls : -INFINITY;
      g[j] *= is;
    }
  } else {
    /* σ(u) and log σ(u) from one exp(−|u|) and one log1p */
    double s = 0;
    for (int j = 0; j < E; j++) {
      if (!sel[j]) { g[j] = 0; lg[j] = -INFINITY; continue; }
      double e = exp(-fabs(u[j])), l1 = log(1.0 + e);   /* e ∈ (0,1]: absolute error ~1e-16, and log is cheaper than log1p */
      g[j] = u[j] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      lg[j] = u[j] >= 0 ? -l1 : u[j] - l1;
      s += g[j];
    }
    double ls = log(s), is = 1.0 / s;
    for (int j = 0; j < E; j++) {
      if (!sel[j]) continue;
      lg[j] -= ls;
      g[j] *= is;
    }
  }
}

#define MAXE_STACK 64

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

/* ---- text form -------------------------------------------------------- */

int moe_gmoe_write(FILE *f, const moe_gmoe *m)
{
  MOE_CHECK_ARG(f && m, "gmoe_write: NULL argument");
  int D = m->d;
  fprintf(f, "moebench-gmoe 1\nd %d\nk1 %d\nk2 %d\ngate %s\nshared_expert %s\nrouted_expert %s\ntopk %d\n",
          D, m->k1, m->k2, m->gate == MOE_GMOE_SOFTMAX ? "softmax" : "nsigmoid",
          m->shared_kind == MOE_GMOE_RELU ? "relu" : "linear",
          m->routed_kind == MOE_GMOE_RELU ? "relu" : "linear", m->topk);
  fprintf(f, "# shared OMEGA KAPPA0 KAPPA1[1..d] KAPPA2 TAU\n");
  for (int i = 0; i < m->k1; i++) {
    fprintf(f, "shared %.17g %.17g", m->omega[i], m->kappa0[i]);
    for (int k = 0; k < D; k++) fprintf(f, " %.17g", m->kappa1[(size_t)i * D + k]);
    fprintf(f, " %.17g %.17g\n", m->kappa2[i], m->tau[i]);
  }
  fprintf(f, "# routed BETA0 BETA1[1..d] ETA0 ETA1[1..d] ETA2 NU\n");
  for (int j = 0; j < m->k2; j++) {
    fprintf(f, "routed %.17g", m->beta0[j]);
    for (int k = 0; k < D; k++) fprintf(f, " %.17g", m->beta1[(size_t)j * D + k]);
    fprintf(f, " %.17g", m->eta0[j]);
    for (int k = 0; k < D; k++) fprintf(f, " %.17g", m->eta1[(size_t)j * D + k]);
    fprintf(f, " %.17g %.17g\n", m->eta2[j], m->nu[j]);
  }
  return ferror(f) ? moe_error(MOE_EIO, "gmoe_write: write failed") : MOE_OK;
}

/* Parse exactly `want` numbers from s into v; returns count parsed, or -1
 * on a malformed token / trailing text. */
static int parse_numbers(const char *s, double *v, int want)
{
  int k = 0;
  for (;;) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '\n' || *s == '\r' || *s == '#') break;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(x)) return -1;
    if (*end && !isspace((unsigned char)*end) && *end != '#') return -1;
    if (k < want) v[k] = x;
    k++;
    s = end;
  }
  return k;
}

/* Close the model being read: complete and valid, appended to the list. */
static int read_finish(const char *path, int lineno, moe_gmoe **m, int ns, int nr, int k1, int k2,
                       moe_gmoe ***list, int *count)
{
  if (!*m || ns != k1 || nr != k2)
    return moe_error(MOE_EFORMAT, "%s:%d: found %d shared and %d routed lines, expected k1=%d and k2=%d", path,
                     lineno, ns, nr, k1, k2);
  if (moe_gmoe_validate(*m)) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", moe_last_error());
    return moe_error(MOE_EFORMAT, "%s:%d: invalid model: %s", path, lineno, msg);
  }
  moe_gmoe **l = realloc(*list, (size_t)(*count + 1) * sizeof *l);
  if (!l) return moe_error(MOE_ENOMEM, "%s: no memory", path);
  l[(*count)++] = *m;
  *list = l;
  *m = NULL;
  return MOE_OK;
}

int moe_gmoe_read_all(const char *path, moe_gmoe ***out, int *count)
{
  MOE_CHECK_ARG(path && out && count, "gmoe_read: NULL argument");
  *out = NULL;
  *count = 0;
  moe_gmoe **list = NULL;
  int nlist = 0;
  FILE *f = fopen(path, "r");
  if (!f) return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  char line[8192];
  int lineno = 0, d = 0, k1 = 0, k2 = 0, topk = 0, seen_magic = 0, ns = 0, nr = 0;
  int gate = -1, sk = -1, rk = -1, rc = MOE_OK;
  moe_gmoe *m = NULL;
  double *v = NULL;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      rc = moe_error(MOE_EFORMAT, "%s:%d: line too long", path, lineno); goto done;
    }
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '\n' || *s == '\r' || *s == '#') continue;
    char key[32];
    int klen = 0;
    while (s[klen] && !isspace((unsigned char)s[klen]) && klen < 31) { key[klen] = s[klen]; klen++; }
    key[klen] = 0;
    char *rest = s + klen;
    if (seen_magic && !strcmp(key, "moebench-gmoe")) {   /* the next model of the file */
      if ((rc = read_finish(path, lineno - 1, &m, ns, nr, k1, k2, &list, &nlist))) goto done;
      seen_magic = 0;
      d = k1 = k2 = topk = ns = nr = 0;
      gate = sk = rk = -1;
      free(v);
      v = NULL;
    }
    if (!seen_magic) {
      double ver;
      if (strcmp(key, "moebench-gmoe") || parse_numbers(rest, &ver, 1) != 1 || ver != 1) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: expected header 'moebench-gmoe 1'", path, lineno);
        goto done;
      }
      seen_magic = 1;
      continue;
    }
    if (!strcmp(key, "d") || !strcmp(key, "k1") || !strcmp(key, "k2") || !strcmp(key, "topk")) {
      double x;
      if (m) { rc = moe_error(MOE_EFORMAT, "%s:%d: '%s' after the parameter lines", path, lineno, key); goto done; }
      if (parse_numbers(rest, &x, 1) != 1 || x != floor(x) || x < 0 || x > 4096) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: '%s' needs one integer in 0..4096", path, lineno, key);
        goto done;
      }
      if (key[0] == 'd') d = (int)x;
      else if (key[0] == 't') topk = (int)x;
      else if (key[1] == '1') k1 = (int)x;
      else k2 = (int)x;
      continue;
    }
    if (!strcmp(key, "gate") || !strcmp(key, "shared_expert") || !strcmp(key, "routed_expert")) {
      char word[32] = "";
      if (sscanf(rest, "%31s", word) != 1) word[0] = 0;
      int val = -1;
      if (key[0] == 'g') val = !strcmp(word, "softmax") ? 0 : !strcmp(word, "nsigmoid") ? 1 : -1;
      else val = !strcmp(word, "relu") ? 0 : !strcmp(word, "linear") ? 1 : -1;
      if (val < 0) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: bad value '%s' for '%s'", path, lineno, word, key);
        goto done;
      }
      if (key[0] == 'g') gate = val; else if (key[0] == 's') sk = val; else rk = val;
      continue;
    }
    if (!strcmp(key, "shared") || !strcmp(key, "routed")) {
      if (!m) {
        if (d < 1 || k1 < 1 || k2 < 1 || gate < 0 || sk < 0 || rk < 0) {
          rc = moe_error(MOE_EFORMAT, "%s:%d: parameter line before d, k1, k2, gate, shared_expert, routed_expert",
                         path, lineno);
          goto done;
        }
        if (topk > k2) { rc = moe_error(MOE_EFORMAT, "%s:%d: topk=%d > k2=%d", path, lineno, topk, k2); goto done; }
        m = moe_gmoe_alloc(d, k1, k2, gate, sk, rk);
        v = malloc((size_t)(2 * d + 8) * sizeof *v);
        if (!m || !v) { rc = moe_error(MOE_ENOMEM, "%s: no memory", path); goto done; }
        m->topk = topk;
      }
      int shared = key[0] == 's', want = shared ? d + 4 : 2 * d + 4;
      int got = parse_numbers(rest, v, want);
      if (got != want) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: '%s' line needs %d numbers, found %s%d", path, lineno, key,
                       want, got < 0 ? "a malformed one after " : "", got < 0 ? 0 : got);
        goto done;
      }
      if (shared) {
        if (ns >= k1) { rc = moe_error(MOE_EFORMAT, "%s:%d: more than k1=%d shared lines", path, lineno, k1); goto done; }
        m->omega[ns] = v[0]; m->kappa0[ns] = v[1];
        memcpy(m->kappa1 + (size_t)ns * d, v + 2, (size_t)d * sizeof *v);
        m->kappa2[ns] = v[2 + d]; m->tau[ns] = v[3 + d];
        ns++;
      } else {
        if (nr >= k2) { rc = moe_error(MOE_EFORMAT, "%s:%d: more than k2=%d routed lines", path, lineno, k2); goto done; }
        m->beta0[nr] = v[0];
        memcpy(m->beta1 + (size_t)nr * d, v + 1, (size_t)d * sizeof *v);
        m->eta0[nr] = v[1 + d];
        memcpy(m->eta1 + (size_t)nr * d, v + 2 + d, (size_t)d * sizeof *v);
        m->eta2[nr] = v[2 + 2 * d]; m->nu[nr] = v[3 + 2 * d];
        nr++;
      }
      continue;
    }
    rc = moe_error(MOE_EFORMAT, "%s:%d: unknown key '%s'", path, lineno, key);
    goto done;
  }
  if (ferror(f)) { rc = moe_error(MOE_EIO, "%s: read error", path); goto done; }
  if (!seen_magic) { rc = moe_error(MOE_EFORMAT, "%s:%d: empty file (expected 'moebench-gmoe 1')", path, lineno); goto done; }
  rc = read_finish(path, lineno, &m, ns, nr, k1, k2, &list, &nlist);
done:
  fclose(f);
  free(v);
  if (rc) {
    moe_gmoe_free(m);
    for (int i = 0; i < nlist; i++) moe_gmoe_free(list[i]);
    free(list);
    return rc;
  }
  *out = list;
  *count = nlist;
  return MOE_OK;
}

void moe_gmoe_free_all(moe_gmoe **models, int count)
{
  for (int i = 0; models && i < count; i++) moe_gmoe_free(models[i]);
  free(models);
}

int moe_gmoe_read(const char *path, moe_gmoe **out)
{
  MOE_CHECK_ARG(path && out, "gmoe_read: NULL argument");
  *out = NULL;
  moe_gmoe **list;
  int n;
  int rc = moe_gmoe_read_all(path, &list, &n);
  if (rc) return rc;
  if (n != 1) {
    moe_gmoe_free_all(list, n);
    return moe_error(MOE_EFORMAT, "%s: holds %d models where one was expected", path, n);
  }
  *out = list[0];
  free(list);
  return MOE_OK;
}

/* ---- M-step block objectives ------------------------------------------ */

/* Weighted squared error of a ReLU expert, p = ([b], w[D], a):
 * h = a relu(b + wᵀx). Returns (1/W) Σ w_n e_n², grad likewise. */
static double relu_sse(int has_bias, int D, size_t n, const double *X, const double *Y,
                       const double *wt, double wsum, const double *p, double *grad)
{
  const double b = has_bias ? p[0] : 0.0;
  const double *w = p + has_bias;
  const double a = p[has_bias + D];
  double f = 0, ga = 0, gb = 0;
  double gw[64];
  double *gwp = D <= 64 ? gw : grad + has_bias;  /* accumulate in place for big D */
  for (int k = 0; k < D; k++) gwp[k] = 0;
  for (size_t t = 0; t < n; t++) {
    const double *x = X + t * D;
    double z = b;
    for (int k = 0; k < D; k++) z += w[k] * x[k];
    double act = z > 0 ? z : 0;
    double e = Y[t] - a * act;
    double we = wt[t] * e;
    f += we * e;
    if (grad) {
      ga -= we * act;
      if (z > 0) {
        double c = we * a;
        gb -= c;
        for (int k = 0; k < D; k++) gwp[k] -= c * x[k];
      }
    }
  }
  double s = 1.0 / wsum;
  if (grad) {
    if (has_bias) grad[0] = 2 * gb * s;
    for (int k = 0; k < D; k++) grad[has_bias + k] = 2 * gwp[k] * s;
    grad[has_bias + D] = 2 * ga * s;
  }
  return f * s;
}

double moe_gmoe_expert_objective(moe_gmoe_expert kind, int has_bias, int d, size_t n,
                                 const double *X, const double *Y, const double *w,
                                 const double *p, double *grad)
{
  double ws = 0;
  for (size_t t = 0; t < n; t++) ws += w[t];
  if (kind == MOE_GMOE_RELU) return relu_sse(has_bias, d, n, X, Y, w, ws, p, grad);
  /* linear, p = (b, w[D]) */
  double f = 0;
  if (grad) for (int k = 0; k <= d; k++) grad[k] = 0;
  for (size_t t = 0; t < n; t++) {
    double e = Y[t] - p[0] - dot(p + 1, X + t * d, d);
    f += w[t] * e * e;
    if (grad) {
      grad[0] -= 2 * w[t] * e;
      for (int k = 0; k < d; k++) grad[1 + k] -= 2 * w[t] * e * X[t * d + k];
    }
  }
  if (grad) for (int k = 0; k <= d; k++) grad[k] /= ws;
  return f / ws;
}

/* Gate objective -(1/N) Σ_n Σ_j R_nj log g_j, with R rows of stride ldr.
 * beta = (β0[E], β1[E, D]); grad in the same packing (may be NULL).
 * fixsel (N, E) or NULL: a top-K set held fixed. Scratch u, lg, g (E),
 * sel (E). */
static double gate_obj(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                       const double *R, size_t ldr, const double *beta, double *grad,
                       double *u, double *lg, double *g, unsigned char *sel,
                       const unsigned char *fixsel)
{
  const double *b0 = beta, *b1 = beta + E;
  double f = 0;
  if (grad) for (int q = 0; q < E * (D + 1); q++) grad[q] = 0;
  for (size_t t = 0; t < n; t++) {
    const double *x = X + t * D, *r = R + t * ldr;
    gate_log(gate, topk, D, E, b0, b1, x, u, lg, g, sel, fixsel ? fixsel + t * E : NULL);
    double rs = 0;
    for (int j = 0; j < E; j++) {
      rs += r[j];
      if (r[j] > 0) f -= r[j] * lg[j];   /* r = 0 outside the chosen set */
    }
    if (!grad) continue;
    for (int j = 0; j < E; j++) {
      if (!sel[j]) continue;
      /* d(-Σ r log g)/du_j: softmax  -(r_j - rs g_j);
       * normalised sigmoid -(1 - σ(u_j)) (r_j - rs g_j). */
      double c = -(r[j] - rs * g[j]);
      if (gate == MOE_GMOE_NSIGMOID) c *= 1.0 / (1.0 + exp(u[j]));
      grad[j] += c;
      double *gw = grad + E + (size_t)j * D;
      for (int k = 0; k < D; k++) gw[k] += c * x[k];
    }
  }
  double s = 1.0 / (double)n;
  if (grad) for (int q = 0; q < E * (D + 1); q++) grad[q] *= s;
  return f * s;
}

/* The same objective with its gradient and Hessian H (P, P), P = E(D+1),
 * in one pass. Per point, with x̃ = (1, x) and R = Σ_j r_j, the second
 * derivatives in the logits u are
 *   softmax:             h_jk = R (δ_jk g_j − g_j g_k)
 *   normalised sigmoid:  h_jk = δ_jk p_j (r_j + R (1 − 2σ_j)/S) − R p_j p_k / S²
 * with p_j = σ_j (1 − σ_j), S = Σ σ; the block (j, k) of H is Σ h_jk x̃ x̃ᵀ.
 * Scratch: u, lg, g (E), sel (E), hu (E, E). */
static double gate_obj_hess(moe_gmoe_gate gate, int topk, int D, int E, size_t n, const double *X,
                            const double *R, size_t ldr, const double *beta, double *grad, double *H,
                            double *u, double *lg, double *g, unsigned char *sel, double *hu,
                            const unsigned char *fixsel)
{
  const double *b0 = beta, *b1 = beta + E;
  const int P = E * (D + 1), D1 = D + 1;
  double f = 0;
  double xt[65];
  memset(grad, 0, (size_t)P * sizeof *grad);
  memset(H, 0, (size_t)P * P * sizeof *H);
  for (size_t t = 0; t < n; t++) {
    const double *x = X + t * D, *r = R + t * ldr;
    gate_log(gate, topk, D, E, b0, b1, x, u, lg, g, sel, fixsel ? fixsel + t * E : NULL);
    double rs = 0;
    for (int j = 0; j < E; j++) {
      rs += r[j];
      if (r[j] > 0) f -= r[j] * lg[j];
    }
    xt[0] = 1;
    for (int k = 0; k < D; k++) xt[1 + k] = x[k];
    if (gate == MOE_GMOE_SOFTMAX) {
      for (int j = 0; j < E; j++) {
        if (!sel[j]) continue;
        double c = -(r[j] - rs * g[j]);
        grad[j] += c;
        for (int k = 0; k < D; k++) grad[E + j * D + k] += c * x[k];
        for (int l = 0; l < E; l++) hu[j * E + l] = sel[l] ? rs * ((j == l) * g[j] - g[j] * g[l]) : 0;
      }
    } else {
      double S = 0, sg[64], pj[64];
      for (int j = 0; j < E; j++) {
        sg[j] = sel[j] ? 1.0 / (1.0 + exp(-u[j])) : 0;
        pj[j] = sg[j] * (1 - sg[j]);
        S += sg[j];
      }
      for (int j = 0; j < E; j++) {
        if (!sel[j]) continue;
        double c = -(1 - sg[j]) * (r[j] - rs * g[j]);
        grad[j] += c;
        for (int k = 0; k < D; k++) grad[E + j * D + k] += c * x[k];
        for (int l = 0; l < E; l++)
          hu[j * E + l] = sel[l] ? (j == l) * pj[j] * (r[j] + rs * (1 - 2 * sg[j]) / S) - rs * pj[j] * pj[l] / (S * S)
                                 : 0;
      }
    }
    for (int j = 0; j < E; j++) {
      if (!sel[j]) continue;
      for (int l = 0; l < E; l++) {
        double h = hu[j * E + l];
        if (h == 0 || !sel[l]) continue;
        for (int a = 0; a < D1; a++) {
          int pa = a == 0 ? j : E + j * D + a - 1;
          double ha = h * xt[a];
          double *row = H + (size_t)pa * P;
          for (int b = 0; b < D1; b++) row[b == 0 ? l : E + l * D + b - 1] += ha * xt[b];
        }
      }
    }
  }
  double s = 1.0 / (double)n;
  for (int q = 0; q < P; q++) grad[q] *= s;
  for (int q = 0; q < P * P; q++) H[q] *= s;
  return f * s;
}

int moe_gmoe_gate_hessian(const moe_gmoe *m, size_t n, const double *X, const double *R, const double *beta,
                          double *grad, double *H, double *f)
{
  MOE_CHECK_ARG(m && X && R && beta && grad && H && n >= 1, "gmoe_gate_hessian: bad argument");
  MOE_CHECK_ARG(m->k2 <= 64 && m->d <= 64, "gmoe_gate_hessian: at most 64 routed experts and 64 inputs");
  int E = m->k2;
  double *u = malloc((3 * (size_t)E + (size_t)E * E) * sizeof *u);
  unsigned char *sel = malloc((size_t)E);
  if (!u || !sel) { free(u); free(sel); return moe_error(MOE_ENOMEM, "gmoe_gate_hessian: no memory"); }
  double v = gate_obj_hess(m->gate, m->topk, m->d, E, n, X, R, (size_t)E, beta, grad, H, u, u + E, u + 2 * E, sel,
                           u + 3 * E, NULL);
  if (f) *f = v;
  free(u); free(sel);
  return MOE_OK;
}

double moe_gmoe_gate_objective(const moe_gmoe *m, size_t n, const double *X, const double *R,
                               const double *beta, double *grad)
{
  int E = m->k2;
  double *u = malloc(3 * (size_t)E * sizeof *u);
  unsigned char *sel = malloc((size_t)E);
  if (!u || !sel) { free(u); free(sel); return NAN; }
  double f = gate_obj(m->gate, m->topk, m->d, E, n, X, R, (size_t)E, beta, grad, u, u + E, u + 2 * E, sel, NULL);
  free(u); free(sel);
  return f;
}

/* ---- EM workspace ----------------------------------------------------- */

struct moe_gmoe_em {
  int D, S, E, C;
  size_t nmax, n;
  moe_gmoe *m;                 /* the model being fitted (not owned) */
  const double *X, *Y;         /* (N, D), (N) */
  double *R;                   /* (N, C) responsibilities */
  double *wcol;                /* (N) one component's weights */
  double *u, *lg, *gw, *lc;    /* (E), (E), (E), (C) scratch */
  unsigned char *selfix;       /* (N, E) top-K sets held during the gate M-step */
  double *mass;                /* (C) responsibility mass per component */
  unsigned char *sel;          /* (E) */
  double ll, ll_prev;
  int iter;
  int inner_iter;
  double var_floor;
  gsl_multimin_fdfminimizer *min_shared, *min_routed, *min_gate;
  gsl_vector *v_shared, *v_routed, *v_gate;
  int gate_bfgs;               /* 1: BFGS for the gate; 0: Newton (default) */
  double *gH, *gG, *gD, *hu;   /* Newton: (P, P), (P), (P), (E, E) */
  gsl_matrix *evec;            /* (P, P) */
  gsl_vector *eval;            /* (P) */
  gsl_eigen_symmv_workspace *eig;
  int expert_bfgs;             /* 1: BFGS for ReLU experts; 0: Gauss-Newton (default) */
  gsl_matrix *evec_x;          /* (D+2, D+2) expert Gauss-Newton */
  gsl_vector *eval_x;
  gsl_eigen_symmv_workspace *eig_x;
};

static void em_free_minimizers(moe_gmoe_em *w)
{
  if (w->min_shared) gsl_multimin_fdfminimizer_free(w->min_shared);
  if (w->min_routed) gsl_multimin_fdfminimizer_free(w->min_routed);
  if (w->min_gate) gsl_multimin_fdfminimizer_free(w->min_gate);
  if (w->v_shared) gsl_vector_free(w->v_shared);
  if (w->v_routed) gsl_vector_free(w->v_routed);
  if (w->v_gate) gsl_vector_free(w->v_gate);
  if (w->evec) gsl_matrix_free(w->evec);
  if (w->eval) gsl_vector_free(w->eval);
  if (w->eig) gsl_eigen_symmv_free(w->eig);
  free(w->gH);
  if (w->evec_x) gsl_matrix_free(w->evec_x);
  if (w->eval_x) gsl_vector_free(w->eval_x);
  if (w->eig_x) gsl_eigen_symmv_free(w->eig_x);
}

void moe_gmoe_em_free(moe_gmoe_em *w)
{
  if (!w) return;
  em_free_minimizers(w);
  moei_free_aligned(w->R);
  moei_free_aligned(w->wcol);
  free(w->u);
  free(w->sel);
  free(w->selfix);
  free(w);
}

moe_gmoe_em *moe_gmoe_em_alloc(const moe_gmoe *shape, size_t nmax)
{
  if (!shape || nmax < 1) {
    moe_error(MOE_EINVAL, "gmoe_em_alloc: need a model and nmax >= 1");
    return NULL;
  }
  moe_gmoe_em *w = calloc(1, sizeof *w);
  if (!w) { moe_error(MOE_ENOMEM, "gmoe_em_alloc: no memory"); return NULL; }
  w->D = shape->d; w->S = shape->k1; w->E = shape->k2; w->C = w->S + w->E;
  w->nmax = nmax;
  w->inner_iter = 1;
  w->var_floor = 1e-6;
  size_t nC = 0, nE = 0; /* nmax·C responsibilities, nmax·E chosen flags: checked, no wrap */
  int fits = moei_mul(nmax, (size_t)w->C, &nC) && moei_mul(nmax, (size_t)w->E, &nE);
  w->R = fits ? moei_alloc_array(nC, sizeof(double)) : NULL;
  w->wcol = moei_alloc_array(nmax, sizeof(double));
  w->u = malloc((size_t)(3 * w->E + 2 * w->C) * sizeof(double));
  w->selfix = shape->topk > 0 && fits ? malloc(nE) : NULL;
  w->sel = malloc((size_t)w->E);
  int ds = w->D + 2, dr = w->D + 1, dg = w->E * (w->D + 1);
  const gsl_multimin_fdfminimizer_type *T = gsl_multimin_fdfminimizer_vector_bfgs2;
  moei_gsl_enter(); /* GSL's allocators report failure through the handler */
  w->min_shared = gsl_multimin_fdfminimizer_alloc(T, (size_t)ds);
  w->min_routed = gsl_multimin_fdfminimizer_alloc(T, (size_t)dr);
  w->min_gate = gsl_multimin_fdfminimizer_alloc(T, (size_t)dg);
  w->v_shared = gsl_vector_alloc((size_t)ds);
  w->v_routed = gsl_vector_alloc((size_t)dr);
  w->v_gate = gsl_vector_alloc((size_t)dg);
  w->gH = malloc(((size_t)dg * dg + 2 * (size_t)dg + (size_t)w->E * w->E) * sizeof(double));
  w->evec = gsl_matrix_alloc((size_t)dg, (size_t)dg);
  w->eval = gsl_vector_alloc((size_t)dg);
  w->eig = gsl_eigen_symmv_alloc((size_t)dg);
  w->evec_x = gsl_matrix_alloc((size_t)ds, (size_t)ds);
  w->eval_x = gsl_vector_alloc((size_t)ds);
  w->eig_x = gsl_eigen_symmv_alloc((size_t)ds);
  moei_gsl_leave();
  if (!w->R || !w->wcol || !w->u || !w->sel || (shape->topk > 0 && !w->selfix) || !w->min_shared || !w->min_routed ||
      !w->min_gate || !w->v_shared || !w->v_routed || !w->v_gate || !w->gH || !w->evec || !w->eval || !w->eig ||
      !w->evec_x || !w->eval_x || !w->eig_x ||
      w->E > 64 || w->D > 64) {
    moe_gmoe_em_free(w);
    moe_error(MOE_ENOMEM, "gmoe_em_alloc: no memory for n=%zu", nmax);
    return NULL;
  }
  w->lg = w->u + w->E;
  w->gw = w->lg + w->E;
  w->lc = w->gw + w->E;
  w->mass = w->lc + w->C;
  w->gG = w->gH + (size_t)dg * dg;
  w->gD = w->gG + dg;
  w->hu = w->gD + dg;
  return w;
}

void moe_gmoe_em_set_gate_solver(moe_gmoe_em *w, int use_bfgs) { w->gate_bfgs = use_bfgs != 0; }
void moe_gmoe_em_set_expert_solver(moe_gmoe_em *w, int use_bfgs) { w->expert_bfgs = use_bfgs != 0; }

void moe_gmoe_em_set_inner(moe_gmoe_em *w, int inner_iter, double var_floor)
{
  if (inner_iter >= 1) w->inner_iter = inner_iter;
  if (var_floor > 0) w->var_floor = var_floor;
}

/* E-step: responsibilities R at the current parameters and ℓ (mean). */
static int em_estep(moe_gmoe_em *w)
{
  const moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C;
  double cs[64], is[64];   /* per-component constants, small C fast path */
  double *cst = C <= 64 ? cs : malloc(2 * (size_t)C * sizeof *cst);
  if (!cst) return moe_error(MOE_ENOMEM, "gmoe_em: no memory");
  double *inv = C <= 64 ? is : cst + C;
  for (int i = 0; i < S; i++) {
    cst[i] = LOG_HALF + log(m->omega[i]) - 0.5 * (LOG_2PI + log(m->tau[i]));
    inv[i] = 0.5 / m->tau[i];
  }
  for (int j = 0; j < E; j++) {
    cst[S + j] = LOG_HALF - 0.5 * (LOG_2PI + log(m->nu[j]));
    inv[S + j] = 0.5 / m->nu[j];
  }
  double *lc = w->lc;
  double ll = 0;
  /* Blocks of B samples: the log-components shifted by their row max go
   * into R, then exp over the block and log of the row sums run through
   * SLEEF's vector kernels (lib/vmath.h: u10, 1.0 ULP documented). ℓ is
   * still summed sample by sample in order. */
  enum { B = 256 };
  double mxb[B], sb[B];
  for (size_t t0 = 0; t0 < w->n; t0 += B) {
    const size_t nb = w->n - t0 < B ? w->n - t0 : B;
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = w->X + t * D;
      const double y = w->Y[t];
      double mx = -INFINITY;
      for (int i = 0; i < S; i++) {
        double e = y - moe_gmoe_shared_mean(m, i, x);
        lc[i] = cst[i] - e * e * inv[i];
        if (lc[i] > mx) mx = lc[i];
      }
      gate_log(m->gate, m->topk, D, E, m->beta0, m->beta1, x, w->u, w->lg, w->gw, w->sel, NULL);
      for (int j = 0; j < E; j++) {
        double e = y - moe_gmoe_routed_mean(m, j, x);
        lc[S + j] = cst[S + j] + w->lg[j] - e * e * inv[S + j];
        if (lc[S + j] > mx) mx = lc[S + j];
      }
      double *r = w->R + t * C;
      for (int c = 0; c < C; c++) r[c] = lc[c] - mx;
      mxb[b] = mx;
    }
    double *rb = w->R + t0 * C;
    moei_vexp_f64(nb * (size_t)C, rb, rb);
    for (size_t b = 0; b < nb; b++) {
      double *r = rb + b * C, s = 0;
      for (int c = 0; c < C; c++) s += r[c];
      double is_ = 1.0 / s;
      for (int c = 0; c < C; c++) r[c] *= is_;
      sb[b] = s;
    }
    moei_vlog_f64(nb, sb, sb);
    for (size_t b = 0; b < nb; b++) ll += mxb[b] + sb[b];
  }
  if (C > 64) free(cst);
  ll /= (double)w->n;
  if (!isfinite(ll)) return moe_error(MOE_EDOM, "gmoe_em: non-finite log-likelihood at iteration %d", w->iter);
  w->ll = ll;
  return MOE_OK;
}

int moe_gmoe_em_init(moe_gmoe_em *w, moe_gmoe *m, size_t n, const double *X, const double *Y)
{
  MOE_CHECK_ARG(w && m && X && Y, "gmoe_em_init: NULL argument");
  MOE_CHECK_ARG(n >= 1 && n <= w->nmax, "gmoe_em_init: n=%zu not in 1..%zu", n, w->nmax);
  MOE_CHECK_ARG(m->d == w->D && m->k1 == w->S && m->k2 == w->E,
                "gmoe_em_init: model shape (d,k1,k2)=(%d,%d,%d) differs from the workspace's (%d,%d,%d)",
                m->d, m->k1, m->k2, w->D, w->S, w->E);
  int rc = moe_gmoe_validate(m);
  if (rc) return rc;
  w->m = m; w->n = n; w->X = X; w->Y = Y;
  w->iter = 0;
  w->ll_prev = NAN;
  return em_estep(w);
}

/* BFGS on one ReLU expert's weighted SSE. */
typedef struct {
  int has_bias, D;
  size_t n;
  const double *X, *Y, *wt;
  double wsum;
} relu_ctx;

static double relu_f(const gsl_vector *v, void *p)
{
  relu_ctx *c = p;
  double f = relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, NULL);
  return isfinite(f) ? f : GSL_POSINF;
}
static void relu_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  relu_ctx *c = p;
  relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, g->data);
}
static void relu_fdf(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  relu_ctx *c = p;
  *f = relu_sse(c->has_bias, c->D, c->n, c->X, c->Y, c->wt, c->wsum, v->data, g->data);
}

/* Run at most `iters` BFGS iterations from v; on return v holds the best
 * point seen if it improved on f0, else is unchanged. Returns new f. */
static double bfgs_improve(gsl_multimin_fdfminimizer *s, gsl_multimin_function_fdf *fn, gsl_vector *v,
                           double f0, int iters)
{
  moei_gsl_enter(); /* line searches may report through the handler */
  double step = 0.1 * (1.0 + gsl_blas_dnrm2(v));
  if (step > 1.0) step = 1.0;
  int set = gsl_multimin_fdfminimizer_set(s, fn, v, step, 0.1);
  for (int it = 0; !set && it < iters; it++) {
    if (gsl_multimin_fdfminimizer_iterate(s)) break;
    if (gsl_multimin_test_gradient(s->gradient, 1e-10) == GSL_SUCCESS) break;
  }
  moei_gsl_leave();
  if (set) return f0; /* s holds nothing from this start */
  double f1 = s->f;
  if (isfinite(f1) && f1 < f0) {
    gsl_vector_memcpy(v, s->x);
    return f1;
  }
  return f0;
}

/* Weighted least squares for a linear expert h = b + wᵀx: solve the
 * normal equations [Σ w x̃ x̃ᵀ] θ = Σ w x̃ y with x̃ = (1, x) by Cholesky
 * (a relative ridge of 1e-12 keeps them positive definite when the weights
 * concentrate on fewer than D+1 points). */
static int wls_linear(int D, size_t n, const double *X, const double *Y, const double *wt,
                      double *theta)
{
  const int P = D + 1;
  double Abuf[17 * 17], bbuf[17];
  double *A = P <= 17 ? Abuf : malloc((size_t)P * (P + 1) * sizeof *A);   /* (P, P) */
  if (!A) return moe_error(MOE_ENOMEM, "gmoe_em: no memory");
  double *b = P <= 17 ? bbuf : A + (size_t)P * P;                         /* (P) */
  memset(A, 0, (size_t)P * P * sizeof *A);
  memset(b, 0, (size_t)P * sizeof *b);
  for (size_t t = 0; t < n; t++) {
    const double *x = X + t * D;
    const double wv = wt[t];
    A[0] += wv;
    b[0] += wv * Y[t];
    for (int k = 0; k < D; k++) {
      const double wx = wv * x[k];
      A[k + 1] += wx;                                   /* row 0 */
      b[k + 1] += wx * Y[t];
      for (int l = 0; l <= k; l++) A[(size_t)(k + 1) * P + l + 1] += wx * x[l];   /* lower */
    }
  }
  for (int k = 1; k < P; k++) A[(size_t)k * P] = A[k];           /* column 0 */
  for (int k = 1; k < P; k++)
    for (int l = k + 1; l < P; l++) A[(size_t)k * P + l] = A[(size_t)l * P + k];
  double tr = 0;
  for (int k = 0; k < P; k++) tr += A[(size_t)k * P + k];
  /* The ridge (1e-10 of the trace) keeps the matrix positive definite well
   * above rounding, so GSL's Cholesky never reports (and never aborts). */
  for (int k = 0; k < P; k++) A[(size_t)k * P + k] += 1e-10 * tr + 1e-300;
  int st = MOE_EDOM;
  if (isfinite(tr) && tr > 0) {
    gsl_matrix_view Am = gsl_matrix_view_array(A, (size_t)P, (size_t)P);
    gsl_vector_view bv = gsl_vector_view_array(b, (size_t)P);
    gsl_vector_view tv = gsl_vector_view_array(theta, (size_t)P);
    moei_gsl_enter(); /* a matrix that is not positive definite is GSL_EDOM */
    st = gsl_linalg_cholesky_decomp1(&Am.matrix);
    if (!st) st = gsl_linalg_cholesky_solve(&Am.matrix, &bv.vector, &tv.vector);
    moei_gsl_leave();
  }
  if (P > 17) free(A);
  return st ? MOE_EDOM : MOE_OK;
}

/* Gate BFGS context: the routed responsibilities (columns S.. of R) and, for top-K
 * gates, the chosen sets at the start of the M-step (fixsel). */
typedef struct {
  moe_gmoe_em *w;
  const unsigned char *fixsel;
} gate_ctx;

static double gate_eval_obj(const gate_ctx *c, const double *beta, double *grad)
{
  moe_gmoe_em *w = c->w;
  return gate_obj(w->m->gate, w->m->topk, w->D, w->E, w->n, w->X, w->R + w->S, (size_t)w->C, beta, grad, w->u,
                  w->lg, w->gw, w->sel, c->fixsel);
}
static double gate_f(const gsl_vector *v, void *p)
{
  double f = gate_eval_obj(p, v->data, NULL);
  return isfinite(f) ? f : GSL_POSINF;
}
static void gate_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  gate_eval_obj(p, v->data, g->data);
}
static void gate_fdf(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  *f = gate_eval_obj(p, v->data, g->data);
  if (!isfinite(*f)) *f = GSL_POSINF;
}

/* step = −H⁺ g with H's eigenvalues replaced by max(|λ|, 1e-10 max|λ|):
 * a descent direction for any symmetric H (GSL's eigensolver never calls
 * the error handler on a symmetric matrix). H is destroyed. Returns 0 on
 * success. */
static int modified_newton_step(int P, double *H, const double *g, double *step, gsl_matrix *evec, gsl_vector *eval,
                                gsl_eigen_symmv_workspace *eig)
{
  gsl_matrix_view Hm = gsl_matrix_view_array(H, (size_t)P, (size_t)P);
  moei_gsl_enter();
  int est = gsl_eigen_symmv(&Hm.matrix, eval, evec, eig);
  moei_gsl_leave();
  if (est) return 1;
  double lmax = 0;
  for (int q = 0; q < P; q++) lmax = fmax(lmax, fabs(eval->data[q]));
  if (!(lmax > 0) || !isfinite(lmax)) return 1;
  const double floor_ = 1e-10 * lmax;
  for (int a = 0; a < P; a++) step[a] = 0;
  for (int q = 0; q < P; q++) {
    double pr = 0;
    for (int a = 0; a < P; a++) pr += gsl_matrix_get(evec, (size_t)a, (size_t)q) * g[a];
    pr /= fmax(fabs(eval->data[q]), floor_);
    for (int a = 0; a < P; a++) step[a] -= pr * gsl_matrix_get(evec, (size_t)a, (size_t)q);
  }
  return 0;
}

/* Gauss-Newton for one ReLU expert's weighted squared error, p = ([b],
 * w[D], a), h = a relu(b + wᵀx): J = (a 1[z>0], a 1[z>0] x, relu z);
 * one pass forms JᵀWJ and JᵀWe, the step is solved as above, step
 * halving accepts only decreases. p updated in place; returns the SSE. */
static double relu_gauss_newton(moe_gmoe_em *w, int has_bias, double *p, double wsum, double f0)
{
  const int D = w->D, P = has_bias + D + 1;
  const size_t n = w->n;
  double M[66 * 66], gv[66], st[66], tr[66], J[66];
  double f = f0;
  for (int it = 0; it < w->inner_iter; it++) {
    memset(M, 0, sizeof(double) * (size_t)P * P);
    memset(gv, 0, sizeof(double) * (size_t)P);
    const double b = has_bias ? p[0] : 0.0, a = p[has_bias + D];
    const double *wv = p + has_bias;
    for (size_t t = 0; t < n; t++) {
      const double *x = w->X + t * D;
      double z = b;
      for (int k = 0; k < D; k++) z += wv[k] * x[k];
      const double wt = w->wcol[t];
      if (z <= 0) {   /* only ∂h/∂a = relu(z) = 0: nothing to add but the residual */
        continue;
      }
      if (has_bias) J[0] = a;
      for (int k = 0; k < D; k++) J[has_bias + k] = a * x[k];
      J[has_bias + D] = z;
      double e = w->Y[t] - a * z;
      for (int i = 0; i < P; i++) {
        double wj = wt * J[i];
        gv[i] -= wj * e;                       /* ½ ∂SSE/∂p_i */
        for (int l = 0; l <= i; l++) M[i * P + l] += wj * J[l];
      }
    }
    for (int i = 0; i < P; i++)
      for (int l = 0; l < i; l++) M[l * P + i] = M[i * P + l];
    double gmax = 0;
    for (int i = 0; i < P; i++) gmax = fmax(gmax, fabs(gv[i]));
    if (!(gmax > 1e-14 * wsum)) break;
    gsl_matrix_view ev = gsl_matrix_submatrix(w->evec_x, 0, 0, (size_t)P, (size_t)P);
    gsl_vector_view lv = gsl_vector_subvector(w->eval_x, 0, (size_t)P);
    gsl_eigen_symmv_workspace *eig = P == D + 2 ? w->eig_x : NULL;
    gsl_eigen_symmv_workspace *tmp = NULL;
    if (!eig) {
      moei_gsl_enter();
      eig = tmp = gsl_eigen_symmv_alloc((size_t)P);
      moei_gsl_leave();
    }
    int bad = !eig || modified_newton_step(P, M, gv, st, &ev.matrix, &lv.vector, eig);
    if (tmp) gsl_eigen_symmv_free(tmp);
    if (bad) break;
    double t = 1.0;
    int accepted = 0;
    for (int h = 0; h < 12; h++, t *= 0.5) {
      for (int i = 0; i < P; i++) tr[i] = p[i] + t * st[i];
      double ft = relu_sse(has_bias, D, n, w->X, w->Y, w->wcol, wsum, tr, NULL);
      if (isfinite(ft) && ft < f) {
        accepted = 1 + (f - ft < 1e-14 * f);
        f = ft;
        memcpy(p, tr, (size_t)P * sizeof *p);
        break;
      }
    }
    if (accepted != 1) break;
  }
  return f;
}

/* M-step for one expert (shared if is_shared) given its weights in wcol. */
static int mstep_expert(moe_gmoe_em *w, int is_shared, int idx, double wsum)
{
  moe_gmoe *m = w->m;
  const int D = w->D;
  const size_t n = w->n;
  moe_gmoe_expert kind = is_shared ? m->shared_kind : m->routed_kind;
  double *b = is_shared ? &m->kappa0[idx] : &m->eta0[idx];
  double *wv = (is_shared ? m->kappa1 : m->eta1) + (size_t)idx * D;
  double *a = is_shared ? &m->kappa2[idx] : &m->eta2[idx];
  double *var = is_shared ? &m->tau[idx] : &m->nu[idx];
  if (kind == MOE_GMOE_LINEAR) {
    double th[4097];
    if (wls_linear(D, n, w->X, w->Y, w->wcol, th) == MOE_OK) {
      /* accept only if the weighted SSE does not increase (rounding guard) */
      double f0 = 0, f1 = 0;
      for (size_t t = 0; t < n; t++) {
        const double *x = w->X + t * D;
        double e0 = w->Y[t] - *b - dot(wv, x, D), e1 = w->Y[t] - th[0] - dot(th + 1, x, D);
        f0 += w->wcol[t] * e0 * e0;
        f1 += w->wcol[t] * e1 * e1;
      }
      if (f1 <= f0 && isfinite(f1)) { *b = th[0]; memcpy(wv, th + 1, (size_t)D * sizeof *wv); }
    }
  } else {
    int has_bias = is_shared;
    relu_ctx ctx = {has_bias, D, n, w->X, w->Y, w->wcol, wsum};
    gsl_vector *v = is_shared ? w->v_shared : w->v_routed;
    gsl_multimin_fdfminimizer *s = is_shared ? w->min_shared : w->min_routed;
    if (has_bias) v->data[0] = *b;
    memcpy(v->data + has_bias, wv, (size_t)D * sizeof *wv);
    v->data[has_bias + D] = *a;
    double f0 = relu_sse(has_bias, D, n, w->X, w->Y, w->wcol, wsum, v->data, NULL), f1;
    if (w->expert_bfgs) {
      gsl_multimin_function_fdf fn = {relu_f, relu_df, relu_fdf, v->size, &ctx};
      f1 = bfgs_improve(s, &fn, v, f0, w->inner_iter);
    } else {
      f1 = relu_gauss_newton(w, has_bias, v->data, wsum, f0);
      if (!(f1 < f0)) {   /* no Gauss-Newton progress: BFGS from the same point */
        gsl_multimin_function_fdf fn = {relu_f, relu_df, relu_fdf, v->size, &ctx};
        f1 = bfgs_improve(s, &fn, v, f0, w->inner_iter);
      }
    }
    if (f1 < f0) {
      if (has_bias) *b = v->data[0];
      memcpy(wv, v->data + has_bias, (size_t)D * sizeof *wv);
      *a = v->data[has_bias + D];
    }
  }
  /* variance: closed form, clamped to the floor */
  double sse = 0;
  for (size_t t = 0; t < n; t++) {
    const double *x = w->X + t * D;
    double e = w->Y[t] - (is_shared ? moe_gmoe_shared_mean(m, idx, x) : moe_gmoe_routed_mean(m, idx, x));
    sse += w->wcol[t] * e * e;
  }
  double nv = sse / wsum;
  if (!(nv >= w->var_floor)) nv = w->var_floor;
  *var = nv;
  return MOE_OK;
}

/* Gate M-step by a modified Newton method: the Hessian's eigenvalues are
 * replaced by max(|λ|, 1e-10 max|λ|) (positive definite even where the
 * normalised-sigmoid objective is not convex, and harmless along the
 * softmax's flat shift direction, where the gradient vanishes), then a
 * step-halving line search accepts only decreases. v holds β on entry and
 * the result on exit; returns the final objective (≤ f0). */
static double gate_newton(moe_gmoe_em *w, gsl_vector *v, const unsigned char *fixsel, double f0)
{
  const int E = w->E, D = w->D, P = E * (D + 1);
  moe_gmoe *m = w->m;
  double f = f0;
  double *trial = w->gD;   /* reused as the trial point after the step is formed */
  double step[64 * 65];
  if (P > 64 * 65) return f0;
  for (int it = 0; it < w->inner_iter; it++) {
    gate_obj_hess(m->gate, m->topk, D, E, w->n, w->X, w->R + w->S, (size_t)w->C, v->data, w->gG, w->gH, w->u, w->lg, w->gw,
                  w->sel, w->hu, fixsel);
    double gmax = 0;
    for (int q = 0; q < P; q++) gmax = fmax(gmax, fabs(w->gG[q]));
    if (!(gmax > 1e-12)) break;
    if (modified_newton_step(P, w->gH, w->gG, step, w->evec, w->eval, w->eig)) break;
    /* cap the step: the logits need not move by more than ~10 per update */
    double smax = 0;
    for (int a = 0; a < P; a++) smax = fmax(smax, fabs(step[a]));
    double t = smax > 10 ? 10 / smax : 1.0;
    int accepted = 0;
    for (int h = 0; h < 12; h++, t *= 0.5) {
      for (int a = 0; a < P; a++) trial[a] = v->data[a] + t * step[a];
      double ft = gate_obj(m->gate, m->topk, D, E, w->n, w->X, w->R + w->S, (size_t)w->C, trial, NULL, w->u, w->lg, w->gw,
                           w->sel, fixsel);
      if (isfinite(ft) && ft < f) {
        double dec = f - ft;
        f = ft;
        memcpy(v->data, trial, (size_t)P * sizeof(double));
        accepted = 1 + (dec < 1e-14 * fabs(f));
        break;
      }
    }
    if (accepted != 1) break;   /* no decrease, or a negligible one: done */
  }
  return f;
}

int moe_gmoe_em_iterate(moe_gmoe_em *w)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_iterate: not initialised");
  moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C;
  const size_t n = w->n;
  /* ω */
  double tot = 0;
  double *mass = w->mass;
  for (int c = 0; c < C; c++) mass[c] = 0;
  for (size_t t = 0; t < n; t++) {
    const double *r = w->R + t * C;
    for (int c = 0; c < C; c++) mass[c] += r[c];
  }
  for (int i = 0; i < S; i++) tot += mass[i];
  if (tot > 0)
    for (int i = 0; i < S; i++) m->omega[i] = mass[i] > 0 ? mass[i] / tot : 1e-300;
  /* experts */
  const double tiny = 1e-10 * (double)n;
  for (int c = 0; c < C; c++) {
    if (!(mass[c] > tiny)) continue;     /* an empty component keeps its parameters */
    for (size_t t = 0; t < n; t++) w->wcol[t] = w->R[t * C + c];
    int rc = mstep_expert(w, c < S, c < S ? c : c - S, mass[c]);
    if (rc) return rc;
  }
  /* gate */
  gsl_vector *v = w->v_gate;
  memcpy(v->data, m->beta0, (size_t)E * sizeof(double));
  memcpy(v->data + E, m->beta1, (size_t)E * D * sizeof(double));
  /* With top-K, the chosen sets are held at their current values inside
   * BFGS (the objective is then smooth); the step is accepted only if the
   * true objective, with the sets the new β1 choose, improves. */
  gate_ctx gc = {w, NULL};
  double f0 = gate_f(v, &gc);
  if (m->topk > 0 && m->topk < E) {
    for (size_t t = 0; t < n; t++) {
      double *u = w->u;
      for (int j = 0; j < E; j++) u[j] = dot(m->beta1 + (size_t)j * D, w->X + t * D, D);
      topk_select(E, m->topk, u, w->selfix + t * E);
    }
    gc.fixsel = w->selfix;
  }
  double f1;
  if (w->gate_bfgs) {
    gsl_multimin_function_fdf fn = {gate_f, gate_df, gate_fdf, v->size, &gc};
    f1 = bfgs_improve(w->min_gate, &fn, v, f0, w->inner_iter);
  } else {
    f1 = gate_newton(w, v, gc.fixsel, f0);
    if (!(f1 < f0)) {   /* Newton made no progress (flat or indefinite region): BFGS from the same point */
      gsl_multimin_function_fdf fn = {gate_f, gate_df, gate_fdf, v->size, &gc};
      f1 = bfgs_improve(w->min_gate, &fn, v, f0, w->inner_iter);
    }
  }
  if (gc.fixsel && f1 < f0) {
    gate_ctx exact = {w, NULL};
    f1 = gate_f(v, &exact);
  }
  if (f1 < f0) {
    memcpy(m->beta0, v->data, (size_t)E * sizeof(double));
    memcpy(m->beta1, v->data + E, (size_t)E * D * sizeof(double));
  }
  /* E-step at the new parameters: ℓ_t and the next responsibilities */
  w->ll_prev = w->ll;
  w->iter++;
  return em_estep(w);
}

int moe_gmoe_em_test(const moe_gmoe_em *w, double tol, moe_gmoe_tol_kind kind)
{
  if (!w || w->iter < 1 || !isfinite(w->ll_prev)) return MOE_GMOE_CONTINUE;
  double d = fabs(w->ll - w->ll_prev);
  double lim = kind == MOE_GMOE_TOL_ABS ? tol : tol * fabs(w->ll_prev);
  return d <= lim ? MOE_OK : MOE_GMOE_CONTINUE;
}

double moe_gmoe_em_loglik(const moe_gmoe_em *w) { return w->ll; }
int moe_gmoe_em_iterations(const moe_gmoe_em *w) { return w->iter; }

/* ---- initialisation and the driver ------------------------------------ */

void moe_gmoe_fit_opts_default(moe_gmoe_fit_opts *o)
{
  o->restarts = 1;
  o->init = MOE_GMOE_INIT_TRUTH;
  o->init_sd = 0.5;
  o->max_iter = 1000;
  o->tol = 1e-6;
  o->tol_kind = MOE_GMOE_TOL_REL;
  o->inner_iter = 1;
  o->var_floor = 1e-6;
  o->bfgs = -1;
  o->dup_routed = -1;
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
                       gsl_rng *r, size_t n, const double *X, const double *Y);

int moe_gmoe_init_params(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_init_kind kind,
                         double init_sd, gsl_rng *r, size_t n, const double *X, const double *Y)
{
  return init_params(fit, truth, kind, init_sd, -1, r, n, X, Y);
}

static int init_params(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_init_kind kind, double init_sd, int dup,
                       gsl_rng *r, size_t n, const double *X, const double *Y)
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
    for (int i = 0; i < E; i++) {
      int j = owner[i];
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
        fit->beta1[(size_t)i * D + k] = truth->beta1[(size_t)j * D + k] + gsl_ran_gaussian(r, init_sd);
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
  moe_gmoe_fit_info fi = {-INFINITY, 0, 0, -1, 0, 0};
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
  for (int k = 0; k < o->restarts; k++) {
    char label[32];
    snprintf(label, sizeof label, "restart-%d", k);
    gsl_rng *r = moe_rng_alloc(moe_seed_derive(seed, label));
    if (!r) { rc = MOE_ENOMEM; goto done; }
    int st = init_params(cand, truth, o->init, o->init_sd, o->dup_routed, r, n, X, Y);
    gsl_rng_free(r);
    if (st && st != MOE_EDOM) { rc = st; goto done; }
    fi.restarts_used++;
    if (!st) st = moe_gmoe_em_init(w, cand, n, X, Y);
    int conv = 0;
    for (int it = 0; !st && it < o->max_iter; it++) {
      st = moe_gmoe_em_iterate(w);
      if (!st && moe_gmoe_em_test(w, o->tol, o->tol_kind) == MOE_OK) { conv = 1; break; }
    }
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
