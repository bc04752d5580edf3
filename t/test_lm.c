/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_lm.c — the transformer components and the MoE language model
 * (moe/nn.h, moe/lm.h): finite-difference gradients in double over the
 * whole model (every variant and gate preset, S = 0 and 2, both combine
 * rules, tied and untied head) and over a non-causal block; the PyTorch
 * golden fixture t/data/lm/lm_golden.txt.gz (logits, loss, every gradient,
 * three AdamW steps with clipping); checkpoints (round trip bit for bit,
 * truncated, corrupted and foreign files); determinism; evaluation; and
 * the error paths (token id >= V, context overflow, NaN). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <zlib.h>

#include "moe/moe.h"
#include "nn/private.h"
#include "tap.h"
#include "fdcheck.h"

enum { V = 11, CTX = 5, DM = 8, NL = 2, NH = 2, B = 2 };

/* ---- finite differences over the whole model ---- */

typedef struct {
  moe_lm_f64 *m;
  int T;
  moe_token x[B * CTX], y[B * CTX];
  int *idx0; /* the selections at the base point, per layer */
  int K;
} fdctx;

static int same_routing(fdctx *c)
{
  const int N = B * c->T;
  for (int l = 0; l < NL; l++)
    if (memcmp(moe_layer_chosen_f64(moe_lm_ffn_f64(c->m, l)), c->idx0 + (size_t)l * N * c->K,
               sizeof(int) * N * c->K))
      return 0;
  return 1;
}

static double objective(void *p)
{
  fdctx *c = p;
  double loss;
  if (moe_lm_forward_f64(c->m, B, c->T, c->x, c->y, &loss))
    return NAN;
  if (!same_routing(c))
    return NAN; /* a perturbation crossed a top-K boundary: the check is void */
  return loss;
}

static void rand_tokens(gsl_rng *r, moe_token *t, size_t n)
{
  for (size_t i = 0; i < n; i++)
    t[i] = (uint32_t)gsl_rng_uniform_int(r, V);
}

static void fd_case(const char *label, const moe_layer_config *ffn, int tie, unsigned long seed)
{
  moe_lm_config cfg = moe_lm_config_make(V, CTX, DM, NL, NH, ffn);
  cfg.tie = tie;
  fdctx c = {0};
  c.m = moe_lm_alloc_f64(&cfg, B);
  if (!ok(c.m != NULL, "%s: alloc (%s)", label, moe_last_error()))
    return;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  moe_lm_init_params_f64(c.m, r);
  /* larger than the GPT-2 init so every path carries a visible gradient */
  double *p = moe_lm_params_f64(c.m);
  const size_t n = moe_lm_param_count_f64(c.m);
  for (size_t i = 0; i < n; i++)
    p[i] += gsl_ran_gaussian(r, 0.3);
  if (ffn->gate.use_bias)
    for (int l = 0; l < NL; l++)
      for (int e = 0; e < ffn->E; e++)
        moe_layer_bias_f64(moe_lm_ffn_f64(c.m, l))[e] = gsl_ran_gaussian(r, 0.2);
  c.T = CTX - 1; /* shorter than the context: positions 0..T-1 only */
  c.K = ffn->K;
  rand_tokens(r, c.x, B * c.T);
  rand_tokens(r, c.y, B * c.T);
  double loss;
  int rc = moe_lm_forward_f64(c.m, B, c.T, c.x, c.y, &loss);
  ok(rc == 0 && isfinite(loss), "%s: forward, loss %.6f (aux %.3g)", label, loss,
     moe_lm_aux_loss_f64(c.m));
  c.idx0 = malloc(sizeof(int) * NL * B * c.T * c.K);
  for (int l = 0; l < NL; l++)
    memcpy(c.idx0 + (size_t)l * B * c.T * c.K, moe_layer_chosen_f64(moe_lm_ffn_f64(c.m, l)),
           sizeof(int) * B * c.T * c.K);
  moe_lm_zero_grad_f64(c.m);
  rc = moe_lm_backward_f64(c.m);
  double *ga = malloc(n * sizeof *ga);
  memcpy(ga, moe_lm_grads_f64(c.m), n * sizeof *ga);
  double err = fd_check(objective, &c, p, ga, n, FD_H);
  ok(rc == 0 && err < 1e-6, "%s: %zu parameter gradients match finite differences (worst %.2g)",
     label, n, err);
  free(ga);
  free(c.idx0);
  gsl_rng_free(r);
  moe_lm_free_f64(c.m);
}

/* Two backwards without zeroing add up (moe_lm_backward ACCUMULATES):
 * the head, or with a tied head the embedding it shares with the input,
 * receives both batches. */
static void accumulation(int tie)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, "ds_v3_bias", (moe_variant_sizes){.D = DM, .F = 6, .N = 6, .K = 4, .shared = 2});
  f.balance_coef = 0.01;
  f.zloss_coef = 0.003;
  moe_lm_config cfg = moe_lm_config_make(V, CTX, DM, NL, NH, &f);
  cfg.tie = tie;
  moe_lm_f64 *m = moe_lm_alloc_f64(&cfg, B);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 77 + tie);
  moe_lm_init_params_f64(m, r);
  const size_t n = moe_lm_param_count_f64(m);
  double *p = moe_lm_params_f64(m);
  for (size_t i = 0; i < n; i++)
    p[i] += gsl_ran_gaussian(r, 0.3);
  moe_token x[2][B * CTX], y[2][B * CTX];
  for (int b = 0; b < 2; b++) {
    rand_tokens(r, x[b], B * CTX);
    rand_tokens(r, y[b], B * CTX);
  }
  double *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2), loss;
  int rc = 0;
  for (int b = 0; b < 2; b++) {
    moe_lm_zero_grad_f64(m);
    rc |= moe_lm_forward_f64(m, B, CTX, x[b], y[b], &loss) | moe_lm_backward_f64(m);
    memcpy(b ? g2 : g1, moe_lm_grads_f64(m), n * sizeof *g1);
  }
  moe_lm_zero_grad_f64(m);
  for (int b = 0; b < 2; b++)
    rc |= moe_lm_forward_f64(m, B, CTX, x[b], y[b], &loss) | moe_lm_backward_f64(m);
  const double *g12 = moe_lm_grads_f64(m);
  size_t moved;
  double err = accum_check(g1, g2, g12, n, &moved);
  /* the head alone (wte when tied), so a failure says where */
  const size_t nh = (size_t)V * DM, off = tie ? 0 : n - nh; /* wte first, head last */
  double errh = accum_check(g1 + off, g2 + off, g12 + off, nh, NULL);
  ok(rc == 0 && err < 1e-12 && errh < 1e-12 && moved > n / 2,
     "%s head: two backwards without zeroing add up (%zu of %zu gradients; worst %.2g, head %.2g)",
     tie ? "tied" : "untied", moved, n, err, errh);
  /* the same batch twice: twice the gradient */
  moe_lm_zero_grad_f64(m);
  for (int b = 0; b < 2; b++)
    rc |= moe_lm_forward_f64(m, B, CTX, x[0], y[0], &loss) | moe_lm_backward_f64(m);
  err = accum_check(g1, g1, g12, n, NULL);
  ok(rc == 0 && err < 1e-12, "%s head: one batch twice is twice its gradient (worst %.2g)",
     tie ? "tied" : "untied", err);
  free(g1);
  free(g2);
  gsl_rng_free(r);
  moe_lm_free_f64(m);
}

