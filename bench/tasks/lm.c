/* SPDX-License-Identifier: GPL-3.0-or-later */
/* lm.c — the `lm` task: a small transformer language model whose FFNs are
 * MoE layers (moe/lm.h), trained on token files, the paper's Table 2 and
 * router analysis (§4.1–4.3, §5) at a scale that trains in minutes.
 *
 * Data: a directory with train.tok, valid.tok, test.tok (moe-tokfile(5))
 * and vocab.bpe, as `moebench data lm-corpus` writes it (SOTU + Brown). A
 * relative `data` is looked up under $MOE_DATA_DIR (else ./data).
 *
 * Variants (moe_layer_config_variant, equal total and equal active
 * experts): smoe = N experts top-K softmax; smoe_sg = the same with
 * normalized sigmoid; ds_v2 / ds_v3 = N−s routed top-(K−s) + s shared
 * (softmax / normalized sigmoid); ds_v3_bias = ds_v3 with DeepSeek-V3's
 * auxiliary-loss-free selection bias (bias_gamma per step); dense = one
 * FFN of the active width K·F.
 *
 * Training: B random windows of T tokens per step (moe/batch.h) drawn
 * from a stream seeded by data_seed and the replication, so every variant
 * of one replication sees the same batches (paired comparisons). The
 * parameters are initialised by moe_lm_init_params_keyed from the matrix
 * seed and the replication only (never from evaluation settings or the
 * variant): within a replication every variant starts from the same
 * embeddings, attention and norms, and the experts the variants have in
 * common start equal (common random numbers). AdamW, warmup-cosine to
 * min_lr·lr, global-norm clipping, aux (Switch balance loss) coefficient.
 * A run whose training loss is not finite or exceeds 2·ln V (twice a
 * uniform guess), or whose validation loss is not finite, stops there
 * and is recorded as diverged (never ok), with the step and the cause.
 *
 * Checkpoints every eval_every steps (and at the end): perplexity and bits
 * per byte on eval_tokens tokens of the validation split (windows of T,
 * evenly spaced over the split), and the routing of every evaluated token. bits per byte
 * = Σ CE (nats) / Σ bytes of the predicted tokens / ln 2: independent of the
 * tokenizer. Router analysis (paper §5, the authors' code): per layer, each
 * of the R = min(router_types, distinct types evaluated) most frequent
 * input token types gets the K experts it was routed to most often (ties:
 * lower expert) at each checkpoint; saturation = overlap with the final
 * checkpoint's set, change rate = share of the set that is new since the
 * previous checkpoint, Jain's index over experts of the tokens (and of the
 * routing weight) those types sent to them. Metric families NAME@X carry
 * X = the step (curves) or the layer (per-layer values); the report plots
 * them with x: "@".
 *
 * At the end: validation and test (final_eval_tokens of each, evenly
 * spaced windows; 0 = the whole split) perplexity and bits per byte, tokens/s of training
 * (per wall second and per CPU second of the process: cells run one
 * thread each, and on a loaded machine only the CPU time is stable),
 * training FLOPs (3 × the forward count of moe_lm_flops_per_token) and
 * each component's share of FLOPs and parameters (moe_lm_flops_parts,
 * moe_lm_param_parts), the CPU seconds spent evaluating and their share of
 * the cell, peak RSS, and the SHA-256 fingerprint of the data files read
 * (notes data_files, data_sha256). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "moe/batch.h"
#include "moe/bpe.h"
#include "moe/error.h"
#include "moe/lm.h"
#include "moe/metrics.h"
#include "moe/rng.h"
#include "moe/tokfile.h"
#include "task.h"

static const char *const combines[] = {"additive", "paper", NULL};

static const mb_param params[] = {
    {"variant", MB_STR, "smoe", 0, -1, mb_variant_names,
     "routing variant (equal total and active experts)"},
    {"data", MB_STR, "lm", 0, -1, NULL,
     "directory with train.tok valid.tok test.tok vocab.bpe (relative: under $MOE_DATA_DIR, else "
     "./data)"},
    {"vocab", MB_INT, "0", 0, 1e7, NULL,
     "the vocabulary size the data must have (0: any): a check that `data` is the corpus meant"},
    {"D", MB_INT, "64", 8, 4096, NULL, "model width"},
    {"L", MB_INT, "2", 1, 64, NULL, "transformer blocks"},
    {"H", MB_INT, "4", 1, 64, NULL, "attention heads (D % H == 0)"},
    {"T", MB_INT, "64", 2, 8192, NULL, "context: tokens per sequence"},
    {"N", MB_INT, "8", 1, 1024, NULL,
     "experts in all (SMoE: N routed; DeepSeek: N-s routed + s shared)"},
    {"K", MB_INT, "2", 1, 1024, NULL, "active experts per token (DeepSeek: K-s routed + s shared)"},
    {"s", MB_INT, "1", 0, 1024, NULL, "shared experts of the DeepSeek variants (paper: 2)"},
    {"F", MB_INT, "32", 1, 65536, NULL, "expert hidden width"},
    {"combine", MB_STR, "additive", 0, -1, combines,
     "shared/routed combination (additive: the paper's LM code)"},
    {"steps", MB_INT, "200", 1, 1e8, NULL, "optimizer steps"},
    {"batch", MB_INT, "8", 1, 4096, NULL, "sequences per step"},
    {"lr", MB_REAL, "0.003", 0, 10, NULL, "peak learning rate (AdamW)"},
    {"min_lr", MB_REAL, "0.1", 0, 1, NULL,
     "final learning rate of the cosine, as a fraction of lr"},
    {"weight_decay", MB_REAL, "0.01", 0, 10, NULL, "AdamW decoupled weight decay (paper: 0.01)"},
    {"warmup", MB_INT, "20", 0, 1e8, NULL, "linear warmup steps"},
    {"clip", MB_REAL, "0.25", 0, 1e6, NULL,
     "global gradient-norm clip (0: none; paper 0.1 / 0.25)"},
    {"aux", MB_REAL, "0.01", 0, 10, NULL, "balance-loss coefficient (paper: 0.01)"},
    {"bias_gamma", MB_REAL, "0.001", 0, 1, NULL,
     "ds_v3_bias: selection-bias step per training step"},
    {"eval_every", MB_INT, "50", 1, 1e8, NULL,
     "steps between checkpoints (steps must be a multiple)"},
    {"eval_tokens", MB_INT, "8192", 0, 1e10, NULL,
     "validation tokens per checkpoint, evenly spaced windows (0: all)"},
    {"final_eval_tokens", MB_INT, "0", 0, 1e10, NULL,
     "validation and test tokens at the end, evenly spaced (0: all)"},
    {"router_types", MB_INT, "6000", 1, 1e7, NULL,
     "most frequent validation types in the router analysis"},
    {"target_ppl", MB_REAL, "0", 0, 1e12, NULL,
     "report the first checkpoint step with valid ppl <= this (0: off)"},
    {"data_seed", MB_INT, "2505", 0, 2147483647, NULL,
     "seed of the batch order (with rep): shared by the variants"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {
    "valid_ppl", "valid_bpb", "valid_ce", "test_ppl", "test_bpb", "train_loss", "aux_loss",
    "tokens_per_s", "train_seconds", "tokens_per_cpu_s", "train_cpu_seconds", "train_flops",
    "flops_per_token", "peak_rss_mb", "params", "active_params", "gain_per_tflop",
    "gain_per_second", "steps_to_target", "router_types", "saturation_first", "change_rate",
    "jfi_tokens", "jfi_weight", "test_ce", "valid_tokens", "test_tokens", "train_tokens",
    "eval_cpu_seconds", "eval_cpu_share", "flops_share_experts", "flops_share_attention",
    "flops_share_router", "flops_share_embed_head", "params_share_experts",
    "params_share_attention", "params_share_router", "params_share_embed_head",
    "params_share_norms",
    /* families: @step */
    "valid_ppl@", "valid_bpb@", "saturation@", "change_rate@", "jfi_tokens@", "jfi_weight@",
    /* families: @layer */
    "saturation_first_layer@", "change_rate_layer@", "jfi_tokens_layer@", "jfi_weight_layer@",
    NULL};

