/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_golden.c — the layer, losses and optimizers against PyTorch.
 *
 * Fixtures in t/data/core/ come from t/gen_core_fixtures.py (an
 * independent token-by-token torch implementation, autograd gradients,
 * evaluated in float64 on float32 inputs).
 *
 * The layer is checked on every combination of gate preset (7, counting
 * softmax dense and Switch-style) x expert form (linear, FFN relu / gelu /
 * silu / tanh) x S in {0, 1, 2} x combine (paper, additive) = 210 cases,
 * with balance loss and expert biases in a fixed pattern, plus the five
 * configurations of the first golden test at wider shapes. Each case runs
 * twice: the float layer within float tolerances (normwise relative 2e-5
 * per quantity: max |got - want| / max |want|) and the double twin within
 * 1e-10, which only an exact match of the maths can meet; both must choose
 * exactly torch.topk's experts, in its order, and a biased gate's bias
 * must change some token's choice. One TAP line per case gives
 * the largest difference of each precision and the quantity it is in; a
 * failure lists every quantity over its tolerance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"

/* ---- a reader for the fixture format (see t/gen_core_fixtures.py) ----
 * Records "<name> <count>\n<values>", '#' comment lines, and for the layer
 * fixtures case headers "@ <label> <gate> T D E K S F kind act ebias
 * combine coef" that own the records after them. Files may be gzip'ed
 * (gzopen reads plain files unchanged). */

typedef struct {
  char name[32];
  size_t n;
  double *v;
} rec;

typedef struct {
  char label[96], gate[32];
  int T, D, E, K, S, F, kind, act, ebias, combine;
  double coef;
  int first, end; /* its records: r[first..end) */
} lcase;

typedef struct {
  rec *r;
  int n;
  lcase *c;
  int nc;
} fixture;

static void fixture_free(fixture *f)
{
  for (int i = 0; i < f->n; i++)
    free(f->r[i].v);
  free(f->r);
  free(f->c);
  memset(f, 0, sizeof *f);
}

