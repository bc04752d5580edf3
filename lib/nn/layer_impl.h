/* SPDX-License-Identifier: GPL-3.0-or-later */
/* layer_impl.h — the MoE layer, written once for REAL (see real.h).
 * Included by layer.c; not installed. Shapes: T tokens of the current
 * batch (Tm = max_T), N = T·K routed rows; an expert gets at most T rows
 * (a token chooses K distinct experts), so per-expert scratch is Tm rows.
 *
 * Each routed expert runs fused, while its rows are hot in cache:
 *   forward   gather its rows of x → GEMM → act → GEMM → add w·out into y
 *   backward  gather w·dy for its rows → GEMMs (dW2, dh, dW1, dx rows)
 *             → add its dx rows into dx
 * Nothing is allocated after moe_layer_alloc. Every sum keeps the order
 * moe/layer.h states: y = shared outputs (i = 0..S−1), then routed rows,
 * experts in index order, tokens in order; dx = router part, then shared
 * parts, then routed rows in the same order. */

struct SFX(moe_layer) {
  moe_layer_config cfg;
  int max_T;
  size_t pe;             /* scalars per expert block */
  size_t n_params;
  REAL *params, *grads;  /* (n_params) each, same layout */
  int own_slabs;         /* 0 after moei_layer_adopt: the slabs are a caller's views */
  REAL *Wr;              /* (E, D)  into params */
  REAL *sigma;           /* (S)     shared logits, PAPER only, else NULL */
  REAL *shared;          /* S blocks of pe */
  REAL *routed;          /* E blocks of pe */
  REAL *bias;            /* (E)     selection bias, not a parameter */

  /* record of the last forward */
  int T;                 /* -1 before the first forward */
  double aux;            /* L_aux */
  REAL *x;               /* (Tm, D) copy of the input */
  REAL *logits, *scores; /* (Tm, E) */
  int *idx;              /* (Tm, K) */
  REAL *w;               /* (Tm, K) */
  REAL *omega;           /* (S) */
  int *load;             /* (E)   rows per expert */
  int *off;              /* (E+1) first grouped row of each expert */
  int *slot_of;          /* (Tm·K) slot t·K+k of a grouped row */
  REAL *xg;              /* (Tm·K, D) inputs gathered by expert */
  REAL *cg;              /* (Tm·K, 2F) routed expert caches, by expert */
  REAL *og;              /* (Tm·K, D) routed expert outputs, by expert */
  REAL *sh_out;          /* (S, Tm, D) shared expert outputs (for dω) */
  REAL *sh_cache;        /* S × cache(Tm) */

  /* backward scratch */
  REAL *dg, *dxg;        /* (Tm, D) one expert's grouped dy and dx rows */
  REAL *work;            /* (Tm, F) */
  REAL *dsh, *dxs;       /* (Tm, D) */
  REAL *dw;              /* (Tm, K) */
  REAL *dlogits;         /* (Tm, E) */
  REAL *vecE;            /* (2E) */
  double *accE;          /* (E) */
  REAL *domega;          /* (S) */
  int *next;             /* (E) */
};

void SFX(moe_layer_free)(SFX(moe_layer) *l)
{
  if (!l)
    return;
  if (l->own_slabs) {
    moei_free_aligned(l->params);
    moei_free_aligned(l->grads);
  }
  void *bufs[] = {l->bias, l->x, l->logits, l->scores, l->idx, l->w,
                  l->omega, l->load, l->off, l->slot_of, l->xg, l->cg, l->og,
                  l->sh_out, l->sh_cache, l->dg, l->dxg, l->work, l->dsh, l->dxs, l->dw,
                  l->dlogits, l->vecE, l->accE, l->domega, l->next};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    moei_free_aligned(bufs[i]);
  free(l);
}

