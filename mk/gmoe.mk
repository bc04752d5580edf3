# SPDX-License-Identifier: GPL-3.0-or-later
## gmoe area (see Makefile.am)
lib_libmoe_la_SOURCES += lib/gmoe/gmoe.c lib/gmoe/gmoe_io.c lib/gmoe/gmoe_objective.c lib/gmoe/gmoe_em.c lib/gmoe/gmoe_polish.c lib/gmoe/gmoe_fit.c lib/gmoe/gmoe_impl.h
moeinclude_HEADERS += lib/moe/gmoe.h
lib_libmoe_la_SOURCES += lib/gmoe/voronoi.c
moeinclude_HEADERS += lib/moe/voronoi.h
TESTS += t/test_gmoe
check_PROGRAMS += t/test_gmoe
t_test_gmoe_SOURCES = t/test_gmoe.c t/tap.h
TESTS += t/test_voronoi
check_PROGRAMS += t/test_voronoi
t_test_voronoi_SOURCES = t/test_voronoi.c t/tap.h
bench_moebench_SOURCES += bench/tasks/synthetic.c bench/tasks/synthetic.h bench/tasks/gmoe_limit.c
TESTS += t/test_synthetic t/gmoe_limit.sh
check_PROGRAMS += t/test_synthetic
t_test_synthetic_SOURCES = t/test_synthetic.c bench/tasks/synthetic.c bench/tasks/synthetic.h bench/harness/cell.c bench/harness/sha256.c bench/task.h bench/verbs.h t/tap.h
EXTRA_DIST += t/gmoe_limit.sh
# timing of the synthetic study (see the file's banner); not installed
noinst_PROGRAMS += bench/perf/perf_synthetic
TESTS += t/perf-synthetic-args.sh
EXTRA_DIST += t/perf-synthetic-args.sh
bench_perf_perf_synthetic_SOURCES = bench/perf/perf_synthetic.c bench/tasks/synthetic.c bench/harness/cell.c bench/harness/sha256.c bench/task.h bench/verbs.h
bench_perf_perf_synthetic_LDADD = lib/libmoe.la $(GSL_LIBS) $(BLAS_LIBS) -lm
# the synthetic study's matrices and the cached limits they read
EXTRA_DIST += experiments/limits/thm4.txt experiments/limits/gatecmp-nsigmoid.txt experiments/paper-synthetic.yaml experiments/quick-synthetic.yaml \
	experiments/smoke-synthetic.yaml experiments/paper-gate-compare.yaml experiments/paper-d2.yaml \
	experiments/paper-stopping.yaml
TESTS += t/test_gmoe_mle
check_PROGRAMS += t/test_gmoe_mle
t_test_gmoe_mle_SOURCES = t/test_gmoe_mle.c t/tap.h
EXTRA_DIST += t/gen_robust_stats.py t/data/stats/robust_stats.txt \
	t/gen_bootstrap_fixture.py t/data/stats/bootstrap.txt
EXTRA_DIST += doc/thm4-limit.md doc/synthetic-findings.md doc/figures/gate-fn-err.svg doc/figures/gate-par-err.svg \
	doc/figures/fig6-quick.svg doc/figures/gate-compare-loss.svg doc/figures/gate-compare-eta.svg
# independent NumPy references: regenerate with /usr/bin/python3 t/gen_gmoe_fixtures.py
TESTS += t/test_gmoe_ref
check_PROGRAMS += t/test_gmoe_ref
t_test_gmoe_ref_SOURCES = t/test_gmoe_ref.c t/tap.h
EXTRA_DIST += t/gen_gmoe_fixtures.py t/data/gmoe/voronoi_ref.gmoe t/data/gmoe/voronoi_ref.txt \
	t/data/gmoe/em_model.gmoe t/data/gmoe/em_step.txt
