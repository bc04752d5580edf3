/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_tokfile.c — moe_tokfile_read (plain or gzip). Byte 0 bit 1: the rest
 * is gzip-compressed before it is written (bit clear: written as is, which
 * also covers gzip members the fuzzer builds itself). A file read without
 * error is written back with moe_tokfile_write and must read back equal. */
#include <zlib.h>

#include "fuzz.h"
#include "moe/tokfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  const char *path;
  if (data[0] & 2) {
    path = fuzz_path(".tok");
    gzFile f = gzopen(path, "wb1");
    FUZZ_ASSERT(f);
    if (size > 1) FUZZ_ASSERT(gzwrite(f, data + 1, (unsigned)(size - 1)) == (int)(size - 1));
    FUZZ_ASSERT(gzclose(f) == Z_OK);
  } else {
    path = fuzz_write(data + 1, size - 1, ".tok");
  }
  moe_tokfile *tf = (moe_tokfile *)1;
  int rc = moe_tokfile_read(path, &tf);
  if (rc != MOE_OK) {
    FUZZ_ASSERT(tf == NULL);
    FUZZ_ASSERT(rc == MOE_EIO || rc == MOE_EFORMAT || rc == MOE_ERANGE || rc == MOE_ECHECKSUM ||
                rc == MOE_ENOMEM);
    FUZZ_ASSERT(moe_last_error()[0]);
    return 0;
  }
  FUZZ_ASSERT(tf->width == 2 || tf->width == 4);
  for (uint64_t i = 0; i < tf->count; i++) FUZZ_ASSERT(tf->tokens[i] < tf->vocab_size);
  /* round trip through the writer */
  FUZZ_ASSERT(moe_tokfile_write(path, tf->tokens, tf->count, tf->vocab_size, tf->width, 0) == MOE_OK);
  moe_tokfile *back = NULL;
  FUZZ_ASSERT(moe_tokfile_read(path, &back) == MOE_OK);
  FUZZ_ASSERT(back->count == tf->count && back->vocab_size == tf->vocab_size &&
              back->width == tf->width);
  FUZZ_ASSERT(tf->count == 0 ||
              !memcmp(back->tokens, tf->tokens, (size_t)tf->count * sizeof *tf->tokens));
  moe_tokfile_free(back);
  moe_tokfile_free(tf);
  return 0;
}
