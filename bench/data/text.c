/* SPDX-License-Identifier: GPL-3.0-or-later */
/* text.c — `moebench data bpe-train | tokenize | tokinfo | lm-corpus`: train
 * the byte-level BPE on the SOTU train split, turn the three splits (or any
 * text files) into token files, describe a token file, and build the
 * language-model corpus (SOTU + Brown split by document). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "moe/bpe.h"
#include "moe/corpus.h"
#include "moe/error.h"
#include "moe/tokfile.h"
#include "sha256.h"
#include "verbs.h"

static double mb_now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] != 0)
    return NULL;
  if (*i + 1 >= argc) {
    fprintf(stderr, "moebench: %s needs a value\n", name);
    return "";
  }
  return argv[++*i];
}

static int parse_long(const char *s, long lo, long hi, long *v, const char *name)
{
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (!*s || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "moebench: %s: '%s' is not an integer in [%ld, %ld]\n", name, s, lo, hi);
    return 0;
  }
  *v = x;
  return 1;
}

/* Load a vocabulary: a moe-bpe merge list, or else a tiktoken ranks file. */
static int load_vocab(const char *path, moe_bpe **b)
{
  FILE *f = fopen(path, "rb");
  char head[8] = {0};
  if (!f)
    return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  if (got >= 8 && !memcmp(head, "moe-bpe ", 8))
    return moe_bpe_load(path, b);
  /* A file named r50k_base.tiktoken must be GPT-2's (pinned sha256);
   * other ranks files are custom vocabularies. */
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!strcmp(base, "r50k_base.tiktoken"))
    return moe_bpe_load_tiktoken(path, b);
  return moe_bpe_load_tiktoken_unpinned(path, b);
}