static void fd_all(void)
{
  char label[160];
  /* every variant, both combine rules, tied and untied (S = 0 for smoe*,
   * dense; S = 2 for ds_*) */
  for (int v = 0; moe_layer_variant_name(v); v++)
    for (int comb = 0; comb < 2; comb++)
      for (int tie = 0; tie < 2; tie++) {
        moe_layer_config f;
        const char *name = moe_layer_variant_name(v);
        if (moe_layer_config_variant(&f, name, (moe_variant_sizes){.D = DM, .F = 5, .N = 6, .K = 4, .shared = 2}))
          continue;
        f.combine = comb ? MOE_COMBINE_PAPER : MOE_COMBINE_ADDITIVE;
        f.balance_coef = f.E > 1 ? 0.1 : 0;
        snprintf(label, sizeof label, "fd %s/%s/%s", name, comb ? "paper" : "additive",
                 tie ? "tied" : "untied");
        fd_case(label, &f, tie, 100 + 4 * v + 2 * comb + tie);
      }
  /* every gate preset, S = 0 and 2 */
  const char *g;
  for (int i = 0; (g = moe_gate_preset_name(i)); i++)
    for (int S = 0; S <= 2; S += 2) {
      int dense = !strcmp(g, "softmax") || !strcmp(g, "sigmoid_norm");
      moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = DM, .E = 4, .K = dense ? 4 : 2, .S = S, .F = 5});
      moe_gate_preset(g, &f.gate);
      f.balance_coef = 0.05;
      f.combine = S ? MOE_COMBINE_PAPER : MOE_COMBINE_ADDITIVE;
      snprintf(label, sizeof label, "fd gate %s S=%d", g, S);
      fd_case(label, &f, 1, 300 + 2 * i + S);
    }
}

/* a non-causal block (the vision track's use) and the attention kernel */
typedef struct {
  moe_block_f64 *b;
  int causal;
  double x[B * CTX * DM], y[B * CTX * DM], R[B * CTX * DM];
} bctx;

static double block_objective(void *p)
{
  bctx *c = p;
  if (moe_block_forward_f64(c->b, B, CTX, c->x, c->y))
    return NAN;
  double L = 0;
  for (int i = 0; i < B * CTX * DM; i++)
    L += c->y[i] * c->R[i];
  return L;
}

static void fd_block(int causal)
{
  moe_block_config bc = {DM, NH, causal, moe_layer_config_default((moe_layer_sizes){.D = DM, .E = 4, .K = 4, .S = 1, .F = 6})};
  moe_gate_preset("softmax", &bc.ffn.gate); /* dense gate: no top-K boundary */
  bctx c = {0};
  c.b = moe_block_alloc_f64(&bc, B, CTX, NULL, NULL);
  if (!ok(c.b != NULL, "block causal=%d: alloc", causal))
    return;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 7 + causal);
  moe_block_init_params_f64(c.b, r, 0.3, 0.3);
  for (int i = 0; i < B * CTX * DM; i++) {
    c.x[i] = gsl_ran_gaussian(r, 1);
    c.R[i] = gsl_ran_gaussian(r, 1);
  }
  block_objective(&c);
  moe_block_zero_grad_f64(c.b);
  double dx[B * CTX * DM];
  int rc = moe_block_backward_f64(c.b, c.R, dx);
  const size_t n = moe_block_param_count(&bc);
  double *ga = malloc(n * sizeof *ga);
  memcpy(ga, moe_block_grads_f64(c.b), n * sizeof *ga);
  double ep = fd_check(block_objective, &c, moe_block_params_f64(c.b), ga, n, FD_H);
  double ex = fd_check(block_objective, &c, c.x, dx, B * CTX * DM, FD_H);
  ok(rc == 0 && ep < 1e-6 && ex < 1e-6,
     "block causal=%d: parameter and input gradients match finite differences (%.2g, %.2g)",
     causal, ep, ex);
  /* causality: changing the last position leaves the earlier outputs alone */
  double y0[B * CTX * DM];
  block_objective(&c);
  memcpy(y0, c.y, sizeof y0);
  for (int d = 0; d < DM; d++)
    c.x[(CTX - 1) * DM + d] += 0.5;
  block_objective(&c);
  int same = !memcmp(y0, c.y, sizeof(double) * (CTX - 1) * DM);
  ok(causal ? same : !same, "block causal=%d: earlier positions %s the last one", causal,
     causal ? "do not see" : "see");
  free(ga);
  gsl_rng_free(r);
  moe_block_free_f64(c.b);
}

/* ---- golden fixture ---- */

typedef struct {
  char name[32];
  size_t n;
  double *v;
} rec;

typedef struct {
  char label[64];
  rec *r;
  int nr;
} gcase;

/* the whole (gzip'ed) file as a string */
static char *slurp(const char *path)
{
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    return NULL;
  size_t n = 0, cap = 1 << 20;
  char *s = malloc(cap);
  int got;
  while (s && (got = gzread(gz, s + n, (unsigned)(cap - n - 1))) > 0) {
    n += (size_t)got;
    if (cap - n < 2) {
      char *q = realloc(s, cap *= 2);
      if (!q) {
        free(s);
        s = NULL;
      }
      s = q;
    }
  }
  gzclose(gz);
  if (s)
    s[n] = 0;
  return s;
}