/* The cell, parsed once (lm_parse) into the types the library takes. */
typedef struct {
  moe_variant variant;
  moe_combine combine;
  const char *data, *save;
  int D, L, H, T, N, K, S, F, B;
  long vocab, steps, warmup, every, eval_tokens, final_eval_tokens, router_types, data_seed, rep;
  double lr, min_lr, weight_decay, clip, aux, bias_gamma, target_ppl;
  uint64_t matrix_seed;
} lm_opts;

static int lm_parse(const mb_cell *c, lm_opts *o, const char **bad, char *err, size_t n)
{
  memset(o, 0, sizeof *o);
  *bad = NULL;
  if (moe_variant_parse(mb_cell_str(c, "variant"), &o->variant)) {
    *bad = "variant";
    snprintf(err, n, "%s", moe_last_error());
    return 1;
  }
  if (moe_combine_parse(mb_cell_str(c, "combine"), &o->combine)) {
    *bad = "combine";
    snprintf(err, n, "%s", moe_last_error());
    return 1;
  }
  o->data = mb_cell_str(c, "data");
  /* not a cell parameter (a cell's id hashes every parameter, so a new
   * one would rename every lm cell already run): `moebench run
   * --save-models DIR` passes it in the environment */
  o->save = getenv("MOEBENCH_SAVE_MODELS");
  if (!o->save)
    o->save = "";
  o->D = (int)mb_cell_int(c, "D");
  o->L = (int)mb_cell_int(c, "L");
  o->H = (int)mb_cell_int(c, "H");
  o->T = (int)mb_cell_int(c, "T");
  o->N = (int)mb_cell_int(c, "N");
  o->K = (int)mb_cell_int(c, "K");
  o->S = (int)mb_cell_int(c, "s");
  o->F = (int)mb_cell_int(c, "F");
  o->B = (int)mb_cell_int(c, "batch");
  o->vocab = mb_cell_int(c, "vocab");
  o->steps = mb_cell_int(c, "steps");
  o->warmup = mb_cell_int(c, "warmup");
  o->every = mb_cell_int(c, "eval_every");
  o->eval_tokens = mb_cell_int(c, "eval_tokens");
  o->final_eval_tokens = mb_cell_int(c, "final_eval_tokens");
  o->router_types = mb_cell_int(c, "router_types");
  o->data_seed = mb_cell_int(c, "data_seed");
  o->lr = mb_cell_real(c, "lr");
  o->min_lr = mb_cell_real(c, "min_lr");
  o->weight_decay = mb_cell_real(c, "weight_decay");
  o->clip = mb_cell_real(c, "clip");
  o->aux = mb_cell_real(c, "aux");
  o->bias_gamma = mb_cell_real(c, "bias_gamma");
  o->target_ppl = mb_cell_real(c, "target_ppl");
  o->rep = mb_cell_rep(c);
  o->matrix_seed = mb_cell_matrix_seed(c);
  if (o->D % o->H) {
    *bad = "H";
    snprintf(err, n, "H=%d must divide D=%d", o->H, o->D);
    return 1;
  }
  if (o->K > o->N) {
    *bad = "K";
    snprintf(err, n, "K=%d must not exceed N=%d", o->K, o->N);
    return 1;
  }
  if (moe_variant_has_shared(o->variant) && o->S >= o->K) {
    *bad = "s";
    snprintf(err, n,
             "s=%d shared experts must be fewer than K=%d (the DeepSeek variants route K-s)", o->S,
             o->K);
    return 1;
  }
  if (o->steps % o->every) {
    *bad = "eval_every";
    snprintf(err, n, "steps=%ld must be a multiple of eval_every=%ld", o->steps, o->every);
    return 1;
  }
  if (o->warmup > o->steps) {
    *bad = "warmup";
    snprintf(err, n, "warmup=%ld must not exceed steps=%ld", o->warmup, o->steps);
    return 1;
  }
  return 0;
}

