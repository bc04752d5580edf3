/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moebench.c — entry point: dispatch `moebench VERB ...` and
 * `moebench GROUP VERB ...` (e.g. `moebench data bpe-train`). */
#include <stdio.h>
#include <gsl/gsl_errno.h>
#include <string.h>

#include "moe/version.h"
#include "task.h"
#include "verbs.h"
#include "harness/matrix.h"

static const mb_verb verbs[] = {
    {NULL, "tasks", mb_verb_tasks, "list the tasks a matrix can run and their parameters"},
    {NULL, "expand", mb_verb_expand, "validate a matrix and print its cells with their ids"},
    {NULL, "run", mb_verb_run, "run the missing cells of a matrix (-j N, --shard I/N, --out DIR)"},
    {NULL, "status", mb_verb_status,
     "count a matrix's cells by result: ok, failed, missing, corrupt"},
    {NULL, "report", mb_verb_report, "tables, rate fits and plots from a results directory"},
    {NULL, "plan", mb_verb_plan,
     "replications and CPU a matrix's comparisons need, from a pilot run"},
    {NULL, "merge", mb_verb_merge, "join result directories of shards run elsewhere"},
    {NULL, "lm-eval", mb_verb_lm_eval,
     "score a saved language model on a token file: CE, perplexity, bits per byte"},
    {NULL, "slurm", mb_verb_slurm, "print a Slurm job-array script running a matrix in shards"},
    {"data", "images", mb_verb_data_images,
     "check an IDX image set: counts, classes, pixel stats, patches"},
    {"data", "bpe-train", mb_verb_data_bpe_train,
     "train the byte-level BPE on the SOTU train split"},
    {"data", "tokenize", mb_verb_data_tokenize,
     "SOTU splits, or any text files (--input), to token files"},
    {"data", "lm-corpus", mb_verb_data_lm_corpus,
     "the LM corpus: SOTU + Brown split by document, BPE, token files"},
    {"data", "tokinfo", mb_verb_data_tokinfo,
     "count, types and most frequent tokens of a token file"},
    {NULL, "gmoe-limit", mb_verb_gmoe_limit,
     "fit and print the misspecified limit G2 for Thm 4's loss D4"},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
  fprintf(f, "usage: moebench VERB [ARGS...]   (moebench VERB --help for details)\n\nverbs:\n");
  for (const mb_verb *v = verbs; v->name; v++) {
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", v->group ? v->group : "", v->group ? " " : "", v->name);
    fprintf(f, "  %-18s %s\n", name, v->summary);
  }
  fprintf(f, "\n  --version      print the version\n  --help         this text\n");
}

/* `moebench GROUP` alone, with --help, or with an unknown sub-verb. */
static int group_usage(const char *group, int argc, char **argv)
{
  int help = argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"));
  FILE *f = help ? stdout : stderr;
  if (argc >= 3 && !help)
    fprintf(f, "moebench %s: unknown sub-verb '%s'\n", group, argv[2]);
  fprintf(f,
          "usage: moebench %s SUB-VERB [ARGS...]   (moebench %s SUB-VERB --help for "
          "details)\n\nsub-verbs:\n",
          group, group);
  for (const mb_verb *v = verbs; v->name; v++)
    if (v->group && !strcmp(v->group, group))
      fprintf(f, "  %-13s %s\n", v->name, v->summary);
  return help ? 0 : 2;
}

int main(int argc, char **argv)
{
  /* GSL's default handler aborts; libmoe checks every GSL status itself
   * and returns error codes, so a failing GSL call must not end the run. */
  gsl_set_error_handler_off();
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("moebench %s (libmoe %s)\n", MOE_VERSION_STRING, moe_version());
    return 0;
  }
  for (const mb_verb *v = verbs; v->name; v++) {
    int at = v->group ? 3 : 2; /* `moebench VERB --version` for every verb */
    if (argc > at && !strcmp(argv[at], "--version") &&
        (v->group ? argc >= 3 && !strcmp(argv[1], v->group) && !strcmp(argv[2], v->name)
                  : !strcmp(argv[1], v->name))) {
      printf("moebench %s%s%s %s (libmoe %s)\n", v->group ? v->group : "", v->group ? " " : "",
             v->name, MOE_VERSION_STRING, moe_version());
      return 0;
    }
    if (v->group) {
      if (argc >= 3 && !strcmp(argv[1], v->group) && !strcmp(argv[2], v->name))
        return v->fn(argc - 2, argv + 2);
    } else if (!strcmp(argv[1], v->name)) {
      return v->fn(argc - 1, argv + 1);
    }
  }
  for (const mb_verb *v = verbs; v->name; v++)
    if (v->group && !strcmp(argv[1], v->group))
      return group_usage(v->group, argc, argv);
  fprintf(stderr, "moebench: unknown verb '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}

/* `moebench tasks`: what a matrix can ask for. Tasks that only test the
 * harness (selftest) are listed with --all, or when named. */
int mb_verb_tasks(int argc, char **argv)
{
  const char *name = NULL;
  int all = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: moebench tasks [--all] [NAME]\nList the tasks and their parameters (type, "
             "default, range).\n"
             "  --all   also the tasks that test the harness itself (selftest)\n");
      return 0;
    }
    if (!strcmp(argv[i], "--all") || !strcmp(argv[i], "-a"))
      all = 1;
    else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "moebench tasks: unknown option '%s'\n", argv[i]);
      return 2;
    } else if (!name)
      name = argv[i];
    else {
      fprintf(stderr, "moebench tasks: one task name at a time\n");
      return 2;
    }
  }
  if (name && !mb_task_find(name)) {
    const char *names[64];
    size_t nn = 0;
    for (const mb_task *const *t = mb_tasks; *t && nn < 64; t++)
      names[nn++] = (*t)->name;
    const char *dym = mb_did_you_mean(name, names, nn);
    fprintf(stderr, "moebench tasks: unknown task '%s'%s%s%s\n", name,
            dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
    return 2;
  }
  static const char *tn[] = {"int", "real", "string", "bool"};
  size_t hidden = 0;
  for (const mb_task *const *t = mb_tasks; *t; t++) {
    if (name && strcmp(name, (*t)->name))
      continue;
    if (!name && !all && mb_task_internal(*t)) {
      hidden++;
      continue;
    }
    printf("%s: %s\n", (*t)->name, (*t)->summary);
    for (const mb_param *p = (*t)->params; p->name; p++) {
      printf("  %-16s %-6s default=%s", p->name, tn[p->type], p->deflt ? p->deflt : "(required)");
      if ((p->type == MB_INT || p->type == MB_REAL) && p->min <= p->max)
        printf(" range=[%g, %g]", p->min, p->max);
      if (p->choices) {
        printf(" one of:");
        for (const char *const *c = p->choices; *c; c++)
          printf(" %s", *c);
      }
      printf("\n      %s\n", p->help ? p->help : "");
    }
    if ((*t)->metrics) {
      printf("  metrics:");
      for (const char *const *m = (*t)->metrics; *m; m++)
        printf(" %s", *m);
      printf("\n");
    }
  }
  if (hidden)
    printf("(%zu task%s that test%s the harness itself not shown: moebench tasks --all)\n", hidden,
           hidden > 1 ? "s" : "", hidden > 1 ? "" : "s");
  return 0;
}
