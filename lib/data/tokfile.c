/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tokfile.c — read and write token files (format in moe/tokfile.h).
 *
 * One read path for plain and gzip files (zlib's gzread is transparent), and
 * every count in the header is checked against the bytes that really
 * arrive: a token file is never read short. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "moe/tokfile.h"
#include "internal.h"
#include "textio.h"

static void put_u32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* Turn the state of a gzFile after a failed or short read into an error.
 * zlib says Z_DATA_ERROR for a corrupt stream (with "incorrect data check" /
 * "incorrect length check" when only the gzip trailer's CRC-32 or size
 * disagrees) and Z_BUF_ERROR for a stream cut short. */
static int gz_fail(gzFile gz, const char *path, uint64_t off, const char *what)
{
  int zerr = Z_OK;
  const char *zmsg = gzerror(gz, &zerr);
  /* gzerror prefixes the path; ours is already at the front. */
  size_t plen = strlen(path);
  if (strncmp(zmsg, path, plen) == 0 && zmsg[plen] == ':' && zmsg[plen + 1] == ' ')
    zmsg += plen + 2;
  if (zerr == Z_ERRNO)
    return moe_error(MOE_EIO, "%s: byte %llu: read error while reading %s: %s", path,
                     (unsigned long long)off, what, strerror(errno));
  if (zerr == Z_DATA_ERROR) {
    int sum = strstr(zmsg, "data check") || strstr(zmsg, "length check");
    return moe_error(sum ? MOE_ECHECKSUM : MOE_EFORMAT,
                     "%s: gzip error after %llu good uncompressed bytes, while reading %s: %s", path,
                     (unsigned long long)off, what, zmsg);
  }
  if (zerr == Z_MEM_ERROR)
    return moe_error(MOE_ENOMEM, "%s: out of memory in zlib", path);
  if (zerr != Z_OK)
    return moe_error(MOE_EFORMAT, "%s: byte %llu: gzip stream ends early while reading %s: %s",
                     path, (unsigned long long)off, what, zmsg);
  return MOE_OK;
}

/* Read exactly n bytes or report why not. *got receives what arrived. */
static int read_full(gzFile gz, const char *path, uint64_t off, void *buf, size_t n, size_t *got,
                     const char *what)
{
  size_t have = 0;
  while (have < n) {
    unsigned chunk = n - have > (1u << 30) ? (1u << 30) : (unsigned)(n - have);
    int r = gzread(gz, (char *)buf + have, chunk);
    if (r < 0) {
      *got = have;
      int rc = gz_fail(gz, path, off + have, what);
      return rc ? rc : moe_error(MOE_EIO, "%s: read failed", path);
    }
    if (r == 0)
      break;
    have += (size_t)r;
  }
  *got = have;
  /* A short read may hide a truncated gzip stream: ask zlib first. */
  if (have < n)
    return gz_fail(gz, path, off + have, what);
  return MOE_OK;
}

int moe_tokfile_read(const char *path, moe_tokfile **out)
{
  MOE_CHECK_ARG(path && out, "moe_tokfile_read: NULL argument");
  *out = NULL;
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    return moe_error(errno == ENOMEM ? MOE_ENOMEM : MOE_EIO, "%s: cannot open: %s", path,
                     errno ? strerror(errno) : "zlib could not open it");
  gzbuffer(gz, 1u << 17);

  int rc = MOE_OK;
  moe_tokfile *tf = NULL;
  unsigned char *raw = NULL;
  unsigned char h[MOE_TOKFILE_HEADER_BYTES];
  size_t got = 0;

  rc = read_full(gz, path, 0, h, sizeof h, &got, "the header");
  if (rc) goto done;
  if (got < sizeof h) {
    rc = moe_error(MOE_EFORMAT, "%s: byte %zu: truncated header (%d bytes expected)", path, got,
                   MOE_TOKFILE_HEADER_BYTES);
    goto done;
  }
  if (memcmp(h, MOE_TOKFILE_MAGIC, 8) != 0) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 0: bad magic (not a moebench token file)", path);
    goto done;
  }
  uint32_t version = get_u32(h + 8), V = get_u32(h + 12), width = get_u32(h + 16);
  uint32_t reserved = get_u32(h + 20);
  uint64_t T = get_u64(h + 24);
  if (version != MOE_TOKFILE_VERSION) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 8: unknown format version %u (this reader knows %u)", path,
                   version, MOE_TOKFILE_VERSION);
    goto done;
  }
  if (V == 0) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 12: vocabulary size is 0", path);
    goto done;
  }
  if (width != 2 && width != 4) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 16: token width %u (must be 2 or 4)", path, width);
    goto done;
  }
  if (width == 2 && V > 65536u) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 16: width 2 cannot hold vocabulary size %u", path, V);
    goto done;
  }
  if (reserved != 0) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 20: reserved field is %u (must be 0)", path, reserved);
    goto done;
  }
  if (T > (UINT64_MAX - MOE_TOKFILE_HEADER_BYTES) / width || T > SIZE_MAX / sizeof(uint32_t)) {
    rc = moe_error(MOE_EFORMAT, "%s: byte 24: token count %llu is impossibly large", path,
                   (unsigned long long)T);
    goto done;
  }

  tf = calloc(1, sizeof *tf);
  if (!tf) { rc = moe_error(MOE_ENOMEM, "%s: out of memory", path); goto done; }
  tf->vocab_size = V;
  tf->width = width;
  tf->count = T;
  /* Grow as the data arrives rather than trusting the count for the
   * allocation: a corrupt count in a small file is a format error, not an
   * out-of-memory one. */
  size_t cap = T < (1u << 20) ? (size_t)T : (1u << 20);
  tf->tokens = malloc((cap ? cap : 1) * sizeof(uint32_t)); /* (T) */
  raw = malloc((size_t)(1u << 16) * width);
  if (!tf->tokens || !raw) { rc = moe_error(MOE_ENOMEM, "%s: out of memory", path); goto done; }

  uint64_t done_n = 0;
  while (done_n < T) {
    size_t n = T - done_n < (1u << 16) ? (size_t)(T - done_n) : (1u << 16);
    uint64_t off = MOE_TOKFILE_HEADER_BYTES + done_n * width;
    rc = read_full(gz, path, off, raw, n * width, &got, "tokens");
    if (rc) goto done;
    if (got < n * width) {
      rc = moe_error(MOE_EFORMAT,
                     "%s: byte %llu: truncated: the header promises %llu tokens (%llu bytes) but the data "
                     "ends after %llu whole tokens",
                     path, (unsigned long long)(off + got), (unsigned long long)T,
                     (unsigned long long)(MOE_TOKFILE_HEADER_BYTES + T * width),
                     (unsigned long long)(done_n + got / width));
      goto done;
    }
    if (done_n + n > cap) {
      size_t ncap = cap * 2 > done_n + n ? cap * 2 : (size_t)(done_n + n);
      if (ncap > T) ncap = (size_t)T;
      uint32_t *p = realloc(tf->tokens, ncap * sizeof(uint32_t));
      if (!p) { rc = moe_error(MOE_ENOMEM, "%s: out of memory for %llu tokens", path, (unsigned long long)T); goto done; }
      tf->tokens = p;
      cap = ncap;
    }
    for (size_t i = 0; i < n; i++) {
      uint32_t id = width == 2 ? (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8 : get_u32(raw + 4 * i);
      if (id >= V) {
        rc = moe_error(MOE_ERANGE, "%s: token %llu (byte %llu): id %u >= vocabulary size %u", path,
                       (unsigned long long)(done_n + i), (unsigned long long)(off + i * width), id, V);
        goto done;
      }
      tf->tokens[done_n + i] = id;
    }
    done_n += n;
  }
  /* Nothing may follow the last token. */
  {
    unsigned char extra;
    int r = gzread(gz, &extra, 1);
    uint64_t end = MOE_TOKFILE_HEADER_BYTES + T * width;
    if (r > 0) {
      rc = moe_error(MOE_EFORMAT, "%s: byte %llu: trailing data after the %llu tokens the header declares",
                     path, (unsigned long long)end, (unsigned long long)T);
      goto done;
    }
    if ((rc = gz_fail(gz, path, end, "the end of the file")) != MOE_OK)
      goto done;
    if (r < 0) {
      rc = moe_error(MOE_EIO, "%s: read failed at byte %llu", path, (unsigned long long)end);
      goto done;
    }
  }

done:
  free(raw);
  if (gzclose(gz) != Z_OK && rc == MOE_OK)
    rc = moe_error(MOE_EIO, "%s: error closing the file", path);
  if (rc) {
    moe_tokfile_free(tf);
    return rc;
  }
  *out = tf;
  return MOE_OK;
}