static int read_text_file(const char *path, uint8_t **buf, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 20, n = 0;
  uint8_t *b = malloc(cap);
  for (;;) {
    if (!b) {
      fclose(f);
      return moe_error(MOE_ENOMEM, "%s: out of memory", path);
    }
    size_t r = fread(b + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
    if (n == cap) {
      uint8_t *nb = realloc(b, cap * 2);
      if (!nb)
        free(b);
      b = nb;
      cap *= 2;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(b);
    return moe_error(MOE_EIO, "%s: read error", path);
  }
  *buf = b;
  *len = n;
  return MOE_OK;
}

/* --data defaults to $MOE_DATA_DIR, else "data" (where datasets/fetch.sh puts things). */
static const char *default_data_dir(void)
{
  const char *d = getenv("MOE_DATA_DIR");
  return d && *d ? d : "data";
}

static int fail(const char *verb)
{
  fprintf(stderr, "moebench data %s: %s\n", verb, moe_last_error());
  return 1;
}

/* ---------------------------------------------------------------------- */

int mb_verb_data_bpe_train(int argc, char **argv)
{
  const char *data = NULL, *text = NULL, *out = NULL, *v;
  long vocab = 8000, valid_from = MOE_SOTU_VALID_FROM, test_from = MOE_SOTU_TEST_FROM;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      printf("usage: moebench data bpe-train [--data DIR | --text FILE] [--vocab V] --out FILE\n"
             "                               [--valid-from YEAR] [--test-from YEAR]\n"
             "Train a byte-level BPE of V tokens (256 bytes + V-256 merges; default 8000, the\n"
             "paper's vocabulary size) on the SOTU train split (DIR/sotu/*.txt, years before\n"
             "--valid-from, default %d; DIR defaults to $MOE_DATA_DIR, else data), or on a\n"
             "whole text FILE, and save the merge list (format: moe/bpe.h). Prints the corpus\n"
             "size, the number of pieces and the wall-clock training time.\n",
             MOE_SOTU_VALID_FROM);
      return 0;
    }
    if ((v = opt_value(argc, argv, &i, "--data")))
      data = v;
    else if ((v = opt_value(argc, argv, &i, "--text")))
      text = v;
    else if ((v = opt_value(argc, argv, &i, "--out")))
      out = v;
    else if ((v = opt_value(argc, argv, &i, "--vocab"))) {
      if (!parse_long(v, 256, 1L << 24, &vocab, "--vocab"))
        return 2;
    } else if ((v = opt_value(argc, argv, &i, "--valid-from"))) {
      if (!parse_long(v, 0, 9999, &valid_from, "--valid-from"))
        return 2;
    } else if ((v = opt_value(argc, argv, &i, "--test-from"))) {
      if (!parse_long(v, 0, 9999, &test_from, "--test-from"))
        return 2;
    } else {
      fprintf(stderr, "moebench data bpe-train: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
    if (v && !*v)
      return 2;
  }
  if ((data && text) || !out) {
    fprintf(stderr,
            "moebench data bpe-train: need --out, and at most one of --data/--text (try --help)\n");
    return 2;
  }
  if (!text && !data)
    data = default_data_dir();
  double t0 = mb_now();
  uint8_t *buf = NULL;
  size_t len = 0;
  moe_corpus_split sp = {0};
  if (data) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sotu", data);
    if (moe_corpus_sotu_split(dir, (int)valid_from, (int)test_from, &sp))
      return fail("bpe-train");
    buf = sp.text[MOE_SPLIT_TRAIN];
    len = sp.len[MOE_SPLIT_TRAIN];
    printf("corpus: %s, train split: %u files (%d-%d), %zu bytes\n", dir, sp.n_files[0],
           sp.first_year[0], sp.last_year[0], len);
  } else {
    if (read_text_file(text, &buf, &len))
      return fail("bpe-train");
    printf("corpus: %s, %zu bytes\n", text, len);
  }
  double t1 = mb_now();
  moe_bpe *b = NULL;
  moe_bpe_train_stats st;
  int rc = moe_bpe_train(buf, len, (uint32_t)vocab, &b, &st);
  double t2 = mb_now();
  if (data)
    moe_corpus_split_free(&sp);
  else
    free(buf);
  if (rc)
    return fail("bpe-train");
  printf("pieces: %llu (%llu distinct)\n", (unsigned long long)st.pieces,
         (unsigned long long)st.unique_pieces);
  printf("merges: %u (vocabulary %u)%s\n", st.merges, moe_bpe_vocab_size(b),
         st.merges + 256 < (uint32_t)vocab ? "  [stopped early: no pair left]" : "");
  printf("time: read %.3f s, train %.3f s (wall clock)\n", t1 - t0, t2 - t1);
  rc = moe_bpe_save(b, out);
  moe_bpe_free(b);
  if (rc)
    return fail("bpe-train");
  printf("wrote %s\n", out);
  return 0;
}

/* ---------------------------------------------------------------------- */

static int tokenize_inputs(int argc, char **argv);

int mb_verb_data_tokenize(int argc, char **argv)
{
  int general = 0;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      general = 0;
      break;
    }
    if (!strcmp(argv[i], "--input") || !strncmp(argv[i], "--input=", 8))
      general = 1;
  }
  if (general)
    return tokenize_inputs(argc, argv);
  const char *vocab = NULL, *data = NULL, *outdir = NULL, *v;
  long valid_from = MOE_SOTU_VALID_FROM, test_from = MOE_SOTU_TEST_FROM;
  int gz = 0;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      printf("usage: moebench data tokenize --vocab FILE [--data DIR] --out-dir DIR [--gzip]\n"
             "                              [--valid-from YEAR] [--test-from YEAR]\n"
             "Encode the SOTU corpus (DIR/sotu/*.txt; DIR defaults to $MOE_DATA_DIR, else\n"
             "data) split by year: train before --valid-from (default %d), valid before\n"
             "--test-from (default %d), test from then on. The vocabulary is a moe-bpe merge\n"
             "list from bpe-train or a .tiktoken ranks file; one named r50k_base.tiktoken\n"
             "must have GPT-2's pinned sha256 (a corrupted copy is an error).\n"
             "Writes OUT/train.tok, OUT/valid.tok and OUT/test.tok (.tok.gz with --gzip;\n"
             "format: moe-tokfile(5)) and prints the token counts and encoding throughput.\n"
             "\n"
             "usage: moebench data tokenize --input FILE... --vocab V|r50k|VOCAB --out F.tok\n"
             "                              [--save-vocab F.bpe] [--data DIR] [--gzip]\n"
             "Any text: the FILEs joined with one \"\\n\" between them, encoded with a V-token\n"
             "byte-level BPE trained on them (save it with --save-vocab to encode more text,\n"
             "e.g. a validation file, with the same vocabulary: --vocab F.bpe), with GPT-2's\n"
             "r50k (DIR/r50k_base.tiktoken) or with a vocabulary file.\n",
             MOE_SOTU_VALID_FROM, MOE_SOTU_TEST_FROM);
      return 0;
    }
    if ((v = opt_value(argc, argv, &i, "--vocab")))
      vocab = v;
    else if ((v = opt_value(argc, argv, &i, "--data")))
      data = v;
    else if ((v = opt_value(argc, argv, &i, "--out-dir")))
      outdir = v;
    else if (!strcmp(argv[i], "--gzip"))
      gz = 1;
    else if ((v = opt_value(argc, argv, &i, "--valid-from"))) {
      if (!parse_long(v, 0, 9999, &valid_from, "--valid-from"))
        return 2;
    } else if ((v = opt_value(argc, argv, &i, "--test-from"))) {
      if (!parse_long(v, 0, 9999, &test_from, "--test-from"))
        return 2;
    } else {
      fprintf(stderr, "moebench data tokenize: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
    if (v && !*v)
      return 2;
  }
  if (!vocab || !outdir) {
    fprintf(stderr, "moebench data tokenize: --vocab and --out-dir are required (try --help)\n");
    return 2;
  }
  if (!data)
    data = default_data_dir();
  moe_bpe *b = NULL;
  if (load_vocab(vocab, &b))
    return fail("tokenize");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/sotu", data);
  moe_corpus_split sp;
  if (moe_corpus_sotu_split(dir, (int)valid_from, (int)test_from, &sp)) {
    moe_bpe_free(b);
    return fail("tokenize");
  }
  if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "moebench data tokenize: %s: cannot create: %s\n", outdir, strerror(errno));
    moe_bpe_free(b);
    moe_corpus_split_free(&sp);
    return 1;
  }
  int status = 0;
  printf("vocabulary: %s (%u tokens)\n", vocab, moe_bpe_vocab_size(b));
  for (int s = 0; s < MOE_SPLIT_N && !status; s++) {
    moe_token *ids = malloc((sp.len[s] + 1) * sizeof *ids); /* (n) at most one token per byte */
    size_t n = 0;
    if (!ids) {
      moe_error(MOE_ENOMEM, "out of memory");
      status = fail("tokenize");
      break;
    }
    double t0 = mb_now();
    int rc = moe_bpe_encode(b, sp.text[s], sp.len[s], ids, &n);
    double t1 = mb_now();
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.tok%s", outdir, moe_split_name(s), gz ? ".gz" : "");
    if (!rc)
      rc = moe_tokfile_write(path, ids, n, moe_bpe_vocab_size(b), 0, gz);
    free(ids);
    if (rc) {
      status = fail("tokenize");
      break;
    }
    double secs = t1 - t0;
    printf("%-5s: %3u files, %9zu bytes -> %8zu tokens (%.2f bytes/token), encode %.3f s (%.1f "
           "MB/s) -> %s\n",
           moe_split_name(s), sp.n_files[s], sp.len[s], n, n ? (double)sp.len[s] / (double)n : 0.0,
           secs, secs > 0 ? (double)sp.len[s] / 1e6 / secs : 0.0, path);
  }
  moe_bpe_free(b);
  moe_corpus_split_free(&sp);
  return status;
}

