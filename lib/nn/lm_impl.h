/* SPDX-License-Identifier: GPL-3.0-or-later */
/* lm_impl.h — the MoE language model, written once for REAL (see real.h,
 * moe/lm.h). Included by lm.c; not installed. Letters: B sequences,
 * T positions, N = B·T tokens, D width, V vocabulary, L blocks;
 * Nm = max_B·cfg.T. */

struct SFX(moe_lm) {
  moe_lm_config cfg;
  int max_B;
  size_t n_params, n_block;
  REAL *params, *grads;      /* (n_params) each, the one slab pair */
  REAL *wte;                 /* (V, D) into params */
  REAL *wpe;                 /* (T, D) */
  REAL *lnfw, *lnfb;         /* (D) */
  REAL *head;                /* (V, D): wte when tied */
  SFX(moe_block) **blocks;   /* (L), slabs are views into ours */

  /* the last forward */
  int B, T;                  /* B = -1 before a forward */
  int has_targets;           /* the forward computed a loss (backward allowed) */
  int logits_valid;          /* 0 once backward turned them into dlogits */
  double ce, aux;
  moe_token *x;              /* (Nm) input ids */
  moe_token *y;              /* (Nm) targets */
  REAL *h, *h2;              /* (Nm, D) ping-pong block inputs/outputs */
  REAL *z, *mf, *rf;         /* (Nm, D), (Nm), (Nm) final LayerNorm */
  REAL *logits;              /* (Nm, V); dlogits after backward */
  double *lse;               /* (Nm) logsumexp of each row */
  REAL *dz;                  /* (Nm, D) */

  /* evaluation batches */
  moe_token *ex, *ey;        /* (Nm) */

  int nt;                    /* threads (moe_lm_set_threads) */
};

void SFX(moe_lm_free)(SFX(moe_lm) *m)
{
  if (!m)
    return;
  if (m->blocks)
    for (int l = 0; l < m->cfg.L; l++)
      SFX(moe_block_free)(m->blocks[l]);
  free(m->blocks);
  void *bufs[] = {m->params, m->grads, m->x, m->y, m->h, m->h2, m->z, m->mf, m->rf,
                  m->logits, m->lse, m->dz, m->ex, m->ey};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    moei_free_aligned(bufs[i]);
  free(m);
}

SFX(moe_lm) *SFX(moe_lm_alloc)(const moe_lm_config *cfg, int max_B)
{
  if (moe_lm_check(cfg))
    return NULL;
  if (max_B < 1 || (size_t)max_B * cfg->T > INT_MAX / 4) {
    moe_error(MOE_EINVAL, "lm alloc: max_B=%d with T=%d", max_B, cfg->T);
    return NULL;
  }
  SFX(moe_lm) *m = calloc(1, sizeof *m);
  if (!m) {
    moe_error(MOE_ENOMEM, "lm alloc");
    return NULL;
  }
  m->cfg = *cfg;
  m->max_B = max_B;
  m->B = -1;
  m->nt = 1;
  const size_t V = cfg->V, T = cfg->T, D = cfg->D, L = cfg->L, Nm = (size_t)max_B * T;
  const moe_block_config bc = moei_lm_block_config(cfg);
  m->n_block = moe_block_param_count(&bc);
  m->n_params = moei_lm_param_count(cfg);
  int fail = 0;
#define ALLOC(field, count)                                                   \
  do {                                                                        \
    m->field = moei_alloc_aligned((size_t)(count) * sizeof *m->field);         \
    fail |= !m->field;                                                        \
  } while (0)
  ALLOC(params, m->n_params);
  ALLOC(grads, m->n_params);
  ALLOC(x, Nm);
  ALLOC(y, Nm);
  ALLOC(h, Nm * D);
  ALLOC(h2, Nm * D);
  ALLOC(z, Nm * D);
  ALLOC(mf, Nm);
  ALLOC(rf, Nm);
  ALLOC(logits, Nm * V);
  ALLOC(lse, Nm);
  ALLOC(dz, Nm * D);
  ALLOC(ex, Nm);
  ALLOC(ey, Nm);
#undef ALLOC
  m->blocks = calloc(L, sizeof *m->blocks);
  if (fail || !m->blocks) {
    SFX(moe_lm_free)(m);
    moe_error(MOE_ENOMEM, "lm alloc: %zu parameters, max_B=%d", m->n_params, max_B);
    return NULL;
  }
  m->wte = m->params;
  m->wpe = m->wte + V * D;
  REAL *p = m->wpe + T * D;
  for (size_t l = 0; l < L; l++, p += m->n_block) {
    m->blocks[l] = SFX(moe_block_alloc)(&bc, max_B, (int)T, p, m->grads + (p - m->params));
    if (!m->blocks[l]) {
      SFX(moe_lm_free)(m);
      return NULL;
    }
  }
  m->lnfw = p;
  m->lnfb = p + D;
  m->head = cfg->tie ? m->wte : p + 2 * D;
  return m;
}

