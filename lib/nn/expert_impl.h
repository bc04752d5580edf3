/* SPDX-License-Identifier: GPL-3.0-or-later */
/* expert_impl.h — linear and FFN experts, written once for REAL (see
 * real.h). Included by expert.c; not installed. The moei_ functions skip
 * argument checks: the MoE layer calls them on buffers it sized itself. */

static void SFX(add_rows)(int N, int C, const REAL *b, REAL *y) /* y (N, C) = b (C) per row */
{
  for (int n = 0; n < N; n++)
    memcpy(y + (size_t)n * C, b, (size_t)C * sizeof *y);
}

static void SFX(sum_rows)(int N, int C, const REAL *d, REAL *g) /* g (C) += Σ_n d (N, C) */
{
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      g[c] += d[(size_t)n * C + c];
}

/* Activation of h (n) into a (n), and its derivative act'(h) into g (n),
 * kept for the backward pass so that it never re-evaluates exp/erf.
 * h may be g (in place: g is read before it is written, chunk by chunk).
 * exp, erf and tanh go through SLEEF's vector kernels (vmath.h: ≤ 1 ULP,
 * the same bits on every machine) in chunks that stay in L1; the
 * arithmetic around them is element-wise and vectorises, also for AVX2
 * (MOE_VEC_CLONES: no reductions, no contraction, so every lane does the
 * scalar operations in the scalar order, the same bits). */
#define MOE_ACT_CHUNK 256
MOE_VEC_CLONES static void SFX(act_forward)(moe_act act, size_t n, const REAL *h, REAL *a, REAL *g)
{
  REAL u[MOE_ACT_CHUNK], q[MOE_ACT_CHUNK];
  for (size_t i0 = 0; i0 < n; i0 += MOE_ACT_CHUNK) {
    const size_t m = n - i0 < MOE_ACT_CHUNK ? n - i0 : MOE_ACT_CHUNK;
    const REAL *hc = h + i0;
    REAL *ac = a + i0, *gc = g + i0;
    switch (act) {
    case MOE_ACT_RELU:
      for (size_t i = 0; i < m; i++) {
        REAL x = hc[i];
        ac[i] = x > 0 ? x : 0;
        gc[i] = x > 0 ? 1 : 0;
      }
      break;
    case MOE_ACT_GELU: /* a = ½h(1 + erf(h/√2)),  a' = Φ(h) + h·φ(h) */
      for (size_t i = 0; i < m; i++) {
        u[i] = hc[i] * (REAL)MOE_SQRT1_2;
        q[i] = (REAL)-0.5 * hc[i] * hc[i];
      }
      R_VERF(m, u, u);
      R_VEXP(m, q, q);
      for (size_t i = 0; i < m; i++) {
        REAL x = hc[i], cdf = (REAL)0.5 * (1 + u[i]);
        ac[i] = (REAL)0.5 * x * (1 + u[i]);
        gc[i] = cdf + x * ((REAL)MOE_INV_SQRT_2PI * q[i]);
      }
      break;
    case MOE_ACT_SILU: /* a = h·σ(h),  a' = σ(h)(1 + h(1 − σ(h))) */
      for (size_t i = 0; i < m; i++)
        u[i] = -hc[i];
      R_VEXP(m, u, u);
      for (size_t i = 0; i < m; i++) {
        REAL x = hc[i], sg = 1 / (1 + u[i]);
        ac[i] = x / (1 + u[i]);
        gc[i] = sg * (1 + x * (1 - sg));
      }
      break;
    case MOE_ACT_TANH: /* a' = 1 − a² */
      R_VTANH(m, hc, ac);
      for (size_t i = 0; i < m; i++)
        gc[i] = 1 - ac[i] * ac[i];
      break;
    }
  }
}

/* d (n) *= act'(h), from the derivative the forward pass kept. ReLU
 * selects rather than multiplies, so an inf or NaN upstream of a dead
 * unit stays out of the gradient, as in PyTorch. */
MOE_VEC_CLONES static void SFX(act_backward)(moe_act act, size_t n, const REAL *restrict g, REAL *restrict d)
{
  if (act == MOE_ACT_RELU)
    for (size_t i = 0; i < n; i++)
      d[i] = g[i] != 0 ? d[i] : 0;
  else
    for (size_t i = 0; i < n; i++)
      d[i] *= g[i];
}

