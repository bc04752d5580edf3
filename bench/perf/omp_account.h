/* SPDX-License-Identifier: GPL-3.0-or-later */
/* omp_account.h — how much of a run's CPU time is spent inside libmoe's
 * OpenMP parallel regions (bench/perf only; see omp_account.c). */
#ifndef MB_OMP_ACCOUNT_H
#define MB_OMP_ACCOUNT_H

#include <stdio.h>

/* Process CPU seconds spent inside outermost parallel regions so far, all
 * threads together, and how many regions were entered. */
double omp_account_cpu(void);
long omp_account_regions(void);
/* Σ over those regions of the largest CPU time one thread spent in it. */
double omp_account_critical(void);
/* Σ over those regions of every thread's CPU time in its function. */
double omp_account_work(void);
/* One line per region entered, "omp-region OBJECT+0xOFFSET cpu_ms=..
 * work_ms=.. critical_ms=.. calls=..", its totals times scale (e.g. 1/steps); the offset of the
 * outlined function in its object names it with addr2line -f -e. */
void omp_account_dump(FILE *f, double scale);

#endif
