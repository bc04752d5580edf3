/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/rng.h — seeded random streams (GSL) and seed derivation.
 *
 * Determinism contract: every random quantity in moebench comes from a
 * gsl_rng seeded with a value derived from a parent seed and a label that
 * names what it is for (cell id, "init", "data", "restart-3" ...), never
 * from execution order or time. */
#ifndef MOE_RNG_H
#define MOE_RNG_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Child seed from a parent seed and a label (stable across platforms:
 * FNV-1a of the label mixed with the parent by SplitMix64). */
uint64_t moe_seed_derive(uint64_t parent, const char *label);

/* Same, with an integer label (e.g. replication index). */
uint64_t moe_seed_derive_u64(uint64_t parent, uint64_t label);

/* A Mersenne-twister (gsl_rng_mt19937) stream seeded with `seed`.
 * Free with gsl_rng_free. Returns NULL (and sets the error) on failure. */
gsl_rng *moe_rng_alloc(uint64_t seed);

/* Fill x[0..n) with N(0, std^2) (float / double). */
void moe_rng_normal_f32(gsl_rng *r, float *x, size_t n, double std);
void moe_rng_normal_f64(gsl_rng *r, double *x, size_t n, double std);

/* Fill x[0..n) with U[lo, hi). */
void moe_rng_uniform_f32(gsl_rng *r, float *x, size_t n, double lo, double hi);
void moe_rng_uniform_f64(gsl_rng *r, double *x, size_t n, double lo, double hi);

#ifdef __cplusplus
}
#endif
#endif
