/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nn_impl.h — embedding, LayerNorm, attention and the pre-LN block,
 * written once for REAL (see real.h, moe/nn.h). Included by nn.c; not
 * installed. Letters: B sequences, T positions, N = B·T rows, D width,
 * H heads, hs = D/H, V vocabulary. */

/* ---- embedding ---- */

/* The embedding on nt threads, for moe_lm (the ids checked): the forward
 * by rows; the backward by blocks of 16 columns, each column adding its
 * tokens in token order (b, t), as one thread does. */
void SFX(moei_embedding_forward)(int nt, int B, int T, int D, const uint32_t *tok, const REAL *wte,
                                 const REAL *wpe, REAL *out)
{
  const int N = B * T;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int i = 0; i < N; i++) {
    REAL *o = out + (size_t)i * D;                /* (D) */
    const REAL *e = wte + (size_t)tok[i] * D;     /* (D) */
    if (wpe) {
      const REAL *p = wpe + (size_t)(i % T) * D;
      for (int d = 0; d < D; d++)
        o[d] = e[d] + p[d];
    } else {
      memcpy(o, e, (size_t)D * sizeof *o);
    }
  }
}

void SFX(moei_embedding_backward)(int nt, int B, int T, int D, const uint32_t *tok,
                                  const REAL *dout, REAL *dwte, REAL *dwpe)
{
  const int nc = (D + 15) / 16; /* column blocks of 16 */
#pragma omp parallel for num_threads(nt < nc ? nt : nc) schedule(static) if (nt > 1)
  for (int cb = 0; cb < nc; cb++) {
    const int d0 = cb * 16, d1 = d0 + 16 < D ? d0 + 16 : D;
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++) {
        const REAL *g = dout + ((size_t)b * T + t) * D;
        REAL *e = dwte + (size_t)tok[(size_t)b * T + t] * D;
        for (int d = d0; d < d1; d++)
          e[d] += g[d];
        if (dwpe) {
          REAL *p = dwpe + (size_t)t * D;
          for (int d = d0; d < d1; d++)
            p[d] += g[d];
        }
      }
  }
}

int SFX(moe_embedding_forward)(int B, int T, int D, int V, const uint32_t *tok, const REAL *wte,
                               const REAL *wpe, REAL *out)
{
  MOE_CHECK_ARG(B >= 0 && T >= 0 && D >= 1 && V >= 1, "embedding: B=%d T=%d D=%d V=%d", B, T, D,
                V);
  MOE_CHECK_ARG((size_t)B * T == 0 || (tok && wte && out), "embedding: NULL buffer");
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      uint32_t id = tok[(size_t)b * T + t];
      if (id >= (uint32_t)V)
        return moe_error(MOE_ERANGE, "embedding: token id %lu at b=%d t=%d is >= V=%d",
                         (unsigned long)id, b, t, V);
    }
  SFX(moei_embedding_forward)(1, B, T, D, tok, wte, wpe, out);
  return MOE_OK;
}

int SFX(moe_embedding_backward)(int B, int T, int D, int V, const uint32_t *tok, const REAL *dout,
                                REAL *dwte, REAL *dwpe)
{
  MOE_CHECK_ARG(B >= 0 && T >= 0 && D >= 1 && V >= 1, "embedding backward: B=%d T=%d D=%d V=%d",
                B, T, D, V);
  MOE_CHECK_ARG((size_t)B * T == 0 || (tok && dout && dwte), "embedding backward: NULL buffer");
  for (size_t i = 0; i < (size_t)B * T; i++)
    if (tok[i] >= (uint32_t)V)
      return moe_error(MOE_ERANGE, "embedding backward: token id %lu >= V=%d",
                       (unsigned long)tok[i], V);
  SFX(moei_embedding_backward)(1, B, T, D, tok, dout, dwte, dwpe);
  return MOE_OK;
}

/* ---- LayerNorm ---- */

#define MOE_LN_EPS 1e-5

/* A row's LayerNorm sums (mean, variance; in the backward mean(g·w) and
 * mean(g·w·n̂)) are chains of D dependent additions in double, d = 0..D−1,
 * which leave the CPU idle between additions (4 cycles each). So
 * MOE_LN_ROWS rows are computed side by side: every row keeps its own
 * chains in its own order, the rows' chains overlap. A result is the same
 * bit for bit whatever the grouping or the thread that ran the group. */
#ifndef MOE_LN_ROWS
#define MOE_LN_ROWS 4
/* the lanes' loops unrolled, so each lane's sums stay in a register */
#if defined(__GNUC__) && !defined(__clang__)
#define MOE_LN_LANES _Pragma("GCC unroll 4")
#else
#define MOE_LN_LANES
#endif
#endif

/* LayerNorm forward of the n <= MOE_LN_ROWS rows from x (lanes past n
 * redo row 0 and are dropped). Also compiled for AVX2 (MOE_VEC_CLONES):
 * the lanes' sums are vectorised across the lanes only (GCC does not
 * reorder a floating-point sum without -fassociative-math), the rest is
 * element-wise, contraction is off: each lane, each element, computed by
 * the same operations in the same order, so the same bits. */
