/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_bpe_roundtrip.c — the BPE pre-tokenizer, trainer, encoder and
 * decoder on arbitrary bytes. Byte 0 sets a vocabulary size 256..319; a
 * vocabulary is trained on the rest, which is then encoded and decoded
 * with it and with a fixed trained vocabulary: decode(encode(x)) == x, at
 * most one id per byte, every id < V, and the pre-tokenizer's pieces tile
 * the input. */
#include "fuzz.h"
#include "moe/bpe.h"

static void roundtrip(const moe_bpe *b, const uint8_t *s, size_t n)
{
  moe_token *ids = malloc((n ? n : 1) * sizeof *ids);
  FUZZ_ASSERT(ids);
  size_t nid = 0, len = 0;
  uint8_t *back = NULL;
  FUZZ_ASSERT(moe_bpe_encode(b, s, n, ids, &nid) == MOE_OK && nid <= n);
  for (size_t i = 0; i < nid; i++) FUZZ_ASSERT(ids[i] < moe_bpe_vocab_size(b));
  FUZZ_ASSERT(moe_bpe_decode(b, ids, nid, &back, &len) == MOE_OK);
  FUZZ_ASSERT(len == n && (n == 0 || !memcmp(back, s, n)));
  free(back);
  free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static moe_bpe *fixed;
  if (!fixed) {
    static const char corpus[] =
        "the quick brown fox jumps over the lazy dog; THE QUICK BROWN FOX! 1234 5678 "
        "it's we're they'll I'd \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\n\n";
    FUZZ_ASSERT(moe_bpe_train((const uint8_t *)corpus, sizeof corpus - 1, 320, &fixed, NULL) == MOE_OK);
  }
  if (size < 1) return 0;
  const uint8_t *s = data + 1;
  size_t n = size - 1;
  for (size_t pos = 0; pos < n;) {
    size_t k = moe_bpe_pretok(s, n, pos);
    FUZZ_ASSERT(k >= 1 && k <= n - pos);
    pos += k;
  }
  roundtrip(fixed, s, n);
  moe_bpe *b = NULL;
  moe_bpe_train_stats st;
  int rc = moe_bpe_train(s, n, 256 + (data[0] & 63), &b, &st);
  FUZZ_ASSERT(rc == MOE_OK);
  FUZZ_ASSERT(moe_bpe_vocab_size(b) == 256 + st.merges && st.merges <= (uint32_t)(data[0] & 63));
  roundtrip(b, s, n);
  moe_bpe_free(b);
  return 0;
}
