/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix.h — experiment matrices: parse (libyaml document API), validate
 * against the task's declaration, expand into cells with stable ids.
 *
 * Every problem found is reported as `file:line:col: message` before any
 * work starts; the format and its semantics are in moebench-matrix(5)
 * (doc/moebench-matrix.5), which this implements. */
#ifndef MB_MATRIX_H
#define MB_MATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "task.h"

typedef struct {
  int line, col;
} mb_mark; /* 1-based; line 0 = nowhere */

/* A key with one or more canonical values (an axis, a base entry, or one
 * key of an include/exclude map; in exclude a list means "any of"). */
typedef struct {
  char *key;
  mb_mark kat; /* where the key is */
  char **val;  /* canonical value text */
  mb_mark *at; /* where each value is */
  size_t n;
} mb_kvl;

typedef struct {
  mb_kvl *kv;
  size_t n;
  mb_mark at;
} mb_map;

enum {
  MB_S_MEAN,
  MB_S_SD,
  MB_S_SE,
  MB_S_CI95,
  MB_S_N,
  MB_S_MEDIAN,
  MB_S_MIN,
  MB_S_MAX,
  MB_S_TRMEAN,
  MB_S_COUNT
};
extern const char *const mb_stat_names[]; /* indexed by MB_S_*, NULL-terminated */

typedef struct {
  char *name;
  char **rows;
  size_t nrows;
  char **cols;
  size_t ncols;
  char *metric; /* a metric, or a family NAME@ (summarised at its last index) */
  int stats[MB_S_COUNT];
  size_t nstats;
  char *paired;        /* NULL, or a value of the single row key: summarise each
                          cell minus its baseline cell (same parameters and rep,
                          row key = paired) */
  int reach;           /* with paired and a family metric: the first index at
                          which the cell's family falls to or below the
                          baseline's last value, over the cell's last index */
  double power_effect; /* power: {effect: X}: the n that detects X (NaN: none) */
  char *family;        /* Holm family: tables of one name are adjusted together
                          (default: the table's own name) */
} mb_table;

/* sequential: replications added in rounds by `moebench run
 * --until-resolved` until every comparison of the named paired tables is
 * resolved (its confidence sequence excludes 0 or is at most half_width
 * wide on each side), or max_replications. */
typedef struct {
  int set;
  char **compare;
  size_t ncompare; /* paired table names */
  double half_width;
  long max_replications, round; /* round: replications added per round */
  mb_mark at;
} mb_sequential;

typedef struct {
  char **key, **val; /* by-keys (canonical) and label columns loss/paper/theory */
  size_t n;
} mb_ref;

/* claims: a statement about one comparison of a paired table (a row other
 * than the baseline, in one column group), which `moebench report`
 * resolves from the comparison's 95% paired interval: confirmed when it
 * lies on the expected side of 0 (expect ne0: excludes 0), refuted when it
 * lies on the other side, else unresolved. */
enum { MB_EXPECT_LT0, MB_EXPECT_GT0, MB_EXPECT_NE0 };
extern const char *const mb_expect_names[]; /* indexed by MB_EXPECT_*, NULL-terminated */
typedef struct {
  char *claim;   /* free text */
  char *table;   /* a paired table (without reach) */
  char *row;     /* a value of its row key (canonical), not the baseline */
  mb_ref column; /* one canonical value per column key of the table (n = 0: none) */
  int expect;    /* MB_EXPECT_* */
  mb_mark at;
} mb_claim;

typedef struct {
  char *name, *x, *y;
  char **by;
  size_t nby;
  long bootstrap;
  mb_ref *refs;
  size_t nrefs;
  int centers[3];
  size_t ncenters; /* moe_stats_center values (default: mean only) */
  char *exclude;   /* NULL or a metric: cells where it is non-zero are left out */
} mb_fit;

typedef struct {
  char *name, *x, *y; /* x "@": the index of the metric family y (NAME@) */
  char **by;
  size_t nby;
  int panels, logx, logy;
  int errorbars; /* MB_S_SD, MB_S_SE, MB_S_CI95, or -1 for none */
  char *fit;     /* NULL or the name of a fit */
  char *title, *xlabel, *ylabel;
  mb_ref *titles;
  size_t ntitles; /* per-panel/curve titles: by-keys select, label "title" */
} mb_plot;

