/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bpe_impl.h — what the byte-level BPE sources of lib/data/ share: the
 * hash maps (static inline: the encoder looks pairs up in its inner loop)
 * and the vocabulary struct. Not installed. */
#ifndef MOE_BPE_IMPL_H
#define MOE_BPE_IMPL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moe/bpe.h"
#include "moe/error.h"

/* ---------------------------------------------------------------------- */
/* Hash maps.                                                              */

static inline uint64_t mix64(uint64_t x)
{
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27; x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static inline uint64_t hash_bytes(const uint8_t *p, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed */
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
  return mix64(h ^ n);
}

/* uint64 key -> uint32 value, open addressing; value UINT32_MAX = empty. */
typedef struct {
  uint64_t *keys;
  uint32_t *vals;
  size_t mask, used;
} pmap;

static inline int pmap_init(pmap *m, size_t want)
{
  size_t cap = 1024;
  while (cap < want * 2) cap <<= 1;
  m->keys = malloc(cap * sizeof *m->keys);
  m->vals = malloc(cap * sizeof *m->vals);
  if (!m->keys || !m->vals) { free(m->keys); free(m->vals); m->keys = NULL; m->vals = NULL; return MOE_ENOMEM; }
  memset(m->vals, 0xff, cap * sizeof *m->vals);
  m->mask = cap - 1;
  m->used = 0;
  return MOE_OK;
}

static inline void pmap_free(pmap *m) { free(m->keys); free(m->vals); m->keys = NULL; m->vals = NULL; }

static inline uint32_t pmap_get(const pmap *m, uint64_t key)
{
  for (size_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
    if (m->vals[i] == UINT32_MAX) return UINT32_MAX;
    if (m->keys[i] == key) return m->vals[i];
  }
}

static inline int pmap_put(pmap *m, uint64_t key, uint32_t val)
{
  if ((m->used + 1) * 2 > m->mask + 1) {
    pmap old = *m;
    if (pmap_init(m, (old.mask + 1)) != MOE_OK) { *m = old; return MOE_ENOMEM; }
    for (size_t i = 0; i <= old.mask; i++)
      if (old.vals[i] != UINT32_MAX) pmap_put(m, old.keys[i], old.vals[i]);
    pmap_free(&old);
  }
  size_t i = mix64(key) & m->mask;
  while (m->vals[i] != UINT32_MAX && m->keys[i] != key) i = (i + 1) & m->mask;
  if (m->vals[i] == UINT32_MAX) m->used++;
  m->keys[i] = key;
  m->vals[i] = val;
  return MOE_OK;
}

#define PAIR_KEY(a, b) ((uint64_t)(a) << 32 | (uint64_t)(b))

/* Byte strings stored in one arena; an optional hash finds a string's index. */
typedef struct {
  uint8_t *arena;
  size_t alen, acap;
  uint64_t *off;   /* (n) */
  uint32_t *len;   /* (n) */
  uint32_t n, cap;
  uint32_t *slots; /* index + 1, 0 = empty; NULL when not hashed */
  size_t smask;
} strtab;

static inline void strtab_free(strtab *t)
{
  free(t->arena); free(t->off); free(t->len); free(t->slots);
  memset(t, 0, sizeof *t);
}

static inline int strtab_append(strtab *t, const uint8_t *p, size_t n)
{
  if (t->n == t->cap) {
    uint32_t nc = t->cap ? t->cap * 2 : 1024;
    uint64_t *o = realloc(t->off, nc * sizeof *o);
    if (!o) return MOE_ENOMEM;
    t->off = o;
    uint32_t *l = realloc(t->len, nc * sizeof *l);
    if (!l) return MOE_ENOMEM;
    t->len = l;
    t->cap = nc;
  }
  if (t->alen + n > t->acap) {
    size_t nc = t->acap ? t->acap * 2 : 65536;
    while (nc < t->alen + n) nc *= 2;
    uint8_t *a = realloc(t->arena, nc);
    if (!a) return MOE_ENOMEM;
    t->arena = a;
    t->acap = nc;
  }
  if (n) memcpy(t->arena + t->alen, p, n);
  t->off[t->n] = t->alen;
  t->len[t->n] = (uint32_t)n;
  t->alen += n;
  t->n++;
  return MOE_OK;
}

static inline int strtab_rehash(strtab *t, size_t cap)
{
  uint32_t *s = calloc(cap, sizeof *s);
  if (!s) return MOE_ENOMEM;
  free(t->slots);
  t->slots = s;
  t->smask = cap - 1;
  for (uint32_t i = 0; i < t->n; i++) {
    size_t j = hash_bytes(t->arena + t->off[i], t->len[i]) & t->smask;
    while (s[j]) j = (j + 1) & t->smask;
    s[j] = i + 1;
  }
  return MOE_OK;
}

/* Index of p[0..n) or UINT32_MAX. */
static inline uint32_t strtab_find(const strtab *t, const uint8_t *p, size_t n)
{
  for (size_t j = hash_bytes(p, n) & t->smask;; j = (j + 1) & t->smask) {
    uint32_t e = t->slots[j];
    if (!e) return UINT32_MAX;
    e--;
    if (t->len[e] == n && memcmp(t->arena + t->off[e], p, n) == 0) return e;
  }
}

/* Index of p[0..n), adding it if new (*added set). */
static inline int strtab_intern(strtab *t, const uint8_t *p, size_t n, uint32_t *idx, int *added)
{
  if (!t->slots || (size_t)(t->n + 1) * 2 > t->smask + 1) {
    size_t cap = 4096;
    while (cap < (size_t)(t->n + 1) * 4) cap <<= 1;
    if (strtab_rehash(t, cap)) return MOE_ENOMEM;
  }
  size_t j = hash_bytes(p, n) & t->smask;
  for (;; j = (j + 1) & t->smask) {
    uint32_t e = t->slots[j];
    if (!e) break;
    e--;
    if (t->len[e] == n && memcmp(t->arena + t->off[e], p, n) == 0) {
      *idx = e;
      *added = 0;
      return MOE_OK;
    }
  }
  if (strtab_append(t, p, n)) return MOE_ENOMEM;
  t->slots[j] = t->n;
  *idx = t->n - 1;
  *added = 1;
  return MOE_OK;
}

/* ---------------------------------------------------------------------- */
/* The vocabulary.                                                         */

struct moe_bpe {
  int tiktoken;          /* 1: ranks of byte strings (tok.slots), 0: merge ranks (pairs) */
  uint32_t V;
  uint32_t n_merges;
  uint32_t *merges;      /* (M, 2) */
  uint32_t byte_tok[256];
  strtab tok;            /* (V) token bytes */
  pmap pairs;            /* merge mode: (left, right) -> merge index */
};

#endif
