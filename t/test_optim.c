/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_optim.c — SGD and AdamW update rules on hand-checkable cases, state
 * reset, schedules, and errors. (Trajectories against torch.optim are in
 * test_golden.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"

/* The update rules of moe/optim.h transcribed element by element, scalar
 * by scalar, in the order the header states (the pre-vectorisation code).
 * The library's fused, vectorised loops must give these bits exactly:
 * reordering an operation (e.g. p + step·m/denom as (p + …)·decay, or
 * m/(√v/√bc2 + ε) as m·√bc2/(√v + ε·√bc2)) fails here. Written once for
 * float and double; R is the scalar type, SQ its sqrt. */
#define REF_STEP(R, SQ, name)                                                              \
  static void name(const moe_optim_config *c, long t, size_t n, R *p, const R *g, R *m,     \
                   R *v, double lr)                                                         \
  {                                                                                         \
    if (c->kind == MOE_OPTIM_SGD) {                                                         \
      const R wd = (R)c->weight_decay, mu = (R)c->momentum, a = (R)-lr;                     \
      for (size_t i = 0; i < n; i++) {                                                      \
        R d = g[i];                                                                         \
        if (wd != 0)                                                                        \
          d = d + wd * p[i];                                                                \
        if (mu != 0) {                                                                      \
          m[i] = t == 1 ? d : mu * m[i] + d;                                                \
          d = c->nesterov ? d + mu * m[i] : m[i];                                           \
        }                                                                                   \
        p[i] = p[i] + a * d;                                                                \
      }                                                                                     \
      return;                                                                               \
    }                                                                                       \
    const R decay = (R)(1.0 - lr * c->weight_decay);                                        \
    const R b1 = (R)c->beta1, b2 = (R)c->beta2;                                             \
    const R one_b1 = (R)(1.0 - c->beta1), one_b2 = (R)(1.0 - c->beta2);                     \
    const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t); \
    const R step = (R)(-lr / bc1), bc2_sqrt = (R)sqrt(bc2), eps = (R)c->eps;                \
    for (size_t i = 0; i < n; i++) {                                                        \
      p[i] *= decay;                                                                        \
      m[i] = b1 * m[i] + one_b1 * g[i];                                                     \
      v[i] = b2 * v[i] + one_b2 * g[i] * g[i];                                              \
      R denom = SQ(v[i]) / bc2_sqrt + eps;                                                  \
      p[i] = p[i] + step * (m[i] / denom);                                                  \
    }                                                                                       \
  }
REF_STEP(float, sqrtf, ref_step_f32)
REF_STEP(double, sqrt, ref_step_f64)

/* Every optimizer variant, n = 1037 (not a multiple of any vector width, so
 * the loops' remainders run too), 6 steps with changing lr, gradients of
 * mixed magnitudes with exact zeros: the library's float and double
 * optimizers against the scalar transcription, bit for bit. */
