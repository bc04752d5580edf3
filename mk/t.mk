# SPDX-License-Identifier: GPL-3.0-or-later
## t/ (see Makefile.am): the tests, C programs and shell scripts, all
## speaking TAP; the fixtures under t/data/ and the scripts that wrote them
## (PyTorch/NumPy/tiktoken, not run by make check); `make check-mutations`
## (t/mutations.list) and `make sanitize-check`. The fuzz harnesses of
## t/fuzz/ are in mk/t-fuzz.mk. Sections follow the folders tested.
TEST_EXTENSIONS = .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_COMPILER = $(SHELL)
# Temporary files stay in the build tree: nothing else on the machine can
# remove them mid-test, and `make clean` removes what a killed test left.
AM_TESTS_ENVIRONMENT = OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive \
	GOTO_NUM_THREADS=1 LC_ALL=C TMPDIR='$(abs_top_builddir)/t/tmp' \
	top_srcdir='$(top_srcdir)' top_builddir='$(top_builddir)' \
	srcdir='$(srcdir)' MOEBENCH='$(abs_top_builddir)/bench/moebench'; \
	mkdir -p "$$TMPDIR"; \
	export OPENBLAS_NUM_THREADS OMP_NUM_THREADS OMP_WAIT_POLICY GOTO_NUM_THREADS LC_ALL TMPDIR \
	top_srcdir top_builddir srcdir MOEBENCH;
# What those tests need from the build. AM_TESTS_ENVIRONMENT ends with an
# export, so these assignments follow it as further shell commands.
# MOE_MAKE runs `make install DESTDIR=...` from inside `make check`.
AM_TESTS_ENVIRONMENT += MOE_MAKE='$(MAKE)' MOE_CC='$(CC)' \
	MOE_PKG_CONFIG='$(PKG_CONFIG)' MOE_LT_VERSION='$(MOE_LT_VERSION)' \
	MOE_BINDIR='$(bindir)' MOE_LIBDIR='$(libdir)' \
	MOE_INCLUDEDIR='$(moeincludedir)' MOE_PKGCONFIGDIR='$(pkgconfigdir)' \
	MOE_MANDIR='$(mandir)' MOE_HEADERS='$(moeinclude_HEADERS)' \
	MOE_MANS='$(dist_man_MANS) $(man_MANS)' MOE_CFLAGS='$(MOE_CFLAGS)' \
	MOE_BUILD_CFLAGS='$(CFLAGS)'; \
	export MOE_MAKE MOE_CC MOE_PKG_CONFIG MOE_LT_VERSION MOE_BINDIR \
	MOE_LIBDIR MOE_INCLUDEDIR MOE_PKGCONFIGDIR MOE_MANDIR MOE_HEADERS \
	MOE_MANS MOE_CFLAGS MOE_BUILD_CFLAGS;
EXTRA_DIST += t/tap.sh build-aux/flake-check.sh
clean-local: clean-test-tmp
clean-test-tmp:
	-rm -rf t/tmp
.PHONY: clean-test-tmp

# ---- lib/ -------------------------------------------------------------------
TESTS += t/test_base
check_PROGRAMS += t/test_base
t_test_base_SOURCES = t/test_base.c t/tap.h
# lib/vmath.c is internal (not exported)
TESTS += t/test_vmath
check_PROGRAMS += t/test_vmath
t_test_vmath_SOURCES = t/test_vmath.c t/tap.h
t_test_vmath_LDADD = $(MOE_IMPL_LIBS)
TESTS += t/test_stats
check_PROGRAMS += t/test_stats
t_test_stats_SOURCES = t/test_stats.c t/tap.h
EXTRA_DIST += t/gen_robust_stats.py t/data/stats/robust_stats.txt \
	t/gen_bootstrap_fixture.py t/data/stats/bootstrap.txt
