# SPDX-License-Identifier: GPL-3.0-or-later
## t/fuzz/ (see Makefile.am): the libFuzzer harnesses, their seeds and
## their committed regression inputs (replayed by make check). `make fuzz`
## builds them apart with clang (build-aux/fuzz.sh) and does not touch
## this build.

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
.PHONY: fuzz clean-fuzz
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf $(FUZZ_DIR)

fuzz_harnesses = t/fuzz/fuzz_matrix.c t/fuzz/fuzz_json.c t/fuzz/fuzz_idx.c t/fuzz/fuzz_tokfile.c \
	t/fuzz/fuzz_bpe_merges.c t/fuzz/fuzz_tiktoken.c t/fuzz/fuzz_bpe_roundtrip.c \
	t/fuzz/fuzz_corpus.c t/fuzz/fuzz_report.c
EXTRA_DIST += build-aux/fuzz.sh $(fuzz_harnesses) t/fuzz/seeds t/fuzz/regress

TESTS += t/test_fuzz_regress
check_PROGRAMS += t/test_fuzz_regress
t_test_fuzz_regress_SOURCES = t/test_fuzz_regress.c t/fuzz/fuzz.h t/tap.h
t_test_fuzz_regress_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/t
t_test_fuzz_regress_LDADD = $(MB_LIBS)
