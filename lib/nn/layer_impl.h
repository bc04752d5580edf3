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

#ifndef MOE_LAYER_LANES
#if defined(__GNUC__) && !defined(__clang__)
#define MOE_LAYER_LANES _Pragma("GCC unroll 4") /* each lane's sum in a register */
#else
#define MOE_LAYER_LANES
#endif
#endif

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
  double *lse;           /* (Tm) router logsumexp per token (z-loss) */
  REAL *domega;          /* (S) */
  int *next;             /* (E) */
  int *ord;              /* (E) routed experts by load, largest first: work order at 2+ threads */

  /* threads (moe_layer_set_threads); the buffers exist once nt > 1 */
  int nt;
  int *tok_rows;         /* (Tm, K) grouped rows of each token, in expert order */
  int *tok_cnt;          /* (Tm) */
  REAL *dgN, *dxgN;      /* (Tm·K, D) every expert's dg, dxg rows, by expert */
  REAL *workN;           /* (Tm·K, F) */
  REAL *sh_dsh, *sh_dxs; /* (S, Tm, D) each shared expert's dsh, dxs */
  REAL *sh_work;         /* (S, Tm, F) */
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
                  l->dlogits, l->vecE, l->accE, l->lse, l->domega, l->next, l->ord,
                  l->tok_rows, l->tok_cnt, l->dgN, l->dxgN, l->workN, l->sh_dsh, l->sh_dxs,
                  l->sh_work};
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
  /* The T·K routing slots are counted in int (load, off, slot_of) and a
   * batch of T·D scalars is one BLAS call with an int length: both must fit
   * an int for every T up to max_T. */
  if ((long long)max_T * cfg->K > INT_MAX || (long long)max_T * cfg->D > INT_MAX) {
    moe_error(MOE_EINVAL, "layer alloc: max_T=%d too large for K=%d, D=%d (max_T·K and max_T·D must be <= %d)",
              max_T, cfg->K, cfg->D, INT_MAX);
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
  l->nt = 1;
  l->own_slabs = 1;
  const size_t D = cfg->D, E = cfg->E, K = cfg->K, S = cfg->S, Tm = max_T;
  const size_t N = Tm * K;
  const size_t F = cfg->expert.kind == MOE_EXPERT_FFN ? (size_t)cfg->expert.F : 0;
  const size_t n_sigma = cfg->combine == MOE_COMBINE_PAPER ? S : 0;
  l->pe = moe_expert_param_count(&cfg->expert, cfg->D);
  /* Every count below is a product of caller-supplied ints: checked, so a
   * product that wraps gives MOE_ENOMEM, never a short buffer. */
  size_t ed, sep, np;
  int fail = !moei_mul(E, D, &ed) || !moei_mul(S + E, l->pe, &sep) ||
             (np = ed + n_sigma) < ed || (l->n_params = np + sep) < np;
#define CNT3(a, b, c) (moei_mul((a), (b), &cnt) && moei_mul(cnt, (c), &cnt) ? cnt : (size_t)-1)
  size_t cnt;
#define ALLOC(field, count)                                                   \
  do {                                                                        \
    l->field = fail ? NULL : moei_alloc_array((count), sizeof *l->field);     \
    fail |= !l->field;                                                        \
  } while (0)
  ALLOC(params, l->n_params);
  ALLOC(grads, l->n_params);
  ALLOC(bias, E);
  ALLOC(x, Tm * D);
  ALLOC(logits, CNT3(Tm, E, 1));
  ALLOC(scores, CNT3(Tm, E, 1));
  ALLOC(idx, N);
  ALLOC(w, N);
  ALLOC(omega, S);
  ALLOC(load, E);
  ALLOC(ord, E);
  ALLOC(off, E + 1);
  ALLOC(slot_of, N);
  ALLOC(xg, CNT3(N, D, 1));
  ALLOC(cg, CNT3(N, 2, F));
  ALLOC(og, CNT3(N, D, 1));
  ALLOC(sh_out, CNT3(S, Tm, D));
  ALLOC(sh_cache, CNT3(S, Tm, 2 * F));
  ALLOC(dg, CNT3(Tm, D, 1));
  ALLOC(dxg, CNT3(Tm, D, 1));
  ALLOC(work, CNT3(Tm, F, 1));
  ALLOC(dsh, Tm * D);
  ALLOC(dxs, Tm * D);
  ALLOC(dw, N);
  ALLOC(dlogits, CNT3(Tm, E, 1));
  ALLOC(vecE, CNT3(2, E, 1));
  ALLOC(accE, E);
  ALLOC(lse, Tm);
  ALLOC(domega, S);
  ALLOC(next, E);
#undef ALLOC
#undef CNT3
  if (fail) {
    SFX(moe_layer_free)(l);
    moe_error(MOE_ENOMEM, "layer alloc: no memory for D=%d E=%d K=%d S=%d F=%zu, max_T=%d "
              "(or a buffer size does not fit a size_t)", cfg->D, cfg->E, cfg->K, cfg->S, F, max_T);
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

int SFX(moei_layer_init)(SFX(moe_layer) *l, const moei_init_src *src)
{
  const moe_layer_config *c = &l->cfg;
  memset(l->params, 0, l->n_params * sizeof *l->params);
  memset(l->bias, 0, (size_t)c->E * sizeof *l->bias);
  R_NORMAL(moei_init_stream(src, "router", -1), l->Wr, (size_t)c->E * c->D, 1 / sqrt((double)c->D));
  for (int i = 0; i < c->S + c->E; i++) { /* shared 0..S-1, then routed 0..E-1 */
    gsl_rng *r = i < c->S ? moei_init_stream(src, "shared", i) : moei_init_stream(src, "routed", i - c->S);
    int rc = SFX(moe_expert_init)(&c->expert, c->D, l->shared + (size_t)i * l->pe, r);
    if (rc)
      return rc;
  }
  return MOE_OK;
}

int SFX(moe_layer_init_params)(SFX(moe_layer) *l, gsl_rng *r)
{
  MOE_CHECK_ARG(l && r, "layer init: NULL argument");
  moei_init_src src = {r, 0, 0};
  return SFX(moei_layer_init)(l, &src);
}

int SFX(moe_layer_init_params_keyed)(SFX(moe_layer) *l, uint64_t seed)
{
  MOE_CHECK_ARG(l, "layer init: NULL layer");
  moei_init_src src = {moe_rng_alloc(0), seed, 1};
  if (!src.r)
    return MOE_ENOMEM;
  int rc = SFX(moei_layer_init)(l, &src);
  gsl_rng_free(src.r);
  return rc;
}

int SFX(moe_layer_set_threads)(SFX(moe_layer) *l, int n)
{
  MOE_CHECK_ARG(l, "layer threads: NULL layer");
  MOE_CHECK_ARG(n >= 1 && n <= MOE_THREADS_MAX, "layer threads: n=%d outside [1, %d]", n,
                MOE_THREADS_MAX);
  if (n > 1 && !l->tok_rows) {
    const moe_layer_config *c = &l->cfg;
    const size_t D = c->D, S = c->S, Tm = l->max_T, N = Tm * c->K;
    const size_t F = c->expert.kind == MOE_EXPERT_FFN ? (size_t)c->expert.F : 0;
    size_t cnt;
#define CNT3(a, b, c) (moei_mul((a), (b), &cnt) && moei_mul(cnt, (c), &cnt) ? cnt : (size_t)-1)
    l->tok_rows = moei_alloc_array(N, sizeof *l->tok_rows);
    l->tok_cnt = moei_alloc_array(Tm, sizeof *l->tok_cnt);
    l->dgN = moei_alloc_array(CNT3(N, D, 1), sizeof(REAL));
    l->dxgN = moei_alloc_array(CNT3(N, D, 1), sizeof(REAL));
    l->workN = moei_alloc_array(CNT3(N, F, 1), sizeof(REAL));
    l->sh_dsh = moei_alloc_array(CNT3(S, Tm, D), sizeof(REAL));
    l->sh_dxs = moei_alloc_array(CNT3(S, Tm, D), sizeof(REAL));
    l->sh_work = moei_alloc_array(CNT3(S, Tm, F), sizeof(REAL));
#undef CNT3
    if (!l->tok_rows || !l->tok_cnt || !l->dgN || !l->dxgN || !l->workN || !l->sh_dsh ||
        !l->sh_dxs || !l->sh_work) {
      void *bufs[] = {l->tok_rows, l->tok_cnt, l->dgN, l->dxgN, l->workN, l->sh_dsh, l->sh_dxs,
                      l->sh_work};
      for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        moei_free_aligned(bufs[i]);
      l->tok_rows = NULL, l->tok_cnt = NULL, l->dgN = l->dxgN = l->workN = NULL;
      l->sh_dsh = l->sh_dxs = l->sh_work = NULL;
      return moe_error(MOE_ENOMEM, "layer threads: no memory for the per-expert scratch of "
                       "%d threads (max_T=%d)", n, l->max_T);
    }
  }
  l->nt = n;
  /* BLAS's own threads inside ours would oversubscribe the cores and
   * give BLAS's threaded bits: one BLAS thread, process-wide */
  if (n > 1 && moe_blas_threads() > 1)
    moe_blas_set_threads(1);
  return MOE_OK;
}

int SFX(moe_layer_get_threads)(const SFX(moe_layer) *l) { return l ? l->nt : 0; }

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

/* Whether routed expert e has every token's one slot (K = 1, all T
 * rows: a dense FFN): its grouped rows are then the tokens in order, so
 * its gathered inputs are l->x itself and its rows map one to one onto
 * y and dx. */
static int SFX(all_rows)(const SFX(moe_layer) *l, int e, int T)
{
  return l->cfg.K == 1 && l->load[e] == T;
}

/* Whether the layer is one expert that every token takes (E = K = 1, no
 * shared expert: a dense FFN). Its one work item would be all of the
 * layer's work, so its products are split into row blocks instead
 * (moei_expert_fwd_blocked / moei_expert_bwd_blocked), on one thread as
 * on many. */
static int SFX(dense)(const SFX(moe_layer) *l)
{
  return l->cfg.E == 1 && l->cfg.K == 1 && l->cfg.S == 0;
}

/* Whether routed expert e's products are cut into row blocks (the
 * blocked functions' calls, on one thread as on many; at 2+ threads its
 * row blocks are work items of their own): it has more than half of the
 * layer's expert rows T·(K + S), more than every other item together (so
 * at most one expert is split, the largest: split_expert),
 * which no schedule of whole items could balance (a collapsed router
 * sending most tokens to one expert, K = 1, no shared expert). Smaller
 * items stay whole: blocks cost calls (~3% at one thread) and, at two,
 * the weight gradients' products read rows the other core wrote (the
 * shared experts in blocks: 1-3% slower at 2 threads, measured; doc/
 * threads.md). A function of the routing alone, never of the thread
 * count. A dense FFN's one expert has its own path. */
static int SFX(split)(const SFX(moe_layer) *l, int e, int T)
{
  const moe_layer_config *c = &l->cfg;
  return !SFX(dense)(l) && 2 * (long)l->load[e] > (long)T * (c->K + c->S);
}

/* Rows [r0, r1) of routed expert e's inputs grouped by row: its rows of x
 * gathered into l->xg, or l->x itself when it has all rows in token
 * order (all_rows). Either way the same values, so the same bits.
 * gather_rows: all its rows. */
static const REAL *SFX(gather_range)(SFX(moe_layer) *l, int e, int T, int r0, int r1)
{
  const int D = l->cfg.D, K = l->cfg.K, o = l->off[e];
  if (SFX(all_rows)(l, e, T))
    return l->x;
  REAL *xe = l->xg + (size_t)o * D;
  const int *slots = l->slot_of + o;
  for (int j = r0; j < r1; j++)
    memcpy(xe + (size_t)j * D, l->x + (size_t)(slots[j] / K) * D, (size_t)D * sizeof *xe);
  return xe;
}

static const REAL *SFX(gather_rows)(SFX(moe_layer) *l, int e, int T)
{
  return SFX(gather_range)(l, e, T, 0, l->load[e]);
}

/* Routed expert e's inputs as gather_rows left them, for its backward. */
static const REAL *SFX(grouped_x)(const SFX(moe_layer) *l, int e, int T)
{
  return SFX(all_rows)(l, e, T) ? l->x : l->xg + (size_t)l->off[e] * l->cfg.D;
}

/* y is not zeroed before the experts (moe_layer_forward) when the one
 * thread's pass below writes every element once: no shared expert and
 * one routed expert with all rows. */
static int SFX(y_written_once)(const SFX(moe_layer) *l, int T)
{
  return l->nt == 1 && l->cfg.S == 0 && SFX(all_rows)(l, l->idx[0], T);
}

/* The experts' forward on one thread: shared experts, then each routed
 * expert fused (gather, FFN, weighted scatter-add) while its rows are hot. */
static void SFX(layer_forward_serial)(SFX(moe_layer) *l, int T, REAL *y)
{
  const moe_layer_config *c = &l->cfg;
  const int D = c->D, E = c->E, K = c->K, S = c->S;
  const size_t TD = (size_t)T * D;
  const size_t sh_cache_n = moe_expert_cache_count(&c->expert, l->max_T);
  const size_t cw = moe_expert_cache_count(&c->expert, 1); /* cache scalars per row */
  const REAL r = SFX(routed_factor)(c);
  for (int i = 0; i < S; i++) {
    REAL *out = l->sh_out + (size_t)i * l->max_T * D;
    SFX(moei_expert_fwd)(&c->expert, D, l->shared + (size_t)i * l->pe, T, l->x,
                         l->sh_cache + (size_t)i * sh_cache_n, out);
    R_AXPY((int)TD, SFX(shared_factor)(l, i), out, 1, y, 1);
  }

  /* routed experts, fused per expert: gather, FFN, weighted scatter-add */
  for (int e = 0; e < E; e++) {
    const int n = l->load[e], o = l->off[e];
    if (!n)
      continue;
    REAL *oe = l->og + (size_t)o * D;
    const int *slots = l->slot_of + o;
    const REAL *xe = SFX(gather_rows)(l, e, T);
    if (SFX(dense)(l) || SFX(split)(l, e, T))
      SFX(moei_expert_fwd_blocked)(&c->expert, D, l->routed + (size_t)e * l->pe, n, xe,
                                   l->cg + (size_t)o * cw, oe, 1);
    else
      SFX(moei_expert_fwd)(&c->expert, D, l->routed + (size_t)e * l->pe, n, xe,
                           l->cg + (size_t)o * cw, oe);
    if (!S && SFX(all_rows)(l, e, T)) {
      /* y was not zeroed (y_written_once): each row written once as
       * 0 + a·out, the very operations of adding a·out to a zero row */
      for (int j = 0; j < n; j++) {
        const REAL a = r * l->w[slots[j]];
        REAL *restrict yt = y + (size_t)(slots[j] / K) * D;
        const REAL *restrict ot = oe + (size_t)j * D;
        for (int d = 0; d < D; d++)
          yt[d] = (REAL)0 + a * ot[d];
      }
      continue;
    }
    for (int j = 0; j < n; j++) {
      const REAL a = r * l->w[slots[j]];
      REAL *restrict yt = y + (size_t)(slots[j] / K) * D;
      const REAL *restrict ot = oe + (size_t)j * D;
      for (int d = 0; d < D; d++)
        yt[d] += a * ot[d];
    }
  }
}

/* Each token's K grouped rows in row order, which is expert order (the
 * rows are grouped by expert, tokens in order within an expert); and the
 * routed experts by load, largest first (ties by index), the order their
 * work items are handed out in: the last items to start are the small
 * ones, so the threads finish closer together when routing is skewed.
 * Each item writes only its own outputs, so the order changes no bit. */
static void SFX(token_rows)(SFX(moe_layer) *l, int T)
{
  const int K = l->cfg.K, E = l->cfg.E;
  memset(l->tok_cnt, 0, (size_t)T * sizeof *l->tok_cnt);
  for (int row = 0; row < T * K; row++) {
    const int t = l->slot_of[row] / K;
    l->tok_rows[(size_t)t * K + l->tok_cnt[t]++] = row;
  }
  for (int e = 0; e < E; e++) { /* insertion sort: stable, E is small */
    int j = e;
    for (; j > 0 && l->load[l->ord[j - 1]] < l->load[e]; j--)
      l->ord[j] = l->ord[j - 1];
    l->ord[j] = e;
  }
}

/* The routed expert split() may hold, with its work items at 2+ threads:
 * more than half of the expert rows makes it the largest, l->ord[0]
 * (token_rows), and the only one. Returns it, or −1 if none is split. */
static int SFX(split_expert)(const SFX(moe_layer) *l, int T)
{
  return !SFX(dense)(l) && SFX(split)(l, l->ord[0], T) ? l->ord[0] : -1;
}

/* The experts' forward on l->nt threads. Every expert (shared ones first,
 * the largest items, then routed by load) is one work item, but for a
 * split expert's row blocks (moei_expert_fwd_block: the calls of
 * moei_expert_fwd_blocked, which the one-thread code makes); each item
 * writes only its own outputs; then y is summed as the one-thread code
 * sums it: zero,
 * shared outputs i = 0..S−1 (the same R_AXPY, on spans of 64 tokens: a
 * multiple of 64 elements before the end, the vector block of every
 * x86 saxpy kernel of OpenBLAS (32, Sandybridge's 64), so
 * every element takes the path it takes in one call over all T·D), then
 * each token's routed rows in expert order. Returns the first non-finite
 * element of y (T·D if none), as R_FIRST_NONFINITE over all of y. */
static size_t SFX(layer_forward_threads)(SFX(moe_layer) *l, int T, REAL *y)
{
  const moe_layer_config *c = &l->cfg;
  const int D = c->D, K = c->K, S = c->S, nt = l->nt;
  const size_t TD = (size_t)T * D, Tm = l->max_T;
  const size_t sh_cache_n = moe_expert_cache_count(&c->expert, l->max_T);
  const size_t cw = moe_expert_cache_count(&c->expert, 1);
  const REAL r = SFX(routed_factor)(c);
  SFX(token_rows)(l, T);
  const int nsh = S; /* the shared experts, one item each */
  /* the split expert's row blocks, then the other routed experts whole */
  const int es = SFX(split_expert)(l, T), nsb = es < 0 ? 0 : moei_par_nblocks(l->load[es]);
  const int nitem = SFX(dense)(l) ? 0 : nsh + nsb + c->E - (es >= 0); /* a dense FFN: blocked */
  if (!nitem)
    SFX(moei_expert_fwd_blocked)(&c->expert, D, l->routed, T, SFX(gather_rows)(l, 0, T), l->cg,
                                 l->og, nt);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nitem)
  for (int it = 0; it < nitem; it++) {
    if (it < nsh) {
      SFX(moei_expert_fwd)(&c->expert, D, l->shared + (size_t)it * l->pe, T, l->x,
                           l->sh_cache + (size_t)it * sh_cache_n, l->sh_out + (size_t)it * Tm * D);
      continue;
    }
    const int r = it - nsh, e = r < nsb ? es : l->ord[r - nsb + (es >= 0)];
    const int n = l->load[e], o = l->off[e];
    if (r < nsb) { /* row block r: its rows gathered, its products */
      int r0, r1;
      moei_par_block(n, nsb, r, &r0, &r1);
      SFX(moei_expert_fwd_block)(&c->expert, D, l->routed + (size_t)e * l->pe, n, r,
                                 SFX(gather_range)(l, e, T, r0, r1), l->cg + (size_t)o * cw,
                                 l->og + (size_t)o * D);
      continue;
    }
    if (!n)
      continue;
    SFX(moei_expert_fwd)(&c->expert, D, l->routed + (size_t)e * l->pe, n,
                         SFX(gather_rows)(l, e, T), l->cg + (size_t)o * cw, l->og + (size_t)o * D);
  }
  enum { SPAN = 64 }; /* tokens: SPAN·D elements, a multiple of 64 */
  const int nsp = (T + SPAN - 1) / SPAN;
  size_t bad = TD;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(min : bad)
  for (int sp = 0; sp < nsp; sp++) {
    const int t0 = sp * SPAN, t1 = t0 + SPAN < T ? t0 + SPAN : T;
    const size_t e0 = (size_t)t0 * D, ne = (size_t)(t1 - t0) * D;
    memset(y + e0, 0, ne * sizeof *y);
    for (int i = 0; i < S; i++)
      R_AXPY((int)ne, SFX(shared_factor)(l, i), l->sh_out + (size_t)i * Tm * D + e0, 1, y + e0, 1);
    for (int t = t0; t < t1; t++) {
      REAL *restrict yt = y + (size_t)t * D;
      for (int k = 0; k < K; k++) {
        const int row = l->tok_rows[(size_t)t * K + k];
        const REAL a = r * l->w[l->slot_of[row]];
        const REAL *restrict ot = l->og + (size_t)row * D;
        for (int d = 0; d < D; d++)
          yt[d] += a * ot[d];
      }
    }
    const size_t b = R_FIRST_NONFINITE(y + e0, ne);
    if (b < ne && e0 + b < bad)
      bad = e0 + b;
  }
  return bad;
}

/* moe_layer_forward's refusal of x, bad its first non-finite element. */
static int SFX(x_error)(const REAL *x, size_t bad, int D)
{
  return moe_error(MOE_EDOM, "layer forward: x[%zu][%zu] is %g", bad / (size_t)D,
                   bad % (size_t)D, (double)x[bad]);
}

/* moe_layer_forward's start on l->nt threads (T > 0): the check of x, its
 * copy, the router's logits (T, E) = x W_rᵀ and the gate, row block by
 * row block of par_gemm (par_impl.h: the very BLAS calls), each block's
 * gate right after its logits (moei_gate_rows: any split of the tokens
 * gives the same bits). Fails as the one-thread order does: the first
 * non-finite x, else moe_gate_forward's checks (logits, then the bias),
 * each the first in element order; nothing in x or the layer's
 * parameters is changed either way. */
static int SFX(route_threads)(SFX(moe_layer) *l, int T, const REAL *x)
{
  const moe_layer_config *c = &l->cfg;
  const int D = c->D, E = c->E, K = c->K, nt = l->nt;
  const REAL *bias = c->gate.use_bias ? l->bias : NULL;
  const size_t TD = (size_t)T * D, TE = (size_t)T * E;
  const int nb = moei_par_nblocks(T);
  size_t bad_x = TD, bad_l = TE;
  (void)nt;
#pragma omp parallel for num_threads(nt < nb ? nt : nb) schedule(static) reduction(min : bad_x, bad_l)
  for (int b = 0; b < nb; b++) {
    int r0, r1;
    moei_par_block(T, nb, b, &r0, &r1);
    const size_t o = (size_t)r0 * D, n = (size_t)(r1 - r0) * D;
    const size_t bx = R_FIRST_NONFINITE(x + o, n);
    if (bx < n && o + bx < bad_x)
      bad_x = o + bx;
    memcpy(l->x + o, x + o, n * sizeof *x);
    SFX(par_gemm_block)(b, nb, CblasNoTrans, CblasTrans, T, E, D, 1, l->x, D, l->Wr, D, 0,
                        l->logits, E);
    const size_t ol = (size_t)r0 * E, nl = (size_t)(r1 - r0) * E;
    const size_t bl = R_FIRST_NONFINITE(l->logits + ol, nl);
    if (bl < nl && ol + bl < bad_l)
      bad_l = ol + bl;
    SFX(moei_gate_rows)(&c->gate, r0, r1, E, K, l->logits, bias, l->scores, l->idx, l->w);
  }
  if (bad_x < TD)
    return SFX(x_error)(x, bad_x, D);
  int rc = moe_gate_check(&c->gate, E, K);
  if (rc)
    return rc;
  return SFX(moei_gate_finite)(&c->gate, E, l->logits, bad_l, TE, bias);
}

/* The router's weight gradient dW_r (E, D) += dlogitsᵀ x. */
static void SFX(router_dw)(SFX(moe_layer) *l, int T)
{
  const int D = l->cfg.D, E = l->cfg.E;
  R_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, E, D, T, 1, l->dlogits, E, l->x, D, 1, l->grads,
         D);
}

