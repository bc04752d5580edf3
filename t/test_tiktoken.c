/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_tiktoken.c — GPT-2's r50k_base against OpenAI's tiktoken, on all of
 * Unicode. The references come from tiktoken itself (npm `tiktoken`, its
 * Rust core in WASM) through t/gen_tiktoken_fixture.js:
 *   - tiktoken_classes.txt: the pre-tokenizer class (\p{L}, \p{N}, other,
 *     \s) of every code point, checked through moe_bpe_pretok;
 *   - r50k_codepoints.txt.gz: r50k ids of every code point in three
 *     contexts, hashed per 256-code-point block;
 *   - r50k_lines.txt: ids of mixed-script lines (Arabic, Devanagari, CJK,
 *     emoji, ...) and of runs where BPE's leftmost tie rule decides.
 * The ranks file is committed (t/data/text/r50k_base.tiktoken.gz, MIT) and
 * loaded through the pinned sha256; corrupted copies must be refused. The
 * SOTU token counts run when the fetched corpus is present. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "moe/bpe.h"
#include "moe/corpus.h"
#include "moe/error.h"
#include "tap.h"

static char r50k_path[4096];

static size_t utf8_encode(uint32_t c, uint8_t *o)
{
  if (c < 0x80) { o[0] = (uint8_t)c; return 1; }
  if (c < 0x800) { o[0] = (uint8_t)(0xC0 | c >> 6); o[1] = (uint8_t)(0x80 | (c & 63)); return 2; }
  if (c < 0x10000) {
    o[0] = (uint8_t)(0xE0 | c >> 12); o[1] = (uint8_t)(0x80 | (c >> 6 & 63)); o[2] = (uint8_t)(0x80 | (c & 63));
    return 3;
  }
  o[0] = (uint8_t)(0xF0 | c >> 18); o[1] = (uint8_t)(0x80 | (c >> 12 & 63));
  o[2] = (uint8_t)(0x80 | (c >> 6 & 63)); o[3] = (uint8_t)(0x80 | (c & 63));
  return 4;
}

/* The committed ranks file, unpacked into the test's TMPDIR. */
static int unpack_r50k(void)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(r50k_path, sizeof r50k_path, "%s/test_tiktoken.%ld/r50k_base.tiktoken", tmp && *tmp ? tmp : ".",
           (long)getpid());
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(r50k_path, '/') - r50k_path), r50k_path);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd) != 0) return 0;
  gzFile in = gzopen(tap_datafile("data/text/r50k_base.tiktoken.gz"), "rb");
  FILE *out = fopen(r50k_path, "wb");
  if (!in || !out) { if (in) gzclose(in); if (out) fclose(out); return 0; }
  char buf[65536];
  int n, good = 1;
  while ((n = gzread(in, buf, sizeof buf)) > 0) good &= fwrite(buf, 1, (size_t)n, out) == (size_t)n;
  good &= n == 0;
  gzclose(in);
  good &= fclose(out) == 0;
  return good;
}

static void remove_r50k_dir(void)
{
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)(strrchr(r50k_path, '/') - r50k_path), r50k_path);
  if (system(cmd) != 0) diag("could not remove %s", r50k_path);
}

/* ---------------------------------------------------------------------- */
/* Classes: the four probes "a" X, "1" X, "!" X, X "\n" are one piece
 * exactly when X is \p{L}, \p{N}, other, \s (bits 1, 2, 4, 8). */

static unsigned probe_bits(uint32_t cp)
{
  uint8_t x[4], s[8];
  size_t xl = utf8_encode(cp, x);
  unsigned bits = 0;
  static const char pre[3] = {'a', '1', '!'};
  for (int k = 0; k < 3; k++) {
    s[0] = (uint8_t)pre[k];
    memcpy(s + 1, x, xl);
    if (moe_bpe_pretok(s, xl + 1, 0) == xl + 1) bits |= 1u << k;
  }
  memcpy(s, x, xl);
  s[xl] = '\n';
  if (moe_bpe_pretok(s, xl + 1, 0) == xl + 1) bits |= 8;
  return bits;
}

