# SPDX-License-Identifier: GPL-3.0-or-later
## core area (see Makefile.am): gates, experts, the MoE layer, losses,
## optimizers. Each numerical module is one <module>_impl.h compiled twice
## (float, double) by its <module>.c through lib/nn/real.h.
lib_libmoe_la_SOURCES += lib/nn/real.h lib/nn/par_impl.h lib/nn/nn_internal.h \
	lib/nn/gate.c lib/nn/gate_impl.h \
	lib/nn/expert.c lib/nn/expert_impl.h \
	lib/nn/layer.c lib/nn/layer_impl.h \
	lib/nn/loss.c lib/nn/loss_impl.h
# The optimizer is built apart with -fno-math-errno so its sqrt loop can
# vectorise (lib/nn/optim.c says why that changes no result; GCC ignores
# math-errno in an optimize pragma or attribute, so it has to be a flag).
noinst_LTLIBRARIES += lib/libmoe_optim.la
lib_libmoe_optim_la_SOURCES = lib/nn/optim.c lib/nn/optim_impl.h
lib_libmoe_optim_la_CFLAGS = $(AM_CFLAGS) -fno-math-errno
lib_libmoe_la_LIBADD += lib/libmoe_optim.la
moeinclude_HEADERS += lib/moe/moe.h lib/moe/gate.h lib/moe/expert.h lib/moe/layer.h \
	lib/moe/loss.h lib/moe/optim.h

TESTS += t/test_gate t/test_expert t/test_layer t/test_loss t/test_optim t/test_golden
check_PROGRAMS += t/test_gate t/test_expert t/test_layer t/test_loss t/test_optim t/test_golden
t_test_gate_SOURCES = t/test_gate.c t/tap.h t/fdcheck.h
t_test_expert_SOURCES = t/test_expert.c t/tap.h t/fdcheck.h
t_test_layer_SOURCES = t/test_layer.c t/tap.h t/fdcheck.h
t_test_loss_SOURCES = t/test_loss.c t/tap.h t/fdcheck.h
t_test_optim_SOURCES = t/test_optim.c t/tap.h
t_test_golden_SOURCES = t/test_golden.c t/tap.h
# lib/vmath.c is internal (not exported): the test compiles it in
TESTS += t/test_vmath
check_PROGRAMS += t/test_vmath
t_test_vmath_SOURCES = t/test_vmath.c t/tap.h lib/vmath.c lib/vmath.h
t_test_vmath_CFLAGS = $(AM_CFLAGS)
t_test_vmath_LDADD = $(SLEEF_LIBS) -lm
# test_golden reads the gzip'ed layer fixtures with zlib itself
t_test_golden_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) $(ZLIB_LIBS) -lm
# Golden fixtures: regenerate with /usr/bin/python3 t/gen_core_fixtures.py
# (needs torch; not run by make check).
EXTRA_DIST += t/gen_core_fixtures.py \
	t/data/core/layer_grid_softmax.txt.gz \
	t/data/core/layer_grid_switch.txt.gz \
	t/data/core/layer_grid_softmax_topk.txt.gz \
	t/data/core/layer_grid_sigmoid_topk.txt.gz \
	t/data/core/layer_grid_sigmoid_norm_topk.txt.gz \
	t/data/core/layer_grid_sigmoid_norm.txt.gz \
	t/data/core/layer_grid_deepseek_v3.txt.gz \
	t/data/core/layer_wide.txt.gz \
	t/data/core/loss.txt t/data/core/optim_adamw.txt t/data/core/optim_sgd.txt
