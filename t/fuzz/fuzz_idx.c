/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_idx.c — moe_idx_read (IDX, plain or gzip). Byte 0 of the input
 * picks the dimension count asked for (1 or 3) and whether the rest is
 * written as is (plain, or raw gzip bytes the fuzzer made) or compressed
 * first (so the gzip path sees arbitrary well-formed IDX content too). */
#include <zlib.h>

#include "fuzz.h"
#include "moe/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  int ndim = data[0] & 1 ? 3 : 1, gz = data[0] & 2;
  const char *path;
  if (gz) {
    path = fuzz_path(".idx");
    gzFile f = gzopen(path, "wb1");
    FUZZ_ASSERT(f);
    if (size > 1) FUZZ_ASSERT(gzwrite(f, data + 1, (unsigned)(size - 1)) == (int)(size - 1));
    FUZZ_ASSERT(gzclose(f) == Z_OK);
  } else {
    path = fuzz_write(data + 1, size - 1, ".idx");
  }
  moe_idx *x = (moe_idx *)1;
  int rc = moe_idx_read(path, ndim, &x);
  if (rc == MOE_OK) {
    FUZZ_ASSERT(x && x->ndim == ndim);
    size_t c = 1;
    for (int i = 0; i < 3; i++) c *= x->dims[i];
    FUZZ_ASSERT(c == x->count && x->count > 0);
    volatile uint8_t s = 0;
    for (size_t i = 0; i < x->count; i++) s ^= x->data[i]; /* every byte readable */
    moe_idx_free(x);
  } else {
    FUZZ_ASSERT(rc == MOE_EIO || rc == MOE_EFORMAT || rc == MOE_ENOMEM);
    FUZZ_ASSERT(moe_last_error()[0]);
  }
  return 0;
}
