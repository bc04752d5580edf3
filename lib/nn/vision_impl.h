/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vision_impl.h — the image classifier, written once for REAL (see real.h,
 * moe/vision.h). Included by vision.c; not installed. Letters: B images,
 * Np patches, pd values per patch, N = B·Np tokens, D width, C classes;
 * Nm = max_B·Np. */

struct SFX(moe_vision) {
  moe_vision_config cfg;
  int max_B, Np, pd;
  size_t n_params;
  REAL *params, *grads;        /* the one slab pair */
  REAL *Wp, *bp, *pos;         /* (D, pd), (D), (Np, D) */
  REAL *lncw, *lncb;           /* (D) */
  REAL *lnfw, *lnfb;           /* (D) */
  REAL *Wc, *bc;               /* (C, D), (C) */
  SFX(moe_block) **enc;        /* (L) */
  SFX(moe_block) **head;       /* (Lh) */
  SFX(moe_layer) *conn;        /* the connector */

  /* the last forward */
  int B;                       /* -1 before a successful forward */
  int has_labels, can_backward;
  double ce, aux;
  REAL *x;                     /* (Nm, pd) input copy */
  moe_token *y;                /* (max_B) */
  REAL **h;                    /* L+1 buffers (Nm, D): h_0..h_L */
  REAL *u, *mc, *rc;           /* (Nm, D), (Nm), (Nm)  LN_c */
  REAL **g;                    /* Lh+1 buffers (Nm, D): g_0..g_Lh */
  REAL *z, *mf, *rf;           /* (Nm, D), (Nm), (Nm)  LN_f */
  REAL *q;                     /* (max_B, D) pooled */
  REAL *logits;                /* (max_B, C) */
  REAL *prob;                  /* (max_B, C) softmax, for the backward */

  /* backward scratch */
  REAL *dq;                    /* (max_B, D) */
  REAL *da, *db;               /* (Nm, D) */

  int nt;                      /* threads (moe_vision_set_threads) */
};

void SFX(moe_vision_free)(SFX(moe_vision) *m)
{
  if (!m)
    return;
  if (m->enc)
    for (int l = 0; l < m->cfg.L; l++)
      SFX(moe_block_free)(m->enc[l]);
  if (m->head)
    for (int j = 0; j < m->cfg.Lh; j++)
      SFX(moe_block_free)(m->head[j]);
  SFX(moe_layer_free)(m->conn);
  if (m->h)
    for (int l = 0; l <= m->cfg.L; l++)
      moei_free_aligned(m->h[l]);
  if (m->g)
    for (int j = 0; j <= m->cfg.Lh; j++)
      moei_free_aligned(m->g[j]);
  free(m->enc);
  free(m->head);
  free(m->h);
  free(m->g);
  void *bufs[] = {m->params, m->grads, m->x,  m->y,  m->u,      m->mc,   m->rc, m->z,
                  m->mf,     m->rf,    m->q,  m->logits, m->prob, m->dq, m->da, m->db};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    moei_free_aligned(bufs[i]);
  free(m);
}