/* ---------------------------------------------------------------------- */

/* Token bytes as a quoted C-like string. */
static void print_token_text(const uint8_t *p, size_t n)
{
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c == '\n')
      printf("\\n");
    else if (c == '\t')
      printf("\\t");
    else if (c == '\r')
      printf("\\r");
    else if (c < 0x20 || c == 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c); /* bytes >= 0x80 as they are: UTF-8 terminals show them */
  }
  putchar('"');
}

typedef struct {
  moe_token id;
  uint64_t count;
} mb_tokcount;

static int by_count_desc(const void *a, const void *b)
{
  const mb_tokcount *x = a, *y = b;
  if (x->count != y->count)
    return x->count < y->count ? 1 : -1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The paper's router analysis looks at the 6000 most frequent tokens. */
#define MB_ROUTER_TOP_TYPES 6000

int mb_verb_data_tokinfo(int argc, char **argv)
{
  const char *file = NULL, *vocab = NULL, *v;
  long top = 20;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      printf("usage: moebench data tokinfo FILE [--top N] [--vocab VOCAB]\n"
             "Describe a token file (moe-tokfile(5), plain or gzip): token count, vocabulary\n"
             "size and width, number of distinct token types and the share of the vocabulary\n"
             "they cover, whether there are at least %d distinct types (the paper's router\n"
             "analysis uses the %d most frequent validation tokens), and the N most frequent\n"
             "tokens (default 20) with their counts, and their text when --vocab names the\n"
             "vocabulary (moe-bpe or .tiktoken) the file was made with.\n",
             MB_ROUTER_TOP_TYPES, MB_ROUTER_TOP_TYPES);
      return 0;
    }
    if ((v = opt_value(argc, argv, &i, "--top"))) {
      if (!parse_long(v, 0, 1L << 30, &top, "--top"))
        return 2;
    } else if ((v = opt_value(argc, argv, &i, "--vocab")))
      vocab = v;
    else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "moebench data tokinfo: unknown option '%s' (try --help)\n", argv[i]);
      return 2;
    } else if (!file)
      file = argv[i];
    else {
      fprintf(stderr, "moebench data tokinfo: one FILE only (try --help)\n");
      return 2;
    }
    if (v && !*v)
      return 2;
  }
  if (!file) {
    fprintf(stderr, "moebench data tokinfo: FILE is required (try --help)\n");
    return 2;
  }
  moe_tokfile *tf = NULL;
  if (moe_tokfile_read(file, &tf))
    return fail("tokinfo");
  moe_bpe *b = NULL;
  if (vocab) {
    if (load_vocab(vocab, &b)) {
      moe_tokfile_free(tf);
      return fail("tokinfo");
    }
    if (moe_bpe_vocab_size(b) != tf->vocab_size)
      fprintf(stderr, "moebench data tokinfo: warning: %s has %u tokens but %s says V = %u\n",
              vocab, moe_bpe_vocab_size(b), file, tf->vocab_size);
  }
  mb_tokcount *c = calloc(tf->vocab_size, sizeof *c); /* (V) */
  if (!c) {
    moe_tokfile_free(tf);
    moe_bpe_free(b);
    moe_error(MOE_ENOMEM, "out of memory");
    return fail("tokinfo");
  }
  for (moe_token i = 0; i < tf->vocab_size; i++)
    c[i].id = i;
  for (uint64_t i = 0; i < tf->count; i++)
    c[tf->tokens[i]].count++;
  uint32_t types = 0, types2 = 0, types10 = 0;
  for (uint32_t i = 0; i < tf->vocab_size; i++) {
    types += c[i].count > 0;
    types2 += c[i].count >= 2;
    types10 += c[i].count >= 10;
  }
  qsort(c, tf->vocab_size, sizeof *c, by_count_desc);
  printf("file: %s\n", file);
  printf("tokens: %llu\n", (unsigned long long)tf->count);
  printf("vocabulary: %u (width %u bytes)\n", tf->vocab_size, tf->width);
  printf("distinct types: %u (%.2f%% of the vocabulary)\n", types,
         100.0 * (double)types / (double)tf->vocab_size);
  printf("types seen at least 2 times: %u, at least 10 times: %u\n", types2, types10);
  printf("types >= %d (router analysis on the %d most frequent): %s\n", MB_ROUTER_TOP_TYPES,
         MB_ROUTER_TOP_TYPES, types >= MB_ROUTER_TOP_TYPES ? "yes" : "no");
  if (types >= MB_ROUTER_TOP_TYPES) {
    uint64_t cov = 0;
    for (uint32_t i = 0; i < MB_ROUTER_TOP_TYPES; i++)
      cov += c[i].count;
    printf("share of tokens in the %d most frequent types: %.2f%% (the %d-th occurs %llu times)\n",
           MB_ROUTER_TOP_TYPES, 100.0 * (double)cov / (double)tf->count, MB_ROUTER_TOP_TYPES,
           (unsigned long long)c[MB_ROUTER_TOP_TYPES - 1].count);
  }
  if (top > (long)types)
    top = types;
  if (top > 0)
    printf("top %ld tokens:\n  %6s %8s %10s %7s  %s\n", top, "rank", "id", "count", "share",
           b ? "text" : "");
  for (long i = 0; i < top; i++) {
    printf("  %6ld %8u %10llu %6.2f%%  ", i + 1, c[i].id, (unsigned long long)c[i].count,
           100.0 * (double)c[i].count / (double)tf->count);
    size_t len;
    const uint8_t *p = b ? moe_bpe_token_bytes(b, c[i].id, &len) : NULL;
    if (p)
      print_token_text(p, len);
    putchar('\n');
  }
  free(c);
  moe_bpe_free(b);
  moe_tokfile_free(tf);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Vocabulary argument of the general paths: a number V (train a V-token
 * BPE on `train`), "r50k" (DATA/r50k_base.tiktoken), or a vocabulary file. */