MOE_VEC_CLONES static void SFX(ln_fwd_rows)(int n, int D, const REAL *x, const REAL *w, const REAL *b,
                                    REAL *y, REAL *mean, REAL *rstd)
{
  const REAL *xr[MOE_LN_ROWS];
  double m[MOE_LN_ROWS], v[MOE_LN_ROWS];
  for (int k = 0; k < MOE_LN_ROWS; k++) {
    xr[k] = x + (size_t)(k < n ? k : 0) * D; /* (D) */
    m[k] = v[k] = 0;
  }
  for (int d = 0; d < D; d++)
    MOE_LN_LANES
    for (int k = 0; k < MOE_LN_ROWS; k++)
      m[k] += xr[k][d];
  MOE_LN_LANES
  for (int k = 0; k < MOE_LN_ROWS; k++)
    m[k] /= D;
  for (int d = 0; d < D; d++)
    MOE_LN_LANES
    for (int k = 0; k < MOE_LN_ROWS; k++) {
      double c = xr[k][d] - m[k];
      v[k] += c * c;
    }
  for (int k = 0; k < n; k++) {
    v[k] /= D;
    const REAL mu = (REAL)m[k], r = (REAL)(1.0 / sqrt(v[k] + MOE_LN_EPS));
    const REAL *xi = xr[k];
    REAL *yi = y + (size_t)k * D; /* (D) */
    for (int d = 0; d < D; d++)
      yi[d] = (xi[d] - mu) * r * w[d] + b[d];
    mean[k] = mu;
    rstd[k] = r;
  }
}

/* LayerNorm forward of rows [r0, r1) (groups of MOE_LN_ROWS from r0). */
void SFX(moei_ln_forward_rows)(int r0, int r1, int D, const REAL *x, const REAL *w,
                                const REAL *b, REAL *y, REAL *mean, REAL *rstd)
{
  for (int i0 = r0; i0 < r1; i0 += MOE_LN_ROWS) {
    const int n = r1 - i0 < MOE_LN_ROWS ? r1 - i0 : MOE_LN_ROWS;
    const size_t o = (size_t)i0 * D;
    SFX(ln_fwd_rows)(n, D, x + o, w, b, y + o, mean + i0, rstd + i0);
  }
}

/* LayerNorm forward on nt threads, groups of MOE_LN_ROWS rows split. */
void SFX(moei_ln_forward)(int nt, int N, int D, const REAL *x, const REAL *w, const REAL *b,
                            REAL *y, REAL *mean, REAL *rstd)
{
  const int ng = (N + MOE_LN_ROWS - 1) / MOE_LN_ROWS;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int g = 0; g < ng; g++) {
    const int i0 = g * MOE_LN_ROWS, n = N - i0 < MOE_LN_ROWS ? N - i0 : MOE_LN_ROWS;
    SFX(ln_fwd_rows)(n, D, x + (size_t)i0 * D, w, b, y + (size_t)i0 * D, mean + i0, rstd + i0);
  }
}

int SFX(moe_layernorm_forward)(int N, int D, const REAL *x, const REAL *w, const REAL *b, REAL *y,
                               REAL *mean, REAL *rstd)
{
  MOE_CHECK_ARG(N >= 0 && D >= 1, "layernorm: N=%d D=%d", N, D);
  MOE_CHECK_ARG(N == 0 || (x && w && b && y && mean && rstd), "layernorm: NULL buffer");
  SFX(moei_ln_forward)(1, N, D, x, w, b, y, mean, rstd);
  return MOE_OK;
}

/* LayerNorm backward of the n <= MOE_LN_ROWS rows from x, dy: dx += (if
 * dx), and dw, db += in row order (if dw; each column's rows in order, as
 * the caller runs the groups in order). AVX2 clone as ln_fwd_rows. */
MOE_VEC_CLONES static void SFX(ln_bwd_rows)(int n, int D, const REAL *x, const REAL *w,
                                    const REAL *mean, const REAL *rstd, const REAL *dy, REAL *dx,
                                    REAL *dw, REAL *db)
{
  if (dw)
    for (int k = 0; k < n; k++) {
      const REAL *xi = x + (size_t)k * D, *gi = dy + (size_t)k * D; /* (D) each */
      const REAL mu = mean[k], r = rstd[k];
      for (int d = 0; d < D; d++) {
        REAL nh = (xi[d] - mu) * r;
        dw[d] += gi[d] * nh;
        db[d] += gi[d];
      }
    }
  if (!dx)
    return;
  /* dx = r·(g·w − mean(g·w) − n̂·mean(g·w·n̂)),  n̂ = (x − μ)·r */
  const REAL *xr[MOE_LN_ROWS], *gr[MOE_LN_ROWS];
  REAL mur[MOE_LN_ROWS], rr[MOE_LN_ROWS];
  double a[MOE_LN_ROWS], c[MOE_LN_ROWS];
  for (int k = 0; k < MOE_LN_ROWS; k++) {
    const int i = k < n ? k : 0; /* lanes past n redo row 0 and are dropped */
    xr[k] = x + (size_t)i * D;
    gr[k] = dy + (size_t)i * D;
    mur[k] = mean[i];
    rr[k] = rstd[i];
    a[k] = c[k] = 0;
  }
  for (int d = 0; d < D; d++)
    MOE_LN_LANES
    for (int k = 0; k < MOE_LN_ROWS; k++) {
      REAL nh = (xr[k][d] - mur[k]) * rr[k], gw = gr[k][d] * w[d];
      a[k] += gw;
      c[k] += gw * nh;
    }
  for (int k = 0; k < n; k++) {
    const REAL *xi = xr[k], *gi = gr[k]; /* (D) each */
    const REAL mu = mur[k], r = rr[k];
    const REAL ma = (REAL)(a[k] / D), mc = (REAL)(c[k] / D);
    REAL *dxi = dx + (size_t)k * D;
    for (int d = 0; d < D; d++) {
      REAL nh = (xi[d] - mu) * r;
      dxi[d] += (gi[d] * w[d] - ma - nh * mc) * r;
    }
  }
}