/* The named tensors inside the parameter slab. */
static void SFX(point_tensors)(SFX(moe_layer) *l)
{
  const size_t D = l->cfg.D, E = l->cfg.E, S = l->cfg.S;
  const size_t n_sigma = l->cfg.combine == MOE_COMBINE_PAPER ? S : 0;
  l->Wr = l->params;
  l->sigma = n_sigma ? l->params + E * D : NULL;
  l->shared = l->params + E * D + n_sigma;
  l->routed = l->shared + S * l->pe;
}

SFX(moe_layer) *SFX(moe_layer_alloc)(const moe_layer_config *cfg, int max_T)
{
  if (moe_layer_check(cfg))
    return NULL;
  if (max_T < 1) {
    moe_error(MOE_EINVAL, "layer alloc: max_T=%d < 1", max_T);
    return NULL;
  }
  SFX(moe_layer) *l = calloc(1, sizeof *l);
  if (!l) {
    moe_error(MOE_ENOMEM, "layer alloc");
    return NULL;
  }
  l->cfg = *cfg;
  l->max_T = max_T;
  l->T = -1;
  l->own_slabs = 1;
  const size_t D = cfg->D, E = cfg->E, K = cfg->K, S = cfg->S, Tm = max_T;
  const size_t N = Tm * K;
  const size_t F = cfg->expert.kind == MOE_EXPERT_FFN ? (size_t)cfg->expert.F : 0;
  const size_t n_sigma = cfg->combine == MOE_COMBINE_PAPER ? S : 0;
  l->pe = moe_expert_param_count(&cfg->expert, cfg->D);
  l->n_params = E * D + n_sigma + (S + E) * l->pe;
  int fail = 0;
#define ALLOC(field, count)                                                   \
  do {                                                                        \
    l->field = moei_alloc_aligned((size_t)(count) * sizeof *l->field);         \
    fail |= !l->field;                                                        \
  } while (0)
  ALLOC(params, l->n_params);
  ALLOC(grads, l->n_params);
  ALLOC(bias, E);
  ALLOC(x, Tm * D);
  ALLOC(logits, Tm * E);
  ALLOC(scores, Tm * E);
  ALLOC(idx, N);
  ALLOC(w, N);
  ALLOC(omega, S);
  ALLOC(load, E);
  ALLOC(off, E + 1);
  ALLOC(slot_of, N);
  ALLOC(xg, N * D);
  ALLOC(cg, N * 2 * F);
  ALLOC(og, N * D);
  ALLOC(sh_out, S * Tm * D);
  ALLOC(sh_cache, S * Tm * 2 * F);
  ALLOC(dg, Tm * D);
  ALLOC(dxg, Tm * D);
  ALLOC(work, Tm * F);
  ALLOC(dsh, Tm * D);
  ALLOC(dxs, Tm * D);
  ALLOC(dw, N);
  ALLOC(dlogits, Tm * E);
  ALLOC(vecE, 2 * E);
  ALLOC(accE, E);
  ALLOC(domega, S);
  ALLOC(next, E);
#undef ALLOC
  if (fail) {
    SFX(moe_layer_free)(l);
    moe_error(MOE_ENOMEM, "layer alloc: %zu parameters, max_T=%d", (size_t)l->n_params, max_T);
    return NULL;
  }
  SFX(point_tensors)(l);
  return l;
}

/* Work on the caller's slabs (n_params scalars each) from now on: the
 * layer's own slabs are freed, the new ones are used as they are (not
 * copied) and never freed by the layer. For models whose one slab holds
 * every layer's parameters (moe/nn.h, moe/lm.h). */
void SFX(moei_layer_adopt)(SFX(moe_layer) *l, REAL *params, REAL *grads)
{
  if (l->own_slabs) {
    moei_free_aligned(l->params);
    moei_free_aligned(l->grads);
  }
  l->own_slabs = 0;
  l->params = params;
  l->grads = grads;
  SFX(point_tensors)(l);
}

