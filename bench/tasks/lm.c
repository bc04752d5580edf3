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
 * of one replication sees the same batches (paired comparisons); the
 * parameters are initialised from the cell's seed. AdamW, warmup-cosine to
 * min_lr·lr, global-norm clipping, aux (Switch balance loss) coefficient.
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
 * training FLOPs (3 × forward, multiply-add = 2: attention projections,
 * causal attention, router, active experts, LM head), peak RSS. */
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

static const char *const variants[] = {"smoe", "smoe_sg", "ds_v2", "ds_v3", "ds_v3_bias", "dense", NULL};
static const char *const combines[] = {"additive", "paper", NULL};

static const mb_param params[] = {
  {"variant", MB_STR, "smoe", 0, -1, variants, "routing variant (equal total and active experts)"},
  {"data", MB_STR, "lm", 0, -1, NULL,
   "directory with train.tok valid.tok test.tok vocab.bpe (relative: under $MOE_DATA_DIR, else ./data)"},
  {"D", MB_INT, "64", 8, 4096, NULL, "model width"},
  {"L", MB_INT, "2", 1, 64, NULL, "transformer blocks"},
  {"H", MB_INT, "4", 1, 64, NULL, "attention heads (D % H == 0)"},
  {"T", MB_INT, "64", 2, 8192, NULL, "context: tokens per sequence"},
  {"N", MB_INT, "8", 1, 1024, NULL, "experts in all (SMoE: N routed; DeepSeek: N-s routed + s shared)"},
  {"K", MB_INT, "2", 1, 1024, NULL, "active experts per token (DeepSeek: K-s routed + s shared)"},
  {"s", MB_INT, "1", 0, 1024, NULL, "shared experts of the DeepSeek variants (paper: 2)"},
  {"F", MB_INT, "32", 1, 65536, NULL, "expert hidden width"},
  {"combine", MB_STR, "additive", 0, -1, combines, "shared/routed combination (additive: the paper's LM code)"},
  {"steps", MB_INT, "200", 1, 1e8, NULL, "optimizer steps"},
  {"batch", MB_INT, "8", 1, 4096, NULL, "sequences per step"},
  {"lr", MB_REAL, "0.003", 0, 10, NULL, "peak learning rate (AdamW)"},
  {"min_lr", MB_REAL, "0.1", 0, 1, NULL, "final learning rate of the cosine, as a fraction of lr"},
  {"weight_decay", MB_REAL, "0.01", 0, 10, NULL, "AdamW decoupled weight decay (paper: 0.01)"},
  {"warmup", MB_INT, "20", 0, 1e8, NULL, "linear warmup steps"},
  {"clip", MB_REAL, "0.25", 0, 1e6, NULL, "global gradient-norm clip (0: none; paper 0.1 / 0.25)"},
  {"aux", MB_REAL, "0.01", 0, 10, NULL, "balance-loss coefficient (paper: 0.01)"},
  {"bias_gamma", MB_REAL, "0.001", 0, 1, NULL, "ds_v3_bias: selection-bias step per training step"},
  {"eval_every", MB_INT, "50", 1, 1e8, NULL, "steps between checkpoints (steps must be a multiple)"},
  {"eval_tokens", MB_INT, "8192", 0, 1e10, NULL, "validation tokens per checkpoint, evenly spaced windows (0: all)"},
  {"final_eval_tokens", MB_INT, "0", 0, 1e10, NULL, "validation and test tokens at the end, evenly spaced (0: all)"},
  {"router_types", MB_INT, "6000", 1, 1e7, NULL, "most frequent validation types in the router analysis"},
  {"target_ppl", MB_REAL, "0", 0, 1e12, NULL, "report the first checkpoint step with valid ppl <= this (0: off)"},
  {"data_seed", MB_INT, "2505", 0, 2147483647, NULL, "seed of the batch order (with rep): shared by the variants"},
  {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {
  "valid_ppl", "valid_bpb", "valid_ce", "test_ppl", "test_bpb", "train_loss", "aux_loss",
  "tokens_per_s", "train_seconds", "tokens_per_cpu_s", "train_cpu_seconds", "train_flops", "flops_per_token", "peak_rss_mb", "params",
  "active_params", "gain_per_tflop", "gain_per_second", "steps_to_target", "router_types",
  "saturation_first", "change_rate", "jfi_tokens", "jfi_weight",
  /* families: @step */
  "valid_ppl@", "valid_bpb@", "saturation@", "change_rate@", "jfi_tokens@", "jfi_weight@",
  /* families: @layer */
  "saturation_first_layer@", "change_rate_layer@", "jfi_tokens_layer@", "jfi_weight_layer@",
  NULL};

static int check(const mb_cell *c, const char **bad, char *err, size_t n)
{
  long D = mb_cell_int(c, "D"), H = mb_cell_int(c, "H"), N = mb_cell_int(c, "N"), K = mb_cell_int(c, "K"),
       s = mb_cell_int(c, "s"), steps = mb_cell_int(c, "steps"), every = mb_cell_int(c, "eval_every");
  const char *v = mb_cell_str(c, "variant");
  int ds = !strncmp(v, "ds_", 3);
  if (D % H) { *bad = "H"; snprintf(err, n, "H=%ld must divide D=%ld", H, D); return 1; }
  if (K > N) { *bad = "K"; snprintf(err, n, "K=%ld must not exceed N=%ld", K, N); return 1; }
  if (ds && s >= K) {
    *bad = "s";
    snprintf(err, n, "s=%ld shared experts must be fewer than K=%ld (the DeepSeek variants route K-s)", s, K);
    return 1;
  }
  if (steps % every) {
    *bad = "eval_every";
    snprintf(err, n, "steps=%ld must be a multiple of eval_every=%ld", steps, every);
    return 1;
  }
  if (mb_cell_int(c, "warmup") > steps) {
    *bad = "warmup";
    snprintf(err, n, "warmup=%ld must not exceed steps=%ld", mb_cell_int(c, "warmup"), steps);
    return 1;
  }
  return 0;
}

static double now_s(clockid_t clk)
{
  struct timespec t;
  clock_gettime(clk, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Where the data directory is. */
static void data_path(const mb_cell *c, const char *file, char *out, size_t n)
{
  const char *d = mb_cell_str(c, "data"), *root = getenv("MOE_DATA_DIR");
  if (d[0] == '/') snprintf(out, n, "%s/%s", d, file);
  else snprintf(out, n, "%s/%s/%s", root && *root ? root : "data", d, file);
}

/* ---- router records ---- */

typedef struct {
  int L, E, K, R;          /* layers, routed experts, routed K, types analysed */
  int *rank;               /* (V) type id -> rank among the R, or -1 */
  double *count;           /* (L, R, E) routing counts of the current pass */
  double *load, *wsum;     /* (L, E) tokens and routing weight per expert */
  int *sets;               /* (ncp, L, R, K) each type's top-K experts per checkpoint */
} router_rec;

typedef struct {
  double ce, bytes;        /* Σ CE (nats) and Σ bytes of the predicted tokens */
  size_t n;                /* predicted tokens */
} eval_sum;

typedef struct {
  moe_lm *m;
  const uint32_t *tokens;
  size_t ntok;
  int T, B;
  uint32_t *x, *y;          /* (B, T) */
  const size_t *tokbytes;   /* (V) bytes of each token */
} evaluator;

/* CE and bytes over `windows` of the split's evaluation windows, evenly
 * spaced (window j·W_all/windows, j = 0..windows−1: all of them when
 * windows = W_all), so a subset samples every part of the split; router
 * counts into rr (NULL: none). */
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
    if ((rc = moe_lm_forward_eval(ev->m, (int)got, ev->T, ev->x, ev->y, &loss))) return rc;
    size_t nt = got * (size_t)ev->T;
    out->ce += moe_lm_ce_loss(ev->m) * (double)nt;
    out->n += nt;
    for (size_t i = 0; i < nt; i++) out->bytes += (double)ev->tokbytes[ev->y[i]];
    for (int l = 0; rr && l < rr->L; l++) {
      const moe_layer *f = moe_lm_ffn(ev->m, l);
      const int *idx = moe_layer_chosen(f);
      const float *wt = moe_layer_weights(f);
      for (size_t i = 0; i < nt; i++) {
        int r = rr->rank[ev->x[i]];
        if (r < 0) continue;
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
          for (int j = 0; j < k; j++) taken |= s[j] == e;
          if (!taken && (best < 0 || c[e] > c[best])) best = e;
        }
        s[k] = best;
      }
    }
}

typedef struct { uint32_t id; uint64_t n; } tcount;
static int by_count(const void *a, const void *b)
{
  const tcount *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? 1 : -1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static void metricf(mb_result *r, const char *fam, double at, double v)
{
  char name[96];
  snprintf(name, sizeof name, "%s@%.17g", fam, at);
  mb_result_metric(r, name, v);
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto out; } while (0)

static int run(const mb_cell *c, uint64_t seed, mb_result *res, char *err, size_t errlen)
{
  int rc = 1;
  const char *bad;
  if (check(c, &bad, err, errlen)) return 1;
  moe_tokfile *tr = NULL, *va = NULL, *te = NULL;
  moe_bpe *bpe = NULL;
  moe_lm *m = NULL;
  moe_optim *opt = NULL;
  gsl_rng *r_init = NULL, *r_batch = NULL;
  uint32_t *x = NULL, *y = NULL;
  size_t *tokbytes = NULL;
  router_rec rr = {0};
  tcount *tc = NULL;
  double *cp_ppl = NULL;

  const char *variant = mb_cell_str(c, "variant");
  const int D = (int)mb_cell_int(c, "D"), L = (int)mb_cell_int(c, "L"), H = (int)mb_cell_int(c, "H"),
            T = (int)mb_cell_int(c, "T"), N = (int)mb_cell_int(c, "N"), K = (int)mb_cell_int(c, "K"),
            S = (int)mb_cell_int(c, "s"), F = (int)mb_cell_int(c, "F"), B = (int)mb_cell_int(c, "batch");
  const long steps = mb_cell_int(c, "steps"), every = mb_cell_int(c, "eval_every");
  const int ncp = (int)(steps / every);
  char path[4400];

  /* data */
  const char *files[3] = {"train.tok", "valid.tok", "test.tok"};
  moe_tokfile **tf[3] = {&tr, &va, &te};
  for (int i = 0; i < 3; i++) {
    data_path(c, files[i], path, sizeof path);
    if (moe_tokfile_read(path, tf[i]))
      FAIL("%s (make the LM data with `make lm-data` or `moebench data lm-corpus`)", moe_last_error());
  }
  data_path(c, "vocab.bpe", path, sizeof path);
  if (moe_bpe_load(path, &bpe)) FAIL("%s", moe_last_error());
  const uint32_t V = moe_bpe_vocab_size(bpe);
  for (int i = 0; i < 3; i++)
    if ((*tf[i])->vocab_size != V)
      FAIL("%s: vocabulary %u, but the vocabulary file has %u tokens", files[i], (*tf[i])->vocab_size, V);
  for (int i = 0; i < 3; i++)
    if ((*tf[i])->count < (uint64_t)T + 1)
      FAIL("%s: %llu tokens, fewer than one window of T+1 = %d", files[i], (unsigned long long)(*tf[i])->count, T + 1);
  if (!(tokbytes = malloc(sizeof *tokbytes * V))) FAIL("out of memory");
  for (uint32_t i = 0; i < V; i++) moe_bpe_token_bytes(bpe, i, &tokbytes[i]);

  /* model */
  moe_layer_config ffn;
  if (moe_layer_config_variant(&ffn, variant, (moe_variant_sizes){.D = D, .F = F, .N = N, .K = K, .shared = S})) FAIL("variant: %s", moe_last_error());
  if (moe_combine_parse(mb_cell_str(c, "combine"), &ffn.combine)) FAIL("%s", moe_last_error());
  const int dense = !strcmp(variant, "dense");
  ffn.balance_coef = dense ? 0 : mb_cell_real(c, "aux");
  moe_lm_config cfg = moe_lm_config_make((int)V, T, D, L, H, &ffn);
  if (moe_lm_check(&cfg)) FAIL("model: %s", moe_last_error());
  if (!(m = moe_lm_alloc(&cfg, B))) FAIL("model: %s", moe_last_error());
  char label[128];
  snprintf(label, sizeof label, "lm-batches-rep-%s", mb_cell_str(c, "rep") ? mb_cell_str(c, "rep") : "0");
  if (!(r_init = moe_rng_alloc(moe_seed_derive(seed, "init"))) ||
      !(r_batch = moe_rng_alloc(moe_seed_derive((uint64_t)mb_cell_int(c, "data_seed"), label))))
    FAIL("rng: %s", moe_last_error());
  if (moe_lm_init_params(m, r_init)) FAIL("init: %s", moe_last_error());
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  oc.weight_decay = mb_cell_real(c, "weight_decay");
  if (!(opt = moe_optim_alloc(&oc, moe_lm_param_count(m)))) FAIL("optimizer: %s", moe_last_error());
  if (moe_lm_set_threads(m, mb_task_threads()) || moe_optim_set_threads(opt, mb_task_threads())) FAIL("threads: %s", moe_last_error());
  moe_lr_schedule sched = {MOE_LR_WARMUP_COSINE, mb_cell_real(c, "lr"), mb_cell_int(c, "warmup"), steps,
                           mb_cell_real(c, "min_lr")};
  if (moe_lr_check(&sched)) FAIL("schedule: %s", moe_last_error());
  if (!(x = malloc(sizeof *x * (size_t)B * T)) || !(y = malloc(sizeof *y * (size_t)B * T))) FAIL("out of memory");

  /* the evaluation windows and the router's types */
  evaluator ev = {m, va->tokens, (size_t)va->count, T, B, x, y, tokbytes};
  const size_t vwin_all = moe_batch_eval_windows((size_t)va->count, (size_t)T);
  size_t vwin = mb_cell_int(c, "eval_tokens") ? (size_t)mb_cell_int(c, "eval_tokens") / (size_t)T : vwin_all;
  if (vwin < 1) vwin = 1;
  if (vwin > vwin_all) vwin = vwin_all;
  rr.L = L;
  rr.E = ffn.E;
  rr.K = ffn.K;
  if (!(tc = calloc(V, sizeof *tc)) || !(rr.rank = malloc(sizeof *rr.rank * V))) FAIL("out of memory");
  for (uint32_t i = 0; i < V; i++) { tc[i].id = i; rr.rank[i] = -1; }
  for (size_t j = 0; j < vwin; j++) /* inputs of the evaluated windows */
    for (size_t i = 0; i < (size_t)T; i++) tc[va->tokens[j * vwin_all / vwin * (size_t)T + i]].n++;
  qsort(tc, V, sizeof *tc, by_count);
  int distinct = 0;
  while (distinct < (int)V && tc[distinct].n) distinct++;
  rr.R = distinct < mb_cell_int(c, "router_types") ? distinct : (int)mb_cell_int(c, "router_types");
  for (int i = 0; i < rr.R; i++) rr.rank[tc[i].id] = i;
  router_rec *rp = dense ? NULL : &rr;
  if (rp && (!(rr.count = malloc(sizeof(double) * (size_t)L * rr.R * rr.E)) ||
             !(rr.load = malloc(sizeof(double) * (size_t)L * rr.E)) ||
             !(rr.wsum = malloc(sizeof(double) * (size_t)L * rr.E)) ||
             !(rr.sets = malloc(sizeof(int) * (size_t)ncp * L * rr.R * rr.K))))
    FAIL("out of memory");
  if (!(cp_ppl = malloc(sizeof *cp_ppl * (size_t)ncp))) FAIL("out of memory");
  double *jt = calloc((size_t)ncp * L, sizeof *jt), *jw = calloc((size_t)ncp * L, sizeof *jw);
  if (!jt || !jw) { free(jt); free(jw); FAIL("out of memory"); }

  /* training */
  const double gamma = !strcmp(variant, "ds_v3_bias") ? mb_cell_real(c, "bias_gamma") : 0;
  double train_time = 0, train_cpu = 0, last_loss = NAN, last_aux = NAN, steps_to_target = NAN;
  const double target = mb_cell_real(c, "target_ppl");
  int cp = 0, src;
  for (long st = 0; st < steps; st++) {
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), loss, gn;
    if ((src = moe_batch_random(tr->tokens, (size_t)tr->count, (size_t)T, (size_t)B, r_batch, x, y, NULL)))
      { free(jt); free(jw); FAIL("batch: %s", moe_last_error()); }
    moe_lm_zero_grad(m);
    if ((src = moe_lm_forward(m, B, T, x, y, &loss)) || (src = moe_lm_backward(m)) ||
        (src = moe_lm_step(m, opt, &sched, mb_cell_real(c, "clip"), &gn)) ||
        (gamma > 0 && (src = moe_lm_bias_update(m, gamma)))) {
      free(jt); free(jw);
      FAIL("step %ld: %s%s", st, src == MOE_EDOM ? "training diverged: " : "", moe_last_error());
    }
    train_time += now_s(CLOCK_MONOTONIC) - t0;
    train_cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    last_loss = moe_lm_ce_loss(m);
    last_aux = moe_lm_aux_loss(m);
    if ((st + 1) % every == 0) {
      eval_sum es;
      if (eval_windows(&ev, vwin, rp, &es)) { free(jt); free(jw); FAIL("eval at step %ld: %s", st + 1, moe_last_error()); }
      double ppl = exp(es.ce / (double)es.n);
      cp_ppl[cp] = ppl;
      metricf(res, "valid_ppl", (double)(st + 1), ppl);
      metricf(res, "valid_bpb", (double)(st + 1), es.ce / es.bytes / log(2.0));
      if (target > 0 && isnan(steps_to_target) && ppl <= target) steps_to_target = (double)(st + 1);
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
        moe_metrics_saturation(rr.sets + k * per + l * lay, rr.sets + (ncp - 1) * per + l * lay, (size_t)rr.R, rr.K,
                               rr.E, &v);
        sat += v / L;
        if (k == 0) metricf(res, "saturation_first_layer", l, 100 * v);
        if (k > 0) {
          moe_metrics_change_rate(rr.sets + (k - 1) * per + l * lay, rr.sets + k * per + l * lay, (size_t)rr.R, rr.K,
                                  rr.E, &v);
          cr += v / L;
        }
        a += jt[k * L + l] / L;
        b += jw[k * L + l] / L;
      }
      double at = (double)(k + 1) * (double)every;
      if (k < ncp - 1) metricf(res, "saturation", at, 100 * sat);
      if (k == 0) mb_result_metric(res, "saturation_first", 100 * sat);
      if (k > 0) { metricf(res, "change_rate", at, 100 * cr); sum_cr += cr; n_cr++; }
      metricf(res, "jfi_tokens", at, a);
      metricf(res, "jfi_weight", at, b);
      if (k == ncp - 1) { mb_result_metric(res, "jfi_tokens", a); mb_result_metric(res, "jfi_weight", b); }
    }
    for (int l = 0; l < L && ncp > 1; l++) {
      double s = 0, v;
      for (int k = 1; k < ncp; k++) {
        moe_metrics_change_rate(rr.sets + (k - 1) * per + l * lay, rr.sets + k * per + l * lay, (size_t)rr.R, rr.K,
                                rr.E, &v);
        s += v / (ncp - 1);
      }
      metricf(res, "change_rate_layer", l, 100 * s);
    }
    for (int l = 0; l < L; l++) {
      metricf(res, "jfi_tokens_layer", l, jt[(ncp - 1) * L + l]);
      metricf(res, "jfi_weight_layer", l, jw[(ncp - 1) * L + l]);
    }
    if (n_cr) mb_result_metric(res, "change_rate", 100 * sum_cr / n_cr);
    mb_result_metric(res, "router_types", rr.R);
  }
  free(jt);
  free(jw);

  /* final evaluation on valid and test */
  const long fet = mb_cell_int(c, "final_eval_tokens");
  eval_sum fv, ft;
  size_t wv = moe_batch_eval_windows((size_t)va->count, (size_t)T), wt = moe_batch_eval_windows((size_t)te->count, (size_t)T);
  if (fet) {
    if (wv > (size_t)fet / T) wv = (size_t)fet / T > 0 ? (size_t)fet / T : 1;
    if (wt > (size_t)fet / T) wt = (size_t)fet / T > 0 ? (size_t)fet / T : 1;
  }
  if (eval_windows(&ev, wv, NULL, &fv)) FAIL("final valid: %s", moe_last_error());
  ev.tokens = te->tokens;
  ev.ntok = (size_t)te->count;
  if (eval_windows(&ev, wt, NULL, &ft)) FAIL("final test: %s", moe_last_error());

  /* FLOPs per token of one forward (multiply-add = 2) */
  const double Eff = ffn.K + ffn.S, Fw = ffn.expert.F;
  double fwd = L * (2.0 * 4 * D * D + 2.0 * D * (T + 1) + 2.0 * D * ffn.E + Eff * 4.0 * D * Fw) + 2.0 * D * V;
  const double ntrain = (double)steps * B * T, flops = 3 * fwd * ntrain;
  size_t np = moe_lm_param_count(m);
  /* active parameters: all but the routed experts not chosen */
  size_t per_expert = (size_t)2 * D * ffn.expert.F;
  double active = (double)np - (double)L * (ffn.E - ffn.K) * (double)per_expert;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);

  double vce = fv.ce / (double)fv.n;
  mb_result_metric(res, "valid_ppl", exp(vce));
  mb_result_metric(res, "valid_bpb", fv.ce / fv.bytes / log(2.0));
  mb_result_metric(res, "valid_ce", vce);
  mb_result_metric(res, "test_ppl", exp(ft.ce / (double)ft.n));
  mb_result_metric(res, "test_bpb", ft.ce / ft.bytes / log(2.0));
  mb_result_metric(res, "train_loss", last_loss);
  mb_result_metric(res, "aux_loss", last_aux);
  mb_result_metric(res, "train_seconds", train_time);
  mb_result_metric(res, "tokens_per_s", ntrain / train_time);
  mb_result_metric(res, "train_cpu_seconds", train_cpu);
  mb_result_metric(res, "tokens_per_cpu_s", ntrain / train_cpu);
  mb_result_metric(res, "train_flops", flops);
  mb_result_metric(res, "flops_per_token", 3 * fwd);
  mb_result_metric(res, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);
  mb_result_metric(res, "params", (double)np);
  mb_result_metric(res, "active_params", active);
  /* quality gained over a uniform guess (ln V nats), per training TFLOP and
   * per CPU second of training (one thread; wall time depends on the load) */
  mb_result_metric(res, "gain_per_tflop", (log((double)V) - vce) / (flops / 1e12));
  mb_result_metric(res, "gain_per_second", (log((double)V) - vce) / train_cpu);
  if (target > 0) mb_result_metric(res, "steps_to_target", steps_to_target);
  rc = 0;
out:
  moe_tokfile_free(tr); moe_tokfile_free(va); moe_tokfile_free(te);
  moe_bpe_free(bpe);
  moe_lm_free(m);
  moe_optim_free(opt);
  gsl_rng_free(r_init); gsl_rng_free(r_batch);
  free(x); free(y); free(tokbytes); free(tc); free(cp_ppl);
  free(rr.rank); free(rr.count); free(rr.load); free(rr.wsum); free(rr.sets);
  return rc;
}

const mb_task mb_task_lm = {
  "lm", "a transformer LM with MoE FFNs on token files: perplexity, bits per byte, router analysis",
  params, metrics, check, run,
};