/* LayerNorm backward of rows [r0, r1): dx += (if dx), and dw, db += (if
 * dw: rows in order, so only where one thread runs every row in order). */
void SFX(moei_ln_backward_rows)(int r0, int r1, int D, const REAL *x, const REAL *w,
                                 const REAL *mean, const REAL *rstd, const REAL *dy, REAL *dx,
                                 REAL *dw, REAL *db)
{
  for (int i0 = r0; i0 < r1; i0 += MOE_LN_ROWS) {
    const int n = r1 - i0 < MOE_LN_ROWS ? r1 - i0 : MOE_LN_ROWS;
    const size_t o = (size_t)i0 * D;
    SFX(ln_bwd_rows)(n, D, x + o, w, mean + i0, rstd + i0, dy + o, dx ? dx + o : NULL, dw, db);
  }
}

/* dw, db += for the nc <= MOE_LN_COLS columns from d0 over all N rows,
 * each column's rows in row order. The sums stay in registers (local
 * arrays: dw, db may not alias x or dy then) and the columns are the
 * vector lanes of the caller's AVX2 clone (no contraction: each lane the
 * scalar operations in row order, the same bits); inlined with a constant
 * nc for a whole block, a fixed trip count. */
static inline __attribute__((always_inline)) void SFX(ln_cols_pass)(int nc, int d0, int N, int D,
                                                                    const REAL *x, const REAL *mean,
                                                                    const REAL *rstd, const REAL *dy,
                                                                    REAL *dw, REAL *db)
{
  REAL aw[MOE_LN_COLS], ab[MOE_LN_COLS];
  for (int c = 0; c < nc; c++) {
    aw[c] = dw[d0 + c];
    ab[c] = db[d0 + c];
  }
  for (int i = 0; i < N; i++) {
    const REAL *xi = x + (size_t)i * D + d0, *gi = dy + (size_t)i * D + d0;
    const REAL mu = mean[i], r = rstd[i];
    for (int c = 0; c < nc; c++) {
      REAL nh = (xi[c] - mu) * r;
      aw[c] += gi[c] * nh;
      ab[c] += gi[c];
    }
  }
  for (int c = 0; c < nc; c++) {
    dw[d0 + c] = aw[c];
    db[d0 + c] = ab[c];
  }
}

/* LayerNorm weight gradients dw, db += over all N rows for the columns of
 * block cb (MOE_LN_COLS columns, fewer in the last), each column summing
 * its rows in row order (as one thread): the threads' share of them. */
MOE_VEC_CLONES void SFX(moei_ln_backward_cols)(int cb, int N, int D, const REAL *x,
                                                const REAL *mean, const REAL *rstd, const REAL *dy,
                                                REAL *dw, REAL *db)
{
  const int d0 = cb * MOE_LN_COLS, d1 = d0 + MOE_LN_COLS < D ? d0 + MOE_LN_COLS : D;
  if (d1 - d0 == MOE_LN_COLS)
    SFX(ln_cols_pass)(MOE_LN_COLS, d0, N, D, x, mean, rstd, dy, dw, db);
  else
    SFX(ln_cols_pass)(d1 - d0, d0, N, D, x, mean, rstd, dy, dw, db);
}

/* LayerNorm backward on nt > 1 threads: dx by groups of rows, then dw
 * and db by column blocks. */
static void SFX(ln_backward_threads)(int nt, int N, int D, const REAL *x, const REAL *w,
                                     const REAL *mean, const REAL *rstd, const REAL *dy, REAL *dx,
                                     REAL *dw, REAL *db)
{
  if (dx) {
    const int ng = (N + MOE_LN_ROWS - 1) / MOE_LN_ROWS;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int g = 0; g < ng; g++) {
      const int i0 = g * MOE_LN_ROWS, n = N - i0 < MOE_LN_ROWS ? N - i0 : MOE_LN_ROWS;
      const size_t o = (size_t)i0 * D;
      SFX(ln_bwd_rows)(n, D, x + o, w, mean + i0, rstd + i0, dy + o, dx + o, NULL, NULL);
    }
  }
  const int nc = (D + MOE_LN_COLS - 1) / MOE_LN_COLS;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int cb = 0; cb < nc; cb++)
    SFX(moei_ln_backward_cols)(cb, N, D, x, mean, rstd, dy, dw, db);
}

void SFX(moei_ln_backward)(int nt, int N, int D, const REAL *x, const REAL *w, const REAL *mean,
                             const REAL *rstd, const REAL *dy, REAL *dx, REAL *dw, REAL *db)
{
  if (nt > 1) {
    SFX(ln_backward_threads)(nt, N, D, x, w, mean, rstd, dy, dx, dw, db);
    return;
  }
  SFX(moei_ln_backward_rows)(0, N, D, x, w, mean, rstd, dy, dx, dw, db);
}

int SFX(moe_layernorm_backward)(int N, int D, const REAL *x, const REAL *w, const REAL *mean,
                                const REAL *rstd, const REAL *dy, REAL *dx, REAL *dw, REAL *db)
{
  MOE_CHECK_ARG(N >= 0 && D >= 1, "layernorm backward: N=%d D=%d", N, D);
  MOE_CHECK_ARG(N == 0 || (x && w && mean && rstd && dy && dw && db),
                "layernorm backward: NULL buffer");
  SFX(moei_ln_backward)(1, N, D, x, w, mean, rstd, dy, dx, dw, db);
  return MOE_OK;
}