int SFX(moe_layer_init_params)(SFX(moe_layer) *l, gsl_rng *r)
{
  MOE_CHECK_ARG(l && r, "layer init: NULL argument");
  const moe_layer_config *c = &l->cfg;
  memset(l->params, 0, l->n_params * sizeof *l->params);
  memset(l->bias, 0, (size_t)c->E * sizeof *l->bias);
  R_NORMAL(r, l->Wr, (size_t)c->E * c->D, 1 / sqrt((double)c->D));
  for (int i = 0; i < c->S + c->E; i++) {
    int rc = SFX(moe_expert_init)(&c->expert, c->D, l->shared + (size_t)i * l->pe, r);
    if (rc)
      return rc;
  }
  return MOE_OK;
}

/* ½ for the routed mixture when PAPER balances it against shared experts. */
static REAL SFX(routed_factor)(const moe_layer_config *c)
{
  return c->combine == MOE_COMBINE_PAPER && c->S > 0 ? (REAL)0.5 : (REAL)1;
}

/* Weight of shared expert i in y: ½ω_i (PAPER) or 1 (ADDITIVE). */
static REAL SFX(shared_factor)(const SFX(moe_layer) *l, int i)
{
  return l->cfg.combine == MOE_COMBINE_PAPER ? (REAL)0.5 * l->omega[i] : (REAL)1;
}

/* The balance loss's per-token distribution p (E) over experts. */
static void SFX(balance_p)(const moe_layer_config *c, const REAL *s, REAL *p)
{
  const int E = c->E;
  if (c->gate.score == MOE_SCORE_SOFTMAX) {
    memcpy(p, s, (size_t)E * sizeof *p);
    return;
  }
  REAL z = 0;
  for (int e = 0; e < E; e++)
    z += s[e];
  for (int e = 0; e < E; e++)
    p[e] = s[e] / z;
}

