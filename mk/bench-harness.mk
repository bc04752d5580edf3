# SPDX-License-Identifier: GPL-3.0-or-later
## bench/harness/ (see Makefile.am): the matrix parser, runner, result
## store, reports, and `make bench` / `make bench-quick` (mb-bench.sh).
bench_libmoebench_la_SOURCES += bench/harness/cell.c bench/harness/json.c bench/harness/json.h \
	bench/harness/matrix.c bench/harness/matrix.h bench/harness/matrix_int.h bench/harness/matrix_yaml.c \
	bench/harness/matrix_spec.c bench/harness/matrix_expand.c bench/harness/results.c bench/harness/results.h \
	bench/harness/run.c bench/harness/report.c bench/harness/report.h bench/harness/power.c \
	bench/harness/power.h bench/harness/sequential.c bench/harness/report_int.h \
	bench/harness/report_table.c bench/harness/report_fit.c bench/harness/report_plot.c \
	bench/harness/report_plan.c bench/harness/report_html.c
# the build facts of every result's provenance (mk/bench.mk)
bench/harness/results.lo: bench/mb_build.h

# make bench: the paper's matrices; make bench-quick: the small versions;
# MATRICES="experiments/a.yaml ..." runs a chosen subset instead.
# Results under $(MB_BENCH_OUT)/, tables and figures under
# $(MB_BENCH_OUT)/NAME/report/, summaries joined into doc/results.md
# (doc/results-quick.md for bench-quick). The data sets they need are made
# first (mk/datasets.mk).
MB_BENCH_JOBS = 2
MB_BENCH_OUT = results
bench: bench/moebench
	MATRICES='$(MATRICES)' $(SHELL) $(srcdir)/bench/harness/mb-bench.sh $(abs_top_builddir)/bench/moebench $(srcdir) paper \
	  $(MB_BENCH_OUT) $(MB_BENCH_JOBS) $(srcdir)/doc/results.md
bench-quick: bench/moebench
	MATRICES='$(MATRICES)' $(SHELL) $(srcdir)/bench/harness/mb-bench.sh $(abs_top_builddir)/bench/moebench $(srcdir) quick \
	  $(MB_BENCH_OUT) $(MB_BENCH_JOBS) $(srcdir)/doc/results-quick.md
.PHONY: bench bench-quick
# make archive-report: the tables, claims and figures of the results archive
# (archive/NAME, the raw cells of the paper runs) regenerated without
# rerunning anything, into doc/archive-results.md and .html; the reports
# themselves land in archive/NAME/report/ (not kept in git). The .md ships
# (mk/doc.mk); the .html does not: it is made from archive/, which stays in
# the repository (not in the tarball), so in a tarball it would be a
# generated file without its source (lintian: source-is-missing).
ARCHIVE_MATRICES = experiments/paper-lm-lr.yaml experiments/paper-lm.yaml \
  experiments/paper-lm-4x-lr.yaml experiments/paper-lm-4x.yaml \
  experiments/paper-vision-epochs.yaml experiments/paper-vision-pilot.yaml \
  experiments/paper-vision-upcycle.yaml archive/paper-vision-e15/matrix.yaml \
  experiments/paper-vision.yaml
archive-report: bench/moebench
	MB_BENCH_REPORT_ONLY=1 MATRICES='$(ARCHIVE_MATRICES:%=$(srcdir)/%)' $(SHELL) $(srcdir)/bench/harness/mb-bench.sh \
	  $(abs_top_builddir)/bench/moebench $(srcdir) paper $(srcdir)/archive $(MB_BENCH_JOBS) $(srcdir)/doc/archive-results.md
.PHONY: archive-report
# mb-bench.sh, and share.mk, the Makefile installed with the matrices
# (mk/experiments.mk)
EXTRA_DIST += bench/harness/mb-bench.sh bench/harness/share.mk
