/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_par.c — a threaded product (lib/nn/par_impl.h, par_gemm) makes the
 * same BLAS calls whatever the thread count: the same row blocks, cut at
 * multiples of MOE_GEMM_GRANULE (48) rows, at most MOE_GEMM_BLOCKS (8),
 * covering the product's rows once, in the order of the rows. The BLAS is
 * this program's own recorder (par_gemm, compiled in here, calls it), so
 * the check does not depend on which kernels OpenBLAS picks: that the
 * bits then agree is test_threads' part, run on every kernel this CPU
 * has by t/threads-cores.sh. */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define MOE_REAL_DOUBLE 0
#include "nn/real.h"
#include "nn/par_impl.h"

/* ---- the recorder ---- */

#define MAXC 64
typedef struct {
  long row;     /* C's first row of the call */
  long arow;    /* A's first row (NoTrans) or column (Trans) */
  int M, N, K;
} call;
static call calls[MAXC];
static int ncalls, overflow;
static const float *A0, *C0;
static int lda0, ldc0, ta0;

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint M, const blasint N, const blasint K, const float alpha, const float *A,
                 const blasint lda, const float *B, const blasint ldb, const float beta, float *C,
                 const blasint ldc)
{
  (void)order, (void)ta, (void)tb, (void)alpha, (void)B, (void)ldb, (void)beta, (void)lda, (void)ldc;
  long row = (long)(C - C0) / ldc0;
  long arow = ta0 == CblasNoTrans ? (long)(A - A0) / lda0 : (long)(A - A0);
#pragma omp critical
  {
    if (ncalls < MAXC)
      calls[ncalls++] = (call){row, arow, (int)M, (int)N, (int)K};
    else
      overflow = 1;
  }
}

static int by_row(const void *a, const void *b)
{
  const call *x = a, *y = b;
  return (x->row > y->row) - (x->row < y->row);
}

/* the calls of one product of M rows on nt threads, sorted by row */
static int record(int nt, CBLAS_TRANSPOSE ta, int M, float *A, float *B, float *C, call *out)
{
  const int N = 5, K = 3;
  A0 = A, C0 = C, ta0 = ta;
  lda0 = ta == CblasNoTrans ? K : M;
  ldc0 = N;
  ncalls = 0, overflow = 0;
  par_gemm(nt, ta, CblasNoTrans, M, N, K, 1, A, lda0, B, N, 0, C, ldc0);
  qsort(calls, (size_t)ncalls, sizeof *calls, by_row);
  memcpy(out, calls, (size_t)ncalls * sizeof *calls);
  return overflow ? -1 : ncalls;
}

int main(void)
{
  static const int rows[] = {1, 47, 48, 49, 96, 200, 385, 1024, 4000, 20000};
  static const int threads[] = {1, 2, 3, 7, 16};
  const int nr = (int)(sizeof rows / sizeof *rows), nth = (int)(sizeof threads / sizeof *threads);
  for (int ti = 0; ti < 2; ti++) {
    const CBLAS_TRANSPOSE ta = ti ? CblasTrans : CblasNoTrans;
    for (int i = 0; i < nr; i++) {
      const int M = rows[i];
      float *A = calloc((size_t)M * 3, sizeof *A), *B = calloc(15, sizeof *B), *C = calloc((size_t)M * 5, sizeof *C);
      call ref[MAXC], got[MAXC];
      int n1 = record(1, ta, M, A, B, C, ref);
      const int want = (M + MOE_GEMM_GRANULE - 1) / MOE_GEMM_GRANULE < MOE_GEMM_BLOCKS
                           ? (M + MOE_GEMM_GRANULE - 1) / MOE_GEMM_GRANULE
                           : MOE_GEMM_BLOCKS;
      ok(n1 == want, "%s M=%d: one thread makes %d calls (want min(ceil(M/48), 8) = %d)",
         ti ? "Aᵀ" : "A", M, n1, want);
      /* the blocks: contiguous from row 0 to M, cut at multiples of 48, A at the same rows */
      int cover = n1 > 0, cuts = 1, arows = 1;
      long next = 0;
      for (int c = 0; c < n1; c++) {
        if (ref[c].row != next || ref[c].M <= 0 || ref[c].N != 5 || ref[c].K != 3) cover = 0;
        if (ref[c].row % MOE_GEMM_GRANULE) cuts = 0;
        if (ref[c].arow != ref[c].row) arows = 0;
        next = ref[c].row + ref[c].M;
      }
      ok(cover && next == M, "%s M=%d: the blocks cover rows 0..%d once, in order", ti ? "Aᵀ" : "A", M, M - 1);
      ok(cuts, "%s M=%d: every block starts at a multiple of %d rows", ti ? "Aᵀ" : "A", M, MOE_GEMM_GRANULE);
      ok(arows, "%s M=%d: each call reads A at its own rows", ti ? "Aᵀ" : "A", M);
      int same = 1;
      for (int t = 1; t < nth; t++) {
        int n = record(threads[t], ta, M, A, B, C, got);
        if (n != n1 || memcmp(got, ref, (size_t)n1 * sizeof *ref)) same = 0;
      }
      ok(same, "%s M=%d: 2, 3, 7 and 16 threads make the calls of one thread", ti ? "Aᵀ" : "A", M);
      free(A), free(B), free(C);
    }
  }
  return tap_done();
}
