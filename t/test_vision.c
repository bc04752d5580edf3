/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_vision.c — the image classifier with an MoE connector
 * (moe/vision.h): finite-difference gradients in double over the whole
 * model (every variant, every gate preset, S = 0 and 1, both combine
 * rules, balance loss and router z-loss on, MoE connector only or in
 * every encoder block too); the PyTorch golden fixture
 * t/data/vision/vision_golden.txt.gz (logits, loss, every gradient, three
 * AdamW steps with clipping); determinism; the error paths (patch side
 * not dividing the image, label out of range, NaN pixels); FLOPs and
 * parameters by component against a hand count; sparse upcycling
 * (experts bit-equal to the dense MLP, the router fresh, the function
 * kept) and its error paths. */
#include <math.h>
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

enum { IMG = 4, PS = 2, NC = 3, DM = 8, NH = 2, NB = 2, NP = (IMG / PS) * (IMG / PS), PD = PS * PS };

/* ---- finite differences over the whole model ---- */

typedef struct {
  moe_vision_f64 *m;
  double x[NB * NP * PD];
  moe_token y[NB];
  int *idx0; /* selections at the base point: connector, then encoder FFNs */
  int K, nlayers;
} fdctx;

static const int *chosen_of(fdctx *c, int i)
{
  if (i == 0)
    return moe_layer_chosen_f64(moe_vision_connector_f64(c->m));
  return moe_layer_chosen_f64(moe_block_ffn_f64(moe_vision_encoder_block_f64(c->m, i - 1)));
}

static int same_routing(fdctx *c)
{
  const size_t n = (size_t)NB * NP * c->K;
  for (int i = 0; i < c->nlayers; i++)
    if (memcmp(chosen_of(c, i), c->idx0 + i * n, sizeof(int) * n))
      return 0;
  return 1;
}

static double objective(void *p)
{
  fdctx *c = p;
  double loss;
  if (moe_vision_forward_f64(c->m, NB, c->x, c->y, &loss))
    return NAN;
  if (!same_routing(c))
    return NAN; /* a perturbation crossed a top-K boundary: the check is void */
  return loss;
}

static void fd_case(const char *label, const moe_layer_config *moe, int everywhere, int L,
                    unsigned long seed)
{
  moe_vision_config cfg = moe_vision_config_make(IMG, IMG, PS, NC, DM, NH, L, 1, 6, moe);
  cfg.moe_everywhere = everywhere;
  fdctx c;
  memset(&c, 0, sizeof c);
  c.m = moe_vision_alloc_f64(&cfg, NB);
  if (!ok(c.m != NULL, "%s: alloc (%s)", label, moe_last_error()))
    return;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  moe_vision_init_params_f64(c.m, r);
  double *p = moe_vision_params_f64(c.m);
  const size_t n = moe_vision_param_count_f64(c.m);
  for (size_t i = 0; i < n; i++)
    p[i] += gsl_ran_gaussian(r, 0.3);
  c.K = moe->K;
  c.nlayers = 1 + (everywhere ? L : 0);
  for (int i = 0; i < c.nlayers && moe->gate.use_bias; i++) {
    moe_layer_f64 *l = i == 0 ? moe_vision_connector_f64(c.m)
                              : moe_block_ffn_f64(moe_vision_encoder_block_f64(c.m, i - 1));
    for (int e = 0; e < moe->E; e++)
      moe_layer_bias_f64(l)[e] = gsl_ran_gaussian(r, 0.2);
  }
  for (int i = 0; i < NB * NP * PD; i++)
    c.x[i] = gsl_ran_gaussian(r, 1.0);
  for (int b = 0; b < NB; b++)
    c.y[b] = (moe_token)gsl_rng_uniform_int(r, NC);
  double loss;
  int rc = moe_vision_forward_f64(c.m, NB, c.x, c.y, &loss);
  ok(rc == 0 && isfinite(loss), "%s: forward, loss %.6f (aux %.3g)", label, loss,
     moe_vision_aux_loss_f64(c.m));
  const size_t nk = (size_t)NB * NP * c.K;
  c.idx0 = malloc(sizeof(int) * c.nlayers * nk);
  for (int i = 0; i < c.nlayers; i++)
    memcpy(c.idx0 + i * nk, chosen_of(&c, i), sizeof(int) * nk);
  moe_vision_zero_grad_f64(c.m);
  rc = moe_vision_backward_f64(c.m);
  double *ga = malloc(n * sizeof *ga);
  memcpy(ga, moe_vision_grads_f64(c.m), n * sizeof *ga);
  double err = fd_check(objective, &c, p, ga, n, FD_H);
  ok(rc == 0 && err < 1e-6, "%s: %zu parameter gradients match finite differences (worst %.2g)",
     label, n, err);
  free(ga);
  free(c.idx0);
  gsl_rng_free(r);
  moe_vision_free_f64(c.m);
}