const moe_lm_config *SFX(moe_lm_get_config)(const SFX(moe_lm) *m) { return m ? &m->cfg : NULL; }
int SFX(moe_lm_max_B)(const SFX(moe_lm) *m) { return m ? m->max_B : 0; }

static int SFX(lm_init)(SFX(moe_lm) *m, const moei_init_src *src)
{
  const moe_lm_config *c = &m->cfg;
  const size_t V = c->V, T = c->T, D = c->D;
  R_NORMAL(moei_init_stream(src, "wte", -1), m->wte, V * D, 0.02);
  R_NORMAL(moei_init_stream(src, "wpe", -1), m->wpe, T * D, 0.02);
  for (int l = 0; l < c->L; l++) {
    moei_init_src b = moei_init_child(src, "block", l);
    int rc = SFX(moei_block_init)(m->blocks[l], &b, 0.02, 0.02 / sqrt(2.0 * c->L));
    if (rc)
      return rc;
  }
  for (size_t d = 0; d < D; d++) {
    m->lnfw[d] = 1;
    m->lnfb[d] = 0;
  }
  if (!c->tie)
    R_NORMAL(moei_init_stream(src, "head", -1), m->head, V * D, 0.02);
  return MOE_OK;
}

int SFX(moe_lm_init_params)(SFX(moe_lm) *m, gsl_rng *r)
{
  MOE_CHECK_ARG(m && r, "lm init: NULL argument");
  moei_init_src src = {r, 0, 0};
  return SFX(lm_init)(m, &src);
}

int SFX(moe_lm_init_params_keyed)(SFX(moe_lm) *m, uint64_t seed)
{
  MOE_CHECK_ARG(m, "lm init: NULL model");
  moei_init_src src = {moe_rng_alloc(0), seed, 1};
  if (!src.r)
    return MOE_ENOMEM;
  int rc = SFX(lm_init)(m, &src);
  gsl_rng_free(src.r);
  return rc;
}

/* The forward; eval != 0 is moe_lm_forward_eval: the same numbers, no
 * backward. */
