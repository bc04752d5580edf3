/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_tiktoken.c — moe_bpe_load_tiktoken_unpinned (lines "BASE64 RANK"):
 * the parser itself (moe_bpe_load_tiktoken checks GPT-2's sha256 first and
 * refuses every fuzzed file before parsing). A file that loads must encode
 * then decode a fixed text to itself, and every id below V must have
 * bytes. */
#include "fuzz.h"
#include "moe/bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *path = fuzz_write(data, size, ".tiktoken");
  moe_bpe *b = (moe_bpe *)1;
  int rc = moe_bpe_load_tiktoken_unpinned(path, &b);
  if (rc != MOE_OK) {
    FUZZ_ASSERT(rc == MOE_EIO || rc == MOE_EFORMAT || rc == MOE_ERANGE || rc == MOE_ENOMEM ||
                rc == MOE_ECHECKSUM);
    FUZZ_ASSERT(moe_last_error()[0]);
    return 0;
  }
  uint32_t V = moe_bpe_vocab_size(b);
  FUZZ_ASSERT(V >= 256);
  for (uint32_t i = 0; i < V; i++) {
    size_t len = 0;
    FUZZ_ASSERT(moe_bpe_token_bytes(b, i, &len) && len >= 1);
  }
  static const uint8_t text[] = "Hello, world! It's 2026 -- \xc3\xa9t\xc3\xa9\n\n  x\xff\x00y";
  size_t n = sizeof text - 1, nid = 0, len = 0;
  moe_token ids[sizeof text];
  uint8_t *back = NULL;
  FUZZ_ASSERT(moe_bpe_encode(b, text, n, ids, &nid) == MOE_OK && nid <= n);
  FUZZ_ASSERT(moe_bpe_decode(b, ids, nid, &back, &len) == MOE_OK);
  FUZZ_ASSERT(len == n && !memcmp(back, text, n));
  free(back);
  moe_bpe_free(b);
  return 0;
}
