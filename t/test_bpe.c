/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_bpe.c — byte-level BPE: pre-tokenizer pieces, trainer against a
 * naive reference (t/gen_text_fixtures.py), determinism, vocabulary files
 * and their errors, round trips on random byte strings, a tiny tiktoken
 * file against a reference encoder. GPT-2's r50k against OpenAI's tiktoken:
 * t/test_tiktoken.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/bpe.h"
#include "moe/corpus.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "tap.h"

static uint8_t *slurp(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  uint8_t *b = malloc((size_t)len + 1);
  if (fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); fclose(f); return NULL; }
  fclose(f);
  b[len] = 0;
  *n = (size_t)len;
  return b;
}

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

/* The pieces of s joined with '|' must equal want. */
static void check_pieces(const char *s, size_t n, const char *want, size_t wn, const char *name)
{
  char got[512];
  size_t o = 0;
  for (size_t pos = 0; pos < n;) {
    size_t L = moe_bpe_pretok((const uint8_t *)s, n, pos);
    if (L == 0 || o + L + 2 >= sizeof got) { o = 0; break; }
    if (pos) got[o++] = '|';
    memcpy(got + o, s + pos, L);
    o += L;
    pos += L;
  }
  got[o] = 0;
  int same = o == wn && memcmp(got, want, wn) == 0;
  ok(same, "pieces: %s", name);
  if (!same) diag("  got  [%s]\n#   want [%s]", got, want);
}

/* String literals only: their lengths come from sizeof (NULs allowed). */
#define PIECES(s, want, name) check_pieces(s, sizeof(s) - 1, want, sizeof(want) - 1, name)

static int same_merges(const moe_bpe *a, const moe_bpe *b)
{
  if (moe_bpe_n_merges(a) != moe_bpe_n_merges(b)) return 0;
  for (uint32_t i = 0; i < moe_bpe_n_merges(a); i++) {
    uint32_t al, ar, bl, br;
    moe_bpe_merge(a, i, &al, &ar);
    moe_bpe_merge(b, i, &bl, &br);
    if (al != bl || ar != br) return 0;
  }
  return 1;
}

/* decode(encode(x)) == x with every id < V. */
static int roundtrip(const moe_bpe *b, const uint8_t *x, size_t n)
{
  moe_token *ids = malloc((n + 1) * sizeof *ids); /* (n) at most one token per byte */
  size_t nid = 0;
  uint8_t *y = NULL;
  size_t ny = 0;
  int good = moe_bpe_encode(b, x, n, ids, &nid) == MOE_OK && nid <= n;
  for (size_t i = 0; good && i < nid; i++) good = ids[i] < moe_bpe_vocab_size(b);
  good = good && moe_bpe_decode(b, ids, nid, &y, &ny) == MOE_OK && ny == n && memcmp(x, y, n) == 0;
  free(ids);
  free(y);
  return good;
}

/* Random byte strings of three kinds: uniform bytes (NUL, >= 0x80, invalid
 * UTF-8), mostly-ASCII prose-like text, and UTF-8 fragments mixed with
 * spaces and stray continuation bytes. */
static size_t random_bytes(gsl_rng *r, uint8_t *x, size_t maxn, int kind)
{
  static const char *frag[] = {" the", "\xe2\x80\x99", "s", "\xe2\x80\x94", " \xc3\xa9t\xc3\xa9", "\n\n",
                               "\xf0\x9f\x8e\x89", "\xc2\xa0", "  ", "'ll", "42", "\x80", "\xed\xa0\x80",
                               "\xc3", "\t", "\x00", "e\xcc\x81"};
  size_t n = gsl_rng_uniform_int(r, maxn + 1), i = 0;
  while (i < n) {
    if (kind == 0) x[i++] = (uint8_t)gsl_rng_uniform_int(r, 256);
    else if (kind == 1) {
      double u = gsl_rng_uniform(r);
      x[i++] = u < 0.18 ? ' ' : u < 0.2 ? '\n' : u < 0.25 ? (uint8_t)('0' + gsl_rng_uniform_int(r, 10))
             : u < 0.3 ? (uint8_t)".,;'!?-"[gsl_rng_uniform_int(r, 7)] : (uint8_t)('a' + gsl_rng_uniform_int(r, 26));
    } else {
      const char *f = frag[gsl_rng_uniform_int(r, sizeof frag / sizeof *frag)];
      size_t fl = f[0] ? strlen(f) : 1; /* "\x00" is one NUL byte */
      for (size_t k = 0; k < fl && i < n; k++) x[i++] = (uint8_t)f[k];
    }
  }
  return n;
}