/* '#' comments; "@ label" starts a case; "name count" then count numbers. */
static int load_cases(const char *path, gcase *cs, int max)
{
  char *s = slurp(path), *p = s;
  if (!s)
    return -1;
  int nc = -1;
  while (*p) {
    while (*p == ' ' || *p == '\n')
      p++;
    if (!*p)
      break;
    if (*p == '#') {
      while (*p && *p != '\n')
        p++;
      continue;
    }
    if (*p == '@') {
      if (++nc >= max)
        break;
      sscanf(p + 1, "%63s", cs[nc].label);
      cs[nc].r = NULL;
      cs[nc].nr = 0;
      while (*p && *p != '\n')
        p++;
      continue;
    }
    if (nc < 0)
      break;
    gcase *c = &cs[nc];
    c->r = realloc(c->r, sizeof(rec) * (c->nr + 1));
    rec *r = &c->r[c->nr++];
    int used = 0;
    if (sscanf(p, "%31s %zu%n", r->name, &r->n, &used) != 2)
      break;
    p += used;
    r->v = malloc(sizeof(double) * (r->n ? r->n : 1));
    for (size_t i = 0; i < r->n; i++)
      r->v[i] = strtod(p, &p);
  }
  free(s);
  return nc + 1;
}

static const rec *get(const gcase *c, const char *name)
{
  for (int i = 0; i < c->nr; i++)
    if (!strcmp(c->r[i].name, name))
      return &c->r[i];
  static double nan_v = NAN;
  static rec missing = {"", 0, &nan_v};
  return &missing;
}

/* max |got − want| / (1 + |want|) */
static double maxdiff_f(const float *got, const rec *w)
{
  double m = 0;
  for (size_t i = 0; i < w->n; i++) {
    double e = fabs((double)got[i] - w->v[i]) / (1 + fabs(w->v[i]));
    if (!(e <= m))
      m = e;
  }
  return w->n ? m : NAN;
}

static double maxdiff_d(const double *got, const rec *w)
{
  double m = 0;
  for (size_t i = 0; i < w->n; i++) {
    double e = fabs(got[i] - w->v[i]) / (1 + fabs(w->v[i]));
    if (!(e <= m))
      m = e;
  }
  return w->n ? m : NAN;
}

static int golden_config(const gcase *c, moe_lm_config *cfg, int *Bg, int *Tg)
{
  const rec *k = get(c, "config");
  if (k->n != 20)
    return -1;
  const double *v = k->v;
  moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = (int)v[2], .E = (int)v[6], .K = (int)v[7], .S = (int)v[8], .F = (int)v[13]});
  f.gate.score = (moe_score_fn)v[9];
  f.gate.normalize = (int)v[10];
  f.gate.use_bias = (int)v[11];
  f.gate.route_scale = v[12];
  f.expert.act = (moe_act)v[14];
  f.combine = (moe_combine)v[15];
  f.balance_coef = v[16];
  *cfg = moe_lm_config_make((int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], &f);
  cfg->tie = (int)v[5];
  *Bg = (int)v[17];
  *Tg = (int)v[18];
  return 0;
}

static void golden(void)
{
  char path[1024];
  const char *top = getenv("top_srcdir");
  snprintf(path, sizeof path, "%s/t/data/lm/lm_golden.txt.gz", top ? top : ".");
  gcase cs[16];
  int nc = load_cases(path, cs, 16);
  if (!ok(nc >= 4, "golden: %d cases in %s", nc, path))
    return;
  for (int ci = 0; ci < nc; ci++) {
    gcase *c = &cs[ci];
    moe_lm_config cfg;
    int Bg = 0, Tg = 0;
    if (!ok(golden_config(c, &cfg, &Bg, &Tg) == 0, "golden %s: config", c->label))
      continue;
    const rec *rp = get(c, "params"), *rx = get(c, "x"), *ry = get(c, "y");
    const size_t N = (size_t)Bg * Tg;
    moe_token *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (size_t i = 0; i < N; i++) {
      x[i] = (uint32_t)rx->v[i];
      y[i] = (uint32_t)ry->v[i];
    }
    /* float model */
    moe_lm *m = moe_lm_alloc(&cfg, Bg);
    ok(m && moe_lm_param_count(m) == rp->n, "golden %s: %zu parameters in the slab", c->label,
       rp->n);
    if (!m || moe_lm_param_count(m) != rp->n) {
      moe_lm_free(m);
      continue;
    }
    float *p = moe_lm_params(m);
    for (size_t i = 0; i < rp->n; i++)
      p[i] = (float)rp->v[i];
    const rec *rb = get(c, "bias");
    if (cfg.ffn.gate.use_bias)
      for (int l = 0; l < cfg.L; l++)
        for (int e = 0; e < cfg.ffn.E; e++)
          moe_layer_bias(moe_lm_ffn(m, l))[e] = (float)rb->v[(size_t)l * cfg.ffn.E + e];
    double loss;
    int rc = moe_lm_forward(m, Bg, Tg, x, y, &loss);
    double el = maxdiff_f(moe_lm_logits(m), get(c, "logits"));
    double wl = get(c, "loss")->v[0], wa = get(c, "aux")->v[0];
    ok(rc == 0 && el < 2e-5, "golden %s float: logits (max diff %.2g)", c->label, el);
    is_close(loss, wl, 1e-5, 1e-5, "golden %s float: loss %.6f (aux %.3g)", c->label, loss,
             moe_lm_aux_loss(m));
    is_close(moe_lm_aux_loss(m), wa, 1e-6, 1e-5, "golden %s float: aux loss", c->label);
    moe_lm_zero_grad(m);
    rc = moe_lm_backward(m);
    double eg = maxdiff_f(moe_lm_grads(m), get(c, "grads"));
    ok(rc == 0 && eg < 2e-5, "golden %s float: all %zu gradients (max diff %.2g)", c->label,
       rp->n, eg);
    /* three AdamW steps with clipping on the warmup-cosine schedule */
    const rec *ro = get(c, "optim");
    moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
    oc.weight_decay = ro->v[0];
    moe_lr_schedule sch = {MOE_LR_WARMUP_COSINE, ro->v[1], (long)ro->v[2], (long)ro->v[3],
                           ro->v[4]};
    const double clip = ro->v[5];
    moe_optim *o = moe_optim_alloc(&oc, moe_lm_param_count(m));
    const rec *rl = get(c, "step_loss"), *rn = get(c, "step_norm");
    double el_max = 0, en_max = 0;
    for (int s = 0; s < 3; s++) {
      double l2, gn;
      rc |= moe_lm_forward(m, Bg, Tg, x, y, &l2);
      moe_lm_zero_grad(m);
      rc |= moe_lm_backward(m);
      rc |= moe_lm_step(m, o, &sch, clip, &gn);
      el_max = fmax(el_max, fabs(l2 - rl->v[s]) / (1 + fabs(rl->v[s])));
      en_max = fmax(en_max, fabs(gn - rn->v[s]) / (1 + fabs(rn->v[s])));
    }
    double ep = maxdiff_f(moe_lm_params(m), get(c, "params_after"));
    ok(rc == 0 && el_max < 2e-5 && en_max < 1e-4 && ep < 1e-4,
       "golden %s float: 3 AdamW steps, clip %.2g: losses %.2g, norms %.2g, params %.2g",
       c->label, clip, el_max, en_max, ep);
    moe_optim_free(o);
    moe_lm_free(m);

    /* double twin: ~1e-12 agreement */
    moe_lm_f64 *md = moe_lm_alloc_f64(&cfg, Bg);
    memcpy(moe_lm_params_f64(md), rp->v, rp->n * sizeof(double));
    if (cfg.ffn.gate.use_bias)
      for (int l = 0; l < cfg.L; l++)
        for (int e = 0; e < cfg.ffn.E; e++)
          moe_layer_bias_f64(moe_lm_ffn_f64(md, l))[e] = rb->v[(size_t)l * cfg.ffn.E + e];
    rc = moe_lm_forward_f64(md, Bg, Tg, x, y, &loss);
    el = maxdiff_d(moe_lm_logits_f64(md), get(c, "logits"));
    moe_lm_zero_grad_f64(md);
    rc |= moe_lm_backward_f64(md);
    eg = maxdiff_d(moe_lm_grads_f64(md), get(c, "grads"));
    ok(rc == 0 && el < 1e-10 && eg < 1e-10 && fabs(loss - wl) < 1e-10,
       "golden %s double: logits %.2g, loss %.2g, gradients %.2g", c->label, el,
       fabs(loss - wl), eg);
    moe_lm_free_f64(md);
    free(x);
    free(y);
  }
  for (int ci = 0; ci < nc; ci++) {
    for (int i = 0; i < cs[ci].nr; i++)
      free(cs[ci].r[i].v);
    free(cs[ci].r);
  }
}