static int SFX(lm_forward)(SFX(moe_lm) *m, int B, int T, const moe_token *x, const moe_token *y,
                           double *loss, int eval)
{
  MOE_CHECK_ARG(m, "lm forward: NULL model");
  const moe_lm_config *c = &m->cfg;
  MOE_CHECK_ARG(B >= 1 && B <= m->max_B, "lm forward: B=%d outside [1, max_B=%d]", B, m->max_B);
  if (T < 1 || T > c->T)
    return moe_error(MOE_ERANGE, "lm forward: a sequence of T=%d tokens exceeds the context T=%d"
                     " (or is empty)", T, c->T);
  MOE_CHECK_ARG(x, "lm forward: NULL x");
  const int V = c->V, D = c->D, L = c->L, N = B * T;
  m->B = -1; /* until this forward succeeds */
  for (int i = 0; i < N; i++) {
    if (x[i] >= (moe_token)V)
      return moe_error(MOE_ERANGE, "lm forward: token id %lu at b=%d t=%d is >= V=%d",
                       (unsigned long)x[i], i / T, i % T, V);
    if (y && y[i] >= (moe_token)V)
      return moe_error(MOE_ERANGE, "lm forward: target id %lu at b=%d t=%d is >= V=%d",
                       (unsigned long)y[i], i / T, i % T, V);
  }
  memcpy(m->x, x, (size_t)N * sizeof *x);

  /* h (N, D) = wte[x] + wpe[t] */
  const int nt = m->nt;
  SFX(moei_embedding_forward)(nt, B, T, D, m->x, m->wte, m->wpe, m->h);
  int rc;
  REAL *in = m->h, *out = m->h2;
  m->aux = 0;
  for (int l = 0; l < L; l++) {
    rc = SFX(moe_block_forward)(m->blocks[l], B, T, in, out);
    if (rc)
      return moe_error(rc, "lm forward: block %d: %s", l, moe_last_error());
    m->aux += SFX(moe_layer_aux_loss)(SFX(moe_block_ffn)(m->blocks[l]));
    REAL *s = in;
    in = out;
    out = s;
  }
  /* z = LN_f(h_L);  logits (N, V) = z Wᵀ;  CE = (1/N) Σ_t lse_t −
   * logits_t[y_t], lse kept for the backward (the rows' lse on nt
   * threads, their sum in row order). Each row block of par_gemm's
   * (par_impl.h): its rows of z, its logits (the very BLAS call par_gemm
   * makes), then their lse while the block is fresh (one parallel region,
   * the same for the forward-only evaluation). */
  m->logits_valid = 1;
  m->has_targets = 0;
  {
    const int nb = moei_par_nblocks(N);
#pragma omp parallel for num_threads(nt < nb ? nt : nb) schedule(static) if (nt > 1)
    for (int b = 0; b < nb; b++) {
      int r0, r1;
      moei_par_block(N, nb, b, &r0, &r1);
      SFX(moei_ln_forward_rows)(r0, r1, D, in, m->lnfw, m->lnfb, m->z, m->mf, m->rf);
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, V, D, 1, m->z + (size_t)r0 * D, D,
             m->head, D, 0, m->logits + (size_t)r0 * V, V);
      for (int t = r0; t < r1; t++) {
        int bad = 0;
        m->lse[t] = SFX(lm_row_lse)(m->logits + (size_t)t * V, V, &bad);
        if (bad)
          m->lse[t] = NAN; /* the loop below looks again */
      }
    }
  }
  double acc = 0;
  for (int t = 0; t < N; t++) {
    const REAL *l = m->logits + (size_t)t * V; /* (V) */
    int bad = 0;
    if (isnan(m->lse[t]))
      m->lse[t] = SFX(lm_row_lse)(l, V, &bad);
    if (bad)
      for (int v = 0; v < V; v++)
        if (!isfinite(l[v]))
          return moe_error(MOE_EDOM, "lm forward: logit[%d][%d] (b=%d t=%d) is %g", t, v, t / T,
                           t % T, (double)l[v]);
    if (y) {
      m->y[t] = y[t];
      acc += m->lse[t] - (double)l[y[t]];
    }
  }
  m->has_targets = y != NULL && !eval;
  m->ce = y ? acc / N : NAN;
  if (y && loss)
    *loss = m->ce + m->aux;
  m->B = B;
  m->T = T;
  return MOE_OK;
}

int SFX(moe_lm_forward)(SFX(moe_lm) *m, int B, int T, const moe_token *x, const moe_token *y,
                        double *loss)
{
  return SFX(lm_forward)(m, B, T, x, y, loss, 0);
}

int SFX(moe_lm_forward_eval)(SFX(moe_lm) *m, int B, int T, const moe_token *x, const moe_token *y,
                             double *loss)
{
  return SFX(lm_forward)(m, B, T, x, y, loss, 1);
}

