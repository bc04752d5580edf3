# SPDX-License-Identifier: GPL-3.0-or-later
## examples/ (see Makefile.am): layer-demo.c, the EXAMPLE of libmoe(3).
## It is built in the tree as well: t/pkg-install.sh compares its output
## with the copy built against the installed library, and t/man.sh with
## the output the manual quotes. It links the BLAS before GSL as
## `pkg-config --libs libmoe` does, so that without --as-needed both copies
## load the same CBLAS first (GSL brings its reference CBLAS).
EXTRA_DIST += examples/layer-demo.c
check_PROGRAMS += examples/layer-demo
examples_layer_demo_SOURCES = examples/layer-demo.c
examples_layer_demo_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lm