/* ---- float model: determinism, checkpoints, evaluation, errors ---- */

static moe_lm *small_model(const char *variant, unsigned long seed)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, variant, (moe_variant_sizes){.D = DM, .F = 6, .N = 6, .K = 4, .shared = 2});
  f.balance_coef = 0.01;
  moe_lm_config cfg = moe_lm_config_make(V, CTX, DM, NL, NH, &f);
  moe_lm *m = moe_lm_alloc(&cfg, B);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  if (m)
    moe_lm_init_params(m, r);
  gsl_rng_free(r);
  return m;
}

/* train a few steps on fixed random batches; the final params */
static int train(moe_lm *m, int steps, unsigned long seed)
{
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, moe_lm_param_count(m));
  moe_lr_schedule s = {MOE_LR_WARMUP_COSINE, 3e-3, 2, steps, 0.1};
  int rc = 0;
  for (int i = 0; i < steps && !rc; i++) {
    moe_token x[B * CTX], y[B * CTX];
    rand_tokens(r, x, B * CTX);
    rand_tokens(r, y, B * CTX);
    double loss;
    rc |= moe_lm_forward(m, B, CTX, x, y, &loss);
    moe_lm_zero_grad(m);
    rc |= moe_lm_backward(m);
    rc |= moe_lm_step(m, o, &s, 1.0, NULL);
    rc |= moe_lm_bias_update(m, 1e-3);
  }
  moe_optim_free(o);
  gsl_rng_free(r);
  return rc;
}

static void determinism(void)
{
  moe_lm *a = small_model("ds_v3_bias", 5), *b = small_model("ds_v3_bias", 5);
  int rc = train(a, 6, 9) | train(b, 6, 9);
  size_t n = moe_lm_param_count(a);
  ok(rc == 0 && !memcmp(moe_lm_params(a), moe_lm_params(b), n * sizeof(float)) &&
         !memcmp(moe_layer_bias(moe_lm_ffn(a, 1)), moe_layer_bias(moe_lm_ffn(b, 1)),
                 4 * sizeof(float)),
     "two training runs are bit-identical (%zu parameters, selection biases)", n);
  int moved = 0;
  for (int e = 0; e < 4; e++)
    moved |= moe_layer_bias(moe_lm_ffn(a, 0))[e] != 0;
  ok(moved, "ds_v3_bias: moe_lm_bias_update moves the selection bias");
  moe_lm_free(a);
  moe_lm_free(b);
}

/* field by field (padding bytes are not part of a config) */
static int same_config(const moe_lm_config *a, const moe_lm_config *b)
{
  const moe_layer_config *f = &a->ffn, *g = &b->ffn;
  return a->V == b->V && a->T == b->T && a->D == b->D && a->L == b->L && a->H == b->H &&
         a->tie == b->tie && f->D == g->D && f->E == g->E && f->K == g->K && f->S == g->S &&
         f->gate.score == g->gate.score && f->gate.normalize == g->gate.normalize &&
         f->gate.route_scale == g->gate.route_scale && f->gate.use_bias == g->gate.use_bias &&
         f->expert.kind == g->expert.kind && f->expert.F == g->expert.F &&
         f->expert.act == g->expert.act && f->expert.bias == g->expert.bias &&
         f->combine == g->combine && f->balance_coef == g->balance_coef &&
         f->zloss_coef == g->zloss_coef;
}