static int vocab_from_arg(const char *arg, const char *data, const uint8_t *train, size_t n,
                          moe_bpe **b, int *trained)
{
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  *trained = 0;
  if (*arg && !*end && !errno) {
    if (v < 256 || v > (1L << 24))
      return moe_error(MOE_EINVAL, "--vocab %ld: a trained vocabulary has 256 to %ld tokens", v,
                       1L << 24);
    moe_bpe_train_stats st;
    int rc = moe_bpe_train(train, n, (uint32_t)v, b, &st);
    if (!rc)
      *trained = 1;
    if (!rc && moe_bpe_vocab_size(*b) < (uint32_t)v)
      fprintf(stderr,
              "moebench data: note: the text has only enough pairs for %u tokens (asked %ld)\n",
              moe_bpe_vocab_size(*b), v);
    return rc;
  }
  if (!strcmp(arg, "r50k")) {
    char p[4200];
    snprintf(p, sizeof p, "%s/r50k_base.tiktoken", data);
    int rc = moe_bpe_load_tiktoken(p, b);
    if (rc == MOE_EIO)
      return moe_error(MOE_EIO, "%s (fetch it with datasets/fetch.sh --only r50k %s)",
                       moe_last_error(), data);
    return rc;
  }
  return load_vocab(arg, b);
}