static void test_classes(void)
{
  FILE *f = fopen(tap_datafile("data/text/tiktoken_classes.txt"), "r");
  ok(f != NULL, "tiktoken_classes.txt opens");
  if (!f) return;
  char line[256];
  uint32_t next = 0, bad = 0, covered = 0;
  int order_ok = 1;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    unsigned lo, hi, want;
    if (sscanf(line, "%x %x %u", &lo, &hi, &want) != 3 || hi < lo || hi > 0x10FFFF) { order_ok = 0; break; }
    if (lo != next && !(next == 0xD800 && lo == 0xE000)) order_ok = 0;
    next = hi + 1;
    for (uint32_t cp = lo; cp <= hi; cp++) {
      unsigned got = probe_bits(cp);
      covered++;
      if (got != want && bad++ < 10)
        diag("  U+%04X: probes say %u, tiktoken says %u (1 L, 2 N, 4 other, 8 space)", cp, got, want);
    }
  }
  fclose(f);
  ok(order_ok && next == 0x110000 && covered == 0x110000 - 0x800,
     "the class ranges cover U+0000..U+10FFFF minus the surrogates (%u code points)", covered);
  ok(bad == 0, "pre-tokenizer classes equal tiktoken's on every code point (%u mismatches)", bad);
}

/* ---------------------------------------------------------------------- */
/* r50k ids of every code point, hashed per block as the generator does. */

typedef struct { uint32_t a, b; } lanes;

static void mix(lanes *h, uint32_t x)
{
  h->a = (h->a ^ x) * 0x01000193u;
  uint32_t t = (h->b ^ x) * 0x5bd1e995u;
  h->b = t ^ (t >> 15);
}

static size_t context(int k, uint32_t cp, uint8_t *s)
{
  size_t n = 0;
  if (k == 1) s[n++] = 'a';
  if (k == 2) s[n++] = ' ';
  n += utf8_encode(cp, s + n);
  if (k == 2) s[n++] = ' ';
  return n;
}

static void test_codepoints(const moe_bpe *t)
{
  gzFile f = gzopen(tap_datafile("data/text/r50k_codepoints.txt.gz"), "rb");
  ok(f != NULL, "r50k_codepoints.txt.gz opens");
  if (!f) return;
  char line[256];
  unsigned blocks = 0, bad = 0, shown = 0;
  size_t ids_total = 0;
  int enc_ok = 1;
  while (gzgets(f, line, sizeof line)) {
    if (line[0] == '#') continue;
    unsigned lo;
    char hx[3][17];
    if (sscanf(line, "%x %16s %16s %16s", &lo, hx[0], hx[1], hx[2]) != 4) { enc_ok = 0; break; }
    blocks++;
    lanes h[3];
    for (int k = 0; k < 3; k++) h[k] = (lanes){0x811c9dc5u, 0x9747b28cu};
    for (uint32_t cp = lo; cp < lo + 256; cp++)
      for (int k = 0; k < 3; k++) {
        uint8_t s[8];
        uint32_t ids[8];
        size_t n = context(k, cp, s), ni = 0;
        if (moe_bpe_encode(t, s, n, ids, &ni) != MOE_OK) enc_ok = 0;
        for (size_t i = 0; i < ni; i++) mix(&h[k], ids[i]);
        mix(&h[k], 0xFFFFFFFFu);
        ids_total += ni;
      }
    for (int k = 0; k < 3; k++) {
      char got[17];
      snprintf(got, sizeof got, "%08x%08x", h[k].a, h[k].b);
      if (strcmp(got, hx[k]) == 0) continue;
      bad++;
      if (shown++ < 3) {
        diag("  block U+%04X, context C%d: hash %s, tiktoken %s; libmoe's ids (compare with", lo, k + 1, got, hx[k]);
        diag("  node t/gen_tiktoken_fixture.js --block %X):", lo);
        for (uint32_t cp = lo; cp < lo + 256; cp++) {
          char buf[256];
          int o = snprintf(buf, sizeof buf, "%04X\t", cp);
          for (int c = 0; c < 3; c++) {
            uint8_t s[8];
            uint32_t ids[8];
            size_t n = context(c, cp, s), ni = 0;
            moe_bpe_encode(t, s, n, ids, &ni);
            for (size_t i = 0; i < ni; i++) o += snprintf(buf + o, sizeof buf - (size_t)o, i ? " %u" : "%u", ids[i]);
            if (c < 2) o += snprintf(buf + o, sizeof buf - (size_t)o, "|");
          }
          diag("  %s", buf);
        }
      }
    }
  }
  gzclose(f);
  ok(enc_ok && blocks == 4352 - 8, "%u blocks of 256 code points read and encoded (%zu ids)", blocks, ids_total);
  ok(bad == 0, "r50k ids of every code point in 3 contexts equal tiktoken's (%u of %u block hashes differ)",
     bad, 3 * blocks);
}

/* ---------------------------------------------------------------------- */