static void checkpoints(void)
{
  const char *tmpd = getenv("TMPDIR");
  char path[1024], bad[1100];
  snprintf(path, sizeof path, "%s/test_lm.%ld.ckpt", tmpd ? tmpd : "/tmp", (long)getpid());
  snprintf(bad, sizeof bad, "%s.bad", path);
  moe_lm *m = small_model("ds_v3_bias", 11);
  train(m, 3, 4);
  ok(moe_lm_save(m, path, 3) == 0, "checkpoint: save (%s)", moe_last_error());
  moe_lm *l = NULL;
  long step = -1;
  int rc = moe_lm_load(path, 1, &l, &step);
  size_t n = moe_lm_param_count(m);
  ok(rc == 0 && l && step == 3 && moe_lm_param_count(l) == n &&
         !memcmp(moe_lm_params(m), moe_lm_params(l), n * sizeof(float)) &&
         !memcmp(moe_layer_bias(moe_lm_ffn(m, 1)), moe_layer_bias(moe_lm_ffn(l, 1)),
                 4 * sizeof(float)) &&
         !memcmp(moe_lm_get_config(m), moe_lm_get_config(l), sizeof(moe_lm_config)),
     "checkpoint: load gives the same config, step, parameters and biases, bit for bit");
  /* the loaded model computes the same loss */
  moe_token x[CTX] = {1, 2, 3, 4, 5}, y[CTX] = {2, 3, 4, 5, 6};
  double la, lb;
  moe_lm_forward(m, 1, CTX, x, y, &la);
  moe_lm_forward(l, 1, CTX, x, y, &lb);
  ok(la == lb, "checkpoint: the loaded model's loss is identical (%.9g)", la);
  moe_lm_free(l);

  /* every config field is recorded: z-loss on, untied head */
  {
    moe_layer_config zf = moe_lm_get_config(m)->ffn;
    zf.zloss_coef = 0.0123;
    zf.balance_coef = 0.0071;
    zf.gate.route_scale = 1.75;
    moe_lm_config zc = moe_lm_config_make(V, CTX, DM, NL, NH, &zf);
    zc.tie = 0;
    moe_lm *zm = moe_lm_alloc(&zc, B);
    ok(zm && moe_lm_save(zm, path, 9) == 0 && moe_lm_load(path, 1, &l, &step) == 0 &&
           step == 9 && moe_lm_get_config(l)->ffn.zloss_coef == 0.0123 &&
           same_config(moe_lm_get_config(zm), moe_lm_get_config(l)),
       "checkpoint: zloss_coef, balance_coef, route_scale and tie survive a round trip (%s)",
       moe_last_error());
    moe_lm_free(l);
    moe_lm_free(zm);
  }
  /* a version-1 file (written by the code before zloss_coef was
   * recorded: 2 f64 in the config) still loads, with zloss_coef 0 */
  {
    char v1[1024];
    const char *top = getenv("top_srcdir");
    snprintf(v1, sizeof v1, "%s/t/data/lm/ckpt-v1.bin", top ? top : ".");
    moe_layer_config f1;
    moe_layer_config_variant(&f1, "ds_v3_bias", (moe_variant_sizes){.D = DM, .F = 6, .N = 6, .K = 4, .shared = 2});
    f1.balance_coef = 0.01;
    moe_lm_config c1 = moe_lm_config_make(V, CTX, DM, NL, NH, &f1);
    c1.tie = 0;
    moe_lm *w = moe_lm_alloc(&c1, 1);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2026);
    moe_lm_init_params(w, r);
    gsl_rng_free(r);
    int bias_ok = 1;
    rc = moe_lm_load(v1, 1, &l, &step);
    for (int b = 0; rc == 0 && b < NL; b++)
      for (int e = 0; e < 4; e++)
        bias_ok &= moe_layer_bias(moe_lm_ffn(l, b))[e] == 0.25f * (float)(e + 1) - 0.5f * (float)b;
    ok(rc == 0 && step == 42 && bias_ok &&
           same_config(moe_lm_get_config(l), &c1) &&
           !memcmp(moe_lm_params(l), moe_lm_params(w), moe_lm_param_count(w) * sizeof(float)),
       "checkpoint: a version-1 file loads: config (zloss_coef 0), step, parameters, biases (%s)",
       moe_last_error());
    moe_lm_free(l);
    moe_lm_free(w);
  }

  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)size);
  size_t got = fread(buf, 1, (size_t)size, f);
  fclose(f);
  struct {
    const char *what;
    long len;   /* bytes written */
    long flip;  /* byte to corrupt, -1 none */
    int code;
  } cases[] = {
    {"empty file", 0, -1, MOE_EFORMAT},
    {"truncated header", 40, -1, MOE_EFORMAT},
    {"truncated parameters", size / 2, -1, MOE_EFORMAT},
    {"missing checksum", size - 2, -1, MOE_EFORMAT},
    {"bad magic", size, 0, MOE_EFORMAT},
    {"future version", size, 8, MOE_EFORMAT},
    {"bad config (D)", size, 20, MOE_EFORMAT},
    {"flipped parameter byte", size, size / 2, MOE_ECHECKSUM},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    FILE *w = fopen(bad, "wb");
    unsigned char *cp = malloc((size_t)size);
    memcpy(cp, buf, (size_t)size);
    if (cases[i].flip >= 0)
      cp[cases[i].flip] ^= 0x5a;
    fwrite(cp, 1, (size_t)cases[i].len, w);
    fclose(w);
    free(cp);
    moe_lm *z = (moe_lm *)1;
    rc = moe_lm_load(bad, 1, &z, NULL);
    ok(rc == cases[i].code && z == NULL && strstr(moe_last_error(), bad),
       "checkpoint, %s: %s (%s)", cases[i].what, moe_strerror(rc), moe_last_error());
  }
  /* a foreign file */
  FILE *w = fopen(bad, "wb");
  fputs("this is not a checkpoint, just some text of a reasonable length\n", w);
  fclose(w);
  rc = moe_lm_load(bad, 1, &l, NULL);
  ok(rc == MOE_EFORMAT && strstr(moe_last_error(), "not a moebench LM checkpoint"),
     "checkpoint, foreign file: %s", moe_last_error());
  rc = moe_lm_load("/nonexistent/dir/x.ckpt", 1, &l, NULL);
  ok(rc == MOE_EIO, "checkpoint, missing file: %s", moe_last_error());
  moe_lm_params(m)[3] = NAN;
  ok(moe_lm_save(m, bad, 0) == MOE_EDOM, "checkpoint: a NaN parameter is not saved (%s)",
     moe_last_error());
  remove(path);
  remove(bad);
  free(buf);
  (void)got;
  moe_lm_free(m);
}

static void evaluation(void)
{
  moe_lm *m = small_model("smoe", 3);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 1);
  enum { NT = 4 * CTX + 3 };
  moe_token tok[NT];
  rand_tokens(r, tok, NT);
  double ce, ppl;
  size_t np = 0;
  int rc = moe_lm_evaluate(m, tok, NT, &ce, &ppl, &np);
  /* by hand: windows of CTX, one at a time */
  double acc = 0, loss;
  for (int w = 0; w < 4; w++) {
    moe_lm_forward(m, 1, CTX, tok + w * CTX, tok + w * CTX + 1, &loss);
    acc += moe_lm_ce_loss(m);
  }
  ok(rc == 0 && np == 4 * CTX, "evaluate: %zu predicted tokens", np);
  is_close(ce, acc / 4, 1e-6, 1e-6, "evaluate: mean CE over the windows (%.6f)", ce);
  is_close(ppl, exp(ce), 0, 1e-12, "evaluate: perplexity = exp(mean CE) (%.4f)", ppl);
  ok(moe_lm_evaluate(m, tok, CTX, &ce, &ppl, NULL) == MOE_EINVAL,
     "evaluate: fewer than T + 1 tokens is MOE_EINVAL");
  /* three levels of context around the cause, each added with
   * moe_error(rc, "...: %s", moe_last_error()); NaN prints with its sign */
  moe_lm_wpe(m)[2] = NAN; /* position 0: every row of block 0 is NaN from there */
  rc = moe_lm_evaluate(m, tok, NT, &ce, &ppl, NULL);
  const char *want = "lm evaluate: windows 0..1: lm forward: block 0: block forward: x[0][2] is ";
  const char *msg = moe_last_error();
  ok(rc == MOE_EDOM && strncmp(msg, want, strlen(want)) == 0 &&
         (!strcmp(msg + strlen(want), "nan") || !strcmp(msg + strlen(want), "-nan")),
     "evaluate, NaN parameter: the message nests three levels intact (%s)", msg);
  gsl_rng_free(r);
  moe_lm_free(m);
}

