# SPDX-License-Identifier: GPL-3.0-or-later
## lm area (see Makefile.am): transformer components (embedding, LayerNorm,
## attention, the pre-LN block around a moe_layer) and the MoE language
## model. Numerical code in <module>_impl.h, compiled for float and double.
moeinclude_HEADERS += lib/moe/nn.h lib/moe/lm.h
lib_libmoe_la_SOURCES += lib/nn/nn.c lib/nn/nn_impl.h lib/nn/lm.c lib/nn/lm_impl.h

TESTS += t/test_lm
check_PROGRAMS += t/test_lm
t_test_lm_SOURCES = t/test_lm.c t/tap.h t/fdcheck.h
TESTS += t/test_threads
check_PROGRAMS += t/test_threads
t_test_threads_SOURCES = t/test_threads.c t/tap.h
# the blocks of a threaded product, against a recording BLAS (no OpenBLAS)
TESTS += t/test_par
check_PROGRAMS += t/test_par
t_test_par_SOURCES = t/test_par.c t/tap.h
t_test_par_LDADD = -lm
t_test_par_LDFLAGS = $(OPENMP_CFLAGS)
# test_threads on every OpenBLAS kernel the CPU runs
TESTS += t/threads-cores.sh
EXTRA_DIST += t/threads-cores.sh
t_test_lm_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) $(ZLIB_LIBS) -lm
# Golden fixture: regenerate with /usr/bin/python3 t/gen_lm_fixtures.py
# (needs torch; not run by make check).
EXTRA_DIST += t/gen_lm_fixtures.py t/data/lm/lm_golden.txt.gz t/data/lm/ckpt-v1.bin

# LM training throughput against PyTorch (not a test): part of make bench-perf
noinst_PROGRAMS += bench/perf/lm-perf
bench_perf_lm_perf_SOURCES = bench/perf/lm_perf.c bench/perf/omp_account.c bench/perf/omp_account.h
bench_perf_lm_perf_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lm
EXTRA_DIST += bench/perf/perf-lm.sh bench/perf/torch_lm_baseline.py
BENCH_PERF_PARTS += bench/perf/perf-lm.sh
# a model's own threads, 2 against 1 (LM size M, the layer's GEMM-bound
# shapes), interleaved one process per setting; `make bench-perf-threads`
# runs it alone (about 3 minutes on an idle 2-core machine)
BENCH_PERF_PARTS += bench/perf/perf-threads.sh
EXTRA_DIST += bench/perf/perf-threads.sh doc/threads.md
.PHONY: bench-perf-threads
bench-perf-threads: bench/perf/moe-perf bench/perf/lm-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 bench/perf/perf-threads.sh
# its arguments (and vision-perf's): --help, a lone option, a bad number
TESTS += t/perf-lm-args.sh
EXTRA_DIST += t/perf-lm-args.sh
bench-perf: bench/perf/lm-perf
# the LM part alone
.PHONY: bench-perf-lm
bench-perf-lm: bench/perf/moe-perf bench/perf/lm-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 bench/perf/perf-lm.sh
