# SPDX-License-Identifier: GPL-3.0-or-later
## bench/tasks/ (see Makefile.am): the tasks a matrix can run and their
## registry (tasks.c): selftest (the harness's own tests), toy (the four
## routing variants on a teacher-student regression), synthetic (the
## paper's convergence study, App. G.1) with the gmoe-limit verb, lm (a
## transformer LM with MoE FFNs on token files), vision (Fashion-MNIST
## through an MoE connector).
bench_libmoebench_la_SOURCES += bench/tasks/tasks.c bench/tasks/selftest.c bench/tasks/toy.c \
	bench/tasks/synthetic.c bench/tasks/synthetic.h bench/tasks/gmoe_limit.c \
	bench/tasks/lm.c bench/tasks/vision.c
