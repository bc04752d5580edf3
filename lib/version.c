/* SPDX-License-Identifier: GPL-3.0-or-later */
/* version.c — version and BLAS facts for provenance. */
#include <config.h>
#include <cblas.h>

#include "moe/version.h"
#include "moe/blas.h"

#ifdef HAVE_OPENBLAS
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
#endif

const char *moe_version(void) { return MOE_VERSION_STRING; }

int moe_version_check(int header_major) { return header_major == MOE_VERSION_MAJOR; }

const char *moe_blas_name(void)
{
#ifdef HAVE_OPENBLAS
  return "OpenBLAS";
#else
  return "CBLAS";
#endif
}

const char *moe_blas_corename(void)
{
#ifdef HAVE_OPENBLAS
  return openblas_get_corename();
#else
  return "unknown";
#endif
}

const char *moe_blas_config(void)
{
#ifdef HAVE_OPENBLAS
  return openblas_get_config();
#else
  return "unknown";
#endif
}

int moe_blas_threads(void)
{
#ifdef HAVE_OPENBLAS
  return openblas_get_num_threads();
#else
  return 1;
#endif
}

void moe_blas_set_threads(int n)
{
#ifdef HAVE_OPENBLAS
  openblas_set_num_threads(n);
#else
  (void)n;
#endif
}
