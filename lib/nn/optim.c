/* SPDX-License-Identifier: GPL-3.0-or-later */
/* optim.c — SGD and AdamW with PyTorch's semantics, LR schedules (see
 * moe/optim.h). The float optimizer does its arithmetic in float with the
 * scalars rounded to float once, as PyTorch does for float tensors, so
 * step-by-step comparisons with torch.optim stay within float rounding; the
 * double twin (optim_impl.h compiled again) does it in double.
 *
 * The update loops are element-wise, so they vectorise without changing a
 * bit: with -ffp-contract=off and no -fassociative-math every lane performs
 * the scalar loop's operations in the scalar loop's order (SSE sqrtps and
 * divps are correctly rounded like sqrtf and '/'). Three things kept GCC
 * from vectorising them at -O2:
 *   - aliasing: p, g and the state could overlap, so the loops take
 *     restrict pointers (the caller's p and g never alias the optimizer's
 *     own m and v; moe_optim_step's contract says p and g do not overlap);
 *   - errno: with -fmath-errno (C's default) sqrtf is a call that may set
 *     errno = EDOM for a negative argument, and the vectoriser cannot
 *     vectorise a conditional call. AdamW's v = β2·v + (1−β2)·g² is never
 *     negative (it is >= 0, +inf or NaN, and sqrtf(NaN) sets no errno), so
 *     that path is dead: -fno-math-errno for this file (mk/lib-nn.mk builds
 *     it apart with that flag; it also covers the schedules' cos/pow, whose
 *     errno nobody reads) removes nothing that could ever run.
 *     __builtin_sqrtf alone would not: it keeps the errno call path under
 *     -fmath-errno, and GCC 12 ignores math-errno in a pragma;
 *   - the cost model: GCC 12's -O2 "very cheap" model refuses loops that
 *     need a scalar epilogue, i.e. any n; the dynamic model accepts them.
 * t/test_optim checks the float results bit for bit against a scalar
 * transcription of the same formulas. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"
#include "moe/optim.h"

moe_optim_config moe_optim_defaults(moe_optim_kind kind)
{
  moe_optim_config c = {kind, 0.0, 0.0, 0, 0.9, 0.999, 1e-8};
  if (kind == MOE_OPTIM_ADAMW)
    c.weight_decay = 0.01;
  return c;
}

static const char *const moe_optim_kind_names[] = {"sgd", "adamw", NULL};

int moe_optim_kind_parse(const char *name, moe_optim_kind *kind)
{
  int i = 0, rc = moei_parse_name("optimizer", name, moe_optim_kind_names, &i);
  if (rc == MOE_OK) *kind = (moe_optim_kind)i;
  return rc;
}

int moe_optim_check(const moe_optim_config *c)
{
  MOE_CHECK_ARG(c, "optimizer: NULL config");
  MOE_CHECK_ARG(c->kind == MOE_OPTIM_SGD || c->kind == MOE_OPTIM_ADAMW,
                "optimizer: unknown kind %d", (int)c->kind);
  MOE_CHECK_ARG(isfinite(c->weight_decay) && c->weight_decay >= 0,
                "optimizer: weight_decay=%g", c->weight_decay);
  if (c->kind == MOE_OPTIM_SGD) {
    MOE_CHECK_ARG(c->momentum >= 0 && c->momentum < 1, "sgd: momentum=%g outside [0, 1)",
                  c->momentum);
    MOE_CHECK_ARG(!c->nesterov || c->momentum > 0, "sgd: nesterov needs momentum > 0");
  } else {
    MOE_CHECK_ARG(c->beta1 >= 0 && c->beta1 < 1, "adamw: beta1=%g outside [0, 1)", c->beta1);
    MOE_CHECK_ARG(c->beta2 >= 0 && c->beta2 < 1, "adamw: beta2=%g outside [0, 1)", c->beta2);
    MOE_CHECK_ARG(isfinite(c->eps) && c->eps > 0, "adamw: eps=%g", c->eps);
  }
  return MOE_OK;
}


#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize")
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "optim_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "optim_impl.h"

static const char *const moe_lr_kind_names[] = {"constant", "warmup_cosine", NULL};

int moe_lr_kind_parse(const char *name, moe_lr_kind *kind)
{
  int i = 0, rc = moei_parse_name("lr schedule", name, moe_lr_kind_names, &i);
  if (rc == MOE_OK) *kind = (moe_lr_kind)i;
  return rc;
}

int moe_lr_check(const moe_lr_schedule *s)
{
  MOE_CHECK_ARG(s, "lr schedule: NULL");
  MOE_CHECK_ARG(s->kind == MOE_LR_CONSTANT || s->kind == MOE_LR_WARMUP_COSINE,
                "lr schedule: unknown kind %d", (int)s->kind);
  MOE_CHECK_ARG(isfinite(s->lr) && s->lr > 0, "lr schedule: lr=%g", s->lr);
  if (s->kind == MOE_LR_WARMUP_COSINE) {
    MOE_CHECK_ARG(s->warmup >= 0 && s->total >= s->warmup,
                  "lr schedule: warmup=%ld total=%ld (need 0 <= warmup <= total)", s->warmup,
                  s->total);
    MOE_CHECK_ARG(s->min_ratio >= 0 && s->min_ratio <= 1, "lr schedule: min_ratio=%g",
                  s->min_ratio);
  }
  return MOE_OK;
}

double moe_lr_at(const moe_lr_schedule *s, long step)
{
  if (!s)
    return 0;
  if (step < 0)
    step = 0;
  if (s->kind == MOE_LR_CONSTANT)
    return s->lr;
  if (step < s->warmup)
    return s->lr * (double)(step + 1) / (double)s->warmup;
  long span = s->total - s->warmup;
  double q = (double)(step - s->warmup) / (double)(span > 1 ? span : 1);
  if (q > 1)
    q = 1;
  const double pi = 3.14159265358979323846;
  return s->lr * (s->min_ratio + (1 - s->min_ratio) * 0.5 * (1 + cos(pi * q)));
}

int moei_clip_step(float *params, float *grads, size_t n, moe_optim *o,
                   const moe_lr_schedule *sched, double clip, double *grad_norm, const char *what)
{
  MOE_CHECK_ARG(o && sched, "%s step: NULL argument", what);
  MOE_CHECK_ARG(!isnan(clip), "%s step: clip is NaN", what);
  int rc = moe_lr_check(sched);
  if (rc)
    return rc;
  /* The norm is one sum in slab order, on one thread: a chain of n
   * dependent additions. The parameters' finiteness check rides along
   * (the loop waits on the additions anyway), so moe_optim_step's two
   * scans are not needed: a finite norm means finite gradients, which
   * the clip factor (<= 1) keeps finite. */
  double ss = 0;
  uint32_t pbad = 0;
  for (size_t i = 0; i < n; i++) {
    ss += (double)grads[i] * grads[i];
    uint32_t u;
    memcpy(&u, params + i, sizeof u);
    pbad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
  }
  const double norm = sqrt(ss);
  if (grad_norm)
    *grad_norm = norm;
  if (!isfinite(norm))
    return moe_error(MOE_EDOM, "%s step: gradient norm is %g; parameters left unchanged", what,
                     norm);
  float cf = 1;
  if (clip > 0) {
    /* torch.nn.utils.clip_grad_norm_: coef = clip/(norm + 1e-6), clamped to 1 */
    const double coef = clip / (norm + 1e-6);
    if (coef < 1)
      cf = (float)coef; /* grads[i] *= cf, in the optimizer's pass */
  }
  const double lr = moe_lr_at(sched, moe_optim_steps(o));
  if (pbad || o->n != n) { /* moe_optim_step's scans say what is wrong */
    if (cf != 1)
      for (size_t i = 0; i < n; i++)
        grads[i] *= cf;
    return moe_optim_step(o, params, grads, lr);
  }
  return optim_step(o, params, grads, lr, 1, cf);
}