/* Two backwards without zeroing add up (moe_vision_backward ACCUMULATES),
 * with the MoE in the connector only and everywhere. */
static void accumulation(int everywhere)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, "ds_v3_bias", (moe_variant_sizes){.D = DM, .F = 5, .N = 4, .K = 3, .shared = 1});
  f.balance_coef = 0.02;
  f.zloss_coef = 0.004;
  moe_vision_config cfg = moe_vision_config_make(IMG, IMG, PS, NC, DM, NH, 1, 1, 6, &f);
  cfg.moe_everywhere = everywhere;
  moe_vision_f64 *m = moe_vision_alloc_f64(&cfg, NB);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 91 + everywhere);
  moe_vision_init_params_f64(m, r);
  const size_t n = moe_vision_param_count_f64(m);
  double *p = moe_vision_params_f64(m);
  for (size_t i = 0; i < n; i++)
    p[i] += gsl_ran_gaussian(r, 0.3);
  double x[2][NB * NP * PD];
  moe_token y[2][NB];
  for (int b = 0; b < 2; b++) {
    for (int i = 0; i < NB * NP * PD; i++)
      x[b][i] = gsl_ran_gaussian(r, 1.0);
    for (int i = 0; i < NB; i++)
      y[b][i] = (moe_token)gsl_rng_uniform_int(r, NC);
  }
  double *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2), loss;
  int rc = 0;
  for (int b = 0; b < 2; b++) {
    moe_vision_zero_grad_f64(m);
    rc |= moe_vision_forward_f64(m, NB, x[b], y[b], &loss) | moe_vision_backward_f64(m);
    memcpy(b ? g2 : g1, moe_vision_grads_f64(m), n * sizeof *g1);
  }
  moe_vision_zero_grad_f64(m);
  for (int b = 0; b < 2; b++)
    rc |= moe_vision_forward_f64(m, NB, x[b], y[b], &loss) | moe_vision_backward_f64(m);
  size_t moved;
  double err = accum_check(g1, g2, moe_vision_grads_f64(m), n, &moved);
  ok(rc == 0 && err < 1e-12 && moved > n / 2,
     "MoE %s: two backwards without zeroing add up (%zu of %zu gradients, worst %.2g)",
     everywhere ? "everywhere" : "in the connector", moved, n, err);
  free(g1);
  free(g2);
  gsl_rng_free(r);
  moe_vision_free_f64(m);
}

static void fd_all(void)
{
  char label[160];
  /* the paper's variants (N = 4 experts, K = 2, one shared for ds_*), both
   * combine rules, balance loss and z-loss on; connector only and
   * everywhere */
  const char *variants[] = {"smoe", "smoe_sg", "ds_v2", "ds_v3", "ds_v3_bias"};
  for (int v = 0; v < 5; v++)
    for (int comb = 0; comb < 2; comb++)
      for (int everywhere = 0; everywhere < 2; everywhere++) {
        moe_layer_config f;
        if (!ok(moe_layer_config_variant(&f, variants[v], (moe_variant_sizes){.D = DM, .F = 5, .N = 4, .K = 2, .shared = 1}) == 0, "variant %s",
                variants[v]))
          continue;
        f.expert.act = MOE_ACT_GELU;
        f.combine = comb ? MOE_COMBINE_PAPER : MOE_COMBINE_ADDITIVE;
        f.balance_coef = 0.1;
        f.zloss_coef = 0.05;
        snprintf(label, sizeof label, "fd %s/%s/%s", variants[v], comb ? "paper" : "additive",
                 everywhere ? "everywhere" : "connector");
        fd_case(label, &f, everywhere, 1, 100 + 4 * v + 2 * comb + everywhere);
      }
  /* every gate preset, S = 0 and 1, z-loss on or off, L = 0 and 2 */
  const char *g;
  for (int i = 0; (g = moe_gate_preset_name(i)); i++)
    for (int S = 0; S <= 1; S++) {
      int dense = !strcmp(g, "softmax") || !strcmp(g, "sigmoid_norm");
      moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = DM, .E = 4, .K = dense ? 4 : 2, .S = S, .F = 5});
      moe_gate_preset(g, &f.gate);
      f.expert.act = MOE_ACT_GELU;
      f.balance_coef = 0.05;
      f.zloss_coef = S ? 0.02 : 0;
      f.combine = S ? MOE_COMBINE_PAPER : MOE_COMBINE_ADDITIVE;
      snprintf(label, sizeof label, "fd gate %s S=%d zloss=%g L=%d", g, S, f.zloss_coef, 2 * S);
      fd_case(label, &f, 0, 2 * S, 300 + 2 * i + S);
    }
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