int SFX(moe_layer_forward)(SFX(moe_layer) *l, int T, const REAL *x, REAL *y)
{
  MOE_CHECK_ARG(l, "layer forward: NULL layer");
  MOE_CHECK_ARG(T >= 0 && T <= l->max_T, "layer forward: T=%d outside [0, max_T=%d]", T, l->max_T);
  MOE_CHECK_ARG(T == 0 || (x && y), "layer forward: NULL x or y");
  const moe_layer_config *c = &l->cfg;
  const int D = c->D, E = c->E, K = c->K, S = c->S;
  const size_t TD = (size_t)T * D;
  l->T = -1; /* until this forward succeeds */
  for (size_t i = 0; i < TD; i++)
    if (!isfinite(x[i]))
      return moe_error(MOE_EDOM, "layer forward: x[%zu][%zu] is %g", i / (size_t)D, i % (size_t)D,
                       (double)x[i]);
  l->aux = 0;
  if (T == 0) {
    memset(l->load, 0, (size_t)E * sizeof *l->load);
    l->T = 0;
    return MOE_OK;
  }
  memcpy(l->x, x, TD * sizeof *x);

  /* router: logits (T, E) = x (T, D) · W_rᵀ */
  R_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, E, D, 1, l->x, D, l->Wr, D, 0, l->logits, E);
  int rc = SFX(moe_gate_forward)(&c->gate, T, E, K, l->logits, c->gate.use_bias ? l->bias : NULL,
                                 l->scores, l->idx, l->w);
  if (rc)
    return rc;

  /* group the T·K slots by expert, tokens in order within an expert */
  memset(l->load, 0, (size_t)E * sizeof *l->load);
  for (size_t i = 0; i < (size_t)T * K; i++)
    l->load[l->idx[i]]++;
  l->off[0] = 0;
  for (int e = 0; e < E; e++)
    l->off[e + 1] = l->off[e] + l->load[e];
  for (int e = 0; e < E; e++)
    l->next[e] = l->off[e];
  for (size_t i = 0; i < (size_t)T * K; i++)
    l->slot_of[l->next[l->idx[i]]++] = (int)i;

  memset(y, 0, TD * sizeof *y);

  /* shared experts, always on */
  if (S > 0 && c->combine == MOE_COMBINE_PAPER) {
    REAL m = l->sigma[0], z = 0;
    for (int i = 1; i < S; i++)
      if (l->sigma[i] > m)
        m = l->sigma[i];
    for (int i = 0; i < S; i++) {
      l->omega[i] = R_EXP(l->sigma[i] - m);
      z += l->omega[i];
    }
    for (int i = 0; i < S; i++)
      l->omega[i] /= z;
  }
  const size_t sh_cache_n = moe_expert_cache_count(&c->expert, l->max_T);
  for (int i = 0; i < S; i++) {
    REAL *out = l->sh_out + (size_t)i * l->max_T * D;
    SFX(moei_expert_fwd)(&c->expert, D, l->shared + (size_t)i * l->pe, T, l->x,
                         l->sh_cache + (size_t)i * sh_cache_n, out);
    R_AXPY((int)TD, SFX(shared_factor)(l, i), out, 1, y, 1);
  }

  /* routed experts, fused per expert: gather, FFN, weighted scatter-add */
  const size_t cw = moe_expert_cache_count(&c->expert, 1); /* cache scalars per row */
  const REAL r = SFX(routed_factor)(c);
  for (int e = 0; e < E; e++) {
    const int n = l->load[e], o = l->off[e];
    if (!n)
      continue;
    REAL *xe = l->xg + (size_t)o * D, *oe = l->og + (size_t)o * D;
    const int *slots = l->slot_of + o;
    for (int j = 0; j < n; j++)
      memcpy(xe + (size_t)j * D, l->x + (size_t)(slots[j] / K) * D, (size_t)D * sizeof *xe);
    SFX(moei_expert_fwd)(&c->expert, D, l->routed + (size_t)e * l->pe, n, xe,
                         l->cg + (size_t)o * cw, oe);
    for (int j = 0; j < n; j++) {
      const REAL a = r * l->w[slots[j]];
      REAL *restrict yt = y + (size_t)(slots[j] / K) * D;
      const REAL *restrict ot = oe + (size_t)j * D;
      for (int d = 0; d < D; d++)
        yt[d] += a * ot[d];
    }
  }

  /* balance loss L_aux = coef·E·Σ f_e P_e */
  if (c->balance_coef > 0) {
    REAL *p = l->vecE;
    double *Pe = l->accE, acc = 0;
    for (int e = 0; e < E; e++)
      Pe[e] = 0;
    for (int t = 0; t < T; t++) {
      SFX(balance_p)(c, l->scores + (size_t)t * E, p);
      for (int e = 0; e < E; e++)
        Pe[e] += p[e];
    }
    for (int e = 0; e < E; e++)
      acc += ((double)l->load[e] / ((double)T * K)) * (Pe[e] / T);
    l->aux = c->balance_coef * E * acc;
  }
  l->T = T;
  return MOE_OK;
}