int SFX(moe_lm_backward)(SFX(moe_lm) *m)
{
  MOE_CHECK_ARG(m, "lm backward: NULL model");
  MOE_CHECK_ARG(m->B >= 0 && m->has_targets && m->logits_valid,
                "lm backward: needs a successful forward with targets (once per forward)");
  const moe_lm_config *c = &m->cfg;
  const int B = m->B, T = m->T, V = c->V, D = c->D, L = c->L, N = B * T;
  /* dlogits (N, V) = (softmax − onehot)/N, in place of the logits;
   * logits = z Wᵀ:  dz = dlogits W;  z = LN_f(h_L) (h_L where the forward
   * left it):  dh = LN_f'(dz). Each row block of par_gemm's: its rows'
   * softmax, their dz (the very BLAS call par_gemm makes), their dh, in
   * one parallel region; then dW (V, D) += dlogitsᵀ z by par_gemm's
   * blocks, with LN_f's dw, db by column blocks (one thread: in the row
   * pass, rows in order) */
  const REAL invN = (REAL)(1.0 / N);
  const int nt = m->nt;
  REAL *ghead = m->grads + (m->head - m->params);
  REAL *glnfw = m->grads + (m->lnfw - m->params), *glnfb = m->grads + (m->lnfb - m->params);
  REAL *hL = (L % 2 == 0) ? m->h : m->h2, *dh = (L % 2 == 0) ? m->h2 : m->h;
  const int rows_w = nt == 1;
  {
    const int nb = moei_par_nblocks(N);
#pragma omp parallel for num_threads(nt < nb ? nt : nb) schedule(static) if (nt > 1)
    for (int b = 0; b < nb; b++) {
      int r0, r1;
      moei_par_block(N, nb, b, &r0, &r1);
      for (int t = r0; t < r1; t++) {
        REAL *l = m->logits + (size_t)t * V;
        SFX(lm_row_softmax)(l, V, m->lse[t], invN);
        l[m->y[t]] -= invN;
      }
      R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, D, V, 1,
             m->logits + (size_t)r0 * V, V, m->head, D, 0, m->dz + (size_t)r0 * D, D);
      memset(dh + (size_t)r0 * D, 0, (size_t)(r1 - r0) * D * sizeof *dh);
      SFX(moei_ln_backward_rows)(r0, r1, D, hL, m->lnfw, m->mf, m->rf, m->dz, dh,
                                 rows_w ? glnfw : NULL, rows_w ? glnfb : NULL);
    }
  }
  m->logits_valid = 0;
  int rc;
  {
    const int nw = moei_par_nblocks(V), ncb = rows_w ? 0 : (D + MOE_LN_COLS - 1) / MOE_LN_COLS;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int it = 0; it < nw + ncb; it++) {
      if (it < nw)
        SFX(par_gemm_block)(it, nw, CblasTrans, CblasNoTrans, V, D, N, 1, m->logits, V, m->z, D, 1,
                            ghead, D);
      else
        SFX(moei_ln_backward_cols)(it - nw, N, D, hL, m->mf, m->rf, m->dz, glnfw, glnfb);
    }
  }
  for (int l = L - 1; l >= 0; l--) {
    rc = SFX(moe_block_backward)(m->blocks[l], dh, dh);
    if (rc)
      return moe_error(rc, "lm backward: block %d: %s", l, moe_last_error());
  }
  REAL *gwte = m->grads + (m->wte - m->params), *gwpe = m->grads + (m->wpe - m->params);
  SFX(moei_embedding_backward)(nt, B, T, D, m->x, dh, gwte, gwpe);
  return MOE_OK;
}

int SFX(moe_lm_set_threads)(SFX(moe_lm) *m, int n)
{
  MOE_CHECK_ARG(m, "lm threads: NULL model");
  MOE_CHECK_ARG(n >= 1 && n <= MOE_THREADS_MAX, "lm threads: n=%d outside [1, %d]", n,
                MOE_THREADS_MAX);
  for (int l = 0; l < m->cfg.L; l++) {
    int rc = SFX(moe_block_set_threads)(m->blocks[l], n);
    if (rc)
      return rc;
  }
  m->nt = n;
  return MOE_OK;
}

int SFX(moe_lm_get_threads)(const SFX(moe_lm) *m) { return m ? m->nt : 0; }

void SFX(moe_lm_zero_grad)(SFX(moe_lm) *m)
{
  if (!m)
    return;
  /* chunks of the slab on the model's threads (zeros: no bit depends on
   * which thread stores them) */
  const size_t CH = 65536, n = m->n_params, nch = (n + CH - 1) / CH;
  const int nt = m->nt;
  (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && nch > 1)
  for (size_t ch = 0; ch < nch; ch++) {
    const size_t i0 = ch * CH, len = n - i0 < CH ? n - i0 : CH;
    memset(m->grads + i0, 0, len * sizeof *m->grads);
  }
}

const REAL *SFX(moe_lm_logits)(const SFX(moe_lm) *m)
{
  return m && m->B >= 0 && m->logits_valid ? m->logits : NULL;
}
double SFX(moe_lm_ce_loss)(const SFX(moe_lm) *m) { return m ? m->ce : NAN; }
double SFX(moe_lm_aux_loss)(const SFX(moe_lm) *m) { return m ? m->aux : NAN; }
size_t SFX(moe_lm_param_count)(const SFX(moe_lm) *m) { return m ? m->n_params : 0; }
REAL *SFX(moe_lm_params)(SFX(moe_lm) *m) { return m ? m->params : NULL; }
REAL *SFX(moe_lm_grads)(SFX(moe_lm) *m) { return m ? m->grads : NULL; }

SFX(moe_block) *SFX(moe_lm_block)(SFX(moe_lm) *m, int l)
{
  return m && l >= 0 && l < m->cfg.L ? m->blocks[l] : NULL;
}

SFX(moe_layer) *SFX(moe_lm_ffn)(SFX(moe_lm) *m, int l)
{
  return SFX(moe_block_ffn)(SFX(moe_lm_block)(m, l));
}