/* dω_i = ½⟨dy, out_i⟩ over the T·D values, in order (PAPER combine). */
static REAL SFX(shared_domega)(const SFX(moe_layer) *l, int i, const REAL *dy, size_t TD)
{
  const REAL *out = l->sh_out + (size_t)i * l->max_T * l->cfg.D;
  REAL acc = 0;
  for (size_t j = 0; j < TD; j++)
    acc += dy[j] * out[j];
  return (REAL)0.5 * acc;
}

/* dσ_j += ω_j (dω_j − Σ_i ω_i dω_i), from l->domega. */
static void SFX(sigma_grad)(SFX(moe_layer) *l)
{
  const int S = l->cfg.S;
  REAL dot = 0;
  for (int i = 0; i < S; i++)
    dot += l->omega[i] * l->domega[i];
  REAL *gsigma = l->grads + (l->sigma - l->params);
  for (int i = 0; i < S; i++)
    gsigma[i] += l->omega[i] * (l->domega[i] - dot);
}

/* Whether routed expert e's backward reads dy itself instead of its rows
 * of r·w_tk·dy_t gathered: it has all rows in token order (all_rows) and
 * every factor is exactly 1 (a dense FFN, a collapsed router's expert):
 * 1·v = v for every float, so the same bits without the copy. */