# What libmoe promises on bad input (GSL's handler left at its default,
# NaN/Inf at the layer and optimizer boundaries, sizes that would wrap).
TESTS += t/test_contracts
check_PROGRAMS += t/test_contracts
t_test_contracts_SOURCES = t/test_contracts.c t/tap.h
t_test_contracts_LDADD = $(MOE_IMPL_LIBS) -lpthread

# ---- lib/nn/ ----------------------------------------------------------------
TESTS += t/test_gate t/test_expert t/test_layer t/test_loss t/test_optim t/test_golden
check_PROGRAMS += t/test_gate t/test_expert t/test_layer t/test_loss t/test_optim t/test_golden
t_test_gate_SOURCES = t/test_gate.c t/tap.h t/fdcheck.h
t_test_expert_SOURCES = t/test_expert.c t/tap.h t/fdcheck.h
t_test_layer_SOURCES = t/test_layer.c t/tap.h t/fdcheck.h
t_test_loss_SOURCES = t/test_loss.c t/tap.h t/fdcheck.h
t_test_optim_SOURCES = t/test_optim.c t/tap.h
t_test_golden_SOURCES = t/test_golden.c t/tap.h
# The double twins and kernels of lib/nn/private.h are not exported: the
# tests that check gradients with them link lib/libmoe_impl.la.
t_test_gate_LDADD = $(MOE_IMPL_LIBS)
t_test_expert_LDADD = $(MOE_IMPL_LIBS)
t_test_layer_LDADD = $(MOE_IMPL_LIBS)
t_test_loss_LDADD = $(MOE_IMPL_LIBS)
t_test_optim_LDADD = $(MOE_IMPL_LIBS)
t_test_golden_LDADD = $(MOE_IMPL_LIBS)
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
TESTS += t/test_metrics
check_PROGRAMS += t/test_metrics
t_test_metrics_SOURCES = t/test_metrics.c t/tap.h
EXTRA_DIST += t/data/metrics.txt t/gen_metrics_fixtures.py
TESTS += t/test_lm
check_PROGRAMS += t/test_lm
t_test_lm_SOURCES = t/test_lm.c t/tap.h t/fdcheck.h
t_test_lm_LDADD = $(MOE_IMPL_LIBS)
# Golden fixture: regenerate with /usr/bin/python3 t/gen_lm_fixtures.py
# (needs torch; not run by make check).
EXTRA_DIST += t/gen_lm_fixtures.py t/data/lm/lm_golden.txt.gz t/data/lm/ckpt-v1.bin
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
TESTS += t/test_vision
check_PROGRAMS += t/test_vision
t_test_vision_SOURCES = t/test_vision.c t/tap.h t/fdcheck.h
t_test_vision_LDADD = $(MOE_IMPL_LIBS)
# Golden fixture: regenerate with /usr/bin/python3 t/gen_vision_fixtures.py
# (needs torch; not run by make check).
EXTRA_DIST += t/gen_vision_fixtures.py t/data/vision/vision_golden.txt.gz

# ---- lib/gmoe/ --------------------------------------------------------------
TESTS += t/test_gmoe
check_PROGRAMS += t/test_gmoe
t_test_gmoe_SOURCES = t/test_gmoe.c t/tap.h
TESTS += t/test_voronoi
check_PROGRAMS += t/test_voronoi
t_test_voronoi_SOURCES = t/test_voronoi.c t/tap.h
TESTS += t/test_gmoe_mle
check_PROGRAMS += t/test_gmoe_mle
t_test_gmoe_mle_SOURCES = t/test_gmoe_mle.c t/tap.h
# independent NumPy references: regenerate with /usr/bin/python3 t/gen_gmoe_fixtures.py
TESTS += t/test_gmoe_ref
check_PROGRAMS += t/test_gmoe_ref
t_test_gmoe_ref_SOURCES = t/test_gmoe_ref.c t/tap.h
EXTRA_DIST += t/gen_gmoe_fixtures.py t/data/gmoe/voronoi_ref.gmoe t/data/gmoe/voronoi_ref.txt \
	t/data/gmoe/em_model.gmoe t/data/gmoe/em_step.txt

