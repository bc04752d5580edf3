/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/token.h — the token id: an index into a vocabulary (at most 2^32
 * entries). Every module that holds token ids uses this one type: the
 * byte-level BPE (moe/bpe.h), token files (moe/tokfile.h), language-model
 * windows (moe/batch.h) and the language model (moe/lm.h). It is
 * uint32_t, so arrays of either are interchangeable. */
#ifndef MOE_TOKEN_H
#define MOE_TOKEN_H

#include <stdint.h>

typedef uint32_t moe_token;

#endif
