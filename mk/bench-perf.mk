# SPDX-License-Identifier: GPL-3.0-or-later
## bench/perf/ (see Makefile.am): `make bench-perf`, micro-benchmarks (not
## tests): each part times libmoe against its PyTorch baseline
## interleaved; perf_synthetic times the synthetic study.

# bench-perf runs each part in turn (bench/perf/perf.sh); a new benchmark
# adds its script here: BENCH_PERF_PARTS += bench/perf/perf-NAME.sh
BENCH_PERF_PARTS = bench/perf/perf-layer.sh
.PHONY: bench-perf
bench-perf: bench/perf/moe-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 $(BENCH_PERF_PARTS)

# the MoE layer
noinst_PROGRAMS += bench/perf/moe-perf
bench_perf_moe_perf_SOURCES = bench/perf/perf.c
bench_perf_moe_perf_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lm
EXTRA_DIST += bench/perf/perf.sh bench/perf/perf-layer.sh bench/perf/torch_baseline.py

# timing of the synthetic study (see the file's banner)
noinst_PROGRAMS += bench/perf/perf_synthetic
bench_perf_perf_synthetic_SOURCES = bench/perf/perf_synthetic.c
bench_perf_perf_synthetic_LDADD = $(MB_LIBS)

# LM training throughput against PyTorch
noinst_PROGRAMS += bench/perf/lm-perf
bench_perf_lm_perf_SOURCES = bench/perf/lm_perf.c bench/perf/omp_account.c bench/perf/omp_account.h
bench_perf_lm_perf_LDADD = $(MB_LIBS)
EXTRA_DIST += bench/perf/perf-lm.sh bench/perf/torch_lm_baseline.py
BENCH_PERF_PARTS += bench/perf/perf-lm.sh
bench-perf: bench/perf/lm-perf
# the LM part alone
.PHONY: bench-perf-lm
bench-perf-lm: bench/perf/moe-perf bench/perf/lm-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 bench/perf/perf-lm.sh

# a model's own threads, 2 against 1 (LM size M, the layer's GEMM-bound
# shapes), interleaved one process per setting; `make bench-perf-threads`
# runs it alone (about 3 minutes on an idle 2-core machine)
BENCH_PERF_PARTS += bench/perf/perf-threads.sh
EXTRA_DIST += bench/perf/perf-threads.sh
.PHONY: bench-perf-threads
bench-perf-threads: bench/perf/moe-perf bench/perf/lm-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 bench/perf/perf-threads.sh

# Vision training throughput against PyTorch
noinst_PROGRAMS += bench/perf/vision-perf
bench_perf_vision_perf_SOURCES = bench/perf/vision_perf.c bench/perf/omp_account.c bench/perf/omp_account.h
bench_perf_vision_perf_LDADD = $(MB_LIBS)
EXTRA_DIST += bench/perf/perf-vision.sh bench/perf/torch_vision_baseline.py
BENCH_PERF_PARTS += bench/perf/perf-vision.sh
bench-perf: bench/perf/vision-perf
# the vision part alone
.PHONY: bench-perf-vision
bench-perf-vision: bench/perf/moe-perf bench/perf/vision-perf
	$(SHELL) $(srcdir)/bench/perf/perf.sh $(abs_top_builddir) $(abs_top_srcdir) 1 bench/perf/perf-vision.sh
