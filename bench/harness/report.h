/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report.h — what the runner needs from the report: the comparisons of
 * paired tables over a results directory, with their confidence sequences
 * (the stopping rule of `moebench run --until-resolved`). */
#ifndef MB_REPORT_H
#define MB_REPORT_H

#include <stddef.h>

#include "matrix.h"

#define MB_SEQ_FORMAT "moebench-sequential-1"

/* One comparison: a row (other than the baseline) and a column group of a
 * paired table, over its pairs. */
typedef struct {
  char *label;               /* "TABLE: KEY=V[, COL=V...]" */
  size_t n;                  /* pairs with both results */
  double mean, sd;           /* of the paired differences */
  double lo, hi, half_width; /* the t-mixture confidence sequence at n */
  const char *resolved;      /* "excludes 0", "narrow", or "no" */
} mb_comparison;

/* The comparisons of the paired tables names[0..k) of m (expanded with the
 * replications wanted) over the results in dir, with the confidence
 * sequence of tuning c (mb_cs_tmix_c) and the target half-width w.
 * Returns how many; *out is malloc'd (free with mb_comparisons_free). */
size_t mb_report_comparisons(const mb_matrix *m, const char *dir, char *const *names, size_t k,
                             double c, double w, mb_comparison **out);
void mb_comparisons_free(mb_comparison *c, size_t n);

#endif
