/* SPDX-License-Identifier: GPL-3.0-or-later */
/* optim.c — SGD and AdamW with PyTorch's semantics, LR schedules (see
 * moe/optim.h). Arithmetic is in float with the scalars rounded to float
 * once, as PyTorch does for float tensors, so step-by-step comparisons with
 * torch.optim stay within float rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "moe/optim.h"

struct moe_optim {
  moe_optim_config cfg;
  size_t n;
  long t;
  float *m; /* (n) SGD momentum buffer / Adam first moment */
  float *v; /* (n) Adam second moment (AdamW only) */
};

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

moe_optim *moe_optim_alloc(const moe_optim_config *cfg, size_t n)
{
  if (moe_optim_check(cfg))
    return NULL;
  moe_optim *o = calloc(1, sizeof *o);
  if (!o) {
    moe_error(MOE_ENOMEM, "optimizer alloc");
    return NULL;
  }
  o->cfg = *cfg;
  o->n = n;
  o->m = moei_alloc_array(n, sizeof *o->m); /* NULL if n·4 does not fit a size_t */
  if (cfg->kind == MOE_OPTIM_ADAMW)
    o->v = moei_alloc_array(n, sizeof *o->v);
  if (!o->m || (cfg->kind == MOE_OPTIM_ADAMW && !o->v)) {
    moe_optim_free(o);
    moe_error(MOE_ENOMEM, "optimizer alloc: n=%zu", n);
    return NULL;
  }
  return o;
}

void moe_optim_free(moe_optim *o)
{
  if (!o)
    return;
  moei_free_aligned(o->m);
  moei_free_aligned(o->v);
  free(o);
}

long moe_optim_steps(const moe_optim *o) { return o ? o->t : 0; }

void moe_optim_reset(moe_optim *o)
{
  if (!o)
    return;
  o->t = 0;
  memset(o->m, 0, o->n * sizeof *o->m);
  if (o->v)
    memset(o->v, 0, o->n * sizeof *o->v);
}

int moe_optim_step(moe_optim *o, float *p, const float *g, double lr)
{
  MOE_CHECK_ARG(o, "optimizer step: NULL optimizer");
  MOE_CHECK_ARG(o->n == 0 || (p && g), "optimizer step: NULL buffer");
  if (!isfinite(lr))
    return moe_error(MOE_EDOM, "optimizer step: lr=%g", lr);
  MOE_CHECK_ARG(lr >= 0, "optimizer step: lr=%g < 0", lr);
  /* A step is all or nothing: a NaN or Inf in the gradients (or already in
   * the parameters) refuses it before any parameter, moment or the step
   * count changes, so the caller can skip the batch or stop. */
  size_t bad = moei_first_nonfinite_f(g, o->n);
  if (bad < o->n)
    return moe_error(MOE_EDOM, "optimizer step: grads[%zu] is %g; nothing updated", bad,
                     (double)g[bad]);
  bad = moei_first_nonfinite_f(p, o->n);
  if (bad < o->n)
    return moe_error(MOE_EDOM, "optimizer step: params[%zu] is %g; nothing updated", bad,
                     (double)p[bad]);
  const moe_optim_config *c = &o->cfg;
  const size_t n = o->n;
  o->t++;
  if (c->kind == MOE_OPTIM_SGD) {
    const float wd = (float)c->weight_decay, mu = (float)c->momentum, a = (float)-lr;
    const int first = o->t == 1;
    for (size_t i = 0; i < n; i++) {
      float d = g[i];
      if (wd != 0)
        d = d + wd * p[i];
      if (mu != 0) {
        o->m[i] = first ? d : mu * o->m[i] + d;
        d = c->nesterov ? d + mu * o->m[i] : o->m[i];
      }
      p[i] = p[i] + a * d;
    }
    return MOE_OK;
  }
  const float decay = (float)(1.0 - lr * c->weight_decay);
  const float b1 = (float)c->beta1, b2 = (float)c->beta2;
  const float one_b1 = (float)(1.0 - c->beta1), one_b2 = (float)(1.0 - c->beta2);
  const double bc1 = 1.0 - pow(c->beta1, (double)o->t);
  const double bc2 = 1.0 - pow(c->beta2, (double)o->t);
  const float step = (float)(-lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
  for (size_t i = 0; i < n; i++) {
    p[i] *= decay;
    o->m[i] = b1 * o->m[i] + one_b1 * g[i];
    o->v[i] = b2 * o->v[i] + one_b2 * g[i] * g[i];
    float denom = sqrtf(o->v[i]) / bc2_sqrt + eps;
    p[i] = p[i] + step * (o->m[i] / denom);
  }
  return MOE_OK;
}

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
