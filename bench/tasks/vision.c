/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vision.c — the `vision` task: a small patch transformer whose features
 * pass through an MoE connector (moe/vision.h), trained on Fashion-MNIST:
 * the paper's Table 3 (§4.4–4.5, the MoE connector of a LLaVA-style model)
 * and its router analysis (§5) at a scale that trains in a minute or two.
 *
 * Data: the IDX files of Fashion-MNIST (`make image-data` or
 * `datasets/fetch.sh --only fashion-mnist`, from the Debian package
 * dataset-fashion-mnist). A relative `data` is looked up under
 * $MOE_DATA_DIR (else ./data), then in /usr/share/datasets. The official
 * 60k training images are split once, by a shuffle seeded with split_seed
 * (the same for every cell): the first valid_size images of that order are
 * the validation split, the rest train. Test is the official 10k. Pixels
 * become P×P patches standardised with the official training split's
 * pixel mean and std (moe/idx.h, MOE_PATCH_STANDARD).
 *
 * Variants (moe_layer_config_variant, the paper's rule of equal total and
 * active experts, scalable): smoe = N experts top-K softmax, smoe_sg = the
 * same with normalized sigmoid, ds_v2 / ds_v3 = N−s routed top-(K−s) + s
 * shared (softmax / normalized sigmoid), ds_v3_bias = ds_v3 with the
 * aux-loss-free selection bias (bias_gamma per step); dense = one expert
 * of width K·Fm (iso-active baseline). The paper's vision runs: N = 8,
 * K = 4, s = 1 (8 top-4 vs 7 top-3 + 1 shared), combine "paper"
 * (½ shared + ½ routed), balance loss 0.01, router z-loss 0.001; experts
 * are two-layer GELU MLPs (mlp2x_gelu). placement "connector" puts the MoE
 * in the connector only (the paper); "everywhere" also in every encoder
 * FFN (router metrics stay on the connector).
 *
 * Training: epoch shuffles of the training part (moe_batcher, seed from
 * data_seed and the replication, so every variant of one replication sees
 * the same batches: paired comparisons), full batches only; parameters
 * from the cell's seed. AdamW, warmup-cosine to min_lr·lr, global-norm
 * clipping. steps, or epochs × batches per epoch when epochs > 0.
 *
 * Checkpoints every eval_every steps and at the end: validation accuracy
 * and loss (eval_images validation images, the first of the split's order;
 * 0 = all), and the connector's routing. Router analysis (paper §5) over
 * the patch tokens of the first router_images validation images: each
 * token's set of K chosen experts at each checkpoint; saturation = overlap
 * with the final checkpoint's sets (%), change rate = share of a set that
 * is new since the previous checkpoint (%), Jain's fairness index over
 * experts of the evaluated tokens (jfi_tokens) and of their routing weight
 * (jfi_weight); per class (the image's label) the same restricted to that
 * class's tokens. Families NAME@X carry X = the step (curves) or the class.
 *
 * At the end: test accuracy and loss on the official 10k, per-class test
 * accuracy, images/s of training (forward + backward + step, wall clock),
 * peak RSS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "moe/error.h"
#include "moe/idx.h"
#include "moe/metrics.h"
#include "moe/rng.h"
#include "moe/vision.h"
#include "task.h"

static const char *const variants[] = {"smoe", "smoe_sg", "ds_v2", "ds_v3", "ds_v3_bias", "dense", NULL};
static const char *const combines[] = {"paper", "additive", NULL};
static const char *const placements[] = {"connector", "everywhere", NULL};

static const mb_param params[] = {
  {"variant", MB_STR, "smoe", 0, -1, variants, "routing variant of the connector (equal total and active experts)"},
  {"data", MB_STR, "fashion-mnist", 0, -1, NULL,
   "directory of the Fashion-MNIST IDX files (relative: under $MOE_DATA_DIR, else ./data, then /usr/share/datasets)"},
  {"patch", MB_INT, "7", 1, 28, NULL, "patch side P (must divide 28): 28/P x 28/P patches of P*P pixels"},
  {"D", MB_INT, "32", 4, 4096, NULL, "model width"},
  {"H", MB_INT, "2", 1, 64, NULL, "attention heads (D % H == 0)"},
  {"L", MB_INT, "1", 0, 64, NULL, "encoder blocks before the connector"},
  {"Lh", MB_INT, "1", 0, 64, NULL, "head blocks after the connector"},
  {"F", MB_INT, "64", 1, 65536, NULL, "hidden width of the dense FFNs of encoder and head blocks"},
  {"Fm", MB_INT, "32", 1, 65536, NULL, "hidden width of each connector expert (mlp2x_gelu)"},
  {"N", MB_INT, "8", 1, 1024, NULL, "experts in all (SMoE: N routed; DeepSeek: N-s routed + s shared)"},
  {"K", MB_INT, "4", 1, 1024, NULL, "active experts per token (DeepSeek: K-s routed + s shared)"},
  {"s", MB_INT, "1", 0, 1024, NULL, "shared experts of the DeepSeek variants (paper: 1)"},
  {"combine", MB_STR, "paper", 0, -1, combines, "shared/routed combination (paper: 1/2 shared + 1/2 routed)"},
  {"placement", MB_STR, "connector", 0, -1, placements, "MoE in the connector only, or also in every encoder FFN"},
  {"steps", MB_INT, "400", 1, 1e8, NULL, "optimizer steps (ignored when epochs > 0)"},
  {"epochs", MB_INT, "0", 0, 1e5, NULL, "epochs over the training part (0: use steps)"},
  {"batch", MB_INT, "64", 1, 4096, NULL, "images per step"},
  {"lr", MB_REAL, "0.003", 0, 10, NULL, "peak learning rate (AdamW)"},
  {"min_lr", MB_REAL, "0.1", 0, 1, NULL, "final learning rate of the cosine, as a fraction of lr"},
  {"weight_decay", MB_REAL, "0.01", 0, 10, NULL, "AdamW decoupled weight decay"},
  {"warmup", MB_INT, "20", 0, 1e8, NULL, "linear warmup steps"},
  {"clip", MB_REAL, "1", 0, 1e6, NULL, "global gradient-norm clip (0: none)"},
  {"aux", MB_REAL, "0.01", 0, 10, NULL, "balance-loss coefficient (paper: 0.01)"},
  {"zloss", MB_REAL, "0.001", 0, 10, NULL, "router z-loss coefficient (paper: 0.001)"},
  {"bias_gamma", MB_REAL, "0.001", 0, 1, NULL, "ds_v3_bias: selection-bias step per training step"},
  {"eval_every", MB_INT, "50", 1, 1e8, NULL, "steps between checkpoints (and one at the end)"},
  {"valid_size", MB_INT, "5000", 10, 30000, NULL, "validation images carved from the official training split"},
  {"eval_images", MB_INT, "2000", 0, 30000, NULL, "validation images per checkpoint (0: the whole validation split)"},
  {"router_images", MB_INT, "500", 1, 30000, NULL, "validation images whose patch tokens enter the router analysis"},
  {"split_seed", MB_INT, "2505", 0, 2147483647, NULL, "seed of the train/validation split (the same for every cell)"},
  {"data_seed", MB_INT, "2505", 0, 2147483647, NULL, "seed of the epoch shuffles (with rep): shared by the variants"},
  {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {
  "test_acc", "test_loss", "valid_acc", "valid_loss", "train_loss", "aux_loss", "images_per_s",
  "train_seconds", "steps", "peak_rss_mb", "params", "active_params", "saturation_first", "change_rate",
  "jfi_tokens", "jfi_weight",
  /* families: @step */
  "valid_acc@", "valid_loss@", "saturation@", "change_rate@", "jfi_tokens@", "jfi_weight@",
  /* families: @class */
  "class_acc@", "saturation_first_class@", "change_rate_class@", "jfi_tokens_class@",
  NULL};

static int check(const mb_cell *c, const char **bad, char *err, size_t n)
{
  long D = mb_cell_int(c, "D"), H = mb_cell_int(c, "H"), N = mb_cell_int(c, "N"), K = mb_cell_int(c, "K"),
       s = mb_cell_int(c, "s"), P = mb_cell_int(c, "patch");
  const char *v = mb_cell_str(c, "variant");
  if (28 % P) { *bad = "patch"; snprintf(err, n, "patch side %ld does not divide the 28x28 image", P); return 1; }
  if (D % H) { *bad = "H"; snprintf(err, n, "H=%ld must divide D=%ld", H, D); return 1; }
  if (K > N) { *bad = "K"; snprintf(err, n, "K=%ld must not exceed N=%ld", K, N); return 1; }
  if (!strncmp(v, "ds_", 3) && s >= K) {
    *bad = "s";
    snprintf(err, n, "s=%ld shared experts must be fewer than K=%ld (the DeepSeek variants route K-s)", s, K);
    return 1;
  }
  if (!mb_cell_int(c, "epochs") && mb_cell_int(c, "warmup") > mb_cell_int(c, "steps")) {
    *bad = "warmup";
    snprintf(err, n, "warmup=%ld must not exceed steps=%ld", mb_cell_int(c, "warmup"), mb_cell_int(c, "steps"));
    return 1;
  }
  if (mb_cell_int(c, "router_images") > mb_cell_int(c, "valid_size")) {
    *bad = "router_images";
    snprintf(err, n, "router_images=%ld exceeds valid_size=%ld", mb_cell_int(c, "router_images"),
             mb_cell_int(c, "valid_size"));
    return 1;
  }
  return 0;
}

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int is_dir(const char *p)
{
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where the data directory is. */
static void data_dir(const mb_cell *c, char *out, size_t n)
{
  const char *d = mb_cell_str(c, "data"), *root = getenv("MOE_DATA_DIR");
  if (d[0] == '/') { snprintf(out, n, "%s", d); return; }
  snprintf(out, n, "%s/%s", root && *root ? root : "data", d);
  if (!is_dir(out)) {
    char alt[4200];
    snprintf(alt, sizeof alt, "/usr/share/datasets/%s", d);
    if (is_dir(alt)) snprintf(out, n, "%s", alt);
  }
}

static void metricf(mb_result *r, const char *fam, double at, double v)
{
  char name[96];
  snprintf(name, sizeof name, "%s@%.17g", fam, at);
  mb_result_metric(r, name, v);
}

/* One pass over images idx[0..n) of a set in batches of B: mean CE,
 * accuracy, per-class correct/count (may be NULL); routing of the
 * connector into `sets` ((n·Np, K), the first n_router images only; may be
 * NULL) and per-expert load / weight over all tokens into load, wsum (E)
 * and per-class load into cload ((10, E)) when given. */
typedef struct {
  moe_vision *m;
  const moe_idx_set *set;
  const moe_patches *pp;
  int B, Np, E, K;
  float *x;
  int32_t *y;
} evaluator;

static int evaluate(evaluator *ev, const size_t *idx, size_t n, double *ce, double *acc, double *ccorrect,
                    double *ccount, int *sets, size_t n_router, double *load, double *wsum, double *cload)
{
  double sce = 0, sc = 0;
  if (load) memset(load, 0, sizeof(double) * ev->E);
  if (wsum) memset(wsum, 0, sizeof(double) * ev->E);
  if (cload) memset(cload, 0, sizeof(double) * 10 * ev->E);
  for (size_t i0 = 0; i0 < n; i0 += (size_t)ev->B) {
    const size_t b = n - i0 < (size_t)ev->B ? n - i0 : (size_t)ev->B;
    int rc = moe_idx_set_batch(ev->set, ev->pp, idx + i0, b, ev->x, ev->y);
    if (rc) return rc;
    double loss;
    if ((rc = moe_vision_forward(ev->m, (int)b, ev->x, ev->y, &loss))) return rc;
    sce += moe_vision_ce_loss(ev->m) * (double)b;
    const float *lg = moe_vision_logits(ev->m);
    for (size_t j = 0; j < b; j++) {
      int best = 0;
      for (int k = 1; k < 10; k++)
        if (lg[j * 10 + k] > lg[j * 10 + best]) best = k;
      int hit = best == ev->y[j];
      sc += hit;
      if (ccorrect) { ccorrect[ev->y[j]] += hit; ccount[ev->y[j]] += 1; }
    }
    if (load || sets || cload) {
      const moe_layer *f = moe_vision_connector(ev->m);
      const int *ch = moe_layer_chosen(f);
      const float *w = moe_layer_weights(f);
      const size_t nt = b * (size_t)ev->Np;
      for (size_t t = 0; t < nt; t++) {
        const int cls = ev->y[t / (size_t)ev->Np];
        for (int k = 0; k < ev->K; k++) {
          const int e = ch[t * ev->K + k];
          if (load) load[e] += 1;
          if (wsum) wsum[e] += w[t * ev->K + k];
          if (cload) cload[(size_t)cls * ev->E + e] += 1;
        }
      }
      if (sets && i0 < n_router) {
        const size_t keep = (n_router - i0 < b ? n_router - i0 : b) * (size_t)ev->Np * ev->K;
        memcpy(sets + i0 * (size_t)ev->Np * ev->K, ch, keep * sizeof *ch);
      }
    }
  }
  *ce = sce / (double)n;
  *acc = sc / (double)n;
  return MOE_OK;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto out; } while (0)

static int run(const mb_cell *c, uint64_t seed, mb_result *res, char *err, size_t errlen)
{
  int rc = 1;
  const char *bad;
  if (check(c, &bad, err, errlen)) return 1;
  moe_idx_set *trs = NULL, *tes = NULL;
  moe_batcher *split = NULL, *bt = NULL;
  moe_vision *m = NULL;
  moe_optim *opt = NULL;
  gsl_rng *r_init = NULL;
  float *x = NULL;
  int32_t *y = NULL;
  size_t *tr_idx = NULL, *va_idx = NULL, *te_idx = NULL, *bidx = NULL;
  int *sets = NULL, *cls_of = NULL;
  double *jt = NULL, *jw = NULL, *jc = NULL, *load = NULL, *wsum = NULL, *cload = NULL;

  const char *variant = mb_cell_str(c, "variant");
  const int P = (int)mb_cell_int(c, "patch"), D = (int)mb_cell_int(c, "D"), H = (int)mb_cell_int(c, "H"),
            L = (int)mb_cell_int(c, "L"), Lh = (int)mb_cell_int(c, "Lh"), F = (int)mb_cell_int(c, "F"),
            Fm = (int)mb_cell_int(c, "Fm"), N = (int)mb_cell_int(c, "N"), K = (int)mb_cell_int(c, "K"),
            S = (int)mb_cell_int(c, "s"), B = (int)mb_cell_int(c, "batch");
  const int dense = !strcmp(variant, "dense");
  char dir[4400];

  /* data */
  data_dir(c, dir, sizeof dir);
  if (moe_idx_set_load_dir(dir, "train", &trs) || moe_idx_set_load_dir(dir, "test", &tes))
    FAIL("%s (fetch Fashion-MNIST with `make image-data`; it needs the Debian package dataset-fashion-mnist)",
         moe_last_error());
  if (trs->h != 28 || trs->w != 28 || tes->h != 28 || tes->w != 28 || trs->num_classes != 10)
    FAIL("%s: expected 28x28 images in 10 classes, got %zux%zu", dir, trs->h, trs->w);
  const size_t nval = (size_t)mb_cell_int(c, "valid_size");
  if (nval >= trs->n) FAIL("valid_size=%zu leaves no training images (%zu in all)", nval, trs->n);
  double pmean, pstd;
  if (moe_idx_set_pixel_stats(trs, &pmean, &pstd)) FAIL("%s", moe_last_error());
  moe_patches pp;
  if (moe_patches_init(&pp, 28, 28, (size_t)P, MOE_PATCH_STANDARD, pmean, pstd)) FAIL("%s", moe_last_error());
  /* the split: one shuffle of 0..n-1 from split_seed, validation first */
  if (moe_batcher_alloc(trs->n, trs->n, (uint64_t)mb_cell_int(c, "split_seed"), MOE_BATCH_KEEP_LAST, &split) ||
      moe_batcher_epoch(split, 0))
    FAIL("split: %s", moe_last_error());
  const size_t *perm;
  moe_batcher_batch(split, 0, &perm);
  const size_t ntr = trs->n - nval;
  if (!(va_idx = malloc(sizeof *va_idx * nval)) || !(tr_idx = malloc(sizeof *tr_idx * ntr)) ||
      !(te_idx = malloc(sizeof *te_idx * tes->n)) || !(bidx = malloc(sizeof *bidx * (size_t)B)))
    FAIL("out of memory");
  memcpy(va_idx, perm, sizeof *va_idx * nval);
  memcpy(tr_idx, perm + nval, sizeof *tr_idx * ntr);
  for (size_t i = 0; i < tes->n; i++) te_idx[i] = i;
  if ((size_t)B > ntr) FAIL("batch=%d exceeds the %zu training images", B, ntr);
  char label[128];
  snprintf(label, sizeof label, "vision-epochs-rep-%s", mb_cell_str(c, "rep") ? mb_cell_str(c, "rep") : "0");
  if (moe_batcher_alloc(ntr, (size_t)B, moe_seed_derive((uint64_t)mb_cell_int(c, "data_seed"), label),
                        MOE_BATCH_DROP_LAST, &bt))
    FAIL("batcher: %s", moe_last_error());
  const size_t per_epoch = moe_batcher_num_batches(bt);
  const long epochs = mb_cell_int(c, "epochs");
  const long steps = epochs > 0 ? epochs * (long)per_epoch : mb_cell_int(c, "steps");
  const long every = mb_cell_int(c, "eval_every");
  const int ncp = (int)((steps + every - 1) / every);
  const long warmup = mb_cell_int(c, "warmup") < steps ? mb_cell_int(c, "warmup") : steps;

  /* model */
  moe_layer_config moe;
  if (moe_layer_config_variant(&moe, variant, (moe_variant_sizes){.D = D, .F = Fm, .N = N, .K = K, .shared = S})) FAIL("variant: %s", moe_last_error());
  moe.expert.act = MOE_ACT_GELU;
  if (moe_combine_parse(mb_cell_str(c, "combine"), &moe.combine)) FAIL("%s", moe_last_error());
  moe.balance_coef = dense ? 0 : mb_cell_real(c, "aux");
  moe.zloss_coef = dense ? 0 : mb_cell_real(c, "zloss");
  moe_vision_config cfg = moe_vision_config_make(28, 28, P, 10, D, H, L, Lh, F, &moe);
  cfg.moe_everywhere = !strcmp(mb_cell_str(c, "placement"), "everywhere");
  if (moe_vision_check(&cfg)) FAIL("model: %s", moe_last_error());
  if (!(m = moe_vision_alloc(&cfg, B))) FAIL("model: %s", moe_last_error());
  if (!(r_init = moe_rng_alloc(moe_seed_derive(seed, "init")))) FAIL("rng: %s", moe_last_error());
  if (moe_vision_init_params(m, r_init)) FAIL("init: %s", moe_last_error());
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  oc.weight_decay = mb_cell_real(c, "weight_decay");
  if (!(opt = moe_optim_alloc(&oc, moe_vision_param_count(m)))) FAIL("optimizer: %s", moe_last_error());
  if (moe_vision_set_threads(m, mb_task_threads()) || moe_optim_set_threads(opt, mb_task_threads())) FAIL("threads: %s", moe_last_error());
  moe_lr_schedule sched = {MOE_LR_WARMUP_COSINE, mb_cell_real(c, "lr"), warmup, steps, mb_cell_real(c, "min_lr")};
  if (moe_lr_check(&sched)) FAIL("schedule: %s", moe_last_error());
  const int Np = moe_vision_num_patches(&cfg), pd = moe_vision_patch_dim(&cfg);
  if (!(x = malloc(sizeof *x * (size_t)B * Np * pd)) || !(y = malloc(sizeof *y * (size_t)B))) FAIL("out of memory");

  /* checkpoint records */
  const int E = moe.E, Kr = moe.K;
  size_t neval = (size_t)mb_cell_int(c, "eval_images");
  if (neval == 0 || neval > nval) neval = nval;
  size_t nrouter = (size_t)mb_cell_int(c, "router_images");
  if (nrouter > neval) nrouter = neval;
  const size_t per_cp = nrouter * (size_t)Np * Kr; /* ints per checkpoint */
  if (!(sets = malloc(sizeof *sets * per_cp * (size_t)ncp)) || !(cls_of = malloc(sizeof *cls_of * nrouter)) ||
      !(jt = calloc((size_t)ncp, sizeof *jt)) || !(jw = calloc((size_t)ncp, sizeof *jw)) ||
      !(jc = calloc(10, sizeof *jc)) || !(load = malloc(sizeof *load * E)) || !(wsum = malloc(sizeof *wsum * E)) ||
      !(cload = malloc(sizeof *cload * 10 * E)))
    FAIL("out of memory");
  for (size_t i = 0; i < nrouter; i++) cls_of[i] = trs->labels[va_idx[i]];
  evaluator ev = {m, trs, &pp, B, Np, E, Kr, x, y};

  /* training */
  const double gamma = !strcmp(variant, "ds_v3_bias") ? mb_cell_real(c, "bias_gamma") : 0;
  const double clip = mb_cell_real(c, "clip");
  double train_time = 0, last_loss = NAN, last_aux = NAN, vce = NAN, vacc = NAN;
  int cp = 0, src;
  unsigned long epoch = (unsigned long)-1;
  for (long st = 0; st < steps; st++) {
    const unsigned long ep = (unsigned long)(st / (long)per_epoch);
    if (ep != epoch) {
      if (moe_batcher_epoch(bt, ep)) FAIL("batcher: %s", moe_last_error());
      epoch = ep;
    }
    const size_t *bi;
    const size_t nb = moe_batcher_batch(bt, (size_t)(st % (long)per_epoch), &bi);
    for (size_t j = 0; j < nb; j++) bidx[j] = tr_idx[bi[j]];
    if (moe_idx_set_batch(trs, &pp, bidx, nb, x, y)) FAIL("batch: %s", moe_last_error());
    double t0 = now_s(), loss, gn;
    moe_vision_zero_grad(m);
    if ((src = moe_vision_forward(m, (int)nb, x, y, &loss)) || (src = moe_vision_backward(m)) ||
        (src = moe_vision_step(m, opt, &sched, clip, &gn)) || (gamma > 0 && (src = moe_vision_bias_update(m, gamma))))
      FAIL("step %ld: %s%s", st, src == MOE_EDOM ? "training diverged: " : "", moe_last_error());
    train_time += now_s() - t0;
    last_loss = moe_vision_ce_loss(m);
    last_aux = moe_vision_aux_loss(m);
    if ((st + 1) % every == 0 || st + 1 == steps) {
      if (evaluate(&ev, va_idx, neval, &vce, &vacc, NULL, NULL, dense ? NULL : sets + (size_t)cp * per_cp,
                   nrouter, dense ? NULL : load, dense ? NULL : wsum, NULL))
        FAIL("eval at step %ld: %s", st + 1, moe_last_error());
      metricf(res, "valid_acc", (double)(st + 1), vacc);
      metricf(res, "valid_loss", (double)(st + 1), vce);
      if (!dense) {
        if (moe_metrics_jain(load, (size_t)E, &jt[cp])) jt[cp] = NAN;
        if (moe_metrics_jain(wsum, (size_t)E, &jw[cp])) jw[cp] = NAN;
        metricf(res, "jfi_tokens", (double)(st + 1), jt[cp]);
        metricf(res, "jfi_weight", (double)(st + 1), jw[cp]);
      }
      cp++;
    }
  }

  /* router metrics over the checkpoints (connector, probe tokens) */
  if (!dense && ncp > 0 && nrouter > 0) {
    const size_t ntok = nrouter * (size_t)Np;
    const int *fin = sets + (size_t)(ncp - 1) * per_cp;
    double sum_cr = 0;
    for (int k = 0; k < ncp; k++) {
      const long at = (k + 1) * every < steps ? (k + 1) * every : steps;
      double v;
      moe_metrics_saturation(sets + (size_t)k * per_cp, fin, ntok, Kr, E, &v);
      if (k < ncp - 1) metricf(res, "saturation", (double)at, 100 * v);
      if (k == 0) mb_result_metric(res, "saturation_first", 100 * v);
      if (k > 0) {
        moe_metrics_change_rate(sets + (size_t)(k - 1) * per_cp, sets + (size_t)k * per_cp, ntok, Kr, E, &v);
        metricf(res, "change_rate", (double)at, 100 * v);
        sum_cr += v;
      }
    }
    if (ncp > 1) mb_result_metric(res, "change_rate", 100 * sum_cr / (ncp - 1));
    mb_result_metric(res, "jfi_tokens", jt[ncp - 1]);
    mb_result_metric(res, "jfi_weight", jw[ncp - 1]);
    /* per class: the probe tokens of that class's images */
    int *a = malloc(sizeof *a * per_cp), *b = malloc(sizeof *b * per_cp), *f = malloc(sizeof *f * per_cp);
    if (!a || !b || !f) { free(a); free(b); free(f); FAIL("out of memory"); }
    for (int cl = 0; cl < 10; cl++) {
      size_t nt = 0;
      const size_t row = (size_t)Np * Kr;
      for (size_t i = 0; i < nrouter; i++)
        if (cls_of[i] == cl) {
          memcpy(f + nt * Kr, fin + i * row, row * sizeof *f);
          nt += (size_t)Np;
        }
      if (!nt) continue;
      double v, cr = 0;
      /* saturation at the first checkpoint, mean change rate */
      for (int k = 0; k < ncp; k++) {
        size_t q = 0;
        for (size_t i = 0; i < nrouter; i++)
          if (cls_of[i] == cl) {
            memcpy(b + q * Kr, sets + (size_t)k * per_cp + i * row, row * sizeof *b);
            q += (size_t)Np;
          }
        if (k == 0) {
          moe_metrics_saturation(b, f, nt, Kr, E, &v);
          metricf(res, "saturation_first_class", cl, 100 * v);
        } else {
          moe_metrics_change_rate(a, b, nt, Kr, E, &v);
          cr += v;
        }
        int *t = a; a = b; b = t;
      }
      if (ncp > 1) metricf(res, "change_rate_class", cl, 100 * cr / (ncp - 1));
    }
    free(a); free(b); free(f);
  }

  /* final: the validation split (routing per class) and the official test set */
  double fce, facc, tce, tacc, ccorrect[10] = {0}, ccount[10] = {0};
  if (evaluate(&ev, va_idx, nval, &fce, &facc, NULL, NULL, NULL, 0, NULL, NULL, dense ? NULL : cload))
    FAIL("final valid: %s", moe_last_error());
  if (!dense)
    for (int cl = 0; cl < 10; cl++) {
      double v;
      if (!moe_metrics_jain(cload + (size_t)cl * E, (size_t)E, &v)) metricf(res, "jfi_tokens_class", cl, v);
    }
  ev.set = tes;
  if (evaluate(&ev, te_idx, tes->n, &tce, &tacc, ccorrect, ccount, NULL, 0, NULL, NULL, NULL))
    FAIL("test: %s", moe_last_error());
  for (int cl = 0; cl < 10; cl++)
    if (ccount[cl] > 0) metricf(res, "class_acc", cl, ccorrect[cl] / ccount[cl]);

  const size_t np = moe_vision_param_count(m);
  const size_t per_expert = (size_t)2 * D * Fm;
  double active = (double)np - (double)(E - Kr) * (double)per_expert * (cfg.moe_everywhere ? 1 + L : 1);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  mb_result_metric(res, "test_acc", tacc);
  mb_result_metric(res, "test_loss", tce);
  mb_result_metric(res, "valid_acc", facc);
  mb_result_metric(res, "valid_loss", fce);
  mb_result_metric(res, "train_loss", last_loss);
  mb_result_metric(res, "aux_loss", last_aux);
  mb_result_metric(res, "train_seconds", train_time);
  mb_result_metric(res, "images_per_s", (double)steps * B / train_time);
  mb_result_metric(res, "steps", (double)steps);
  mb_result_metric(res, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);
  mb_result_metric(res, "params", (double)np);
  mb_result_metric(res, "active_params", active);
  rc = 0;
out:
  moe_idx_set_free(trs); moe_idx_set_free(tes);
  moe_batcher_free(split); moe_batcher_free(bt);
  moe_vision_free(m);
  moe_optim_free(opt);
  gsl_rng_free(r_init);
  free(x); free(y); free(tr_idx); free(va_idx); free(te_idx); free(bidx);
  free(sets); free(cls_of); free(jt); free(jw); free(jc); free(load); free(wsum); free(cload);
  return rc;
}

const mb_task mb_task_vision = {
  "vision", "a patch transformer with an MoE connector on Fashion-MNIST: test accuracy, router analysis",
  params, metrics, check, run,
};