static void errors(void)
{
  moe_lm *m = small_model("ds_v2", 2);
  moe_token x[B * CTX] = {0}, y[B * CTX] = {0};
  double loss;
  x[7] = V;
  int rc = moe_lm_forward(m, B, CTX, x, y, &loss);
  ok(rc == MOE_ERANGE && strstr(moe_last_error(), "b=1 t=2"),
     "token id >= V: MOE_ERANGE naming the place (%s)", moe_last_error());
  x[7] = 0;
  y[3] = V + 5;
  rc = moe_lm_forward(m, B, CTX, x, y, &loss);
  ok(rc == MOE_ERANGE && strstr(moe_last_error(), "target"), "target >= V: %s",
     moe_last_error());
  y[3] = 0;
  rc = moe_lm_forward(m, 1, CTX + 1, x, y, &loss);
  ok(rc == MOE_ERANGE && strstr(moe_last_error(), "context"),
     "sequence longer than the context: %s", moe_last_error());
  ok(moe_lm_forward(m, B + 1, CTX, x, y, &loss) == MOE_EINVAL, "B > max_B: %s",
     moe_last_error());
  ok(moe_lm_backward(m) == MOE_EINVAL, "backward after a failed forward: %s", moe_last_error());
  ok(moe_lm_forward(m, B, CTX, x, NULL, &loss) == 0 && moe_lm_backward(m) == MOE_EINVAL,
     "backward after a forward without targets: %s", moe_last_error());
  ok(moe_lm_forward(m, B, CTX, x, y, &loss) == 0 && moe_lm_backward(m) == 0 &&
         moe_lm_backward(m) == MOE_EINVAL && moe_lm_logits(m) == NULL,
     "a second backward of one forward is MOE_EINVAL; logits are gone after backward");
  /* NaN in a parameter: reported, nothing updated */
  size_t n = moe_lm_param_count(m);
  float *keep = malloc(n * sizeof *keep);
  memcpy(keep, moe_lm_params(m), n * sizeof *keep);
  moe_lm_wpe(m)[2] = NAN;
  rc = moe_lm_forward(m, B, CTX, x, y, &loss);
  ok(rc == MOE_EDOM, "NaN in a position embedding: MOE_EDOM (%s)", moe_last_error());
  moe_lm_wpe(m)[2] = keep[moe_lm_wpe(m) - moe_lm_params(m) + 2];
  moe_lm_head(m)[5 * DM + 1] = NAN; /* only logit 5 sees it */
  rc = moe_lm_forward(m, B, CTX, x, y, &loss);
  ok(rc == MOE_EDOM, "NaN in the head row of one token: MOE_EDOM (%s)", moe_last_error());
  memcpy(moe_lm_params(m), keep, n * sizeof *keep);
  moe_lm_zero_grad(m);
  moe_lm_grads(m)[9] = INFINITY;
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, n);
  moe_lr_schedule s = {MOE_LR_CONSTANT, 1e-3, 0, 0, 0};
  double gn;
  rc = moe_lm_step(m, o, &s, 1.0, &gn);
  ok(rc == MOE_EDOM && !memcmp(keep, moe_lm_params(m), n * sizeof *keep) &&
         moe_optim_steps(o) == 0,
     "non-finite gradient norm: MOE_EDOM, parameters and optimizer untouched");
  moe_optim_free(o);
  free(keep);
  moe_lm_free(m);

  moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = DM, .E = 4, .K = 2, .S = 0, .F = 5});
  moe_lm_config c = moe_lm_config_make(V, CTX, DM, NL, 3, &f);
  ok(moe_lm_alloc(&c, 1) == NULL && strstr(moe_last_error(), "H=3"), "H not dividing D: %s",
     moe_last_error());
  c = moe_lm_config_make(V, CTX, DM, NL, NH, &f);
  c.ffn.D = DM + 1;
  ok(moe_lm_check(&c) == MOE_EINVAL, "ffn.D != D: %s", moe_last_error());
  c = moe_lm_config_make(0, CTX, DM, NL, NH, &f);
  ok(moe_lm_check(&c) == MOE_EINVAL, "V = 0: %s", moe_last_error());
  ok(moe_lm_alloc(&(moe_lm_config){0}, 1) == NULL, "zero config is rejected");
  moe_layer_config g;
  ok(moe_layer_config_variant(&g, "ds_v4", (moe_variant_sizes){.D = DM, .F = 5, .N = 6, .K = 4, .shared = 2}) == MOE_EINVAL &&
         strstr(moe_last_error(), "ds_v3_bias"),
     "unknown variant lists the known ones: %s", moe_last_error());
  ok(moe_layer_config_variant(&g, "ds_v2", (moe_variant_sizes){.D = DM, .F = 5, .N = 6, .K = 2, .shared = 2}) == MOE_EINVAL,
     "ds_v2 with s = K leaves no routed expert: %s", moe_last_error());
}

/* Batch composition (moe/lm.h, "Batch composition"): a sequence alone, in
 * a batch with others and as a prefix of itself gives the same logits to
 * rounding, for every variant (bit-identity is not promised: measured
 * relative differences ~5e-5 here); the same batch twice is bit-identical.
 * And the dense variant's router, without z-loss, gets no gradient; with
 * z-loss it does. */