void moe_tokfile_free(moe_tokfile *tf)
{
  if (!tf) return;
  free(tf->tokens);
  free(tf);
}

int moe_tokfile_write(const char *path, const moe_token *tokens, uint64_t count, uint32_t vocab_size,
                      uint32_t width, int gzip)
{
  MOE_CHECK_ARG(path && (tokens || count == 0), "moe_tokfile_write: NULL argument");
  MOE_CHECK_ARG(vocab_size >= 1, "%s: vocabulary size must be >= 1", path);
  if (width == 0)
    width = vocab_size <= 65536u ? 2 : 4;
  MOE_CHECK_ARG(width == 2 || width == 4, "%s: token width %u (must be 2 or 4)", path, width);
  MOE_CHECK_ARG(!(width == 2 && vocab_size > 65536u), "%s: width 2 cannot hold vocabulary size %u", path,
                vocab_size);
  for (uint64_t i = 0; i < count; i++)
    if (tokens[i] >= vocab_size)
      return moe_error(MOE_ERANGE, "%s: token %llu: id %u >= vocabulary size %u", path, (unsigned long long)i,
                       tokens[i], vocab_size);

  unsigned char *buf = malloc((size_t)(1u << 16) * width);
  if (!buf) return moe_error(MOE_ENOMEM, "%s: out of memory", path);
  char *tmp = NULL;
  int fd = -1;
  if (textio_tmp_open(path, &tmp, &fd) != MOE_OK) {
    free(buf);
    return MOE_EIO;
  }
  int rc = MOE_OK;
  int gfd = dup(fd);
  gzFile gz = gfd >= 0 ? gzdopen(gfd, gzip ? "wb6" : "wbT") : NULL;
  if (!gz) {
    if (gfd >= 0) close(gfd);
    rc = moe_error(MOE_EIO, "%s: cannot open for writing", tmp);
    goto fail;
  }
  unsigned char h[MOE_TOKFILE_HEADER_BYTES];
  memcpy(h, MOE_TOKFILE_MAGIC, 8);
  put_u32(h + 8, MOE_TOKFILE_VERSION);
  put_u32(h + 12, vocab_size);
  put_u32(h + 16, width);
  put_u32(h + 20, 0);
  put_u64(h + 24, count);
  int ok = gzwrite(gz, h, sizeof h) == (int)sizeof h;
  for (uint64_t i = 0; ok && i < count;) {
    size_t n = count - i < (1u << 16) ? (size_t)(count - i) : (1u << 16);
    for (size_t j = 0; j < n; j++) {
      uint32_t v = tokens[i + j];
      if (width == 2) { buf[2 * j] = (unsigned char)v; buf[2 * j + 1] = (unsigned char)(v >> 8); }
      else put_u32(buf + 4 * j, v);
    }
    ok = gzwrite(gz, buf, (unsigned)(n * width)) == (int)(n * width);
    i += n;
  }
  if (gzclose(gz) != Z_OK) ok = 0;
  if (!ok) { rc = moe_error(MOE_EIO, "%s: write failed: %s", tmp, strerror(errno)); goto fail; }
  if (fsync(fd) != 0) { rc = moe_error(MOE_EIO, "%s: fsync failed: %s", tmp, strerror(errno)); goto fail; }
  if (close(fd) != 0) { fd = -1; rc = moe_error(MOE_EIO, "%s: close failed: %s", tmp, strerror(errno)); goto fail; }
  fd = -1;
  if (rename(tmp, path) != 0) { rc = moe_error(MOE_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno)); goto fail; }
  free(tmp);
  free(buf);
  return MOE_OK;

fail:
  if (fd >= 0) close(fd);
  unlink(tmp);
  free(tmp);
  free(buf);
  return rc;
}
