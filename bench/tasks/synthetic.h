/* SPDX-License-Identifier: GPL-3.0-or-later */
/* synthetic.h — what the synthetic task (synthetic.c) lends the gmoe-limit
 * verb (gmoe_limit.c). */
#ifndef MB_TASKS_SYNTHETIC_H
#define MB_TASKS_SYNTHETIC_H

#include <stddef.h>

#include "moe/gmoe.h"

/* "softmax" or "nsigmoid". */
const char *mb_synthetic_gate_name(moe_gmoe_gate g);
/* The experiment's truth with the gate / top-K overrides applied (gate
 * NULL and topk 0: the experiment's own); non-zero with a message in err
 * on failure. */
int mb_synthetic_truth(const char *exp, const char *gate, int d, int topk, moe_gmoe **out,
                       char *err, size_t errlen);

#endif