SFX(moe_vision) *SFX(moe_vision_alloc)(const moe_vision_config *cfg, int max_B)
{
  if (moe_vision_check(cfg))
    return NULL;
  const int Np = (cfg->Hi / cfg->P) * (cfg->Wi / cfg->P), pd = cfg->P * cfg->P;
  if (max_B < 1 || (size_t)max_B * Np > INT_MAX / 4) {
    moe_error(MOE_EINVAL, "vision alloc: max_B=%d with %d patches per image", max_B, Np);
    return NULL;
  }
  SFX(moe_vision) *m = calloc(1, sizeof *m);
  if (!m) {
    moe_error(MOE_ENOMEM, "vision alloc");
    return NULL;
  }
  m->cfg = *cfg;
  m->max_B = max_B;
  m->Np = Np;
  m->pd = pd;
  m->B = -1;
  m->nt = 1;
  m->n_params = moei_vision_param_count(cfg);
  const size_t D = cfg->D, C = cfg->C, Nm = (size_t)max_B * Np;
  int fail = 0;
#define ALLOC(ptr, count)                                                     \
  do {                                                                        \
    (ptr) = moei_alloc_aligned((size_t)(count) * sizeof *(ptr));               \
    fail |= !(ptr);                                                           \
  } while (0)
  ALLOC(m->params, m->n_params);
  ALLOC(m->grads, m->n_params);
  ALLOC(m->x, Nm * pd);
  ALLOC(m->y, max_B);
  ALLOC(m->u, Nm * D);
  ALLOC(m->mc, Nm);
  ALLOC(m->rc, Nm);
  ALLOC(m->z, Nm * D);
  ALLOC(m->mf, Nm);
  ALLOC(m->rf, Nm);
  ALLOC(m->q, (size_t)max_B * D);
  ALLOC(m->logits, (size_t)max_B * C);
  ALLOC(m->prob, (size_t)max_B * C);
  ALLOC(m->dq, (size_t)max_B * D);
  ALLOC(m->da, Nm * D);
  ALLOC(m->db, Nm * D);
  m->enc = calloc((size_t)cfg->L + 1, sizeof *m->enc);
  m->head = calloc((size_t)cfg->Lh + 1, sizeof *m->head);
  m->h = calloc((size_t)cfg->L + 1, sizeof *m->h);
  m->g = calloc((size_t)cfg->Lh + 1, sizeof *m->g);
  fail |= !m->enc || !m->head || !m->h || !m->g;
  if (!fail) {
    for (int l = 0; l <= cfg->L; l++)
      ALLOC(m->h[l], Nm * D);
    for (int j = 0; j <= cfg->Lh; j++)
      ALLOC(m->g[j], Nm * D);
  }
#undef ALLOC
  if (fail) {
    SFX(moe_vision_free)(m);
    moe_error(MOE_ENOMEM, "vision alloc: %zu parameters, max_B=%d", m->n_params, max_B);
    return NULL;
  }
  /* slab views, in the order moe/vision.h states */
  m->Wp = m->params;
  m->bp = m->Wp + D * pd;
  m->pos = m->bp + D;
  REAL *p = m->pos + (size_t)Np * D;
  const moe_block_config be = moei_vision_block(cfg, 1), bh = moei_vision_block(cfg, 0);
  const size_t nbe = moe_block_param_count(&be), nbh = moe_block_param_count(&bh);
  for (int l = 0; l < cfg->L; l++, p += nbe) {
    m->enc[l] = SFX(moe_block_alloc)(&be, max_B, Np, p, m->grads + (p - m->params));
    if (!m->enc[l]) {
      SFX(moe_vision_free)(m);
      return NULL;
    }
  }
  m->lncw = p;
  m->lncb = p + D;
  p += 2 * D;
  m->conn = SFX(moe_layer_alloc)(&cfg->moe, (int)Nm);
  if (!m->conn) {
    SFX(moe_vision_free)(m);
    return NULL;
  }
  SFX(moei_layer_adopt)(m->conn, p, m->grads + (p - m->params));
  p += SFX(moe_layer_param_count)(m->conn);
  for (int j = 0; j < cfg->Lh; j++, p += nbh) {
    m->head[j] = SFX(moe_block_alloc)(&bh, max_B, Np, p, m->grads + (p - m->params));
    if (!m->head[j]) {
      SFX(moe_vision_free)(m);
      return NULL;
    }
  }
  m->lnfw = p;
  m->lnfb = p + D;
  m->Wc = p + 2 * D;
  m->bc = m->Wc + C * D;
  if ((size_t)(m->bc + C - m->params) != m->n_params) {
    SFX(moe_vision_free)(m);
    moe_error(MOE_EINVAL, "vision alloc: slab layout disagrees with the parameter count");
    return NULL;
  }
  return m;
}

const moe_vision_config *SFX(moe_vision_get_config)(const SFX(moe_vision) *m)
{
  return m ? &m->cfg : NULL;
}

