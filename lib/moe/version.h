/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/version.h — package version and run-time facts for provenance. */
#ifndef MOE_VERSION_H
#define MOE_VERSION_H

#include "moe/blas.h"

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

/* The BLAS functions (moe_blas_*) moved to moe/blas.h; included here so
 * code written against 0.1.0 still compiles. */

#ifdef __cplusplus
}
#endif
#endif