/* config: Hi Wi P C D H L Lh F everywhere E K S score normalize use_bias
 * route_scale Fm act combine coef zcoef B seed */
static int golden_config(const gcase *c, moe_vision_config *cfg, int *Bg)
{
  const rec *k = get(c, "config");
  if (k->n != 24)
    return -1;
  const double *v = k->v;
  moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = (int)v[4], .E = (int)v[10], .K = (int)v[11], .S = (int)v[12], .F = (int)v[17]});
  f.gate.score = (moe_score_fn)v[13];
  f.gate.normalize = (int)v[14];
  f.gate.use_bias = (int)v[15];
  f.gate.route_scale = v[16];
  f.expert.act = (moe_act)v[18];
  f.combine = (moe_combine)v[19];
  f.balance_coef = v[20];
  f.zloss_coef = v[21];
  *cfg = moe_vision_config_make((int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5],
                                (int)v[6], (int)v[7], (int)v[8], &f);
  cfg->moe_everywhere = (int)v[9];
  *Bg = (int)v[22];
  return 0;
}

/* the MoE layers in the fixture's bias order: connector, then encoder FFNs */
static int n_moe(const moe_vision_config *cfg) { return 1 + (cfg->moe_everywhere ? cfg->L : 0); }

static void set_bias(moe_vision *m, moe_vision_f64 *md, const moe_vision_config *cfg,
                     const rec *rb)
{
  if (!cfg->moe.gate.use_bias)
    return;
  const int E = cfg->moe.E;
  for (int i = 0; i < n_moe(cfg); i++)
    for (int e = 0; e < E; e++) {
      double b = rb->v[(size_t)i * E + e];
      if (m)
        moe_layer_bias(i == 0 ? moe_vision_connector(m)
                              : moe_block_ffn(moe_vision_encoder_block(m, i - 1)))[e] = (float)b;
      if (md)
        moe_layer_bias_f64(i == 0 ? moe_vision_connector_f64(md)
                                  : moe_block_ffn_f64(moe_vision_encoder_block_f64(md, i - 1)))[e] =
          b;
    }
}

static void golden(void)
{
  char path[1024];
  const char *top = getenv("top_srcdir");
  snprintf(path, sizeof path, "%s/t/data/vision/vision_golden.txt.gz", top ? top : ".");
  gcase cs[16];
  int nc = load_cases(path, cs, 16);
  if (!ok(nc >= 4, "golden: %d cases in %s", nc, path))
    return;
  for (int ci = 0; ci < nc; ci++) {
    gcase *c = &cs[ci];
    moe_vision_config cfg;
    int Bg = 0;
    if (!ok(golden_config(c, &cfg, &Bg) == 0, "golden %s: config", c->label))
      continue;
    const rec *rp = get(c, "params"), *rx = get(c, "x"), *ry = get(c, "y"), *rb = get(c, "bias");
    float *x = malloc(rx->n * sizeof *x);
    moe_token *y = malloc((size_t)Bg * sizeof *y);
    for (size_t i = 0; i < rx->n; i++)
      x[i] = (float)rx->v[i];
    for (int b = 0; b < Bg; b++)
      y[b] = (moe_token)ry->v[b];
    moe_vision *m = moe_vision_alloc(&cfg, Bg);
    ok(m && moe_vision_param_count(m) == rp->n, "golden %s: %zu parameters in the slab",
       c->label, rp->n);
    if (!m || moe_vision_param_count(m) != rp->n) {
      moe_vision_free(m);
      free(x);
      free(y);
      continue;
    }
    float *p = moe_vision_params(m);
    for (size_t i = 0; i < rp->n; i++)
      p[i] = (float)rp->v[i];
    set_bias(m, NULL, &cfg, rb);
    double loss;
    int rc = moe_vision_forward(m, Bg, x, y, &loss);
    double el = maxdiff_f(moe_vision_logits(m), get(c, "logits"));
    double wl = get(c, "loss")->v[0], wa = get(c, "aux")->v[0];
    ok(rc == 0 && el < 2e-5, "golden %s float: logits (max diff %.2g)", c->label, el);
    is_close(loss, wl, 1e-5, 1e-5, "golden %s float: loss %.6f (aux %.3g)", c->label, loss,
             moe_vision_aux_loss(m));
    is_close(moe_vision_aux_loss(m), wa, 1e-6, 1e-5, "golden %s float: aux loss", c->label);
    moe_vision_zero_grad(m);
    rc = moe_vision_backward(m);
    double eg = maxdiff_f(moe_vision_grads(m), get(c, "grads"));
    ok(rc == 0 && eg < 2e-5, "golden %s float: all %zu gradients (max diff %.2g)", c->label,
       rp->n, eg);
    const rec *ro = get(c, "optim");
    moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
    oc.weight_decay = ro->v[0];
    moe_lr_schedule sch = {MOE_LR_WARMUP_COSINE, ro->v[1], (long)ro->v[2], (long)ro->v[3],
                           ro->v[4]};
    const double clip = ro->v[5];
    moe_optim *o = moe_optim_alloc(&oc, moe_vision_param_count(m));
    const rec *rl = get(c, "step_loss"), *rn = get(c, "step_norm");
    double el_max = 0, en_max = 0;
    for (int s = 0; s < 3; s++) {
      double l2, gn;
      rc |= moe_vision_forward(m, Bg, x, y, &l2);
      moe_vision_zero_grad(m);
      rc |= moe_vision_backward(m);
      rc |= moe_vision_step(m, o, &sch, clip, &gn);
      el_max = fmax(el_max, fabs(l2 - rl->v[s]) / (1 + fabs(rl->v[s])));
      en_max = fmax(en_max, fabs(gn - rn->v[s]) / (1 + fabs(rn->v[s])));
    }
    double ep = maxdiff_f(moe_vision_params(m), get(c, "params_after"));
    ok(rc == 0 && el_max < 2e-5 && en_max < 1e-4 && ep < 1e-4,
       "golden %s float: 3 AdamW steps, clip %.2g: losses %.2g, norms %.2g, params %.2g",
       c->label, clip, el_max, en_max, ep);
    moe_optim_free(o);
    moe_vision_free(m);

    /* double twin */
    moe_vision_f64 *md = moe_vision_alloc_f64(&cfg, Bg);
    memcpy(moe_vision_params_f64(md), rp->v, rp->n * sizeof(double));
    set_bias(NULL, md, &cfg, rb);
    rc = moe_vision_forward_f64(md, Bg, rx->v, y, &loss);
    el = maxdiff_d(moe_vision_logits_f64(md), get(c, "logits"));
    moe_vision_zero_grad_f64(md);
    rc |= moe_vision_backward_f64(md);
    eg = maxdiff_d(moe_vision_grads_f64(md), get(c, "grads"));
    ok(rc == 0 && el < 1e-10 && eg < 1e-10 && fabs(loss - wl) < 1e-10,
       "golden %s double: logits %.2g, loss %.2g, gradients %.2g", c->label, el,
       fabs(loss - wl), eg);
    moe_vision_free_f64(md);
    free(x);
    free(y);
  }
  for (int ci = 0; ci < nc; ci++) {
    for (int i = 0; i < cs[ci].nr; i++)
      free(cs[ci].r[i].v);
    free(cs[ci].r);
  }
}

