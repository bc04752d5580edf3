/* SPDX-License-Identifier: GPL-3.0-or-later */
/* loss.c — MSE and cross-entropy (see moe/loss.h); the code is in
 * loss_impl.h, compiled for float and double. */
#include <math.h>
#include <stddef.h>

#include "internal.h"
#include "private.h"
#include "moe/loss.h"

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "loss_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "loss_impl.h"