static void test_pretok(void)
{
  PIECES("Hello world", "Hello| world", "two words");
  PIECES("it's we'll they're I'd", "it|'s| we|'ll| they|'re| I|'d", "contractions");
  PIECES("IT'S 's'S", "IT|'|S| '|s|'|S", "contractions are lowercase-only and start a piece");
  PIECES("a  b", "a| | b", "double space: the last one joins the word");
  PIECES("x\n\ny", "x|\n|\n|y", "newlines before a word");
  PIECES("end  ", "end|  ", "trailing spaces stay together");
  PIECES("1,200 and 38%", "1|,|200| and| 38|%", "digits and punctuation");
  PIECES(" \t x", " \t| x", "mixed whitespace");
  PIECES("Caf\xc3\xa9 na\xc3\xafve", "Caf\xc3\xa9| na\xc3\xafve", "UTF-8 letters");
  PIECES("\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x94 ok",
         "\xe2\x80\x9c|quoted|\xe2\x80\x9d| \xe2\x80\x94| ok", "typographic quotes and dash are punctuation");
  PIECES("e\xcc\x81t\xc3\xa9", "e|\xcc\x81|t\xc3\xa9", "a combining mark is not a letter");
  PIECES("a\xc2\xa0" "b", "a|\xc2\xa0|b", "NBSP is a space but does not join the word");
  PIECES("\xff\xfe\xc3 x\x80", "\xff\xfe\xc3| x|\x80", "invalid UTF-8 bytes are punctuation");
  PIECES("\xc2\xbd\xc2\xb2 3\xc2\xb0", "\xc2\xbd\xc2\xb2| 3|\xc2\xb0", "Latin-1 numbers and symbols");
  PIECES("a\0b", "a|\0|b", "NUL");
}