/* ---- float model: determinism and errors ---- */

static moe_vision *small_model(const char *variant, unsigned long seed, int max_B)
{
  moe_layer_config f;
  moe_layer_config_variant(&f, variant, (moe_variant_sizes){.D = 16, .F = 12, .N = 4, .K = 2, .shared = 1});
  f.expert.act = MOE_ACT_GELU;
  f.combine = MOE_COMBINE_PAPER;
  f.balance_coef = 0.01;
  f.zloss_coef = 0.001;
  moe_vision_config cfg = moe_vision_config_make(8, 8, 4, 5, 16, 2, 1, 1, 24, &f);
  moe_vision *m = moe_vision_alloc(&cfg, max_B);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  if (m)
    moe_vision_init_params(m, r);
  gsl_rng_free(r);
  return m;
}

static void fill_batch(unsigned long seed, float *x, moe_token *y, int B, int n)
{
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (int i = 0; i < n; i++)
    x[i] = (float)gsl_ran_gaussian(r, 1.0);
  for (int b = 0; b < B; b++)
    y[b] = (moe_token)gsl_rng_uniform_int(r, 5);
  gsl_rng_free(r);
}

/* train a few steps; return the final loss */
static double train(moe_vision *m, int steps)
{
  enum { B = 6, N = B * 4 * 16 };
  float x[N];
  moe_token y[B];
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, moe_vision_param_count(m));
  moe_lr_schedule sch = {MOE_LR_WARMUP_COSINE, 3e-3, 2, steps, 0.1};
  double loss = NAN;
  for (int s = 0; s < steps; s++) {
    fill_batch(7 + s % 3, x, y, B, N);
    if (moe_vision_forward(m, B, x, y, &loss))
      break;
    moe_vision_zero_grad(m);
    moe_vision_backward(m);
    moe_vision_step(m, o, &sch, 1.0, NULL);
    moe_vision_bias_update(m, 1e-3);
  }
  moe_optim_free(o);
  return loss;
}

