# SPDX-License-Identifier: GPL-3.0-or-later
## vision area (see Makefile.am): the image classifier with an MoE
## connector (moe/vision.h), its tests and its PyTorch speed baseline.
moeinclude_HEADERS += lib/moe/vision.h
lib_libmoe_la_SOURCES += lib/nn/vision.c lib/nn/vision_impl.h

TESTS += t/test_vision
check_PROGRAMS += t/test_vision
t_test_vision_SOURCES = t/test_vision.c t/tap.h t/fdcheck.h
t_test_vision_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) $(ZLIB_LIBS) -lm
# Golden fixture: regenerate with /usr/bin/python3 t/gen_vision_fixtures.py
# (needs torch; not run by make check).
EXTRA_DIST += t/gen_vision_fixtures.py t/data/vision/vision_golden.txt.gz

# The vision task (bench/tasks/vision.c): Fashion-MNIST through the model.
bench_moebench_SOURCES += bench/tasks/vision.c
EXTRA_DIST += experiments/quick-vision.yaml experiments/paper-vision.yaml experiments/paper-vision-pilot.yaml experiments/paper-vision-epochs.yaml doc/vision-design.md

# Fashion-MNIST for the vision task (experiments/*-vision.yaml), from the
# Debian package dataset-fashion-mnist (datasets/fetch.sh installs it when
# run as root); bench and bench-quick need it.
image-data:
	$(SHELL) $(top_srcdir)/datasets/fetch.sh --only fashion-mnist '$(DATADIR)'
.PHONY: image-data
bench-quick: image-data
bench: image-data
TESTS += t/vision-task.sh
EXTRA_DIST += t/vision-task.sh experiments/smoke-vision.yaml \
	t/data/vision/fmnist-tiny/train-images-idx3-ubyte.gz \
	t/data/vision/fmnist-tiny/train-labels-idx1-ubyte.gz \
	t/data/vision/fmnist-tiny/t10k-images-idx3-ubyte.gz \
	t/data/vision/fmnist-tiny/t10k-labels-idx1-ubyte.gz

# Vision training throughput against PyTorch (not a test): part of make bench-perf
noinst_PROGRAMS += bench/perf/vision-perf
bench_perf_vision_perf_SOURCES = bench/perf/vision_perf.c bench/perf/omp_account.c bench/perf/omp_account.h
bench_perf_vision_perf_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lm
EXTRA_DIST += bench/perf/perf-vision.sh bench/perf/torch_vision_baseline.py
BENCH_PERF_PARTS += bench/perf/perf-vision.sh
bench-perf: bench/perf/vision-perf
# the vision part alone
.PHONY: bench-perf-vision
bench-perf-vision: bench/perf/moe-perf bench/perf/vision-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 bench/perf/perf-vision.sh
