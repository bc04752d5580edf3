# SPDX-License-Identifier: GPL-3.0-or-later
## image area (see Makefile.am)

# libmoe data module: IDX image files, patches, seeded epoch batcher.
lib_libmoe_la_SOURCES += lib/data/idx.c lib/data/epoch_batcher.c
moeinclude_HEADERS += lib/moe/idx.h

TESTS += t/test_idx
check_PROGRAMS += t/test_idx
t_test_idx_SOURCES = t/test_idx.c t/tap.h
t_test_idx_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) $(ZLIB_LIBS) -lm

# Fixtures for t/test_idx (regenerate with /usr/bin/python3 t/gen_image_fixtures.py).
image_fixtures = \
	t/data/image/good-images-idx3-ubyte t/data/image/good-images-idx3-ubyte.gz \
	t/data/image/good-labels-idx1-ubyte t/data/image/good-labels-idx1-ubyte.gz \
	t/data/image/trunc-images-idx3-ubyte t/data/image/trunc-header-idx3-ubyte \
	t/data/image/badmagic-images-idx3-ubyte t/data/image/badtype-images-idx3-ubyte \
	t/data/image/dims-short-images-idx3-ubyte t/data/image/dims-long-images-idx3-ubyte \
	t/data/image/zerodim-images-idx3-ubyte t/data/image/small-images-idx3-ubyte \
	t/data/image/count4-labels-idx1-ubyte t/data/image/range-labels-idx1-ubyte \
	t/data/image/corrupt-images-idx3-ubyte.gz t/data/image/badcrc-images-idx3-ubyte.gz \
	t/data/image/cut-images-idx3-ubyte.gz \
	t/data/image/split/train-images-idx3-ubyte.gz t/data/image/split/train-labels-idx1-ubyte.gz \
	t/data/image/split/t10k-images-idx3-ubyte t/data/image/split/t10k-labels-idx1-ubyte
EXTRA_DIST += $(image_fixtures) t/gen_image_fixtures.py

# The real Fashion-MNIST when present (SKIP otherwise; see the test's header).
TESTS += t/test_fashion_mnist
check_PROGRAMS += t/test_fashion_mnist
t_test_fashion_mnist_SOURCES = t/test_fashion_mnist.c t/tap.h
t_test_fashion_mnist_LDADD = $(t_test_idx_LDADD)

# Real data: `make fetch-data` runs datasets/fetch.sh into $(DATADIR)
# (FETCH_FLAGS=--with-kjv adds the King James Bible). Not part of `all`
# or `check`: it reaches Debian's and npm's registries.
DATADIR = $(abs_top_builddir)/data
FETCH_FLAGS =
fetch-data:
	$(SHELL) $(top_srcdir)/datasets/fetch.sh $(FETCH_FLAGS) '$(DATADIR)'
.PHONY: fetch-data
dist_noinst_SCRIPTS += datasets/fetch.sh
EXTRA_DIST += datasets/SHA256SUMS datasets/README.md

# fetch.sh's checksum and install logic, offline (fake DATADIR and npm).
TESTS += t/fetch-checksum.sh
EXTRA_DIST += t/fetch-checksum.sh

# `moebench data images` (registered in bench/moebench.c's verb table).
bench_moebench_SOURCES += bench/data/images.c
TESTS += t/data-images.sh
EXTRA_DIST += t/data-images.sh
