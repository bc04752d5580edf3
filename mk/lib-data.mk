# SPDX-License-Identifier: GPL-3.0-or-later
## lib/data/ (see Makefile.am): data readers and tokenizers: token files,
## byte-level BPE (trainer, encoder, GPT-2 ranks), the SOTU corpus split,
## language-model windows, IDX image files, patches and the seeded epoch
## batcher. lib/data/unicode_delta.h is written by
## build-aux/gen_unicode_delta.mjs (not run by the build).
lib_libmoe_impl_la_SOURCES += lib/data/tokfile.c lib/data/bpe_pretok.c lib/data/bpe.c lib/data/bpe_train.c \
	lib/data/bpe_io.c lib/data/bpe_impl.h lib/data/corpus.c lib/data/batch.c \
	lib/data/textio.c lib/data/textio.h lib/data/unicode_delta.h \
	lib/data/idx.c lib/data/epoch_batcher.c
moeinclude_HEADERS += lib/moe/tokfile.h lib/moe/bpe.h lib/moe/corpus.h lib/moe/batch.h lib/moe/idx.h
EXTRA_DIST += build-aux/gen_unicode_delta.mjs
