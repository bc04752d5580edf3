/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_textdata.c — the SOTU split by year (on a fixture directory) and the
 * deterministic batcher: same seed -> same batches, windows in bounds,
 * targets one token ahead, evaluation windows tiling the stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/batch.h"
#include "moe/corpus.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "tap.h"

static void test_split(void)
{
  moe_corpus_split s;
  const char *dir = tap_datafile("data/text/sotu");
  int rc = moe_corpus_sotu_split(dir, MOE_SOTU_VALID_FROM, MOE_SOTU_TEST_FROM, &s);
  is_int(rc, MOE_OK, "split the fixture directory");
  if (rc) { diag("  %s", moe_last_error()); return; }
  /* README is ignored; 2000 has two speeches, taken in name order. */
  ok(s.len[0] == strlen("Ninety-nine.\nTwo thousand.\nSecond of 2000.") &&
     !memcmp(s.text[0], "Ninety-nine.\nTwo thousand.\nSecond of 2000.", s.len[0]),
     "train = years <= 2000 joined with newlines, in name order");
  ok(s.len[1] == 21 && !memcmp(s.text[1], "Valid one.\nValid two.", 21), "valid = 2001..2010");
  ok(s.len[2] == 19 && !memcmp(s.text[2], "Test one.\nTest two.", 19), "test = 2011 on");
  ok(s.n_files[0] == 3 && s.n_files[1] == 2 && s.n_files[2] == 2, "file counts 3/2/2");
  ok(s.first_year[0] == 1999 && s.last_year[0] == 2000 && s.first_year[2] == 2011 && s.last_year[2] == 2021,
     "year ranges");
  ok(s.text[1][s.len[1]] == 0, "NUL after the bytes");
  moe_corpus_split_free(&s);

  rc = moe_corpus_sotu_split(dir, 2000, 2000, &s);
  ok(rc == MOE_OK && s.n_files[0] == 1 && s.n_files[1] == 0 && s.n_files[2] == 6 && s.len[1] == 0,
     "valid_from == test_from gives an empty valid split");
  moe_corpus_split_free(&s);
  is_int(moe_corpus_sotu_split(dir, 2011, 2001, &s), MOE_EINVAL, "valid_from > test_from -> EINVAL");
  is_int(moe_corpus_sotu_split(tap_datafile("data/text/no-such-dir"), 2001, 2011, &s), MOE_EIO,
         "missing directory -> EIO");
  ok(strstr(moe_last_error(), "no-such-dir") != NULL, "  ... naming it");
  is_int(moe_corpus_sotu_split(tap_datafile("data/text"), 2001, 2011, &s), MOE_EFORMAT,
         "a directory without speeches -> EFORMAT");
  ok(!strcmp(moe_split_name(MOE_SPLIT_VALID), "valid") && !strcmp(moe_split_name(7), "?"), "split names");
}

/* The real corpus, when fetched: the split data.md describes. */
static void test_real_split(void)
{
  char dir[4096];
  const char *dd = getenv("MOE_DATA_DIR"), *top = getenv("top_srcdir");
  const char *cands[3] = {dd && *dd ? dd : NULL, top && *top ? top : ".", "."};
  dir[0] = 0;
  for (int k = 0; k < 3 && !dir[0]; k++) {
    if (!cands[k]) continue;
    snprintf(dir, sizeof dir, k ? "%s/data/sotu" : "%s/sotu", cands[k]);
    FILE *f;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/1790_george_washington_n.txt", dir);
    if (!(f = fopen(probe, "rb"))) dir[0] = 0;
    else fclose(f);
  }
  if (!dir[0]) {
    ok(1, "real SOTU split # SKIP no data/sotu (run datasets/fetch.sh)");
    return;
  }
  moe_corpus_split s;
  int rc = moe_corpus_sotu_split(dir, MOE_SOTU_VALID_FROM, MOE_SOTU_TEST_FROM, &s);
  ok(rc == MOE_OK && s.n_files[0] == 212 && s.n_files[1] == 10 && s.n_files[2] == 11,
     "real SOTU: 212/10/11 speeches (%s)", dir);
  ok(rc == MOE_OK && s.len[0] == 10039659 && s.len[1] == 312810 && s.len[2] == 409174,
     "real SOTU: 10039659/312810/409174 bytes");
  ok(rc == MOE_OK && s.first_year[0] == 1790 && s.last_year[0] == 2000 && s.first_year[1] == 2001 &&
     s.last_year[1] == 2010 && s.first_year[2] == 2011 && s.last_year[2] == 2021, "real SOTU: year ranges");
  if (rc == MOE_OK) moe_corpus_split_free(&s);
}

