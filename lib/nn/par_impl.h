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
 *  - row blocks of one matrix product (par_gemm): the rows of C are cut
 *    only at multiples of MOE_GEMM_GRANULE rows. An OpenBLAS kernel
 *    computes each element of C as the same chain of multiply-adds over
 *    the inner dimension, tile by tile; the tile an element falls in
 *    depends on its row modulo the kernel's unroll (12 for sgemm with the
 *    Haswell kernels, 4 or 8 for the others) and on the tail of the last
 *    block, so cuts at multiples of 48 (a multiple of every unroll in
 *    OpenBLAS 0.3.21's x86 kernels) leave every element in a tile of the
 *    same kind and the bits as one call gives. Cutting the columns does
 *    not (measured: no column cut of an sgemm is bit-identical there).
 *    t/test_threads.c checks every threaded product against one call.
 * One thread calls BLAS exactly as before the threads existed. */

#ifndef MOE_GEMM_GRANULE
#define MOE_GEMM_GRANULE 48
#endif

/* C (M, N) = α op(A) op(B) + β C (row-major, as R_GEMM) on nt threads, C's
 * rows cut into nt blocks of whole granules. */
static void SFX(par_gemm)(int nt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                          REAL alpha, const REAL *A, int lda, const REAL *B, int ldb, REAL beta,
                          REAL *C, int ldc)
{
  const int G = MOE_GEMM_GRANULE, ng = (M + G - 1) / G;
  const int nb = nt < ng ? nt : ng;
  if (nb <= 1) {
    R_GEMM(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#pragma omp parallel for num_threads(nb) schedule(static)
  for (int b = 0; b < nb; b++) {
    const int r0 = (int)((long)ng * b / nb) * G;
    const int g1 = (int)((long)ng * (b + 1) / nb) * G, r1 = g1 < M ? g1 : M;
    const REAL *Ab = ta == CblasNoTrans ? A + (size_t)r0 * lda : A + r0;
    R_GEMM(CblasRowMajor, ta, tb, r1 - r0, N, K, alpha, Ab, lda, B, ldb, beta,
           C + (size_t)r0 * ldc, ldc);
  }
}