# ---- lib/data/ --------------------------------------------------------------
TESTS += t/test_tokfile
check_PROGRAMS += t/test_tokfile
t_test_tokfile_SOURCES = t/test_tokfile.c t/tap.h
# Fixtures for the text tests, made by t/gen_text_fixtures.py (committed, not
# run by make check).
TEXT_FIXTURES = \
	t/data/text/tiny_corpus.txt t/data/text/tiny_merges.bpe t/data/text/tiny.tiktoken \
	t/data/text/tiny_ab.txt t/data/text/tiny_ab_merges.bpe t/data/text/tiny_ab_expect.txt \
	t/data/text/tiny_tiktoken_expect.txt \
	t/data/text/r50k_base.tiktoken.gz t/data/text/r50k_base.README \
	t/data/text/tiktoken_classes.txt t/data/text/r50k_codepoints.txt.gz \
	t/data/text/r50k_lines.txt \
	t/data/text/valid_w2.tok t/data/text/valid_w2.tok.gz t/data/text/valid_w4.tok.gz \
	t/data/text/empty.tok t/data/text/bad_magic.tok t/data/text/bad_version.tok \
	t/data/text/bad_width.tok t/data/text/bad_reserved.tok t/data/text/bad_w2_vocab.tok \
	t/data/text/trunc_header.tok t/data/text/trunc_data.tok t/data/text/trailing.tok \
	t/data/text/oor.tok t/data/text/bad_crc.tok.gz t/data/text/bad_body.tok.gz \
	t/data/text/trunc.tok.gz \
	t/data/text/sotu/1999_ann_lee_x.txt t/data/text/sotu/2000_bo_ray_y.txt \
	t/data/text/sotu/2000_cy_ma_z.txt t/data/text/sotu/2001_di_ko_x.txt \
	t/data/text/sotu/2010_ed_fu_y.txt t/data/text/sotu/2011_fa_gu_z.txt \
	t/data/text/sotu/2021_gi_ho_x.txt t/data/text/sotu/README \
	t/data/text/brown/ca01.txt t/data/text/brown/cb02.txt t/data/text/brown/cc01.txt \
	t/data/text/brown/cj01.txt t/data/text/brown/cn01.txt t/data/text/brown/cr01.txt \
	t/data/text/brown/README
EXTRA_DIST += $(TEXT_FIXTURES) t/gen_text_fixtures.py t/gen_tiktoken_fixture.js
CLEANFILES += test_tokfile_rt.tok test_tokfile_rt.tok.gz
TESTS += t/test_bpe
check_PROGRAMS += t/test_bpe
t_test_bpe_SOURCES = t/test_bpe.c t/tap.h
CLEANFILES += test_bpe_vocab.bpe test_bpe_bad.bpe test_bpe_bad.tiktoken test_bpe_ok.tiktoken
# GPT-2's r50k against OpenAI's tiktoken on every code point (fixtures from
# t/gen_tiktoken_fixture.js; the ranks file is committed gzipped).
TESTS += t/test_tiktoken
check_PROGRAMS += t/test_tiktoken
t_test_tiktoken_SOURCES = t/test_tiktoken.c t/tap.h
t_test_tiktoken_LDADD = $(LDADD) $(ZLIB_LIBS)
TESTS += t/test_textdata
check_PROGRAMS += t/test_textdata
t_test_textdata_SOURCES = t/test_textdata.c t/tap.h
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