static int SFX(dy_direct)(const SFX(moe_layer) *l, int e, int T)
{
  const int n = l->load[e];
  const int *slots = l->slot_of + l->off[e];
  const REAL r = SFX(routed_factor)(&l->cfg);
  int ones = SFX(all_rows)(l, e, T);
  for (int j = 0; j < n && ones; j++)
    ones = r * l->w[slots[j]] == 1;
  return ones;
}

/* Rows [r0, r1) of routed expert e's upstream gradient r·w_tk·dy_t,
 * gathered into dg's same rows. */
static void SFX(gather_dy_range)(const SFX(moe_layer) *l, int e, const REAL *dy, REAL *dg, int r0,
                                 int r1)
{
  const int D = l->cfg.D, K = l->cfg.K;
  const int *slots = l->slot_of + l->off[e];
  const REAL r = SFX(routed_factor)(&l->cfg);
  for (int j = r0; j < r1; j++) {
    const REAL a = r * l->w[slots[j]];
    const REAL *restrict dyt = dy + (size_t)(slots[j] / K) * D;
    REAL *restrict g = dg + (size_t)j * D;
    for (int d = 0; d < D; d++)
      g[d] = a * dyt[d];
  }
}

/* Routed expert e's upstream gradient by row: dy itself (dy_direct) or
 * all its rows gathered into dg. */