static void test_train(void)
{
  size_t n = 0;
  uint8_t *corpus = slurp(tap_datafile("data/text/tiny_corpus.txt"), &n);
  ok(corpus != NULL && n > 500, "tiny corpus read (%zu bytes)", n);
  if (!corpus) return;

  moe_bpe *ref = NULL, *a = NULL, *b = NULL, *c = NULL;
  int rc = moe_bpe_load(tap_datafile("data/text/tiny_merges.bpe"), &ref);
  is_int(rc, MOE_OK, "reference merges load");
  if (rc) { diag("  %s", moe_last_error()); free(corpus); return; }
  uint32_t M = moe_bpe_n_merges(ref);
  is_int(M, 120, "reference has 120 merges");

  moe_bpe_train_stats st;
  rc = moe_bpe_train(corpus, n, 256 + M, &a, &st);
  is_int(rc, MOE_OK, "train on the tiny corpus");
  ok(a && same_merges(a, ref), "merges equal the naive reference trainer's, tie rule included");
  is_int(st.merges, M, "stats: merges");
  ok(st.unique_pieces > 50 && st.unique_pieces < st.pieces, "stats: %llu distinct of %llu pieces",
     (unsigned long long)st.unique_pieces, (unsigned long long)st.pieces);
  is_int(moe_bpe_vocab_size(a), 256 + M, "vocabulary size 256 + merges");

  /* A second training from a separate copy gives identical merges. */
  uint8_t *copy = malloc(n);
  memcpy(copy, corpus, n);
  rc = moe_bpe_train(copy, n, 256 + M, &b, NULL);
  ok(rc == MOE_OK && same_merges(a, b), "training twice gives identical merges");
  free(copy);

  /* Token bytes are the concatenation of the merged pair. */
  int cat_ok = 1;
  for (uint32_t i = 0; i < M; i++) {
    uint32_t l, r;
    size_t ln, rn, tn;
    moe_bpe_merge(a, i, &l, &r);
    const uint8_t *lb = moe_bpe_token_bytes(a, l, &ln), *rb = moe_bpe_token_bytes(a, r, &rn),
                  *tb = moe_bpe_token_bytes(a, 256 + i, &tn);
    cat_ok &= tn == ln + rn && !memcmp(tb, lb, ln) && !memcmp(tb + ln, rb, rn);
  }
  ok(cat_ok, "token 256+i is the bytes of its left then right");
  size_t len1;
  const uint8_t *t0 = moe_bpe_token_bytes(a, 256, &len1);
  ok(t0 && len1 == 2 && !memcmp(t0, " t", 2), "first merge of the tiny corpus is \" t\"");
  ok(moe_bpe_token_bytes(a, 256 + M, &len1) == NULL, "token_bytes(V) is NULL");

  /* Encoding compresses, and round-trips. */
  moe_token *ids = malloc(n * sizeof *ids); /* (n) */
  size_t nid = 0;
  rc = moe_bpe_encode(a, corpus, n, ids, &nid);
  ok(rc == MOE_OK && nid < n / 2, "encode: %zu bytes -> %zu tokens", n, nid);
  ok(roundtrip(a, corpus, n), "corpus round-trips");
  free(ids);

  /* Save, load, same merges and same encodings. */
  const char *vf = "test_bpe_vocab.bpe";
  is_int(moe_bpe_save(a, vf), MOE_OK, "save");
  rc = moe_bpe_load(vf, &c);
  ok(rc == MOE_OK && same_merges(a, c), "load(save(v)) has the same merges");
  unlink(vf);

  /* Pairs run out: "abab" has 2 distinct pieces' worth of pairs only. */
  moe_bpe *d = NULL;
  rc = moe_bpe_train((const uint8_t *)"abab", 4, 1000, &d, &st);
  ok(rc == MOE_OK && st.merges == 2 && moe_bpe_vocab_size(d) == 258, "training stops when no pair is left");
  uint32_t l, r;
  ok(d && moe_bpe_merge(d, 0, &l, &r) == MOE_OK && l == 'a' && r == 'b', "abab: first merge a b");
  ok(d && moe_bpe_merge(d, 1, &l, &r) == MOE_OK && l == 256 && r == 256, "abab: second merge ab ab");
  is_int(moe_bpe_merge(d, 2, &l, &r), MOE_ERANGE, "merge index past the end -> ERANGE");
  moe_bpe_free(d);
  is_int(moe_bpe_train(corpus, n, 255, &d, NULL), MOE_EINVAL, "vocabulary < 256 -> EINVAL");

  /* Ties: "ab cd" has four pairs of count 1..; the lowest (left, right) wins. */
  rc = moe_bpe_train((const uint8_t *)"cd ab", 5, 257, &d, NULL);
  ok(rc == MOE_OK && moe_bpe_merge(d, 0, &l, &r) == MOE_OK && l == ' ' && r == 'a',
     "tie between equal counts: lowest (left, right) = (' ', 'a') first");
  moe_bpe_free(d);

  /* Many ties and overlapping pairs ("a a a"): still the reference's merges. */
  size_t nab = 0;
  uint8_t *ab = slurp(tap_datafile("data/text/tiny_ab.txt"), &nab);
  moe_bpe *abref = NULL, *abv = NULL;
  rc = moe_bpe_load(tap_datafile("data/text/tiny_ab_merges.bpe"), &abref);
  ok(ab && rc == MOE_OK && moe_bpe_train(ab, nab, 256 + moe_bpe_n_merges(abref), &abv, NULL) == MOE_OK &&
     same_merges(abv, abref), "a/b/space corpus: %u merges equal the reference's", moe_bpe_n_merges(abref));
  ok(ab && abv && roundtrip(abv, ab, nab), "a/b/space corpus round-trips");
  moe_bpe_free(abref);
  moe_bpe_free(abv);
  free(ab);

  moe_bpe_free(ref);
  moe_bpe_free(a);
  moe_bpe_free(b);
  moe_bpe_free(c);
  free(corpus);
}

