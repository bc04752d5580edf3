/* SPDX-License-Identifier: GPL-3.0-or-later */
/* internal.h — helpers shared by libmoe's sources; not installed. */
#ifndef MOE_INTERNAL_H
#define MOE_INTERNAL_H

#include <stddef.h>
#include "moe/error.h"

/* 64-byte aligned allocation (zeroed); free with moei_free_aligned. */
void *moei_alloc_aligned(size_t bytes);
void moei_free_aligned(void *p);

/* Look name up in the NULL-terminated names; *out = its index. Unknown:
 * MOE_EINVAL with "unknown WHAT 'name' (known: a, b, ...)". The parsers of
 * the public enums (activation, expert kind, combine rule ...) use it, so
 * their tables are the single source of the accepted spellings. */
int moei_parse_name(const char *what, const char *name, const char *const *names, int *out);

#define MOE_CHECK_ARG(cond, ...) \
  do { if (!(cond)) return moe_error(MOE_EINVAL, __VA_ARGS__); } while (0)

/* Unchecked expert kernels (expert_impl.h) for the MoE layer, which sizes
 * its own buffers; float and double. */
#include "moe/expert.h"
void moei_expert_fwd(const moe_expert_config *cfg, int D, const float *p, int N, const float *x,
                     float *cache, float *y);
void moei_expert_bwd(const moe_expert_config *cfg, int D, const float *p, int N, const float *x,
                     const float *cache, const float *dy, float *g, float *dx, float *work);
void moei_expert_fwd_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                         const double *x, double *cache, double *y);
void moei_expert_bwd_f64(const moe_expert_config *cfg, int D, const double *p, int N,
                         const double *x, const double *cache, const double *dy, double *g,
                         double *dx, double *work);

/* The MoE layer on a caller's parameter and gradient slabs (layer_impl.h):
 * its own are freed, the caller's are used as they are and never freed. */
#include "moe/layer.h"
void moei_layer_adopt(moe_layer *l, float *params, float *grads);
void moei_layer_adopt_f64(moe_layer_f64 *l, double *params, double *grads);

#endif