/* GEMM layouts: the weights keep PyTorch's (out, in) layout, so the
 * forward multiplies by Wᵀ (NoTrans, Trans) and the backward uses NN for
 * dh and dx and TN for dW. Measured with OpenBLAS 0.3.21 (Haswell kernels)
 * on one thread, the alternative forms of each product run within 3% of
 * each other at (rows, D, F) = (512, 128, 128) and (128, 128, 128); at
 * (96, 64, 64) the forward's NT form is 8% slower than NN, which a
 * per-step transposed copy of W1 would only just pay for. So the layout is
 * fixed, not chosen per shape; a choice made by timing would also make
 * the bits depend on the timing.
 *
 * expert_fwd_rows: rows [r0, r1) of an expert's forward over N rows (x,
 * y and the cache (a, h: (N, F) each) hold all N rows): the bias rows,
 * products and activation of those rows alone; moei_expert_fwd is all N
 * rows, moei_expert_fwd_blocked (below) its row blocks. */
static void SFX(expert_fwd_rows)(const moe_expert_config *cfg, const moe_expert_view *v, int D,
                                 const REAL *p, int N, int r0, int r1, const REAL *x, REAL *cache,
                                 REAL *y)
{
  const REAL one = 1;
  const int n = r1 - r0;
  const REAL *xr = x + (size_t)r0 * D;
  REAL *yr = y + (size_t)r0 * D;
  if (cfg->kind == MOE_EXPERT_LINEAR) {
    REAL beta = 0;
    if (v->b >= 0) {
      SFX(add_rows)(n, D, p + v->b, yr);
      beta = 1;
    }
    R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, D, one, xr, D, p + v->W, D, beta, yr, D);
    return;
  }
  const int F = cfg->F;
  REAL *a = cache + (size_t)r0 * F, *h = cache + (size_t)N * F + (size_t)r0 * F;
  REAL beta = 0;
  if (v->b1 >= 0) {
    SFX(add_rows)(n, F, p + v->b1, h);
    beta = 1;
  }
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, D, one, xr, D, p + v->W1, D, beta, h, F);
  SFX(act_forward)(cfg->act, (size_t)n * F, h, a, h);
  beta = 0;
  if (v->b2 >= 0) {
    SFX(add_rows)(n, D, p + v->b2, yr);
    beta = 1;
  }
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, F, one, a, F, p + v->W2, F, beta, yr, D);
}

void SFX(moei_expert_fwd)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                          const REAL *x, REAL *cache, REAL *y)
{
  if (N == 0)
    return;
  moe_expert_view v;
  moe_expert_view_get(cfg, D, &v);
  SFX(expert_fwd_rows)(cfg, &v, D, p, N, 0, N, x, cache, y);
}

#if !MOE_REAL_DOUBLE
/* Whether moei_expert_bwd may accumulate dx into an addend (dx_acc): the
 * dx product's inner dimension (D for a linear expert, F for an FFN) is
 * at most MOE_GEMM_FUSE_K, one K-panel of every BLAS kernel. */
int moei_expert_dx_fusable(const moe_expert_config *cfg, int D)
{
  return (cfg->kind == MOE_EXPERT_LINEAR ? D : cfg->F) <= MOE_GEMM_FUSE_K;
}
#endif

void SFX(moei_expert_bwd)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                          const REAL *x, const REAL *cache, const REAL *dy, REAL *g, REAL *dx,
                          int dx_acc, REAL *work)
{
  if (N == 0)
    return;
  moe_expert_view v;
  moe_expert_view_get(cfg, D, &v);
  const REAL one = 1, zero = 0;
  /* dx = Z + dx_product as one β = 1 product: the bits of computing the
   * product with β = 0 and adding it to Z after (MOE_GEMM_FUSE_K) */
  const REAL dx_beta = dx_acc ? one : zero;
  if (cfg->kind == MOE_EXPERT_LINEAR) {
    /* dW (D, D) += dyᵀ x;  db += Σ dy;  dx = dy W */
    R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, N, one, dy, D, x, D, one, g + v.W, D);
    if (v.b >= 0)
      SFX(sum_rows)(N, D, dy, g + v.b);
    if (dx)
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, D, one, dy, D, p + v.W, D, dx_beta, dx,
             D);
    return;
  }
  const int F = cfg->F;
  const REAL *a = cache, *ga = cache + (size_t)N * F; /* act(h), act'(h) */
  REAL *dh = work; /* (N, F): first da, then dh in place */
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, F, D, one, dy, D, p + v.W2, F, zero, dh, F);
  R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, D, F, N, one, dy, D, a, F, one, g + v.W2, F);
  if (v.b2 >= 0)
    SFX(sum_rows)(N, D, dy, g + v.b2);
  SFX(act_backward)(cfg->act, (size_t)N * F, ga, dh);
  R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, F, D, N, one, dh, F, x, D, one, g + v.W1, D);
  if (v.b1 >= 0)
    SFX(sum_rows)(N, F, dh, g + v.b1);
  if (dx)
    R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, F, one, dh, F, p + v.W1, D, dx_beta, dx,
           D);
}

