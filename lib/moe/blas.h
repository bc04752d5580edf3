/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/blas.h — the BLAS libmoe runs on: what it is, and its threads.
 *
 * libmoe's GEMMs go through CBLAS (OpenBLAS on Debian). OpenBLAS picks its
 * kernels from the CPU it detects unless OPENBLAS_CORETYPE is set in the
 * environment, and different kernels (and thread counts) can give different
 * bits: record these facts with results, and pin the thread count when
 * results must be bit-identical across runs. */
#ifndef MOE_BLAS_H
#define MOE_BLAS_H

#ifdef __cplusplus
extern "C" {
#endif

/* BLAS facts: library name ("OpenBLAS" or "CBLAS"), core name as the BLAS
 * detected it (e.g. "Prescott", "SkylakeX"; "unknown" if not OpenBLAS), its
 * configuration string and its current thread count. */
const char *moe_blas_name(void);
const char *moe_blas_corename(void);
const char *moe_blas_config(void);
int moe_blas_threads(void);
/* Pin BLAS to n threads (no-op where the BLAS cannot be told). */
void moe_blas_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