static void bitwise(void)
{
  enum { n = 1037, steps = 6 };
  struct { moe_optim_kind k; double wd, mu; int nesterov; const char *what; } v[] = {
    {MOE_OPTIM_SGD, 0, 0, 0, "sgd"},
    {MOE_OPTIM_SGD, 0.01, 0, 0, "sgd + wd"},
    {MOE_OPTIM_SGD, 0, 0.9, 0, "sgd momentum"},
    {MOE_OPTIM_SGD, 0.05, 0.85, 0, "sgd momentum + wd"},
    {MOE_OPTIM_SGD, 0, 0.9, 1, "sgd nesterov"},
    {MOE_OPTIM_SGD, 0.05, 0.85, 1, "sgd nesterov + wd"},
    {MOE_OPTIM_ADAMW, 0.01, 0, 0, "adamw"},
    {MOE_OPTIM_ADAMW, 0, 0, 0, "adamw, no decay"},
  };
  gsl_rng *r = moe_rng_alloc(2385);
  float *pf = malloc(n * sizeof *pf), *gf = malloc(n * sizeof *gf), *rf = malloc(n * sizeof *rf),
        *mf = calloc(n, sizeof *mf), *vf = calloc(n, sizeof *vf);
  double *pd = malloc(n * sizeof *pd), *gd = malloc(n * sizeof *gd),
         *rd = malloc(n * sizeof *rd), *md = calloc(n, sizeof *md), *vd = calloc(n, sizeof *vd);
  for (size_t c = 0; c < sizeof v / sizeof v[0]; c++) {
    moe_optim_config oc = moe_optim_defaults(v[c].k);
    oc.weight_decay = v[c].wd;
    oc.momentum = v[c].mu;
    oc.nesterov = v[c].nesterov;
    moe_optim *of = moe_optim_alloc(&oc, n);
    moe_optim_f64 *od = moe_optim_alloc_f64(&oc, n);
    moe_rng_normal_f64(r, pd, n, 1.5);
    for (size_t i = 0; i < n; i++)
      pf[i] = rf[i] = (float)pd[i], rd[i] = pd[i];
    memset(mf, 0, n * sizeof *mf);
    memset(vf, 0, n * sizeof *vf);
    memset(md, 0, n * sizeof *md);
    memset(vd, 0, n * sizeof *vd);
    int same_f = 1, same_d = 1, rc = 0;
    for (long t = 1; t <= steps; t++) {
      moe_rng_normal_f64(r, gd, n, t % 2 ? 0.3 : 2e-3);
      for (size_t i = 0; i < n; i += 17)
        gd[i] = 0;
      for (size_t i = 0; i < n; i++)
        gf[i] = (float)gd[i];
      double lr = 1e-2 / (double)t;
      rc |= moe_optim_step(of, pf, gf, lr) | moe_optim_step_f64(od, pd, gd, lr);
      ref_step_f32(&oc, t, n, rf, gf, mf, vf, lr);
      ref_step_f64(&oc, t, n, rd, gd, md, vd, lr);
      same_f &= !memcmp(pf, rf, n * sizeof *pf);
      same_d &= !memcmp(pd, rd, n * sizeof *pd);
    }
    ok(rc == 0 && same_f, "%s (float): %d steps bit-identical to the scalar formulas", v[c].what,
       steps);
    ok(rc == 0 && same_d, "%s (double): %d steps bit-identical to the scalar formulas", v[c].what,
       steps);
    is_int(moe_optim_steps_f64(od), steps, "%s (double): step count", v[c].what);
    moe_optim_free(of);
    moe_optim_free_f64(od);
  }
  free(pf); free(gf); free(rf); free(mf); free(vf);
  free(pd); free(gd); free(rd); free(md); free(vd);
  gsl_rng_free(r);
}

/* The double optimizer computes in double: the AdamW step-2 case of
 * adamw() below to 1e-14 (float gets 2e-6), and its reset and errors. */
static void adamw_f64(void)
{
  moe_optim_config c = moe_optim_defaults(MOE_OPTIM_ADAMW);
  c.weight_decay = 0.1;
  moe_optim_f64 *o = moe_optim_alloc_f64(&c, 1);
  double p = 0.75, g = 0.3, g2 = -0.1;
  moe_optim_step_f64(o, &p, &g, 0.01);
  moe_optim_step_f64(o, &p, &g2, 0.01);
  double m = 0.1 * 0.3, v = 0.001 * 0.09, pd = 0.75 * (1 - 0.001) - 0.01 * 0.3 / (0.3 + 1e-8);
  m = 0.9 * m + 0.1 * -0.1;
  v = 0.999 * v + 0.001 * 0.01;
  pd *= 1 - 0.001;
  pd -= 0.01 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.998001) + 1e-8);
  is_close(p, pd, 1e-14, 0, "adamw step 2 in double");
  moe_optim_reset_f64(o);
  is_int(moe_optim_steps_f64(o), 0, "double reset: step count 0");
  p = 0.75;
  moe_optim_step_f64(o, &p, &g, 0.01);
  is_close(p, 0.75 * (1 - 0.001) - 0.01 * 0.3 / (0.3 + 1e-8), 1e-15, 0,
           "double reset forgets the moments");
  ok(moe_optim_step_f64(o, &p, &g, INFINITY) == MOE_EDOM, "double: infinite lr is MOE_EDOM");
  ok(moe_optim_step_f64(o, NULL, &g, 0.01) == MOE_EINVAL, "double: NULL params rejected");
  moe_optim_free_f64(o);
  moe_optim_free_f64(NULL);
  c.beta2 = 1;
  ok(moe_optim_alloc_f64(&c, 4) == NULL, "double: beta2 = 1 rejected");
}