static void batch_composition(void)
{
  const char *vs[] = {"dense", "smoe", "ds_v2", "ds_v3_bias"};
  enum { BV = 23, BT = 12, BD = 16, BB = 5 };
  for (int vi = 0; vi < 4; vi++) {
    moe_layer_config f;
    moe_layer_config_variant(&f, vs[vi], (moe_variant_sizes){.D = BD, .F = 12, .N = 8, .K = 4, .shared = 2});
    moe_lm_config c = moe_lm_config_make(BV, BT, BD, 2, 2, &f);
    moe_lm *m = moe_lm_alloc(&c, BB);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 40 + vi);
    moe_lm_init_params(m, r);
    moe_token x[BB * BT];
    for (int i = 0; i < BB * BT; i++) x[i] = (uint32_t)gsl_rng_uniform_int(r, BV);
    float *all = malloc(sizeof(float) * BB * BT * BV);
    int rc = moe_lm_forward(m, BB, BT, x, NULL, NULL);
    memcpy(all, moe_lm_logits(m), sizeof(float) * BB * BT * BV);
    rc |= moe_lm_forward(m, BB, BT, x, NULL, NULL);
    int same = !memcmp(all, moe_lm_logits(m), sizeof(float) * BB * BT * BV);
    double worst = 0;
    for (int b = 0; b < BB && !rc; b++)
      for (int len = BT; len >= 5; len -= 7) { /* alone, then a prefix of 5 */
        rc |= moe_lm_forward(m, 1, len, x + b * BT, NULL, NULL);
        const float *l = moe_lm_logits(m);
        for (int i = 0; !rc && i < len * BV; i++) {
          double a = all[(size_t)b * BT * BV + i];
          worst = fmax(worst, fabs(l[i] - a) / (fabs(a) + 1e-3));
        }
      }
    ok(rc == 0 && same && worst < 1e-3,
       "%s: the same batch twice is bit-identical; alone, in a batch of %d and as a prefix the logits "
       "agree to %.2g (relative)", vs[vi], BB, worst);
    free(all);
    gsl_rng_free(r);
    moe_lm_free(m);
  }
  /* the dense variant's router: gradient exactly 0 without z-loss, not with it */
  for (int z = 0; z < 2; z++) {
    moe_layer_config f;
    moe_layer_config_variant(&f, "dense", (moe_variant_sizes){.D = DM, .F = 5, .N = 6, .K = 4, .shared = 2});
    f.zloss_coef = z ? 0.01 : 0;
    moe_layer *l = moe_layer_alloc(&f, 4);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 8);
    moe_layer_init_params(l, r);
    float x[4 * DM], y[4 * DM], dy[4 * DM];
    for (int i = 0; i < 4 * DM; i++) {
      x[i] = (float)gsl_ran_gaussian(r, 1);
      dy[i] = (float)gsl_ran_gaussian(r, 1);
    }
    int rc = moe_layer_forward(l, 4, x, y) | moe_layer_backward(l, dy, NULL);
    const float *gr = moe_layer_grad_of(l, moe_layer_router(l));
    int nz = 0;
    for (int i = 0; i < DM; i++) nz += gr[i] != 0;
    ok(rc == 0 && (z ? nz == DM : nz == 0), "dense variant, zloss_coef %g: %d of %d router gradients non-zero",
       f.zloss_coef, nz, DM);
    gsl_rng_free(r);
    moe_layer_free(l);
  }
}

static void variants(void)
{
  moe_layer_config c;
  moe_layer_config_variant(&c, "smoe", (moe_variant_sizes){.D = 16, .F = 4, .N = 66, .K = 8, .shared = 2});
  ok(c.E == 66 && c.K == 8 && c.S == 0 && c.gate.score == MOE_SCORE_SOFTMAX && c.gate.normalize,
     "smoe: 66 experts top-8, softmax renormalised, no shared");
  moe_layer_config_variant(&c, "ds_v3", (moe_variant_sizes){.D = 16, .F = 4, .N = 66, .K = 8, .shared = 2});
  ok(c.E == 64 && c.K == 6 && c.S == 2 && c.gate.score == MOE_SCORE_SIGMOID && !c.gate.use_bias &&
         c.gate.route_scale == 1 && c.combine == MOE_COMBINE_ADDITIVE,
     "ds_v3: 64 routed top-6 + 2 shared, normalized sigmoid, additive (the paper's Table 4)");
  moe_layer_config_variant(&c, "ds_v3_bias", (moe_variant_sizes){.D = 16, .F = 4, .N = 66, .K = 8, .shared = 2});
  ok(c.gate.use_bias && c.E == 64, "ds_v3_bias: the selection bias on");
  moe_layer_config_variant(&c, "dense", (moe_variant_sizes){.D = 16, .F = 4, .N = 66, .K = 8, .shared = 2});
  ok(c.E == 1 && c.K == 1 && c.S == 0 && c.expert.F == 32, "dense: one expert of width K*F = 32");
  moe_layer_config g;
  moe_layer_config_variant(&g, "smoe", (moe_variant_sizes){.D = DM, .F = 5, .N = 6, .K = 4, .shared = 2});
  moe_lm_config lc = moe_lm_config_make(V, CTX, DM, NL, NH, &g);
  /* per block 8·64 + 4·5·8 + 2·8·6 + 4·(4·8·5) = 1408; head 2·11·8 */
  ok(moe_lm_flops_per_token(&lc, CTX) == 2 * 1408 + 176 && moe_lm_flops_per_token(&lc, 0) == 0,
     "flops per token: %g", moe_lm_flops_per_token(&lc, CTX));
  /* by component, by hand: attention 8·64 + 4·5·8 = 672, router 2·8·6 =
   * 96, experts 4·(4·8·5) = 640 per block; head 2·11·8 = 176 */
  moe_lm_parts fp, pp;
  ok(moe_lm_flops_parts(&lc, CTX, &fp) == 0 && fp.attention == 2 * 672 && fp.router == 2 * 96 &&
         fp.experts == 2 * 640 && fp.embed_head == 176 && fp.norms == 0 &&
         fp.total == fp.attention + fp.router + fp.experts + fp.embed_head,
     "flops by component: attention %g router %g experts %g head %g", fp.attention, fp.router, fp.experts,
     fp.embed_head);
  ok(moe_lm_flops_parts(&lc, CTX + 1, &fp) == MOE_EINVAL && moe_lm_flops_parts(NULL, CTX, &fp) == MOE_EINVAL,
     "flops by component: T beyond the context, NULL: MOE_EINVAL");
  /* parameters by hand: wte 11·8 + wpe 5·8 = 128 (tied head); per block
   * Wqkv + Wo 4·64 = 256, norms 4·8 = 32, router 6·8 = 48, experts
   * 6·(5·8 + 8·5) = 480; final norm 16 */
  moe_lm *pm = moe_lm_alloc(&lc, 1);
  ok(pm && moe_lm_param_parts(&lc, &pp) == 0 && pp.embed_head == 128 && pp.attention == 512 && pp.norms == 80 &&
         pp.router == 96 && pp.experts == 960 && pp.total == 1776 && (size_t)pp.total == moe_lm_param_count(pm),
     "parameters by component sum to moe_lm_param_count (%g)", pp.total);
  moe_lm_free(pm);
  /* the PAPER combine adds S shared weights ω per block to the router's */
  moe_layer_config gp;
  moe_layer_config_for(&gp, MOE_VARIANT_DS_V3, (moe_variant_sizes){.D = DM, .F = 5, .N = 6, .K = 4, .shared = 2});
  gp.combine = MOE_COMBINE_PAPER;
  moe_lm_config lp = moe_lm_config_make(V, CTX, DM, NL, NH, &gp);
  pm = moe_lm_alloc(&lp, 1);
  ok(pm && moe_lm_param_parts(&lp, &pp) == 0 && pp.router == 2 * (4 * DM + 2) &&
         (size_t)pp.total == moe_lm_param_count(pm),
     "parameters by component, PAPER combine with 2 shared: router %g, total %g", pp.router, pp.total);
  moe_lm_free(pm);
  /* dense is exactly a dense FFN: weight 1 */
  moe_layer *l = moe_layer_alloc(&c, 3);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  moe_layer_init_params(l, r);
  float x[48], y[48], ye[48], cache[2 * 3 * 32];
  for (int i = 0; i < 48; i++)
    x[i] = (float)gsl_ran_gaussian(r, 1);
  moe_layer_forward(l, 3, x, y);
  moe_expert_forward(&c.expert, 16, moe_layer_routed_expert(l, 0), 3, x, cache, ye);
  ok(!memcmp(y, ye, sizeof y) && moe_layer_weights(l)[0] == 1.0f,
     "dense: the layer's output is the FFN's, bit for bit (weight exactly 1)");
  gsl_rng_free(r);
  moe_layer_free(l);
}