/* ---- attention ---- */

/* A row's softmax (its max, then the sum of its exponentials) and the
 * backward's dot product are chains of T dependent steps. Without a mask
 * (every row of T scores) MOE_LN_ROWS rows run side by side, each with
 * its own chains in its own order (j = 0..T−1) and the very operations
 * of the one-row code below: the same bits, the chains overlapped (and
 * with AVX2 as ln_fwd_rows, each lane and element in its own order). */
MOE_VEC_CLONES static void SFX(att_softmax_rows)(int T, REAL *rows)
{
  REAL *r[MOE_LN_ROWS], m[MOE_LN_ROWS], z[MOE_LN_ROWS];
  for (int k = 0; k < MOE_LN_ROWS; k++) {
    r[k] = rows + (size_t)k * T;
    m[k] = r[k][0];
    z[k] = 0;
  }
  for (int j = 1; j < T; j++)
    MOE_LN_LANES
    for (int k = 0; k < MOE_LN_ROWS; k++)
      if (r[k][j] > m[k])
        m[k] = r[k][j];
  for (int k = 0; k < MOE_LN_ROWS; k++) {
    for (int j = 0; j < T; j++)
      r[k][j] = r[k][j] - m[k];
    R_VEXP_LIBM((size_t)T, r[k], r[k]); /* one call a row, as below */
  }
  for (int j = 0; j < T; j++)
    MOE_LN_LANES
    for (int k = 0; k < MOE_LN_ROWS; k++)
      z[k] += r[k][j];
  for (int k = 0; k < MOE_LN_ROWS; k++) {
    const REAL iz = 1 / z[k];
    for (int j = 0; j < T; j++)
      r[k][j] *= iz;
  }
}

/* The softmax backward of MOE_LN_ROWS unmasked rows side by side (see
 * att_softmax_rows): dr = a ⊙ (dr − Σ_j a·dr), each row's sum in j order. */
MOE_VEC_CLONES static void SFX(att_softmax_back_rows)(int T, const REAL *arows, REAL *drows)
{
  const REAL *ar[MOE_LN_ROWS];
  REAL *dr[MOE_LN_ROWS], dot[MOE_LN_ROWS];
  for (int k = 0; k < MOE_LN_ROWS; k++) {
    ar[k] = arows + (size_t)k * T;
    dr[k] = drows + (size_t)k * T;
    dot[k] = 0;
  }
  for (int j = 0; j < T; j++)
    MOE_LN_LANES
    for (int k = 0; k < MOE_LN_ROWS; k++)
      dot[k] += ar[k][j] * dr[k][j];
  for (int k = 0; k < MOE_LN_ROWS; k++)
    for (int j = 0; j < T; j++)
      dr[k][j] = ar[k][j] * (dr[k][j] - dot[k]);
}

/* Attention forward on nt threads, one (batch, head) pair per work item
 * (each writes only its own probabilities and output columns). */
static void SFX(att_forward)(int nt, int B, int T, int D, int H, int causal, const REAL *qkv,
                             REAL *att, REAL *out)
{
  const int hs = D / H, C3 = 3 * D;
  const REAL scale = (REAL)(1.0 / sqrt((double)hs));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int bh = 0; bh < B * H; bh++) {
    const int b = bh / H, h = bh % H;
    {
      const REAL *q = qkv + (size_t)b * T * C3 + (size_t)h * hs; /* (T, hs) rows 3D apart */
      const REAL *k = q + D, *v = q + 2 * D;
      REAL *a = att + ((size_t)b * H + h) * T * T;                /* (T, T) */
      /* scores a = scale · q kᵀ */
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3, 0, a, T);
      int t0 = 0;
      if (!causal)
        for (; t0 + MOE_LN_ROWS <= T; t0 += MOE_LN_ROWS)
          SFX(att_softmax_rows)(T, a + (size_t)t0 * T);
      for (int t = t0; t < T; t++) {
        REAL *row = a + (size_t)t * T;
        const int n = causal ? t + 1 : T;
        REAL m = row[0];
        for (int j = 1; j < n; j++)
          if (row[j] > m)
            m = row[j];
        /* row[j] = R_EXP(row[j] − m), the exponentials 8 at a time with
         * R_EXP's bits (vmath.h), then their sum in j order */
        for (int j = 0; j < n; j++)
          row[j] = row[j] - m;
        R_VEXP_LIBM((size_t)n, row, row);
        REAL z = 0;
        for (int j = 0; j < n; j++)
          z += row[j];
        const REAL iz = 1 / z;
        for (int j = 0; j < n; j++)
          row[j] *= iz;
        for (int j = n; j < T; j++)
          row[j] = 0;
      }
      /* out_h (T, hs) = a v */
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1, a, T, v, C3, 0,
             out + (size_t)b * T * D + (size_t)h * hs, D);
    }
  }
}

int SFX(moe_attention_forward)(int B, int T, int D, int H, int causal, const REAL *qkv, REAL *att,
                               REAL *out)
{
  MOE_CHECK_ARG(B >= 0 && T >= 0 && D >= 1 && H >= 1 && D % H == 0,
                "attention: B=%d T=%d D=%d H=%d (need D %% H == 0)", B, T, D, H);
  MOE_CHECK_ARG((size_t)B * T == 0 || (qkv && att && out), "attention: NULL buffer");
  SFX(att_forward)(1, B, T, D, H, causal, qkv, att, out);
  return MOE_OK;
}

