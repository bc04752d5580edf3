/* internal.h — helpers shared by libmoe's sources; not installed. */
#ifndef MOE_INTERNAL_H
#define MOE_INTERNAL_H

#include <stddef.h>
#include "moe/error.h"

/* 64-byte aligned allocation (zeroed); free with moe_free_aligned. */
void *moe_alloc_aligned(size_t bytes);
void moe_free_aligned(void *p);

#define MOE_CHECK_ARG(cond, ...) \
  do { if (!(cond)) return moe_error(MOE_EINVAL, __VA_ARGS__); } while (0)

#endif
