/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vision.c — the `vision` task: a small patch transformer whose features
 * pass through an MoE connector (moe/vision.h), trained on Fashion-MNIST:
 * the paper's Table 3 (§4.4–4.5, the MoE connector of a LLaVA-style model)
 * and its router analysis (§5) at CPU scale; doc/vision-design.md says
 * which model the paper matrices use and what it reaches.
 *
 * Data: the IDX files of Fashion-MNIST (`make image-data` or
 * `datasets/fetch.sh --only fashion-mnist`, from the Debian package
 * dataset-fashion-mnist). A relative `data` is looked up under
 * $MOE_DATA_DIR (else ./data), then in /usr/share/datasets; the result
 * records the directory read (note data_dir), says when it was that
 * fallback (note data_source), and carries the SHA-256 fingerprint of the
 * four IDX files (notes data_files, data_sha256). The official 60k
 * training images are split once, by a shuffle seeded with split_seed
 * (the same for every cell): the first valid_size images of that order are
 * the validation split, the rest train. Test is the official 10k. Pixels
 * become P×P patches standardised with the official training split's
 * pixel mean and std (moe/idx.h, MOE_PATCH_STANDARD).
 *
 * Variants (moe_layer_config_for, the paper's rule of equal total and
 * active experts, scalable): smoe = N experts top-K softmax, smoe_sg = the
 * same with normalized sigmoid, ds_v2 / ds_v3 = N−s routed top-(K−s) + s
 * shared (softmax / normalized sigmoid), ds_v3_bias = ds_v3 with the
 * aux-loss-free selection bias (bias_gamma per step); dense = one expert
 * of width K·Fm (iso-active baseline). The paper's vision runs: N = 8,
 * K = 4, s = 1 (8 top-4 vs 7 top-3 + 1 shared), combine "paper"
 * (½ shared + ½ routed), balance loss 0.01, router z-loss 0.001; experts
 * are two-layer GELU MLPs (mlp2x_gelu). placement "connector" puts the MoE
 * in the connector only (the paper); "everywhere" also in every encoder
 * FFN (router metrics stay on the connector). model "logreg" replaces the
 * whole network by a multinomial logistic regression on the standardised
 * pixels (W (10, 784), b (10); same data, batches, optimizer and schedule,
 * no clipping): the sanity line every variant must beat.
 *
 * init "scratch" trains the variant from its initial values. init
 * "upcycle" is sparse upcycling (the paper's protocol, Komatsuzaki et al.
 * 2023): first a dense-connector model — the same network whose connector
 * is ONE MLP of the expert width Fm — is trained for upcycle_epochs
 * (upcycle_steps when 0) with its own batch stream and schedule; then the
 * variant's model is initialised as for scratch (so its router is fresh)
 * and moe_vision_upcycle copies every parameter outside the connector and
 * makes every shared and routed expert a copy of that MLP (dense: one MLP
 * K times as wide, the same function); then it is fine-tuned exactly as a
 * scratch run (same batches, budget, schedule, from a fresh optimizer).
 * The dense phase depends only on the matrix seed, the replication and
 * the settings of the network outside the connector, Fm and training, so it
 * is the same for every variant of a replication (metrics upcycle_*);
 * with $MOEBENCH_VISION_CACHE it is computed once and read back (below).
 *
 * Training: epoch shuffles of the training part (moe_batcher, seed from
 * data_seed and the replication, so every variant of one replication sees
 * the same batches: paired comparisons), full batches only. Augmentation
 * (off by default): with shift > 0 each training image is moved by
 * (dy, dx), each uniform in [−shift, shift], with zero fill, and with
 * flip it is mirrored left-right with probability ½ first
 * (moe_image_shift_flip); draws from a stream seeded by data_seed, the
 * replication, the phase and the epoch, image by image in batch order.
 * Initial values from moe_vision_init_params_keyed with a seed derived
 * from the matrix seed and the replication only (never the cell's seed,
 * so training does not depend on evaluation settings, and variants share
 * the components they have in common: common random numbers). AdamW,
 * warmup-cosine to min_lr·lr, global-norm clipping. steps, or epochs ×
 * batches per epoch when epochs > 0. A run whose training cross-entropy
 * is not finite or exceeds 2·ln 10 (twice a uniform guess), or whose
 * validation cross-entropy is not finite, stops there and is recorded as
 * diverged (never ok), with the phase, the step and the cause.
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
 * accuracy, images/s of training (forward + backward + step; per wall and
 * per CPU second), training FLOPs (3 × the forward count of
 * moe_vision_flops_parts per image) and each component's share of FLOPs and
 * parameters (the connector = its router + experts), the CPU seconds spent
 * evaluating and their share of the cell's CPU time, peak RSS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "moe/error.h"
#include "moe/idx.h"
#include "moe/metrics.h"
#include "moe/blas.h"
#include "moe/rng.h"
#include "moe/version.h"
#include "moe/vision.h"
#include "sha256.h"
#include "task.h"

static const char *const combines[] = {"paper", "additive", NULL};
static const char *const placements[] = {"connector", "everywhere", NULL};
static const char *const models[] = {"transformer", "logreg", NULL};
static const char *const inits[] = {"scratch", "upcycle", NULL};

