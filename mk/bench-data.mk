# SPDX-License-Identifier: GPL-3.0-or-later
## bench/data/ (see Makefile.am): the `moebench data` verbs (registered in
## bench/moebench.c's verb table): BPE training, tokenizing, token-file
## facts, the LM corpus (text.c), and IDX images (images.c).
bench_libmoebench_la_SOURCES += bench/data/text.c bench/data/images.c
