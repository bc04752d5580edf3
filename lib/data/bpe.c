/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bpe.c — byte-level BPE: GPT-2 pre-tokenizer, incremental trainer,
 * rank-merge encoder, decoder, vocabulary files, tiktoken ranks.
 *
 * The trainer follows the usual fast scheme: pieces of the pre-tokenized
 * text are counted once (a "word" with a frequency), pair counts are kept
 * in a hash table together with the list of words each pair occurs in, and
 * a max-heap with lazy deletion picks the next merge. A merge only touches
 * the words that contain the merged pair, and only the adjacencies next to
 * the merged positions, so the work per merge is proportional to what
 * changes, not to the corpus. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <utf8proc.h>

#include "moe/bpe.h"
#include "internal.h"
#include "textio.h"

/* ---------------------------------------------------------------------- */
/* Character classes of the pre-tokenizer (see moe/bpe.h).                 */

enum { C_LETTER, C_NUMBER, C_SPACE, C_OTHER };

/* \s as tiktoken's regex engine (Rust regex, fancy-regex) reads it: the
 * Unicode White_Space property (PropList.txt; unchanged since Unicode 6.3,
 * which took U+180E out). U+001C-001F and U+200B are not White_Space. */
static int is_white_space(uint32_t cp)
{
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

#include "unicode_delta.h"

/* Class of a code point: \s first (no White_Space code point is a letter or
 * a number), then \p{L} = General_Category L*, \p{N} = N*, from utf8proc;
 * everything else (marks, punctuation, symbols, controls, format,
 * unassigned, private use) is "other". tiktoken's regex reads Unicode 16.0
 * and Debian 12's utf8proc 2.8 Unicode 15.0: the 15.1 and 16.0 letters and
 * numbers come from unicode_delta.h (generated from the UCD). */
static int cp_class(uint32_t cp)
{
  if (is_white_space(cp)) return C_SPACE;
  size_t lo = 0, hi = sizeof unicode16_delta / sizeof *unicode16_delta;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < unicode16_delta[mid].lo) hi = mid;
    else if (cp > unicode16_delta[mid].hi) lo = mid + 1;
    else return unicode16_delta[mid].c;
  }
  switch (utf8proc_category((utf8proc_int32_t)cp)) {
  case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    return C_LETTER;
  case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
    return C_NUMBER;
  default:
    return C_OTHER;
  }
}

/* Decode one strict UTF-8 sequence at s[pos]; 0 if none starts there. */
static size_t utf8_decode(const uint8_t *s, size_t n, size_t pos, uint32_t *cp)
{
  uint8_t b = s[pos];
  size_t need;
  uint32_t c, min2_lo = 0x80, min2_hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) { need = 1; c = b & 0x1F; }
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 2; c = b & 0x0F;
    if (b == 0xE0) min2_lo = 0xA0;     /* overlong */
    if (b == 0xED) min2_hi = 0x9F;     /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3; c = b & 0x07;
    if (b == 0xF0) min2_lo = 0x90;     /* overlong */
    if (b == 0xF4) min2_hi = 0x8F;     /* > U+10FFFF */
  } else
    return 0;
  if (pos + need >= n)
    return 0;
  for (size_t k = 1; k <= need; k++) {
    uint8_t t = s[pos + k];
    uint8_t lo = k == 1 ? (uint8_t)min2_lo : 0x80, hi = k == 1 ? (uint8_t)min2_hi : 0xBF;
    if (t < lo || t > hi) return 0;
    c = c << 6 | (t & 0x3F);
  }
  *cp = c;
  return need + 1;
}

/* Class of the character at s[pos] and its length in bytes. */
static int char_class(const uint8_t *s, size_t n, size_t pos, size_t *clen)
{
  uint8_t b = s[pos];
  if (b < 0x80) {
    *clen = 1;
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return C_LETTER;
    if (b >= '0' && b <= '9') return C_NUMBER;
    if (b == ' ' || (b >= '\t' && b <= '\r')) return C_SPACE;
    return C_OTHER;
  }
  uint32_t cp;
  size_t len = utf8_decode(s, n, pos, &cp);
  if (len == 0) { *clen = 1; return C_OTHER; }
  *clen = len;
  return cp_class(cp);
}

/* End of the run of class c that starts at p. */
static size_t run_end(const uint8_t *s, size_t n, size_t p, int c)
{
  size_t len;
  while (p < n && char_class(s, n, p, &len) == c) p += len;
  return p;
}