static int check(const mb_cell *c, const char **bad, char *err, size_t n)
{
  lm_opts o;
  return lm_parse(c, &o, bad, err, n);
}

static double now_s(clockid_t clk)
{
  struct timespec t;
  clock_gettime(clk, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The data directory: `data` itself when absolute, else under
 * $MOE_DATA_DIR (else ./data). */
static void data_dir(const char *d, char *out, size_t n)
{
  const char *root = getenv("MOE_DATA_DIR");
  if (d[0] == '/')
    snprintf(out, n, "%s", d);
  else
    snprintf(out, n, "%s/%s", root && *root ? root : "data", d);
}

/* ---- router records ---- */

typedef struct {
  int L, E, K, R;      /* layers, routed experts, routed K, types analysed */
  int *rank;           /* (V) type id -> rank among the R, or -1 */
  double *count;       /* (L, R, E) routing counts of the current pass */
  double *load, *wsum; /* (L, E) tokens and routing weight per expert */
  int *sets;           /* (ncp, L, R, K) each type's top-K experts per checkpoint */
} router_rec;

typedef struct {
  double ce, bytes; /* Σ CE (nats) and Σ bytes of the predicted tokens */
  size_t n;         /* predicted tokens */
} eval_sum;

typedef struct {
  moe_lm *m;
  const moe_token *tokens;
  size_t ntok;
  int T, B;
  moe_token *x, *y;       /* (B, T) */
  const size_t *tokbytes; /* (V) bytes of each token */
  FILE *dump;             /* the routing dump (mb_dump_open), or NULL */
} evaluator;

/* CE and bytes over `windows` of the split's evaluation windows, evenly
 * spaced (window j·W_all/windows, j = 0..windows−1: all of them when
 * windows = W_all), so a subset samples every part of the split; router
 * counts into rr (NULL: none), and with rr every token's routing into
 * ev->dump when it is open: per batch, per layer, one line per token
 * "LAYER TOKEN e_1 .. e_K w_1 .. w_K" (moebench(1), ROUTING DUMP). */
static int eval_windows(evaluator *ev, size_t windows, router_rec *rr, eval_sum *out)
{
  const size_t wall = moe_batch_eval_windows(ev->ntok, (size_t)ev->T);
  memset(out, 0, sizeof *out);
  if (rr) {
    memset(rr->count, 0, sizeof(double) * (size_t)rr->L * rr->R * rr->E);
    memset(rr->load, 0, sizeof(double) * (size_t)rr->L * rr->E);
    memset(rr->wsum, 0, sizeof(double) * (size_t)rr->L * rr->E);
  }
  for (size_t w = 0; w < windows;) {
    size_t got = windows - w < (size_t)ev->B ? windows - w : (size_t)ev->B, one;
    int rc;
    for (size_t b = 0; b < got; b++)
      if ((rc = moe_batch_eval(ev->tokens, ev->ntok, (size_t)ev->T, (w + b) * wall / windows, 1,
                               ev->x + b * (size_t)ev->T, ev->y + b * (size_t)ev->T, &one)))
        return rc;
    double loss;
    if ((rc = moe_lm_forward_eval(ev->m, (int)got, ev->T, ev->x, ev->y, &loss)))
      return rc;
    size_t nt = got * (size_t)ev->T;
    out->ce += moe_lm_ce_loss(ev->m) * (double)nt;
    out->n += nt;
    for (size_t i = 0; i < nt; i++)
      out->bytes += (double)ev->tokbytes[ev->y[i]];
    for (int l = 0; rr && l < rr->L; l++) {
      const moe_layer *f = moe_lm_ffn(ev->m, l);
      const int *idx = moe_layer_chosen(f);
      const float *wt = moe_layer_weights(f);
      for (size_t i = 0; ev->dump && i < nt; i++) {
        fprintf(ev->dump, "%d %u", l, (unsigned)ev->x[i]);
        for (int k = 0; k < rr->K; k++)
          fprintf(ev->dump, " %d", idx[i * rr->K + k]);
        for (int k = 0; k < rr->K; k++)
          fprintf(ev->dump, " %.9g", (double)wt[i * rr->K + k]);
        fputc('\n', ev->dump);
      }
      for (size_t i = 0; i < nt; i++) {
        int r = rr->rank[ev->x[i]];
        if (r < 0)
          continue;
        for (int k = 0; k < rr->K; k++) {
          int e = idx[i * rr->K + k];
          rr->count[((size_t)l * rr->R + r) * rr->E + e] += 1;
          rr->load[(size_t)l * rr->E + e] += 1;
          rr->wsum[(size_t)l * rr->E + e] += wt[i * rr->K + k];
        }
      }
    }
    w += got;
  }
  return MOE_OK;
}

/* Each type's K most used experts (ties to the lower index) into sets. */
static void top_sets(const router_rec *rr, int *sets /* (L, R, K) */)
{
  for (int l = 0; l < rr->L; l++)
    for (int r = 0; r < rr->R; r++) {
      const double *c = rr->count + ((size_t)l * rr->R + r) * rr->E;
      int *s = sets + ((size_t)l * rr->R + r) * rr->K;
      for (int k = 0; k < rr->K; k++) {
        int best = -1;
        for (int e = 0; e < rr->E; e++) {
          int taken = 0;
          for (int j = 0; j < k; j++)
            taken |= s[j] == e;
          if (!taken && (best < 0 || c[e] > c[best]))
            best = e;
        }
        s[k] = best;
      }
    }
}

typedef struct {
  moe_token id;
  uint64_t n;
} tcount;
static int by_count(const void *a, const void *b)
{
  const tcount *x = a, *y = b;
  if (x->n != y->n)
    return x->n < y->n ? 1 : -1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static void metricf(mb_result *r, const char *fam, double at, double v)
{
  char name[96];
  snprintf(name, sizeof name, "%s@%.17g", fam, at);
  mb_result_metric(r, name, v);
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    goto out;                                                                                      \
  } while (0)

static int run(const mb_cell *c, uint64_t seed, mb_result *res, char *err, size_t errlen)
{
  /* training draws from the matrix seed and the replication (see the
   * top); the cell's seed only names a saved checkpoint */
  int rc = 1;
  const char *bad;
  lm_opts o;
  if (lm_parse(c, &o, &bad, err, errlen))
    return 1;
  moe_tokfile *tr = NULL, *va = NULL, *te = NULL;
  moe_bpe *bpe = NULL;
  moe_lm *m = NULL;
  moe_optim *opt = NULL;
  gsl_rng *r_batch = NULL;
  moe_token *x = NULL, *y = NULL;
  size_t *tokbytes = NULL;
  router_rec rr = {0};
  tcount *tc = NULL;
  double *jt = NULL, *jw = NULL;
  FILE *dump = NULL;
  const int D = o.D, L = o.L, H = o.H, T = o.T, B = o.B;
  const long steps = o.steps, every = o.every;
  const int ncp = (int)(steps / every);
  char dir[4096], dump_path[4400];
  const double c_start = now_s(CLOCK_PROCESS_CPUTIME_ID);
  double eval_cpu = 0;

  /* data, and its fingerprint */
  data_dir(o.data, dir, sizeof dir);
  const char *files[4] = {"train.tok", "valid.tok", "test.tok", "vocab.bpe"};
  char fpaths[4][4400];
  const char *fp[4];
  for (int i = 0; i < 4; i++) {
    snprintf(fpaths[i], sizeof fpaths[i], "%s/%s", dir, files[i]);
    fp[i] = fpaths[i];
  }
  moe_tokfile **tf[3] = {&tr, &va, &te};
  for (int i = 0; i < 3; i++)
    if (moe_tokfile_read(fp[i], tf[i]))
      FAIL("%s (data directory %s: make it with `make lm-data` or `moebench data lm-corpus "
           "--out-dir %s`)",
           moe_last_error(), dir, dir);
  if (moe_bpe_load(fp[3], &bpe))
    FAIL("%s (data directory %s)", moe_last_error(), dir);
  if (mb_result_fingerprint(res, fp, 4, err, errlen))
    goto out;
  const uint32_t V = moe_bpe_vocab_size(bpe);
  if (o.vocab && V != (uint32_t)o.vocab)
    FAIL("%s: vocabulary of %u tokens, but the cell asks for vocab = %ld (another corpus in %s?)",
         fp[3], V, o.vocab, dir);
  for (int i = 0; i < 3; i++)
    if ((*tf[i])->vocab_size != V)
      FAIL("%s: vocabulary %u, but the vocabulary file has %u tokens", fp[i], (*tf[i])->vocab_size,
           V);
  for (int i = 0; i < 3; i++)
    if ((*tf[i])->count < (uint64_t)T + 1)
      FAIL("%s: %llu tokens, fewer than one window of T+1 = %d", fp[i],
           (unsigned long long)(*tf[i])->count, T + 1);
  if (!(tokbytes = malloc(sizeof *tokbytes * V)))
    FAIL("out of memory (token byte counts)");
  for (moe_token i = 0; i < V; i++)
    moe_bpe_token_bytes(bpe, i, &tokbytes[i]);

  /* model: the training seed is the matrix seed and the replication */
  moe_layer_config ffn;
  if (moe_layer_config_for(
          &ffn, o.variant,
          (moe_variant_sizes){.D = D, .F = o.F, .N = o.N, .K = o.K, .shared = o.S}))
    FAIL("variant: %s", moe_last_error());
  ffn.combine = o.combine;
  const int dense = moe_variant_is_dense(o.variant);
  ffn.balance_coef = dense ? 0 : o.aux;
  moe_lm_config cfg = moe_lm_config_make((int)V, T, D, L, H, &ffn);
  if (moe_lm_check(&cfg))
    FAIL("model: %s", moe_last_error());
  if (!(m = moe_lm_alloc(&cfg, B)))
    FAIL("model: %s", moe_last_error());
  const uint64_t init_seed =
      moe_seed_derive_u64(moe_seed_derive(o.matrix_seed, "lm-init"), (uint64_t)o.rep);
  char label[128];
  snprintf(label, sizeof label, "lm-batches-rep-%ld", o.rep);
  if (!(r_batch = moe_rng_alloc(moe_seed_derive((uint64_t)o.data_seed, label))))
    FAIL("rng: %s", moe_last_error());
  if (moe_lm_init_params_keyed(m, init_seed))
    FAIL("init: %s", moe_last_error());
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  oc.weight_decay = o.weight_decay;
  if (!(opt = moe_optim_alloc(&oc, moe_lm_param_count(m))))
    FAIL("optimizer: %s", moe_last_error());
  if (moe_lm_set_threads(m, mb_task_threads()) || moe_optim_set_threads(opt, mb_task_threads()))
    FAIL("threads: %s", moe_last_error());
  moe_lr_schedule sched = {MOE_LR_WARMUP_COSINE, o.lr, o.warmup, steps, o.min_lr};
  if (moe_lr_check(&sched))
    FAIL("schedule: %s", moe_last_error());
  if (!(x = malloc(sizeof *x * (size_t)B * T)) || !(y = malloc(sizeof *y * (size_t)B * T)))
    FAIL("out of memory (batch of %d x %d tokens)", B, T);

  /* the evaluation windows and the router's types */
  evaluator ev = {m, va->tokens, (size_t)va->count, T, B, x, y, tokbytes, NULL};
  const size_t vwin_all = moe_batch_eval_windows((size_t)va->count, (size_t)T);
  size_t vwin = o.eval_tokens ? (size_t)o.eval_tokens / (size_t)T : vwin_all;
  if (vwin < 1)
    vwin = 1;
  if (vwin > vwin_all)
    vwin = vwin_all;
  rr.L = L;
  rr.E = ffn.E;
  rr.K = ffn.K;
  if (!(tc = calloc(V, sizeof *tc)) || !(rr.rank = malloc(sizeof *rr.rank * V)))
    FAIL("out of memory (token counts)");
  for (moe_token i = 0; i < V; i++) {
    tc[i].id = i;
    rr.rank[i] = -1;
  }
  for (size_t j = 0; j < vwin; j++) /* inputs of the evaluated windows */
    for (size_t i = 0; i < (size_t)T; i++)
      tc[va->tokens[j * vwin_all / vwin * (size_t)T + i]].n++;
  qsort(tc, V, sizeof *tc, by_count);
  int distinct = 0;
  while (distinct < (int)V && tc[distinct].n)
    distinct++;
  rr.R = distinct < o.router_types ? distinct : (int)o.router_types;
  for (int i = 0; i < rr.R; i++)
    rr.rank[tc[i].id] = i;
  router_rec *rp = dense ? NULL : &rr;
  if (rp && (!(rr.count = malloc(sizeof(double) * (size_t)L * rr.R * rr.E)) ||
             !(rr.load = malloc(sizeof(double) * (size_t)L * rr.E)) ||
             !(rr.wsum = malloc(sizeof(double) * (size_t)L * rr.E)) ||
             !(rr.sets = malloc(sizeof(int) * (size_t)ncp * L * rr.R * rr.K))))
    FAIL("out of memory (router records)");
  if (!(jt = calloc((size_t)ncp * L, sizeof *jt)) || !(jw = calloc((size_t)ncp * L, sizeof *jw)))
    FAIL("out of memory (fairness records)");
  /* the routing dump: the evaluated tokens of every checkpoint, every
   * one (the analysis keeps those of the R most frequent types) */
  if (rp) {
    if (!(dump = mb_dump_open("lm", seed, dump_path, sizeof dump_path, err, errlen)) && *err)
      goto out;
    ev.dump = dump;
    if (dump)
      fprintf(dump, "layers %d experts %d k %d router_types %ld tokens %zu\n", L, rr.E, rr.K,
              o.router_types, vwin * (size_t)T);
  }

  /* training */
  const double gamma = moe_variant_uses_bias(o.variant) ? o.bias_gamma : 0,
               bound = 2 * log((double)V);
  double train_time = 0, train_cpu = 0, last_loss = NAN, last_aux = NAN, steps_to_target = NAN;
  int cp = 0, src;
  for (long st = 0; st < steps; st++) {
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), loss, gn;
    if ((src = moe_batch_random(tr->tokens, (size_t)tr->count, (size_t)T, (size_t)B, r_batch, x, y,
                                NULL)))
      FAIL("batch: %s", moe_last_error());
    moe_lm_zero_grad(m);
    if ((src = moe_lm_forward(m, B, T, x, y, &loss)) || (src = moe_lm_backward(m)) ||
        (src = moe_lm_step(m, opt, &sched, o.clip, &gn)) ||
        (gamma > 0 && (src = moe_lm_bias_update(m, gamma)))) {
      snprintf(err, errlen, "step %ld: %s%s", st + 1, src == MOE_EDOM ? "training diverged: " : "",
               moe_last_error());
      rc = src == MOE_EDOM ? MB_RUN_DIVERGED : 1;
      goto out;
    }
    train_time += now_s(CLOCK_MONOTONIC) - t0;
    train_cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    last_loss = moe_lm_ce_loss(m);
    last_aux = moe_lm_aux_loss(m);
    if (!isfinite(last_loss) || last_loss > bound) {
      snprintf(err, errlen, "step %ld: training diverged: cross-entropy %g nats %s 2 ln V = %.4g",
               st + 1, last_loss, isfinite(last_loss) ? "above" : "is not finite; bound", bound);
      rc = MB_RUN_DIVERGED;
      goto out;
    }
    if ((st + 1) % every == 0) {
      eval_sum es;
      double e0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
      if (ev.dump)
        fprintf(ev.dump, "checkpoint %ld\n", st + 1);
      if (eval_windows(&ev, vwin, rp, &es))
        FAIL("eval at step %ld: %s", st + 1, moe_last_error());
      eval_cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - e0;
      double ppl = exp(es.ce / (double)es.n);
      metricf(res, "valid_ppl", (double)(st + 1), ppl);
      metricf(res, "valid_bpb", (double)(st + 1), es.ce / es.bytes / log(2.0));
      if (!isfinite(es.ce)) {
        snprintf(err, errlen, "step %ld: training diverged: validation cross-entropy is not finite",
                 st + 1);
        rc = MB_RUN_DIVERGED;
        goto out;
      }
      if (o.target_ppl > 0 && isnan(steps_to_target) && ppl <= o.target_ppl)
        steps_to_target = (double)(st + 1);
      if (rp) {
        top_sets(&rr, rr.sets + (size_t)cp * L * rr.R * rr.K);
        for (int l = 0; l < L; l++) {
          if (moe_metrics_jain(rr.load + (size_t)l * rr.E, (size_t)rr.E, &jt[cp * L + l]) ||
              moe_metrics_jain(rr.wsum + (size_t)l * rr.E, (size_t)rr.E, &jw[cp * L + l]))
            jt[cp * L + l] = jw[cp * L + l] = NAN;
        }
      }
      cp++;
    }
  }

  /* router metrics over the checkpoints */
  if (rp && rr.R > 0) {
    double sum_cr = 0;
    int n_cr = 0;
    const size_t per = (size_t)L * rr.R * rr.K, lay = (size_t)rr.R * rr.K;
    for (int k = 0; k < ncp; k++) {
      double sat = 0, cr = 0, a = 0, b = 0;
      for (int l = 0; l < L; l++) {
        double v;
        moe_metrics_saturation(rr.sets + k * per + l * lay, rr.sets + (ncp - 1) * per + l * lay,
                               (size_t)rr.R, rr.K, rr.E, &v);
        sat += v / L;
        if (k == 0)
          metricf(res, "saturation_first_layer", l, 100 * v);
        if (k > 0) {
          moe_metrics_change_rate(rr.sets + (k - 1) * per + l * lay, rr.sets + k * per + l * lay,
                                  (size_t)rr.R, rr.K, rr.E, &v);
          cr += v / L;
        }
        a += jt[k * L + l] / L;
        b += jw[k * L + l] / L;
      }
      double at = (double)(k + 1) * (double)every;
      if (k < ncp - 1)
        metricf(res, "saturation", at, 100 * sat);
      if (k == 0)
        mb_result_metric(res, "saturation_first", 100 * sat);
      if (k > 0) {
        metricf(res, "change_rate", at, 100 * cr);
        sum_cr += cr;
        n_cr++;
      }
      metricf(res, "jfi_tokens", at, a);
      metricf(res, "jfi_weight", at, b);
      if (k == ncp - 1) {
        mb_result_metric(res, "jfi_tokens", a);
        mb_result_metric(res, "jfi_weight", b);
      }
    }
    for (int l = 0; l < L && ncp > 1; l++) {
      double s = 0, v;
      for (int k = 1; k < ncp; k++) {
        moe_metrics_change_rate(rr.sets + (k - 1) * per + l * lay, rr.sets + k * per + l * lay,
                                (size_t)rr.R, rr.K, rr.E, &v);
        s += v / (ncp - 1);
      }
      metricf(res, "change_rate_layer", l, 100 * s);
    }
    for (int l = 0; l < L; l++) {
      metricf(res, "jfi_tokens_layer", l, jt[(ncp - 1) * L + l]);
      metricf(res, "jfi_weight_layer", l, jw[(ncp - 1) * L + l]);
    }
    if (n_cr)
      mb_result_metric(res, "change_rate", 100 * sum_cr / n_cr);
    mb_result_metric(res, "router_types", rr.R);
  }

  /* final evaluation on valid and test */
  const long fet = o.final_eval_tokens;
  eval_sum fv, ft;
  size_t wv = moe_batch_eval_windows((size_t)va->count, (size_t)T),
         wt = moe_batch_eval_windows((size_t)te->count, (size_t)T);
  if (fet) {
    if (wv > (size_t)fet / T)
      wv = (size_t)fet / T > 0 ? (size_t)fet / T : 1;
    if (wt > (size_t)fet / T)
      wt = (size_t)fet / T > 0 ? (size_t)fet / T : 1;
  }
  double e0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
  if (eval_windows(&ev, wv, NULL, &fv))
    FAIL("final valid: %s", moe_last_error());
  ev.tokens = te->tokens;
  ev.ntok = (size_t)te->count;
  if (eval_windows(&ev, wt, NULL, &ft))
    FAIL("final test: %s", moe_last_error());
  eval_cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - e0;
  if (!isfinite(fv.ce) || !isfinite(ft.ce)) {
    snprintf(err, errlen, "final evaluation: training diverged: %s cross-entropy is not finite",
             isfinite(fv.ce) ? "test" : "validation");
    rc = MB_RUN_DIVERGED;
    goto out;
  }

  /* FLOPs and parameters by component: the library's one count */
  moe_lm_parts fl, pa;
  if (moe_lm_flops_parts(&cfg, T, &fl) || moe_lm_param_parts(&cfg, &pa))
    FAIL("flops: %s", moe_last_error());
  const double ntrain = (double)steps * B * T, flops = 3 * fl.total * ntrain;
  const size_t np = moe_lm_param_count(m);
  /* active parameters: all but the routed experts not chosen */
  const double active =
      (double)np - (double)L * (ffn.E - ffn.K) * (double)moe_expert_param_count(&ffn.expert, D);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);

  double vce = fv.ce / (double)fv.n;
  mb_result_metric(res, "valid_ppl", exp(vce));
  mb_result_metric(res, "valid_bpb", fv.ce / fv.bytes / log(2.0));
  mb_result_metric(res, "valid_ce", vce);
  mb_result_metric(res, "test_ppl", exp(ft.ce / (double)ft.n));
  mb_result_metric(res, "test_bpb", ft.ce / ft.bytes / log(2.0));
  mb_result_metric(res, "test_ce", ft.ce / (double)ft.n);
  mb_result_metric(res, "valid_tokens", (double)fv.n);
  mb_result_metric(res, "test_tokens", (double)ft.n);
  mb_result_metric(res, "train_loss", last_loss);
  mb_result_metric(res, "aux_loss", last_aux);
  mb_result_metric(res, "train_seconds", train_time);
  mb_result_metric(res, "tokens_per_s", ntrain / train_time);
  mb_result_metric(res, "train_cpu_seconds", train_cpu);
  mb_result_metric(res, "tokens_per_cpu_s", ntrain / train_cpu);
  mb_result_metric(res, "train_tokens", ntrain);
  mb_result_metric(res, "train_flops", flops);
  mb_result_metric(res, "flops_per_token", 3 * fl.total);
  mb_result_metric(res, "flops_share_experts", fl.experts / fl.total);
  mb_result_metric(res, "flops_share_attention", fl.attention / fl.total);
  mb_result_metric(res, "flops_share_router", fl.router / fl.total);
  mb_result_metric(res, "flops_share_embed_head", fl.embed_head / fl.total);
  mb_result_metric(res, "params_share_experts", pa.experts / pa.total);
  mb_result_metric(res, "params_share_attention", pa.attention / pa.total);
  mb_result_metric(res, "params_share_router", pa.router / pa.total);
  mb_result_metric(res, "params_share_embed_head", pa.embed_head / pa.total);
  mb_result_metric(res, "params_share_norms", pa.norms / pa.total);
  mb_result_metric(res, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);
  mb_result_metric(res, "params", (double)np);
  mb_result_metric(res, "active_params", active);
  const double cell_cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c_start;
  mb_result_metric(res, "eval_cpu_seconds", eval_cpu);
  mb_result_metric(res, "eval_cpu_share", eval_cpu / cell_cpu);
  /* quality gained over a uniform guess (ln V nats), per training TFLOP and
   * per CPU second of training (one thread; wall time depends on the load) */
  mb_result_metric(res, "gain_per_tflop", (log((double)V) - vce) / (flops / 1e12));
  mb_result_metric(res, "gain_per_second", (log((double)V) - vce) / train_cpu);
  if (o.target_ppl > 0)
    mb_result_metric(res, "steps_to_target", steps_to_target);
  if (o.save[0]) {
    char ck[4400];
    snprintf(ck, sizeof ck, "%s/lm-%016llx.ckpt", o.save, (unsigned long long)seed);
    if (moe_lm_save(m, ck, steps))
      FAIL("save: %s", moe_last_error());
    mb_result_note(res, "checkpoint", ck);
  }
  rc = 0;
out:
  /* a diverged run keeps the checkpoints it reached */
  if (dump &&
      mb_dump_close(dump, dump_path, rc == 0 || rc == MB_RUN_DIVERGED, res, rc ? NULL : err,
                    rc ? 0 : errlen) &&
      rc == 0)
    rc = 1;
  moe_tokfile_free(tr);
  moe_tokfile_free(va);
  moe_tokfile_free(te);
  moe_bpe_free(bpe);
  moe_lm_free(m);
  moe_optim_free(opt);
  gsl_rng_free(r_batch);
  free(x);
  free(y);
  free(tokbytes);
  free(tc);
  free(jt);
  free(jw);
  free(rr.rank);
  free(rr.count);
  free(rr.load);
  free(rr.wsum);
  free(rr.sets);
  return rc;
}

/* ---- moebench lm-eval: score a saved model on a token file ---- */

static const char lm_eval_usage[] =
    "usage: moebench lm-eval --checkpoint FILE --tokens FILE.tok [--vocab FILE.bpe] [--max-tokens "
    "N]\n"
    "Score a model saved by the lm task (`save: DIR`) or moe_lm_save() on a token\n"
    "file (moe-tokfile(5), the model's vocabulary): the mean cross-entropy and\n"
    "perplexity over its non-overlapping windows of the model's context T (every\n"
    "predicted token once, as the lm task's final evaluation), and with --vocab\n"
    "(the BPE the tokens were made with) bits per byte. --max-tokens N scores the\n"
    "first N/T windows only. Prints `key value` lines.\n"
    "Exit status: 0 scored, 1 a file could not be read or does not fit the model,\n"
    "2 usage error.\n";

int mb_verb_lm_eval(int argc, char **argv)
{
  const char *ck = NULL, *tok = NULL, *voc = NULL;
  long maxtok = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(lm_eval_usage, stdout);
      return 0;
    }
    if (i + 1 >= argc && a[0] == '-') {
      fprintf(stderr, "moebench lm-eval: %s needs a value\n%s", a, lm_eval_usage);
      return 2;
    }
    if (!strcmp(a, "--checkpoint"))
      ck = argv[++i];
    else if (!strcmp(a, "--tokens"))
      tok = argv[++i];
    else if (!strcmp(a, "--vocab"))
      voc = argv[++i];
    else if (!strcmp(a, "--max-tokens")) {
      char *end;
      maxtok = strtol(argv[++i], &end, 10);
      if (*end || maxtok < 1) {
        fprintf(stderr, "moebench lm-eval: bad --max-tokens '%s'\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "moebench lm-eval: unknown argument '%s'\n%s", a, lm_eval_usage);
      return 2;
    }
  }
  if (!ck || !tok) {
    fputs(lm_eval_usage, stderr);
    return 2;
  }
  int rc = 1;
  moe_lm *m = NULL;
  moe_tokfile *tf = NULL;
  moe_bpe *bpe = NULL;
  size_t *tokbytes = NULL;
  moe_token *x = NULL, *y = NULL;
  long step = 0;
  const int B = 16;
  if (moe_lm_load(ck, B, &m, &step)) {
    fprintf(stderr, "moebench lm-eval: %s\n", moe_last_error());
    goto out;
  }
  const moe_lm_config *cfg = moe_lm_get_config(m);
  if (moe_tokfile_read(tok, &tf)) {
    fprintf(stderr, "moebench lm-eval: %s\n", moe_last_error());
    goto out;
  }
  if (tf->vocab_size != (uint32_t)cfg->V) {
    fprintf(stderr, "moebench lm-eval: %s: vocabulary %u, but the model in %s has %d tokens\n", tok,
            tf->vocab_size, ck, cfg->V);
    goto out;
  }
  if (tf->count < (uint64_t)cfg->T + 1) {
    fprintf(stderr, "moebench lm-eval: %s: %llu tokens, fewer than one window of T+1 = %d\n", tok,
            (unsigned long long)tf->count, cfg->T + 1);
    goto out;
  }
  if (!(tokbytes = calloc((size_t)cfg->V, sizeof *tokbytes))) {
    fprintf(stderr, "moebench lm-eval: out of memory\n");
    goto out;
  }
  if (voc) {
    if (moe_bpe_load(voc, &bpe)) {
      fprintf(stderr, "moebench lm-eval: %s\n", moe_last_error());
      goto out;
    }
    if (moe_bpe_vocab_size(bpe) != (uint32_t)cfg->V) {
      fprintf(stderr, "moebench lm-eval: %s: %u tokens, but the model has %d\n", voc,
              moe_bpe_vocab_size(bpe), cfg->V);
      goto out;
    }
    for (int i = 0; i < cfg->V; i++)
      moe_bpe_token_bytes(bpe, (moe_token)i, &tokbytes[i]);
  }
  if (!(x = malloc(sizeof *x * (size_t)B * cfg->T)) ||
      !(y = malloc(sizeof *y * (size_t)B * cfg->T))) {
    fprintf(stderr, "moebench lm-eval: out of memory\n");
    goto out;
  }
  evaluator ev = {m, tf->tokens, (size_t)tf->count, cfg->T, B, x, y, tokbytes, NULL};
  size_t w = moe_batch_eval_windows((size_t)tf->count, (size_t)cfg->T);
  if (maxtok && w > (size_t)maxtok / (size_t)cfg->T)
    w = (size_t)maxtok / (size_t)cfg->T > 0 ? (size_t)maxtok / (size_t)cfg->T : 1;
  eval_sum es;
  if (eval_windows(&ev, w, NULL, &es)) {
    fprintf(stderr, "moebench lm-eval: %s\n", moe_last_error());
    goto out;
  }
  printf("checkpoint %s\nstep %ld\ntokens %zu\nwindows %zu\nmean_ce %.17g\nppl %.17g\n", ck, step,
         es.n, w, es.ce / (double)es.n, exp(es.ce / (double)es.n));
  if (voc)
    printf("bytes %.17g\nbpb %.17g\n", es.bytes, es.ce / es.bytes / log(2.0));
  rc = 0;
out:
  moe_lm_free(m);
  moe_tokfile_free(tf);
  moe_bpe_free(bpe);
  free(tokbytes);
  free(x);
  free(y);
  return rc;
}

const mb_task mb_task_lm = {
    "lm",
    "a transformer LM with MoE FFNs on token files: perplexity, bits per byte, router analysis",
    params,
    metrics,
    check,
    run,
};