/* Attention backward on nt threads, one (batch, head) pair per work item;
 * work holds nt scratch matrices (T, T), one per thread. */
static void SFX(att_backward)(int nt, int B, int T, int D, int H, int causal, const REAL *qkv,
                              const REAL *att, const REAL *dout, REAL *dqkv, REAL *work_all)
{
  const int hs = D / H, C3 = 3 * D;
  const REAL scale = (REAL)(1.0 / sqrt((double)hs));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int bh = 0; bh < B * H; bh++) {
    const int b = bh / H, h = bh % H;
    REAL *work = work_all + (size_t)moei_thread_num() * T * T;
    {
      const size_t o = (size_t)b * T * C3 + (size_t)h * hs;
      const REAL *q = qkv + o, *k = q + D, *v = q + 2 * D;       /* (T, hs) rows 3D apart */
      REAL *dq = dqkv + o, *dk = dq + D, *dv = dq + 2 * D;
      const REAL *a = att + ((size_t)b * H + h) * T * T;          /* (T, T) */
      const REAL *go = dout + (size_t)b * T * D + (size_t)h * hs; /* (T, hs) rows D apart */
      /* dv = aᵀ go;  da = go vᵀ */
      R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1, a, T, go, D, 0, dv, C3);
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1, go, D, v, C3, 0, work, T);
      /* softmax backward: ds = a ⊙ (da − Σ_j a·da), zero where a is masked */
      int t0 = 0;
      if (!causal)
        for (; t0 + MOE_LN_ROWS <= T; t0 += MOE_LN_ROWS)
          SFX(att_softmax_back_rows)(T, a + (size_t)t0 * T, work + (size_t)t0 * T);
      for (int t = t0; t < T; t++) {
        const REAL *ar = a + (size_t)t * T;
        REAL *dr = work + (size_t)t * T;
        const int n = causal ? t + 1 : T;
        REAL dot = 0;
        for (int j = 0; j < n; j++)
          dot += ar[j] * dr[j];
        for (int j = 0; j < n; j++)
          dr[j] = ar[j] * (dr[j] - dot);
        for (int j = n; j < T; j++)
          dr[j] = 0;
      }
      /* dq = scale · ds k;  dk = scale · dsᵀ q */
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, work, T, k, C3, 0, dq,
             C3);
      R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, work, T, q, C3, 0, dk, C3);
    }
  }
}

int SFX(moe_attention_backward)(int B, int T, int D, int H, int causal, const REAL *qkv,
                                const REAL *att, const REAL *dout, REAL *dqkv, REAL *work)
{
  MOE_CHECK_ARG(B >= 0 && T >= 0 && D >= 1 && H >= 1 && D % H == 0,
                "attention backward: B=%d T=%d D=%d H=%d (need D %% H == 0)", B, T, D, H);
  MOE_CHECK_ARG((size_t)B * T == 0 || (qkv && att && dout && dqkv && work),
                "attention backward: NULL buffer");
  SFX(att_backward)(1, B, T, D, H, causal, qkv, att, dout, dqkv, work);
  return MOE_OK;
}

/* ---- the pre-LN block ---- */

struct SFX(moe_block) {
  moe_block_config cfg;
  int max_B, max_T;
  size_t n_params;
  int own_slabs;
  REAL *params, *grads;     /* (n_params) each */
  REAL *ln1w, *ln1b;        /* (D) into params */
  REAL *Wqkv;               /* (3D, D) */
  REAL *Wo;                 /* (D, D) */
  REAL *ln2w, *ln2b;        /* (D) */
  SFX(moe_layer) *ffn;      /* its slabs are the tail of ours */

  /* the last forward (Nm = max_B·max_T rows) */
  int B, T;                 /* B = -1 before a forward */
  REAL *x;                  /* (Nm, D) input copy */
  REAL *ln1, *m1, *r1;      /* (Nm, D), (Nm), (Nm) */
  REAL *qkv;                /* (Nm, 3D) */
  REAL *att;                /* (max_B, H, max_T, max_T) */
  REAL *ao;                 /* (Nm, D) attention output before Wo */
  REAL *x1;                 /* (Nm, D) x + attention branch */
  REAL *ln2, *m2, *r2;      /* (Nm, D), (Nm), (Nm) */
  REAL *fo;                 /* (Nm, D) FFN output */

  /* backward scratch */
  REAL *dx1, *dln;          /* (Nm, D) */
  REAL *dqkv;               /* (Nm, 3D) */
  REAL *dao;                /* (Nm, D) */
  REAL *work;               /* (max_T, max_T) */

  int nt;                   /* threads (moe_block_set_threads) */
  REAL *work_nt;            /* (nt, max_T, max_T) once nt > 1 */
  int work_nt_n;            /* threads work_nt is sized for */
};

void SFX(moe_block_free)(SFX(moe_block) *bk)
{
  if (!bk)
    return;
  SFX(moe_layer_free)(bk->ffn);
  if (bk->own_slabs) {
    moei_free_aligned(bk->params);
    moei_free_aligned(bk->grads);
  }
  void *bufs[] = {bk->x,   bk->ln1, bk->m1,  bk->r1,  bk->qkv, bk->att, bk->ao,   bk->x1,
                  bk->ln2, bk->m2,  bk->r2,  bk->fo,  bk->dx1, bk->dln, bk->dqkv, bk->dao,
                  bk->work, bk->work_nt};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    moei_free_aligned(bufs[i]);
  free(bk);
}