static void test_random_roundtrip(void)
{
  size_t n = 0;
  uint8_t *corpus = slurp(tap_datafile("data/text/tiny_corpus.txt"), &n);
  gsl_rng *r = moe_rng_alloc(moe_seed_derive(20250516, "bpe-roundtrip"));
  moe_bpe *text_v = NULL, *byte_v = NULL, *tik = NULL;
  moe_bpe_train(corpus, n, 400, &text_v, NULL);
  /* A vocabulary trained on random bytes has merges among non-ASCII bytes. */
  uint8_t *noise = malloc(20000);
  size_t nn = 0;
  for (int k = 0; k < 40; k++) nn += random_bytes(r, noise + nn, 400, k % 3);
  moe_bpe_train(noise, nn, 600, &byte_v, NULL);
  moe_bpe_load_tiktoken_unpinned(tap_datafile("data/text/tiny.tiktoken"), &tik);
  ok(text_v && byte_v && tik, "three vocabularies for the round trips");
  if (text_v && byte_v && tik) {
    const moe_bpe *vs[3] = {text_v, byte_v, tik};
    const char *vn[3] = {"trained on text", "trained on random bytes", "tiny tiktoken"};
    uint8_t *x = malloc(2048);
    for (int v = 0; v < 3; v++)
      for (int kind = 0; kind < 3; kind++) {
        int good = 1;
        for (int rep = 0; rep < 150; rep++) {
          size_t len = random_bytes(r, x, 2000, kind);
          good &= roundtrip(vs[v], x, len);
        }
        ok(good, "150 random strings of kind %d round-trip (%s)", kind, vn[v]);
      }
    ok(roundtrip(text_v, (const uint8_t *)"", 0), "empty string round-trips");
    uint8_t big[5000];
    memset(big, ' ', sizeof big);
    ok(roundtrip(text_v, big, sizeof big), "a 5000-space piece round-trips");
    free(x);

    moe_token bad[2] = {65, 400};
    uint8_t *y = NULL;
    size_t ny = 0;
    moe_error_clear();
    is_int(moe_bpe_decode(text_v, bad, 2, &y, &ny), MOE_ERANGE, "decode: id >= V -> ERANGE");
    ok(y == NULL && strstr(moe_last_error(), "token 1"), "decode: message names the position");
  }
  free(noise);
  free(corpus);
  moe_bpe_free(text_v);
  moe_bpe_free(byte_v);
  moe_bpe_free(tik);
  gsl_rng_free(r);
}

static void check_load_error(const char *text, int code, const char *what, int tiktoken)
{
  const char *path = tiktoken ? "test_bpe_bad.tiktoken" : "test_bpe_bad.bpe";
  write_file(path, text);
  moe_bpe *b = (moe_bpe *)&b;
  moe_error_clear();
  int rc = tiktoken ? moe_bpe_load_tiktoken_unpinned(path, &b) : moe_bpe_load(path, &b);
  is_int(rc, code, "%s: \"%s\" -> %s", tiktoken ? "tiktoken" : "vocab", what, moe_strerror(code));
  ok(b == NULL && strstr(moe_last_error(), path) && strstr(moe_last_error(), what),
     "  ... message names the file and says \"%s\"", what);
  diag("  %s", moe_last_error());
  unlink(path);
}

