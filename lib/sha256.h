/* SPDX-License-Identifier: GPL-3.0-or-later */
/* sha256.h — SHA-256 (FIPS 180-4): libmoe's pinned hashes of reference
 * files (moe_bpe_load_tiktoken) and moebench's stable cell ids. None of
 * the dependencies exports one (zlib has only CRC-32/Adler-32, GSL none),
 * and ids must not change between platforms, so it is written out here,
 * once, and compiled once (lib/libmoe_sha256.la, mk/lib.mk): libmoe
 * exports only public moe_ names, so the moebench program links that same
 * object into itself. */
#ifndef MOE_SHA256_H
#define MOE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];
  uint64_t len;          /* bytes hashed so far */
  unsigned char buf[64];
  size_t nbuf;
} moei_sha256;

void moei_sha256_init(moei_sha256 *s);
void moei_sha256_update(moei_sha256 *s, const void *data, size_t n);
void moei_sha256_final(moei_sha256 *s, unsigned char out[32]);
/* Lower-case hex of the digest of data[0..n): 64 chars + NUL. */
void moei_sha256_hex(const void *data, size_t n, char out[65]);

#endif