SFX(moe_block) *SFX(moe_block_alloc)(const moe_block_config *cfg, int max_B, int max_T,
                                     REAL *params, REAL *grads)
{
  if (moe_block_check(cfg))
    return NULL;
  if (max_B < 1 || max_T < 1 || (size_t)max_B * max_T > INT_MAX) {
    moe_error(MOE_EINVAL, "block alloc: max_B=%d max_T=%d", max_B, max_T);
    return NULL;
  }
  if (!params != !grads) {
    moe_error(MOE_EINVAL, "block alloc: give both slabs or neither");
    return NULL;
  }
  SFX(moe_block) *bk = calloc(1, sizeof *bk);
  if (!bk) {
    moe_error(MOE_ENOMEM, "block alloc");
    return NULL;
  }
  bk->cfg = *cfg;
  bk->max_B = max_B;
  bk->max_T = max_T;
  bk->B = -1;
  bk->nt = 1;
  bk->n_params = moe_block_param_count(cfg);
  const size_t D = cfg->D, Nm = (size_t)max_B * max_T;
  bk->ffn = SFX(moe_layer_alloc)(&cfg->ffn, (int)Nm);
  if (!bk->ffn) {
    free(bk);
    return NULL;
  }
  int fail = 0;
  if (params) {
    bk->params = params;
    bk->grads = grads;
  } else {
    bk->own_slabs = 1;
    bk->params = moei_alloc_aligned(bk->n_params * sizeof(REAL));
    bk->grads = moei_alloc_aligned(bk->n_params * sizeof(REAL));
    fail |= !bk->params || !bk->grads;
  }
#define ALLOC(field, count)                                                   \
  do {                                                                        \
    bk->field = moei_alloc_aligned((size_t)(count) * sizeof *bk->field);       \
    fail |= !bk->field;                                                       \
  } while (0)
  ALLOC(x, Nm * D);
  ALLOC(ln1, Nm * D);
  ALLOC(m1, Nm);
  ALLOC(r1, Nm);
  ALLOC(qkv, Nm * 3 * D);
  ALLOC(att, Nm * cfg->H * max_T);
  ALLOC(ao, Nm * D);
  ALLOC(x1, Nm * D);
  ALLOC(ln2, Nm * D);
  ALLOC(m2, Nm);
  ALLOC(r2, Nm);
  ALLOC(fo, Nm * D);
  ALLOC(dx1, Nm * D);
  ALLOC(dln, Nm * D);
  ALLOC(dqkv, Nm * 3 * D);
  ALLOC(dao, Nm * D);
  ALLOC(work, (size_t)max_T * max_T);
#undef ALLOC
  if (fail) {
    SFX(moe_block_free)(bk);
    moe_error(MOE_ENOMEM, "block alloc: D=%zu max_B=%d max_T=%d", D, max_B, max_T);
    return NULL;
  }
  bk->ln1w = bk->params;
  bk->ln1b = bk->ln1w + D;
  bk->Wqkv = bk->ln1b + D;
  bk->Wo = bk->Wqkv + 3 * D * D;
  bk->ln2w = bk->Wo + D * D;
  bk->ln2b = bk->ln2w + D;
  REAL *fp = bk->ln2b + D;
  if ((size_t)(fp - bk->params) + SFX(moe_layer_param_count)(bk->ffn) != bk->n_params) {
    SFX(moe_block_free)(bk);
    moe_error(MOE_EINVAL, "block alloc: slab layout disagrees with moe_layer_param_count");
    return NULL;
  }
  SFX(moei_layer_adopt)(bk->ffn, fp, bk->grads + (fp - bk->params));
  return bk;
}

const moe_block_config *SFX(moe_block_get_config)(const SFX(moe_block) *bk)
{
  return bk ? &bk->cfg : NULL;
}

int SFX(moei_block_init)(SFX(moe_block) *bk, const moei_init_src *src, double std, double proj_std)
{
  MOE_CHECK_ARG(bk && src, "block init: NULL argument");
  MOE_CHECK_ARG(isfinite(std) && std >= 0 && isfinite(proj_std) && proj_std >= 0,
                "block init: std=%g proj_std=%g", std, proj_std);
  const size_t D = bk->cfg.D;
  for (size_t d = 0; d < D; d++) {
    bk->ln1w[d] = 1;
    bk->ln1b[d] = 0;
    bk->ln2w[d] = 1;
    bk->ln2b[d] = 0;
  }
  R_NORMAL(moei_init_stream(src, "qkv", -1), bk->Wqkv, 3 * D * D, std);
  R_NORMAL(moei_init_stream(src, "proj", -1), bk->Wo, D * D, proj_std);
  moei_init_src fsrc = moei_init_child(src, "ffn", -1);
  int rc = SFX(moei_layer_init)(bk->ffn, &fsrc);
  if (rc)
    return rc;
  /* the paper's code: routed values std (E·F)^−½, shared (S·F)^−½ */
  const moe_layer_config *c = &bk->cfg.ffn;
  moe_expert_view view;
  rc = moe_expert_view_get(&c->expert, c->D, &view);
  if (rc)
    return rc;
  if (c->expert.kind != MOE_EXPERT_FFN)
    return MOE_OK;
  const size_t nW2 = (size_t)c->D * c->expert.F;
  const REAL sr = (REAL)(1 / sqrt((double)c->E)), ss = (REAL)(1 / sqrt((double)(c->S > 0 ? c->S : 1)));
  for (int e = 0; e < c->E; e++) {
    REAL *W2 = SFX(moe_layer_routed_expert)(bk->ffn, e) + view.W2;
    for (size_t i = 0; i < nW2; i++)
      W2[i] *= sr;
  }
  for (int i = 0; i < c->S; i++) {
    REAL *W2 = SFX(moe_layer_shared_expert)(bk->ffn, i) + view.W2;
    for (size_t j = 0; j < nW2; j++)
      W2[j] *= ss;
  }
  return MOE_OK;
}

