/* SPDX-License-Identifier: GPL-3.0-or-later */
/* rng.c — seed derivation and GSL random streams. */
#include <math.h>
#include <gsl/gsl_randist.h>

#include "moe/rng.h"
#include "moe/error.h"
#include "internal.h"

static uint64_t splitmix64(uint64_t z)
{
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t moe_seed_derive_u64(uint64_t parent, uint64_t label)
{
  return splitmix64(splitmix64(parent) ^ splitmix64(label ^ 0xA5A5A5A5A5A5A5A5ull));
}

uint64_t moe_seed_derive(uint64_t parent, const char *label)
{
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
  for (const unsigned char *p = (const unsigned char *)(label ? label : ""); *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ull;
  }
  return moe_seed_derive_u64(parent, h);
}

gsl_rng *moe_rng_alloc(uint64_t seed)
{
  moei_gsl_enter(); /* an allocation failure goes through GSL's handler */
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  moei_gsl_leave();
  if (!r) {
    moe_error(MOE_ENOMEM, "cannot allocate a random stream");
    return NULL;
  }
  moei_rng_reseed(r, seed);
  return r;
}

void moei_rng_reseed(gsl_rng *r, uint64_t seed)
{
  /* mt19937 uses 32 bits of the seed; fold the 64 so both halves matter.
   * GSL maps seed 0 to its default 4357, which is still deterministic. */
  gsl_rng_set(r, (unsigned long)((seed ^ (seed >> 32)) & 0xffffffffu));
}

static uint64_t init_key(uint64_t seed, const char *name, long idx)
{
  uint64_t k = moe_seed_derive(seed, name);
  return idx < 0 ? k : moe_seed_derive_u64(k, (uint64_t)idx);
}

gsl_rng *moei_init_stream(const moei_init_src *s, const char *name, long idx)
{
  if (s->keyed)
    moei_rng_reseed(s->r, init_key(s->seed, name, idx));
  return s->r;
}

moei_init_src moei_init_child(const moei_init_src *s, const char *name, long idx)
{
  moei_init_src c = *s;
  if (s->keyed)
    c.seed = init_key(s->seed, name, idx);
  return c;
}

void moe_rng_normal_f32(gsl_rng *r, float *x, size_t n, double std)
{
  for (size_t i = 0; i < n; i++)
    x[i] = (float)gsl_ran_gaussian(r, std);
}

void moe_rng_normal_f64(gsl_rng *r, double *x, size_t n, double std)
{
  for (size_t i = 0; i < n; i++)
    x[i] = gsl_ran_gaussian(r, std);
}

void moe_rng_uniform_f32(gsl_rng *r, float *x, size_t n, double lo, double hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(lo + (hi - lo) * gsl_rng_uniform(r));
}

void moe_rng_uniform_f64(gsl_rng *r, double *x, size_t n, double lo, double hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * gsl_rng_uniform(r);
}