/* moe_lm_init_params_keyed: common random numbers across variants */
static moe_lm *keyed_model(moe_variant v, uint64_t seed)
{
  moe_layer_config f;
  if (moe_layer_config_for(&f, v, (moe_variant_sizes){.D = DM, .F = 6, .N = 6, .K = 4, .shared = 2}))
    return NULL;
  moe_lm_config cfg = moe_lm_config_make(V, CTX, DM, NL, NH, &f);
  moe_lm *m = moe_lm_alloc(&cfg, B);
  if (m && moe_lm_init_params_keyed(m, seed)) {
    moe_lm_free(m);
    return NULL;
  }
  return m;
}

static void keyed_init(void)
{
  const uint64_t seed = 0x5eed2505u;
  moe_lm *sm = keyed_model(MOE_VARIANT_SMOE, seed), *sg = keyed_model(MOE_VARIANT_SMOE_SG, seed),
         *d3 = keyed_model(MOE_VARIANT_DS_V3, seed), *de = keyed_model(MOE_VARIANT_DENSE, seed),
         *sm2 = keyed_model(MOE_VARIANT_SMOE, seed), *other = keyed_model(MOE_VARIANT_SMOE, seed + 1);
  ok(sm && sg && d3 && de && sm2 && other, "keyed init: models built");
  if (!(sm && sg && d3 && de && sm2 && other))
    return;
  const size_t n = moe_lm_param_count(sm);
  ok(!memcmp(moe_lm_params(sm), moe_lm_params(sm2), n * sizeof(float)), "keyed init: deterministic");
  ok(memcmp(moe_lm_wte(sm), moe_lm_wte(other), V * DM * sizeof(float)) != 0, "keyed init: another seed, other values");
  ok(moe_lm_param_count(sg) == n && !memcmp(moe_lm_params(sm), moe_lm_params(sg), n * sizeof(float)),
     "keyed init: smoe and smoe_sg (same shapes) start bit-identical");
  moe_lm *all[3] = {d3, de, other};
  int emb = 1, blk = 1;
  for (int i = 0; i < 2; i++) {
    emb &= !memcmp(moe_lm_wte(sm), moe_lm_wte(all[i]), V * DM * sizeof(float)) &&
           !memcmp(moe_lm_wpe(sm), moe_lm_wpe(all[i]), CTX * DM * sizeof(float));
    for (int l = 0; l < NL; l++) /* LayerNorm 1, Wqkv, Wo, LayerNorm 2: the block's slab before its FFN */
      blk &= !memcmp(moe_block_params(moe_lm_block(sm, l)), moe_block_params(moe_lm_block(all[i], l)),
                     (4 * DM + 4 * DM * DM) * sizeof(float));
  }
  ok(emb, "keyed init: ds_v3 and dense share smoe's embeddings");
  ok(blk, "keyed init: ds_v3 and dense share smoe's attention and norms in every block");
  /* ds_v3: 4 routed + 2 shared against smoe's 6 routed: the router's rows
   * and the routed experts' W1 of experts 0..3 agree (W2 is scaled by
   * E^-1/2, which differs) */
  int router = 1, w1 = 1, w1diff = 0;
  moe_expert_view ev;
  moe_expert_view_get(&moe_lm_get_config(sm)->ffn.expert, DM, &ev);
  for (int l = 0; l < NL; l++) {
    moe_layer *a = moe_lm_ffn(sm, l), *b = moe_lm_ffn(d3, l);
    router &= !memcmp(moe_layer_router(a), moe_layer_router(b), 4 * DM * sizeof(float));
    for (int e = 0; e < 4; e++)
      w1 &= !memcmp(moe_layer_routed_expert(a, e) + ev.W1, moe_layer_routed_expert(b, e) + ev.W1,
                    6 * DM * sizeof(float));
    w1diff |= memcmp(moe_layer_shared_expert(b, 0) + ev.W1, moe_layer_routed_expert(b, 0) + ev.W1,
                     6 * DM * sizeof(float)) != 0;
  }
  ok(router, "keyed init: ds_v3's router rows = the first 4 of smoe's");
  ok(w1, "keyed init: routed experts 0..3 start with the same W1 in smoe and ds_v3");
  ok(w1diff, "keyed init: a shared expert is not a copy of a routed one");
  moe_lm_free(sm); moe_lm_free(sg); moe_lm_free(d3); moe_lm_free(de); moe_lm_free(sm2); moe_lm_free(other);
}

int main(void)
{
  batch_composition();
  accumulation(0);
  accumulation(1);
  variants();
  keyed_init();
  fd_all();
  fd_block(1);
  fd_block(0);
  golden();
  determinism();
  checkpoints();
  evaluation();
  errors();
  return tap_done();
}
