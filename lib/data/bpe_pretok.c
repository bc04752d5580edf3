/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bpe_pretok.c — GPT-2's pre-tokenizer for the byte-level BPE (moe/bpe.h):
 * character classes from utf8proc and unicode_delta.h, and the pieces. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "moe/bpe.h"
#include "internal.h"

/* ---------------------------------------------------------------------- */
/* Character classes of the pre-tokenizer (see moe/bpe.h).                 */

enum { C_LETTER, C_NUMBER, C_SPACE, C_OTHER };

/* \s as tiktoken's regex engine (Rust regex, fancy-regex) reads it: the
 * Unicode White_Space property (PropList.txt; unchanged since Unicode 6.3,
 * which took U+180E out). U+001C-001F and U+200B are not White_Space. */
static int is_white_space(uint32_t cp)
{
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

#include "unicode_delta.h"

/* Class of a code point: \s first (no White_Space code point is a letter or
 * a number), then \p{L} = General_Category L*, \p{N} = N*, from utf8proc;
 * everything else (marks, punctuation, symbols, controls, format,
 * unassigned, private use) is "other". tiktoken's regex reads Unicode 16.0
 * and Debian 12's utf8proc 2.8 Unicode 15.0: the 15.1 and 16.0 letters and
 * numbers come from unicode_delta.h (generated from the UCD). */
static int cp_class(uint32_t cp)
{
  if (is_white_space(cp)) return C_SPACE;
  size_t lo = 0, hi = sizeof unicode16_delta / sizeof *unicode16_delta;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < unicode16_delta[mid].lo) hi = mid;
    else if (cp > unicode16_delta[mid].hi) lo = mid + 1;
    else return unicode16_delta[mid].c;
  }
  switch (utf8proc_category((utf8proc_int32_t)cp)) {
  case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    return C_LETTER;
  case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
    return C_NUMBER;
  default:
    return C_OTHER;
  }
}

/* Decode one strict UTF-8 sequence at s[pos]; 0 if none starts there. */
static size_t utf8_decode(const uint8_t *s, size_t n, size_t pos, uint32_t *cp)
{
  uint8_t b = s[pos];
  size_t need;
  uint32_t c, min2_lo = 0x80, min2_hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) { need = 1; c = b & 0x1F; }
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 2; c = b & 0x0F;
    if (b == 0xE0) min2_lo = 0xA0;     /* overlong */
    if (b == 0xED) min2_hi = 0x9F;     /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3; c = b & 0x07;
    if (b == 0xF0) min2_lo = 0x90;     /* overlong */
    if (b == 0xF4) min2_hi = 0x8F;     /* > U+10FFFF */
  } else
    return 0;
  if (pos + need >= n)
    return 0;
  for (size_t k = 1; k <= need; k++) {
    uint8_t t = s[pos + k];
    uint8_t lo = k == 1 ? (uint8_t)min2_lo : 0x80, hi = k == 1 ? (uint8_t)min2_hi : 0xBF;
    if (t < lo || t > hi) return 0;
    c = c << 6 | (t & 0x3F);
  }
  *cp = c;
  return need + 1;
}

/* Class of the character at s[pos] and its length in bytes. */
static int char_class(const uint8_t *s, size_t n, size_t pos, size_t *clen)
{
  uint8_t b = s[pos];
  if (b < 0x80) {
    *clen = 1;
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return C_LETTER;
    if (b >= '0' && b <= '9') return C_NUMBER;
    if (b == ' ' || (b >= '\t' && b <= '\r')) return C_SPACE;
    return C_OTHER;
  }
  uint32_t cp;
  size_t len = utf8_decode(s, n, pos, &cp);
  if (len == 0) { *clen = 1; return C_OTHER; }
  *clen = len;
  return cp_class(cp);
}

/* End of the run of class c that starts at p. */
static size_t run_end(const uint8_t *s, size_t n, size_t p, int c)
{
  size_t len;
  while (p < n && char_class(s, n, p, &len) == c) p += len;
  return p;
}

size_t moe_bpe_pretok(const uint8_t *s, size_t n, size_t pos)
{
  if (pos >= n) return 0;
  if (s[pos] == '\'' && pos + 1 < n) {
    uint8_t a = s[pos + 1], b = pos + 2 < n ? s[pos + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  size_t clen;
  int c = char_class(s, n, pos, &clen);
  if (c != C_SPACE)
    return run_end(s, n, pos, c) - pos;
  /* " ?X+": a single ' ' joins the run after it. */
  if (s[pos] == ' ' && pos + 1 < n) {
    size_t l2;
    int c2 = char_class(s, n, pos + 1, &l2);
    if (c2 != C_SPACE)
      return run_end(s, n, pos + 1, c2) - pos;
  }
  /* "\s+(?!\S)|\s+": a whitespace run; if a non-space follows, its last
   * character is left for the next piece (unless it is the only one). */
  size_t end = pos, last = pos;
  while (end < n) {
    size_t l2;
    if (char_class(s, n, end, &l2) != C_SPACE) break;
    last = end;
    end += l2;
  }
  if (end < n && last > pos) return last - pos;
  return end - pos;
}
