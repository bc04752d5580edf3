/* SPDX-License-Identifier: GPL-3.0-or-later */
/* verbs.h — the verbs of the moebench program. Each is
 * `int mb_verb_NAME(int argc, char **argv)` with argv[0] the verb itself,
 * returns the process exit status, and handles --help. They are listed in
 * the table in moebench.c. */
#ifndef MB_VERBS_H
#define MB_VERBS_H

typedef int (*mb_verb_fn)(int argc, char **argv);

typedef struct {
  const char *group; /* NULL for a top-level verb, else e.g. "data" */
  const char *name;
  mb_verb_fn fn;
  const char *summary;
} mb_verb;

int mb_verb_tasks(int argc, char **argv);
int mb_verb_expand(int argc, char **argv);
int mb_verb_run(int argc, char **argv);
int mb_verb_status(int argc, char **argv);
int mb_verb_merge(int argc, char **argv);
int mb_verb_report(int argc, char **argv);
int mb_verb_slurm(int argc, char **argv);
int mb_verb_plan(int argc, char **argv);          /* bench/harness/report.c */
int mb_run_until_resolved(int argc, char **argv); /* bench/harness/sequential.c */
int mb_verb_data_images(int argc, char **argv);   /* bench/data/images.c */
int mb_verb_data_bpe_train(int argc, char **argv);
int mb_verb_data_tokenize(int argc, char **argv);
int mb_verb_data_tokinfo(int argc, char **argv);
int mb_verb_data_lm_corpus(int argc, char **argv);
int mb_verb_gmoe_limit(int argc, char **argv);
int mb_verb_lm_eval(int argc, char **argv); /* bench/tasks/lm.c */

#endif