static void sgd(void)
{
  moe_optim_config c = moe_optim_defaults(MOE_OPTIM_SGD);
  moe_optim *o = moe_optim_alloc(&c, 2);
  float p[2] = {1.5f, -2.385f}, g[2] = {0.25f, 0.5f};
  moe_optim_step(o, p, g, 0.1);
  is_close(p[0], 1.475, 1e-7, 0, "plain sgd: p - lr g");
  moe_optim_free(o);

  c.momentum = 0.9;
  c.weight_decay = 0.01;
  o = moe_optim_alloc(&c, 1);
  float q = 2.0f, gq = 0.5f;
  moe_optim_step(o, &q, &gq, 0.1); /* d = 0.5 + 0.02 = 0.52, b = 0.52 */
  is_close(q, 2.0 - 0.052, 1e-6, 0, "momentum step 1: buffer = gradient");
  double b = 0.52, qd = 2.0 - 0.052;
  moe_optim_step(o, &q, &gq, 0.1);
  b = 0.9 * b + (0.5 + 0.01 * qd);
  qd -= 0.1 * b;
  is_close(q, qd, 1e-6, 0, "momentum step 2: b = mu b + g + wd p");
  is_int(moe_optim_steps(o), 2, "step count");
  moe_optim_reset(o);
  float q2 = 2.0f;
  moe_optim_step(o, &q2, &gq, 0.1);
  is_close(q2, 2.0 - 0.052, 1e-6, 0, "reset forgets the momentum");
  moe_optim_free(o);

  c.nesterov = 1;
  o = moe_optim_alloc(&c, 1);
  float n = 2.0f;
  moe_optim_step(o, &n, &gq, 0.1); /* d = 0.52 + 0.9 * 0.52 */
  is_close(n, 2.0 - 0.1 * 0.52 * 1.9, 1e-6, 0, "nesterov step 1");
  moe_optim_free(o);
}

static void adamw(void)
{
  moe_optim_config c = moe_optim_defaults(MOE_OPTIM_ADAMW);
  is_close(c.beta2, 0.999, 0, 0, "adamw defaults: beta2");
  is_close(c.weight_decay, 0.01, 0, 0, "adamw defaults: weight decay 0.01");
  c.weight_decay = 0.1;
  moe_optim *o = moe_optim_alloc(&c, 3);
  float p[3] = {0.75f, -1.25f, 2.385f}, g[3] = {0.3f, -0.02f, 0.0f};
  moe_optim_step(o, p, g, 0.01);
  /* step 1: bias correction makes m̂ = g, v̂ = g², so the Adam move is
   * lr·g/(|g| + eps) after the decoupled decay p(1 - lr·wd). */
  is_close(p[0], 0.75 * (1 - 0.001) - 0.01 * 0.3 / (0.3 + 1e-8), 1e-6, 0, "adamw step 1");
  is_close(p[1], -1.25 * (1 - 0.001) + 0.01 * 0.02 / (0.02 + 1e-8), 1e-6, 0,
           "adamw step 1, small gradient moves as far");
  is_close(p[2], 2.385 * (1 - 0.001), 1e-6, 0, "zero gradient: decay only");
  /* step 2 by the formulas in double */
  double m = 0.1 * 0.3, v = 0.001 * 0.09, pd = 0.75 * (1 - 0.001) - 0.01 * 0.3 / (0.3 + 1e-8);
  float g2[3] = {-0.1f, 0, 0};
  moe_optim_step(o, p, g2, 0.01);
  m = 0.9 * m + 0.1 * -0.1;
  v = 0.999 * v + 0.001 * 0.01;
  pd *= 1 - 0.001;
  pd -= 0.01 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.998001) + 1e-8);
  is_close(p[0], pd, 2e-6, 0, "adamw step 2 with bias correction");
  moe_optim_free(o);
}

