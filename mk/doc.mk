# SPDX-License-Identifier: GPL-3.0-or-later
## doc/ (see Makefile.am): the manuals, the design notes and the
## reproduced results (doc/results.md, written by `make bench`) with their
## figures.
dist_man_MANS += doc/moebench.1 doc/moebench-matrix.5 doc/moe-tokfile.5 doc/libmoe.3
EXTRA_DIST += doc/results.md doc/figures/perf-layer.svg doc/figures/results \
	doc/thm4-limit.md doc/synthetic-findings.md \
	doc/HACKING.md doc/vision-design.md doc/lm-design.md
# the results archive's report (make archive-report, mk/bench-harness.mk):
# the .md and its figures, not the .html (no source-is-missing: archive/
# is not shipped)
EXTRA_DIST += doc/archive-results.md doc/figures/archive-results doc/lm-results.md doc/threads.md \
	doc/vision-results.md
