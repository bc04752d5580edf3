/* SPDX-License-Identifier: GPL-3.0-or-later */
/* internal.h — helpers shared by libmoe's sources; not installed. */
#ifndef MOE_INTERNAL_H
#define MOE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "moe/error.h"

/* 64-byte aligned allocation (zeroed); free with moei_free_aligned. NULL
 * when bytes rounded up to 64 would not fit a size_t (no wrap to a small
 * buffer) or memory is short. */
void *moei_alloc_aligned(size_t bytes);
/* count elements of size bytes each, the product checked for overflow. */
void *moei_alloc_array(size_t count, size_t size);

/* The calling thread's number inside an OpenMP parallel loop of the
 * intra-model threads (0 outside one, and always without OpenMP). */
#ifdef _OPENMP
#include <omp.h>
static inline int moei_thread_num(void) { return omp_get_thread_num(); }
#else
static inline int moei_thread_num(void) { return 0; }
#endif
void moei_free_aligned(void *p);

/* *out = a·b; 0 if that overflows a size_t (then *out is SIZE_MAX), else 1.
 * Every size computed from caller-supplied counts goes through it. */
static inline int moei_mul(size_t a, size_t b, size_t *out)
{
  if (b && a > (size_t)-1 / b) { *out = (size_t)-1; return 0; }
  *out = a * b;
  return 1;
}

/* Index of the first float/double in x[0..n) that is NaN or ±Inf, or n if
 * all are finite. Scans the exponent bits in blocks (vectorisable, no
 * floating-point exceptions, cheap next to any O(n) update). */
size_t moei_first_nonfinite_f(const float *x, size_t n);
size_t moei_first_nonfinite_d(const double *x, size_t n);

/* GSL's default error handler prints and aborts. libmoe must not abort
 * whatever the application did with gsl_set_error_handler, so every libmoe
 * code path that calls GSL runs between moei_gsl_enter() and
 * moei_gsl_leave(): while at least one thread is inside such a region, the
 * process-wide GSL handler is libmoe's own, which only records the message
 * (the calling code checks GSL's return status as always); the
 * application's handler is put back when the last thread leaves. GSL errors
 * raised meanwhile by other threads outside libmoe go to the application's
 * handler if it set one, else they are printed to stderr without aborting.
 * Regions nest. The application must not call gsl_set_error_handler while
 * another thread is inside libmoe (GSL's handler is one global). */
void moei_gsl_enter(void);
void moei_gsl_leave(void);
/* The last GSL error message recorded in this thread ("" if none). */
const char *moei_gsl_last_error(void);

/* Look name up in the NULL-terminated names; *out = its index. Unknown:
 * MOE_EINVAL with "unknown WHAT 'name' (known: a, b, ...)". The parsers of
 * the public enums (activation, expert kind, combine rule ...) use it, so
 * their tables are the single source of the accepted spellings. */
int moei_parse_name(const char *what, const char *name, const char *const *names, int *out);

/* Force inlining of a kernel whose flag arguments are constants at each
 * call site, so every combination compiles to its own branch-free loop. */
#if defined(__GNUC__)
#define MOE_INLINE inline __attribute__((always_inline))
#else
#define MOE_INLINE inline
#endif

/* Element-wise kernels that are worth wider vectors: GCC compiles a clone
 * for AVX2 and one for the baseline ISA and picks one when the library is
 * loaded (an ifunc), so the shipped build stays baseline x86-64 (no
 * -march). Only for loops without reductions and with -ffp-contract=off:
 * then every lane does the scalar operations in the scalar order, and the
 * clones give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MOE_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MOE_VEC_CLONES
#endif

/* SHA-256 (moei_sha256_hex & co.): lib/sha256.h, also compiled into the
 * moebench program for its cell ids. */
#include "sha256.h"

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
#include "moe/optim.h"
/* One training step over a model's flat slabs, as torch's clip_grad_norm_
 * then the optimizer: *grad_norm (may be NULL) = ‖g‖₂ accumulated in
 * double; a non-finite norm is MOE_EDOM and changes nothing; clip > 0
 * scales g by min(1, clip / (norm + 1e-6)); then moe_optim_step at the
 * schedule's rate for the optimizer's step count. `what` names the caller
 * in messages. Shared by moe_lm_step and moe_vision_step. */
int moei_clip_step(float *params, float *grads, size_t n, moe_optim *o,
                   const moe_lr_schedule *sched, double clip, double *grad_norm, const char *what);