static int SFX(vision_init)(SFX(moe_vision) *m, const moei_init_src *src)
{
  const moe_vision_config *c = &m->cfg;
  const size_t D = c->D;
  memset(m->params, 0, m->n_params * sizeof *m->params);
  R_NORMAL(moei_init_stream(src, "patch", -1), m->Wp, D * m->pd, 1 / sqrt((double)m->pd));
  R_NORMAL(moei_init_stream(src, "pos", -1), m->pos, (size_t)m->Np * D, 0.02);
  const double proj = 0.02 / sqrt(2.0 * (c->L + c->Lh > 0 ? c->L + c->Lh : 1));
  for (int l = 0; l < c->L; l++) {
    moei_init_src b = moei_init_child(src, "encoder", l);
    int rc = SFX(moei_block_init)(m->enc[l], &b, 0.02, proj);
    if (rc)
      return rc;
  }
  for (size_t d = 0; d < D; d++) {
    m->lncw[d] = 1;
    m->lncb[d] = 0;
  }
  moei_init_src cs = moei_init_child(src, "connector", -1);
  int rc = SFX(moei_layer_init)(m->conn, &cs);
  if (rc)
    return rc;
  for (int j = 0; j < c->Lh; j++) {
    moei_init_src b = moei_init_child(src, "head", j);
    rc = SFX(moei_block_init)(m->head[j], &b, 0.02, proj);
    if (rc)
      return rc;
  }
  for (size_t d = 0; d < D; d++) {
    m->lnfw[d] = 1;
    m->lnfb[d] = 0;
  }
  R_NORMAL(moei_init_stream(src, "classifier", -1), m->Wc, (size_t)c->C * D, 0.02);
  return MOE_OK;
}

int SFX(moe_vision_init_params)(SFX(moe_vision) *m, gsl_rng *r)
{
  MOE_CHECK_ARG(m && r, "vision init: NULL argument");
  moei_init_src src = {r, 0, 0};
  return SFX(vision_init)(m, &src);
}

int SFX(moe_vision_init_params_keyed)(SFX(moe_vision) *m, uint64_t seed)
{
  MOE_CHECK_ARG(m, "vision init: NULL model");
  moei_init_src src = {moe_rng_alloc(0), seed, 1};
  if (!src.r)
    return MOE_ENOMEM;
  int rc = SFX(vision_init)(m, &src);
  gsl_rng_free(src.r);
  return rc;
}

