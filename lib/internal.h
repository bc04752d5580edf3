/* SPDX-License-Identifier: GPL-3.0-or-later */
/* internal.h — helpers shared by libmoe's sources; not installed. */
#ifndef MOE_INTERNAL_H
#define MOE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

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

/* SHA-256 (moei_sha256_hex & co.): lib/sha256.h, also linked into the
 * moebench program for its cell ids. */
#include "sha256.h"

#define MOE_CHECK_ARG(cond, ...) \
  do { if (!(cond)) return moe_error(MOE_EINVAL, __VA_ARGS__); } while (0)

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

#endif