/* The whole (decompressed) file as a NUL-terminated string, or NULL. */
static char *slurp(const char *path)
{
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    return NULL;
  size_t n = 0, cap = 1 << 16;
  char *buf = malloc(cap + 1);
  int got;
  while (buf && (got = gzread(gz, buf + n, (unsigned)(cap - n))) > 0) {
    n += (size_t)got;
    if (n == cap) {
      char *nb = realloc(buf, 2 * cap + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  int bad = gzclose(gz) != Z_OK;
  if (buf && bad) {
    free(buf);
    return NULL;
  }
  if (buf)
    buf[n] = 0;
  return buf;
}

static int fixture_load(const char *name, fixture *f)
{
  char rel[256];
  snprintf(rel, sizeof rel, "data/core/%s", name);
  memset(f, 0, sizeof *f);
  char *text = slurp(tap_datafile(rel)), *p = text;
  if (!text)
    return -1;
  int rcap = 0, ccap = 0;
  for (;;) {
    p += strspn(p, " \t\r\n");
    if (!*p)
      break;
    char *eol = strchr(p, '\n');
    if (*p == '#') {
      p = eol ? eol + 1 : p + strlen(p);
      continue;
    }
    /* a header line ("@ ..." or "<name> <count>"); cut it off so that
     * sscanf does not measure the rest of the file */
    if (!eol)
      goto bad;
    *eol = 0;
    if (*p == '@') {
      if (f->nc == ccap) {
        ccap = ccap ? 2 * ccap : 64;
        lcase *nc = realloc(f->c, ccap * sizeof *nc);
        if (!nc)
          goto bad;
        f->c = nc;
      }
      lcase *c = &f->c[f->nc];
      if (sscanf(p, "@ %95s %31s %d %d %d %d %d %d %d %d %d %d %lf", c->label, c->gate, &c->T,
                 &c->D, &c->E, &c->K, &c->S, &c->F, &c->kind, &c->act, &c->ebias, &c->combine,
                 &c->coef) != 13 || c->T < 1 || c->D < 1 || c->K < 1)
        goto bad;
      c->first = c->end = f->n;
      f->nc++;
      p = eol + 1;
      continue;
    }
    if (f->n == rcap) {
      rcap = rcap ? 2 * rcap : 64;
      rec *nr = realloc(f->r, rcap * sizeof *nr);
      if (!nr)
        goto bad;
      f->r = nr;
    }
    rec *r = &f->r[f->n];
    if (sscanf(p, "%31s %zu", r->name, &r->n) != 2 || r->n > 1000000)
      goto bad;
    p = eol + 1;
    r->v = malloc((r->n ? r->n : 1) * sizeof *r->v);
    if (!r->v)
      goto bad;
    f->n++;
    for (size_t i = 0; i < r->n; i++) {
      char *q;
      r->v[i] = strtod(p, &q);
      if (q == p)
        goto bad;
      p = q;
    }
    if (f->nc)
      f->c[f->nc - 1].end = f->n;
  }
  free(text);
  return 0;
bad:
  free(text);
  fixture_free(f);
  return -1;
}

static const rec *find(const fixture *f, int from, int to, const char *name)
{
  for (int i = from; i < to; i++)
    if (strcmp(f->r[i].name, name) == 0)
      return &f->r[i];
  return NULL;
}

static const rec *get(const fixture *f, const char *name)
{
  static double nan_v = NAN;
  static rec missing = {"", 1, &nan_v};
  const rec *r = find(f, 0, f->n, name);
  if (r)
    return r;
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

/* The fixtures' float32 inputs, exactly, as doubles: the file holds the
 * shortest decimal of each float32, which strtod reads as a nearby double,
 * so round through float. */
static void to_exact_double(const rec *r, double *out)
{
  for (size_t i = 0; i < r->n; i++)
    out[i] = (double)(float)r->v[i];
}

/* ---- layer cases ---- */

#define FLOAT_TOL 2e-5
#define DOUBLE_TOL 1e-10

static const char *expert_label[] = {"linear", "relu", "gelu", "silu", "tanh"};

/* One precision's comparison: the worst relative difference, the quantity
 * it is in, and the quantities over the tolerance. */
typedef struct {
  double tol, worst;
  const char *worst_q;
  char failed[256];
  int bad;
} verdict;

static void judge(verdict *v, const char *q, double e)
{
  if (!(e <= v->worst) || !v->worst_q) {
    v->worst = e;
    v->worst_q = q;
  }
  if (!(e <= v->tol)) {
    size_t l = strlen(v->failed);
    snprintf(v->failed + l, sizeof v->failed - l, " %s %.3g;", q, e);
    v->bad = 1;
  }
}

static void judge_fail(verdict *v, const char *what)
{
  size_t l = strlen(v->failed);
  snprintf(v->failed + l, sizeof v->failed - l, " %s;", what);
  v->bad = 1;
}

static void judge_idx(verdict *v, const int *got, const rec *want)
{
  int same = 1;
  for (size_t i = 0; i < want->n; i++)
    same &= got[i] == (int)want->v[i];
  if (!same)
    judge_fail(v, "chosen experts differ from torch.topk");
}

static double relerr(double got, double want)
{
  return fabs(got - want) / fmax(fabs(want), 1e-30);
}

/* The layer configuration of a case; MOE_EINVAL for an unknown preset. */
static int config_of(const lcase *k, moe_layer_config *c)
{
  memset(c, 0, sizeof *c);
  c->D = k->D;
  c->E = k->E;
  c->K = k->K;
  c->S = k->S;
  int rc = moe_gate_preset(k->gate, &c->gate);
  c->expert.kind = (moe_expert_kind)k->kind;
  c->expert.F = k->F;
  c->expert.act = (moe_act)k->act;
  c->expert.bias = k->ebias;
  c->combine = (moe_combine)k->combine;
  c->balance_coef = k->coef;
  return rc;
}

/* The records every case must have (bias only for biased gates). */
typedef struct {
  const rec *params, *bias, *x, *dy, *idx, *weights, *y, *aux, *grads, *dx;
} case_recs;

static int case_records(const fixture *f, const lcase *k, int use_bias, case_recs *r)
{
  const size_t TD = (size_t)k->T * k->D, TK = (size_t)k->T * k->K;
  r->params = find(f, k->first, k->end, "params");
  r->bias = find(f, k->first, k->end, "bias");
  r->x = find(f, k->first, k->end, "x");
  r->dy = find(f, k->first, k->end, "dy");
  r->idx = find(f, k->first, k->end, "idx");
  r->weights = find(f, k->first, k->end, "weights");
  r->y = find(f, k->first, k->end, "y");
  r->aux = find(f, k->first, k->end, "aux");
  r->grads = find(f, k->first, k->end, "grads");
  r->dx = find(f, k->first, k->end, "dx");
  return r->params && r->grads && r->grads->n == r->params->n && (!use_bias || r->bias) &&
         (!r->bias || r->bias->n == (size_t)k->E) && r->x && r->x->n == TD && r->dy &&
         r->dy->n == TD && r->y && r->y->n == TD && r->dx && r->dx->n == TD && r->idx &&
         r->idx->n == TK && r->weights && r->weights->n == TK && r->aux && r->aux->n == 1;
}

static void case_float(const lcase *k, const moe_layer_config *c, const case_recs *r, verdict *v)
{
  const size_t TD = (size_t)k->T * k->D;
  moe_layer *l = moe_layer_alloc(c, k->T);
  float *x = malloc(TD * sizeof *x), *y = malloc(TD * sizeof *y), *dy = malloc(TD * sizeof *dy),
        *dx = malloc(TD * sizeof *dx);
  int rc = !l || !x || !y || !dy || !dx || moe_layer_param_count(l) != r->params->n;
  if (!rc) {
    to_float(r->params, moe_layer_params(l));
    if (r->bias)
      to_float(r->bias, moe_layer_bias(l));
    to_float(r->x, x);
    to_float(r->dy, dy);
    rc = moe_layer_forward(l, k->T, x, y);
    moe_layer_zero_grad(l);
    rc |= moe_layer_backward(l, dy, dx);
  }
  if (rc) {
    judge(v, "setup/run", INFINITY);
  } else {
    judge_idx(v, moe_layer_chosen(l), r->idx);
    judge(v, "weights", relmax_f(moe_layer_weights(l), r->weights));
    judge(v, "y", relmax_f(y, r->y));
    judge(v, "aux", relerr(moe_layer_aux_loss(l), r->aux->v[0]));
    judge(v, "grads", relmax_f(moe_layer_grads(l), r->grads));
    judge(v, "dx", relmax_f(dx, r->dx));
  }
  free(x), free(y), free(dy), free(dx);
  moe_layer_free(l);
}

/* A biased case is only a test of the bias if the bias changes what is
 * chosen: without it, some token must pick a different set of experts.
 * Reruns the forward of l with the bias zeroed (y is scratch). */
static int bias_matters(moe_layer_f64 *l, const lcase *k, const double *x, double *y)
{
  const size_t TK = (size_t)k->T * k->K;
  int *with = malloc(TK * sizeof *with), differ = 0;
  if (!with)
    return 0;
  memcpy(with, moe_layer_chosen_f64(l), TK * sizeof *with);
  memset(moe_layer_bias_f64(l), 0, (size_t)k->E * sizeof(double));
  if (moe_layer_forward_f64(l, k->T, x, y) == MOE_OK) {
    const int *without = moe_layer_chosen_f64(l);
    for (int t = 0; t < k->T; t++)
      for (int a = 0; a < k->K; a++) {
        int found = 0;
        for (int b = 0; b < k->K; b++)
          found |= with[t * k->K + a] == without[t * k->K + b];
        differ |= !found;
      }
  }
  free(with);
  return differ;
}

static void case_double(const lcase *k, const moe_layer_config *c, const case_recs *r, verdict *v)
{
  const size_t TD = (size_t)k->T * k->D;
  moe_layer_f64 *l = moe_layer_alloc_f64(c, k->T);
  double *x = malloc(TD * sizeof *x), *y = malloc(TD * sizeof *y), *dy = malloc(TD * sizeof *dy),
         *dx = malloc(TD * sizeof *dx);
  int rc = !l || !x || !y || !dy || !dx || moe_layer_param_count_f64(l) != r->params->n;
  if (!rc) {
    to_exact_double(r->params, moe_layer_params_f64(l));
    if (r->bias)
      to_exact_double(r->bias, moe_layer_bias_f64(l));
    to_exact_double(r->x, x);
    to_exact_double(r->dy, dy);
    rc = moe_layer_forward_f64(l, k->T, x, y);
    moe_layer_zero_grad_f64(l);
    rc |= moe_layer_backward_f64(l, dy, dx);
  }
  if (rc) {
    judge(v, "setup/run", INFINITY);
  } else {
    judge_idx(v, moe_layer_chosen_f64(l), r->idx);
    judge(v, "weights", relmax_d(moe_layer_weights_f64(l), r->weights));
    judge(v, "y", relmax_d(y, r->y));
    judge(v, "aux", relerr(moe_layer_aux_loss_f64(l), r->aux->v[0]));
    judge(v, "grads", relmax_d(moe_layer_grads_f64(l), r->grads));
    judge(v, "dx", relmax_d(dx, r->dx));
    if (r->bias && !bias_matters(l, k, x, y))
      judge_fail(v, "the selection bias changes no token's choice");
  }
  free(x), free(y), free(dy), free(dx);
  moe_layer_free_f64(l);
}

/* Worst differences over all cases, for the summary. */
static double worst_f, worst_d;
static char worst_f_where[160], worst_d_where[160];

static void layer_case(const fixture *f, const lcase *k)
{
  moe_layer_config c;
  case_recs r;
  memset(&r, 0, sizeof r);
  if (config_of(k, &c) != MOE_OK || moe_layer_check(&c) != MOE_OK) {
    ok(0, "%s: configuration (%s)", k->label, moe_last_error());
    return;
  }
  if (!case_records(f, k, c.gate.use_bias, &r)) {
    ok(0, "%s: records missing or of the wrong size", k->label);
    return;
  }
  verdict vf = {FLOAT_TOL, 0, NULL, "", 0}, vd = {DOUBLE_TOL, 0, NULL, "", 0};
  case_float(k, &c, &r, &vf);
  case_double(k, &c, &r, &vd);
  ok(!vf.bad && !vd.bad, "%-40s float %.1e (%s), double %.1e (%s)", k->label, vf.worst,
     vf.worst_q, vd.worst, vd.worst_q);
  if (vf.bad)
    diag("  float (tolerance %.0e):%s", vf.tol, vf.failed);
  if (vd.bad)
    diag("  double (tolerance %.0e):%s", vd.tol, vd.failed);
  if (!(vf.worst <= worst_f)) {
    worst_f = vf.worst;
    snprintf(worst_f_where, sizeof worst_f_where, "%s %s", k->label, vf.worst_q);
  }
  if (!(vd.worst <= worst_d)) {
    worst_d = vd.worst;
    snprintf(worst_d_where, sizeof worst_d_where, "%s %s", k->label, vd.worst_q);
  }
}

/* The grid files, one per gate, in the generator's order. */
static const char *grid_gates[] = {"softmax",           "switch",       "softmax_topk", "sigmoid_topk",
                                   "sigmoid_norm_topk", "sigmoid_norm", "deepseek_v3"};
#define N_GATES ((int)(sizeof grid_gates / sizeof grid_gates[0]))

static void layers(void)
{
  /* seen[gate][expert form][combine][S]: the grid must be complete */
  int seen[N_GATES][5][2][3];
  memset(seen, 0, sizeof seen);
  int cases = 0;
  for (int g = 0; g < N_GATES; g++) {
    char file[128];
    snprintf(file, sizeof file, "layer_grid_%s.txt.gz", grid_gates[g]);
    fixture f;
    int rc = fixture_load(file, &f);
    if (!ok(rc == 0 && f.nc > 0, "load %s: %d cases", file, f.nc))
      continue;
    for (int i = 0; i < f.nc; i++) {
      const lcase *k = &f.c[i];
      int x = k->kind == MOE_EXPERT_LINEAR ? 0 : 1 + k->act;
      if (x >= 0 && x < 5 && k->combine >= 0 && k->combine < 2 && k->S >= 0 && k->S < 3)
        seen[g][x][k->combine][k->S]++;
      layer_case(&f, k);
      cases++;
    }
    fixture_free(&f);
  }
  int wrong = 0;
  for (int g = 0; g < N_GATES; g++)
    for (int x = 0; x < 5; x++)
      for (int comb = 0; comb < 2; comb++)
        for (int S = 0; S < 3; S++)
          if (seen[g][x][comb][S] != 1 && wrong++ < 8)
            diag("  %s/%s/S%d/%s: %d cases", grid_gates[g], expert_label[x], S,
                 comb ? "additive" : "paper", seen[g][x][comb][S]);
  if (wrong > 8)
    diag("  ... and %d more combinations", wrong - 8);
  ok(wrong == 0 && cases == N_GATES * 5 * 2 * 3,
     "grid complete: %d gates x 5 expert forms x S 0..2 x 2 combines, each once (%d cases)",
     N_GATES, cases);

  fixture f;
  int rc = fixture_load("layer_wide.txt.gz", &f);
  if (ok(rc == 0 && f.nc == 5, "load layer_wide.txt.gz: %d cases", f.nc)) {
    for (int i = 0; i < f.nc; i++)
      layer_case(&f, &f.c[i]);
    fixture_free(&f);
  }
  diag("largest difference, float:  %.2g (%s)", worst_f, worst_f_where);
  diag("largest difference, double: %.2g (%s)", worst_d, worst_d_where);
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
  double pd[64];
  moe_optim *o = moe_optim_alloc(&c, n);
  moe_optim_f64 *od = moe_optim_alloc_f64(&c, n);
  to_float(get(&f, "p0"), p);
  memcpy(pd, get(&f, "p0")->v, n * sizeof *pd);
  for (int s = 0; s < steps; s++) {
    char gname[16], pname[16];
    snprintf(gname, sizeof gname, "g%d", s);
    snprintf(pname, sizeof pname, "p%d", s + 1);
    to_float(get(&f, gname), g);
    int rc = moe_optim_step(o, p, g, num(&f, "lr"));
    double e = relmax_f(p, get(&f, pname));
    ok(rc == 0 && e < 1e-6, "%s step %d matches torch.optim (rel %.2g)", file, s + 1, e);
    /* the double optimizer on the same (float-valued) gradients: torch ran in
     * float32, so it agrees to float rounding, within the same bound */
    rc = moe_optim_step_f64(od, pd, get(&f, gname)->v, num(&f, "lr"));
    e = relmax_d(pd, get(&f, pname));
    ok(rc == 0 && e < 1e-6, "%s step %d, double optimizer (rel %.2g)", file, s + 1, e);
  }
  moe_optim_free(o);
  moe_optim_free_f64(od);
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
  moe_token y[64];
  to_float(get(&f, "logits"), logits);
  for (int t = 0; t < T; t++)
    y[t] = (moe_token)get(&f, "targets")->v[t];
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