# ---- bench/harness/ ---------------------------------------------------------
harness_matrix_files = \
	t/data/matrix/good-basic.yaml t/data/matrix/good-basic.expand \
	t/data/matrix/good-include.yaml t/data/matrix/good-include.expand \
	t/data/matrix/good-reordered.yaml t/data/matrix/format-example.yaml \
	t/data/matrix/good-exponent.yaml \
	t/data/matrix/err-axis-scalar.yaml t/data/matrix/err-axis-scalar.err \
	t/data/matrix/err-base-and-axis.yaml t/data/matrix/err-base-and-axis.err \
	t/data/matrix/err-choice.yaml t/data/matrix/err-choice.err \
	t/data/matrix/err-cross-include.yaml t/data/matrix/err-cross-include.err \
	t/data/matrix/err-cross.yaml t/data/matrix/err-cross.err \
	t/data/matrix/err-dup-table.yaml t/data/matrix/err-dup-table.err \
	t/data/matrix/err-dup-value.yaml t/data/matrix/err-dup-value.err \
	t/data/matrix/err-dup-values.yaml t/data/matrix/err-dup-values.err \
	t/data/matrix/err-deep.yaml t/data/matrix/err-deep.err \
	t/data/matrix/err-duplicate.yaml t/data/matrix/err-duplicate.err \
	t/data/matrix/err-empty-axes.yaml t/data/matrix/err-empty-axes.err \
	t/data/matrix/err-empty-axis.yaml t/data/matrix/err-empty-axis.err \
	t/data/matrix/err-empty-file.yaml t/data/matrix/err-empty-file.err \
	t/data/matrix/err-exclude-all.yaml t/data/matrix/err-exclude-all.err \
	t/data/matrix/err-exclude-empty-list.yaml t/data/matrix/err-exclude-empty-list.err \
	t/data/matrix/err-exclude-unknown.yaml t/data/matrix/err-exclude-unknown.err \
	t/data/matrix/err-fit-x-type.yaml t/data/matrix/err-fit-x-type.err \
	t/data/matrix/err-fit-noname.yaml t/data/matrix/err-fit-noname.err \
	t/data/matrix/err-include-list.yaml t/data/matrix/err-include-list.err \
	t/data/matrix/err-int-huge.yaml t/data/matrix/err-int-huge.err \
	t/data/matrix/err-malformed.yaml t/data/matrix/err-malformed.err \
	t/data/matrix/err-metric-fit.yaml t/data/matrix/err-metric-fit.err \
	t/data/matrix/err-metric.yaml t/data/matrix/err-metric.err \
	t/data/matrix/err-missing-seed.yaml t/data/matrix/err-missing-seed.err \
	t/data/matrix/err-multi.yaml t/data/matrix/err-multi.err \
	t/data/matrix/err-name.yaml t/data/matrix/err-name.err \
	t/data/matrix/err-not-mapping.yaml t/data/matrix/err-not-mapping.err \
	t/data/matrix/err-plot-fit.yaml t/data/matrix/err-plot-fit.err \
	t/data/matrix/err-plot-noname.yaml t/data/matrix/err-plot-noname.err \
	t/data/matrix/err-power.yaml t/data/matrix/err-power.err \
	t/data/matrix/err-sequential.yaml t/data/matrix/err-sequential.err \
	t/data/matrix/err-range.yaml t/data/matrix/err-range.err \
	t/data/matrix/err-ref-key.yaml t/data/matrix/err-ref-key.err \
	t/data/matrix/err-replications.yaml t/data/matrix/err-replications.err \
	t/data/matrix/err-rows-key.yaml t/data/matrix/err-rows-key.err \
	t/data/matrix/err-seed.yaml t/data/matrix/err-seed.err \
	t/data/matrix/err-seed-range.yaml t/data/matrix/err-seed-range.err \
	t/data/matrix/err-stat.yaml t/data/matrix/err-stat.err \
	t/data/matrix/err-tab.yaml t/data/matrix/err-tab.err \
	t/data/matrix/err-table-key.yaml t/data/matrix/err-table-key.err \
	t/data/matrix/err-table-noname.yaml t/data/matrix/err-table-noname.err \
	t/data/matrix/err-type-bool.yaml t/data/matrix/err-type-bool.err \
	t/data/matrix/err-type-int.yaml t/data/matrix/err-type-int.err \
	t/data/matrix/err-type-map.yaml t/data/matrix/err-type-map.err \
	t/data/matrix/err-type-real.yaml t/data/matrix/err-type-real.err \
	t/data/matrix/err-unknown-axis.yaml t/data/matrix/err-unknown-axis.err \
	t/data/matrix/err-unknown-param.yaml t/data/matrix/err-unknown-param.err \
	t/data/matrix/err-unknown-task.yaml t/data/matrix/err-unknown-task.err \
	t/data/matrix/err-two-docs.yaml t/data/matrix/err-two-docs.err \
	t/data/matrix/err-unknown-top.yaml t/data/matrix/err-unknown-top.err \
	t/data/matrix/README