/* Encoding a text at once (with the encoder's piece cache, past its size
 * bound) equals encoding each pre-tokenizer piece on its own. */
static void test_whole_equals_pieces(void)
{
  size_t n = 0;
  uint8_t *corpus = slurp(tap_datafile("data/text/tiny_corpus.txt"), &n);
  moe_bpe *b = NULL;
  if (!corpus || moe_bpe_train(corpus, n, 400, &b, NULL)) { ok(0, "vocabulary for the cache test"); free(corpus); return; }
  /* 300000 distinct words (more than the cache keeps), each followed by a
   * word of the corpus so that cached pieces recur throughout. */
  size_t cap = 300000 * 16 + 1, len = 0;
  uint8_t *text = malloc(cap);
  for (uint32_t i = 0; i < 300000; i++) {
    uint32_t v = i * 2654435761u;
    text[len++] = ' ';
    for (int k = 0; k < 5; k++) { text[len++] = (uint8_t)('a' + v % 26); v /= 26; }
    static const char *common[] = {" the", " union", ",", " of", "\n", " teachers", "'s"};
    const char *c = common[i % 7];
    memcpy(text + len, c, strlen(c));
    len += strlen(c);
  }
  moe_token *whole = malloc(len * sizeof *whole), *each = malloc(len * sizeof *each); /* (n) */
  size_t nw = 0, ne = 0, k;
  int rc = moe_bpe_encode(b, text, len, whole, &nw);
  for (size_t pos = 0; rc == MOE_OK && pos < len; pos += k) {
    size_t L = moe_bpe_pretok(text, len, pos), got = 0;
    k = L;
    rc = moe_bpe_encode(b, text + pos, L, each + ne, &got);
    ne += got;
  }
  ok(rc == MOE_OK && nw == ne && !memcmp(whole, each, nw * sizeof *whole),
     "whole-text encoding (%zu tokens) equals piece-by-piece encoding", nw);
  ok(roundtrip(b, text, len), "  ... and round-trips (%zu bytes)", len);
  free(whole);
  free(each);
  free(text);
  free(corpus);
  moe_bpe_free(b);
}

