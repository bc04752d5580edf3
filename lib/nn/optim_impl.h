/* SPDX-License-Identifier: GPL-3.0-or-later */
/* optim_impl.h — SGD and AdamW, written once for REAL (see real.h).
 * Included by optim.c (which explains why these loops vectorise and stay
 * bit-identical to their scalar form); not installed. */

struct SFX(moe_optim) {
  moe_optim_config cfg;
  size_t n;
  long t;
  REAL *m; /* (n) SGD momentum buffer / Adam first moment */
  REAL *v; /* (n) Adam second moment (AdamW only) */
  int nt;  /* threads for AdamW's update (moe_optim_set_threads) */
};

SFX(moe_optim) *SFX(moe_optim_alloc)(const moe_optim_config *cfg, size_t n)
{
  if (moe_optim_check(cfg))
    return NULL;
  SFX(moe_optim) *o = calloc(1, sizeof *o);
  if (!o) {
    moe_error(MOE_ENOMEM, "optimizer alloc");
    return NULL;
  }
  o->cfg = *cfg;
  o->n = n;
  o->nt = 1;
  o->m = moei_alloc_array(n, sizeof *o->m); /* NULL if n·sizeof does not fit a size_t */
  if (cfg->kind == MOE_OPTIM_ADAMW)
    o->v = moei_alloc_array(n, sizeof *o->v);
  if (!o->m || (cfg->kind == MOE_OPTIM_ADAMW && !o->v)) {
    SFX(moe_optim_free)(o);
    moe_error(MOE_ENOMEM, "optimizer alloc: n=%zu", n);
    return NULL;
  }
  return o;
}

void SFX(moe_optim_free)(SFX(moe_optim) *o)
{
  if (!o)
    return;
  moei_free_aligned(o->m);
  moei_free_aligned(o->v);
  free(o);
}

long SFX(moe_optim_steps)(const SFX(moe_optim) *o) { return o ? o->t : 0; }

void SFX(moe_optim_reset)(SFX(moe_optim) *o)
{
  if (!o)
    return;
  o->t = 0;
  memset(o->m, 0, o->n * sizeof *o->m);
  if (o->v)
    memset(o->v, 0, o->n * sizeof *o->v);
}

/* p ← p − lr·(g + wd·p) without momentum; wd == 0 skips the decay term
 * (adding 0·p would turn −0 into +0 and inf·0 into NaN). */
MOE_VEC_CLONES static void SFX(sgd_plain)(size_t n, REAL *restrict p, const REAL *restrict g, REAL wd, REAL a)
{
  if (wd == 0)
    for (size_t i = 0; i < n; i++)
      p[i] = p[i] + a * g[i];
  else
    for (size_t i = 0; i < n; i++)
      p[i] = p[i] + a * (g[i] + wd * p[i]);
}

/* SGD with momentum buffer b; the flags are constants at every call site,
 * so each combination compiles to its own branch-free loop. */
static MOE_INLINE void SFX(sgd_momentum)(size_t n, REAL *restrict p, const REAL *restrict g,
                                         REAL *restrict b, REAL wd, REAL mu, REAL a, int has_wd,
                                         int first, int nesterov)
{
  for (size_t i = 0; i < n; i++) {
    REAL d = has_wd ? g[i] + wd * p[i] : g[i];
    REAL bi = first ? d : mu * b[i] + d;
    b[i] = bi;
    d = nesterov ? d + mu * bi : bi;
    p[i] = p[i] + a * d;
  }
}

/* g (n) *= gs */
MOE_VEC_CLONES static void SFX(scale)(size_t n, REAL *restrict g, REAL gs)
{
  for (size_t i = 0; i < n; i++)
    g[i] *= gs;
}

/* AdamW, fused: one pass reads p, g, m, v and writes p, m, v. The order of
 * operations is that of moe/optim.h (decay, moments, then the Adam move). */
MOE_VEC_CLONES static void SFX(adamw_update)(size_t n, REAL *restrict p, const REAL *restrict g,
                              REAL *restrict m, REAL *restrict v, REAL decay, REAL b1,
                              REAL one_b1, REAL b2, REAL one_b2, REAL step, REAL bc2_sqrt,
                              REAL eps)
{
  for (size_t i = 0; i < n; i++) {
    REAL pi = p[i] * decay;
    REAL mi = b1 * m[i] + one_b1 * g[i];
    REAL vi = b2 * v[i] + one_b2 * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    REAL denom = R_SQRT(vi) / bc2_sqrt + eps;
    p[i] = pi + step * (mi / denom);
  }
}

/* moe_optim_step, and for moei_clip_step: finite != 0 says the caller has
 * checked that g and p are finite (the scans are skipped); gs != 1 scales
 * g in place first, g[i] *= gs, chunk by chunk just before the update
 * reads it (the same products as a separate pass). */
