/* SPDX-License-Identifier: GPL-3.0-or-later */
/* omp_account.c — the serial part of a step, measured: this file defines
 * GOMP_parallel, the one entry of libgomp that libmoe's parallel regions
 * call (`#pragma omp parallel for`, GCC), so the program's definition is
 * the one libmoe's calls reach; it counts the process CPU time from entry
 * to return of each outermost region and calls libgomp's own
 * (dlsym(RTLD_NEXT)). With the model on n >= 2 threads and
 * OMP_WAIT_POLICY=passive (idle threads sleep instead of spinning), the
 * process CPU time outside the regions is the step's serial part, run on
 * one thread, and inside them the parallel work of all threads: their
 * ratio is the serial fraction of Amdahl's law, whatever else loads the
 * machine. Each thread's CPU time in a region's function is taken too
 * (the function is wrapped): their sum is the parallel work (without
 * libgomp's start-up and barrier), their largest the region's critical
 * path under its fixed partition, so the serial part plus the regions'
 * critical paths is the CPU time a step needs with n threads on n idle
 * cores, before synchronisation and memory contention; measured with n
 * threads on fewer cores it projects n cores. Built without OpenMP,
 * libmoe never calls it (0 regions). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omp_account.h"

static double in_cpu;
static long regions;
/* the same by region (its outlined function), for omp_account_dump */
enum { NREG = 128 };
static struct {
  void (*fn)(void *);
  double cpu, work, crit;
  long calls;
} by_fn[NREG];
static int nfn;
static int depth; /* regions being run (read and written atomically) */

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* The work: the CPU time the threads spent in the regions' functions
 * (without libgomp's start and barrier); the critical path: the largest
 * CPU time one thread spent in each region (its share of the fixed
 * partition), summed over the regions. */
static double work, crit;

typedef struct {
  void (*fn)(void *);
  void *data;
  long long max_ns, sum_ns; /* atomic */
} wrapped;

static void run_wrapped(void *p)
{
  wrapped *w = p;
  struct timespec a, b;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  w->fn(w->data);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  __atomic_fetch_add(&w->sum_ns, ns, __ATOMIC_SEQ_CST);
  long long cur = __atomic_load_n(&w->max_ns, __ATOMIC_SEQ_CST);
  while (ns > cur &&
         !__atomic_compare_exchange_n(&w->max_ns, &cur, ns, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags)
{
  static gomp_parallel_fn real;
  if (!real) {
    real = (gomp_parallel_fn)dlsym(RTLD_NEXT, "GOMP_parallel");
    if (!real) {
      fprintf(stderr, "omp_account: libgomp's GOMP_parallel not found\n");
      abort(); /* a benchmark program, not the library: nothing to return to */
    }
  }
  /* a region started inside another (nested, or from a worker) is
   * already counted by the outer one */
  if (__atomic_fetch_add(&depth, 1, __ATOMIC_SEQ_CST)) {
    real(fn, data, num_threads, flags);
    __atomic_fetch_sub(&depth, 1, __ATOMIC_SEQ_CST);
    return;
  }
  wrapped w = {fn, data, 0, 0};
  double c0 = cpu_now();
  real(run_wrapped, &w, num_threads, flags);
  double c = cpu_now() - c0;
  in_cpu += c;
  crit += 1e-9 * (double)w.max_ns;
  work += 1e-9 * (double)w.sum_ns;
  regions++;
  int k = 0;
  while (k < nfn && by_fn[k].fn != fn)
    k++;
  if (k < NREG) {
    if (k == nfn)
      by_fn[nfn++].fn = fn;
    by_fn[k].cpu += c;
    by_fn[k].work += 1e-9 * (double)w.sum_ns;
    by_fn[k].crit += 1e-9 * (double)w.max_ns;
    by_fn[k].calls++;
  }
  __atomic_fetch_sub(&depth, 1, __ATOMIC_SEQ_CST);
}

double omp_account_cpu(void) { return in_cpu; }
double omp_account_critical(void) { return crit; }
double omp_account_work(void) { return work; }
long omp_account_regions(void) { return regions; }

void omp_account_dump(FILE *f, double scale)
{
  for (int k = 0; k < nfn; k++) {
    Dl_info di;
    const char *obj = "?";
    unsigned long off = (unsigned long)(size_t)by_fn[k].fn;
    if (dladdr((void *)(size_t)by_fn[k].fn, &di) && di.dli_fname) {
      obj = strrchr(di.dli_fname, '/') ? strrchr(di.dli_fname, '/') + 1 : di.dli_fname;
      off -= (unsigned long)(size_t)di.dli_fbase;
    }
    fprintf(f, "omp-region %s+0x%lx cpu_ms=%.3f work_ms=%.3f critical_ms=%.3f calls=%.2f\n", obj,
            off, 1e3 * by_fn[k].cpu * scale, 1e3 * by_fn[k].work * scale,
            1e3 * by_fn[k].crit * scale, by_fn[k].calls * scale);
  }
}
