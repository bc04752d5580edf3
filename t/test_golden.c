/* test_golden.c — the layer, losses and optimizers against PyTorch.
 *
 * Fixtures in t/data/core/ come from t/gen_core_fixtures.py (an
 * independent token-by-token torch implementation, autograd gradients).
 * Each layer fixture is checked twice: the float code within float
 * tolerances (normwise relative 2e-5) and the double twin within 1e-10,
 * which only an exact match of the maths can meet. Every comparison prints
 * the max difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"
#include "tap.h"

/* ---- a tiny reader for the "<name> <count>\n<values>" format ---- */

typedef struct {
  char name[32];
  size_t n;
  double *v;
} rec;

typedef struct {
  rec r[64];
  int n;
} fixture;

static void fixture_free(fixture *f)
{
  for (int i = 0; i < f->n; i++)
    free(f->r[i].v);
  f->n = 0;
}

static int fixture_load(const char *name, fixture *f)
{
  char rel[256];
  snprintf(rel, sizeof rel, "data/core/%s", name);
  FILE *fp = fopen(tap_datafile(rel), "r");
  f->n = 0;
  if (!fp)
    return -1;
  char line[256];
  int c;
  while ((c = fgetc(fp)) != EOF) {
    if (c == '#') {
      if (!fgets(line, sizeof line, fp))
        break;
      continue;
    }
    if (c == '\n' || c == ' ')
      continue;
    ungetc(c, fp);
    rec *r = &f->r[f->n];
    if (f->n == 64 || fscanf(fp, "%31s %zu", r->name, &r->n) != 2)
      goto bad;
    r->v = malloc((r->n ? r->n : 1) * sizeof *r->v);
    f->n++;
    for (size_t i = 0; i < r->n; i++)
      if (fscanf(fp, "%lf", &r->v[i]) != 1)
        goto bad;
  }
  fclose(fp);
  return 0;
bad:
  fclose(fp);
  fixture_free(f);
  return -1;
}

static const rec *get(const fixture *f, const char *name)
{
  static double nan_v = NAN;
  static rec missing = {"", 1, &nan_v};
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->r[i].name, name) == 0)
      return &f->r[i];
  diag("fixture has no record '%s'", name);
  return &missing;
}

static double num(const fixture *f, const char *name) { return get(f, name)->v[0]; }

/* max |got - want| / max(max |want|, 1e-30), float or double got */
static double relmax_f(const float *got, const rec *want)
{
  double m = 0, s = 0;
  for (size_t i = 0; i < want->n; i++) {
    double d = fabs((double)got[i] - want->v[i]);
    if (!(d <= m))
      m = d;
    s = fmax(s, fabs(want->v[i]));
  }
  return m / fmax(s, 1e-30);
}

static double relmax_d(const double *got, const rec *want)
{
  double m = 0, s = 0;
  for (size_t i = 0; i < want->n; i++) {
    double d = fabs(got[i] - want->v[i]);
    if (!(d <= m))
      m = d;
    s = fmax(s, fabs(want->v[i]));
  }
  return m / fmax(s, 1e-30);
}

static void to_float(const rec *r, float *out)
{
  for (size_t i = 0; i < r->n; i++)
    out[i] = (float)r->v[i];
}

/* ---- layer fixtures ---- */

static moe_layer_config config_of(const fixture *f)
{
  moe_layer_config c;
  memset(&c, 0, sizeof c);
  c.D = (int)num(f, "D");
  c.E = (int)num(f, "E");
  c.K = (int)num(f, "K");
  c.S = (int)num(f, "S");
  c.gate.score = (moe_score_fn)num(f, "score");
  c.gate.normalize = (int)num(f, "normalize");
  c.gate.route_scale = num(f, "route_scale");
  c.gate.use_bias = (int)num(f, "use_bias");
  c.expert.kind = (moe_expert_kind)num(f, "kind");
  c.expert.F = (int)num(f, "F");
  c.expert.act = (moe_act)num(f, "act");
  c.expert.bias = (int)num(f, "ebias");
  c.combine = (moe_combine)num(f, "combine");
  c.balance_coef = num(f, "coef");
  return c;
}