static void test_batch(void)
{
  enum { N = 1000, T = 17, B = 64 };
  moe_token *tok = malloc(N * sizeof *tok); /* (N) */
  for (uint32_t i = 0; i < N; i++) tok[i] = (i * 2654435761u) % 7919; /* distinct enough to locate */
  uint32_t x1[B * T], y1[B * T], x2[B * T], y2[B * T]; /* (B, T) */
  size_t s1[B], s2[B];
  gsl_rng *r1 = moe_rng_alloc(moe_seed_derive(7, "batch")), *r2 = moe_rng_alloc(moe_seed_derive(7, "batch"));
  gsl_rng *r3 = moe_rng_alloc(moe_seed_derive(8, "batch"));
  int same = 1, inb = 1, shift = 1;
  for (int step = 0; step < 20; step++) {
    moe_batch_random(tok, N, T, B, r1, x1, y1, s1);
    moe_batch_random(tok, N, T, B, r2, x2, y2, s2);
    same &= !memcmp(x1, x2, sizeof x1) && !memcmp(y1, y2, sizeof y1) && !memcmp(s1, s2, sizeof s1);
    for (int b = 0; b < B; b++) {
      inb &= s1[b] + T + 1 <= N;
      for (int t = 0; t < T; t++) {
        shift &= x1[b * T + t] == tok[s1[b] + t] && y1[b * T + t] == tok[s1[b] + t + 1];
        if (t + 1 < T) shift &= y1[b * T + t] == x1[b * T + t + 1];
      }
    }
  }
  ok(same, "same seed -> identical batches over 20 steps");
  ok(inb, "every window lies inside the stream");
  ok(shift, "x is the window, y the same window one token ahead");
  moe_batch_random(tok, N, T, B, r3, x2, y2, s2);
  moe_batch_random(tok, N, T, B, r1, x1, y1, s1);
  ok(memcmp(s1, s2, sizeof s1) != 0, "another seed -> other batches");

  /* Both extreme starts occur on a short stream: 0 and n - T - 1. */
  moe_token xs[5], ys[5];
  size_t st, lo = 99, hi = 0;
  for (int k = 0; k < 400; k++) {
    moe_batch_random(tok, 12, 5, 1, r1, xs, ys, &st);
    if (st < lo) lo = st;
    if (st > hi) hi = st;
  }
  ok(lo == 0 && hi == 6, "starts cover exactly [0, n-T-1] = [0, 6] (saw [%zu, %zu])", lo, hi);
  is_int(moe_batch_random(tok, 5, 5, 1, r1, xs, ys, &st), MOE_EINVAL, "n = T (no room for a target) -> EINVAL");
  is_int(moe_batch_random(tok, 12, 0, 1, r1, xs, ys, &st), MOE_EINVAL, "T = 0 -> EINVAL");

  /* Evaluation windows tile the stream. */
  size_t W = moe_batch_eval_windows(N, T);
  is_int((long)W, (N - 1) / T, "eval windows = floor((n-1)/T)");
  moe_token *ex = malloc(W * T * sizeof *ex), *ey = malloc(W * T * sizeof *ey); /* (W, T) */
  size_t got = 0, filled = 0;
  int rc = MOE_OK;
  while (got < W && rc == MOE_OK) {
    rc = moe_batch_eval(tok, N, T, got, 5, ex + got * T, ey + got * T, &filled);
    got += filled;
  }
  ok(rc == MOE_OK && got == W, "eval: %zu windows in batches of 5", got);
  ok(!memcmp(ex, tok, W * T * sizeof *ex) && !memcmp(ey, tok + 1, W * T * sizeof *ey),
     "eval: inputs are tokens[0, W*T), targets tokens[1, W*T]");
  is_int(moe_batch_eval(tok, N, T, W, 5, ex, ey, &filled), MOE_ERANGE, "eval: window past the end -> ERANGE");
  is_int((long)moe_batch_eval_windows(T + 1, T), 1, "T+1 tokens hold one eval window");
  is_int((long)moe_batch_eval_windows(T, T), 0, "T tokens hold none");
  free(ex);
  free(ey);
  free(tok);
  gsl_rng_free(r1);
  gsl_rng_free(r2);
  gsl_rng_free(r3);
}

int main(void)
{
  test_split();
  test_real_split();
  test_batch();
  return tap_done();
}
