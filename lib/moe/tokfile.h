/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/tokfile.h — token files: a stream of token ids with a small header.
 *
 * On-disk format (version 1), little-endian whatever the host:
 *
 *   offset size  field
 *   0      8     magic "MOETOK\0\1" (4D 4F 45 54 4F 4B 00 01)
 *   8      4     u32 format version, = 1
 *   12     4     u32 vocabulary size V (>= 1; token ids are < V)
 *   16     4     u32 token width in bytes, 2 or 4 (2 needs V <= 65536)
 *   20     4     u32 reserved, = 0
 *   24     8     u64 token count T
 *   32     T*w   tokens, each an unsigned little-endian integer of w bytes
 *
 * Nothing may follow the last token. The whole file may be gzip-compressed
 * (one or more members); readers go through zlib's gzread, which reads plain
 * and gzip files alike, so byte offsets in messages are offsets in the
 * uncompressed stream. See moe-tokfile(5).
 *
 * Every malformed input is reported, never read short: wrong magic, unknown
 * version, bad width, non-zero reserved field, fewer tokens than the count
 * (MOE_EFORMAT with the file and byte offset), trailing bytes (MOE_EFORMAT),
 * a token id >= V (MOE_ERANGE with the file and token index), gzip data
 * errors (MOE_EFORMAT with zlib's message; MOE_ECHECKSUM when zlib reports
 * a CRC or length check failure), unreadable files (MOE_EIO). */
#ifndef MOE_TOKFILE_H
#define MOE_TOKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "moe/token.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_TOKFILE_MAGIC "MOETOK\0\1"
#define MOE_TOKFILE_VERSION 1u
#define MOE_TOKFILE_HEADER_BYTES 32

/* A token stream in memory, whatever width it had on disk. */
typedef struct {
  uint32_t vocab_size; /* V */
  uint32_t width;      /* bytes per token on disk: 2 or 4 */
  uint64_t count;      /* T */
  moe_token *tokens;   /* (T) ids, each < V */
} moe_tokfile;

/* Write tokens[0..count) to `path` atomically: a temporary file in the same
 * directory, flushed with fsync, then renamed over `path`. width is 2, 4 or
 * 0 (choose 2 when V <= 65536, else 4). gzip != 0 compresses the file (zlib
 * level 6); the name is not changed, so choose one ending in .gz.
 * Errors: MOE_EINVAL (bad width/V), MOE_ERANGE (an id >= V, naming its
 * index), MOE_EIO. */
int moe_tokfile_write(const char *path, const moe_token *tokens /* (T) */, uint64_t count,
                      uint32_t vocab_size, uint32_t width, int gzip);

/* Read and validate a token file (plain or gzip). On success *out is a new
 * moe_tokfile (free with moe_tokfile_free). On failure *out is NULL and
 * the error message names the file. */
int moe_tokfile_read(const char *path, moe_tokfile **out);

void moe_tokfile_free(moe_tokfile *tf);

#ifdef __cplusplus
}
#endif
#endif