static void layer_float(const char *name, const fixture *f)
{
  moe_layer_config c = config_of(f);
  const int T = (int)num(f, "T");
  moe_layer *l = moe_layer_alloc(&c, T);
  const rec *params = get(f, "params");
  if (!ok(l && moe_layer_param_count(l) == params->n, "%s float: slab size %zu", name, params->n)) {
    moe_layer_free(l);
    return;
  }
  to_float(params, moe_layer_params(l));
  to_float(get(f, "bias"), moe_layer_bias(l));
  const size_t TD = (size_t)T * c.D;
  float *x = malloc(TD * sizeof *x), *y = malloc(TD * sizeof *y), *dy = malloc(TD * sizeof *dy),
        *dx = malloc(TD * sizeof *dx);
  to_float(get(f, "x"), x);
  to_float(get(f, "dy"), dy);
  int rc = moe_layer_forward(l, T, x, y);
  moe_layer_zero_grad(l);
  rc |= moe_layer_backward(l, dy, dx);
  ok(rc == 0, "%s float: forward and backward run", name);
  const rec *idx = get(f, "idx");
  int same = 1;
  for (size_t i = 0; i < idx->n; i++)
    same &= moe_layer_chosen(l)[i] == (int)idx->v[i];
  ok(same, "%s float: chosen experts identical to torch.topk", name);
  double e;
  e = relmax_f(y, get(f, "y"));
  ok(e < 2e-5, "%s float: y (rel %.2g)", name, e);
  e = relmax_f(moe_layer_weights(l), get(f, "weights"));
  ok(e < 2e-5, "%s float: weights (rel %.2g)", name, e);
  is_close(moe_layer_aux_loss(l), num(f, "aux"), 1e-9, 2e-5, "%s float: balance loss", name);
  e = relmax_f(moe_layer_grads(l), get(f, "grads"));
  ok(e < 2e-5, "%s float: all parameter gradients (rel %.2g)", name, e);
  e = relmax_f(dx, get(f, "dx"));
  ok(e < 2e-5, "%s float: dx (rel %.2g)", name, e);
  free(x), free(y), free(dy), free(dx);
  moe_layer_free(l);
}

static void layer_double(const char *name, const fixture *f)
{
  moe_layer_config c = config_of(f);
  const int T = (int)num(f, "T");
  moe_layer_f64 *l = moe_layer_alloc_f64(&c, T);
  const rec *params = get(f, "params");
  if (!ok(l && moe_layer_param_count_f64(l) == params->n, "%s double: slab size", name)) {
    moe_layer_free_f64(l);
    return;
  }
  memcpy(moe_layer_params_f64(l), params->v, params->n * sizeof(double));
  memcpy(moe_layer_bias_f64(l), get(f, "bias")->v, (size_t)c.E * sizeof(double));
  const size_t TD = (size_t)T * c.D;
  double *y = malloc(TD * sizeof *y), *dx = malloc(TD * sizeof *dx);
  int rc = moe_layer_forward_f64(l, T, get(f, "x")->v, y);
  moe_layer_zero_grad_f64(l);
  rc |= moe_layer_backward_f64(l, get(f, "dy")->v, dx);
  double ey = relmax_d(y, get(f, "y")), eg = relmax_d(moe_layer_grads_f64(l), get(f, "grads"));
  double ex = relmax_d(dx, get(f, "dx"));
  ok(rc == 0 && ey < 1e-10 && eg < 1e-10 && ex < 1e-10,
     "%s double: y %.2g, gradients %.2g, dx %.2g", name, ey, eg, ex);
  is_close(moe_layer_aux_loss_f64(l), num(f, "aux"), 1e-15, 1e-10, "%s double: balance loss", name);
  free(y), free(dx);
  moe_layer_free_f64(l);
}