/* Encode text and write it as a token file; prints one line. */
static int encode_write(const moe_bpe *b, const char *what, const uint8_t *text, size_t len,
                        const char *path, int gz, size_t *ntok)
{
  moe_token *ids = malloc((len + 1) * sizeof *ids); /* (n) at most one token per byte */
  size_t n = 0;
  if (!ids)
    return moe_error(MOE_ENOMEM, "out of memory");
  double t0 = mb_now();
  int rc = moe_bpe_encode(b, text, len, ids, &n);
  double secs = mb_now() - t0;
  if (!rc)
    rc = moe_tokfile_write(path, ids, n, moe_bpe_vocab_size(b), 0, gz);
  free(ids);
  if (rc)
    return rc;
  if (ntok)
    *ntok = n;
  printf("%-5s: %10zu bytes -> %9zu tokens (%.2f bytes/token), encode %.3f s -> %s\n", what, len, n,
         n ? (double)len / (double)n : 0.0, secs, path);
  return MOE_OK;
}

/* Append a file's bytes to a growing buffer, with "\n" before it unless first. */
static int append_doc(const char *path, uint8_t **buf, size_t *len, size_t *cap, int first)
{
  uint8_t *d = NULL;
  size_t n = 0;
  int rc = read_text_file(path, &d, &n);
  if (rc)
    return rc;
  if (*len + n + 2 > *cap) {
    size_t nc = (*cap ? *cap : 1 << 20);
    while (nc < *len + n + 2)
      nc *= 2;
    uint8_t *p = realloc(*buf, nc);
    if (!p) {
      free(d);
      return moe_error(MOE_ENOMEM, "%s: out of memory", path);
    }
    *buf = p;
    *cap = nc;
  }
  if (!first)
    (*buf)[(*len)++] = '\n';
  memcpy(*buf + *len, d, n);
  *len += n;
  (*buf)[*len] = 0;
  free(d);
  return MOE_OK;
}

/* `moebench data tokenize --input FILE... --vocab V|r50k|VOCAB --out F.tok` */
static int tokenize_inputs(int argc, char **argv)
{
  const char *vocab = NULL, *out = NULL, *save = NULL, *data = NULL, *v;
  int gz = 0, ninput = 0;
  const char **inputs = calloc((size_t)argc, sizeof *inputs);
  if (!inputs) {
    fprintf(stderr, "moebench data tokenize: out of memory\n");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if ((v = opt_value(argc, argv, &i, "--input"))) {
      if (!*v) {
        free(inputs);
        return 2;
      }
      inputs[ninput++] = v;
      /* more files may follow one --input */
      while (i + 1 < argc && argv[i + 1][0] != '-')
        inputs[ninput++] = argv[++i];
      continue;
    }
    if ((v = opt_value(argc, argv, &i, "--vocab")))
      vocab = v;
    else if ((v = opt_value(argc, argv, &i, "--out")))
      out = v;
    else if ((v = opt_value(argc, argv, &i, "--save-vocab")))
      save = v;
    else if ((v = opt_value(argc, argv, &i, "--data")))
      data = v;
    else if (!strcmp(argv[i], "--gzip"))
      gz = 1;
    else {
      fprintf(stderr, "moebench data tokenize: unknown argument '%s' (try --help)\n", argv[i]);
      free(inputs);
      return 2;
    }
    if (v && !*v) {
      free(inputs);
      return 2;
    }
  }
  if (!vocab || !out || !ninput) {
    fprintf(stderr, "moebench data tokenize: --input FILE... needs --vocab V|r50k|FILE and --out "
                    "F.tok (try --help)\n");
    free(inputs);
    return 2;
  }
  if (!data)
    data = default_data_dir();
  uint8_t *text = NULL;
  size_t len = 0, cap = 0;
  int rc = MOE_OK;
  for (int i = 0; i < ninput && !rc; i++)
    rc = append_doc(inputs[i], &text, &len, &cap, i == 0);
  free(inputs);
  moe_bpe *b = NULL;
  int trained = 0;
  if (!rc) {
    if (!text && !(text = calloc(1, 1)))
      rc = moe_error(MOE_ENOMEM, "out of memory");
    else
      rc = vocab_from_arg(vocab, data, text, len, &b, &trained);
  }
  if (!rc) {
    printf("input: %d file(s), %zu bytes\n", ninput, len);
    printf("vocabulary: %s (%u tokens%s)\n", vocab, moe_bpe_vocab_size(b),
           trained ? ", trained on the input" : "");
    rc = encode_write(b, "all", text, len, out, gz, NULL);
  }
  if (!rc && save) {
    if (!trained)
      fprintf(stderr, "moebench data tokenize: note: --save-vocab writes the merges of a loaded "
                      "vocabulary too\n");
    if (moe_bpe_n_merges(b) == 0 && moe_bpe_vocab_size(b) > 256)
      rc = moe_error(MOE_EINVAL, "--save-vocab: %s is a tiktoken vocabulary, not a merge list",
                     vocab);
    else if (!(rc = moe_bpe_save(b, save)))
      printf("wrote %s\n", save);
  }
  moe_bpe_free(b);
  free(text);
  return rc ? fail("tokenize") : 0;
}