static void test_load_errors(void)
{
  check_load_error("moe-bpf 1\nmerges 0\n", MOE_EFORMAT, ":1: not a moe-bpe", 0);
  check_load_error("moe-bpe 2\nmerges 0\n", MOE_EFORMAT, ":1: unknown moe-bpe version 2", 0);
  check_load_error("moe-bpe 1\nmerge 1\n32 116\n", MOE_EFORMAT, ":2: expected", 0);
  check_load_error("moe-bpe 1\nmerges 2\n32 116\n", MOE_EFORMAT, ":4: file ends after 1 of 2", 0);
  check_load_error("moe-bpe 1\nmerges 2\n32 116\n256 x\n", MOE_EFORMAT, ":4: expected \"LEFT RIGHT\"", 0);
  check_load_error("moe-bpe 1\nmerges 2\n32 116\n257 101\n", MOE_ERANGE, ":4: merge 1 uses id 257", 0);
  check_load_error("moe-bpe 1\nmerges 1\n32 116\n9 9\n", MOE_EFORMAT, ":4: trailing data", 0);
  check_load_error("moe-bpe 1\nmerges 2\n32 116\n32 116\n", MOE_EFORMAT, ":4: merge 1 (32 116) repeats merge 0", 0);
  check_load_error("moe-bpe 1\nmerges 0\n32 -116\n", MOE_EFORMAT, "trailing", 0);

  /* tiktoken files: build a valid 256-byte file, then break it. */
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *good = malloc(256 * 16 + 64), *bad = malloc(256 * 16 + 128);
  size_t o = 0;
  for (int c = 0; c < 256; c++)
    o += (size_t)sprintf(good + o, "%c%c== %d\n", b64[c >> 2], b64[(c & 3) << 4], c);
  moe_bpe *t = NULL;
  write_file("test_bpe_ok.tiktoken", good);
  ok(moe_bpe_load_tiktoken_unpinned("test_bpe_ok.tiktoken", &t) == MOE_OK && moe_bpe_vocab_size(t) == 256,
     "a 256-byte tiktoken file loads");
  ok(t && roundtrip(t, (const uint8_t *)"\x00\xff bytes only", 13), "  ... and encodes byte by byte");
  moe_bpe_free(t);
  /* A token no merge path reaches ("xyz" without "xy" or "yz") is still
   * used for a piece that is exactly it, as tiktoken does. */
  sprintf(bad, "%seHl6 256\n", good);
  write_file("test_bpe_ok.tiktoken", bad);
  t = NULL;
  moe_token xi[8];
  size_t nx = 0;
  ok(moe_bpe_load_tiktoken_unpinned("test_bpe_ok.tiktoken", &t) == MOE_OK &&
     moe_bpe_encode(t, (const uint8_t *)"xyz", 3, xi, &nx) == MOE_OK && nx == 1 && xi[0] == 256,
     "a piece that is a token encodes as that token");
  ok(t && moe_bpe_encode(t, (const uint8_t *)"xyzz", 4, xi, &nx) == MOE_OK && nx == 4,
     "  ... but is not reached by merging inside a longer piece");
  moe_bpe_free(t);
  unlink("test_bpe_ok.tiktoken");
  sprintf(bad, "%sIQ== 256\n", good);
  check_load_error(bad, MOE_EFORMAT, "repeats the bytes of rank 33", 1);
  sprintf(bad, "%sISE= 300\n", good);
  check_load_error(bad, MOE_ERANGE, ":257: rank 300 >= number of tokens 257", 1);
  sprintf(bad, "%sISE= 5\n", good);
  check_load_error(bad, MOE_EFORMAT, ":257: rank 5 already given on line 6", 1);
  sprintf(bad, "%sIS*= 256\n", good);
  check_load_error(bad, MOE_EFORMAT, ":257: malformed base64", 1);
  sprintf(bad, "%sISE=256\n", good);
  check_load_error(bad, MOE_EFORMAT, ":257: expected \"BASE64 RANK\"", 1);
  check_load_error(strchr(good, '\n') + 1, MOE_ERANGE, "rank 255 >= number of tokens 255", 1);
  check_load_error("ISE= 0\n", MOE_EFORMAT, "no token for the single byte 0x00", 1);
  free(good);
  free(bad);

  moe_bpe *x = NULL;
  is_int(moe_bpe_load("test_bpe_missing.bpe", &x), MOE_EIO, "missing vocabulary file -> EIO");
  moe_token m[4] = {97, 98, 256, 300};
  is_int(moe_bpe_from_merges(m, 2, &x), MOE_ERANGE, "from_merges: id >= 256 + i -> ERANGE");
  /* Each merge doubles the last token (merge i spells 2^(i+1) bytes): merge
   * 26 would bring the total to 2^28 + 254 bytes. */
  size_t len;
  moe_token dbl[2 * 40];
  for (uint32_t i = 0; i < 40; i++) dbl[2 * i] = dbl[2 * i + 1] = i ? 255 + i : 97;
  moe_error_clear();
  x = (moe_bpe *)&x;
  is_int(moe_bpe_from_merges(dbl, 40, &x), MOE_ERANGE, "from_merges: tokens doubling 40 times -> ERANGE");
  ok(x == NULL && strstr(moe_last_error(), "merge 26 (281 281)"), "  ... at the merge that crosses the bound: %s",
     moe_last_error());
  write_file("test_bpe_bad.bpe", "moe-bpe 1\nmerges 3\n97 97\n256 256\n257 257\n");
  ok(moe_bpe_load("test_bpe_bad.bpe", &x) == MOE_OK && moe_bpe_token_bytes(x, 258, &len) && len == 8,
     "  ... while a few doublings load (token 258 is 8 bytes)");
  moe_bpe_free(x);
  unlink("test_bpe_bad.bpe");
}

