/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bpe.c — byte-level BPE: the vocabulary, the rank-merge encoder and the
 * decoder. The pre-tokenizer is in bpe_pretok.c, the trainer in
 * bpe_train.c, vocabulary and tiktoken files in bpe_io.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/bpe.h"
#include "internal.h"
#include "bpe_impl.h"

/* ---------------------------------------------------------------------- */
/* The vocabulary.                                                         */

void moe_bpe_free(moe_bpe *b)
{
  if (!b) return;
  free(b->merges);
  strtab_free(&b->tok);
  pmap_free(&b->pairs);
  free(b);
}

uint32_t moe_bpe_vocab_size(const moe_bpe *b) { return b ? b->V : 0; }
uint32_t moe_bpe_n_merges(const moe_bpe *b) { return b ? b->n_merges : 0; }

int moe_bpe_merge(const moe_bpe *b, uint32_t i, moe_token *left, moe_token *right)
{
  MOE_CHECK_ARG(b && left && right, "moe_bpe_merge: NULL argument");
  if (i >= b->n_merges)
    return moe_error(MOE_ERANGE, "merge %u >= number of merges %u", i, b->n_merges);
  *left = b->merges[2 * i];
  *right = b->merges[2 * i + 1];
  return MOE_OK;
}

const uint8_t *moe_bpe_token_bytes(const moe_bpe *b, moe_token id, size_t *len)
{
  if (!b || id >= b->V) return NULL;
  if (len) *len = b->tok.len[id];
  return b->tok.arena + b->tok.off[id];
}

int moe_bpe_from_merges(const moe_token *merges, uint32_t n_merges, moe_bpe **out)
{
  MOE_CHECK_ARG(out && (merges || n_merges == 0), "moe_bpe_from_merges: NULL argument");
  *out = NULL;
  MOE_CHECK_ARG(n_merges <= UINT32_MAX - 256, "moe_bpe_from_merges: %u merges is too many", n_merges);
  moe_bpe *b = calloc(1, sizeof *b);
  if (!b) return moe_error(MOE_ENOMEM, "out of memory");
  b->V = 256 + n_merges;
  b->n_merges = n_merges;
  b->merges = malloc(((size_t)n_merges * 2 + 1) * sizeof(uint32_t));
  if (!b->merges || pmap_init(&b->pairs, n_merges + 16)) goto nomem;
  for (int i = 0; i < 256; i++) {
    uint8_t c = (uint8_t)i;
    b->byte_tok[i] = (uint32_t)i;
    if (strtab_append(&b->tok, &c, 1)) goto nomem;
  }
  for (uint32_t i = 0; i < n_merges; i++) {
    uint32_t l = merges[2 * i], r = merges[2 * i + 1];
    if (l >= 256 + i || r >= 256 + i) {
      moe_bpe_free(b);
      return moe_error(MOE_ERANGE, "merge %u (%u %u): ids must be < %u", i, l, r, 256 + i);
    }
    uint32_t earlier = pmap_get(&b->pairs, PAIR_KEY(l, r));
    if (earlier != UINT32_MAX) {
      moe_bpe_free(b);
      return moe_error(MOE_EINVAL, "merge %u (%u %u) repeats merge %u", i, l, r, earlier);
    }
    b->merges[2 * i] = l;
    b->merges[2 * i + 1] = r;
    if (pmap_put(&b->pairs, PAIR_KEY(l, r), i)) goto nomem;
    /* Token bytes = left bytes + right bytes (append first: the arena may move). */
    size_t ll = b->tok.len[l], rl = b->tok.len[r];
    if (ll + rl > MOE_BPE_MAX_BYTES - b->tok.alen) {
      moe_bpe_free(b);
      return moe_error(MOE_ERANGE, "merge %u (%u %u): the tokens would spell more than %u bytes in all", i, l,
                       r, (unsigned)MOE_BPE_MAX_BYTES);
    }
    uint8_t stackbuf[256];
    uint8_t *tmp = ll + rl <= sizeof stackbuf ? stackbuf : malloc(ll + rl);
    if (!tmp) goto nomem;
    memcpy(tmp, b->tok.arena + b->tok.off[l], ll);
    memcpy(tmp + ll, b->tok.arena + b->tok.off[r], rl);
    int rc = strtab_append(&b->tok, tmp, ll + rl);
    if (tmp != stackbuf) free(tmp);
    if (rc) goto nomem;
  }
  *out = b;
  return MOE_OK;
nomem:
  moe_bpe_free(b);
  return moe_error(MOE_ENOMEM, "out of memory building a BPE vocabulary of %u merges", n_merges);
}