/* An expert with every one of N rows (a dense FFN or linear layer), or
 * the MoE layer's split expert (most of its rows), on up to nt threads:
 * moei_expert_fwd and moei_expert_bwd with every product over the N rows cut into par_gemm's row blocks (par_impl.h:
 * moei_par_nblocks(N), the same blocks and so the same BLAS calls for
 * every nt, one thread doing them in turn) and the weight gradients'
 * products into the row blocks of the weight (D or F rows). Each row
 * block's products, bias rows and activation run on one thread, in the
 * order of the unblocked functions; the bias gradients are each one
 * ordered sum over the rows, one work item. On the Haswell kernels a
 * row block of a product has the bits of the same rows in one call
 * (par_impl.h), so these functions give moei_expert_fwd/bwd's bits there
 * (the results archived before them: lm-perf and vision-perf parameters
 * unchanged); kernels that choose their path by the call's size
 * (SkylakeX's small-matrix path) may give other bits than one call, the
 * same for every nt. */
void SFX(moei_expert_fwd_block)(const moe_expert_config *cfg, int D, const REAL *p, int N, int b,
                                const REAL *x, REAL *cache, REAL *y)
{
  moe_expert_view v;
  moe_expert_view_get(cfg, D, &v);
  int r0, r1;
  moei_par_block(N, moei_par_nblocks(N), b, &r0, &r1);
  SFX(expert_fwd_rows)(cfg, &v, D, p, N, r0, r1, x, cache, y);
}

void SFX(moei_expert_fwd_blocked)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                                  const REAL *x, REAL *cache, REAL *y, int nt)
{
  if (N == 0)
    return;
  const int nb = moei_par_nblocks(N);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && nb > 1)
  for (int b = 0; b < nb; b++)
    SFX(moei_expert_fwd_block)(cfg, D, p, N, b, x, cache, y);
}

/* The blocked backward's work items. A linear expert: phase 0 only, dW's
 * row blocks, db, dx's row blocks. An FFN: phase 0, dW2's row blocks,
 * db2, and per row block dh = (dy W2)·act'(h) and dx = dh W1; phase 1,
 * from every row of dh, dW1's row blocks and db1. */
int SFX(moei_expert_bwd_nitems)(const moe_expert_config *cfg, int D, int N, int has_dx, int phase)
{
  if (N == 0)
    return 0;
  moe_expert_view v;
  moe_expert_view_get(cfg, D, &v);
  const int nb = moei_par_nblocks(N);
  if (cfg->kind == MOE_EXPERT_LINEAR)
    return phase ? 0 : moei_par_nblocks(D) + (v.b >= 0) + (has_dx ? nb : 0);
  if (phase)
    return moei_par_nblocks(cfg->F) + (v.b1 >= 0);
  return moei_par_nblocks(D) + (v.b2 >= 0) + nb;
}