static void determinism(void)
{
  const char *variants[] = {"smoe", "ds_v3_bias"};
  for (int v = 0; v < 2; v++) {
    moe_vision *a = small_model(variants[v], 5, 6), *b = small_model(variants[v], 5, 6);
    if (!ok(a && b, "determinism %s: alloc", variants[v]))
      continue;
    double la = train(a, 12), lb = train(b, 12);
    const size_t n = moe_vision_param_count(a);
    ok(la == lb && !memcmp(moe_vision_params(a), moe_vision_params(b), n * sizeof(float)) &&
         !memcmp(moe_layer_bias(moe_vision_connector(a)), moe_layer_bias(moe_vision_connector(b)),
                 4 * sizeof(float)),
       "determinism %s: two runs of 12 steps give the same bits (loss %.6f)", variants[v], la);
    /* training lowers the loss on three repeated batches */
    moe_vision *c = small_model(variants[v], 5, 6);
    double l0 = train(c, 1), l1 = train(c, 40);
    ok(l1 < l0, "%s: loss falls over 40 steps (%.4f -> %.4f)", variants[v], l0, l1);
    moe_vision_free(a);
    moe_vision_free(b);
    moe_vision_free(c);
  }
}

static void errors(void)
{
  moe_layer_config f = moe_layer_config_default((moe_layer_sizes){.D = 8, .E = 4, .K = 2, .S = 0, .F = 5});
  moe_vision_config cfg = moe_vision_config_make(28, 28, 5, 10, 8, 2, 1, 1, 6, &f);
  ok(moe_vision_check(&cfg) == MOE_EINVAL && strstr(moe_last_error(), "P=5"),
     "patch side 5 does not divide 28: %s", moe_last_error());
  ok(moe_vision_alloc(&cfg, 2) == NULL, "no model for it");
  cfg.P = 7;
  ok(moe_vision_check(&cfg) == 0 && moe_vision_num_patches(&cfg) == 16 &&
       moe_vision_patch_dim(&cfg) == 49,
     "P = 7 on 28x28: 16 patches of 49");
  cfg.H = 3;
  ok(moe_vision_check(&cfg) == MOE_EINVAL, "heads not dividing D rejected");
  cfg.H = 2;
  cfg.C = 1;
  ok(moe_vision_check(&cfg) == MOE_EINVAL, "one class rejected");
  cfg.C = 10;
  cfg.moe.D = 4;
  ok(moe_vision_check(&cfg) == MOE_EINVAL, "connector width differing from D rejected");

  moe_vision *m = small_model("smoe", 3, 4);
  enum { N = 4 * 4 * 16 };
  float x[N];
  moe_token y[4];
  fill_batch(1, x, y, 4, N);
  double loss = 123;
  y[2] = 5;
  ok(moe_vision_forward(m, 4, x, y, &loss) == MOE_ERANGE && strstr(moe_last_error(), "image 2"),
     "label 5 with 5 classes: %s", moe_last_error());
  y[2] = (moe_token)-1;
  ok(moe_vision_forward(m, 4, x, y, &loss) == MOE_ERANGE, "label (moe_token)-1 rejected");
  ok(moe_vision_backward(m) == MOE_EINVAL, "no backward after a failed forward");
  y[2] = 0;
  x[1 * 64 + 2 * 16 + 3] = NAN;
  ok(moe_vision_forward(m, 4, x, y, &loss) == MOE_EDOM &&
       strstr(moe_last_error(), "image 1 patch 2 value 3"),
     "NaN pixel: %s", moe_last_error());
  ok(loss == 123, "loss untouched by failed forwards");
  x[1 * 64 + 2 * 16 + 3] = INFINITY;
  ok(moe_vision_forward(m, 4, x, y, &loss) == MOE_EDOM, "infinite pixel rejected");
  x[1 * 64 + 2 * 16 + 3] = 0;
  ok(moe_vision_forward(m, 5, x, y, &loss) == MOE_EINVAL, "B > max_B rejected");
  ok(moe_vision_forward(m, 4, NULL, y, &loss) == MOE_EINVAL, "NULL x rejected");
  ok(moe_vision_forward(m, 4, x, NULL, &loss) == 0 && moe_vision_logits(m) != NULL,
     "logits without labels");
  ok(moe_vision_backward(m) == MOE_EINVAL, "no backward without labels");
  ok(moe_vision_forward(m, 4, x, y, &loss) == 0 && moe_vision_backward(m) == 0 &&
       moe_vision_backward(m) == MOE_EINVAL,
     "one backward per forward");
  /* a NaN gradient stops the step and leaves parameters alone */
  moe_vision_grads(m)[0] = NAN;
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  moe_optim *o = moe_optim_alloc(&oc, moe_vision_param_count(m));
  moe_lr_schedule sch = {MOE_LR_CONSTANT, 1e-3, 0, 1, 0};
  float p0 = moe_vision_params(m)[1];
  ok(moe_vision_step(m, o, &sch, 1.0, NULL) == MOE_EDOM && moe_vision_params(m)[1] == p0,
     "NaN gradient: MOE_EDOM, nothing updated");
  ok(moe_vision_connector(m) && moe_vision_encoder_block(m, 0) && !moe_vision_encoder_block(m, 1) &&
       moe_vision_head_block(m, 0) && !moe_vision_head_block(m, -1),
     "block accessors check their index");
  moe_optim_free(o);
  moe_vision_free(m);
  moe_vision_free(NULL);
}

