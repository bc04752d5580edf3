# SPDX-License-Identifier: GPL-3.0-or-later
## lib/gmoe/ (see Makefile.am): the paper's theory: the Gaussian MoE with
## shared experts, its maximum-likelihood fit by EM, the Voronoi losses.
lib_libmoe_impl_la_SOURCES += lib/gmoe/gmoe.c lib/gmoe/gmoe_io.c lib/gmoe/gmoe_objective.c lib/gmoe/gmoe_em.c \
	lib/gmoe/gmoe_polish.c lib/gmoe/gmoe_fit.c lib/gmoe/gmoe_impl.h lib/gmoe/voronoi.c
moeinclude_HEADERS += lib/moe/gmoe.h lib/moe/voronoi.h
