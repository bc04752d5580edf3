/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/bpe.h — byte-level BPE: trainer, encoder, decoder, and GPT-2's
 * r50k_base ranks as a reference vocabulary.
 *
 * Pre-tokenization (shared by training and encoding) follows GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * evaluated on bytes: each step takes the first alternative that matches at
 * the current position. Character classes are Unicode's, as in the regex
 * engine of OpenAI's tiktoken (Rust regex / fancy-regex): \s is the
 * White_Space property (\t-\r, ' ', U+0085, U+00A0, U+1680, U+2000-200A,
 * U+2028-2029, U+202F, U+205F, U+3000), \p{L} and \p{N} are the General_
 * Categories L* and N* of Unicode 16.0 (utf8proc's tables, plus the letters
 * and numbers of Unicode 15.1 and 16.0 when utf8proc is older); every other
 * code point (marks, punctuation, symbols, controls, format, private use,
 * unassigned) is "other". A byte that does not start a valid UTF-8 sequence
 * (stray continuation byte, overlong form, surrogate) is a one-byte "other"
 * character. Only the ASCII apostrophe forms contractions,
 * case-sensitively, and only the ASCII space is the optional " ?" prefix.
 * The effect: a whitespace run followed by a non-space leaves its last
 * character to the next piece when that character is ' '. This reproduces
 * tiktoken 1.0.22's r50k_base ids on every code point (t/test_tiktoken.c
 * checks the class of each of the 1,112,064 non-surrogate code points and
 * their ids in three contexts) and on the SOTU corpus (all 2.07 M GPT-2
 * tokens). A different Unicode version on either side (a utf8proc newer
 * than tiktoken's 16.0) shows as a failure of that test.
 *
 * Training counts each distinct piece once with its frequency, then merges
 * the most frequent adjacent pair of token ids. Ties between equally
 * frequent pairs go to the lowest (left id, right id), compared as left
 * first. Merge i creates token 256 + i; tokens 0..255 are the bytes. Pieces
 * never merge across their boundaries. Two merges may spell the same bytes
 * (a+bc and ab+c); both ids exist and the merge order decides which one the
 * encoder produces.
 *
 * Encoding splits the input into pieces and, inside each piece, repeatedly
 * merges the adjacent pair of lowest rank (leftmost first among equal
 * ranks) until no adjacent pair has a rank. For a trained vocabulary the
 * rank of (a, b) is the index of the merge a b; for a tiktoken vocabulary
 * it is the rank of the concatenated bytes, as in tiktoken (which also
 * takes a piece that is itself a token as that token directly). Every byte
 * string, including NUL, bytes >= 0x80 and invalid UTF-8, encodes, and
 * decoding concatenates the tokens' bytes, so decode(encode(x)) == x.
 *
 * Vocabulary file (moe_bpe_save / moe_bpe_load), text, LF line ends:
 *   line 1: "moe-bpe 1"
 *   line 2: "merges M"
 *   then M lines "LEFT RIGHT": decimal ids of merge i (token 256 + i),
 *   each < 256 + i.
 *
 * Special tokens (GPT-2's <|endoftext|> = 50256) are not handled. */
#ifndef MOE_BPE_H
#define MOE_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "moe/token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moe_bpe moe_bpe;

/* Length of the pre-tokenizer piece that starts at s[pos] (pos < n); >= 1. */
size_t moe_bpe_pretok(const uint8_t *s, size_t n, size_t pos);

/* What training did (optional output of moe_bpe_train). */
typedef struct {
  uint64_t pieces;        /* pre-tokenizer pieces in the text */
  uint64_t unique_pieces; /* distinct pieces (the "words" counted once) */
  uint32_t merges;        /* merges done (fewer than asked if pairs ran out) */
} moe_bpe_train_stats;

/* Train on text[0..n) until the vocabulary has vocab_size tokens (>= 256)
 * or no adjacent pair is left. stats may be NULL. */
int moe_bpe_train(const uint8_t *text, size_t n, uint32_t vocab_size, moe_bpe **out,
                  moe_bpe_train_stats *stats);

/* The tokens of a merge-list vocabulary spell at most this many bytes in
 * all (trained vocabularies need a few MB at most; a merge list whose
 * tokens double in length at each merge would otherwise need 2^M bytes). */
#define MOE_BPE_MAX_BYTES (1u << 28)

/* A vocabulary from an explicit merge list: merges[2i], merges[2i+1] are the
 * left and right ids of token 256 + i (each < 256 + i). MOE_ERANGE when the
 * tokens would spell more than MOE_BPE_MAX_BYTES bytes in all. */
int moe_bpe_from_merges(const moe_token *merges /* (M, 2) */, uint32_t n_merges, moe_bpe **out);

/* Save / load the vocabulary file described above. Load validates every
 * line: MOE_EFORMAT with file:line for a malformed line, a wrong header, a
 * merge that repeats an earlier one or trailing data; MOE_ERANGE with
 * file:line for an id not yet defined; MOE_EIO, MOE_ENOMEM. */
int moe_bpe_save(const moe_bpe *b, const char *path);
int moe_bpe_load(const char *path, moe_bpe **out);

/* sha256 of GPT-2's r50k_base.tiktoken, as OpenAI's tiktoken pins it. */
#define MOE_BPE_R50K_SHA256 "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"

/* Load GPT-2's r50k_base ranks file. Its sha256 must be
 * MOE_BPE_R50K_SHA256: any other content (a corrupted or truncated copy, a
 * different vocabulary) is MOE_ECHECKSUM with a message naming the file
 * and both hashes, so a damaged file never silently changes token ids. */
int moe_bpe_load_tiktoken(const char *path, moe_bpe **out);

/* Load any tiktoken ranks file without a hash check (a custom vocabulary):
 * lines "BASE64 SP RANK". Ranks must be 0..N-1, each once, token byte
 * strings distinct, and every single byte must be a token (both loaders
 * check this and report file:line). The pre-tokenizer is GPT-2's whatever
 * the file. */
int moe_bpe_load_tiktoken_unpinned(const char *path, moe_bpe **out);

void moe_bpe_free(moe_bpe *b);

/* Number of tokens V (ids are 0..V-1). */
uint32_t moe_bpe_vocab_size(const moe_bpe *b);

/* Number of merges of a trained/loaded merge vocabulary (0 for tiktoken). */
uint32_t moe_bpe_n_merges(const moe_bpe *b);

/* Merge i's (left, right) ids; MOE_ERANGE if i >= n_merges. */
int moe_bpe_merge(const moe_bpe *b, uint32_t i, moe_token *left, moe_token *right);

/* Bytes of token id (not NUL-terminated); NULL if id >= V. */
const uint8_t *moe_bpe_token_bytes(const moe_bpe *b, moe_token id, size_t *len);

/* Encode text[0..n) into ids, which must have room for n ids (a token has
 * at least one byte). *n_ids receives the count. Thread-safe on a shared b. */
int moe_bpe_encode(const moe_bpe *b, const uint8_t *text, size_t n, moe_token *ids /* (n) */,
                   size_t *n_ids);

/* Decode ids into a new buffer (free with free()); *len bytes, plus a NUL
 * after them for convenience. MOE_ERANGE names the first id >= V. */
int moe_bpe_decode(const moe_bpe *b, const moe_token *ids /* (T) */, size_t n_ids, uint8_t **text,
                   size_t *len);

#ifdef __cplusplus
}
#endif
#endif
