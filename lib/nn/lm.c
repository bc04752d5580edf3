/* SPDX-License-Identifier: GPL-3.0-or-later */
/* lm.c — the MoE language model (see moe/lm.h). The numerical code is in
 * lm_impl.h, compiled here for float and for double; the optimizer step,
 * evaluation and checkpoints are float only and live below. */
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nn_internal.h"
#include "moe/batch.h"
#include "moe/lm.h"
#include "moe/loss.h"
#include "moe/rng.h"

moe_lm_config moe_lm_config_make(int V, int T, int D, int L, int H, const moe_layer_config *ffn)
{
  moe_lm_config c;
  memset(&c, 0, sizeof c);
  c.V = V;
  c.T = T;
  c.D = D;
  c.L = L;
  c.H = H;
  c.tie = 1;
  if (ffn)
    c.ffn = *ffn;
  c.ffn.D = D;
  return c;
}

int moe_lm_check(const moe_lm_config *cfg)
{
  MOE_CHECK_ARG(cfg, "lm: NULL config");
  MOE_CHECK_ARG(cfg->V >= 1, "lm: V=%d < 1", cfg->V);
  MOE_CHECK_ARG(cfg->T >= 1, "lm: T=%d < 1", cfg->T);
  MOE_CHECK_ARG(cfg->D >= 1, "lm: D=%d < 1", cfg->D);
  MOE_CHECK_ARG(cfg->L >= 1, "lm: L=%d < 1", cfg->L);
  MOE_CHECK_ARG(cfg->H >= 1 && cfg->D % cfg->H == 0, "lm: H=%d heads must divide D=%d", cfg->H,
                cfg->D);
  MOE_CHECK_ARG(cfg->ffn.D == cfg->D, "lm: ffn.D=%d differs from D=%d", cfg->ffn.D, cfg->D);
  MOE_CHECK_ARG((double)cfg->V * cfg->D < 1e12 && (double)cfg->T * cfg->D < 1e12,
                "lm: V=%d T=%d D=%d too large", cfg->V, cfg->T, cfg->D);
  return moe_layer_check(&cfg->ffn);
}

double moe_lm_flops_per_token(const moe_lm_config *c, int T)
{
  if (moe_lm_check(c) || T < 1)
    return 0;
  const double D = c->D, V = c->V, E = c->ffn.E, K = c->ffn.K, S = c->ffn.S;
  const double expert = c->ffn.expert.kind == MOE_EXPERT_FFN ? 4 * D * c->ffn.expert.F : 2 * D * D;
  const double block = 8 * D * D + 4 * (double)T * D + 2 * D * E + (K + S) * expert;
  return c->L * block + 2 * V * D;
}

int moe_lm_flops_parts(const moe_lm_config *c, int T, moe_lm_parts *out)
{
  MOE_CHECK_ARG(c && out, "lm flops: NULL argument");
  int rc = moe_lm_check(c);
  if (rc)
    return rc;
  MOE_CHECK_ARG(T >= 1 && T <= c->T, "lm flops: T=%d outside [1, %d]", T, c->T);
  const double D = c->D, V = c->V, E = c->ffn.E, K = c->ffn.K, S = c->ffn.S, L = c->L;
  const double expert = c->ffn.expert.kind == MOE_EXPERT_FFN ? 4 * D * c->ffn.expert.F : 2 * D * D;
  out->embed_head = 2 * V * D;
  out->attention = L * (8 * D * D + 4 * (double)T * D);
  out->router = L * 2 * D * E;
  out->experts = L * (K + S) * expert;
  out->norms = 0;
  out->total = moe_lm_flops_per_token(c, T);
  return MOE_OK;
}

int moe_lm_param_parts(const moe_lm_config *c, moe_lm_parts *out)
{
  MOE_CHECK_ARG(c && out, "lm params: NULL argument");
  int rc = moe_lm_check(c);
  if (rc)
    return rc;
  const double D = c->D, V = c->V, T = c->T, L = c->L;
  out->embed_head = V * D + T * D + (c->tie ? 0 : V * D);
  out->attention = L * 4 * D * D;
  out->norms = L * 4 * D + 2 * D;
  out->router = L * (c->ffn.E * D + (c->ffn.combine == MOE_COMBINE_PAPER ? c->ffn.S : 0));
  out->experts = L * (double)(c->ffn.S + c->ffn.E) * (double)moe_expert_param_count(&c->ffn.expert, c->D);
  out->total = out->embed_head + out->attention + out->norms + out->router + out->experts;
  return MOE_OK;
}

static moe_block_config moei_lm_block_config(const moe_lm_config *c)
{
  moe_block_config b;
  memset(&b, 0, sizeof b);
  b.D = c->D;
  b.H = c->H;
  b.causal = 1;
  b.ffn = c->ffn;
  return b;
}

static size_t moei_lm_param_count(const moe_lm_config *c)
{
  const moe_block_config b = moei_lm_block_config(c);
  const size_t V = c->V, T = c->T, D = c->D;
  return V * D + T * D + (size_t)c->L * moe_block_param_count(&b) + 2 * D + (c->tie ? 0 : V * D);
}

/* The cross-entropy's exponentials (2 per logit, N·V per step) are most
 * of a small model's time outside the BLAS. lm_expf is Cephes' expf
 * (range reduction by ln 2 in two parts, degree-6 polynomial; 1.4 ulp at
 * most on [−87, 88], the argument clamped there) written without branches
 * or calls so the row loops below vectorize; on x86-64 they are also
 * compiled for AVX2 and AVX-512 and chosen at run time (GCC
 * target_clones). Only elementwise IEEE operations (contraction is off)
 * and sums in a fixed lane order, so every path gives the same bits.
 * (lib/vmath.h's SLEEF exp, AVX2 at most, made a whole training step of
 * bench-perf-lm's small size ~25% slower here: kept apart on purpose.) Not trapping
 * on FP exceptions lets the compiler if-convert the clamps; it changes no
 * value. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "no-trapping-math")
#if defined(__x86_64__) && defined(__gnu_linux__) && !defined(LM_CLONES)
#define LM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef LM_CLONES
#define LM_CLONES
#endif

/* The clamp bounds are read from memory the compiler cannot see constant:
 * with literal bounds GCC 12 threads the clamped constant paths apart and
 * then cannot vectorise the AVX clones. Not exported (not moe_). */
float moei_lm_exp_bounds[2] = {-87.0f, 88.0f};