/* ---- FLOPs and parameters by component: a hand count ---- */

static void parts(void)
{
  /* 8x8 images, P = 4: Np = 4, pd = 16; D = 16, C = 5, L = Lh = 1,
   * block FFN F = 24 (dense: one expert, router E = 1), experts Fm = 12
   * without biases; smoe N = 4, K = 2; ds_v3: E = 3 routed (K 1) + S = 1 */
  moe_vision *m = small_model("smoe", 1, 2);
  const moe_vision_config *cfg = moe_vision_get_config(m);
  moe_vision_parts f, p;
  ok(moe_vision_flops_parts(cfg, &f) == 0, "flops parts");
  /* embed 2·4·16·16; attention 2·4·(8·256 + 4·4·16); ffn 4·2·(2·16 + 4·16·24);
   * router 4·2·16·4; experts 4·2·4·16·12; classifier 2·16·5 */
  ok(f.embed == 2048 && f.attention == 18432 && f.ffn == 12544 && f.router == 512 && f.experts == 6144 &&
       f.classifier == 160 && f.norms == 0 && f.total == 39840,
     "smoe flops by hand: %g %g %g %g %g %g total %g", f.embed, f.attention, f.ffn, f.router, f.experts,
     f.classifier, f.total);
  ok(moe_vision_param_parts(cfg, &p) == 0, "param parts");
  /* embed 256+16+64; attention 2·4·256; norms 2·4·16 + 4·16; ffn 2·(16 + 2·16·24);
   * router 4·16; experts 4·2·16·12; classifier 5·16+5 */
  ok(p.embed == 336 && p.attention == 2048 && p.norms == 192 && p.ffn == 1568 && p.router == 64 &&
       p.experts == 1536 && p.classifier == 85 && p.total == 5829,
     "smoe parameters by hand: %g %g %g %g %g %g %g total %g", p.embed, p.attention, p.norms, p.ffn, p.router,
     p.experts, p.classifier, p.total);
  ok(p.total == (double)moe_vision_param_count(m), "the parts sum to moe_vision_param_count (%zu)",
     moe_vision_param_count(m));
  moe_vision_free(m);
  m = small_model("ds_v3", 1, 2);
  cfg = moe_vision_get_config(m);
  moe_vision_flops_parts(cfg, &f);
  moe_vision_param_parts(cfg, &p);
  /* router 4·2·16·3; experts (1 routed + 1 shared) 4·2·4·16·12; router params 3·16 + ω 1 */
  ok(f.router == 384 && f.experts == 6144 && f.total == 39712 && p.router == 49 && p.experts == 1536 &&
       p.total == 5814 && p.total == (double)moe_vision_param_count(m),
     "ds_v3 (paper combine, S = 1): router %g, experts %g, total %g flops; %g params", f.router, f.experts,
     f.total, p.total);
  moe_vision_config bad = *cfg;
  bad.P = 3;
  ok(moe_vision_flops_parts(&bad, &f) == MOE_EINVAL && moe_vision_param_parts(&bad, &p) == MOE_EINVAL &&
       moe_vision_flops_parts(NULL, &f) == MOE_EINVAL,
     "invalid configuration or NULL: MOE_EINVAL");
  /* everywhere: the encoder's FFN is the MoE, counted under ffn */
  moe_vision_config ev = *cfg;
  ev.moe_everywhere = 1;
  moe_vision *me = moe_vision_alloc(&ev, 2);
  moe_vision_param_parts(&ev, &p);
  moe_vision_flops_parts(&ev, &f);
  ok(me && p.total == (double)moe_vision_param_count(me) && f.ffn == 4 * (2 * 16 * 3 + 2 * 4 * 16 * 12 + 2 * 16 + 4 * 16 * 24),
     "everywhere: parts sum to the count (%g), encoder MoE under ffn (%g)", p.total, f.ffn);
  moe_vision_free(me);
  moe_vision_free(m);
}

/* ---- sparse upcycling ---- */

static moe_vision *keyed_model(moe_variant v, int F, int N, int K, uint64_t seed)
{
  moe_layer_config f;
  moe_layer_config_for(&f, v, (moe_variant_sizes){.D = 16, .F = F, .N = N, .K = K, .shared = 1});
  f.expert.act = MOE_ACT_GELU;
  f.combine = MOE_COMBINE_PAPER;
  moe_vision_config cfg = moe_vision_config_make(8, 8, 4, 5, 16, 2, 1, 1, 24, &f);
  moe_vision *m = moe_vision_alloc(&cfg, 6);
  if (m)
    moe_vision_init_params_keyed(m, seed);
  return m;
}

