/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/token.h — the token id: the index of one of V outputs, a token of
 * a vocabulary or a class of a classifier (at most 2^32 of them). Every
 * module that holds token ids or class labels uses this one type: the
 * byte-level BPE (moe/bpe.h), token files (moe/tokfile.h), language-model
 * windows (moe/batch.h), the language model (moe/lm.h), image labels
 * (moe/idx.h), the vision model (moe/vision.h) and the cross-entropy
 * (moe/loss.h). It is uint32_t, so arrays of either are interchangeable;
 * being unsigned, an id is out of range only above: id >= V. */
#ifndef MOE_TOKEN_H
#define MOE_TOKEN_H

#include <stdint.h>

typedef uint32_t moe_token;

#endif