TESTS += t/harness-matrix.sh
EXTRA_DIST += t/harness-matrix.sh $(harness_matrix_files)
TESTS += t/harness-run.sh t/harness-claim.sh t/blas-core.sh
TESTS += t/harness-sequential.sh t/harness-reuse.sh
EXTRA_DIST += t/harness-sequential.sh t/harness-reuse.sh
EXTRA_DIST += t/harness-run.sh t/harness-claim.sh t/blas-core.sh t/data/run/fail.yaml t/data/run/hold.yaml
TESTS += t/test_power
check_PROGRAMS += t/test_power
t_test_power_SOURCES = t/test_power.c t/tap.h
t_test_power_LDADD = bench/libmoebench.la $(GSL_LIBS) -lm
EXTRA_DIST += t/gen_power_fixtures.py t/data/power/power.txt
TESTS += t/test_matrix
check_PROGRAMS += t/test_matrix
t_test_matrix_SOURCES = t/test_matrix.c t/tap.h
t_test_matrix_LDADD = $(MB_LIBS)
TESTS += t/harness-report.sh
EXTRA_DIST += t/harness-report.sh t/data/report/README t/data/report/smoke-draw_by_n.md \
	t/data/report/smoke-value_by_n.md t/data/report/smoke-growth.md t/data/report/smoke-summary.md \
	t/data/report/smoke-growth.tex
# the HTML report: escaping, claims, the joined page (report-html.sh); in a
# real browser when chromium is installed, else skipped (report-html-browser.sh,
# screenshots in t/report-html-shots/ or $(REPORT_HTML_SHOTS))
TESTS += t/report-html.sh t/report-html-browser.sh
EXTRA_DIST += t/report-html.sh t/report-html-browser.sh t/data/report/html.yaml t/data/report/html-check.js
clean-local: clean-report-html-shots
clean-report-html-shots:
	-rm -rf t/report-html-shots
.PHONY: clean-report-html-shots
TESTS += t/harness-scale.sh
EXTRA_DIST += t/harness-scale.sh
# seeds against an independent reference (regenerate: /usr/bin/python3 t/gen_seed_fixtures.py)
TESTS += t/report-seeds.sh
EXTRA_DIST += t/report-seeds.sh t/gen_seed_fixtures.py t/data/report/seeds.txt
TESTS += t/results-reader.sh
EXTRA_DIST += t/results-reader.sh

# ---- bench/tasks/ -----------------------------------------------------------
TESTS += t/test_toy
check_PROGRAMS += t/test_toy
t_test_toy_SOURCES = t/test_toy.c t/tap.h
t_test_toy_LDADD = $(MB_LIBS)
TESTS += t/test_synthetic t/gmoe_limit.sh
check_PROGRAMS += t/test_synthetic
t_test_synthetic_SOURCES = t/test_synthetic.c t/tap.h
t_test_synthetic_LDADD = $(MB_LIBS)
EXTRA_DIST += t/gmoe_limit.sh
# t/lm-task.sh runs experiments/smoke-lm.yaml on a tiny corpus made from
# the fixtures
TESTS += t/lm-task.sh t/lm-metrics.sh t/archive.sh
EXTRA_DIST += t/lm-task.sh t/lm-metrics.sh t/archive.sh
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
TESTS += t/vision-task.sh
EXTRA_DIST += t/vision-task.sh \
	t/data/vision/fmnist-tiny/train-images-idx3-ubyte.gz \
	t/data/vision/fmnist-tiny/train-labels-idx1-ubyte.gz \
	t/data/vision/fmnist-tiny/t10k-images-idx3-ubyte.gz \
	t/data/vision/fmnist-tiny/t10k-labels-idx1-ubyte.gz