int SFX(moe_block_init_params)(SFX(moe_block) *bk, gsl_rng *r, double std, double proj_std)
{
  MOE_CHECK_ARG(bk && r, "block init: NULL argument");
  moei_init_src src = {r, 0, 0};
  return SFX(moei_block_init)(bk, &src, std, proj_std);
}

int SFX(moe_block_forward)(SFX(moe_block) *bk, int B, int T, const REAL *x, REAL *y)
{
  MOE_CHECK_ARG(bk, "block forward: NULL block");
  MOE_CHECK_ARG(B >= 0 && B <= bk->max_B, "block forward: B=%d outside [0, max_B=%d]", B,
                bk->max_B);
  if (T < 0 || T > bk->max_T)
    return moe_error(MOE_ERANGE, "block forward: sequence of T=%d positions exceeds max_T=%d",
                     T, bk->max_T);
  const int D = bk->cfg.D, H = bk->cfg.H, N = B * T, nt = bk->nt;
  const size_t ND = (size_t)N * D;
  MOE_CHECK_ARG(N == 0 || (x && y && x != y), "block forward: NULL or aliased x, y");
  bk->B = -1; /* until this forward succeeds */
  const size_t bad = N > 0 ? R_FIRST_NONFINITE(x, ND) : ND;
  if (bad < ND)
    return moe_error(MOE_EDOM, "block forward: x[%zu][%zu] is %g", bad / (size_t)D,
                     bad % (size_t)D, (double)x[bad]);
  if (N > 0) {
    /* attention branch: x1 = x + attn(LN1(x)) Woᵀ; the row-wise steps
     * around the attention run row block by row block of the products
     * (par_impl.h: the very BLAS calls of par_gemm), one parallel region
     * each side, every row computed as on one thread */
    const int nb = moei_par_nblocks(N), ntb = nt < nb ? nt : nb;
    (void)ntb;
#pragma omp parallel for num_threads(ntb) schedule(static) if (nt > 1)
    for (int b = 0; b < nb; b++) {
      int r0, r1;
      moei_par_block(N, nb, b, &r0, &r1);
      memcpy(bk->x + (size_t)r0 * D, x + (size_t)r0 * D, (size_t)(r1 - r0) * D * sizeof *x);
      SFX(moei_ln_forward_rows)(r0, r1, D, bk->x, bk->ln1w, bk->ln1b, bk->ln1, bk->m1, bk->r1);
      SFX(par_gemm_block)(b, nb, CblasNoTrans, CblasTrans, N, 3 * D, D, 1, bk->ln1, D, bk->Wqkv, D,
                          0, bk->qkv, 3 * D);
    }
    SFX(att_forward)(nt, B, T, D, H, bk->cfg.causal, bk->qkv, bk->att, bk->ao);
    /* FFN branch: y = x1 + ffn(LN2(x1)) */
#pragma omp parallel for num_threads(ntb) schedule(static) if (nt > 1)
    for (int b = 0; b < nb; b++) {
      int r0, r1;
      moei_par_block(N, nb, b, &r0, &r1);
      memcpy(bk->x1 + (size_t)r0 * D, bk->x + (size_t)r0 * D, (size_t)(r1 - r0) * D * sizeof *x);
      SFX(par_gemm_block)(b, nb, CblasNoTrans, CblasTrans, N, D, D, 1, bk->ao, D, bk->Wo, D, 1,
                          bk->x1, D);
      SFX(moei_ln_forward_rows)(r0, r1, D, bk->x1, bk->ln2w, bk->ln2b, bk->ln2, bk->m2, bk->r2);
    }
  }
  int rc = SFX(moe_layer_forward)(bk->ffn, N, bk->ln2, bk->fo);
  if (rc)
    return rc;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (size_t i = 0; i < ND; i++)
    y[i] = bk->x1[i] + bk->fo[i];
  bk->B = B;
  bk->T = T;
  return MOE_OK;
}