static size_t unhex(const char *h, uint8_t *out)
{
  size_t n = 0;
  for (; h[0] && h[1] && h[0] != '\t'; h += 2) {
    unsigned v;
    if (sscanf(h, "%2x", &v) != 1) break;
    out[n++] = (uint8_t)v;
  }
  return n;
}

static void test_lines(const moe_bpe *t)
{
  FILE *f = fopen(tap_datafile("data/text/r50k_lines.txt"), "r");
  ok(f != NULL, "r50k_lines.txt opens");
  if (!f) return;
  static char line[16384];
  static uint8_t text[8192];
  static uint32_t want[8192], got[8192];
  int lines = 0;
  size_t ids = 0, ids_bad = 0;
  while (fgets(line, sizeof line, f)) {
    size_t n = unhex(line, text), nw = 0, ng = 0;
    for (char *p = strchr(line, '\t') + 1; *p && *p != '\n';) {
      want[nw++] = (uint32_t)strtoul(p, &p, 10);
      while (*p == ' ') p++;
    }
    int rc = moe_bpe_encode(t, text, n, got, &ng);
    int same = rc == MOE_OK && ng == nw && !memcmp(got, want, nw * sizeof *got);
    lines++;
    ids += nw;
    for (size_t i = 0; i < nw; i++) ids_bad += i >= ng || got[i] != want[i];
    char label[48];
    size_t ln = n < 40 ? n : 40;
    for (size_t i = 0; i < ln; i++) label[i] = text[i] < 0x20 ? '.' : (char)text[i];
    label[ln] = 0;
    ok(same, "r50k line %d (%s...) -> %zu ids as tiktoken", lines, label, nw);
    if (!same) {
      char buf[2048];
      size_t o = 0;
      for (size_t i = 0; i < ng && o < 1900; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, " %u", got[i]);
      diag("  got%s", buf);
    }
  }
  fclose(f);
  ok(lines >= 30, "%d mixed-script lines, %zu ids, %zu differ", lines, ids, ids_bad);
}

/* ---------------------------------------------------------------------- */

static void test_vectors(const moe_bpe *t)
{
  is_int(moe_bpe_vocab_size(t), 50256, "r50k has 50256 ranked tokens");
  static const struct { const char *s; uint32_t ids[16]; size_t n; } vec[] = {
    {"Hello world", {15496, 995}, 2},
    {"hello world", {31373, 995}, 2},
    {"In the beginning God created the heaven and the earth.",
     {818, 262, 3726, 1793, 2727, 262, 9538, 290, 262, 4534, 13}, 11},
    {"Mr. Speaker, Mr. Vice President, Members of Congress",
     {5246, 13, 14931, 11, 1770, 13, 11079, 1992, 11, 12688, 286, 3162}, 12},
  };
  for (size_t k = 0; k < sizeof vec / sizeof *vec; k++) {
    uint32_t got[128];
    size_t ng = 0;
    int rc = moe_bpe_encode(t, (const uint8_t *)vec[k].s, strlen(vec[k].s), got, &ng);
    ok(rc == MOE_OK && ng == vec[k].n && !memcmp(got, vec[k].ids, ng * sizeof *got), "r50k: \"%s\"", vec[k].s);
  }
}

/* With the fetched SOTU corpus: every split encodes to exactly as many
 * tokens as gpt-tokenizer 4.0.0 gives. */
static void test_sotu(const moe_bpe *t)
{
  const char *dd = getenv("MOE_DATA_DIR"), *top = getenv("top_srcdir");
  char dir[4096];
  dir[0] = 0;
  if (dd && *dd) snprintf(dir, sizeof dir, "%s/sotu", dd);
  if (!dir[0] || access(dir, R_OK)) snprintf(dir, sizeof dir, "%s/data/sotu", top && *top ? top : ".");
  moe_corpus_split sp;
  if (access(dir, R_OK) || moe_corpus_sotu_split(dir, MOE_SOTU_VALID_FROM, MOE_SOTU_TEST_FROM, &sp)) {
    ok(1, "r50k on the SOTU splits # SKIP no SOTU speeches in $MOE_DATA_DIR/sotu or data/sotu (make fetch-data)");
    return;
  }
  static const size_t want[MOE_SPLIT_N] = {1927379, 62209, 84897};
  for (int k = 0; k < MOE_SPLIT_N; k++) {
    moe_token *ids = malloc((sp.len[k] + 1) * sizeof *ids); /* (n) */
    size_t ng = 0;
    int rc = moe_bpe_encode(t, sp.text[k], sp.len[k], ids, &ng);
    ok(rc == MOE_OK && ng == want[k], "r50k: SOTU %s split -> %zu tokens (gpt-tokenizer: %zu)",
       moe_split_name(k), ng, want[k]);
    free(ids);
  }
  moe_corpus_split_free(&sp);
}