static double logit_diff(moe_vision *a, moe_vision *b, const float *x, float *scale)
{
  double d = 0, s = 0;
  moe_vision_forward(a, 6, x, NULL, NULL);
  float la[30];
  memcpy(la, moe_vision_logits(a), sizeof la);
  moe_vision_forward(b, 6, x, NULL, NULL);
  const float *lb = moe_vision_logits(b);
  for (int i = 0; i < 30; i++) {
    d = fmax(d, fabs((double)la[i] - lb[i]));
    s = fmax(s, fabs((double)la[i]));
  }
  *scale = (float)s;
  return d;
}

static void upcycle(void)
{
  enum { N = 6 * 4 * 16 };
  float x[N];
  moe_token y[6];
  fill_batch(3, x, y, 6, N);
  moe_vision *src = keyed_model(MOE_VARIANT_DENSE, 12, 1, 1, 11);
  /* train the dense model a little so its parameters are not the init law */
  train(src, 5);
  const moe_layer *sc = moe_vision_connector(src);
  const float *mlp = moe_layer_routed_expert((moe_layer *)sc, 0);
  const size_t pe = 2 * 16 * 12;
  const moe_variant vs[] = {MOE_VARIANT_SMOE, MOE_VARIANT_DS_V2, MOE_VARIANT_DS_V3, MOE_VARIANT_SMOE_SG};
  for (int i = 0; i < 4; i++) {
    moe_vision *d = keyed_model(vs[i], 12, 4, 2, 22), *fresh = keyed_model(vs[i], 12, 4, 2, 22);
    moe_layer *dc = moe_vision_connector(d);
    const moe_layer_config *lc = moe_layer_get_config(dc);
    ok(moe_vision_upcycle(d, src) == 0, "%s: upcycled", moe_variant_name(vs[i]));
    int same = 1;
    for (int e = 0; e < lc->S; e++) same &= !memcmp(moe_layer_shared_expert(dc, e), mlp, pe * sizeof(float));
    for (int e = 0; e < lc->E; e++) same &= !memcmp(moe_layer_routed_expert(dc, e), mlp, pe * sizeof(float));
    ok(same, "  every one of %d shared and %d routed experts equals the dense MLP bit for bit", lc->S, lc->E);
    ok(!memcmp(moe_layer_router(dc), moe_layer_router(moe_vision_connector(fresh)), (size_t)lc->E * 16 * sizeof(float)),
       "  the router is the fresh keyed one");
    ok(memcmp(moe_layer_router(dc), moe_layer_router(moe_vision_connector(src)), 16 * sizeof(float)) != 0,
       "  (and not the dense model's)");
    /* outside the connector: the dense model's values */
    const size_t pre = (size_t)(moe_layer_params(dc) - moe_vision_params(d));
    const size_t post = moe_vision_param_count(d) - pre - moe_layer_param_count(dc);
    const size_t spost = moe_vision_param_count(src) - pre - moe_layer_param_count((moe_layer *)sc);
    ok(post == spost && !memcmp(moe_vision_params(d), moe_vision_params(src), pre * sizeof(float)) &&
         !memcmp(moe_vision_params(d) + moe_vision_param_count(d) - post,
                 moe_vision_params(src) + moe_vision_param_count(src) - post, post * sizeof(float)),
       "  every parameter outside the connector copied (%zu before, %zu after)", pre, post);
    float sc_;
    double dl = logit_diff(src, d, x, &sc_);
    ok(dl <= 1e-5 * (1 + sc_), "  the upcycled model computes the dense one (paper combine): max logit diff %.2g", dl);
    moe_vision_free(d);
    moe_vision_free(fresh);
  }
  /* dense: one MLP K times as wide, the same function */
  moe_vision *w = keyed_model(MOE_VARIANT_DENSE, 12, 4, 2, 22);
  ok(moe_vision_upcycle(w, src) == 0, "dense (width 2·12): widened");
  const float *ow = moe_layer_routed_expert(moe_vision_connector(w), 0);
  /* W1 rows 0..11 and 12..23 both the MLP's; W2 (16, 24) columns halved */
  ok(!memcmp(ow, mlp, 12 * 16 * sizeof(float)) && !memcmp(ow + 12 * 16, mlp, 12 * 16 * sizeof(float)) &&
       ow[2 * 12 * 16 + 5 * 24 + 13] == mlp[12 * 16 + 5 * 12 + 1] * 0.5f,
     "  hidden units repeated, W2 columns divided by 2");
  float sw;
  double dw = logit_diff(src, w, x, &sw);
  ok(dw <= 1e-5 * (1 + sw), "  same function: max logit diff %.2g", dw);
  moe_vision_free(w);
  /* double twins */
  moe_layer_config f1, f4;
  moe_layer_config_for(&f1, MOE_VARIANT_DENSE, (moe_variant_sizes){.D = 16, .F = 12, .N = 1, .K = 1});
  moe_layer_config_for(&f4, MOE_VARIANT_DS_V3, (moe_variant_sizes){.D = 16, .F = 12, .N = 4, .K = 2, .shared = 1});
  f1.combine = f4.combine = MOE_COMBINE_PAPER;
  moe_vision_config c1 = moe_vision_config_make(8, 8, 4, 5, 16, 2, 1, 1, 24, &f1), c4 = c1;
  c4.moe = f4;
  c4.moe.D = 16;
  moe_vision_f64 *a = moe_vision_alloc_f64(&c1, 2), *b = moe_vision_alloc_f64(&c4, 2);
  moe_vision_init_params_keyed_f64(a, 5);
  moe_vision_init_params_keyed_f64(b, 6);
  double xd[2 * 4 * 16], la[10];
  for (int i = 0; i < 2 * 4 * 16; i++) xd[i] = sin(0.37 * i + 0.2);
  moe_vision_forward_f64(a, 2, xd, NULL, NULL);
  memcpy(la, moe_vision_logits_f64(a), sizeof la);
  ok(moe_vision_upcycle_f64(b, a) == 0 && moe_vision_forward_f64(b, 2, xd, NULL, NULL) == 0, "f64 twin upcycles");
  double dd = 0;
  for (int i = 0; i < 10; i++) dd = fmax(dd, fabs(la[i] - moe_vision_logits_f64(b)[i]));
  ok(dd < 1e-12, "  f64: the same logits (max diff %.2g)", dd);
  moe_vision_free_f64(a);
  moe_vision_free_f64(b);

  /* errors */
  moe_vision *s4 = keyed_model(MOE_VARIANT_SMOE, 12, 4, 2, 1), *t = keyed_model(MOE_VARIANT_SMOE, 12, 4, 2, 2);
  ok(moe_vision_upcycle(t, s4) == MOE_EINVAL && strstr(moe_last_error(), "need one MLP"),
     "a source with 4 experts: %s", moe_last_error());
  moe_vision *n10 = keyed_model(MOE_VARIANT_SMOE, 10, 4, 2, 2);
  ok(moe_vision_upcycle(n10, src) == MOE_EINVAL && strstr(moe_last_error(), "F=10"),
     "experts of another width: %s", moe_last_error());
  moe_vision *w3 = keyed_model(MOE_VARIANT_DENSE, 9, 4, 2, 2); /* width 18: not a multiple of 12 */
  ok(moe_vision_upcycle(w3, src) == MOE_EINVAL, "dense of width 18 from 12 rejected");
  moe_layer_config g;
  moe_layer_config_for(&g, MOE_VARIANT_SMOE, (moe_variant_sizes){.D = 16, .F = 12, .N = 4, .K = 2});
  g.expert.act = MOE_ACT_RELU;
  moe_vision_config cr = moe_vision_config_make(8, 8, 4, 5, 16, 2, 1, 1, 24, &g), ce = cr, cl = cr;
  moe_vision *relu = moe_vision_alloc(&cr, 2);
  ok(moe_vision_upcycle(relu, src) == MOE_EINVAL && strstr(moe_last_error(), "activation"),
     "another activation: %s", moe_last_error());
  g.expert.act = MOE_ACT_GELU;
  ce.moe = g;
  ce.moe_everywhere = 1;
  moe_vision *every = moe_vision_alloc(&ce, 2);
  ok(moe_vision_upcycle(every, src) == MOE_EINVAL && strstr(moe_last_error(), "everywhere"),
     "MoE everywhere: %s", moe_last_error());
  cl.moe = g;
  cl.Lh = 2;
  moe_vision *deeper = moe_vision_alloc(&cl, 2);
  ok(moe_vision_upcycle(deeper, src) == MOE_EINVAL && strstr(moe_last_error(), "outside the connector"),
     "another depth: %s", moe_last_error());
  ok(moe_vision_upcycle(NULL, src) == MOE_EINVAL && moe_layer_upcycle(NULL, NULL) == MOE_EINVAL, "NULL: MOE_EINVAL");
  moe_vision_free(s4);
  moe_vision_free(t);
  moe_vision_free(n10);
  moe_vision_free(w3);
  moe_vision_free(relu);
  moe_vision_free(every);
  moe_vision_free(deeper);
  moe_vision_free(src);
}

int main(void)
{
  accumulation(0);
  accumulation(1);
  fd_all();
  parts();
  upcycle();
  golden();
  determinism();
  errors();
  return tap_done();
}
