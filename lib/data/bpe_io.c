/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bpe_io.c — byte-level BPE files: the merge-list vocabulary (moe_bpe_save,
 * moe_bpe_load) and tiktoken rank files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/bpe.h"
#include "internal.h"
#include "textio.h"
#include "bpe_impl.h"

/* ---------------------------------------------------------------------- */
/* Files.                                                                  */

int moe_bpe_save(const moe_bpe *b, const char *path)
{
  MOE_CHECK_ARG(b && path, "moe_bpe_save: NULL argument");
  MOE_CHECK_ARG(!b->tiktoken, "%s: a tiktoken vocabulary has no merge list to save", path);
  char *tmp = NULL;
  int fd = -1;
  if (textio_tmp_open(path, &tmp, &fd) != MOE_OK) return MOE_EIO;
  FILE *f = fdopen(fd, "w");
  if (!f) { close(fd); unlink(tmp); free(tmp); return moe_error(MOE_EIO, "%s: fdopen failed", path); }
  int ok = fprintf(f, "moe-bpe 1\nmerges %u\n", b->n_merges) > 0;
  for (uint32_t i = 0; ok && i < b->n_merges; i++)
    ok = fprintf(f, "%u %u\n", b->merges[2 * i], b->merges[2 * i + 1]) > 0;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
  if (fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return moe_error(MOE_EIO, "%s: write failed: %s", path, strerror(e));
  }
  free(tmp);
  return MOE_OK;
}

/* Parse a decimal u32 at *p (no sign, no leading '+'); advance *p. */
static int parse_u32(const char **p, uint32_t *v)
{
  const char *s = *p;
  if (*s < '0' || *s > '9') return 0;
  uint64_t x = 0;
  while (*s >= '0' && *s <= '9') {
    x = x * 10 + (uint64_t)(*s - '0');
    if (x > UINT32_MAX) return 0;
    s++;
  }
  *v = (uint32_t)x;
  *p = s;
  return 1;
}

/* Read a whole file into a NUL-terminated buffer. */
static int slurp(const char *path, char **buf, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  if (!b) { fclose(f); return moe_error(MOE_ENOMEM, "%s: out of memory", path); }
  for (;;) {
    if (n + 1 >= cap) {
      char *nb = realloc(b, cap * 2);
      if (!nb) { free(b); fclose(f); return moe_error(MOE_ENOMEM, "%s: out of memory", path); }
      b = nb;
      cap *= 2;
    }
    size_t r = fread(b + n, 1, cap - 1 - n, f);
    n += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) { free(b); return moe_error(MOE_EIO, "%s: read error", path); }
  b[n] = 0;
  *buf = b;
  *len = n;
  return MOE_OK;
}