static inline float lm_expf(float x, float lo, float hi)
{
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  /* n = floor(x·log2 e + ½): fx > 0 after the clamp, so truncation floors.
   * A NaN passes the clamps; it takes n = 0 here (converting NaN to an
   * integer is undefined, UBSan's report) and still comes out NaN through
   * r below, so the caller's sum sees it. Finite x: unchanged bits. The
   * NaN is zeroed by an integer mask, not by x == x ? x : 0: GCC 12 does
   * not if-convert that select, and the loops calling lm_expf then ran
   * scalar in every clone (a third of an LM step at size M). */
  int32_t xb;
  memcpy(&xb, &x, sizeof xb);
  xb &= -(int32_t)((xb & 0x7fffffff) <= 0x7f800000); /* 0 for a NaN */
  float xn;
  memcpy(&xn, &xb, sizeof xn);
  const float fx = xn * 1.44269504088896341f + 128.5f;
  const float fl = (float)(int32_t)fx - 128.0f;
  float r = x - fl * 0.693359375f;
  r = r - fl * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  const int32_t bits = ((int32_t)fl + 127) * (1 << 23);
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

/* logsumexp of a row l (V): max and min in LN lanes (exact whatever the
 * order), then Σ exp(l − max) in LN lanes (each term <= 1, as PyTorch's
 * float kernels) whose totals are added in lane order in double.
 * *bad = 1 if some l[v] is not finite (NaN hides from max/min, not from
 * the sum). */
enum { LM_LANES = 16 };

#define LM_ROW_FUNCS(SUF, REAL_T, EXPF, ATTR)                                                  \
  ATTR static double lm_row_lse##SUF(const REAL_T *l, int V, int *bad)                         \
  {                                                                                            \
    const float b0 = moei_lm_exp_bounds[0], b1 = moei_lm_exp_bounds[1];                        \
    (void)b0;                                                                                  \
    (void)b1;                                                                                  \
    REAL_T hi[LM_LANES], lo[LM_LANES];                                                         \
    REAL_T zl[LM_LANES];                                                                       \
    for (int j = 0; j < LM_LANES; j++) {                                                       \
      hi[j] = lo[j] = l[0];                                                                    \
      zl[j] = 0;                                                                               \
    }                                                                                          \
    int v = 0;                                                                                 \
    for (; v + LM_LANES <= V; v += LM_LANES)                                                   \
      for (int j = 0; j < LM_LANES; j++) {                                                     \
        hi[j] = l[v + j] > hi[j] ? l[v + j] : hi[j];                                           \
        lo[j] = l[v + j] < lo[j] ? l[v + j] : lo[j];                                           \
      }                                                                                        \
    for (; v < V; v++) {                                                                       \
      hi[0] = l[v] > hi[0] ? l[v] : hi[0];                                                     \
      lo[0] = l[v] < lo[0] ? l[v] : lo[0];                                                     \
    }                                                                                          \
    REAL_T mx = hi[0], mn = lo[0];                                                             \
    for (int j = 1; j < LM_LANES; j++) {                                                       \
      mx = hi[j] > mx ? hi[j] : mx;                                                            \
      mn = lo[j] < mn ? lo[j] : mn;                                                            \
    }                                                                                          \
    for (v = 0; v + LM_LANES <= V; v += LM_LANES)                                              \
      for (int j = 0; j < LM_LANES; j++)                                                       \
        zl[j] += EXPF(l[v + j] - mx);                                                          \
    for (; v < V; v++)                                                                         \
      zl[0] += EXPF(l[v] - mx);                                                                \
    double z = 0;                                                                              \
    for (int j = 0; j < LM_LANES; j++)                                                         \
      z += (double)zl[j];                                                                      \
    *bad = !isfinite(mx) || !isfinite(mn) || !isfinite(z);                                     \
    return (double)mx + log(z);                                                                \
  }                                                                                            \
  /* l (V) ← exp(l − lse)·invN, with lse split as hi + rest so the float                       \
   * subtraction keeps lse's precision */                                                      \
  ATTR static void lm_row_softmax##SUF(REAL_T *l, int V, double lse, REAL_T invN)              \
  {                                                                                            \
    const float b0 = moei_lm_exp_bounds[0], b1 = moei_lm_exp_bounds[1];                        \
    (void)b0;                                                                                  \
    (void)b1;                                                                                  \
    const REAL_T hi = (REAL_T)lse, rest = (REAL_T)(lse - (double)hi);                          \
    for (int v = 0; v < V; v++)                                                                \
      l[v] = EXPF((l[v] - hi) - rest) * invN;                                                  \
  }

#define LM_EXPF(x) lm_expf((x), b0, b1)
LM_ROW_FUNCS(, float, LM_EXPF, LM_CLONES)
LM_ROW_FUNCS(_f64, double, exp, )

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "par_impl.h"
#include "lm_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "par_impl.h"
#include "lm_impl.h"

float *moe_lm_wte(moe_lm *m) { return m ? m->wte : NULL; }
float *moe_lm_wpe(moe_lm *m) { return m ? m->wpe : NULL; }
float *moe_lm_lnf_w(moe_lm *m) { return m ? m->lnfw : NULL; }
float *moe_lm_lnf_b(moe_lm *m) { return m ? m->lnfb : NULL; }
float *moe_lm_head(moe_lm *m) { return m ? m->head : NULL; }

float *moe_lm_grad_of(moe_lm *m, const float *p)
{
  if (!m || !p || p < m->params || p >= m->params + m->n_params)
    return NULL;
  return m->grads + (p - m->params);
}

/* ---- training ---- */

int moe_lm_step(moe_lm *m, moe_optim *o, const moe_lr_schedule *sched, double clip,
                double *grad_norm)
{
  MOE_CHECK_ARG(m, "lm step: NULL argument");
  return moei_clip_step(m->params, m->grads, m->n_params, o, sched, clip, grad_norm, "lm");
}

int moe_lm_bias_update(moe_lm *m, double gamma)
{
  MOE_CHECK_ARG(m, "lm bias update: NULL model");
  if (!m->cfg.ffn.gate.use_bias)
    return MOE_OK;
  for (int l = 0; l < m->cfg.L; l++) {
    int rc = moe_layer_bias_update(moe_block_ffn(m->blocks[l]), gamma);
    if (rc)
      return rc;
  }
  return MOE_OK;
}

int moe_lm_evaluate(moe_lm *m, const moe_token *tokens, size_t n, double *mean_ce, double *ppl,
                    size_t *n_predicted)
{
  MOE_CHECK_ARG(m && tokens, "lm evaluate: NULL argument");
  const size_t T = (size_t)m->cfg.T;
  MOE_CHECK_ARG(n >= T + 1, "lm evaluate: %zu tokens, need at least T + 1 = %zu", n, T + 1);
  const size_t W = moe_batch_eval_windows(n, T);
  double acc = 0;
  for (size_t w = 0; w < W;) {
    size_t filled = 0;
    int rc = moe_batch_eval(tokens, n, T, w, (size_t)m->max_B, m->ex, m->ey, &filled);
    if (rc)
      return rc;
    double loss = 0;
    rc = moe_lm_forward_eval(m, (int)filled, (int)T, m->ex, m->ey, &loss);
    if (rc)
      return moe_error(rc, "lm evaluate: windows %zu..%zu: %s", w, w + filled - 1,
                       moe_last_error());
    acc += m->ce * (double)(filled * T);
    w += filled;
  }
  const double mce = acc / (double)(W * T);
  if (mean_ce)
    *mean_ce = mce;
  if (ppl)
    *ppl = exp(mce);
  if (n_predicted)
    *n_predicted = W * T;
  return MOE_OK;
}

/* ---- checkpoints ---- */

static const char moe_lm_magic[8] = {'M', 'O', 'E', 'L', 'M', 'C', 'K', '\n'};
/* Version 2 added zloss_coef; version 1 files load with zloss_coef 0. */
#define MOE_LM_CKPT_VERSION 2u

/* A growable little-endian byte buffer. */
typedef struct {
  unsigned char *p;
  size_t n, cap;
  int fail;
} wbuf;

static void wb_put(wbuf *b, const void *src, size_t len)
{
  if (b->fail)
    return;
  if (b->n + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + len)
      cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) {
      b->fail = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, len);
  b->n += len;
}