static const mb_param params[] = {
    {"variant", MB_STR, "smoe", 0, -1, mb_variant_names,
     "routing variant of the connector (equal total and active experts)"},
    {"model", MB_STR, "transformer", 0, -1, models,
     "the patch transformer, or a logistic-regression baseline on the pixels"},
    {"init", MB_STR, "scratch", 0, -1, inits,
     "scratch, or upcycle: experts copied from a trained dense-connector MLP"},
    {"upcycle_epochs", MB_INT, "0", 0, 1e5, NULL,
     "init upcycle: epochs of the dense-connector phase (0: upcycle_steps)"},
    {"upcycle_steps", MB_INT, "0", 0, 1e8, NULL,
     "init upcycle: steps of the dense-connector phase when upcycle_epochs is 0"},
    {"data", MB_STR, "fashion-mnist", 0, -1, NULL,
     "directory of the Fashion-MNIST IDX files (relative: under $MOE_DATA_DIR, else ./data, then "
     "/usr/share/datasets)"},
    {"patch", MB_INT, "7", 1, 28, NULL,
     "patch side P (must divide 28): 28/P x 28/P patches of P*P pixels"},
    {"D", MB_INT, "32", 4, 4096, NULL, "model width"},
    {"H", MB_INT, "2", 1, 64, NULL, "attention heads (D % H == 0)"},
    {"L", MB_INT, "1", 0, 64, NULL, "encoder blocks before the connector"},
    {"Lh", MB_INT, "1", 0, 64, NULL, "head blocks after the connector"},
    {"F", MB_INT, "64", 1, 65536, NULL,
     "hidden width of the dense FFNs of encoder and head blocks"},
    {"Fm", MB_INT, "32", 1, 65536, NULL, "hidden width of each connector expert (mlp2x_gelu)"},
    {"N", MB_INT, "8", 1, 1024, NULL,
     "experts in all (SMoE: N routed; DeepSeek: N-s routed + s shared)"},
    {"K", MB_INT, "4", 1, 1024, NULL, "active experts per token (DeepSeek: K-s routed + s shared)"},
    {"s", MB_INT, "1", 0, 1024, NULL, "shared experts of the DeepSeek variants (paper: 1)"},
    {"combine", MB_STR, "paper", 0, -1, combines,
     "shared/routed combination (paper: 1/2 shared + 1/2 routed)"},
    {"placement", MB_STR, "connector", 0, -1, placements,
     "MoE in the connector only, or also in every encoder FFN"},
    {"steps", MB_INT, "400", 1, 1e8, NULL, "optimizer steps (ignored when epochs > 0)"},
    {"epochs", MB_INT, "0", 0, 1e5, NULL, "epochs over the training part (0: use steps)"},
    {"batch", MB_INT, "64", 1, 4096, NULL, "images per step"},
    {"shift", MB_INT, "0", 0, 8, NULL,
     "augmentation: random shift of each training image by up to this many pixels (0: off)"},
    {"flip", MB_BOOL, "false", 0, -1, NULL,
     "augmentation: mirror each training image left-right with probability 1/2"},
    {"lr", MB_REAL, "0.003", 0, 10, NULL, "peak learning rate (AdamW)"},
    {"min_lr", MB_REAL, "0.1", 0, 1, NULL,
     "final learning rate of the cosine, as a fraction of lr"},
    {"weight_decay", MB_REAL, "0.01", 0, 10, NULL, "AdamW decoupled weight decay"},
    {"warmup", MB_INT, "20", 0, 1e8, NULL, "linear warmup steps (of each phase)"},
    {"clip", MB_REAL, "1", 0, 1e6, NULL, "global gradient-norm clip (0: none)"},
    {"aux", MB_REAL, "0.01", 0, 10, NULL, "balance-loss coefficient (paper: 0.01)"},
    {"zloss", MB_REAL, "0.001", 0, 10, NULL, "router z-loss coefficient (paper: 0.001)"},
    {"bias_gamma", MB_REAL, "0.001", 0, 1, NULL,
     "ds_v3_bias: selection-bias step per training step"},
    {"eval_every", MB_INT, "50", 1, 1e8, NULL, "steps between checkpoints (and one at the end)"},
    {"valid_size", MB_INT, "5000", 10, 30000, NULL,
     "validation images carved from the official training split"},
    {"eval_images", MB_INT, "2000", 0, 30000, NULL,
     "validation images per checkpoint (0: the whole validation split)"},
    {"router_images", MB_INT, "500", 1, 30000, NULL,
     "validation images whose patch tokens enter the router analysis"},
    {"split_seed", MB_INT, "2505", 0, 2147483647, NULL,
     "seed of the train/validation split (the same for every cell)"},
    {"data_seed", MB_INT, "2505", 0, 2147483647, NULL,
     "seed of the epoch shuffles and augmentation (with rep): shared by the variants"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const metrics[] = {
    "test_acc", "test_loss", "valid_acc", "valid_loss", "train_loss", "aux_loss", "images_per_s",
    "train_seconds", "images_per_cpu_s", "train_cpu_seconds", "steps", "peak_rss_mb", "params",
    "active_params", "saturation_first", "change_rate", "jfi_tokens", "jfi_weight",
    "eval_cpu_seconds", "eval_cpu_share", "train_flops", "flops_per_image", "flops_share_connector",
    "flops_share_attention", "flops_share_ffn", "flops_share_embed_head", "params_share_connector",
    "params_share_attention", "params_share_ffn", "params_share_embed_head", "params_share_norms",
    "upcycle_steps", "upcycle_train_loss", "upcycle_valid_acc", "upcycle_valid_loss",
    "upcycle_cpu_seconds", "upcycle_flops",
    /* families: @step */
    "valid_acc@", "valid_loss@", "saturation@", "change_rate@", "jfi_tokens@", "jfi_weight@",
    /* families: @class */
    "class_acc@", "saturation_first_class@", "change_rate_class@", "jfi_tokens_class@", NULL};

/* The cell, parsed once (vision_parse) into the types the library takes. */
typedef struct {
  moe_variant variant;
  moe_combine combine;
  int logreg, upcycle, everywhere, flip;
  const char *data;
  int P, D, H, L, Lh, F, Fm, N, K, S, B, shift;
  long steps, epochs, upcycle_epochs, upcycle_steps, warmup, every, valid_size, eval_images,
      router_images, split_seed, data_seed, rep;
  double lr, min_lr, weight_decay, clip, aux, zloss, bias_gamma;
  uint64_t matrix_seed;
} vision_opts;

#define BAD(key, ...)                                                                              \
  do {                                                                                             \
    *bad = key;                                                                                    \
    snprintf(err, n, __VA_ARGS__);                                                                 \
    return 1;                                                                                      \
  } while (0)

static int vision_parse(const mb_cell *c, vision_opts *o, const char **bad, char *err, size_t n)
{
  memset(o, 0, sizeof *o);
  *bad = NULL;
  if (moe_variant_parse(mb_cell_str(c, "variant"), &o->variant))
    BAD("variant", "%s", moe_last_error());
  if (moe_combine_parse(mb_cell_str(c, "combine"), &o->combine))
    BAD("combine", "%s", moe_last_error());
  o->logreg = !strcmp(mb_cell_str(c, "model"), "logreg");
  o->upcycle = !strcmp(mb_cell_str(c, "init"), "upcycle");
  o->everywhere = !strcmp(mb_cell_str(c, "placement"), "everywhere");
  o->flip = mb_cell_bool(c, "flip");
  o->data = mb_cell_str(c, "data");
  o->P = (int)mb_cell_int(c, "patch");
  o->D = (int)mb_cell_int(c, "D");
  o->H = (int)mb_cell_int(c, "H");
  o->L = (int)mb_cell_int(c, "L");
  o->Lh = (int)mb_cell_int(c, "Lh");
  o->F = (int)mb_cell_int(c, "F");
  o->Fm = (int)mb_cell_int(c, "Fm");
  o->N = (int)mb_cell_int(c, "N");
  o->K = (int)mb_cell_int(c, "K");
  o->S = (int)mb_cell_int(c, "s");
  o->B = (int)mb_cell_int(c, "batch");
  o->shift = (int)mb_cell_int(c, "shift");
  o->steps = mb_cell_int(c, "steps");
  o->epochs = mb_cell_int(c, "epochs");
  o->upcycle_epochs = mb_cell_int(c, "upcycle_epochs");
  o->upcycle_steps = mb_cell_int(c, "upcycle_steps");
  o->warmup = mb_cell_int(c, "warmup");
  o->every = mb_cell_int(c, "eval_every");
  o->valid_size = mb_cell_int(c, "valid_size");
  o->eval_images = mb_cell_int(c, "eval_images");
  o->router_images = mb_cell_int(c, "router_images");
  o->split_seed = mb_cell_int(c, "split_seed");
  o->data_seed = mb_cell_int(c, "data_seed");
  o->lr = mb_cell_real(c, "lr");
  o->min_lr = mb_cell_real(c, "min_lr");
  o->weight_decay = mb_cell_real(c, "weight_decay");
  o->clip = mb_cell_real(c, "clip");
  o->aux = mb_cell_real(c, "aux");
  o->zloss = mb_cell_real(c, "zloss");
  o->bias_gamma = mb_cell_real(c, "bias_gamma");
  o->rep = mb_cell_rep(c);
  o->matrix_seed = mb_cell_matrix_seed(c);
  if (28 % o->P)
    BAD("patch", "patch side %d does not divide the 28x28 image", o->P);
  if (o->D % o->H)
    BAD("H", "H=%d must divide D=%d", o->H, o->D);
  if (o->K > o->N)
    BAD("K", "K=%d must not exceed N=%d", o->K, o->N);
  if (moe_variant_has_shared(o->variant) && o->S >= o->K)
    BAD("s", "s=%d shared experts must be fewer than K=%d (the DeepSeek variants route K-s)", o->S,
        o->K);
  if (!o->epochs && o->warmup > o->steps)
    BAD("warmup", "warmup=%ld must not exceed steps=%ld", o->warmup, o->steps);
  if (o->router_images > o->valid_size)
    BAD("router_images", "router_images=%ld exceeds valid_size=%ld", o->router_images,
        o->valid_size);
  if (o->upcycle && o->logreg)
    BAD("init", "init upcycle needs model transformer (a logistic regression has no connector)");
  if (o->upcycle && o->everywhere)
    BAD("init", "init upcycle upcycles the connector only: needs placement connector");
  if (o->upcycle && !o->upcycle_epochs && !o->upcycle_steps)
    BAD("init", "init upcycle needs a dense phase: set upcycle_epochs or upcycle_steps");
  return 0;
}

static int check(const mb_cell *c, const char **bad, char *err, size_t n)
{
  vision_opts o;
  return vision_parse(c, &o, bad, err, n);
}

static double now_s(clockid_t clk)
{
  struct timespec t;
  clock_gettime(clk, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#define CPU_NOW() now_s(CLOCK_PROCESS_CPUTIME_ID)

static int is_dir(const char *p)
{
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where the data directory is; 1 when it is the system fallback. */
static int data_dir(const char *d, char *out, size_t n)
{
  const char *root = getenv("MOE_DATA_DIR");
  if (d[0] == '/') {
    snprintf(out, n, "%s", d);
    return 0;
  }
  snprintf(out, n, "%s/%s", root && *root ? root : "data", d);
  if (!is_dir(out)) {
    char alt[4200];
    snprintf(alt, sizeof alt, "/usr/share/datasets/%s", d);
    if (is_dir(alt)) {
      snprintf(out, n, "%s", alt);
      return 1;
    }
  }
  return 0;
}

static void metricf(mb_result *r, const char *fam, double at, double v)
{
  char name[96];
  snprintf(name, sizeof name, "%s@%.17g", fam, at);
  mb_result_metric(r, name, v);
}

/* ---- the logistic-regression baseline: logits = x Wᵀ + b ---- */

typedef struct {
  int in, C, max_B, B;
  float *params, *grads; /* W (C, in), b (C) */
  float *x, *logits;     /* (max_B, in), (max_B, C): logits, then dlogits after backward */
  moe_token y[4096];
  double ce;
} logreg;

static void logreg_free(logreg *m)
{
  if (!m)
    return;
  free(m->params);
  free(m->grads);
  free(m->x);
  free(m->logits);
  free(m);
}

static logreg *logreg_alloc(int in, int C, int max_B)
{
  logreg *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->in = in;
  m->C = C;
  m->max_B = max_B;
  m->B = -1;
  const size_t np = (size_t)C * in + C;
  m->params = calloc(np, sizeof *m->params);
  m->grads = calloc(np, sizeof *m->grads);
  m->x = malloc(sizeof *m->x * (size_t)max_B * in);
  m->logits = malloc(sizeof *m->logits * (size_t)max_B * C);
  if (!m->params || !m->grads || !m->x || !m->logits) {
    logreg_free(m);
    return NULL;
  }
  return m;
}

static int logreg_forward(logreg *m, int B, const float *x, const moe_token *y)
{
  const int C = m->C;
  memcpy(m->x, x, sizeof *x * (size_t)B * m->in);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C, m->in, 1, x, m->in, m->params, m->in,
              0, m->logits, C);
  double s = 0;
  for (int b = 0; b < B; b++) {
    float *l = m->logits + (size_t)b * C;
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < C; k++) {
      l[k] += m->params[(size_t)C * m->in + k];
      mx = l[k] > mx ? l[k] : mx;
    }
    for (int k = 0; k < C; k++)
      z += exp((double)l[k] - mx);
    if (!isfinite(mx))
      return moe_error(MOE_EDOM, "logreg forward: logits of image %d are not finite", b);
    s += mx + log(z) - l[y[b]];
    m->y[b] = y[b];
  }
  m->ce = s / B;
  m->B = B;
  return MOE_OK;
}

/* gradients of the mean CE into grads (overwritten); logits become dlogits */
static void logreg_backward(logreg *m)
{
  const int C = m->C, B = m->B;
  for (int b = 0; b < B; b++) {
    float *l = m->logits + (size_t)b * C;
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < C; k++)
      mx = l[k] > mx ? l[k] : mx;
    for (int k = 0; k < C; k++)
      z += exp((double)l[k] - mx);
    for (int k = 0; k < C; k++)
      l[k] = (float)((exp((double)l[k] - mx) / z - ((moe_token)k == m->y[b])) / B);
  }
  float *gb = m->grads + (size_t)C * m->in;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, m->in, B, 1, m->logits, C, m->x, m->in, 0,
              m->grads, m->in);
  for (int k = 0; k < C; k++)
    gb[k] = 0;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < C; k++)
      gb[k] += m->logits[(size_t)b * C + k];
}