int moe_bpe_load(const char *path, moe_bpe **out)
{
  MOE_CHECK_ARG(path && out, "moe_bpe_load: NULL argument");
  *out = NULL;
  char *buf;
  size_t len;
  int rc = slurp(path, &buf, &len);
  if (rc) return rc;
  uint32_t M = 0, *merges = NULL;
  const char *p = buf;
  if (strncmp(p, "moe-bpe ", 8) != 0) {
    rc = moe_error(MOE_EFORMAT, "%s:1: not a moe-bpe vocabulary (first line must be \"moe-bpe 1\")", path);
    goto done;
  }
  p += 8;
  uint32_t ver;
  if (!parse_u32(&p, &ver) || *p != '\n') {
    rc = moe_error(MOE_EFORMAT, "%s:1: malformed version line", path);
    goto done;
  }
  if (ver != 1) {
    rc = moe_error(MOE_EFORMAT, "%s:1: unknown moe-bpe version %u (this reader knows 1)", path, ver);
    goto done;
  }
  p++;
  if (strncmp(p, "merges ", 7) != 0 || (p += 7, !parse_u32(&p, &M)) || *p != '\n') {
    rc = moe_error(MOE_EFORMAT, "%s:2: expected \"merges M\"", path);
    goto done;
  }
  p++;
  if (M > UINT32_MAX - 256 || (size_t)M * 4 > len) {
    rc = moe_error(MOE_EFORMAT, "%s:2: %u merges cannot fit in a %zu-byte file", path, M, len);
    goto done;
  }
  merges = malloc(((size_t)M * 2 + 1) * sizeof *merges);
  if (!merges) { rc = moe_error(MOE_ENOMEM, "%s: out of memory", path); goto done; }
  for (uint32_t i = 0; i < M; i++) {
    uint32_t l, r;
    if ((size_t)(p - buf) >= len) {
      rc = moe_error(MOE_EFORMAT, "%s:%u: file ends after %u of %u merges", path, i + 3, i, M);
      goto done;
    }
    if (!parse_u32(&p, &l) || *p != ' ' || (p++, !parse_u32(&p, &r)) || *p != '\n') {
      rc = moe_error(MOE_EFORMAT, "%s:%u: expected \"LEFT RIGHT\" (two decimal ids)", path, i + 3);
      goto done;
    }
    p++;
    if (l >= 256 + i || r >= 256 + i) {
      rc = moe_error(MOE_ERANGE, "%s:%u: merge %u uses id %u, but only ids < %u exist before it", path,
                     i + 3, i, l >= 256 + i ? l : r, 256 + i);
      goto done;
    }
    merges[2 * i] = l;
    merges[2 * i + 1] = r;
  }
  if ((size_t)(p - buf) != len) {
    rc = moe_error(MOE_EFORMAT, "%s:%u: trailing data after %u merges", path, M + 3, M);
    goto done;
  }
  rc = moe_bpe_from_merges(merges, M, out);
  if (rc) {
    /* A merge the list refuses (one that repeats an earlier merge) is a
     * malformed file: MOE_EFORMAT at its line (merge i is on line 3 + i). */
    char why[512];
    unsigned i;
    snprintf(why, sizeof why, "%s", moe_last_error());
    if (rc == MOE_ENOMEM)
      rc = moe_error(rc, "%s: %s", path, why);
    else if (sscanf(why, "merge %u", &i) == 1)
      rc = moe_error(MOE_EFORMAT, "%s:%u: %s", path, i + 3, why);
    else
      rc = moe_error(MOE_EFORMAT, "%s: %s", path, why);
  }
done:
  free(merges);
  free(buf);
  return rc;
}

static int b64val(int c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decode standard base64 (with '=' padding) of s[0..n) into out; returns
 * the byte count or -1 if malformed. out needs n / 4 * 3 bytes. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
  if (n == 0 || n % 4) return -1;
  long o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
      if (pad) return -1;   /* data after padding */
      v[k] = b64val((unsigned char)s[i + k]);
      if (v[k] < 0) return -1;
    }
    uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[o++] = (uint8_t)(x >> 16);
    if (pad < 2) out[o++] = (uint8_t)(x >> 8);
    if (pad < 1) out[o++] = (uint8_t)x;
  }
  return o;
}