int SFX(moe_layer_backward)(SFX(moe_layer) *l, const REAL *dy, REAL *dx)
{
  MOE_CHECK_ARG(l, "layer backward: NULL layer");
  MOE_CHECK_ARG(l->T >= 0, "layer backward: no successful forward to differentiate");
  const int T = l->T;
  if (T == 0)
    return MOE_OK;
  MOE_CHECK_ARG(dy, "layer backward: NULL dy");
  const moe_layer_config *c = &l->cfg;
  const int D = c->D, E = c->E, K = c->K, S = c->S;
  const size_t TD = (size_t)T * D;
  const REAL r = SFX(routed_factor)(c);
  const size_t cw = moe_expert_cache_count(&c->expert, 1);
  REAL *groute = l->grads + (l->routed - l->params);
  REAL *gshared = l->grads + (l->shared - l->params);

  /* dw_tk = r·⟨dy_t, routed(x_t)⟩, for the gate (the routed experts' own
   * backward runs last, fused per expert) */
  for (int row = 0; row < l->off[E]; row++) {
    const int slot = l->slot_of[row];
    const REAL *restrict dyt = dy + (size_t)(slot / K) * D;
    const REAL *restrict o = l->og + (size_t)row * D;
    REAL dot = 0;
    for (int d = 0; d < D; d++)
      dot += dyt[d] * o[d];
    l->dw[slot] = r * dot;
  }

  /* gate: dw → dlogits, plus the balance loss */
  int rc = SFX(moe_gate_backward)(&c->gate, T, E, K, l->scores, l->idx, l->dw, l->dlogits);
  if (rc)
    return rc;
  if (c->balance_coef > 0) {
    /* ∂L/∂p_te = coef·E·f_e/T =: g_e, then back through p(l). */
    REAL *g = l->vecE, *p = l->vecE + E;
    for (int e = 0; e < E; e++)
      g[e] = (REAL)(c->balance_coef * E * ((double)l->load[e] / ((double)T * K)) / T);
    for (int t = 0; t < T; t++) {
      const REAL *s = l->scores + (size_t)t * E;
      REAL *dl = l->dlogits + (size_t)t * E;
      SFX(balance_p)(c, s, p);
      REAL dot = 0;
      for (int e = 0; e < E; e++)
        dot += g[e] * p[e];
      if (c->gate.score == MOE_SCORE_SOFTMAX) {
        for (int e = 0; e < E; e++)
          dl[e] += p[e] * (g[e] - dot);
      } else {
        REAL z = 0;
        for (int e = 0; e < E; e++)
          z += s[e];
        for (int e = 0; e < E; e++)
          dl[e] += (g[e] - dot) / z * s[e] * (1 - s[e]);
      }
    }
  }

  /* router: dW_r (E, D) += dlogitsᵀ x;  dx = dlogits W_r */
  R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, E, D, T, 1, l->dlogits, E, l->x, D, 1, l->grads,
         D);
  if (dx)
    R_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, E, 1, l->dlogits, E, l->Wr, D, 0, dx, D);

  /* shared experts */
  const size_t sh_cache_n = moe_expert_cache_count(&c->expert, l->max_T);
  if (S > 0 && c->combine == MOE_COMBINE_PAPER) {
    /* dω_i = ½⟨dy, out_i⟩;  dσ_j = ω_j (dω_j − Σ_i ω_i dω_i) */
    REAL *domega = l->domega, dot = 0;
    for (int i = 0; i < S; i++) {
      const REAL *out = l->sh_out + (size_t)i * l->max_T * D;
      REAL acc = 0;
      for (size_t j = 0; j < TD; j++)
        acc += dy[j] * out[j];
      domega[i] = (REAL)0.5 * acc;
      dot += l->omega[i] * domega[i];
    }
    REAL *gsigma = l->grads + (l->sigma - l->params);
    for (int i = 0; i < S; i++)
      gsigma[i] += l->omega[i] * (domega[i] - dot);
  }
  for (int i = 0; i < S; i++) {
    REAL a = SFX(shared_factor)(l, i);
    const REAL *d = dy;
    if (a != 1) {
      for (size_t j = 0; j < TD; j++)
        l->dsh[j] = a * dy[j];
      d = l->dsh;
    }
    SFX(moei_expert_bwd)(&c->expert, D, l->shared + (size_t)i * l->pe, T, l->x,
                         l->sh_cache + (size_t)i * sh_cache_n, d, gshared + (size_t)i * l->pe,
                         dx ? l->dxs : NULL, l->work);
    if (dx)
      for (size_t j = 0; j < TD; j++)
        dx[j] += l->dxs[j];
  }

  /* routed experts, fused per expert: gather r·w_tk·dy_t, backward,
   * scatter-add the dx rows (experts in index order, tokens in order) */
  for (int e = 0; e < E; e++) {
    const int n = l->load[e], o = l->off[e];
    if (!n)
      continue;
    const int *slots = l->slot_of + o;
    for (int j = 0; j < n; j++) {
      const REAL a = r * l->w[slots[j]];
      const REAL *restrict dyt = dy + (size_t)(slots[j] / K) * D;
      REAL *restrict g = l->dg + (size_t)j * D;
      for (int d = 0; d < D; d++)
        g[d] = a * dyt[d];
    }
    SFX(moei_expert_bwd)(&c->expert, D, l->routed + (size_t)e * l->pe, n, l->xg + (size_t)o * D,
                         l->cg + (size_t)o * cw, l->dg, groute + (size_t)e * l->pe,
                         dx ? l->dxg : NULL, l->work);
    if (dx)
      for (int j = 0; j < n; j++) {
        REAL *restrict dxt = dx + (size_t)(slots[j] / K) * D;
        const REAL *restrict g = l->dxg + (size_t)j * D;
        for (int d = 0; d < D; d++)
          dxt[d] += g[d];
      }
  }
  return MOE_OK;
}

