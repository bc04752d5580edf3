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
MOEBENCH = moebench
MOEBENCH_SHARE := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
MB_BENCH_JOBS = 2
MB_BENCH_OUT = results
MATRICES =

bench:
	MATRICES='$(MATRICES)' sh $(MOEBENCH_SHARE)/mb-bench.sh $(MOEBENCH) $(MOEBENCH_SHARE) paper \
	  $(MB_BENCH_OUT) $(MB_BENCH_JOBS) $(MB_BENCH_OUT)/results.md
bench-quick:
	MATRICES='$(MATRICES)' sh $(MOEBENCH_SHARE)/mb-bench.sh $(MOEBENCH) $(MOEBENCH_SHARE) quick \
	  $(MB_BENCH_OUT) $(MB_BENCH_JOBS) $(MB_BENCH_OUT)/results-quick.md
.PHONY: bench bench-quick