int SFX(moe_block_backward)(SFX(moe_block) *bk, const REAL *dy, REAL *dx)
{
  MOE_CHECK_ARG(bk, "block backward: NULL block");
  MOE_CHECK_ARG(bk->B >= 0, "block backward: no successful forward to differentiate");
  const int B = bk->B, T = bk->T, D = bk->cfg.D, H = bk->cfg.H, N = B * T, nt = bk->nt;
  if (N == 0)
    return MOE_OK;
  MOE_CHECK_ARG(dy, "block backward: NULL dy");
  REAL *g = bk->grads;
  REAL *gln1w = g + (bk->ln1w - bk->params), *gln1b = g + (bk->ln1b - bk->params);
  REAL *gWqkv = g + (bk->Wqkv - bk->params), *gWo = g + (bk->Wo - bk->params);
  REAL *gln2w = g + (bk->ln2w - bk->params), *gln2b = g + (bk->ln2b - bk->params);

  /* y = x1 + ffn(LN2(x1)); dy is read up to the first region below, which
   * copies its rows into dx1 (it may alias dx, written only after) */
  int rc = SFX(moe_layer_backward)(bk->ffn, dy, bk->dln);
  if (rc)
    return rc;

  /* Row block by row block of the products (the very BLAS calls of
   * par_gemm): LayerNorm's dx rows, then the product that needs them. The
   * LayerNorm weight gradients add rows in row order: on one thread in
   * that pass, on more by column blocks in the region of the weight
   * gradient products (each work item independent). */
  const int nb = moei_par_nblocks(N), ntb = nt < nb ? nt : nb;
  const int rows_w = nt == 1, ncb = rows_w ? 0 : (D + MOE_LN_COLS - 1) / MOE_LN_COLS;
  (void)ntb;
  /* y = x1 + ffn(LN2(x1)), dx1 += LN2'(dln);  x1 = x + attn(LN1(x)) Woᵀ:  dao = dx1 Wo */
#pragma omp parallel for num_threads(ntb) schedule(static) if (nt > 1)
  for (int b = 0; b < nb; b++) {
    int r0, r1;
    moei_par_block(N, nb, b, &r0, &r1);
    memcpy(bk->dx1 + (size_t)r0 * D, dy + (size_t)r0 * D, (size_t)(r1 - r0) * D * sizeof *dy);
    SFX(moei_ln_backward_rows)(r0, r1, D, bk->x1, bk->ln2w, bk->m2, bk->r2, bk->dln, bk->dx1,
                      rows_w ? gln2w : NULL, rows_w ? gln2b : NULL);
    SFX(par_gemm_block)(b, nb, CblasNoTrans, CblasNoTrans, N, D, D, 1, bk->dx1, D, bk->Wo, D, 0,
                        bk->dao, D);
  }
  /* dWo (D, D) += dx1ᵀ ao; LN2's dw, db */
  {
    const int nw = moei_par_nblocks(D);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int it = 0; it < nw + ncb; it++) {
      if (it < nw)
        SFX(par_gemm_block)(it, nw, CblasTrans, CblasNoTrans, D, D, N, 1, bk->dx1, D, bk->ao, D, 1,
                            gWo, D);
      else
        SFX(moei_ln_backward_cols)(it - nw, N, D, bk->x1, bk->m2, bk->r2, bk->dln, gln2w, gln2b);
    }
  }
  SFX(att_backward)(nt, B, T, D, H, bk->cfg.causal, bk->qkv, bk->att, bk->dao, bk->dqkv,
                    nt > 1 ? bk->work_nt : bk->work);
  /* qkv = ln1 Wqkvᵀ:  dln = dqkv Wqkv, then dx = dx1 + LN1'(dln) */
#pragma omp parallel for num_threads(ntb) schedule(static) if (nt > 1)
  for (int b = 0; b < nb; b++) {
    int r0, r1;
    moei_par_block(N, nb, b, &r0, &r1);
    SFX(par_gemm_block)(b, nb, CblasNoTrans, CblasNoTrans, N, D, 3 * D, 1, bk->dqkv, 3 * D,
                        bk->Wqkv, D, 0, bk->dln, D);
    if (dx)
      memcpy(dx + (size_t)r0 * D, bk->dx1 + (size_t)r0 * D, (size_t)(r1 - r0) * D * sizeof *dx);
    if (dx || rows_w)
      SFX(moei_ln_backward_rows)(r0, r1, D, bk->x, bk->ln1w, bk->m1, bk->r1, bk->dln, dx,
                        rows_w ? gln1w : NULL, rows_w ? gln1b : NULL);
  }
  /* dWqkv (3D, D) += dqkvᵀ ln1; LN1's dw, db */
  {
    const int nw = moei_par_nblocks(3 * D);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int it = 0; it < nw + ncb; it++) {
      if (it < nw)
        SFX(par_gemm_block)(it, nw, CblasTrans, CblasNoTrans, 3 * D, D, N, 1, bk->dqkv, 3 * D,
                            bk->ln1, D, 1, gWqkv, D);
      else
        SFX(moei_ln_backward_cols)(it - nw, N, D, bk->x, bk->m1, bk->r1, bk->dln, gln1w, gln1b);
    }
  }
  return MOE_OK;
}

int SFX(moe_block_set_threads)(SFX(moe_block) *bk, int n)
{
  MOE_CHECK_ARG(bk, "block threads: NULL block");
  MOE_CHECK_ARG(n >= 1 && n <= MOE_THREADS_MAX, "block threads: n=%d outside [1, %d]", n,
                MOE_THREADS_MAX);
  if (n > 1 && n > bk->work_nt_n) {
    REAL *w = moei_alloc_array((size_t)n * bk->max_T, (size_t)bk->max_T * sizeof *w);
    if (!w)
      return moe_error(MOE_ENOMEM, "block threads: no memory for %d attention scratch "
                       "matrices of %d x %d", n, bk->max_T, bk->max_T);
    moei_free_aligned(bk->work_nt);
    bk->work_nt = w;
    bk->work_nt_n = n;
  }
  int rc = SFX(moe_layer_set_threads)(bk->ffn, n);
  if (rc)
    return rc;
  bk->nt = n;
  return MOE_OK;
}

void SFX(moe_block_zero_grad)(SFX(moe_block) *bk)
{
  if (bk)
    memset(bk->grads, 0, bk->n_params * sizeof *bk->grads);
}

REAL *SFX(moe_block_params)(SFX(moe_block) *bk) { return bk ? bk->params : NULL; }
REAL *SFX(moe_block_grads)(SFX(moe_block) *bk) { return bk ? bk->grads : NULL; }
SFX(moe_layer) *SFX(moe_block_ffn)(SFX(moe_block) *bk) { return bk ? bk->ffn : NULL; }