/* ---------------------------------------------------------------------- */
/* Encoder and decoder.                                                    */

/* Rank of merging the adjacent symbols covering piece[a..m) and piece[m..e)
 * with ids x and y, or UINT32_MAX. The merged id is rank + (tiktoken ? 0 : 256). */
static uint32_t pair_rank(const moe_bpe *b, const uint8_t *piece, size_t a, size_t e, uint32_t x,
                          uint32_t y)
{
  if (b->tiktoken)
    return strtab_find(&b->tok, piece + a, e - a);
  return pmap_get(&b->pairs, PAIR_KEY(x, y));
}

/* Encode one piece of L bytes into ids; returns the number of ids.
 * Work buffers: sym (L), start (L+1), rank (L). */
static size_t encode_piece(const moe_bpe *b, const uint8_t *p, size_t L, uint32_t *ids, uint32_t *sym,
                           size_t *start, uint32_t *rank)
{
  if (L == 1) { ids[0] = b->byte_tok[p[0]]; return 1; }
  if (b->tiktoken) {
    /* As tiktoken: a piece that is itself a token is that token, even when
     * lowest-rank merging would not reach it. */
    uint32_t whole = strtab_find(&b->tok, p, L);
    if (whole != UINT32_MAX) { ids[0] = whole; return 1; }
  }
  uint32_t add = b->tiktoken ? 0 : 256;
  size_t m = L;
  for (size_t i = 0; i < L; i++) { sym[i] = b->byte_tok[p[i]]; start[i] = i; }
  start[L] = L;
  for (size_t i = 0; i + 1 < m; i++) rank[i] = pair_rank(b, p, start[i], start[i + 2], sym[i], sym[i + 1]);
  while (m > 1) {
    size_t best = 0;
    uint32_t br = UINT32_MAX;
    for (size_t i = 0; i + 1 < m; i++)
      if (rank[i] < br) { br = rank[i]; best = i; }
    if (br == UINT32_MAX) break;
    sym[best] = br + add;
    memmove(sym + best + 1, sym + best + 2, (m - best - 2) * sizeof *sym);
    memmove(start + best + 1, start + best + 2, (m - best - 1) * sizeof *start);
    if (m >= best + 3) memmove(rank + best + 1, rank + best + 2, (m - best - 3) * sizeof *rank);
    m--;
    if (best + 1 < m) rank[best] = pair_rank(b, p, start[best], start[best + 2], sym[best], sym[best + 1]);
    if (best > 0) rank[best - 1] = pair_rank(b, p, start[best - 1], start[best + 1], sym[best - 1], sym[best]);
  }
  memcpy(ids, sym, m * sizeof *ids);
  return m;
}

/* Pieces repeat a lot in prose (SOTU: 1.9 M pieces, 30 k distinct), so each
 * call keeps the ids of the pieces it has already encoded. The cache is
 * local to the call (b stays read-only) and stops growing past a bound, so
 * input made only of distinct pieces costs no more than the bound. */
#define CACHE_MAX_PIECES (1u << 18)
#define CACHE_MAX_PIECE_LEN 64

