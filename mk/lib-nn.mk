# SPDX-License-Identifier: GPL-3.0-or-later
## lib/nn/ (see Makefile.am): gates, experts, the MoE layer, losses,
## optimizers, router metrics, the transformer components (embedding,
## LayerNorm, attention, the pre-LN block around a moe_layer), the MoE
## language model and the image classifier with an MoE connector. Each
## numerical module is one <module>_impl.h compiled twice (float, double)
## by its <module>.c through lib/nn/real.h.
lib_libmoe_impl_la_SOURCES += lib/nn/real.h lib/nn/par_impl.h lib/nn/nn_internal.h lib/nn/private.h \
	lib/nn/gate.c lib/nn/gate_impl.h \
	lib/nn/expert.c lib/nn/expert_impl.h \
	lib/nn/layer.c lib/nn/layer_impl.h \
	lib/nn/loss.c lib/nn/loss_impl.h \
	lib/nn/metrics.c \
	lib/nn/nn.c lib/nn/nn_impl.h lib/nn/lm.c lib/nn/lm_impl.h \
	lib/nn/vision.c lib/nn/vision_impl.h
# The optimizer is built apart with -fno-math-errno so its sqrt loop can
# vectorise (lib/nn/optim.c says why that changes no result; GCC ignores
# math-errno in an optimize pragma or attribute, so it has to be a flag).
noinst_LTLIBRARIES += lib/libmoe_optim.la
lib_libmoe_optim_la_SOURCES = lib/nn/optim.c lib/nn/optim_impl.h
lib_libmoe_optim_la_CFLAGS = $(AM_CFLAGS) -fno-math-errno
lib_libmoe_impl_la_LIBADD += lib/libmoe_optim.la
moeinclude_HEADERS += lib/moe/moe.h lib/moe/gate.h lib/moe/expert.h lib/moe/layer.h \
	lib/moe/loss.h lib/moe/optim.h lib/moe/metrics.h lib/moe/nn.h lib/moe/lm.h lib/moe/vision.h
