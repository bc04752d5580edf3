/* SPDX-License-Identifier: GPL-3.0-or-later */
/* sha256.h — SHA-256 (FIPS 180-4) for stable cell ids. None of moebench's
 * dependencies exports one (zlib has only CRC-32/Adler-32, GSL none), and
 * ids must not change between platforms, so it is written out here. */
#ifndef MB_SHA256_H
#define MB_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];
  uint64_t len;          /* bytes hashed so far */
  unsigned char buf[64];
  size_t nbuf;
} mb_sha256;

void mb_sha256_init(mb_sha256 *s);
void mb_sha256_update(mb_sha256 *s, const void *data, size_t n);
void mb_sha256_final(mb_sha256 *s, unsigned char out[32]);
/* Lower-case hex of the digest of data[0..n): 64 chars + NUL. */
void mb_sha256_hex(const void *data, size_t n, char out[65]);

#endif