int SFX(moe_vision_forward)(SFX(moe_vision) *m, int B, const REAL *x, const moe_token *y,
                            double *loss)
{
  MOE_CHECK_ARG(m, "vision forward: NULL model");
  MOE_CHECK_ARG(B >= 1 && B <= m->max_B, "vision forward: B=%d outside [1, max_B=%d]", B,
                m->max_B);
  MOE_CHECK_ARG(x, "vision forward: NULL x");
  const moe_vision_config *c = &m->cfg;
  const int Np = m->Np, pd = m->pd, D = c->D, C = c->C, N = B * Np;
  m->B = -1; /* until this forward succeeds */
  m->can_backward = 0;
  if (y)
    for (int b = 0; b < B; b++)
      if (y[b] >= (moe_token)C)
        return moe_error(MOE_ERANGE, "vision forward: label %lu of image %d outside [0, C=%d)",
                         (unsigned long)y[b], b, C);
  const size_t nx = (size_t)N * pd;
  for (size_t i = 0; i < nx; i++)
    if (!isfinite(x[i]))
      return moe_error(MOE_EDOM, "vision forward: image %zu patch %zu value %zu is %g",
                       i / ((size_t)Np * pd), i / pd % Np, i % pd, (double)x[i]);
  memcpy(m->x, x, nx * sizeof *x);

  /* h_0 (N, D) = x Wpᵀ + bp + pos[p] */
  REAL *h0 = m->h[0];
  const int nt = m->nt;
  if (pd <= MOE_GEMM_FUSE_K) {
    /* h_0 preloaded with z = (bp + pos[p]) + 0, the product added by the
     * BLAS call (β = 1): round(s + z) for the product's sum s, the bits
     * of round((s + 0) + (bp + pos[p])) as computed below, the level-3
     * path of every kernel (MOE_GEMM_FUSE_K), for every input: the + 0
     * makes a −0 addend +0, the one case (with s = −0) where they would
     * differ. SkylakeX's small-matrix path stores s itself for β = 0:
     * there the + 0 would differ for s = −0 meeting bp = pos = −0, and
     * s = −0 needs every product of the row to underflow (< 2^−150). */
    for (int t = 0; t < N; t++) {
      REAL *ht = h0 + (size_t)t * D;
      const REAL *pt = m->pos + (size_t)(t % Np) * D;
      for (int d = 0; d < D; d++)
        ht[d] = (m->bp[d] + pt[d]) + (REAL)0;
    }
    SFX(par_gemm)(nt, CblasNoTrans, CblasTrans, N, D, pd, 1, m->x, pd, m->Wp, pd, 1, h0, D);
  } else {
    SFX(par_gemm)(nt, CblasNoTrans, CblasTrans, N, D, pd, 1, m->x, pd, m->Wp, pd, 0, h0, D);
    for (int t = 0; t < N; t++) {
      REAL *ht = h0 + (size_t)t * D;
      const REAL *pt = m->pos + (size_t)(t % Np) * D;
      for (int d = 0; d < D; d++)
        ht[d] += m->bp[d] + pt[d];
    }
  }
  int rc;
  m->aux = 0;
  for (int l = 0; l < c->L; l++) {
    rc = SFX(moe_block_forward)(m->enc[l], B, Np, m->h[l], m->h[l + 1]);
    if (rc)
      return moe_error(rc, "vision forward: encoder block %d: %s", l, moe_last_error());
    m->aux += SFX(moe_layer_aux_loss)(SFX(moe_block_ffn)(m->enc[l]));
  }
  SFX(moei_ln_forward)(nt, N, D, m->h[c->L], m->lncw, m->lncb, m->u, m->mc, m->rc);
  rc = SFX(moe_layer_forward)(m->conn, N, m->u, m->g[0]);
  if (rc)
    return moe_error(rc, "vision forward: connector: %s", moe_last_error());
  m->aux += SFX(moe_layer_aux_loss)(m->conn);
  for (int j = 0; j < c->Lh; j++) {
    rc = SFX(moe_block_forward)(m->head[j], B, Np, m->g[j], m->g[j + 1]);
    if (rc)
      return moe_error(rc, "vision forward: head block %d: %s", j, moe_last_error());
    m->aux += SFX(moe_layer_aux_loss)(SFX(moe_block_ffn)(m->head[j]));
  }
  SFX(moei_ln_forward)(nt, N, D, m->g[c->Lh], m->lnfw, m->lnfb, m->z, m->mf, m->rf);
  /* q_b = (1/Np) Σ_p z[b, p], patches in order */
  const REAL inv = (REAL)(1.0 / Np);
  for (int b = 0; b < B; b++) {
    REAL *qb = m->q + (size_t)b * D;
    for (int d = 0; d < D; d++)
      qb[d] = 0;
    for (int p = 0; p < Np; p++) {
      const REAL *zt = m->z + ((size_t)b * Np + p) * D;
      for (int d = 0; d < D; d++)
        qb[d] += zt[d];
    }
    for (int d = 0; d < D; d++)
      qb[d] *= inv;
  }
  /* logits (B, C) = q Wcᵀ + bc */
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, C, D, 1, m->q, D, m->Wc, D, 0, m->logits, C);
  double acc = 0;
  for (int b = 0; b < B; b++) {
    REAL *lb = m->logits + (size_t)b * C, *pb = m->prob + (size_t)b * C;
    for (int k = 0; k < C; k++)
      lb[k] += m->bc[k];
    double mx = lb[0];
    for (int k = 0; k < C; k++) {
      if (!isfinite(lb[k]))
        return moe_error(MOE_EDOM, "vision forward: logit %d of image %d is %g", k, b,
                         (double)lb[k]);
      mx = lb[k] > mx ? lb[k] : mx;
    }
    double s = 0;
    for (int k = 0; k < C; k++)
      s += exp((double)lb[k] - mx);
    const double lse = mx + log(s);
    for (int k = 0; k < C; k++)
      pb[k] = (REAL)exp((double)lb[k] - lse);
    if (y) {
      m->y[b] = y[b];
      acc += lse - (double)lb[y[b]];
    }
  }
  m->has_labels = y != NULL;
  m->can_backward = y != NULL;
  m->ce = y ? acc / B : NAN;
  if (y && loss)
    *loss = m->ce + m->aux;
  m->B = B;
  return MOE_OK;
}