/* ---------------------------------------------------------------------- */
/* The LM corpus: SOTU + Brown, split by document. */

typedef struct {
  char *name;
  int split;
  size_t bytes;
} mb_doc;

static int by_name(const void *a, const void *b)
{
  return strcmp(((const mb_doc *)a)->name, ((const mb_doc *)b)->name);
}

/* Which split a document goes to: u = the first 4 bytes of SHA-256(name),
 * big-endian, over 2^32; valid if u < pv, test if u < pv + pt, else train. */
static int doc_split(const char *name, double pv, double pt)
{
  unsigned char d[32];
  moei_sha256 s;
  moei_sha256_init(&s);
  moei_sha256_update(&s, name, strlen(name));
  moei_sha256_final(&s, d);
  double u =
      (double)(((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3]) /
      4294967296.0;
  return u < pv ? MOE_SPLIT_VALID : u < pv + pt ? MOE_SPLIT_TEST : MOE_SPLIT_TRAIN;
}

/* Documents "SUB/NAME.txt" of DATA/SUB (files ending in .txt, not hidden). */
static int list_docs(const char *data, const char *sub, mb_doc **docs, size_t *n, size_t *cap)
{
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/%s", data, sub);
  DIR *d = opendir(dir);
  if (!d)
    return moe_error(MOE_EIO, "%s: cannot open: %s (fetch it with datasets/fetch.sh --only %s %s)",
                     dir, strerror(errno), sub, data);
  struct dirent *e;
  size_t before = *n;
  int rc = MOE_OK;
  while ((e = readdir(d)) != NULL && !rc) {
    size_t L = strlen(e->d_name);
    if (e->d_name[0] == '.' || L < 5 || strcmp(e->d_name + L - 4, ".txt"))
      continue;
    if (*n == *cap) {
      size_t nc = *cap ? *cap * 2 : 1024;
      mb_doc *p = realloc(*docs, nc * sizeof *p);
      if (!p) {
        rc = moe_error(MOE_ENOMEM, "out of memory");
        break;
      }
      *docs = p;
      *cap = nc;
    }
    mb_doc *x = &(*docs)[*n];
    x->name = malloc(strlen(sub) + L + 2);
    if (!x->name) {
      rc = moe_error(MOE_ENOMEM, "out of memory");
      break;
    }
    sprintf(x->name, "%s/%s", sub, e->d_name);
    x->bytes = 0;
    (*n)++;
  }
  closedir(d);
  if (!rc && *n == before)
    rc = moe_error(MOE_EFORMAT, "%s: no documents (*.txt)", dir);
  return rc;
}

static int parse_frac(const char *s, const char *name, double *x)
{
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end || !(v >= 0 && v <= 1)) {
    fprintf(stderr, "moebench data lm-corpus: %s: '%s' is not a fraction in [0, 1]\n", name, s);
    return 0;
  }
  *x = v;
  return 1;
}