/* The token and position embedding on nt threads (nn_impl.h; moe/nn.h's
 * contract without its checks, bits of one thread), for moe_lm. */
void moei_embedding_forward(int nt, int B, int T, int D, const uint32_t *tok, const float *wte,
                            const float *wpe, float *out);
void moei_embedding_forward_f64(int nt, int B, int T, int D, const uint32_t *tok,
                                const double *wte, const double *wpe, double *out);
void moei_embedding_backward(int nt, int B, int T, int D, const uint32_t *tok, const float *dout,
                             float *dwte, float *dwpe);
void moei_embedding_backward_f64(int nt, int B, int T, int D, const uint32_t *tok,
                                 const double *dout, double *dwte, double *dwpe);
/* LayerNorm on nt threads (nn_impl.h; moe/nn.h's contract, bits of one
 * thread), for the models around the blocks. */
void moei_ln_forward(int nt, int N, int D, const float *x, const float *w, const float *b,
                     float *y, float *mean, float *rstd);
void moei_ln_forward_f64(int nt, int N, int D, const double *x, const double *w, const double *b,
                         double *y, double *mean, double *rstd);
void moei_ln_backward(int nt, int N, int D, const float *x, const float *w, const float *mean,
                      const float *rstd, const float *dy, float *dx, float *dw, float *db);
void moei_ln_backward_f64(int nt, int N, int D, const double *x, const double *w,
                          const double *mean, const double *rstd, const double *dy, double *dx,
                          double *dw, double *db);
/* Their pieces, for callers that fuse them with other row-wise work (each
 * row computed as above): the forward and the backward's dx of rows
 * [r0, r1) (dw, db += as well if dw: rows in order, so only where one
 * thread runs all rows in order), and dw, db += for the columns of block
 * cb (MOE_LN_COLS columns) over all N rows in row order. */
#define MOE_LN_COLS 16
void moei_ln_forward_rows(int r0, int r1, int D, const float *x, const float *w, const float *b,
                          float *y, float *mean, float *rstd);
void moei_ln_forward_rows_f64(int r0, int r1, int D, const double *x, const double *w,
                              const double *b, double *y, double *mean, double *rstd);
void moei_ln_backward_rows(int r0, int r1, int D, const float *x, const float *w,
                           const float *mean, const float *rstd, const float *dy, float *dx,
                           float *dw, float *db);
void moei_ln_backward_rows_f64(int r0, int r1, int D, const double *x, const double *w,
                               const double *mean, const double *rstd, const double *dy,
                               double *dx, double *dw, double *db);
void moei_ln_backward_cols(int cb, int N, int D, const float *x, const float *mean,
                           const float *rstd, const float *dy, float *dw, float *db);
void moei_ln_backward_cols_f64(int cb, int N, int D, const double *x, const double *mean,
                               const double *rstd, const double *dy, double *dw, double *db);
#include "moe/layer.h"
void moei_layer_adopt(moe_layer *l, float *params, float *grads);
void moei_layer_adopt_f64(moe_layer_f64 *l, double *params, double *grads);

/* Where initial values come from: one stream r drawn in slab order
 * (keyed = 0: moe_*_init_params), or, keyed, r reseeded for each named
 * component from moe_seed_derive(seed, name) (moe_*_init_params_keyed), so
 * a component gets the same values in every model that has it with the
 * same shape, whatever else the model holds. */
typedef struct {
  gsl_rng *r;
  uint64_t seed;
  int keyed;
} moei_init_src;
/* The stream for component `name` (index idx >= 0 of a family, or -1). */
gsl_rng *moei_init_stream(const moei_init_src *s, const char *name, long idx);
/* The source of a sub-component `name` (idx as above). */
moei_init_src moei_init_child(const moei_init_src *s, const char *name, long idx);
/* Reseed an mt19937 stream as moe_rng_alloc(seed) seeds a new one. */
void moei_rng_reseed(gsl_rng *r, uint64_t seed);
int moei_layer_init(moe_layer *l, const moei_init_src *src);
int moei_layer_init_f64(moe_layer_f64 *l, const moei_init_src *src);
#include "moe/nn.h"
int moei_block_init(moe_block *b, const moei_init_src *src, double std, double proj_std);
int moei_block_init_f64(moe_block_f64 *b, const moei_init_src *src, double std, double proj_std);

#endif