/* One cell of the expansion. */
typedef struct {
  mb_cell *cell; /* every task parameter, canonical text */
  long rep;
  char reptext[24];
  char id[13];    /* first 12 hex digits of SHA-256(canonical text) */
  uint64_t seed;  /* moe_seed_derive(matrix seed, id) */
  mb_mark *where; /* per task parameter: where its value was set (line 0: default) */
} mb_xcell;

typedef struct {
  char *path;
  char *name, *description;
  const mb_task *task;
  mb_mark task_at;
  uint64_t seed;
  long replications;      /* expanded (see mb_matrix_set_replications) */
  long file_replications; /* as the file says */
  size_t nparams;
  mb_kvl *base;
  size_t nbase;
  mb_kvl *axes;
  size_t naxes;
  mb_map *include;
  size_t ninclude;
  mb_map *exclude;
  size_t nexclude;
  mb_table *tables;
  size_t ntables;
  mb_fit *fits;
  size_t nfits;
  mb_plot *plots;
  size_t nplots;
  char **summary;
  size_t nsummary; /* tables/fits for the terminal (report's brief.txt); none: default */
  mb_sequential sequential;
  mb_claim *claims;
  size_t nclaims;
  mb_xcell *cells;
  size_t ncells; /* in expansion order */
} mb_matrix;

/* Load, validate and expand. Returns 0 and *out on success; otherwise 2
 * (usage/validation: missing file, bad YAML, invalid matrix). Errors and
 * warnings are appended to msgs, one `file:line:col: message` per line,
 * sorted by position; warnings may be present on success too. */
int mb_matrix_load(const char *path, mb_matrix **out, mb_buf *msgs);
/* mb_matrix_load for the verbs: messages go to stderr; NULL on failure
 * with the exit status in *status (0 on success). */
mb_matrix *mb_matrix_load_stderr(const char *path, int *status);
void mb_matrix_free(mb_matrix *m);
/* Expand the matrices loaded from now on with at least n replications:
 * max(n, their `replications`) (0: their own). For the sequential runner
 * and for reports of a sequential run, whose replication count is the
 * run's, unless the file asks for more (raised after the run stopped);
 * cell ids do not depend on it. */
void mb_matrix_set_replications(long n);

/* The canonical text a cell id hashes: "task=T\n" then "key=value\n" for
 * every parameter sorted by key, then "rep=R\n". */
void mb_cell_canonical(const mb_cell *c, long rep, mb_buf *out);
void mb_cell_id(const mb_cell *c, long rep, char id[13]);

/* The cell as a task sees it in check() and run(): every parameter plus
 * "rep", the replication index (so a task can share data between the
 * cells of one replication), and "matrix_seed", the matrix's seed (not
 * part of the cell's id). Free with mb_cell_free. */
mb_cell *mb_xcell_task_cell(const mb_matrix *m, const mb_xcell *x);

/* Value of a parameter, or of "rep", in a cell (NULL if no such key). */
const char *mb_xcell_get(const mb_xcell *x, const char *key);

/* Cells of shard i of n (1 <= i <= n): sort the cells by id; the cell at
 * position p of that order belongs to shard (p mod n) + 1. Fills idx with
 * indices into m->cells (in expansion order) and returns their count.
 * idx must hold m->ncells entries. */
size_t mb_matrix_shard(const mb_matrix *m, int i, int n, size_t *idx);

/* Canonical text for value s of parameter p; 0 on success, else non-zero
 * with a reason in why. *out is malloc'd. */
int mb_param_canon(const mb_param *p, const char *s, char **out, char *why, size_t whylen);

/* Out of memory in the harness: a message naming the limits to check,
 * then exit status 1 (never a silent abort). bytes 0 = unknown. */
void mb_oom(size_t bytes)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;
/* The closest candidate to word within a small edit distance, or NULL. */
const char *mb_did_you_mean(const char *word, const char *const *cands, size_t n);

#endif