int mb_verb_data_lm_corpus(int argc, char **argv)
{
  const char *data = NULL, *outdir = NULL, *vocab = "8000", *v;
  double pv = 0.05, pt = 0.05;
  int gz = 0;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      printf("usage: moebench data lm-corpus [--data DIR] [--vocab V|r50k|FILE] [--valid P] "
             "[--test P]\n"
             "                               --out-dir OUT [--gzip]\n"
             "The language-model corpus: the State of the Union speeches (DIR/sotu/*.txt) and\n"
             "the Brown corpus (DIR/brown/*.txt), split by document. A document named\n"
             "SUB/FILE (e.g. sotu/1790_george_washington_f.txt, brown/ca01.txt) goes to\n"
             "valid if u < P_valid, to test if u < P_valid + P_test, else to train, where\n"
             "u = (first 8 hex digits of sha256(SUB/FILE)) / 2^32, as in\n"
             "  printf %%s sotu/1790_george_washington_f.txt | sha256sum | cut -c1-8\n"
             "(defaults: P_valid = P_test = 0.05). A split joins its documents in name\n"
             "order with one \"\\n\" between them. The vocabulary is a V-token byte-level BPE\n"
             "trained on the train split (default 8000, the paper's size; saved as\n"
             "OUT/vocab.bpe), GPT-2's r50k (DIR/r50k_base.tiktoken) or a vocabulary FILE.\n"
             "Writes OUT/{train,valid,test}.tok (moe-tokfile(5)), OUT/split.tsv (document,\n"
             "split, bytes) and OUT/README (what was done and the counts); prints the\n"
             "number of distinct token types in the validation split, of which the router\n"
             "analysis of the lm task uses the min(6000, types) most frequent.\n"
             "DIR defaults to $MOE_DATA_DIR, else data.\n");
      return 0;
    }
    if ((v = opt_value(argc, argv, &i, "--data")))
      data = v;
    else if ((v = opt_value(argc, argv, &i, "--out-dir")))
      outdir = v;
    else if ((v = opt_value(argc, argv, &i, "--vocab")))
      vocab = v;
    else if ((v = opt_value(argc, argv, &i, "--valid"))) {
      if (!parse_frac(v, "--valid", &pv))
        return 2;
    } else if ((v = opt_value(argc, argv, &i, "--test"))) {
      if (!parse_frac(v, "--test", &pt))
        return 2;
    } else if (!strcmp(argv[i], "--gzip"))
      gz = 1;
    else {
      fprintf(stderr, "moebench data lm-corpus: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
    if (v && !*v)
      return 2;
  }
  if (!outdir) {
    fprintf(stderr, "moebench data lm-corpus: --out-dir is required (try --help)\n");
    return 2;
  }
  if (pv + pt >= 1) {
    fprintf(stderr, "moebench data lm-corpus: --valid + --test must be below 1\n");
    return 2;
  }
  if (!data)
    data = default_data_dir();

  mb_doc *docs = NULL;
  size_t nd = 0, cap = 0;
  uint8_t *text[MOE_SPLIT_N] = {0};
  size_t len[MOE_SPLIT_N] = {0}, tcap[MOE_SPLIT_N] = {0}, ndoc[MOE_SPLIT_N] = {0},
         ntok[MOE_SPLIT_N] = {0};
  size_t ndsub[2][MOE_SPLIT_N] = {{0}};
  moe_bpe *b = NULL;
  FILE *f = NULL;
  int rc = list_docs(data, "sotu", &docs, &nd, &cap), trained = 0;
  if (!rc)
    rc = list_docs(data, "brown", &docs, &nd, &cap);
  if (!rc) {
    qsort(docs, nd, sizeof *docs, by_name);
    for (size_t i = 0; i < nd && !rc; i++) {
      char p[4400];
      int s = docs[i].split = doc_split(docs[i].name, pv, pt);
      snprintf(p, sizeof p, "%s/%s", data, docs[i].name);
      size_t before = len[s];
      rc = append_doc(p, &text[s], &len[s], &tcap[s], ndoc[s] == 0);
      docs[i].bytes = len[s] - before - (ndoc[s] > 0);
      ndoc[s]++;
      ndsub[strncmp(docs[i].name, "sotu/", 5) == 0][s]++;
    }
  }
  for (int s = 0; s < MOE_SPLIT_N && !rc; s++)
    if (!ndoc[s] && (s == MOE_SPLIT_TRAIN || (s == MOE_SPLIT_VALID ? pv : pt) > 0))
      rc = moe_error(MOE_EFORMAT, "%s: the %s split is empty (%zu documents in all)", data,
                     moe_split_name(s), nd);
  for (int s = 0; s < MOE_SPLIT_N && !rc; s++)
    if (!text[s] && !(text[s] = calloc(1, 1)))
      rc = moe_error(MOE_ENOMEM, "out of memory");
  if (!rc && mkdir(outdir, 0777) != 0 && errno != EEXIST)
    rc = moe_error(MOE_EIO, "%s: cannot create: %s", outdir, strerror(errno));
  double t0 = mb_now();
  if (!rc)
    rc = vocab_from_arg(vocab, data, text[MOE_SPLIT_TRAIN], len[MOE_SPLIT_TRAIN], &b, &trained);
  double t1 = mb_now();
  char path[4400];
  if (!rc) {
    printf("corpus: %s: %zu documents (sotu %zu, brown %zu)\n", data, nd,
           ndsub[1][0] + ndsub[1][1] + ndsub[1][2], ndsub[0][0] + ndsub[0][1] + ndsub[0][2]);
    for (int s = 0; s < MOE_SPLIT_N; s++)
      printf("%-5s: %4zu documents (sotu %3zu, brown %3zu), %9zu bytes\n", moe_split_name(s),
             ndoc[s], ndsub[1][s], ndsub[0][s], len[s]);
    printf("vocabulary: %s (%u tokens%s)\n", vocab, moe_bpe_vocab_size(b),
           trained ? "" : ", loaded");
    if (trained) {
      printf("BPE trained on the train split in %.2f s\n", t1 - t0);
      snprintf(path, sizeof path, "%s/vocab.bpe", outdir);
      if (!(rc = moe_bpe_save(b, path)))
        printf("wrote %s\n", path);
    }
  }
  for (int s = 0; s < MOE_SPLIT_N && !rc; s++) {
    snprintf(path, sizeof path, "%s/%s.tok%s", outdir, moe_split_name(s), gz ? ".gz" : "");
    rc = encode_write(b, moe_split_name(s), text[s], len[s], path, gz, &ntok[s]);
  }
  /* distinct types of the validation split (the router analysis's pool) */
  uint32_t types = 0;
  if (!rc) {
    uint32_t V = moe_bpe_vocab_size(b);
    moe_token *ids = malloc((len[MOE_SPLIT_VALID] + 1) * sizeof *ids);
    uint8_t *seen = calloc(V, 1);
    size_t n = 0;
    if (!ids || !seen)
      rc = moe_error(MOE_ENOMEM, "out of memory");
    else if (!(rc = moe_bpe_encode(b, text[MOE_SPLIT_VALID], len[MOE_SPLIT_VALID], ids, &n)))
      for (size_t i = 0; i < n; i++)
        if (!seen[ids[i]]) { /* a flag, not a count: a uint8_t count wraps at 256 */
          seen[ids[i]] = 1;
          types++;
        }
    free(ids);
    free(seen);
  }
  if (!rc) {
    printf("valid: %u distinct token types of %u; the lm task's router analysis takes the "
           "router_types (default "
           "%d) most frequent of the types in the tokens it evaluates\n",
           types, moe_bpe_vocab_size(b), MB_ROUTER_TOP_TYPES);
    snprintf(path, sizeof path, "%s/split.tsv", outdir);
    if (!(f = fopen(path, "w")))
      rc = moe_error(MOE_EIO, "%s: cannot create: %s", path, strerror(errno));
    for (size_t i = 0; !rc && i < nd; i++)
      fprintf(f, "%s\t%s\t%zu\n", docs[i].name, moe_split_name(docs[i].split), docs[i].bytes);
    if (f && fclose(f) && !rc)
      rc = moe_error(MOE_EIO, "%s: write error", path);
    f = NULL;
  }
  if (!rc) {
    snprintf(path, sizeof path, "%s/README", outdir);
    if (!(f = fopen(path, "w")))
      rc = moe_error(MOE_EIO, "%s: cannot create: %s", path, strerror(errno));
    else {
      fprintf(f, "Written by moebench data lm-corpus --data %s --vocab %s --valid %g --test %g\n",
              data, vocab, pv, pt);
      fprintf(f,
              "documents: sotu/*.txt and brown/*.txt; split by u = sha256(SUB/FILE)[0:8 hex] / "
              "2^32: valid u < %g, test u < %g, else train\n",
              pv, pv + pt);
      fprintf(f, "vocabulary: %u tokens%s\n", moe_bpe_vocab_size(b),
              trained ? " (vocab.bpe, byte-level BPE trained on train)" : "");
      for (int s = 0; s < MOE_SPLIT_N; s++)
        fprintf(f, "%s: %zu documents, %zu bytes, %zu tokens\n", moe_split_name(s), ndoc[s], len[s],
                ntok[s]);
      fprintf(f, "valid distinct types: %u\n", types);
      if (fclose(f))
        rc = moe_error(MOE_EIO, "%s: write error", path);
    }
  }
  for (size_t i = 0; i < nd; i++)
    free(docs[i].name);
  free(docs);
  for (int s = 0; s < MOE_SPLIT_N; s++)
    free(text[s]);
  moe_bpe_free(b);
  return rc ? fail("lm-corpus") : 0;
}