static void layers(void)
{
  static const char *names[] = {"softmax_topk_relu_paper_s1", "deepseek_v3_silu_additive_s2",
                                "softmax_dense_linear_s0", "sigmoid_topk_gelu_paper_s2_aux",
                                "sigmoid_norm_tanh_additive_s1_aux"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char file[128];
    snprintf(file, sizeof file, "layer_%s.txt", names[i]);
    fixture f;
    if (!ok(fixture_load(file, &f) == 0, "load %s", file))
      continue;
    layer_float(names[i], &f);
    layer_double(names[i], &f);
    fixture_free(&f);
  }
}

/* ---- optimizers ---- */

static void optim(const char *file)
{
  fixture f;
  if (!ok(fixture_load(file, &f) == 0, "load %s", file))
    return;
  moe_optim_config c = moe_optim_defaults((moe_optim_kind)num(&f, "kind"));
  c.weight_decay = num(&f, "wd");
  c.momentum = num(&f, "momentum");
  c.nesterov = (int)num(&f, "nesterov");
  c.beta1 = num(&f, "beta1");
  c.beta2 = num(&f, "beta2");
  c.eps = num(&f, "eps");
  const size_t n = (size_t)num(&f, "n");
  const int steps = (int)num(&f, "steps");
  float p[64], g[64];
  moe_optim *o = moe_optim_alloc(&c, n);
  to_float(get(&f, "p0"), p);
  for (int s = 0; s < steps; s++) {
    char gname[16], pname[16];
    snprintf(gname, sizeof gname, "g%d", s);
    snprintf(pname, sizeof pname, "p%d", s + 1);
    to_float(get(&f, gname), g);
    int rc = moe_optim_step(o, p, g, num(&f, "lr"));
    double e = relmax_f(p, get(&f, pname));
    ok(rc == 0 && e < 1e-6, "%s step %d matches torch.optim (rel %.2g)", file, s + 1, e);
  }
  moe_optim_free(o);
  fixture_free(&f);
}

/* ---- losses ---- */

static void losses(void)
{
  fixture f;
  if (!ok(fixture_load("loss.txt", &f) == 0, "load loss.txt"))
    return;
  const int T = (int)num(&f, "T"), V = (int)num(&f, "V");
  const size_t n = (size_t)num(&f, "n");
  float logits[256], d[256], pred[64], target[64], dp[64];
  int y[64];
  to_float(get(&f, "logits"), logits);
  for (int t = 0; t < T; t++)
    y[t] = (int)get(&f, "targets")->v[t];
  double L;
  int rc = moe_loss_ce(T, V, logits, y, &L, d);
  is_close(rc ? NAN : L, num(&f, "ce"), 0, 1e-6, "cross-entropy value (float)");
  double e = relmax_f(d, get(&f, "dlogits"));
  ok(e < 1e-6, "cross-entropy gradient (float, rel %.2g)", e);
  double dd[256];
  rc = moe_loss_ce_f64(T, V, get(&f, "logits")->v, y, &L, dd);
  is_close(rc ? NAN : L, num(&f, "ce"), 0, 1e-13, "cross-entropy value (double)");
  e = relmax_d(dd, get(&f, "dlogits"));
  ok(e < 1e-13, "cross-entropy gradient (double, rel %.2g)", e);
  to_float(get(&f, "pred"), pred);
  to_float(get(&f, "target"), target);
  rc = moe_loss_mse(n, pred, target, &L, dp);
  is_close(rc ? NAN : L, num(&f, "mse"), 0, 1e-6, "MSE value");
  e = relmax_f(dp, get(&f, "dpred"));
  ok(e < 1e-6, "MSE gradient (rel %.2g)", e);
  fixture_free(&f);
}

int main(void)
{
  layers();
  optim("optim_adamw.txt");
  optim("optim_sgd.txt");
  losses();
  return tap_done();
}