static const REAL *SFX(gather_dy)(const SFX(moe_layer) *l, int e, int T, const REAL *dy, REAL *dg)
{
  if (SFX(dy_direct)(l, e, T))
    return dy;
  SFX(gather_dy_range)(l, e, dy, dg, 0, l->load[e]);
  return dg;
}

/* The layer's backward after the gate, on l->nt threads. A split
 * expert's gathered dy first, by its row blocks; then one region of
 * independent work items, each computed as on one thread: the shared
 * experts (the largest first), the dω dot products (PAPER: each a chain
 * of T·D additions), the router's weight gradient, the row blocks of the
 * router's dx (par_gemm's), the routed experts (a split one's
 * first-phase items, moei_expert_bwd_item: dW2's row blocks, db2, the
 * row blocks of dh and dx); each writes its own gradient block and its
 * own dx rows. Then a region of a split expert's second-phase items
 * (dW1's row blocks, db1: they read every row of dh), dσ, and dx summed
 * in the one-thread order: router part, shared parts i = 0..S−1, then
 * each token's routed rows in expert order. */
static void SFX(layer_backward_threads)(SFX(moe_layer) *l, const REAL *dy, REAL *dx)
{
  const moe_layer_config *c = &l->cfg;
  const int T = l->T, D = c->D, E = c->E, K = c->K, S = c->S, nt = l->nt;
  const size_t TD = (size_t)T * D, Tm = l->max_T;
  const size_t F = c->expert.kind == MOE_EXPERT_FFN ? (size_t)c->expert.F : 0;
  const size_t sh_cache_n = moe_expert_cache_count(&c->expert, l->max_T);
  const size_t cw = moe_expert_cache_count(&c->expert, 1);
  REAL *groute = l->grads + (l->routed - l->params);
  REAL *gshared = l->grads + (l->shared - l->params);
  const int nsig = S > 0 && c->combine == MOE_COMBINE_PAPER ? S : 0;
  const int nsh = S; /* the shared experts, one item each */
  const int nb = dx ? moei_par_nblocks(T) : 0, first_routed = nsh + nsig + 1 + nb;
  SFX(token_rows)(l, T);
  /* the split expert (if any): its dy gathered by its row blocks first,
   * then its first-phase items before the other routed experts, whole */
  const int es = SFX(split_expert)(l, T), ns = es < 0 ? 0 : l->load[es];
  const int os = es < 0 ? 0 : l->off[es], direct = es >= 0 && SFX(dy_direct)(l, es, T);
  const REAL *dgs = direct ? dy : l->dgN + (size_t)os * D;
  const int ngs = es < 0 || direct ? 0 : moei_par_nblocks(ns);
#pragma omp parallel for num_threads(nt) schedule(static) if (ngs > 1)
  for (int b = 0; b < ngs; b++) {
    int r0, r1;
    moei_par_block(ns, ngs, b, &r0, &r1);
    SFX(gather_dy_range)(l, es, dy, l->dgN + (size_t)os * D, r0, r1);
  }
  const int ns0 = es < 0 ? 0 : SFX(moei_expert_bwd_nitems)(&c->expert, D, ns, dx != NULL, 0);
  const int ns1 = es < 0 ? 0 : SFX(moei_expert_bwd_nitems)(&c->expert, D, ns, dx != NULL, 1);
  const int nroute = SFX(dense)(l) ? 0 : ns0 + E - (es >= 0);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int it = 0; it < first_routed + nroute; it++) {
    if (it >= nsh && it < first_routed) {
      const int j = it - nsh;
      if (j < nsig)
        l->domega[j] = SFX(shared_domega)(l, j, dy, TD);
      else if (j == nsig)
        SFX(router_dw)(l, T);
      else
        SFX(par_gemm_block)(j - nsig - 1, nb, CblasNoTrans, CblasNoTrans, T, D, E, 1, l->dlogits, E,
                            l->Wr, D, 0, dx, D);
      continue;
    }
    if (it < nsh) {
      const REAL a = SFX(shared_factor)(l, it);
      const REAL *d = dy;
      if (a != 1) {
        REAL *ds = l->sh_dsh + (size_t)it * Tm * D;
        for (size_t j = 0; j < TD; j++)
          ds[j] = a * dy[j];
        d = ds;
      }
      SFX(moei_expert_bwd)(&c->expert, D, l->shared + (size_t)it * l->pe, T, l->x,
                           l->sh_cache + (size_t)it * sh_cache_n, d, gshared + (size_t)it * l->pe,
                           dx ? l->sh_dxs + (size_t)it * Tm * D : NULL, 0,
                           l->sh_work + (size_t)it * Tm * F);
      continue;
    }
    const int r = it - first_routed;
    if (r < ns0) {
      SFX(moei_expert_bwd_item)(&c->expert, D, l->routed + (size_t)es * l->pe, ns,
                                SFX(grouped_x)(l, es, T), l->cg + (size_t)os * cw, dgs,
                                groute + (size_t)es * l->pe, dx ? l->dxgN + (size_t)os * D : NULL,
                                0, l->workN + (size_t)os * F, 0, r);
      continue;
    }
    const int e = l->ord[r - ns0 + (es >= 0)], n = l->load[e], o = l->off[e];
    if (!n)
      continue;
    const REAL *dg = SFX(gather_dy)(l, e, T, dy, l->dgN + (size_t)o * D);
    SFX(moei_expert_bwd)(&c->expert, D, l->routed + (size_t)e * l->pe, n, SFX(grouped_x)(l, e, T),
                         l->cg + (size_t)o * cw, dg, groute + (size_t)e * l->pe,
                         dx ? l->dxgN + (size_t)o * D : NULL, 0, l->workN + (size_t)o * F);
  }
  /* second phase: the split expert's dW1 row blocks, db1 */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (ns1 > 1)
  for (int it = 0; it < ns1; it++)
    SFX(moei_expert_bwd_item)(&c->expert, D, l->routed + (size_t)es * l->pe, ns,
                              SFX(grouped_x)(l, es, T), l->cg + (size_t)os * cw, dgs,
                              groute + (size_t)es * l->pe, dx ? l->dxgN + (size_t)os * D : NULL, 0,
                              l->workN + (size_t)os * F, 1, it);
  if (SFX(dense)(l))
    SFX(moei_expert_bwd_blocked)(&c->expert, D, l->routed, T, SFX(grouped_x)(l, 0, T), l->cg,
                                 SFX(gather_dy)(l, 0, T, dy, l->dgN), groute, dx ? l->dxgN : NULL,
                                 0, l->workN, nt);
  if (nsig)
    SFX(sigma_grad)(l);
  if (!dx)
    return;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < T; t++) {
    REAL *restrict dxt = dx + (size_t)t * D;
    for (int i = 0; i < S; i++) {
      const REAL *restrict g = l->sh_dxs + ((size_t)i * Tm + t) * D;
      for (int d = 0; d < D; d++)
        dxt[d] += g[d];
    }
    for (int k = 0; k < K; k++) {
      const REAL *restrict g = l->dxgN + (size_t)l->tok_rows[(size_t)t * K + k] * D;
      for (int d = 0; d < D; d++)
        dxt[d] += g[d];
    }
  }
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
  int rc;
  if (l->nt > 1 && T > 0) {
    rc = SFX(route_threads)(l, T, x);
    if (rc)
      return rc;
    l->aux = 0;
  } else {
    const size_t bad_x = R_FIRST_NONFINITE(x, TD);
    if (bad_x < TD)
      return SFX(x_error)(x, bad_x, D);
    l->aux = 0;
    if (T == 0) {
      memset(l->load, 0, (size_t)E * sizeof *l->load);
      l->T = 0;
      return MOE_OK;
    }
    memcpy(l->x, x, TD * sizeof *x);

    /* router: logits (T, E) = x (T, D) · W_rᵀ */
    SFX(par_gemm)(1, CblasNoTrans, CblasTrans, T, E, D, 1, l->x, D, l->Wr, D, 0, l->logits, E);
    rc = SFX(moe_gate_forward)(&c->gate, T, E, K, l->logits, c->gate.use_bias ? l->bias : NULL,
                               l->scores, l->idx, l->w);
    if (rc)
      return rc;
  }

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

  if (l->nt == 1 && !SFX(y_written_once)(l, T)) /* on more, layer_forward_threads */
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
  size_t bad = TD; /* y's first non-finite element */
  if (l->nt > 1)
    bad = SFX(layer_forward_threads)(l, T, y);
  else
    SFX(layer_forward_serial)(l, T, y);

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
  /* router z-loss L_z = zcoef·(1/T)·Σ_t lse_t², lse kept for the backward */
  if (c->zloss_coef > 0) {
    double acc = 0;
    for (int t = 0; t < T; t++) {
      const REAL *lt = l->logits + (size_t)t * E;
      double m = lt[0], z = 0;
      for (int e = 1; e < E; e++)
        m = lt[e] > m ? lt[e] : m;
      for (int e = 0; e < E; e++)
        z += exp((double)lt[e] - m);
      l->lse[t] = m + log(z);
      acc += l->lse[t] * l->lse[t];
    }
    l->aux += c->zloss_coef * acc / T;
  }
  /* A non-finite output with finite x means non-finite parameters (expert
   * weights, shared logits) or overflow: refuse it here rather than let it
   * reach a loss and an optimizer. l->T stays -1, so backward refuses too. */
  if (l->nt == 1)
    bad = R_FIRST_NONFINITE(y, TD);
  if (bad < TD)
    return moe_error(MOE_EDOM, "layer forward: y[%zu][%zu] is %g (x is finite: a non-finite "
                     "parameter or an overflow)", bad / (size_t)D, bad % (size_t)D, (double)y[bad]);
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
  size_t bad = R_FIRST_NONFINITE(dy, TD); /* before any gradient is touched */
  if (bad < TD)
    return moe_error(MOE_EDOM, "layer backward: dy[%zu][%zu] is %g", bad / (size_t)D,
                     bad % (size_t)D, (double)dy[bad]);
  const REAL r = SFX(routed_factor)(c);
  const size_t cw = moe_expert_cache_count(&c->expert, 1);
  REAL *groute = l->grads + (l->routed - l->params);
  REAL *gshared = l->grads + (l->shared - l->params);

  /* dw_tk = r·⟨dy_t, routed(x_t)⟩, for the gate (the routed experts' own
   * backward runs last, fused per expert). Each dot product is a chain of
   * D dependent additions in d order; four rows' chains side by side
   * overlap (each row keeps its order, so its bits). */
  const int nt = l->nt, nrow = l->off[E], ng = (nrow + 3) / 4;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && nrow >= 256)
  for (int g = 0; g < ng; g++) {
    const int row0 = 4 * g, n = nrow - row0 < 4 ? nrow - row0 : 4;
    const REAL *dyt[4], *o[4];
    REAL dot[4];
    for (int k = 0; k < 4; k++) {
      const int row = row0 + (k < n ? k : 0); /* lanes past n redo row0, dropped */
      dyt[k] = dy + (size_t)(l->slot_of[row] / K) * D;
      o[k] = l->og + (size_t)row * D;
      dot[k] = 0;
    }
    for (int d = 0; d < D; d++)
      MOE_LAYER_LANES
      for (int k = 0; k < 4; k++)
        dot[k] += dyt[k][d] * o[k][d];
    for (int k = 0; k < n; k++)
      l->dw[l->slot_of[row0 + k]] = r * dot[k];
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

  if (c->zloss_coef > 0) {
    /* ∂L_z/∂l_te = zcoef·(2/T)·lse_t·softmax(l_t)_e */
    for (int t = 0; t < T; t++) {
      const REAL *lt = l->logits + (size_t)t * E;
      REAL *dl = l->dlogits + (size_t)t * E;
      const double a = c->zloss_coef * 2.0 / T * l->lse[t];
      for (int e = 0; e < E; e++)
        dl[e] += (REAL)(a * exp((double)lt[e] - l->lse[t]));
    }
  }

  if (nt > 1) {
    SFX(layer_backward_threads)(l, dy, dx);
    return MOE_OK;
  }
  /* router: dW_r (E, D) += dlogitsᵀ x;  dx = dlogits W_r */
  SFX(router_dw)(l, T);
  if (dx)
    SFX(par_gemm)(nt, CblasNoTrans, CblasNoTrans, T, D, E, 1, l->dlogits, E, l->Wr, D, 0, dx, D);

  /* shared experts */
  const size_t sh_cache_n = moe_expert_cache_count(&c->expert, l->max_T);
  if (S > 0 && c->combine == MOE_COMBINE_PAPER) {
    for (int i = 0; i < S; i++)
      l->domega[i] = SFX(shared_domega)(l, i, dy, TD);
    SFX(sigma_grad)(l);
  }
  for (int i = 0; i < S; i++) {
    REAL a = SFX(shared_factor)(l, i);
    const REAL *d = dy;
    if (a != 1) {
      for (size_t j = 0; j < TD; j++)
        l->dsh[j] = a * dy[j];
      d = l->dsh;
    }
    /* dx += this expert's dx: with the product accumulated into dx
     * (β = 1) where that has the bits of the sum (MOE_GEMM_FUSE_K) */
    const int fuse = dx && moei_expert_dx_fusable(&c->expert, D);
    SFX(moei_expert_bwd)(&c->expert, D, l->shared + (size_t)i * l->pe, T, l->x,
                         l->sh_cache + (size_t)i * sh_cache_n, d, gshared + (size_t)i * l->pe,
                         fuse ? dx : dx ? l->dxs : NULL, fuse, l->work);
    if (dx && !fuse)
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
    const REAL *dg = SFX(gather_dy)(l, e, T, dy, l->dg);
    /* all rows in token order (a dense FFN): its dx rows are dx's rows,
     * accumulated into dx by the product as for a shared expert */
    const int fuse = dx && SFX(all_rows)(l, e, T) && moei_expert_dx_fusable(&c->expert, D);
    if (SFX(dense)(l) || SFX(split)(l, e, T))
      SFX(moei_expert_bwd_blocked)(&c->expert, D, l->routed + (size_t)e * l->pe, n,
                                   SFX(grouped_x)(l, e, T), l->cg + (size_t)o * cw, dg,
                                   groute + (size_t)e * l->pe, fuse ? dx : dx ? l->dxg : NULL, fuse,
                                   l->work, 1);
    else
      SFX(moei_expert_bwd)(&c->expert, D, l->routed + (size_t)e * l->pe, n,
                           SFX(grouped_x)(l, e, T), l->cg + (size_t)o * cw, dg,
                           groute + (size_t)e * l->pe, fuse ? dx : dx ? l->dxg : NULL, fuse,
                           l->work);
    if (dx && !fuse)
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
const int *SFX(moe_layer_expert_counts)(const SFX(moe_layer) *l) { return l ? l->load : NULL; }
double SFX(moe_layer_aux_loss)(const SFX(moe_layer) *l) { return l ? l->aux : NAN; }

const REAL *SFX(moe_layer_omega)(const SFX(moe_layer) *l)
{
  return l && l->cfg.S > 0 && l->cfg.combine == MOE_COMBINE_PAPER ? l->omega : NULL;
}

int SFX(moe_layer_upcycle)(SFX(moe_layer) *dst, const SFX(moe_layer) *src)
{
  MOE_CHECK_ARG(dst && src, "layer upcycle: NULL layer");
  const moe_layer_config *d = &dst->cfg, *s = &src->cfg;
  const moe_expert_config *de = &d->expert, *se = &s->expert;
  MOE_CHECK_ARG(s->E == 1 && s->S == 0, "layer upcycle: the source has %d routed and %d shared experts (need one MLP: E=1, S=0)",
                s->E, s->S);
  MOE_CHECK_ARG(d->D == s->D, "layer upcycle: D=%d differs from the source's D=%d", d->D, s->D);
  MOE_CHECK_ARG(de->kind == se->kind && de->act == se->act && !de->bias == !se->bias,
                "layer upcycle: the experts' kind, activation or bias differ from the source's");
  const REAL *mlp = src->routed;
  const int D = d->D;
  if (de->kind != MOE_EXPERT_FFN || de->F == se->F) {
    for (int i = 0; i < d->S + d->E; i++) /* shared 0..S-1, then routed: contiguous */
      memcpy(dst->shared + (size_t)i * dst->pe, mlp, src->pe * sizeof *mlp);
    return MOE_OK;
  }
  MOE_CHECK_ARG(d->E == 1 && d->S == 0 && de->F % se->F == 0,
                "layer upcycle: expert width F=%d differs from the source's F=%d (only one expert of a multiple "
                "of the source's width can be widened)", de->F, se->F);
  /* one expert m times as wide: each hidden unit repeated m times, the
   * second matrix's columns divided by m, so y = Σ_j (W2/m) a = W2 a */
  const int m = de->F / se->F, Fs = se->F, Fd = de->F;
  moe_expert_view vs, vd;
  moe_expert_view_get(se, D, &vs);
  moe_expert_view_get(de, D, &vd);
  REAL *o = dst->routed;
  const REAL inv = (REAL)(1.0 / m);
  for (int r = 0; r < m; r++) {
    memcpy(o + vd.W1 + (size_t)r * Fs * D, mlp + vs.W1, (size_t)Fs * D * sizeof *mlp);
    if (vd.b1 >= 0)
      memcpy(o + vd.b1 + (size_t)r * Fs, mlp + vs.b1, (size_t)Fs * sizeof *mlp);
  }
  for (int i = 0; i < D; i++)
    for (int j = 0; j < Fd; j++)
      o[vd.W2 + (size_t)i * Fd + j] = mlp[vs.W2 + (size_t)i * Fs + j % Fs] * inv;
  if (vd.b2 >= 0)
    memcpy(o + vd.b2, mlp + vs.b2, (size_t)D * sizeof *mlp);
  return MOE_OK;
}