void SFX(moe_layer_zero_grad)(SFX(moe_layer) *l)
{
  if (l)
    memset(l->grads, 0, l->n_params * sizeof *l->grads);
}

const moe_layer_config *SFX(moe_layer_get_config)(const SFX(moe_layer) *l) { return l ? &l->cfg : NULL; }
size_t SFX(moe_layer_param_count)(const SFX(moe_layer) *l) { return l ? l->n_params : 0; }
REAL *SFX(moe_layer_params)(SFX(moe_layer) *l) { return l ? l->params : NULL; }
REAL *SFX(moe_layer_grads)(SFX(moe_layer) *l) { return l ? l->grads : NULL; }
REAL *SFX(moe_layer_router)(SFX(moe_layer) *l) { return l ? l->Wr : NULL; }
REAL *SFX(moe_layer_shared_logits)(SFX(moe_layer) *l) { return l ? l->sigma : NULL; }

REAL *SFX(moe_layer_shared_expert)(SFX(moe_layer) *l, int i)
{
  return l && i >= 0 && i < l->cfg.S ? l->shared + (size_t)i * l->pe : NULL;
}

REAL *SFX(moe_layer_routed_expert)(SFX(moe_layer) *l, int e)
{
  return l && e >= 0 && e < l->cfg.E ? l->routed + (size_t)e * l->pe : NULL;
}

REAL *SFX(moe_layer_grad_of)(SFX(moe_layer) *l, const REAL *p)
{
  if (!l || !p || p < l->params || p >= l->params + l->n_params)
    return NULL;
  return l->grads + (p - l->params);
}

REAL *SFX(moe_layer_bias)(SFX(moe_layer) *l) { return l ? l->bias : NULL; }

int SFX(moe_layer_bias_update)(SFX(moe_layer) *l, double gamma)
{
  MOE_CHECK_ARG(l, "layer bias update: NULL layer");
  MOE_CHECK_ARG(l->T >= 0, "layer bias update: no forward yet");
  return SFX(moe_gate_bias_update)(l->T, l->cfg.E, l->cfg.K, l->idx, gamma, l->bias);
}

int SFX(moe_layer_last_T)(const SFX(moe_layer) *l) { return l ? l->T : -1; }
const int *SFX(moe_layer_chosen)(const SFX(moe_layer) *l) { return l ? l->idx : NULL; }
const REAL *SFX(moe_layer_weights)(const SFX(moe_layer) *l) { return l ? l->w : NULL; }
const REAL *SFX(moe_layer_scores)(const SFX(moe_layer) *l) { return l ? l->scores : NULL; }
const REAL *SFX(moe_layer_logits)(const SFX(moe_layer) *l) { return l ? l->logits : NULL; }
const int *SFX(moe_layer_load)(const SFX(moe_layer) *l) { return l ? l->load : NULL; }
double SFX(moe_layer_aux_loss)(const SFX(moe_layer) *l) { return l ? l->aux : 0; }

const REAL *SFX(moe_layer_omega)(const SFX(moe_layer) *l)
{
  return l && l->cfg.S > 0 && l->cfg.combine == MOE_COMBINE_PAPER ? l->omega : NULL;
}