size_t moe_bpe_pretok(const uint8_t *s, size_t n, size_t pos)
{
  if (pos >= n) return 0;
  if (s[pos] == '\'' && pos + 1 < n) {
    uint8_t a = s[pos + 1], b = pos + 2 < n ? s[pos + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  size_t clen;
  int c = char_class(s, n, pos, &clen);
  if (c != C_SPACE)
    return run_end(s, n, pos, c) - pos;
  /* " ?X+": a single ' ' joins the run after it. */
  if (s[pos] == ' ' && pos + 1 < n) {
    size_t l2;
    int c2 = char_class(s, n, pos + 1, &l2);
    if (c2 != C_SPACE)
      return run_end(s, n, pos + 1, c2) - pos;
  }
  /* "\s+(?!\S)|\s+": a whitespace run; if a non-space follows, its last
   * character is left for the next piece (unless it is the only one). */
  size_t end = pos, last = pos;
  while (end < n) {
    size_t l2;
    if (char_class(s, n, end, &l2) != C_SPACE) break;
    last = end;
    end += l2;
  }
  if (end < n && last > pos) return last - pos;
  return end - pos;
}

/* ---------------------------------------------------------------------- */
/* Hash maps.                                                              */

static uint64_t mix64(uint64_t x)
{
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27; x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
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

static int pmap_init(pmap *m, size_t want)
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

static void pmap_free(pmap *m) { free(m->keys); free(m->vals); m->keys = NULL; m->vals = NULL; }

static uint32_t pmap_get(const pmap *m, uint64_t key)
{
  for (size_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
    if (m->vals[i] == UINT32_MAX) return UINT32_MAX;
    if (m->keys[i] == key) return m->vals[i];
  }
}

static int pmap_put(pmap *m, uint64_t key, uint32_t val)
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

static void strtab_free(strtab *t)
{
  free(t->arena); free(t->off); free(t->len); free(t->slots);
  memset(t, 0, sizeof *t);
}

static int strtab_append(strtab *t, const uint8_t *p, size_t n)
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

static int strtab_rehash(strtab *t, size_t cap)
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
static uint32_t strtab_find(const strtab *t, const uint8_t *p, size_t n)
{
  for (size_t j = hash_bytes(p, n) & t->smask;; j = (j + 1) & t->smask) {
    uint32_t e = t->slots[j];
    if (!e) return UINT32_MAX;
    e--;
    if (t->len[e] == n && memcmp(t->arena + t->off[e], p, n) == 0) return e;
  }
}

/* Index of p[0..n), adding it if new (*added set). */
static int strtab_intern(strtab *t, const uint8_t *p, size_t n, uint32_t *idx, int *added)
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

int moe_bpe_merge(const moe_bpe *b, uint32_t i, uint32_t *left, uint32_t *right)
{
  MOE_CHECK_ARG(b && left && right, "moe_bpe_merge: NULL argument");
  if (i >= b->n_merges)
    return moe_error(MOE_ERANGE, "merge %u >= number of merges %u", i, b->n_merges);
  *left = b->merges[2 * i];
  *right = b->merges[2 * i + 1];
  return MOE_OK;
}

const uint8_t *moe_bpe_token_bytes(const moe_bpe *b, uint32_t id, size_t *len)
{
  if (!b || id >= b->V) return NULL;
  if (len) *len = b->tok.len[id];
  return b->tok.arena + b->tok.off[id];
}

int moe_bpe_from_merges(const uint32_t *merges, uint32_t n_merges, moe_bpe **out)
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

int moe_bpe_encode(const moe_bpe *b, const uint8_t *text, size_t n, uint32_t *ids, size_t *n_ids)
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

int moe_bpe_decode(const moe_bpe *b, const uint32_t *ids, size_t n_ids, uint8_t **text, size_t *len)
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

/* ---------------------------------------------------------------------- */
/* Trainer.                                                                */

typedef struct {
  uint32_t l, r;
  int64_t count;
  uint32_t *w;          /* words containing the pair (may hold stale entries) */
  uint32_t wn, wcap;
  uint32_t stamp;       /* last merge step that queued it for the heap */
} pair_t;

typedef struct { int64_t count; uint32_t l, r; } heap_t;

/* Max-heap order: higher count first, then lower (l, r). */
static int heap_before(const heap_t *a, const heap_t *b)
{
  if (a->count != b->count) return a->count > b->count;
  if (a->l != b->l) return a->l < b->l;
  return a->r < b->r;
}

typedef struct {
  heap_t *h;
  size_t n, cap;
} heap;

static void heap_down(heap *q, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < q->n && heap_before(&q->h[l], &q->h[m])) m = l;
    if (r < q->n && heap_before(&q->h[r], &q->h[m])) m = r;
    if (m == i) return;
    heap_t t = q->h[i]; q->h[i] = q->h[m]; q->h[m] = t;
    i = m;
  }
}

static int heap_push(heap *q, heap_t e)
{
  if (q->n == q->cap) {
    size_t nc = q->cap ? q->cap * 2 : 1024;
    heap_t *p = realloc(q->h, nc * sizeof *p);
    if (!p) return MOE_ENOMEM;
    q->h = p;
    q->cap = nc;
  }
  size_t i = q->n++;
  q->h[i] = e;
  while (i > 0) {
    size_t par = (i - 1) / 2;
    if (!heap_before(&q->h[i], &q->h[par])) break;
    heap_t t = q->h[i]; q->h[i] = q->h[par]; q->h[par] = t;
    i = par;
  }
  return MOE_OK;
}

static heap_t heap_pop(heap *q)
{
  heap_t top = q->h[0];
  q->h[0] = q->h[--q->n];
  heap_down(q, 0);
  return top;
}

typedef struct {
  pair_t *p;
  uint32_t n, cap;
  pmap map;             /* (l, r) -> index into p */
} pairs_t;

static void pairs_free(pairs_t *ps)
{
  for (uint32_t i = 0; i < ps->n; i++) free(ps->p[i].w);
  free(ps->p);
  pmap_free(&ps->map);
}

/* Add delta to pair (l, r)'s count; create it if new. *idx gets its index. */
static int pair_add(pairs_t *ps, uint32_t l, uint32_t r, int64_t delta, uint32_t *idx)
{
  uint64_t key = PAIR_KEY(l, r);
  uint32_t i = pmap_get(&ps->map, key);
  if (i == UINT32_MAX) {
    if (ps->n == ps->cap) {
      uint32_t nc = ps->cap ? ps->cap * 2 : 4096;
      pair_t *p = realloc(ps->p, nc * sizeof *p);
      if (!p) return MOE_ENOMEM;
      ps->p = p;
      ps->cap = nc;
    }
    i = ps->n++;
    memset(&ps->p[i], 0, sizeof ps->p[i]);
    ps->p[i].l = l;
    ps->p[i].r = r;
    ps->p[i].stamp = UINT32_MAX;
    if (pmap_put(&ps->map, key, i)) return MOE_ENOMEM;
  }
  ps->p[i].count += delta;
  *idx = i;
  return MOE_OK;
}

static int pair_note_word(pair_t *p, uint32_t w)
{
  if (p->wn && p->w[p->wn - 1] == w) return MOE_OK;
  if (p->wn == p->wcap) {
    uint32_t nc = p->wcap ? p->wcap * 2 : 4;
    uint32_t *q = realloc(p->w, nc * sizeof *q);
    if (!q) return MOE_ENOMEM;
    p->w = q;
    p->wcap = nc;
  }
  p->w[p->wn++] = w;
  return MOE_OK;
}

int moe_bpe_train(const uint8_t *text, size_t n, uint32_t vocab_size, moe_bpe **out,
                  moe_bpe_train_stats *stats)
{
  MOE_CHECK_ARG(out && (text || n == 0), "moe_bpe_train: NULL argument");
  MOE_CHECK_ARG(vocab_size >= 256, "moe_bpe_train: vocabulary size %u < 256 (the byte tokens)", vocab_size);
  *out = NULL;
  uint32_t want = vocab_size - 256;

  int rc = MOE_OK;
  strtab words = {0};
  int64_t *freq = NULL;       /* (W) occurrences of each distinct piece */
  size_t fcap = 0;
  uint32_t *wsym = NULL;      /* symbols of all words, word w at woff[w], wlen[w] long */
  uint64_t *woff = NULL;
  uint32_t *wlen = NULL, *wstamp = NULL, *merges = NULL, *tmp = NULL, *touched = NULL;
  uint8_t *inv = NULL;
  pairs_t ps = {0};
  heap q = {0};
  uint64_t pieces = 0;
  uint32_t done_merges = 0;
  size_t maxlen = 1, ntouched = 0, tcap = 0;

  /* 1. Count the pieces. */
  for (size_t pos = 0; pos < n;) {
    size_t L = moe_bpe_pretok(text, n, pos);
    uint32_t idx;
    int added;
    if (strtab_intern(&words, text + pos, L, &idx, &added)) goto nomem;
    if (added && idx >= fcap) {
      size_t nc = fcap ? fcap * 2 : 4096;
      int64_t *f = realloc(freq, nc * sizeof *f);
      if (!f) goto nomem;
      freq = f;
      fcap = nc;
    }
    if (added) freq[idx] = 0;
    freq[idx]++;
    if (L > maxlen) maxlen = L;
    pieces++;
    pos += L;
  }
  uint32_t W = words.n;

  /* 2. Words as byte symbols; initial pair counts and where-lists. */
  wsym = malloc((words.alen + 1) * sizeof *wsym);
  woff = malloc((W + 1) * sizeof *woff);
  wlen = malloc((W + 1) * sizeof *wlen);
  wstamp = calloc(W + 1, sizeof *wstamp);
  merges = malloc(((size_t)want * 2 + 1) * sizeof *merges);
  tmp = malloc(maxlen * sizeof *tmp);
  inv = malloc(maxlen);
  if (!wsym || !woff || !wlen || !wstamp || !merges || !tmp || !inv) goto nomem;
  if (pmap_init(&ps.map, 1u << 16)) goto nomem;
  for (uint32_t w = 0; w < W; w++) {
    woff[w] = words.off[w];
    wlen[w] = words.len[w];
    const uint8_t *p = words.arena + words.off[w];
    for (uint32_t i = 0; i < wlen[w]; i++) wsym[woff[w] + i] = p[i];
    for (uint32_t i = 0; i + 1 < wlen[w]; i++) {
      uint32_t pi;
      if (pair_add(&ps, p[i], p[i + 1], freq[w], &pi)) goto nomem;
      if (pair_note_word(&ps.p[pi], w)) goto nomem;
    }
  }
  q.cap = ps.n + 1024;
  q.h = malloc(q.cap * sizeof *q.h);
  if (!q.h) goto nomem;
  for (uint32_t i = 0; i < ps.n; i++) q.h[q.n++] = (heap_t){ps.p[i].count, ps.p[i].l, ps.p[i].r};
  for (size_t i = q.n / 2; i-- > 0;) heap_down(&q, i);

  /* 3. Merge. */
  while (done_merges < want) {
    uint32_t pi = UINT32_MAX;
    while (q.n) {
      heap_t e = heap_pop(&q);
      uint32_t i = pmap_get(&ps.map, PAIR_KEY(e.l, e.r));
      if (i == UINT32_MAX || ps.p[i].count <= 0) continue;
      if (ps.p[i].count != e.count) {   /* stale: requeue with the current count */
        if (heap_push(&q, (heap_t){ps.p[i].count, e.l, e.r})) goto nomem;
        continue;
      }
      pi = i;
      break;
    }
    if (pi == UINT32_MAX) break;        /* no pair left anywhere */
    uint32_t l = ps.p[pi].l, r = ps.p[pi].r, N = 256 + done_merges, step = done_merges + 1;
    merges[2 * done_merges] = l;
    merges[2 * done_merges + 1] = r;
    /* Take the where-list: after this merge the pair occurs nowhere. */
    uint32_t *list = ps.p[pi].w, nlist = ps.p[pi].wn;
    ps.p[pi].w = NULL;
    ps.p[pi].wn = ps.p[pi].wcap = 0;
    ntouched = 0;
    for (uint32_t k = 0; k < nlist; k++) {
      uint32_t w = list[k];
      if (wstamp[w] == step) continue;
      wstamp[w] = step;
      uint32_t *s = wsym + woff[w], L = wlen[w], t = 0;
      int64_t f = freq[w];
      for (uint32_t i = 0; i < L;) {
        if (i + 1 < L && s[i] == l && s[i + 1] == r) {
          inv[i] = inv[i + 1] = 1;
          tmp[t++] = N;
          i += 2;
        } else {
          inv[i] = 0;
          tmp[t++] = s[i++];
        }
      }
      if (t == L) continue;             /* stale entry: the pair is gone from w */
      /* Adjacencies away from merged positions are unchanged; only those
       * next to a merge disappear, and only those with N appear. */
      for (uint32_t j = 0; j + 1 < L; j++)
        if (inv[j] || inv[j + 1]) {
          uint32_t di;
          if (pair_add(&ps, s[j], s[j + 1], -f, &di)) goto nomem;
        }
      for (uint32_t j = 0; j + 1 < t; j++)
        if (tmp[j] == N || tmp[j + 1] == N) {
          uint32_t ai;
          if (pair_add(&ps, tmp[j], tmp[j + 1], f, &ai)) goto nomem;
          if (pair_note_word(&ps.p[ai], w)) goto nomem;
          if (ps.p[ai].stamp != step) {
            ps.p[ai].stamp = step;
            if (ntouched == tcap) {
              size_t nc = tcap ? tcap * 2 : 1024;
              uint32_t *tt = realloc(touched, nc * sizeof *tt);
              if (!tt) { free(list); goto nomem; }
              touched = tt;
              tcap = nc;
            }
            touched[ntouched++] = ai;
          }
        }
      memcpy(s, tmp, t * sizeof *s);
      wlen[w] = t;
    }
    free(list);
    for (size_t k = 0; k < ntouched; k++) {
      pair_t *p = &ps.p[touched[k]];
      if (p->count > 0 && heap_push(&q, (heap_t){p->count, p->l, p->r})) goto nomem;
    }
    done_merges++;
  }

  if (stats) {
    stats->pieces = pieces;
    stats->unique_pieces = W;
    stats->merges = done_merges;
  }
  rc = moe_bpe_from_merges(merges, done_merges, out);
  goto done;

nomem:
  rc = moe_error(MOE_ENOMEM, "moe_bpe_train: out of memory");
done:
  strtab_free(&words);
  free(freq); free(wsym); free(woff); free(wlen); free(wstamp); free(merges); free(tmp);
  free(inv); free(touched); free(q.h);
  pairs_free(&ps);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Files.                                                                  */

int moe_bpe_save(const moe_bpe *b, const char *path)
{
  MOE_CHECK_ARG(b && path, "moe_bpe_save: NULL argument");
  MOE_CHECK_ARG(!b->tiktoken, "%s: a tiktoken vocabulary has no merge list to save", path);
  char *tmp = NULL;
  int fd = -1;
  if (textio_tmp_open(path, &tmp, &fd) != MOE_OK) return MOE_EIO;
  FILE *f = fdopen(fd, "w");
  if (!f) { close(fd); unlink(tmp); free(tmp); return moe_error(MOE_EIO, "%s: fdopen failed", path); }
  int ok = fprintf(f, "moe-bpe 1\nmerges %u\n", b->n_merges) > 0;
  for (uint32_t i = 0; ok && i < b->n_merges; i++)
    ok = fprintf(f, "%u %u\n", b->merges[2 * i], b->merges[2 * i + 1]) > 0;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
  if (fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return moe_error(MOE_EIO, "%s: write failed: %s", path, strerror(e));
  }
  free(tmp);
  return MOE_OK;
}

/* Parse a decimal u32 at *p (no sign, no leading '+'); advance *p. */
static int parse_u32(const char **p, uint32_t *v)
{
  const char *s = *p;
  if (*s < '0' || *s > '9') return 0;
  uint64_t x = 0;
  while (*s >= '0' && *s <= '9') {
    x = x * 10 + (uint64_t)(*s - '0');
    if (x > UINT32_MAX) return 0;
    s++;
  }
  *v = (uint32_t)x;
  *p = s;
  return 1;
}

/* Read a whole file into a NUL-terminated buffer. */
static int slurp(const char *path, char **buf, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  if (!b) { fclose(f); return moe_error(MOE_ENOMEM, "%s: out of memory", path); }
  for (;;) {
    if (n + 1 >= cap) {
      char *nb = realloc(b, cap * 2);
      if (!nb) { free(b); fclose(f); return moe_error(MOE_ENOMEM, "%s: out of memory", path); }
      b = nb;
      cap *= 2;
    }
    size_t r = fread(b + n, 1, cap - 1 - n, f);
    n += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) { free(b); return moe_error(MOE_EIO, "%s: read error", path); }
  b[n] = 0;
  *buf = b;
  *len = n;
  return MOE_OK;
}

int moe_bpe_load(const char *path, moe_bpe **out)
{
  MOE_CHECK_ARG(path && out, "moe_bpe_load: NULL argument");
  *out = NULL;
  char *buf;
  size_t len;
  int rc = slurp(path, &buf, &len);
  if (rc) return rc;
  uint32_t M = 0, *merges = NULL;
  const char *p = buf;
  if (strncmp(p, "moe-bpe ", 8) != 0) {
    rc = moe_error(MOE_EFORMAT, "%s:1: not a moe-bpe vocabulary (first line must be \"moe-bpe 1\")", path);
    goto done;
  }
  p += 8;
  uint32_t ver;
  if (!parse_u32(&p, &ver) || *p != '\n') {
    rc = moe_error(MOE_EFORMAT, "%s:1: malformed version line", path);
    goto done;
  }
  if (ver != 1) {
    rc = moe_error(MOE_EFORMAT, "%s:1: unknown moe-bpe version %u (this reader knows 1)", path, ver);
    goto done;
  }
  p++;
  if (strncmp(p, "merges ", 7) != 0 || (p += 7, !parse_u32(&p, &M)) || *p != '\n') {
    rc = moe_error(MOE_EFORMAT, "%s:2: expected \"merges M\"", path);
    goto done;
  }
  p++;
  if (M > UINT32_MAX - 256 || (size_t)M * 4 > len) {
    rc = moe_error(MOE_EFORMAT, "%s:2: %u merges cannot fit in a %zu-byte file", path, M, len);
    goto done;
  }
  merges = malloc(((size_t)M * 2 + 1) * sizeof *merges);
  if (!merges) { rc = moe_error(MOE_ENOMEM, "%s: out of memory", path); goto done; }
  for (uint32_t i = 0; i < M; i++) {
    uint32_t l, r;
    if ((size_t)(p - buf) >= len) {
      rc = moe_error(MOE_EFORMAT, "%s:%u: file ends after %u of %u merges", path, i + 3, i, M);
      goto done;
    }
    if (!parse_u32(&p, &l) || *p != ' ' || (p++, !parse_u32(&p, &r)) || *p != '\n') {
      rc = moe_error(MOE_EFORMAT, "%s:%u: expected \"LEFT RIGHT\" (two decimal ids)", path, i + 3);
      goto done;
    }
    p++;
    if (l >= 256 + i || r >= 256 + i) {
      rc = moe_error(MOE_ERANGE, "%s:%u: merge %u uses id %u, but only ids < %u exist before it", path,
                     i + 3, i, l >= 256 + i ? l : r, 256 + i);
      goto done;
    }
    merges[2 * i] = l;
    merges[2 * i + 1] = r;
  }
  if ((size_t)(p - buf) != len) {
    rc = moe_error(MOE_EFORMAT, "%s:%u: trailing data after %u merges", path, M + 3, M);
    goto done;
  }
  rc = moe_bpe_from_merges(merges, M, out);
  if (rc) {
    /* A merge the list refuses (one that repeats an earlier merge) is a
     * malformed file: MOE_EFORMAT at its line (merge i is on line 3 + i). */
    char why[512];
    unsigned i;
    snprintf(why, sizeof why, "%s", moe_last_error());
    if (rc == MOE_ENOMEM)
      rc = moe_error(rc, "%s: %s", path, why);
    else if (sscanf(why, "merge %u", &i) == 1)
      rc = moe_error(MOE_EFORMAT, "%s:%u: %s", path, i + 3, why);
    else
      rc = moe_error(MOE_EFORMAT, "%s: %s", path, why);
  }
done:
  free(merges);
  free(buf);
  return rc;
}

static int b64val(int c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decode standard base64 (with '=' padding) of s[0..n) into out; returns
 * the byte count or -1 if malformed. out needs n / 4 * 3 bytes. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
  if (n == 0 || n % 4) return -1;
  long o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
      if (pad) return -1;   /* data after padding */
      v[k] = b64val((unsigned char)s[i + k]);
      if (v[k] < 0) return -1;
    }
    uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[o++] = (uint8_t)(x >> 16);
    if (pad < 2) out[o++] = (uint8_t)(x >> 8);
    if (pad < 1) out[o++] = (uint8_t)x;
  }
  return o;
}

