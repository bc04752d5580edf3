/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/optim.h — SGD and AdamW over a flat float slab, and learning-rate
 * schedules.
 *
 * Both optimizers reproduce PyTorch's update rules (torch.optim.SGD with
 * dampening 0, torch.optim.AdamW without amsgrad), so a PyTorch training
 * curve can be matched step for step:
 *
 *   SGD    g ← g + wd·p                     (L2, coupled, as torch.optim.SGD)
 *          b ← g (first step), b ← μ·b + g (later)       when μ > 0
 *          g ← g + μ·b (nesterov) or g ← b
 *          p ← p − lr·g
 *   AdamW  p ← p·(1 − lr·wd)                decoupled, BEFORE the Adam step
 *          m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
 *          p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * The state (momentum, moments, step count t) is owned by the optimizer;
 * parameters and gradients are the caller's slabs (e.g.
 * moe_layer_params / moe_layer_grads), which must not overlap.
 *
 * The float optimizer rounds the scalars (lr·wd, β, ε, the bias
 * corrections) to float once per step and computes in float, as PyTorch
 * does for float tensors. (The library's internal double twin of the
 * optimizer computes in double, for its gradient-checked training
 * loops.)
 *
 * The update is one fused pass over the slabs, element by element, so its
 * result does not depend on n, alignment or vector width. */
#ifndef MOE_OPTIM_H
#define MOE_OPTIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MOE_OPTIM_SGD = 0, MOE_OPTIM_ADAMW = 1 } moe_optim_kind;

typedef struct {
  moe_optim_kind kind;
  double weight_decay; /* >= 0 */
  double momentum;     /* SGD: μ in [0, 1) */
  int nesterov;        /* SGD: requires μ > 0 */
  double beta1, beta2; /* AdamW: in [0, 1) */
  double eps;          /* AdamW: > 0 */
} moe_optim_config;

/* PyTorch's defaults: SGD μ=0, wd=0; AdamW β=(0.9, 0.999), ε=1e-8, wd=0.01. */
moe_optim_config moe_optim_defaults(moe_optim_kind kind);

/* Parse "sgd" | "adamw" (for YAML). */
int moe_optim_kind_parse(const char *name, moe_optim_kind *kind);

/* MOE_EINVAL unless every field is in range. */
int moe_optim_check(const moe_optim_config *cfg);

typedef struct moe_optim moe_optim;

/* An optimizer for n parameters, zero state. NULL on failure: MOE_EINVAL
 * for a bad config, MOE_ENOMEM when memory is short or the state's size
 * (n floats, twice for AdamW) does not fit a size_t. */
moe_optim *moe_optim_alloc(const moe_optim_config *cfg, size_t n);
void moe_optim_free(moe_optim *o);

/* One update of params (n) from grads (n) with learning rate lr (>= 0,
 * finite), e.g. lr = moe_lr_at(&sched, moe_optim_steps(o)). grads are not
 * modified. All or nothing: MOE_EDOM, with nothing changed (parameters,
 * moments, step count), if lr, any of the n gradients or any of the n
 * parameters is NaN or infinite (the message names the first index);
 * MOE_EINVAL for lr < 0 or a NULL buffer. The finiteness scan reads both
 * slabs once before the update. An update of finite values that overflows
 * is not detected here (the next step refuses the parameters). */
int moe_optim_step(moe_optim *o, float *params, const float *grads, double lr);

/* Steps taken so far (t in the formulas above, before the next step). */
long moe_optim_steps(const moe_optim *o);
/* Threads for AdamW's update, 1..MOE_THREADS_MAX (1 by default): the
 * slab in chunks of 16384 scalars, element-wise, so every thread count
 * gives the bits of one thread (SGD stays on one). MOE_EINVAL out of
 * range. */
#define MOE_THREADS_MAX 1024 /* as in moe/layer.h */
int moe_optim_set_threads(moe_optim *o, int n);

/* Forget the state (moments, momentum, step count). */
void moe_optim_reset(moe_optim *o);

/* Learning-rate schedules, a function of the 0-based step s:
 *   MOE_LR_CONSTANT        lr
 *   MOE_LR_WARMUP_COSINE   lr·(s+1)/W                               s < W
 *                          lr·(m + (1−m)·½(1 + cos(π·q))),          s >= W
 *                            q = min(1, (s−W)/max(1, total−W)), m = min_ratio
 *   so warmup reaches lr at s = W−1, the decay starts at lr at s = W and
 *   ends at m·lr at s = total and after (total == W: lr at W, m·lr after). */
typedef enum { MOE_LR_CONSTANT = 0, MOE_LR_WARMUP_COSINE = 1 } moe_lr_kind;

typedef struct {
  moe_lr_kind kind;
  double lr;        /* peak rate, > 0 */
  long warmup;      /* W >= 0 */
  long total;       /* total steps, >= W */
  double min_ratio; /* m in [0, 1] */
} moe_lr_schedule;

/* Parse "constant" | "warmup_cosine" (for YAML). */
int moe_lr_kind_parse(const char *name, moe_lr_kind *kind);

int moe_lr_check(const moe_lr_schedule *s);
/* The rate at step (a negative step is treated as 0). */
double moe_lr_at(const moe_lr_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif
