/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_bpe_merges.c — moe_bpe_load (the "moe-bpe 1" merges file). A file
 * that loads must save and load back to the same merges, and encode then
 * decode a fixed text to itself. */
#include "fuzz.h"
#include "moe/bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *path = fuzz_write(data, size, ".bpe");
  moe_bpe *b = (moe_bpe *)1;
  int rc = moe_bpe_load(path, &b);
  if (rc != MOE_OK) {
    FUZZ_ASSERT(rc == MOE_EIO || rc == MOE_EFORMAT || rc == MOE_ERANGE || rc == MOE_ENOMEM);
    FUZZ_ASSERT(moe_last_error()[0]);
    return 0;
  }
  uint32_t M = moe_bpe_n_merges(b);
  FUZZ_ASSERT(moe_bpe_vocab_size(b) == 256 + M);
  FUZZ_ASSERT(moe_bpe_save(b, path) == MOE_OK);
  moe_bpe *c = NULL;
  FUZZ_ASSERT(moe_bpe_load(path, &c) == MOE_OK && moe_bpe_n_merges(c) == M);
  for (uint32_t i = 0; i < M; i++) {
    uint32_t l1, r1, l2, r2;
    FUZZ_ASSERT(moe_bpe_merge(b, i, &l1, &r1) == MOE_OK && moe_bpe_merge(c, i, &l2, &r2) == MOE_OK);
    FUZZ_ASSERT(l1 == l2 && r1 == r2 && l1 < 256 + i && r1 < 256 + i);
  }
  static const uint8_t text[] = "Hello, world! It's 2026 -- \xc3\xa9t\xc3\xa9\n\n  x\xff\x00y";
  size_t n = sizeof text - 1, nid = 0, len = 0;
  moe_token ids[sizeof text];
  uint8_t *back = NULL;
  FUZZ_ASSERT(moe_bpe_encode(c, text, n, ids, &nid) == MOE_OK && nid <= n);
  FUZZ_ASSERT(moe_bpe_decode(c, ids, nid, &back, &len) == MOE_OK);
  FUZZ_ASSERT(len == n && !memcmp(back, text, n));
  free(back);
  moe_bpe_free(c);
  moe_bpe_free(b);
  return 0;
}
