/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/moe.h — everything in libmoe's MoE core in one include. */
#ifndef MOE_MOE_H
#define MOE_MOE_H

#include "moe/error.h"
#include "moe/rng.h"
#include "moe/version.h"
#include "moe/blas.h"
#include "moe/gate.h"
#include "moe/expert.h"
#include "moe/layer.h"
#include "moe/loss.h"
#include "moe/optim.h"
#include "moe/nn.h"
#include "moe/lm.h"
#include "moe/vision.h"

#endif