/* Load a ranks file; when pin is not NULL, its sha256 must equal pin. */
static int load_tiktoken(const char *path, const char *pin, moe_bpe **out)
{
  MOE_CHECK_ARG(path && out, "moe_bpe_load_tiktoken: NULL argument");
  *out = NULL;
  char *buf;
  size_t len;
  int rc = slurp(path, &buf, &len);
  if (rc) return rc;
  if (pin) {
    char got[65];
    moei_sha256_hex(buf, len, got);
    if (strcmp(got, pin) != 0) {
      free(buf);
      return moe_error(MOE_ECHECKSUM,
                       "%s: sha256 %s is not the pinned r50k_base sha256 %s: the file is corrupted "
                       "or another ranks file (load a custom one with moe_bpe_load_tiktoken_unpinned)",
                       path, got, pin);
    }
  }
  /* Lines in any rank order: collect (rank, offset, length) then place. */
  size_t nlines = 0;
  for (size_t i = 0; i < len; i++) nlines += buf[i] == '\n';
  if (len && buf[len - 1] != '\n') nlines++;
  uint64_t *loff = malloc((nlines + 1) * sizeof *loff);
  uint32_t *llen = malloc((nlines + 1) * sizeof *llen);
  uint32_t *byrank = malloc((nlines + 1) * sizeof *byrank);
  uint8_t *tokbuf = malloc(len / 4 * 3 + 4);
  moe_bpe *b = calloc(1, sizeof *b);
  if (!loff || !llen || !byrank || !tokbuf || !b) { rc = moe_error(MOE_ENOMEM, "%s: out of memory", path); goto done; }
  if (nlines == 0) { rc = moe_error(MOE_EFORMAT, "%s: empty tiktoken file", path); goto done; }
  for (size_t i = 0; i < nlines; i++) byrank[i] = UINT32_MAX;
  size_t tlen = 0, line = 0;
  for (const char *p = buf; p < buf + len; line++) {
    const char *eol = memchr(p, '\n', (size_t)(buf + len - p));
    if (!eol) eol = buf + len;
    const char *sp = memchr(p, ' ', (size_t)(eol - p));
    const char *q = sp ? sp + 1 : NULL;
    uint32_t rank;
    if (!sp || !parse_u32(&q, &rank) || q != eol) {
      rc = moe_error(MOE_EFORMAT, "%s:%zu: expected \"BASE64 RANK\"", path, line + 1);
      goto done;
    }
    long nb = b64_decode(p, (size_t)(sp - p), tokbuf + tlen);
    if (nb <= 0) {
      rc = moe_error(MOE_EFORMAT, "%s:%zu: malformed base64 token", path, line + 1);
      goto done;
    }
    if (rank >= nlines) {
      rc = moe_error(MOE_ERANGE, "%s:%zu: rank %u >= number of tokens %zu", path, line + 1, rank, nlines);
      goto done;
    }
    if (byrank[rank] != UINT32_MAX) {
      rc = moe_error(MOE_EFORMAT, "%s:%zu: rank %u already given on line %u", path, line + 1, rank,
                     byrank[rank] + 1);
      goto done;
    }
    byrank[rank] = (uint32_t)line;
    loff[line] = tlen;
    llen[line] = (uint32_t)nb;
    tlen += (size_t)nb;
    p = eol + (eol < buf + len);
  }
  b->tiktoken = 1;
  b->V = (uint32_t)nlines;
  int have[256] = {0};
  for (uint32_t r = 0; r < nlines; r++) {
    uint32_t idx;
    int added;
    uint32_t li = byrank[r];
    if (strtab_intern(&b->tok, tokbuf + loff[li], llen[li], &idx, &added)) {
      rc = moe_error(MOE_ENOMEM, "%s: out of memory", path);
      goto done;
    }
    if (!added) {
      rc = moe_error(MOE_EFORMAT, "%s:%u: token of rank %u repeats the bytes of rank %u", path, li + 1, r, idx);
      goto done;
    }
    if (llen[li] == 1) { b->byte_tok[tokbuf[loff[li]]] = r; have[tokbuf[loff[li]]] = 1; }
  }
  for (int c = 0; c < 256; c++)
    if (!have[c]) {
      rc = moe_error(MOE_EFORMAT, "%s: no token for the single byte 0x%02x (every byte needs one)", path, c);
      goto done;
    }
  *out = b;
  b = NULL;
done:
  moe_bpe_free(b);
  free(loff); free(llen); free(byrank); free(tokbuf); free(buf);
  return rc;
}

int moe_bpe_load_tiktoken(const char *path, moe_bpe **out)
{
  return load_tiktoken(path, MOE_BPE_R50K_SHA256, out);
}

int moe_bpe_load_tiktoken_unpinned(const char *path, moe_bpe **out)
{
  return load_tiktoken(path, NULL, out);
}
