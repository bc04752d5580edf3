/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/version.h — package version and run-time facts for provenance. */
#ifndef MOE_VERSION_H
#define MOE_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_VERSION_MAJOR 0
#define MOE_VERSION_MINOR 1
#define MOE_VERSION_PATCH 0
#define MOE_VERSION_STRING "0.1.0"

/* The version of the library actually linked ("0.1.0"). */
const char *moe_version(void);

/* Non-zero if the linked library is compatible with the headers the caller
 * was compiled with: call as moe_version_check(MOE_VERSION_MAJOR). */
int moe_version_check(int header_major);

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