static int SFX(optim_step)(SFX(moe_optim) *o, REAL *p, REAL *g, double lr, int finite, REAL gs)
{
  MOE_CHECK_ARG(o, "optimizer step: NULL optimizer");
  MOE_CHECK_ARG(o->n == 0 || (p && g), "optimizer step: NULL buffer");
  if (!isfinite(lr))
    return moe_error(MOE_EDOM, "optimizer step: lr=%g", lr);
  MOE_CHECK_ARG(lr >= 0, "optimizer step: lr=%g < 0", lr);
  /* A step is all or nothing: a NaN or Inf in the gradients (or already in
   * the parameters) refuses it before any parameter, moment or the step
   * count changes, so the caller can skip the batch or stop. */
  if (!finite) {
    size_t bad = R_FIRST_NONFINITE(g, o->n);
    if (bad < o->n)
      return moe_error(MOE_EDOM, "optimizer step: grads[%zu] is %g; nothing updated", bad,
                       (double)g[bad]);
    bad = R_FIRST_NONFINITE(p, o->n);
    if (bad < o->n)
      return moe_error(MOE_EDOM, "optimizer step: params[%zu] is %g; nothing updated", bad,
                       (double)p[bad]);
  }
  const moe_optim_config *c = &o->cfg;
  const size_t n = o->n;
  o->t++;
  if (gs != 1 && c->kind == MOE_OPTIM_SGD)
    SFX(scale)(n, g, gs);
  if (c->kind == MOE_OPTIM_SGD) {
    const REAL wd = (REAL)c->weight_decay, mu = (REAL)c->momentum, a = (REAL)-lr;
    const int first = o->t == 1, has_wd = wd != 0;
    if (mu == 0) {
      SFX(sgd_plain)(n, p, g, wd, a);
      return MOE_OK;
    }
    switch (has_wd << 2 | first << 1 | (c->nesterov != 0)) {
#define MOE_SGD_CASE(k, w, f, nv)                                                                \
  case k:                                                                                        \
    SFX(sgd_momentum)(n, p, g, o->m, wd, mu, a, w, f, nv);                                       \
    break;
      MOE_SGD_CASE(0, 0, 0, 0) MOE_SGD_CASE(1, 0, 0, 1) MOE_SGD_CASE(2, 0, 1, 0)
      MOE_SGD_CASE(3, 0, 1, 1) MOE_SGD_CASE(4, 1, 0, 0) MOE_SGD_CASE(5, 1, 0, 1)
      MOE_SGD_CASE(6, 1, 1, 0) MOE_SGD_CASE(7, 1, 1, 1)
#undef MOE_SGD_CASE
    }
    return MOE_OK;
  }
  const REAL decay = (REAL)(1.0 - lr * c->weight_decay);
  const REAL b1 = (REAL)c->beta1, b2 = (REAL)c->beta2;
  const REAL one_b1 = (REAL)(1.0 - c->beta1), one_b2 = (REAL)(1.0 - c->beta2);
  const double bc1 = 1.0 - pow(c->beta1, (double)o->t);
  const double bc2 = 1.0 - pow(c->beta2, (double)o->t);
  const REAL step = (REAL)(-lr / bc1), bc2_sqrt = (REAL)sqrt(bc2), eps = (REAL)c->eps;
  if (o->nt == 1 && gs == 1) {
    SFX(adamw_update)(n, p, g, o->m, o->v, decay, b1, one_b1, b2, one_b2, step, bc2_sqrt, eps);
    return MOE_OK;
  }
  /* element-wise: chunks on threads change no bit */
  const size_t CH = 16384, nch = (n + CH - 1) / CH;
  const int nt = o->nt;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (size_t k = 0; k < nch; k++) {
    const size_t i0 = k * CH, len = n - i0 < CH ? n - i0 : CH;
    if (gs != 1)
      SFX(scale)(len, g + i0, gs);
    SFX(adamw_update)(len, p + i0, g + i0, o->m + i0, o->v + i0, decay, b1, one_b1, b2, one_b2,
                      step, bc2_sqrt, eps);
  }
  return MOE_OK;
}

int SFX(moe_optim_step)(SFX(moe_optim) *o, REAL *p, const REAL *g, double lr)
{
  return SFX(optim_step)(o, p, (REAL *)g, lr, 0, 1); /* g is written only if gs != 1 */
}

int SFX(moe_optim_set_threads)(SFX(moe_optim) *o, int n)
{
  MOE_CHECK_ARG(o, "optimizer threads: NULL optimizer");
  MOE_CHECK_ARG(n >= 1 && n <= MOE_THREADS_MAX, "optimizer threads: n=%d outside [1, %d]", n,
                MOE_THREADS_MAX);
  o->nt = n;
  return MOE_OK;
}