/* ---- one model: the transformer or the baseline ---- */

typedef struct {
  moe_vision *v;
  logreg *lr;
} model;

static size_t model_nparams(const model *m)
{
  return m->v ? moe_vision_param_count(m->v) : (size_t)m->lr->C * m->lr->in + m->lr->C;
}

/* forward with labels: CE into *ce, logits (B, C) returned in *logits */
static int model_forward(model *m, int B, const float *x, const moe_token *y, double *ce,
                         const float **logits)
{
  double loss;
  int rc = m->v ? moe_vision_forward(m->v, B, x, y, &loss) : logreg_forward(m->lr, B, x, y);
  if (rc)
    return rc;
  *ce = m->v ? moe_vision_ce_loss(m->v) : m->lr->ce;
  if (logits)
    *logits = m->v ? moe_vision_logits(m->v) : m->lr->logits;
  return MOE_OK;
}

/* backward and optimizer step of the last forward; MOE_EDOM if diverged */
static int model_train_step(model *m, moe_optim *o, const moe_lr_schedule *sched, double clip,
                            double gamma)
{
  int rc;
  if (m->v) {
    double gn;
    moe_vision_zero_grad(m->v);
    if ((rc = moe_vision_backward(m->v)) || (rc = moe_vision_step(m->v, o, sched, clip, &gn)))
      return rc;
    return gamma > 0 ? moe_vision_bias_update(m->v, gamma) : MOE_OK;
  }
  logreg_backward(m->lr);
  return moe_optim_step(o, m->lr->params, m->lr->grads, moe_lr_at(sched, moe_optim_steps(o)));
}

/* ---- data ---- */

typedef struct {
  moe_idx_set *trs, *tes;
  moe_patches pp;
  size_t *tr_idx, *va_idx, *te_idx; /* (ntr), (nval), (tes->n) */
  size_t ntr, nval;
} vision_data;

/* The training stream of one phase: epochs of batches of training images,
 * augmented when asked. */
typedef struct {
  const vision_data *vd;
  moe_batcher *bt;
  size_t per_epoch;
  int B, shift, flip;
  uint64_t aug_seed;
  gsl_rng *r;
  unsigned long epoch;
  uint8_t *img; /* (B, 28, 28) */
  size_t *bidx; /* (B) */
} stream;

static void stream_free(stream *s)
{
  moe_batcher_free(s->bt);
  gsl_rng_free(s->r);
  free(s->img);
  free(s->bidx);
}

