/* SPDX-License-Identifier: GPL-3.0-or-later */
/* par_impl.h — the intra-model threads' one BLAS helper, written once for
 * REAL (see real.h); included after real.h by the modules that split a
 * product over threads. Not installed.
 *
 * Threads never change a result bit, by one of two arguments:
 *  - independent work: each expert, (batch, head) pair, row or slab chunk
 *    is computed by exactly the code and the BLAS calls of one thread,
 *    and every sum across work items is done afterwards in the order of
 *    moe/layer.h (for which thread or when an item ran does not matter);
 *  - row blocks of one matrix product (par_gemm): a product of M rows is
 *    always computed as the same BLAS calls, one per row block, whatever
 *    the thread count: par_nblocks(M) blocks cut at whole multiples of
 *    MOE_GEMM_GRANULE rows, depending on M only; threads take whole
 *    blocks, one thread does them in turn. So the bits rest only on a
 *    single-threaded BLAS call being a function of its arguments. (They
 *    once rested on OpenBLAS kernels computing each row of C the same in
 *    a call of any height: true of 0.3.21's Haswell kernels at multiples
 *    of 48 rows, false of its SkylakeX ones, whose direct and small-matrix
 *    paths are chosen by the size of the call: an LM step on 2 threads
 *    differed from 1 thread there.) The cut at multiples of 48, a multiple
 *    of every sgemm/dgemm unroll of those x86 kernels, keeps the Haswell
 *    bits of a single call, as the results archived before the change
 *    had them. At most MOE_GEMM_BLOCKS blocks: each block is a call, and
 *    on one thread 8 calls instead of one cost 1-5% (1024 x 2048 x 64:
 *    2%); past 8 threads the products stop scaling.
 *    t/test_threads.c checks every threaded product, on each BLAS kernel
 *    this CPU runs (t/threads-cores.sh).
 * One thread makes the same calls as many. */

#ifndef MOEI_PAR_ONCE
#define MOEI_PAR_ONCE
#ifndef MOE_GEMM_GRANULE
#define MOE_GEMM_GRANULE 48
#endif
#ifndef MOE_GEMM_BLOCKS
#define MOE_GEMM_BLOCKS 8
#endif


/* The row blocks of a product of M rows: how many, and block b's rows
 * [*r0, *r1). A function of M alone (never of the thread count). */
static inline int moei_par_nblocks(int M)
{
  const int G = MOE_GEMM_GRANULE, ng = (M + G - 1) / G;
  return ng < MOE_GEMM_BLOCKS ? ng : MOE_GEMM_BLOCKS;
}
static inline void moei_par_block(int M, int nblk, int b, int *r0, int *r1)
{
  const int G = MOE_GEMM_GRANULE, ng = (M + G - 1) / G;
  const int g1 = (int)((long)ng * (b + 1) / nblk) * G;
  *r0 = (int)((long)ng * b / nblk) * G;
  *r1 = g1 < M ? g1 : M;
}
#endif /* MOEI_PAR_ONCE */

/* C (M, N) = α op(A) op(B) + β C (row-major, as R_GEMM) as the row blocks
 * of moei_par_nblocks(M), on up to nt threads. */
static void SFX(par_gemm)(int nt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                          REAL alpha, const REAL *A, int lda, const REAL *B, int ldb, REAL beta,
                          REAL *C, int ldc)
{
  const int nblk = moei_par_nblocks(M);
  if (nblk <= 1) {
    R_GEMM(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  (void)nt;
#pragma omp parallel for num_threads(nt < nblk ? nt : nblk) schedule(static) if (nt > 1)
  for (int b = 0; b < nblk; b++) {
    int r0, r1;
    moei_par_block(M, nblk, b, &r0, &r1);
    const REAL *Ab = ta == CblasNoTrans ? A + (size_t)r0 * lda : A + r0;
    R_GEMM(CblasRowMajor, ta, tb, r1 - r0, N, K, alpha, Ab, lda, B, ldb, beta,
           C + (size_t)r0 * ldc, ldc);
  }
}