int SFX(moe_vision_backward)(SFX(moe_vision) *m)
{
  MOE_CHECK_ARG(m, "vision backward: NULL model");
  MOE_CHECK_ARG(m->B >= 0 && m->can_backward,
                "vision backward: needs a successful forward with labels (once per forward)");
  m->can_backward = 0;
  const moe_vision_config *c = &m->cfg;
  const int B = m->B, Np = m->Np, pd = m->pd, D = c->D, C = c->C, N = B * Np, nt = m->nt;
  REAL *G = m->grads;
#define GRAD(ptr) (G + ((ptr) - m->params))
  /* dlogits (B, C) = (softmax − onehot)/B, in prob */
  const REAL invB = (REAL)(1.0 / B);
  for (int b = 0; b < B; b++) {
    REAL *pb = m->prob + (size_t)b * C;
    for (int k = 0; k < C; k++)
      pb[k] *= invB;
    pb[m->y[b]] -= invB;
  }
  /* dWc += dlᵀ q; dbc += Σ_b dl; dq = dl Wc */
  R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, C, D, B, 1, m->prob, C, m->q, D, 1, GRAD(m->Wc),
         D);
  REAL *gbc = GRAD(m->bc);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < C; k++)
      gbc[k] += m->prob[(size_t)b * C + k];
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, D, C, 1, m->prob, C, m->Wc, D, 0, m->dq, D);
  /* dz[b, p] = dq_b / Np  (in da) */
  const REAL inv = (REAL)(1.0 / Np);
  for (int t = 0; t < N; t++) {
    const REAL *dqb = m->dq + (size_t)(t / Np) * D;
    REAL *dz = m->da + (size_t)t * D;
    for (int d = 0; d < D; d++)
      dz[d] = dqb[d] * inv;
  }
  memset(m->db, 0, (size_t)N * D * sizeof *m->db);
  SFX(moei_ln_backward)(nt, N, D, m->g[c->Lh], m->lnfw, m->mf, m->rf, m->da, m->db,
                        GRAD(m->lnfw), GRAD(m->lnfb));
  int rc;
  for (int j = c->Lh - 1; j >= 0; j--) {
    rc = SFX(moe_block_backward)(m->head[j], m->db, m->db);
    if (rc)
      return moe_error(rc, "vision backward: head block %d: %s", j, moe_last_error());
  }
  rc = SFX(moe_layer_backward)(m->conn, m->db, m->da); /* du in da */
  if (rc)
    return moe_error(rc, "vision backward: connector: %s", moe_last_error());
  memset(m->db, 0, (size_t)N * D * sizeof *m->db);
  SFX(moei_ln_backward)(nt, N, D, m->h[c->L], m->lncw, m->mc, m->rc, m->da, m->db,
                        GRAD(m->lncw), GRAD(m->lncb));
  for (int l = c->L - 1; l >= 0; l--) {
    rc = SFX(moe_block_backward)(m->enc[l], m->db, m->db);
    if (rc)
      return moe_error(rc, "vision backward: encoder block %d: %s", l, moe_last_error());
  }
  /* h_0 = x Wpᵀ + bp + pos:  dWp (D, pd) += dh_0ᵀ x;  dbp += Σ_t dh;  dpos[p] += Σ_b dh */
  SFX(par_gemm)(nt, CblasTrans, CblasNoTrans, D, pd, N, 1, m->db, D, m->x, pd, 1, GRAD(m->Wp), pd);
  REAL *gbp = GRAD(m->bp), *gpos = GRAD(m->pos);
  for (int t = 0; t < N; t++) {
    const REAL *dh = m->db + (size_t)t * D;
    REAL *gp = gpos + (size_t)(t % Np) * D;
    for (int d = 0; d < D; d++) {
      gbp[d] += dh[d];
      gp[d] += dh[d];
    }
  }
#undef GRAD
  return MOE_OK;
}

int SFX(moe_vision_set_threads)(SFX(moe_vision) *m, int n)
{
  MOE_CHECK_ARG(m, "vision threads: NULL model");
  MOE_CHECK_ARG(n >= 1 && n <= MOE_THREADS_MAX, "vision threads: n=%d outside [1, %d]", n,
                MOE_THREADS_MAX);
  int rc = SFX(moe_layer_set_threads)(m->conn, n);
  for (int l = 0; l < m->cfg.L && !rc; l++)
    rc = SFX(moe_block_set_threads)(m->enc[l], n);
  for (int j = 0; j < m->cfg.Lh && !rc; j++)
    rc = SFX(moe_block_set_threads)(m->head[j], n);
  if (rc)
    return rc;
  m->nt = n;
  return MOE_OK;
}