static int stream_init(stream *s, const vision_data *vd, const vision_opts *o, const char *phase,
                       char *err, size_t n)
{
  char label[128];
  memset(s, 0, sizeof *s);
  s->vd = vd;
  s->B = o->B;
  s->shift = o->shift;
  s->flip = o->flip;
  s->epoch = (unsigned long)-1;
  snprintf(label, sizeof label, "vision-%s-rep-%ld", phase, o->rep);
  if (!(s->bt =
            moe_batcher_alloc(vd->ntr, (size_t)o->B, moe_seed_derive((uint64_t)o->data_seed, label),
                              MOE_BATCH_DROP_LAST)))
    return snprintf(err, n, "batcher: %s", moe_last_error()), 1;
  snprintf(label, sizeof label, "vision-augment-%s-rep-%ld", phase, o->rep);
  s->aug_seed = moe_seed_derive((uint64_t)o->data_seed, label);
  s->per_epoch = moe_batcher_num_batches(s->bt);
  if (!(s->img = malloc((size_t)o->B * 28 * 28)) ||
      !(s->bidx = malloc(sizeof *s->bidx * (size_t)o->B)))
    return snprintf(err, n, "out of memory (batch of %d images)", o->B), 1;
  return 0;
}

/* The batch of step st (steps in order) into x (B, Np, pd), y (B). */
static int stream_batch(stream *s, long st, float *x, moe_token *y, size_t *nb)
{
  const moe_idx_set *set = s->vd->trs;
  const unsigned long ep = (unsigned long)(st / (long)s->per_epoch);
  int rc;
  if (ep != s->epoch) {
    if ((rc = moe_batcher_epoch(s->bt, ep)))
      return rc;
    s->epoch = ep;
    if (s->shift || s->flip) {
      gsl_rng_free(s->r);
      if (!(s->r = moe_rng_alloc(moe_seed_derive_u64(s->aug_seed, ep))))
        return MOE_ENOMEM;
    }
  }
  const size_t *bi;
  *nb = moe_batcher_batch(s->bt, (size_t)(st % (long)s->per_epoch), &bi);
  for (size_t j = 0; j < *nb; j++)
    s->bidx[j] = s->vd->tr_idx[bi[j]];
  if (!s->shift && !s->flip)
    return moe_idx_set_batch(set, &s->vd->pp, s->bidx, *nb, x, y);
  const size_t hw = set->h * set->w;
  for (size_t j = 0; j < *nb; j++) {
    const int f = s->flip ? (int)gsl_rng_uniform_int(s->r, 2) : 0;
    const int dy =
        s->shift ? (int)gsl_rng_uniform_int(s->r, 2 * (unsigned long)s->shift + 1) - s->shift : 0;
    const int dx =
        s->shift ? (int)gsl_rng_uniform_int(s->r, 2 * (unsigned long)s->shift + 1) - s->shift : 0;
    if ((rc = moe_image_shift_flip(set->pixels + s->bidx[j] * hw, set->h, set->w, dy, dx, f,
                                   s->img + j * hw)))
      return rc;
    y[j] = set->labels[s->bidx[j]];
  }
  return moe_patches_cut(&s->vd->pp, s->img, *nb, NULL, *nb, x);
}

/* ---- evaluation ---- */

/* One pass over images idx[0..n) of a set in batches of B: mean CE,
 * accuracy, per-class correct/count (may be NULL); routing of the
 * connector into `sets` ((n·Np, K), the first n_router images only; may be
 * NULL) and per-expert load / weight over all tokens into load, wsum (E)
 * and per-class load into cload ((10, E)) when given (transformer only);
 * with ev->dump open, every token's routing, one line per patch token
 * "IMAGE PATCH CLASS e_1 .. e_K w_1 .. w_K", IMAGE counted from 0 in the
 * order of idx (moebench(1), ROUTING DUMP). */
typedef struct {
  model *m;
  const moe_idx_set *set;
  const moe_patches *pp;
  int B, Np, E, K;
  float *x;
  moe_token *y;
  double cpu; /* CPU seconds spent here */
  FILE *dump; /* the routing dump (mb_dump_open), or NULL */
} evaluator;