/* ---------------------------------------------------------------------- */
/* The pinned sha256: a corrupted copy is an error naming the file. */

static int copy_with(const char *from, const char *to, long flip_at, long truncate_to)
{
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  if (!a || !b) { if (a) fclose(a); if (b) fclose(b); return 0; }
  long i = 0;
  int c;
  while ((c = fgetc(a)) != EOF && (truncate_to < 0 || i < truncate_to)) {
    if (i == flip_at) c = c == 'A' ? 'B' : 'A';
    fputc(c, b);
    i++;
  }
  fclose(a);
  return fclose(b) == 0;
}

static void test_pinned(const moe_bpe *good)
{
  char bad[4200];
  snprintf(bad, sizeof bad, "%.*s/corrupt.tiktoken", (int)(strrchr(r50k_path, '/') - r50k_path), r50k_path);
  /* One base64 character of rank 1000's line changed: still a well-formed
   * ranks file, with one token's bytes different. */
  FILE *f = fopen(r50k_path, "rb");
  long at = -1, pos = 0, line = 0;
  int c;
  while (f && (c = fgetc(f)) != EOF) {
    if (line == 1000 && at < 0) at = pos;
    line += c == '\n';
    pos++;
  }
  if (f) fclose(f);
  ok(at > 0 && copy_with(r50k_path, bad, at, -1), "a copy of r50k with one character changed (offset %ld)", at);
  moe_bpe *b = (moe_bpe *)&b;
  moe_error_clear();
  int rc = moe_bpe_load_tiktoken(bad, &b);
  is_int(rc, MOE_ECHECKSUM, "pinned load of the corrupted copy -> ECHECKSUM");
  ok(b == NULL && strstr(moe_last_error(), bad) && strstr(moe_last_error(), MOE_BPE_R50K_SHA256),
     "  ... the message names the file and the pinned sha256");
  diag("  %s", moe_last_error());
  /* The explicit unpinned loader takes it, and then ids do change: what
   * the pin prevents. */
  b = NULL;
  rc = moe_bpe_load_tiktoken_unpinned(bad, &b);
  is_int(rc, MOE_OK, "the unpinned loader takes the same file (custom ranks)");
  if (b) {
    size_t diff = 0, len;
    for (uint32_t id = 0; id < moe_bpe_vocab_size(b); id++) {
      const uint8_t *x = moe_bpe_token_bytes(b, id, &len);
      size_t len2;
      const uint8_t *y = moe_bpe_token_bytes(good, id, &len2);
      diff += len != len2 || memcmp(x, y, len);
    }
    is_int((int)diff, 1, "  ... and exactly one token's bytes differ from r50k's");
    moe_bpe_free(b);
  }
  ok(copy_with(r50k_path, bad, -1, 835554 - 17), "a truncated copy (last line cut)");
  moe_error_clear();
  b = (moe_bpe *)&b;
  is_int(moe_bpe_load_tiktoken(bad, &b), MOE_ECHECKSUM, "pinned load of the truncated copy -> ECHECKSUM");
  ok(b == NULL && strstr(moe_last_error(), bad), "  ... the message names the file");
  unlink(bad);
  moe_error_clear();
  b = (moe_bpe *)&b;
  is_int(moe_bpe_load_tiktoken(tap_datafile("data/text/tiny.tiktoken"), &b), MOE_ECHECKSUM,
         "pinned load of another (valid) ranks file -> ECHECKSUM");
  ok(b == NULL && strstr(moe_last_error(), "moe_bpe_load_tiktoken_unpinned"),
     "  ... the message points to the unpinned loader");
  is_int(moe_bpe_load_tiktoken("test_tiktoken_missing.tiktoken", &b), MOE_EIO, "missing file -> EIO");
}

int main(void)
{
  test_classes();
  int have = unpack_r50k();
  ok(have, "the committed r50k_base.tiktoken.gz unpacks to %s", r50k_path);
  if (!have) return tap_done();
  moe_bpe *t = NULL;
  int rc = moe_bpe_load_tiktoken(r50k_path, &t);
  is_int(rc, MOE_OK, "r50k_base.tiktoken loads with its pinned sha256");
  if (rc) {
    diag("  %s", moe_last_error());
    remove_r50k_dir();
    return tap_done();
  }
  test_vectors(t);
  test_lines(t);
  test_codepoints(t);
  test_sotu(t);
  test_pinned(t);
  moe_bpe_free(t);
  remove_r50k_dir();
  return tap_done();
}