int SFX(moe_vision_get_threads)(const SFX(moe_vision) *m) { return m ? m->nt : 0; }

void SFX(moe_vision_zero_grad)(SFX(moe_vision) *m)
{
  if (m)
    memset(m->grads, 0, m->n_params * sizeof *m->grads);
}

const REAL *SFX(moe_vision_logits)(const SFX(moe_vision) *m)
{
  return m && m->B >= 0 ? m->logits : NULL;
}
double SFX(moe_vision_ce_loss)(const SFX(moe_vision) *m) { return m ? m->ce : NAN; }
double SFX(moe_vision_aux_loss)(const SFX(moe_vision) *m) { return m ? m->aux : NAN; }
size_t SFX(moe_vision_param_count)(const SFX(moe_vision) *m) { return m ? m->n_params : 0; }
REAL *SFX(moe_vision_params)(SFX(moe_vision) *m) { return m ? m->params : NULL; }
REAL *SFX(moe_vision_grads)(SFX(moe_vision) *m) { return m ? m->grads : NULL; }
SFX(moe_layer) *SFX(moe_vision_connector)(SFX(moe_vision) *m) { return m ? m->conn : NULL; }

SFX(moe_block) *SFX(moe_vision_encoder_block)(SFX(moe_vision) *m, int l)
{
  return m && l >= 0 && l < m->cfg.L ? m->enc[l] : NULL;
}

SFX(moe_block) *SFX(moe_vision_head_block)(SFX(moe_vision) *m, int j)
{
  return m && j >= 0 && j < m->cfg.Lh ? m->head[j] : NULL;
}

int SFX(moe_vision_bias_update)(SFX(moe_vision) *m, double gamma)
{
  MOE_CHECK_ARG(m, "vision bias update: NULL model");
  int rc = MOE_OK;
  if (m->cfg.moe.gate.use_bias) {
    rc = SFX(moe_layer_bias_update)(m->conn, gamma);
    if (m->cfg.moe_everywhere)
      for (int l = 0; l < m->cfg.L && !rc; l++)
        rc = SFX(moe_layer_bias_update)(SFX(moe_block_ffn)(m->enc[l]), gamma);
  }
  return rc;
}

int SFX(moe_vision_upcycle)(SFX(moe_vision) *dst, const SFX(moe_vision) *src)
{
  MOE_CHECK_ARG(dst && src, "vision upcycle: NULL model");
  const moe_vision_config *d = &dst->cfg, *s = &src->cfg;
  MOE_CHECK_ARG(!d->moe_everywhere && !s->moe_everywhere,
                "vision upcycle: MoE everywhere is not supported (only the connector is upcycled)");
  MOE_CHECK_ARG(d->Hi == s->Hi && d->Wi == s->Wi && d->P == s->P && d->C == s->C && d->D == s->D &&
                    d->H == s->H && d->L == s->L && d->Lh == s->Lh && d->F == s->F,
                "vision upcycle: the models differ outside the connector (image, P, C, D, H, L, Lh or F)");
  int rc = SFX(moe_layer_upcycle)(dst->conn, src->conn);
  if (rc)
    return rc;
  /* everything before the connector (patch embedding, encoder, LN_c) and
   * after it (head blocks, LN_f, classifier) has the same layout in both */
  const size_t dpre = (size_t)(SFX(moe_layer_params)(dst->conn) - dst->params);
  const size_t spre = (size_t)(SFX(moe_layer_params)(src->conn) - src->params);
  const size_t dpost = dpre + SFX(moe_layer_param_count)(dst->conn);
  const size_t spost = spre + SFX(moe_layer_param_count)(src->conn);
  if (dpre != spre || dst->n_params - dpost != src->n_params - spost)
    return moe_error(MOE_EINVAL, "vision upcycle: slab layouts disagree outside the connector");
  memcpy(dst->params, src->params, dpre * sizeof *dst->params);
  memcpy(dst->params + dpost, src->params + spost, (dst->n_params - dpost) * sizeof *dst->params);
  return MOE_OK;
}