/* Hex string -> bytes; returns length. */
static size_t unhex(const char *h, uint8_t *out)
{
  size_t n = 0;
  for (; h[0] && h[1] && h[0] != '\t'; h += 2) {
    unsigned v;
    sscanf(h, "%2x", &v);
    out[n++] = (uint8_t)v;
  }
  return n;
}

static void test_tiktoken_tiny(void)
{
  moe_bpe *t = NULL;
  int rc = moe_bpe_load_tiktoken_unpinned(tap_datafile("data/text/tiny.tiktoken"), &t);
  is_int(rc, MOE_OK, "tiny.tiktoken loads");
  if (rc) { diag("  %s", moe_last_error()); return; }
  size_t len;
  const uint8_t *t0 = moe_bpe_token_bytes(t, 0, &len);
  ok(t0 && len == 1 && t0[0] == '!', "rank 0 is '!' as in GPT-2 (lines were shuffled on disk)");
  ok(moe_bpe_n_merges(t) == 0, "a tiktoken vocabulary has no merge list");
  is_int(moe_bpe_save(t, "test_bpe_never.bpe"), MOE_EINVAL, "saving a tiktoken vocabulary -> EINVAL");
  FILE *f = fopen(tap_datafile("data/text/tiny_tiktoken_expect.txt"), "r");
  char line[4096];
  int lines = 0;
  while (f && fgets(line, sizeof line, f)) {
    uint8_t text[1024];
    size_t n = unhex(line, text);
    moe_token want[1024], got[1024];
    size_t nw = 0, ng = 0;
    for (char *p = strchr(line, '\t') + 1; *p && *p != '\n';) {
      want[nw++] = (uint32_t)strtoul(p, &p, 10);
      while (*p == ' ') p++;
    }
    rc = moe_bpe_encode(t, text, n, got, &ng);
    ok(rc == MOE_OK && ng == nw && !memcmp(got, want, nw * sizeof *got),
       "tiny tiktoken: line %d encodes as the reference (%zu tokens)", ++lines, nw);
    ok(roundtrip(t, text, n), "  ... and round-trips");
  }
  if (f) fclose(f);
  is_int(lines, 5, "five reference lines");
  moe_bpe_free(t);
}

/* A merge-list vocabulary on runs of one letter: equal pairs side by side,
 * the leftmost merged first (t/gen_text_fixtures.py's merges_encode). */
static void test_merge_ties(void)
{
  moe_bpe *v = NULL;
  int rc = moe_bpe_load(tap_datafile("data/text/tiny_ab_merges.bpe"), &v);
  FILE *f = fopen(tap_datafile("data/text/tiny_ab_expect.txt"), "r");
  ok(rc == MOE_OK && f, "a/b/space merges and their reference encodings load");
  char line[4096];
  int lines = 0;
  while (v && f && fgets(line, sizeof line, f)) {
    uint8_t text[1024];
    size_t n = unhex(line, text), nw = 0, ng = 0;
    moe_token want[1024], got[1024];
    for (char *p = strchr(line, '\t') + 1; *p && *p != '\n';) {
      want[nw++] = (uint32_t)strtoul(p, &p, 10);
      while (*p == ' ') p++;
    }
    rc = moe_bpe_encode(v, text, n, got, &ng);
    ok(rc == MOE_OK && ng == nw && !memcmp(got, want, nw * sizeof *got),
       "merge ties: line %d (%zu bytes) encodes as the reference (%zu tokens)", ++lines, n, nw);
  }
  if (f) fclose(f);
  is_int(lines, 9, "nine reference lines");
  moe_bpe_free(v);
}

int main(void)
{
  test_pretok();
  test_train();
  test_random_roundtrip();
  test_whole_equals_pieces();
  test_load_errors();
  test_tiktoken_tiny();
  test_merge_ties();
  return tap_done();
}
