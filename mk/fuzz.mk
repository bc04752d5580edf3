# SPDX-License-Identifier: GPL-3.0-or-later
## hardening (see Makefile.am): the libFuzzer harnesses of t/fuzz/, their
## committed regression inputs (replayed by make check), and the sanitizer
## build. Neither `make fuzz` nor `make sanitize-check` touches this build:
## each builds apart (build-aux/fuzz.sh, build-aux/sanitize.sh).

# make fuzz [FUZZ_SECONDS=N] [FUZZ_HARNESSES="idx json ..."]: each harness
# runs N seconds; clang (Debian: clang) builds them in $(FUZZ_DIR).
FUZZ_SECONDS = 20
FUZZ_DIR = fuzz-build
FUZZ_HARNESSES =
# The harnesses link libmoe's own dependencies (its LIBADD without the
# libtool archives) and libyaml (fuzz_matrix; libmoe does not use it) with
# the preprocessor flags of this build.
fuzz:
	FUZZ_CPPFLAGS='$(AM_CPPFLAGS)' FUZZ_LIBS='$(filter-out %.la,$(lib_libmoe_la_LIBADD)) $(YAML_LIBS)' \
	$(SHELL) $(srcdir)/build-aux/fuzz.sh $(srcdir) $(top_builddir) $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_HARNESSES)
# make sanitize-check: make check in an ASan+UBSan build under $(SAN_DIR).
SAN_DIR = san-build
sanitize-check:
	$(SHELL) $(srcdir)/build-aux/sanitize.sh $(SAN_DIR)
.PHONY: fuzz sanitize-check clean-fuzz
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf $(FUZZ_DIR) $(SAN_DIR)

fuzz_harnesses = t/fuzz/fuzz_matrix.c t/fuzz/fuzz_json.c t/fuzz/fuzz_idx.c t/fuzz/fuzz_tokfile.c \
	t/fuzz/fuzz_bpe_merges.c t/fuzz/fuzz_tiktoken.c t/fuzz/fuzz_bpe_roundtrip.c \
	t/fuzz/fuzz_corpus.c t/fuzz/fuzz_report.c
EXTRA_DIST += build-aux/fuzz.sh build-aux/sanitize.sh $(fuzz_harnesses) t/fuzz/seeds t/fuzz/regress

TESTS += t/test_fuzz_regress
check_PROGRAMS += t/test_fuzz_regress
t_test_fuzz_regress_SOURCES = t/test_fuzz_regress.c t/fuzz/fuzz.h t/tap.h \
	bench/harness/matrix.c bench/harness/json.c bench/harness/sha256.c bench/harness/cell.c \
	bench/harness/results.c bench/harness/report.c bench/harness/report_html.c bench/harness/power.c bench/tasks/tasks.c bench/tasks/selftest.c bench/tasks/toy.c \
	bench/tasks/synthetic.c bench/tasks/lm.c bench/tasks/vision.c
t_test_fuzz_regress_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/t
t_test_fuzz_regress_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) $(YAML_LIBS) $(ZLIB_LIBS) -lm

# What libmoe promises on bad input (GSL's handler left at its default,
# NaN/Inf at the layer and optimizer boundaries, sizes that would wrap).
TESTS += t/test_contracts
check_PROGRAMS += t/test_contracts
t_test_contracts_SOURCES = t/test_contracts.c t/tap.h
t_test_contracts_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lpthread -lm