int moe_bpe_encode(const moe_bpe *b, const uint8_t *text, size_t n, moe_token *ids, size_t *n_ids)
{
  MOE_CHECK_ARG(b && (text || n == 0) && (ids || n == 0) && n_ids, "moe_bpe_encode: NULL argument");
  *n_ids = 0;
  size_t cap = 256;
  uint32_t *sym = malloc(cap * sizeof *sym), *rank = malloc(cap * sizeof *rank);
  size_t *start = malloc((cap + 1) * sizeof *start);
  strtab cache = {0};
  uint64_t *c_at = NULL;   /* (pieces) where a cached piece's ids start in ids[] */
  uint32_t *c_n = NULL;    /* (pieces) how many ids it has */
  size_t c_cap = 0;
  int rc = MOE_OK;
  if (!sym || !rank || !start) { rc = moe_error(MOE_ENOMEM, "out of memory"); goto done; }
  size_t out = 0;
  for (size_t pos = 0; pos < n;) {
    size_t L = moe_bpe_pretok(text, n, pos);
    if (L == 1) {
      ids[out++] = b->byte_tok[text[pos++]];
      continue;
    }
    uint32_t ci = UINT32_MAX;
    int added = 0;
    if (L <= CACHE_MAX_PIECE_LEN) {
      if (cache.n < CACHE_MAX_PIECES) {
        if (strtab_intern(&cache, text + pos, L, &ci, &added)) { rc = moe_error(MOE_ENOMEM, "out of memory"); goto done; }
      } else {
        ci = strtab_find(&cache, text + pos, L);
      }
    }
    if (ci != UINT32_MAX && !added) {
      /* Earlier ids of this piece are already in the output: copy them. */
      memcpy(ids + out, ids + c_at[ci], c_n[ci] * sizeof *ids);
      out += c_n[ci];
      pos += L;
      continue;
    }
    if (L > cap) {
      while (cap < L) cap *= 2;
      free(sym); free(rank); free(start);
      sym = malloc(cap * sizeof *sym);
      rank = malloc(cap * sizeof *rank);
      start = malloc((cap + 1) * sizeof *start);
      if (!sym || !rank || !start) { rc = moe_error(MOE_ENOMEM, "out of memory for a %zu-byte piece", L); goto done; }
    }
    size_t k = encode_piece(b, text + pos, L, ids + out, sym, start, rank);
    if (added) {
      if (ci >= c_cap) {
        size_t nc = c_cap ? c_cap * 2 : 4096;
        uint64_t *a = realloc(c_at, nc * sizeof *a);
        if (a) c_at = a;
        uint32_t *m = realloc(c_n, nc * sizeof *m);
        if (m) c_n = m;
        if (!a || !m) { rc = moe_error(MOE_ENOMEM, "out of memory"); goto done; }
        c_cap = nc;
      }
      c_at[ci] = out;
      c_n[ci] = (uint32_t)k;
    }
    out += k;
    pos += L;
  }
  *n_ids = out;
done:
  free(sym); free(rank); free(start);
  strtab_free(&cache);
  free(c_at); free(c_n);
  return rc;
}

int moe_bpe_decode(const moe_bpe *b, const moe_token *ids, size_t n_ids, uint8_t **text, size_t *len)
{
  MOE_CHECK_ARG(b && (ids || n_ids == 0) && text && len, "moe_bpe_decode: NULL argument");
  *text = NULL;
  *len = 0;
  size_t total = 0;
  for (size_t i = 0; i < n_ids; i++) {
    if (ids[i] >= b->V)
      return moe_error(MOE_ERANGE, "decode: token %zu: id %u >= vocabulary size %u", i, ids[i], b->V);
    if (total > SIZE_MAX - 1 - b->tok.len[ids[i]])
      return moe_error(MOE_ERANGE, "decode: %zu ids spell more than SIZE_MAX bytes", n_ids);
    total += b->tok.len[ids[i]];
  }
  uint8_t *buf = malloc(total + 1);
  if (!buf) return moe_error(MOE_ENOMEM, "decode: out of memory for %zu bytes", total);
  size_t o = 0;
  for (size_t i = 0; i < n_ids; i++) {
    memcpy(buf + o, b->tok.arena + b->tok.off[ids[i]], b->tok.len[ids[i]]);
    o += b->tok.len[ids[i]];
  }
  buf[o] = 0;
  *text = buf;
  *len = o;
  return MOE_OK;
}