static void wb_u32(wbuf *b, uint32_t v)
{
  unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  wb_put(b, c, 4);
}

static void wb_u64(wbuf *b, uint64_t v)
{
  wb_u32(b, (uint32_t)v);
  wb_u32(b, (uint32_t)(v >> 32));
}

static void wb_f64(wbuf *b, double d)
{
  uint64_t v;
  memcpy(&v, &d, 8);
  wb_u64(b, v);
}

static void wb_f32(wbuf *b, float f)
{
  uint32_t v;
  memcpy(&v, &f, 4);
  wb_u32(b, v);
}

static uint32_t rd_u32(const unsigned char *c)
{
  return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}
static uint64_t rd_u64(const unsigned char *c) { return rd_u32(c) | (uint64_t)rd_u32(c + 4) << 32; }
static double rd_f64(const unsigned char *c)
{
  uint64_t v = rd_u64(c);
  double d;
  memcpy(&d, &v, 8);
  return d;
}
static float rd_f32(const unsigned char *c)
{
  uint32_t v = rd_u32(c);
  float f;
  memcpy(&f, &v, 4);
  return f;
}

/* The config fields in file order: 17 u32 then 3 f64 (2 in version 1). */
#define MOE_LM_NCFG_U32 17
static void cfg_to_u32(const moe_lm_config *c, uint32_t u[MOE_LM_NCFG_U32])
{
  const moe_layer_config *f = &c->ffn;
  uint32_t v[MOE_LM_NCFG_U32] = {
    (uint32_t)c->V, (uint32_t)c->T, (uint32_t)c->D, (uint32_t)c->L, (uint32_t)c->H,
    (uint32_t)!!c->tie, (uint32_t)f->E, (uint32_t)f->K, (uint32_t)f->S, (uint32_t)f->gate.score,
    (uint32_t)!!f->gate.normalize, (uint32_t)!!f->gate.use_bias, (uint32_t)f->expert.kind,
    (uint32_t)f->expert.F, (uint32_t)f->expert.act, (uint32_t)!!f->expert.bias,
    (uint32_t)f->combine};
  memcpy(u, v, sizeof v);
}

static const char *const cfg_field_names[MOE_LM_NCFG_U32] = {
  "V", "T", "D", "L", "H", "tie", "E", "K", "S", "gate.score", "gate.normalize", "gate.use_bias",
  "expert.kind", "expert.F", "expert.act", "expert.bias", "combine"};

