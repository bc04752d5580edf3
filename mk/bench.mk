# SPDX-License-Identifier: GPL-3.0-or-later
## Router metrics, micro-benchmarks and the lead's glue (see Makefile.am).
lib_libmoe_la_SOURCES += lib/nn/metrics.c
moeinclude_HEADERS += lib/moe/metrics.h

TESTS += t/test_metrics
check_PROGRAMS += t/test_metrics
t_test_metrics_SOURCES = t/test_metrics.c t/tap.h
EXTRA_DIST += t/data/metrics.txt t/gen_metrics_fixtures.py bench/perf/torch_baseline.py
# The lm and vision tasks' router metrics by value (t/router-dump.sh):
# recomputed from a routing dump (moebench run --dump-routing) by
# t/routing-check, code of its own that does not link libmoe. A noinst
# program, not a check program: `all` builds it, and check-mutations, which
# rebuilds `all` and only the test programs a record names, then finds it.
noinst_PROGRAMS += t/routing-check
t_routing_check_SOURCES = t/routing_check.c
t_routing_check_LDADD = -lm
TESTS += t/router-dump.sh
EXTRA_DIST += t/router-dump.sh

# The toy task: the paper's four routing variants on a teacher-student
# regression (experiments/*-toy.yaml); quick default reproduction.
bench_moebench_SOURCES += bench/tasks/toy.c

# Micro-benchmark (not a test): make bench-perf
noinst_PROGRAMS += bench/perf/moe-perf
bench_perf_moe_perf_SOURCES = bench/perf/perf.c
bench_perf_moe_perf_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lm
EXTRA_DIST += bench/perf/perf.sh bench/perf/perf-layer.sh experiments/quick-toy.yaml experiments/paper-toy.yaml

# bench-perf runs each part in turn (bench/perf/perf.sh); a new benchmark
# adds its script here: BENCH_PERF_PARTS += bench/perf/perf-NAME.sh
BENCH_PERF_PARTS = bench/perf/perf-layer.sh
.PHONY: bench-perf
bench-perf: bench/perf/moe-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 $(BENCH_PERF_PARTS)

TESTS += t/test_toy
check_PROGRAMS += t/test_toy
t_test_toy_SOURCES = t/test_toy.c t/tap.h bench/tasks/toy.c bench/harness/cell.c bench/harness/sha256.c bench/task.h

# The reproduced results (make bench) ship with the package.
EXTRA_DIST += doc/results.md doc/figures/fig6.svg doc/figures/perf-layer.svg

# make check-mutations: apply each deliberate bug of t/mutations.list to a
# scratch copy and fail if the tests named for it still pass
# (build-aux/check-mutations.sh; MUTATIONS="id ..." runs a subset).
MUTATIONS =
check-mutations:
	$(SHELL) $(srcdir)/build-aux/check-mutations.sh $(abs_top_srcdir) $(abs_top_srcdir)/t/mutations.list $(MUTATIONS)
.PHONY: check-mutations
EXTRA_DIST += build-aux/check-mutations.sh t/mutations.list