/* Load a ranks file; when pin is not NULL, its sha256 must equal pin. */
static int load_tiktoken(const char *path, const char *pin, moe_bpe **out)
{
  MOE_CHECK_ARG(path && out, "moe_bpe_load_tiktoken: NULL argument");
  *out = NULL;
  char *buf;
  size_t len;
  int rc = slurp(path, &buf, &len);
  if (rc) return rc;
  if (pin) {
    char got[65];
    moei_sha256_hex(buf, len, got);
    if (strcmp(got, pin) != 0) {
      free(buf);
      return moe_error(MOE_ECHECKSUM,
                       "%s: sha256 %s is not the pinned r50k_base sha256 %s: the file is corrupted "
                       "or another ranks file (load a custom one with moe_bpe_load_tiktoken_unpinned)",
                       path, got, pin);
    }
  }
  /* Lines in any rank order: collect (rank, offset, length) then place. */
  size_t nlines = 0;
  for (size_t i = 0; i < len; i++) nlines += buf[i] == '\n';
  if (len && buf[len - 1] != '\n') nlines++;
  uint64_t *loff = malloc((nlines + 1) * sizeof *loff);
  uint32_t *llen = malloc((nlines + 1) * sizeof *llen);
  uint32_t *byrank = malloc((nlines + 1) * sizeof *byrank);
  uint8_t *tokbuf = malloc(len / 4 * 3 + 4);
  moe_bpe *b = calloc(1, sizeof *b);
  if (!loff || !llen || !byrank || !tokbuf || !b) { rc = moe_error(MOE_ENOMEM, "%s: out of memory", path); goto done; }
  if (nlines == 0) { rc = moe_error(MOE_EFORMAT, "%s: empty tiktoken file", path); goto done; }
  for (size_t i = 0; i < nlines; i++) byrank[i] = UINT32_MAX;
  size_t tlen = 0, line = 0;
  for (const char *p = buf; p < buf + len; line++) {
    const char *eol = memchr(p, '\n', (size_t)(buf + len - p));
    if (!eol) eol = buf + len;
    const char *sp = memchr(p, ' ', (size_t)(eol - p));
    const char *q = sp ? sp + 1 : NULL;
    uint32_t rank;
    if (!sp || !parse_u32(&q, &rank) || q != eol) {
      rc = moe_error(MOE_EFORMAT, "%s:%zu: expected \"BASE64 RANK\"", path, line + 1);
      goto done;
    }
    long nb = b64_decode(p, (size_t)(sp - p), tokbuf + tlen);
    if (nb <= 0) {
      rc = moe_error(MOE_EFORMAT, "%s:%zu: malformed base64 token", path, line + 1);
      goto done;
    }
    if (rank >= nlines) {
      rc = moe_error(MOE_ERANGE, "%s:%zu: rank %u >= number of tokens %zu", path, line + 1, rank, nlines);
      goto done;
    }
    if (byrank[rank] != UINT32_MAX) {
      rc = moe_error(MOE_EFORMAT, "%s:%zu: rank %u already given on line %u", path, line + 1, rank,
                     byrank[rank] + 1);
      goto done;
    }
    byrank[rank] = (uint32_t)line;
    loff[line] = tlen;
    llen[line] = (uint32_t)nb;
    tlen += (size_t)nb;
    p = eol + (eol < buf + len);
  }
  b->tiktoken = 1;
  b->V = (uint32_t)nlines;
  int have[256] = {0};
  for (uint32_t r = 0; r < nlines; r++) {
    uint32_t idx;
    int added;
    uint32_t li = byrank[r];
    if (strtab_intern(&b->tok, tokbuf + loff[li], llen[li], &idx, &added)) {
      rc = moe_error(MOE_ENOMEM, "%s: out of memory", path);
      goto done;
    }
    if (!added) {
      rc = moe_error(MOE_EFORMAT, "%s:%u: token of rank %u repeats the bytes of rank %u", path, li + 1, r, idx);
      goto done;
    }
    if (llen[li] == 1) { b->byte_tok[tokbuf[loff[li]]] = r; have[tokbuf[loff[li]]] = 1; }
  }
  for (int c = 0; c < 256; c++)
    if (!have[c]) {
      rc = moe_error(MOE_EFORMAT, "%s: no token for the single byte 0x%02x (every byte needs one)", path, c);
      goto done;
    }
  *out = b;
  b = NULL;
done:
  moe_bpe_free(b);
  free(loff); free(llen); free(byrank); free(tokbuf); free(buf);
  return rc;
}

int moe_bpe_load_tiktoken(const char *path, moe_bpe **out)
{
  return load_tiktoken(path, MOE_BPE_R50K_SHA256, out);
}

int moe_bpe_load_tiktoken_unpinned(const char *path, moe_bpe **out)
{
  return load_tiktoken(path, NULL, out);
}