int moe_lm_save(const moe_lm *m, const char *path, long step)
{
  MOE_CHECK_ARG(m && path, "lm save: NULL argument");
  const size_t n = m->n_params;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(m->params[i]))
      return moe_error(MOE_EDOM, "lm save %s: parameter %zu is %g; not saved", path, i,
                       (double)m->params[i]);
  wbuf b = {0};
  wb_put(&b, moe_lm_magic, 8);
  wb_u32(&b, MOE_LM_CKPT_VERSION);
  uint32_t u[MOE_LM_NCFG_U32];
  cfg_to_u32(&m->cfg, u);
  for (int i = 0; i < MOE_LM_NCFG_U32; i++)
    wb_u32(&b, u[i]);
  wb_f64(&b, m->cfg.ffn.gate.route_scale);
  wb_f64(&b, m->cfg.ffn.balance_coef);
  wb_f64(&b, m->cfg.ffn.zloss_coef);
  wb_u64(&b, (uint64_t)(int64_t)step);
  wb_u64(&b, (uint64_t)n);
  for (size_t i = 0; i < n; i++)
    wb_f32(&b, m->params[i]);
  for (int l = 0; l < m->cfg.L; l++) {
    const float *bias = moe_layer_bias(moe_block_ffn(m->blocks[l]));
    for (int e = 0; e < m->cfg.ffn.E; e++)
      wb_f32(&b, bias[e]);
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < b.n;) { /* crc32 takes uInt lengths */
    size_t len = b.n - off > (1u << 30) ? (1u << 30) : b.n - off;
    crc = crc32(crc, b.p + off, (uInt)len);
    off += len;
  }
  wb_u32(&b, (uint32_t)crc);
  if (b.fail) {
    free(b.p);
    return moe_error(MOE_ENOMEM, "lm save %s: %zu bytes", path, b.n);
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) {
    free(b.p);
    return moe_error(MOE_ENOMEM, "lm save %s", path);
  }
  snprintf(tmp, plen + 16, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  int rc = MOE_OK;
  if (!f) {
    rc = moe_error(MOE_EIO, "lm save: cannot create %s: %s", tmp, strerror(errno));
  } else {
    size_t w = fwrite(b.p, 1, b.n, f);
    int bad = w != b.n;
    bad |= fclose(f) != 0;
    if (bad)
      rc = moe_error(MOE_EIO, "lm save: writing %s failed", tmp);
    else if (rename(tmp, path) != 0)
      rc = moe_error(MOE_EIO, "lm save: rename %s -> %s: %s", tmp, path, strerror(errno));
    if (rc)
      remove(tmp);
  }
  free(tmp);
  free(b.p);
  return rc;
}