static void schedules(void)
{
  moe_lr_schedule s = {MOE_LR_WARMUP_COSINE, 3e-3, 10, 110, 0.1};
  ok(moe_lr_check(&s) == 0, "schedule valid");
  is_close(moe_lr_at(&s, 0), 3e-4, 1e-15, 0, "warmup step 0 = lr/W");
  is_close(moe_lr_at(&s, 9), 3e-3, 1e-15, 0, "warmup reaches lr at W-1");
  is_close(moe_lr_at(&s, 10), 3e-3, 1e-15, 0, "decay starts at lr");
  is_close(moe_lr_at(&s, 60), 3e-3 * (0.1 + 0.9 * 0.5), 1e-15, 0, "half way: mean of lr, min");
  is_close(moe_lr_at(&s, 110), 3e-4, 1e-15, 0, "end: min_ratio * lr");
  is_close(moe_lr_at(&s, 5000), 3e-4, 1e-15, 0, "after the end: stays at the minimum");
  is_close(moe_lr_at(&s, -4), 3e-4, 1e-15, 0, "negative step treated as 0");
  moe_lr_schedule k = {MOE_LR_CONSTANT, 0.0125, 0, 0, 0};
  is_close(moe_lr_at(&k, 777), 0.0125, 0, 0, "constant");
  moe_lr_schedule z = {MOE_LR_WARMUP_COSINE, 1.0, 0, 0, 0.0};
  is_close(moe_lr_at(&z, 0), 1.0, 1e-15, 0, "no warmup, total 0: lr at step 0");
  is_close(moe_lr_at(&z, 1), 0.0, 1e-15, 0, "no warmup, total 0: minimum from step 1");
  s.total = 5;
  ok(moe_lr_check(&s) == MOE_EINVAL, "total < warmup rejected: %s", moe_last_error());
  s.total = 110;
  s.min_ratio = 1.5;
  ok(moe_lr_check(&s) == MOE_EINVAL, "min_ratio > 1 rejected");
  s.min_ratio = 0.1;
  s.lr = 0;
  ok(moe_lr_check(&s) == MOE_EINVAL, "lr = 0 rejected");
  ok(moe_lr_check(NULL) == MOE_EINVAL, "NULL schedule rejected");
  moe_lr_kind lk;
  ok(moe_lr_kind_parse("warmup_cosine", &lk) == 0 && lk == MOE_LR_WARMUP_COSINE,
     "parse warmup_cosine");
  ok(moe_lr_kind_parse("cosine", &lk) == MOE_EINVAL, "parse rejects an unknown schedule");
}

static void errors(void)
{
  moe_optim_config c = moe_optim_defaults(MOE_OPTIM_SGD);
  c.momentum = 1.0;
  ok(moe_optim_alloc(&c, 4) == NULL, "momentum 1 rejected: %s", moe_last_error());
  c.momentum = 0;
  c.nesterov = 1;
  ok(moe_optim_check(&c) == MOE_EINVAL, "nesterov without momentum rejected");
  c = moe_optim_defaults(MOE_OPTIM_ADAMW);
  c.eps = 0;
  ok(moe_optim_check(&c) == MOE_EINVAL, "eps = 0 rejected");
  c.eps = 1e-8;
  c.beta1 = -0.1;
  ok(moe_optim_check(&c) == MOE_EINVAL, "beta1 < 0 rejected");
  c.beta1 = 0.9;
  c.weight_decay = -1;
  ok(moe_optim_check(&c) == MOE_EINVAL, "negative weight decay rejected");
  c.weight_decay = 0;
  c.kind = (moe_optim_kind)5;
  ok(moe_optim_check(&c) == MOE_EINVAL, "unknown kind rejected");
  c = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&c, 2);
  float p[2] = {1, 2}, g[2] = {0.5f, 0.5f};
  ok(moe_optim_step(o, p, g, NAN) == MOE_EDOM, "NaN lr: MOE_EDOM");
  ok(moe_optim_step(o, p, g, -1e-3) == MOE_EINVAL, "negative lr rejected");
  ok(moe_optim_step(o, NULL, g, 1e-3) == MOE_EINVAL, "NULL params rejected");
  ok(moe_optim_step(NULL, p, g, 1e-3) == MOE_EINVAL, "NULL optimizer rejected");
  is_int(moe_optim_steps(o), 0, "failed steps do not count");
  moe_optim_free(o);
  moe_optim_free(NULL);
  moe_optim_kind k;
  ok(moe_optim_kind_parse("adamw", &k) == 0 && k == MOE_OPTIM_ADAMW, "parse adamw");
  ok(moe_optim_kind_parse("adam", &k) == MOE_EINVAL, "parse adam rejected (AdamW is meant)");
}

int main(void)
{
  sgd();
  adamw();
  bitwise();
  adamw_f64();
  schedules();
  errors();
  return tap_done();
}