# ---- bench/data/, bench/perf/, datasets/ ------------------------------------
TESTS += t/text_verbs.sh
EXTRA_DIST += t/text_verbs.sh
TESTS += t/data-images.sh
EXTRA_DIST += t/data-images.sh
# perf_synthetic's, lm-perf's and vision-perf's arguments: --help, a lone
# option, a bad number
TESTS += t/perf-synthetic-args.sh t/perf-lm-args.sh t/perf-layer-args.sh
EXTRA_DIST += t/perf-synthetic-args.sh t/perf-lm-args.sh t/perf-layer-args.sh
# fetch.sh's checksum and install logic, offline (fake DATADIR and npm).
TESTS += t/fetch-checksum.sh
EXTRA_DIST += t/fetch-checksum.sh

# ---- the installed tree, the package, a cluster -----------------------------
# The installed tree (headers, soname, pkg-config module, manuals, the
# example built against them), the exported symbols, the version written
# in each place, the reproducibility rules (no build dates, no
# machine-specific flags).
pkg_tests = t/pkg-install.sh t/symbols.sh t/version.sh t/reproducible.sh t/man.sh
TESTS += $(pkg_tests)
EXTRA_DIST += $(pkg_tests)
# the installed Makefile's bench-quick without the data sets
TESTS += t/bench-share.sh
# the joined summary's figures, one directory a summary and matrix
TESTS += t/bench-figures.sh
EXTRA_DIST += t/bench-share.sh t/bench-figures.sh
# the Debian symbols file against the built library
TESTS += t/debian-symbols.sh
EXTRA_DIST += t/debian-symbols.sh
# A real Slurm cluster: it starts daemons as root, so `make check` skips it;
# `make check-slurm` runs it (CI's slurm stage), printing its TAP lines.
TESTS += t/slurm.sh
EXTRA_DIST += t/slurm.sh
check-slurm: bench/moebench
	@$(MKDIR_P) t/tmp
	MOE_SLURM_TEST=1 MOEBENCH='$(abs_top_builddir)/bench/moebench' srcdir='$(srcdir)' \
	  TMPDIR='$(abs_top_builddir)/t/tmp' OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
	  $(SHELL) $(srcdir)/t/slurm.sh
.PHONY: check-slurm

# ---- the tests of the tests -------------------------------------------------
# make check-mutations: apply each deliberate bug of t/mutations.list to a
# scratch copy and fail if the tests named for it still pass
# (build-aux/check-mutations.sh; MUTATIONS="id ..." runs a subset).
MUTATIONS =
check-mutations:
	$(SHELL) $(srcdir)/build-aux/check-mutations.sh $(abs_top_srcdir) $(abs_top_srcdir)/t/mutations.list $(MUTATIONS)
.PHONY: check-mutations
EXTRA_DIST += build-aux/check-mutations.sh t/mutations.list
# make sanitize-check: make check in an ASan+UBSan build under $(SAN_DIR)
# (build-aux/sanitize.sh); it does not touch this build.
SAN_DIR = san-build
sanitize-check:
	$(SHELL) $(srcdir)/build-aux/sanitize.sh $(SAN_DIR)
.PHONY: sanitize-check clean-sanitize
clean-local: clean-sanitize
clean-sanitize:
	-rm -rf $(SAN_DIR)
EXTRA_DIST += build-aux/sanitize.sh
