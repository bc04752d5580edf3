/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bpe_train.c — the byte-level BPE trainer (moe_bpe_train).
 *
 * The trainer follows the usual fast scheme: pieces of the pre-tokenized
 * text are counted once (a "word" with a frequency), pair counts are kept
 * in a hash table together with the list of words each pair occurs in, and
 * a max-heap with lazy deletion picks the next merge. A merge only touches
 * the words that contain the merged pair, and only the adjacencies next to
 * the merged positions, so the work per merge is proportional to what
 * changes, not to the corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/bpe.h"
#include "internal.h"
#include "bpe_impl.h"

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