int moe_lm_load(const char *path, int max_B, moe_lm **out, long *step)
{
  MOE_CHECK_ARG(path && out, "lm load: NULL argument");
  MOE_CHECK_ARG(max_B >= 1, "lm load: max_B=%d < 1", max_B);
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return moe_error(MOE_EIO, "lm load: cannot open %s: %s", path, strerror(errno));
  unsigned char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      size_t nc = cap ? 2 * cap : 65536;
      unsigned char *q = realloc(buf, nc);
      if (!q) {
        fclose(f);
        free(buf);
        return moe_error(MOE_ENOMEM, "lm load %s", path);
      }
      buf = q;
      cap = nc;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  int ioerr = ferror(f);
  fclose(f);
  int rc = MOE_OK;
  moe_lm *m = NULL;
  size_t head = 8 + 4 + 4 * MOE_LM_NCFG_U32 + 24 + 8 + 8;
  if (ioerr) {
    rc = moe_error(MOE_EIO, "lm load: reading %s failed", path);
    goto done;
  }
  if (n < 8 || memcmp(buf, moe_lm_magic, 8) != 0) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s is not a moebench LM checkpoint (bad magic)", path);
    goto done;
  }
  if (n < 12) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s is truncated: %zu bytes, no version", path, n);
    goto done;
  }
  uint32_t version = rd_u32(buf + 8);
  if (version < 1 || version > MOE_LM_CKPT_VERSION) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s has version %lu, this libmoe reads versions 1 to %u",
                   path, (unsigned long)version, MOE_LM_CKPT_VERSION);
    goto done;
  }
  const int nf64 = version == 1 ? 2 : 3; /* route_scale balance_coef [zloss_coef] */
  head -= (size_t)8 * (3 - nf64);
  if (n < head) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s is truncated: %zu bytes, header needs %zu", path,
                   n, head);
    goto done;
  }
  uint32_t u[MOE_LM_NCFG_U32];
  for (int i = 0; i < MOE_LM_NCFG_U32; i++) {
    u[i] = rd_u32(buf + 12 + 4 * i);
    if (u[i] > INT_MAX) {
      rc = moe_error(MOE_EFORMAT, "lm load: %s: config field %s = %lu out of range", path,
                     cfg_field_names[i], (unsigned long)u[i]);
      goto done;
    }
  }
  const unsigned char *p = buf + 12 + 4 * MOE_LM_NCFG_U32;
  moe_lm_config c;
  memset(&c, 0, sizeof c);
  c.V = (int)u[0];
  c.T = (int)u[1];
  c.D = (int)u[2];
  c.L = (int)u[3];
  c.H = (int)u[4];
  c.tie = (int)u[5];
  c.ffn.D = c.D;
  c.ffn.E = (int)u[6];
  c.ffn.K = (int)u[7];
  c.ffn.S = (int)u[8];
  c.ffn.gate.score = (moe_score_fn)u[9];
  c.ffn.gate.normalize = (int)u[10];
  c.ffn.gate.use_bias = (int)u[11];
  c.ffn.expert.kind = (moe_expert_kind)u[12];
  c.ffn.expert.F = (int)u[13];
  c.ffn.expert.act = (moe_act)u[14];
  c.ffn.expert.bias = (int)u[15];
  c.ffn.combine = (moe_combine)u[16];
  c.ffn.gate.route_scale = rd_f64(p);
  c.ffn.balance_coef = rd_f64(p + 8);
  c.ffn.zloss_coef = nf64 > 2 ? rd_f64(p + 16) : 0.0;
  p += 8 * nf64;
  const long st = (long)(int64_t)rd_u64(p);
  const uint64_t np = rd_u64(p + 8);
  if (moe_lm_check(&c)) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s: bad config: %s", path, moe_last_error());
    goto done;
  }
  const size_t want_np = moei_lm_param_count(&c);
  if (np != want_np) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s: %llu parameters, its config has %zu", path,
                   (unsigned long long)np, want_np);
    goto done;
  }
  const size_t total = head + 4 * (want_np + (size_t)c.L * c.ffn.E) + 4;
  if (n != total) {
    rc = moe_error(MOE_EFORMAT, "lm load: %s is %s: %zu bytes, expected %zu", path,
                   n < total ? "truncated" : "too long", n, total);
    goto done;
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < n - 4;) {
    size_t len = n - 4 - off > (1u << 30) ? (1u << 30) : n - 4 - off;
    crc = crc32(crc, buf + off, (uInt)len);
    off += len;
  }
  if ((uint32_t)crc != rd_u32(buf + n - 4)) {
    rc = moe_error(MOE_ECHECKSUM, "lm load: %s: CRC-32 mismatch (stored %08lx, computed %08lx)",
                   path, (unsigned long)rd_u32(buf + n - 4), (unsigned long)(uint32_t)crc);
    goto done;
  }
  const unsigned char *q = buf + head;
  for (size_t i = 0; i < want_np; i++) {
    float v = rd_f32(q + 4 * i);
    if (!isfinite(v)) {
      rc = moe_error(MOE_EDOM, "lm load: %s: parameter %zu is %g", path, i, (double)v);
      goto done;
    }
  }
  m = moe_lm_alloc(&c, max_B);
  if (!m) {
    rc = moe_error(MOE_ENOMEM, "lm load %s: %s", path, moe_last_error());
    goto done;
  }
  for (size_t i = 0; i < want_np; i++)
    m->params[i] = rd_f32(q + 4 * i);
  q += 4 * want_np;
  for (int l = 0; l < c.L; l++) {
    float *bias = moe_layer_bias(moe_block_ffn(m->blocks[l]));
    for (int e = 0; e < c.ffn.E; e++, q += 4)
      bias[e] = rd_f32(q);
  }
  if (step)
    *step = st;
  *out = m;
done:
  free(buf);
  return rc;
}