void SFX(moei_expert_bwd_item)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                               const REAL *x, const REAL *cache, const REAL *dy, REAL *g, REAL *dx,
                               int dx_acc, REAL *work, int phase, int it)
{
  moe_expert_view v;
  moe_expert_view_get(cfg, D, &v);
  const REAL one = 1, zero = 0, dx_beta = dx_acc ? one : zero;
  const int nb = moei_par_nblocks(N);
  if (cfg->kind == MOE_EXPERT_LINEAR) {
    const int nw = moei_par_nblocks(D), nbias = v.b >= 0;
    if (it < nw)
      SFX(par_gemm_block)(it, nw, CblasTrans, CblasNoTrans, D, D, N, one, dy, D, x, D, one,
                          g + v.W, D);
    else if (it < nw + nbias)
      SFX(sum_rows)(N, D, dy, g + v.b);
    else
      SFX(par_gemm_block)(it - nw - nbias, nb, CblasNoTrans, CblasNoTrans, N, D, D, one, dy, D,
                          p + v.W, D, dx_beta, dx, D);
    return;
  }
  const int F = cfg->F;
  const REAL *a = cache, *ga = cache + (size_t)N * F; /* act(h), act'(h) */
  REAL *dh = work;                                    /* (N, F): first da, then dh in place */
  REAL *gb2 = v.b2 >= 0 ? g + v.b2 : NULL, *gb1 = v.b1 >= 0 ? g + v.b1 : NULL;
  if (phase) {
    const int nw1 = moei_par_nblocks(F);
    if (it < nw1)
      SFX(par_gemm_block)(it, nw1, CblasTrans, CblasNoTrans, F, D, N, one, dh, F, x, D, one,
                          g + v.W1, D);
    else
      SFX(sum_rows)(N, F, dh, gb1);
    return;
  }
  const int nw2 = moei_par_nblocks(D), nb2 = gb2 != NULL;
  if (it < nw2) {
    SFX(par_gemm_block)(it, nw2, CblasTrans, CblasNoTrans, D, F, N, one, dy, D, a, F, one,
                        g + v.W2, F);
    return;
  }
  if (it < nw2 + nb2) {
    SFX(sum_rows)(N, D, dy, gb2);
    return;
  }
  int r0, r1;
  moei_par_block(N, nb, it - nw2 - nb2, &r0, &r1);
  const int n = r1 - r0;
  REAL *dhr = dh + (size_t)r0 * F;
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, F, D, one, dy + (size_t)r0 * D, D, p + v.W2,
         F, zero, dhr, F);
  SFX(act_backward)(cfg->act, (size_t)n * F, ga + (size_t)r0 * F, dhr);
  if (dx)
    R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, F, one, dhr, F, p + v.W1, D, dx_beta,
           dx + (size_t)r0 * D, D);
}

void SFX(moei_expert_bwd_blocked)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                                  const REAL *x, const REAL *cache, const REAL *dy, REAL *g,
                                  REAL *dx, int dx_acc, REAL *work, int nt)
{
  for (int phase = 0; phase < 2; phase++) {
    const int n = SFX(moei_expert_bwd_nitems)(cfg, D, N, dx != NULL, phase);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1 && n > 1)
    for (int it = 0; it < n; it++)
      SFX(moei_expert_bwd_item)(cfg, D, p, N, x, cache, dy, g, dx, dx_acc, work, phase, it);
  }
}

int SFX(moe_expert_forward)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                            const REAL *x, REAL *cache, REAL *y)
{
  int rc = moe_expert_check(cfg, D);
  if (rc)
    return rc;
  MOE_CHECK_ARG(N >= 0, "expert forward: N=%d < 0", N);
  if (N == 0)
    return MOE_OK;
  MOE_CHECK_ARG(p && x && y, "expert forward: NULL buffer");
  MOE_CHECK_ARG(cfg->kind == MOE_EXPERT_LINEAR || cache, "expert forward: NULL cache for an FFN");
  SFX(moei_expert_fwd)(cfg, D, p, N, x, cache, y);
  return MOE_OK;
}

int SFX(moe_expert_backward)(const moe_expert_config *cfg, int D, const REAL *p, int N,
                             const REAL *x, const REAL *cache, const REAL *dy, REAL *g, REAL *dx,
                             REAL *work)
{
  int rc = moe_expert_check(cfg, D);
  if (rc)
    return rc;
  MOE_CHECK_ARG(N >= 0, "expert backward: N=%d < 0", N);
  if (N == 0)
    return MOE_OK;
  MOE_CHECK_ARG(p && x && dy && g, "expert backward: NULL buffer");
  MOE_CHECK_ARG(cfg->kind == MOE_EXPERT_LINEAR || (cache && work),
                "expert backward: NULL cache or work for an FFN");
  SFX(moei_expert_bwd)(cfg, D, p, N, x, cache, dy, g, dx, 0, work);
  return MOE_OK;
}

int SFX(moe_expert_init)(const moe_expert_config *cfg, int D, REAL *p, gsl_rng *r)
{
  int rc = moe_expert_check(cfg, D);
  if (rc)
    return rc;
  MOE_CHECK_ARG(p && r, "expert init: NULL argument");
  moe_expert_view v;
  moe_expert_view_get(cfg, D, &v);
  size_t n = moe_expert_param_count(cfg, D);
  memset(p, 0, n * sizeof *p);
  if (cfg->kind == MOE_EXPERT_LINEAR) {
    R_NORMAL(r, p + v.W, (size_t)D * D, 1 / sqrt((double)D));
  } else {
    R_NORMAL(r, p + v.W1, (size_t)cfg->F * D, 1 / sqrt((double)D));
    R_NORMAL(r, p + v.W2, (size_t)D * cfg->F, 1 / sqrt((double)cfg->F));
  }
  return MOE_OK;
}
