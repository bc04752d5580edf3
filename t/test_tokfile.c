/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_tokfile.c — token files: valid files (plain and gzip, widths 2 and
 * 4), write/read round trips, and every malformed input with its specific
 * error code and a message naming the file. Fixtures: t/gen_text_fixtures.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/error.h"
#include "moe/tokfile.h"
#include "tap.h"

/* The ids the fixture generator wrote: (31 i^2 + 7 i + 5) mod V. */
static uint32_t fixture_id(uint64_t i, uint32_t V) { return (uint32_t)((31 * i * i + 7 * i + 5) % V); }

static void check_valid(const char *name, uint32_t V, uint32_t width, uint64_t T)
{
  moe_tokfile *tf = NULL;
  int rc = moe_tokfile_read(tap_datafile(name), &tf);
  if (!is_int(rc, MOE_OK, "%s reads", name)) {
    diag("  %s", moe_last_error());
    return;
  }
  is_int(tf->vocab_size, V, "%s: vocabulary size", name);
  is_int(tf->width, width, "%s: width", name);
  is_int((long)tf->count, (long)T, "%s: count", name);
  int same = 1;
  for (uint64_t i = 0; i < T; i++) same &= tf->tokens[i] == fixture_id(i, V);
  ok(same, "%s: every id as written", name);
  moe_tokfile_free(tf);
}

/* A malformed file must fail with `code`, leave *out NULL, and say which
 * file and (when given) what in the message. */
static void check_bad(const char *name, int code, const char *what)
{
  moe_tokfile *tf = (moe_tokfile *)&tf; /* poison: must come back NULL */
  const char *path = tap_datafile(name);
  moe_error_clear();
  int rc = moe_tokfile_read(path, &tf);
  is_int(rc, code, "%s -> %s", name, moe_strerror(code));
  ok(tf == NULL, "%s: no result on failure", name);
  ok(strstr(moe_last_error(), path) != NULL, "%s: message names the file", name);
  if (what)
    ok(strstr(moe_last_error(), what) != NULL, "%s: message says \"%s\"", name, what);
  diag("  %s", moe_last_error());
}

static long file_size(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

static void roundtrip(uint32_t V, uint32_t width, int gzip, uint64_t T)
{
  const char *path = gzip ? "test_tokfile_rt.tok.gz" : "test_tokfile_rt.tok";
  moe_token *ids = malloc((T + 1) * sizeof *ids); /* (T) */
  for (uint64_t i = 0; i < T; i++) ids[i] = (uint32_t)((i * 2654435761u + 977) % V);
  if (T) ids[T - 1] = V - 1; /* the largest legal id */
  int rc = moe_tokfile_write(path, ids, T, V, width, gzip);
  is_int(rc, MOE_OK, "write V=%u width=%u gzip=%d T=%llu", V, width, gzip, (unsigned long long)T);
  uint32_t w = width ? width : (V <= 65536 ? 2 : 4);
  if (!gzip)
    is_int(file_size(path), 32 + (long)(T * w), "plain file is exactly header + T*%u bytes", w);
  FILE *f = fopen(path, "rb");
  unsigned char head[8] = {0};
  if (f) { if (fread(head, 1, 8, f) != 8) memset(head, 0, 8); fclose(f); }
  if (gzip)
    ok(head[0] == 0x1f && head[1] == 0x8b, "gzip=1 writes a gzip stream");
  else
    ok(memcmp(head, "MOETOK\0\1", 8) == 0, "plain file starts with the magic");
  moe_tokfile *tf = NULL;
  rc = moe_tokfile_read(path, &tf);
  is_int(rc, MOE_OK, "read back");
  if (tf) {
    is_int(tf->width, w, "width %u on disk", w);
    ok(tf->count == T && (T == 0 || memcmp(tf->tokens, ids, T * sizeof *ids) == 0), "ids round-trip");
    moe_tokfile_free(tf);
  }
  unlink(path);
  free(ids);
}

int main(void)
{
  /* Valid fixtures. */
  check_valid("data/text/valid_w2.tok", 300, 2, 50);
  check_valid("data/text/valid_w2.tok.gz", 300, 2, 50);
  check_valid("data/text/valid_w4.tok.gz", 70000, 4, 40);
  check_valid("data/text/empty.tok", 8000, 2, 0);

  /* Malformed fixtures: one fault each. */
  check_bad("data/text/bad_magic.tok", MOE_EFORMAT, "magic");
  check_bad("data/text/bad_version.tok", MOE_EFORMAT, "version 2");
  check_bad("data/text/bad_width.tok", MOE_EFORMAT, "width 3");
  check_bad("data/text/bad_reserved.tok", MOE_EFORMAT, "reserved");
  check_bad("data/text/bad_w2_vocab.tok", MOE_EFORMAT, "70000");
  check_bad("data/text/trunc_header.tok", MOE_EFORMAT, "byte 20: truncated header");
  check_bad("data/text/trunc_data.tok", MOE_EFORMAT, "byte 107: truncated");
  check_bad("data/text/trailing.tok", MOE_EFORMAT, "byte 132: trailing data");
  check_bad("data/text/oor.tok", MOE_ERANGE, "token 17 (byte 66): id 300 >= vocabulary size 300");
  check_bad("data/text/bad_crc.tok.gz", MOE_ECHECKSUM, "incorrect data check");
  check_bad("data/text/bad_body.tok.gz", MOE_EFORMAT, "gzip error");
  check_bad("data/text/trunc.tok.gz", MOE_EFORMAT, "unexpected end of file");
  check_bad("data/text/no_such_file.tok", MOE_EIO, "cannot open");

  /* Round trips through the writer, both widths, plain and gzip. */
  roundtrip(8000, 0, 0, 1237);
  roundtrip(8000, 0, 1, 1237);
  roundtrip(8000, 4, 0, 511);
  roundtrip(65536, 2, 1, 300);
  roundtrip(50257, 0, 0, 0);
  roundtrip(70001, 0, 1, 200001); /* more than one 65536-token chunk */

  /* Writer errors. */
  moe_token ids[4] = {3, 141, 59, 26};
  moe_error_clear();
  is_int(moe_tokfile_write("test_tokfile_bad.tok", ids, 4, 100, 0, 0), MOE_ERANGE, "write: id >= V -> ERANGE");
  ok(strstr(moe_last_error(), "test_tokfile_bad.tok") && strstr(moe_last_error(), "token 1"),
     "write: message names the file and the token index");
  ok(access("test_tokfile_bad.tok", F_OK) != 0, "write: nothing left behind after a refused write");
  is_int(moe_tokfile_write("test_tokfile_bad.tok", ids, 4, 1000, 3, 0), MOE_EINVAL, "write: width 3 -> EINVAL");
  is_int(moe_tokfile_write("test_tokfile_bad.tok", ids, 4, 70000, 2, 0), MOE_EINVAL,
         "write: width 2 with V > 65536 -> EINVAL");
  is_int(moe_tokfile_write("test_tokfile_bad.tok", ids, 4, 0, 0, 0), MOE_EINVAL, "write: V = 0 -> EINVAL");
  is_int(moe_tokfile_write("no/such/dir/x.tok", ids, 4, 1000, 0, 0), MOE_EIO, "write: missing directory -> EIO");
  ok(strstr(moe_last_error(), "no/such/dir/x.tok") != NULL, "write: EIO message names the file");
  is_int(moe_tokfile_read(NULL, NULL), MOE_EINVAL, "read: NULL arguments -> EINVAL");
  return tap_done();
}
