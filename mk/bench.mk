## Router metrics, micro-benchmarks and the lead's glue (see Makefile.am).
lib_libmoe_la_SOURCES += lib/metrics.c
moeinclude_HEADERS += lib/moe/metrics.h

TESTS += t/test_metrics
check_PROGRAMS += t/test_metrics
t_test_metrics_SOURCES = t/test_metrics.c t/tap.h
EXTRA_DIST += t/data/metrics.txt t/gen_metrics_fixtures.py bench/torch_baseline.py