static int evaluate(evaluator *ev, const size_t *idx, size_t n, double *ce, double *acc,
                    double *ccorrect, double *ccount, int *sets, size_t n_router, double *load,
                    double *wsum, double *cload)
{
  const double c0 = CPU_NOW();
  double sce = 0, sc = 0;
  if (load)
    memset(load, 0, sizeof(double) * ev->E);
  if (wsum)
    memset(wsum, 0, sizeof(double) * ev->E);
  if (cload)
    memset(cload, 0, sizeof(double) * 10 * ev->E);
  for (size_t i0 = 0; i0 < n; i0 += (size_t)ev->B) {
    const size_t b = n - i0 < (size_t)ev->B ? n - i0 : (size_t)ev->B;
    int rc = moe_idx_set_batch(ev->set, ev->pp, idx + i0, b, ev->x, ev->y);
    double bce;
    const float *lg;
    if (rc || (rc = model_forward(ev->m, (int)b, ev->x, ev->y, &bce, &lg)))
      return rc;
    sce += bce * (double)b;
    for (size_t j = 0; j < b; j++) {
      int best = 0;
      for (int k = 1; k < 10; k++)
        if (lg[j * 10 + k] > lg[j * 10 + best])
          best = k;
      int hit = (moe_token)best == ev->y[j];
      sc += hit;
      if (ccorrect) {
        ccorrect[ev->y[j]] += hit;
        ccount[ev->y[j]] += 1;
      }
    }
    if (ev->m->v && (load || sets || cload || ev->dump)) {
      const moe_layer *f = moe_vision_connector(ev->m->v);
      const int *ch = moe_layer_chosen(f);
      const float *w = moe_layer_weights(f);
      const size_t nt = b * (size_t)ev->Np;
      for (size_t t = 0; ev->dump && t < nt; t++) {
        fprintf(ev->dump, "%zu %zu %d", i0 + t / (size_t)ev->Np, t % (size_t)ev->Np,
                (int)ev->y[t / (size_t)ev->Np]);
        for (int k = 0; k < ev->K; k++)
          fprintf(ev->dump, " %d", ch[t * ev->K + k]);
        for (int k = 0; k < ev->K; k++)
          fprintf(ev->dump, " %.9g", (double)w[t * ev->K + k]);
        fputc('\n', ev->dump);
      }
      for (size_t t = 0; t < nt; t++) {
        const int cls = ev->y[t / (size_t)ev->Np];
        for (int k = 0; k < ev->K; k++) {
          const int e = ch[t * ev->K + k];
          if (load)
            load[e] += 1;
          if (wsum)
            wsum[e] += w[t * ev->K + k];
          if (cload)
            cload[(size_t)cls * ev->E + e] += 1;
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
  ev->cpu += CPU_NOW() - c0;
  return MOE_OK;
}

/* ---- one training phase ---- */

typedef struct {
  double last_ce, last_aux, train_time, train_cpu;
} phase_out;

/* Train m for `steps` steps of stream s (schedule, clip, bias gamma from
 * o); after each step, at (st+1) % every == 0 or the last step, call
 * the checkpoint hook. Returns 0, MB_RUN_DIVERGED or 1 with err set. */
typedef int (*checkpoint_fn)(void *ctx, long step, char *err, size_t n);

static int train_phase(model *m, stream *s, const vision_opts *o, long steps, double gamma,
                       const char *phase, checkpoint_fn cp, void *ctx, phase_out *out, float *x,
                       moe_token *y, char *err, size_t n)
{
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  oc.weight_decay = o->weight_decay;
  moe_optim *opt = moe_optim_alloc(&oc, model_nparams(m));
  const long warmup = o->warmup < steps ? o->warmup : steps;
  moe_lr_schedule sched = {MOE_LR_WARMUP_COSINE, o->lr, warmup, steps, o->min_lr};
  const double bound = 2 * log(10.0);
  int rc = 1, src;
  if (!opt) {
    snprintf(err, n, "optimizer: %s", moe_last_error());
    return 1;
  }
  if ((m->v && moe_vision_set_threads(m->v, mb_task_threads())) ||
      moe_optim_set_threads(opt, mb_task_threads())) {
    snprintf(err, n, "threads: %s", moe_last_error());
    goto out;
  }
  if (moe_lr_check(&sched)) {
    snprintf(err, n, "schedule: %s", moe_last_error());
    goto out;
  }
  memset(out, 0, sizeof *out);
  out->last_ce = out->last_aux = NAN;
  for (long st = 0; st < steps; st++) {
    size_t nb;
    if (stream_batch(s, st, x, y, &nb)) {
      snprintf(err, n, "%s batch %ld: %s", phase, st + 1, moe_last_error());
      goto out;
    }
    const double t0 = now_s(CLOCK_MONOTONIC), c0 = CPU_NOW();
    double ce;
    if ((src = model_forward(m, (int)nb, x, y, &ce, NULL)) ||
        (src = model_train_step(m, opt, &sched, o->clip, gamma))) {
      snprintf(err, n, "%s step %ld: %s%s", phase, st + 1,
               src == MOE_EDOM ? "training diverged: " : "", moe_last_error());
      rc = src == MOE_EDOM ? MB_RUN_DIVERGED : 1;
      goto out;
    }
    out->train_time += now_s(CLOCK_MONOTONIC) - t0;
    out->train_cpu += CPU_NOW() - c0;
    out->last_ce = ce;
    out->last_aux = m->v ? moe_vision_aux_loss(m->v) : 0;
    if (!isfinite(ce) || ce > bound) {
      snprintf(err, n, "%s step %ld: training diverged: cross-entropy %g nats %s 2 ln 10 = %.4g",
               phase, st + 1, ce, isfinite(ce) ? "above" : "is not finite; bound", bound);
      rc = MB_RUN_DIVERGED;
      goto out;
    }
    if (cp && ((st + 1) % o->every == 0 || st + 1 == steps) && (src = cp(ctx, st + 1, err, n))) {
      rc = src;
      goto out;
    }
  }
  rc = 0;
out:
  moe_optim_free(opt);
  return rc;
}

/* ---- the checkpoints of the main phase ---- */

typedef struct {
  evaluator *ev;
  mb_result *res;
  const vision_data *vd;
  size_t neval, nrouter, per_cp;
  int routed, cp;
  int *sets;
  double *jt, *jw, *load, *wsum;
} checkpoints;

static int checkpoint(void *p, long step, char *err, size_t n)
{
  checkpoints *k = p;
  double vce, vacc;
  const int E = k->ev->E;
  if (k->ev->dump)
    fprintf(k->ev->dump, "checkpoint %ld\n", step);
  if (evaluate(k->ev, k->vd->va_idx, k->neval, &vce, &vacc, NULL, NULL,
               k->routed ? k->sets + (size_t)k->cp * k->per_cp : NULL, k->nrouter,
               k->routed ? k->load : NULL, k->routed ? k->wsum : NULL, NULL)) {
    snprintf(err, n, "eval at step %ld: %s", step, moe_last_error());
    return 1;
  }
  metricf(k->res, "valid_acc", (double)step, vacc);
  metricf(k->res, "valid_loss", (double)step, vce);
  if (!isfinite(vce)) {
    snprintf(err, n, "step %ld: training diverged: validation cross-entropy is not finite", step);
    return MB_RUN_DIVERGED;
  }
  if (k->routed) {
    if (moe_metrics_jain(k->load, (size_t)E, &k->jt[k->cp]))
      k->jt[k->cp] = NAN;
    if (moe_metrics_jain(k->wsum, (size_t)E, &k->jw[k->cp]))
      k->jw[k->cp] = NAN;
    metricf(k->res, "jfi_tokens", (double)step, k->jt[k->cp]);
    metricf(k->res, "jfi_weight", (double)step, k->jw[k->cp]);
  }
  k->cp++;
  return 0;
}

/* Router metrics over the checkpoints (connector, probe tokens). */
static int router_metrics(const checkpoints *k, int ncp, long every, long steps, const int *cls_of,
                          int Np, int Kr, int E, mb_result *res)
{
  const int *sets = k->sets;
  const size_t nrouter = k->nrouter, per_cp = k->per_cp, ntok = nrouter * (size_t)Np;
  const int *fin = sets + (size_t)(ncp - 1) * per_cp;
  double sum_cr = 0;
  for (int j = 0; j < ncp; j++) {
    const long at = (j + 1) * every < steps ? (j + 1) * every : steps;
    double v;
    moe_metrics_saturation(sets + (size_t)j * per_cp, fin, ntok, Kr, E, &v);
    if (j < ncp - 1)
      metricf(res, "saturation", (double)at, 100 * v);
    if (j == 0)
      mb_result_metric(res, "saturation_first", 100 * v);
    if (j > 0) {
      moe_metrics_change_rate(sets + (size_t)(j - 1) * per_cp, sets + (size_t)j * per_cp, ntok, Kr,
                              E, &v);
      metricf(res, "change_rate", (double)at, 100 * v);
      sum_cr += v;
    }
  }
  if (ncp > 1)
    mb_result_metric(res, "change_rate", 100 * sum_cr / (ncp - 1));
  mb_result_metric(res, "jfi_tokens", k->jt[ncp - 1]);
  mb_result_metric(res, "jfi_weight", k->jw[ncp - 1]);
  /* per class: the probe tokens of that class's images */
  int *a = malloc(sizeof *a * per_cp), *b = malloc(sizeof *b * per_cp),
      *f = malloc(sizeof *f * per_cp);
  if (!a || !b || !f) {
    free(a);
    free(b);
    free(f);
    return 1;
  }
  const size_t row = (size_t)Np * Kr;
  for (int cl = 0; cl < 10; cl++) {
    size_t nt = 0;
    for (size_t i = 0; i < nrouter; i++)
      if (cls_of[i] == cl) {
        memcpy(f + nt * Kr, fin + i * row, row * sizeof *f);
        nt += (size_t)Np;
      }
    if (!nt)
      continue;
    double v, cr = 0;
    /* saturation at the first checkpoint, mean change rate */
    for (int j = 0; j < ncp; j++) {
      size_t q = 0;
      for (size_t i = 0; i < nrouter; i++)
        if (cls_of[i] == cl) {
          memcpy(b + q * Kr, sets + (size_t)j * per_cp + i * row, row * sizeof *b);
          q += (size_t)Np;
        }
      if (j == 0) {
        moe_metrics_saturation(b, f, nt, Kr, E, &v);
        metricf(res, "saturation_first_class", cl, 100 * v);
      } else {
        moe_metrics_change_rate(a, b, nt, Kr, E, &v);
        cr += v;
      }
      int *t = a;
      a = b;
      b = t;
    }
    if (ncp > 1)
      metricf(res, "change_rate_class", cl, 100 * cr / (ncp - 1));
  }
  free(a);
  free(b);
  free(f);
  return 0;
}

/* ---- the dense phase's cache ----
 * With $MOEBENCH_VISION_CACHE naming a directory, the dense phase of init
 * upcycle is written there once computed and read back by the next cell
 * that needs the same one, instead of being recomputed: the same bits
 * either way (the parameters and the phase's metrics are stored exactly).
 * File dense-<key>.bin, key = SHA-256 of the text below (every setting
 * the phase depends on, the data fingerprint, the library version and the
 * BLAS kernel, whose bits differ between kernels); written to a temporary
 * file, fsync'd and renamed. Format, little-endian: "MBVDENS1", u64
 * parameter count n, u64 steps, f64 train loss, valid loss, valid accuracy,
 * n f32 parameters, then the SHA-256 of all that. A file that does not
 * check out is recomputed and replaced. */

typedef struct {
  uint64_t steps;
  double train_ce, valid_ce, valid_acc;
} dense_summary;

static void dense_key(const vision_opts *o, const mb_result *res, long dsteps, char hex[65])
{
  const char *fp = "";
  for (size_t i = 0; i < mb_result_nnotes(res); i++)
    if (!strcmp(mb_result_note_key_at(res, i), "data_sha256"))
      fp = mb_result_note_at(res, i);
  char t[2048];
  int n = snprintf(
      t, sizeof t,
      "moebench vision dense phase 1\nlibmoe %s\nblas %s\ndata %s\nP %d D %d H %d L %d Lh %d F %d "
      "Fm %d\n"
      "steps %ld B %d shift %d flip %d\nlr %.17g min_lr %.17g wd %.17g warmup %ld clip %.17g\n"
      "split_seed %ld data_seed %ld valid_size %ld eval_images %ld\nmatrix_seed %llu rep %ld\n",
      moe_version(), moe_blas_corename(), fp, o->P, o->D, o->H, o->L, o->Lh, o->F, o->Fm, dsteps,
      o->B, o->shift, o->flip, o->lr, o->min_lr, o->weight_decay, o->warmup, o->clip, o->split_seed,
      o->data_seed, o->valid_size, o->eval_images, (unsigned long long)o->matrix_seed, o->rep);
  moei_sha256_hex(t, (size_t)n, hex);
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
  for (int i = 0; i < bytes; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_le(const unsigned char *p, int bytes)
{
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* The serialised phase: header (48 bytes), parameters, checksum. */
static unsigned char *dense_pack(const float *p, size_t n, const dense_summary *d, size_t *len)
{
  *len = 48 + 4 * n + 32;
  unsigned char *b = malloc(*len);
  if (!b)
    return NULL;
  memcpy(b, "MBVDENS1", 8);
  put_le(b + 8, n, 8);
  put_le(b + 16, d->steps, 8);
  const double v[3] = {d->train_ce, d->valid_ce, d->valid_acc};
  for (int i = 0; i < 3; i++) {
    uint64_t u;
    memcpy(&u, &v[i], 8);
    put_le(b + 24 + 8 * i, u, 8);
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &p[i], 4);
    put_le(b + 48 + 4 * i, u, 4);
  }
  moei_sha256 h;
  moei_sha256_init(&h);
  moei_sha256_update(&h, b, 48 + 4 * n);
  moei_sha256_final(&h, b + 48 + 4 * n);
  return b;
}

/* 1 when the cache held this phase (p and d filled), else 0. */
static int dense_load(const char *path, float *p, size_t n, dense_summary *d)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  const size_t len = 48 + 4 * n + 32;
  unsigned char *b = malloc(len + 1), sum[32];
  size_t got = b ? fread(b, 1, len + 1, f) : 0;
  fclose(f);
  int okf = 0;
  if (got == len && !memcmp(b, "MBVDENS1", 8) && get_le(b + 8, 8) == n) {
    moei_sha256 h;
    moei_sha256_init(&h);
    moei_sha256_update(&h, b, 48 + 4 * n);
    moei_sha256_final(&h, sum);
    okf = !memcmp(sum, b + 48 + 4 * n, 32);
  }
  if (okf) {
    double v[3];
    for (int i = 0; i < 3; i++) {
      uint64_t u = get_le(b + 24 + 8 * i, 8);
      memcpy(&v[i], &u, 8);
    }
    d->steps = get_le(b + 16, 8);
    d->train_ce = v[0];
    d->valid_ce = v[1];
    d->valid_acc = v[2];
    for (size_t i = 0; i < n; i++) {
      uint32_t u = (uint32_t)get_le(b + 48 + 4 * i, 4);
      memcpy(&p[i], &u, 4);
    }
  }
  free(b);
  return okf;
}

/* Write atomically (temporary file, fsync, rename); 0 or 1 with err set. */
static int dense_store(const char *path, const float *p, size_t n, const dense_summary *d,
                       char *err, size_t en)
{
  size_t len;
  unsigned char *b = dense_pack(p, n, d, &len);
  char tmp[4600];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = b ? fopen(tmp, "wb") : NULL;
  int bad = !f || fwrite(b, 1, len, f) != len || fflush(f) || fsync(fileno(f));
  if (f && fclose(f))
    bad = 1;
  if (!bad && rename(tmp, path))
    bad = 1;
  if (bad) {
    snprintf(err, en, "dense-phase cache %s: cannot write (%s)", tmp,
             b ? "disk full or not writable?" : "out of memory");
    unlink(tmp);
  }
  free(b);
  return bad;
}

/* ---- the cell ---- */

/* The connector (or, with moe_everywhere, every MoE FFN) of a variant. */
static int connector_config(const vision_opts *o, moe_variant v, moe_variant_sizes sz,
                            moe_layer_config *moe)
{
  if (moe_layer_config_for(moe, v, sz))
    return 1;
  moe->expert.act = MOE_ACT_GELU;
  moe->combine = o->combine;
  moe->balance_coef = moe_variant_is_dense(v) ? 0 : o->aux;
  moe->zloss_coef = moe_variant_is_dense(v) ? 0 : o->zloss;
  return 0;
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    goto out;                                                                                      \
  } while (0)

static int run(const mb_cell *c, uint64_t seed, mb_result *res, char *err, size_t errlen)
{
  /* training draws from the matrix seed and the replication (see the
   * top); the cell's seed only names the routing dump */
  int rc = 1, prc;
  const char *bad;
  vision_opts o;
  if (vision_parse(c, &o, &bad, err, errlen))
    return 1;
  vision_data vd = {0};
  moe_batcher *split = NULL;
  stream s = {0}, sd = {0};
  model m = {0}, md = {0};
  float *x = NULL;
  moe_token *y = NULL;
  int *cls_of = NULL;
  checkpoints k = {0};
  double *cload = NULL;
  FILE *dump = NULL;
  char dump_path[4400];
  const int B = o.B, dense = moe_variant_is_dense(o.variant);
  const double c_start = CPU_NOW();
  char dir[4400];

  /* data, and its fingerprint */
  const int fallback = data_dir(o.data, dir, sizeof dir);
  if (moe_idx_set_load_dir(dir, "train", &vd.trs) || moe_idx_set_load_dir(dir, "test", &vd.tes))
    FAIL("%s (fetch Fashion-MNIST with `make image-data`; it needs the Debian package "
         "dataset-fashion-mnist)",
         moe_last_error());
  {
    static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char paths[4][4500];
    const char *fp[4];
    for (int i = 0; i < 4; i++) { /* the file moe_idx_set_load_dir read: .gz first */
      struct stat st;
      snprintf(paths[i], sizeof paths[i], "%s/%s.gz", dir, names[i]);
      if (stat(paths[i], &st))
        snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
      fp[i] = paths[i];
    }
    if (mb_result_fingerprint(res, fp, 4, err, errlen))
      goto out;
    mb_result_note(res, "data_dir", dir);
    if (fallback)
      mb_result_note(
          res, "data_source",
          "system fallback /usr/share/datasets (not found under $MOE_DATA_DIR or ./data)");
  }
  if (vd.trs->h != 28 || vd.trs->w != 28 || vd.tes->h != 28 || vd.tes->w != 28 ||
      vd.trs->num_classes != 10)
    FAIL("%s: expected 28x28 images in 10 classes, got %zux%zu", dir, vd.trs->h, vd.trs->w);
  vd.nval = (size_t)o.valid_size;
  if (vd.nval >= vd.trs->n)
    FAIL("valid_size=%zu leaves no training images (%zu in all)", vd.nval, vd.trs->n);
  double pmean, pstd;
  if (moe_idx_set_pixel_stats(vd.trs, &pmean, &pstd))
    FAIL("%s", moe_last_error());
  if (moe_patches_init(&vd.pp, 28, 28, (size_t)o.P, MOE_PATCH_STANDARD, pmean, pstd))
    FAIL("%s", moe_last_error());
  /* the split: one shuffle of 0..n-1 from split_seed, validation first */
  if (!(split =
            moe_batcher_alloc(vd.trs->n, vd.trs->n, (uint64_t)o.split_seed, MOE_BATCH_KEEP_LAST)) ||
      moe_batcher_epoch(split, 0))
    FAIL("split: %s", moe_last_error());
  const size_t *perm;
  moe_batcher_batch(split, 0, &perm);
  vd.ntr = vd.trs->n - vd.nval;
  if (!(vd.va_idx = malloc(sizeof *vd.va_idx * vd.nval)) ||
      !(vd.tr_idx = malloc(sizeof *vd.tr_idx * vd.ntr)) ||
      !(vd.te_idx = malloc(sizeof *vd.te_idx * vd.tes->n)))
    FAIL("out of memory (split indices)");
  memcpy(vd.va_idx, perm, sizeof *vd.va_idx * vd.nval);
  memcpy(vd.tr_idx, perm + vd.nval, sizeof *vd.tr_idx * vd.ntr);
  for (size_t i = 0; i < vd.tes->n; i++)
    vd.te_idx[i] = i;
  if ((size_t)B > vd.ntr)
    FAIL("batch=%d exceeds the %zu training images", B, vd.ntr);
  if (stream_init(&s, &vd, &o, "epochs", err, errlen))
    goto out;
  const long steps = o.epochs > 0 ? o.epochs * (long)s.per_epoch : o.steps;
  const long every = o.every;
  const int ncp = (int)((steps + every - 1) / every);

  /* model: initial values from the matrix seed and the replication */
  const uint64_t init_seed =
      moe_seed_derive_u64(moe_seed_derive(o.matrix_seed, "vision-init"), (uint64_t)o.rep);
  moe_layer_config moe;
  moe_vision_config cfg;
  int Np = (28 / o.P) * (28 / o.P), pd = o.P * o.P;
  const moe_variant_sizes sz = {.D = o.D, .F = o.Fm, .N = o.N, .K = o.K, .shared = o.S};
  if (connector_config(&o, o.variant, sz, &moe))
    FAIL("variant: %s", moe_last_error());
  cfg = moe_vision_config_make(28, 28, o.P, 10, o.D, o.H, o.L, o.Lh, o.F, &moe);
  cfg.moe_everywhere = o.everywhere;
  if (o.logreg) {
    if (!(m.lr = logreg_alloc(Np * pd, 10, B)))
      FAIL("out of memory (logistic regression)");
  } else {
    if (moe_vision_check(&cfg))
      FAIL("model: %s", moe_last_error());
    if (!(m.v = moe_vision_alloc(&cfg, B)))
      FAIL("model: %s", moe_last_error());
    if (moe_vision_init_params_keyed(m.v, init_seed))
      FAIL("init: %s", moe_last_error());
  }
  if (!(x = malloc(sizeof *x * (size_t)B * Np * pd)) || !(y = malloc(sizeof *y * (size_t)B)))
    FAIL("out of memory (batch of %d images)", B);

  /* the evaluation records */
  const int routed = !dense && !o.logreg;
  const int E = moe.E, Kr = moe.K;
  size_t neval = (size_t)o.eval_images;
  if (neval == 0 || neval > vd.nval)
    neval = vd.nval;
  size_t nrouter = (size_t)o.router_images;
  if (nrouter > neval)
    nrouter = neval;
  evaluator ev = {&m, vd.trs, &vd.pp, B, Np, E, Kr, x, y, 0, NULL};
  k = (checkpoints){&ev,  res,  &vd,  neval, nrouter, nrouter * (size_t)Np * Kr, routed, 0,
                    NULL, NULL, NULL, NULL,  NULL};
  if (!(k.sets = malloc(sizeof *k.sets * (k.per_cp ? k.per_cp : 1) * (size_t)ncp)) ||
      !(cls_of = malloc(sizeof *cls_of * (nrouter ? nrouter : 1))) ||
      !(k.jt = calloc((size_t)ncp, sizeof *k.jt)) || !(k.jw = calloc((size_t)ncp, sizeof *k.jw)) ||
      !(k.load = malloc(sizeof *k.load * E)) || !(k.wsum = malloc(sizeof *k.wsum * E)) ||
      !(cload = malloc(sizeof *cload * 10 * E)))
    FAIL("out of memory (router records)");
  for (size_t i = 0; i < nrouter; i++)
    cls_of[i] = vd.trs->labels[vd.va_idx[i]];

  /* sparse upcycling: the dense-connector phase, then copies of its MLP */
  if (o.upcycle) {
    moe_layer_config mlp;
    if (connector_config(&o, MOE_VARIANT_DENSE,
                         (moe_variant_sizes){.D = o.D, .F = o.Fm, .N = 1, .K = 1}, &mlp))
      FAIL("dense connector: %s", moe_last_error());
    moe_vision_config dcfg =
        moe_vision_config_make(28, 28, o.P, 10, o.D, o.H, o.L, o.Lh, o.F, &mlp);
    if (!(md.v = moe_vision_alloc(&dcfg, B)) || moe_vision_init_params_keyed(md.v, init_seed))
      FAIL("dense-connector model: %s", moe_last_error());
    if (stream_init(&sd, &vd, &o, "dense", err, errlen))
      goto out;
    const long dsteps =
        o.upcycle_epochs > 0 ? o.upcycle_epochs * (long)sd.per_epoch : o.upcycle_steps;
    const double c0 = CPU_NOW();
    const char *cdir = getenv("MOEBENCH_VISION_CACHE");
    char cpath[4400] = "";
    dense_summary ds = {(uint64_t)dsteps, NAN, NAN, NAN};
    if (cdir && *cdir) {
      char key[65];
      dense_key(&o, res, dsteps, key);
      snprintf(cpath, sizeof cpath, "%s/dense-%s.bin", cdir, key);
    }
    if (*cpath && dense_load(cpath, moe_vision_params(md.v), moe_vision_param_count(md.v), &ds)) {
      mb_result_note(res, "upcycle_cache", "read");
    } else {
      phase_out po;
      if ((prc = train_phase(&md, &sd, &o, dsteps, 0, "dense phase", NULL, NULL, &po, x, y, err,
                             errlen))) {
        rc = prc;
        goto out;
      }
      evaluator dev = ev;
      dev.m = &md;
      if (evaluate(&dev, vd.va_idx, neval, &ds.valid_ce, &ds.valid_acc, NULL, NULL, NULL, 0, NULL,
                   NULL, NULL))
        FAIL("dense phase eval: %s", moe_last_error());
      ev.cpu += dev.cpu;
      ds.train_ce = po.last_ce;
      if (!isfinite(ds.valid_ce)) {
        snprintf(err, errlen,
                 "dense phase: training diverged: validation cross-entropy is not finite");
        rc = MB_RUN_DIVERGED;
        goto out;
      }
      if (*cpath) {
        if (dense_store(cpath, moe_vision_params(md.v), moe_vision_param_count(md.v), &ds, err,
                        errlen))
          goto out;
        mb_result_note(res, "upcycle_cache", "written");
      }
    }
    moe_vision_parts dfl;
    moe_vision_flops_parts(&dcfg, &dfl);
    mb_result_metric(res, "upcycle_steps", (double)dsteps);
    mb_result_metric(res, "upcycle_train_loss", ds.train_ce);
    mb_result_metric(res, "upcycle_valid_acc", ds.valid_acc);
    mb_result_metric(res, "upcycle_valid_loss", ds.valid_ce);
    mb_result_metric(res, "upcycle_cpu_seconds", CPU_NOW() - c0);
    mb_result_metric(res, "upcycle_flops", 3 * dfl.total * (double)dsteps * B);
    if (moe_vision_upcycle(m.v, md.v))
      FAIL("upcycle: %s", moe_last_error());
    moe_vision_free(md.v);
    md.v = NULL;
  }

  /* the routing dump: the connector's routing at every checkpoint and in
   * the final pass over the validation split */
  if (routed) {
    if (!(dump = mb_dump_open("vision", seed, dump_path, sizeof dump_path, err, errlen)) && *err)
      goto out;
    ev.dump = dump;
    if (dump)
      fprintf(dump, "experts %d k %d patches %d router_images %zu images %zu valid_images %zu\n", E,
              Kr, Np, nrouter, neval, vd.nval);
  }

  /* training */
  phase_out po;
  const double gamma = moe_variant_uses_bias(o.variant) && !o.logreg ? o.bias_gamma : 0;
  if ((prc = train_phase(&m, &s, &o, steps, gamma, o.upcycle ? "fine-tune" : "training", checkpoint,
                         &k, &po, x, y, err, errlen))) {
    rc = prc;
    goto out;
  }
  if (routed && ncp > 0 && nrouter > 0 &&
      router_metrics(&k, ncp, every, steps, cls_of, Np, Kr, E, res))
    FAIL("out of memory (router metrics)");

  /* final: the validation split (routing per class) and the official test set */
  double fce, facc, tce, tacc, ccorrect[10] = {0}, ccount[10] = {0};
  if (ev.dump)
    fprintf(ev.dump, "final\n");
  if (evaluate(&ev, vd.va_idx, vd.nval, &fce, &facc, NULL, NULL, NULL, 0, NULL, NULL,
               routed ? cload : NULL))
    FAIL("final valid: %s", moe_last_error());
  ev.dump = NULL;
  if (routed)
    for (int cl = 0; cl < 10; cl++) {
      double v;
      if (!moe_metrics_jain(cload + (size_t)cl * E, (size_t)E, &v))
        metricf(res, "jfi_tokens_class", cl, v);
    }
  ev.set = vd.tes;
  if (evaluate(&ev, vd.te_idx, vd.tes->n, &tce, &tacc, ccorrect, ccount, NULL, 0, NULL, NULL, NULL))
    FAIL("test: %s", moe_last_error());
  if (!isfinite(fce) || !isfinite(tce)) {
    snprintf(err, errlen, "final evaluation: training diverged: %s cross-entropy is not finite",
             isfinite(fce) ? "test" : "validation");
    rc = MB_RUN_DIVERGED;
    goto out;
  }
  for (int cl = 0; cl < 10; cl++)
    if (ccount[cl] > 0)
      metricf(res, "class_acc", cl, ccorrect[cl] / ccount[cl]);

  /* FLOPs and parameters by component: the library's one count */
  const double nimg = (double)steps * B;
  const size_t np = model_nparams(&m);
  double fwd, active = (double)np;
  if (o.logreg) {
    fwd = 2.0 * Np * pd * 10;
  } else {
    moe_vision_parts fl, pa;
    if (moe_vision_flops_parts(&cfg, &fl) || moe_vision_param_parts(&cfg, &pa))
      FAIL("flops: %s", moe_last_error());
    fwd = fl.total;
    mb_result_metric(res, "flops_share_connector", (fl.router + fl.experts) / fl.total);
    mb_result_metric(res, "flops_share_attention", fl.attention / fl.total);
    mb_result_metric(res, "flops_share_ffn", fl.ffn / fl.total);
    mb_result_metric(res, "flops_share_embed_head", (fl.embed + fl.classifier) / fl.total);
    mb_result_metric(res, "params_share_connector", (pa.router + pa.experts) / pa.total);
    mb_result_metric(res, "params_share_attention", pa.attention / pa.total);
    mb_result_metric(res, "params_share_ffn", pa.ffn / pa.total);
    mb_result_metric(res, "params_share_embed_head", (pa.embed + pa.classifier) / pa.total);
    mb_result_metric(res, "params_share_norms", pa.norms / pa.total);
    /* active parameters: all but the routed experts not chosen */
    active -= (double)(E - Kr) * (double)moe_expert_param_count(&moe.expert, o.D) *
              (o.everywhere ? 1 + o.L : 1);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  mb_result_metric(res, "test_acc", tacc);
  mb_result_metric(res, "test_loss", tce);
  mb_result_metric(res, "valid_acc", facc);
  mb_result_metric(res, "valid_loss", fce);
  mb_result_metric(res, "train_loss", po.last_ce);
  mb_result_metric(res, "aux_loss", po.last_aux);
  mb_result_metric(res, "train_seconds", po.train_time);
  mb_result_metric(res, "images_per_s", nimg / po.train_time);
  mb_result_metric(res, "train_cpu_seconds", po.train_cpu);
  mb_result_metric(res, "images_per_cpu_s", nimg / po.train_cpu);
  mb_result_metric(res, "steps", (double)steps);
  mb_result_metric(res, "flops_per_image", 3 * fwd);
  mb_result_metric(res, "train_flops", 3 * fwd * nimg);
  mb_result_metric(res, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);
  mb_result_metric(res, "params", (double)np);
  mb_result_metric(res, "active_params", active);
  mb_result_metric(res, "eval_cpu_seconds", ev.cpu);
  mb_result_metric(res, "eval_cpu_share", ev.cpu / (CPU_NOW() - c_start));
  rc = 0;
out:
  /* a diverged run keeps the checkpoints it reached */
  if (dump &&
      mb_dump_close(dump, dump_path, rc == 0 || rc == MB_RUN_DIVERGED, res, rc ? NULL : err,
                    rc ? 0 : errlen) &&
      rc == 0)
    rc = 1;
  moe_idx_set_free(vd.trs);
  moe_idx_set_free(vd.tes);
  moe_batcher_free(split);
  stream_free(&s);
  stream_free(&sd);
  moe_vision_free(m.v);
  moe_vision_free(md.v);
  logreg_free(m.lr);
  free(x);
  free(y);
  free(vd.tr_idx);
  free(vd.va_idx);
  free(vd.te_idx);
  free(k.sets);
  free(cls_of);
  free(k.jt);
  free(k.jw);
  free(k.load);
  free(k.wsum);
  free(cload);
  return rc;
}

const mb_task mb_task_vision = {
    "vision",
    "a patch transformer with an MoE connector on Fashion-MNIST: test accuracy, router analysis",
    params,
    metrics,
    check,
    run,
};
