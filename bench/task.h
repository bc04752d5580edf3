/* SPDX-License-Identifier: GPL-3.0-or-later */
/* task.h — the contract between the moebench harness and the tasks it runs.
 *
 * A task (the synthetic convergence study, the toy MoE regression, a
 * language-model run ...) declares its parameters with types, defaults and
 * ranges, the metrics it reports, and an optional cross-field check. The
 * harness validates every cell of a matrix against that declaration before
 * any work starts, resolves defaults, derives the cell's seed, and calls
 * run() once per cell. A task never reads files named by the matrix other
 * than through its parameters, keeps no global state, and is deterministic
 * given (cell, seed). */
#ifndef MB_TASK_H
#define MB_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { MB_INT, MB_REAL, MB_STR, MB_BOOL } mb_type;

typedef struct {
  const char *name; /* key in the matrix; NULL ends the list */
  mb_type type;
  const char *deflt;          /* default as text; NULL = required */
  double min, max;            /* inclusive range for MB_INT / MB_REAL (min > max: none) */
  const char *const *choices; /* NULL-terminated allowed values for MB_STR; NULL = any */
  const char *help;           /* one line for `moebench tasks` and the man page */
} mb_param;

/* A fully resolved cell: every parameter of its task has a value (text),
 * already validated against the declaration. The harness also sets "rep"
 * (the replication index, "0", "1", ...) in the cell it passes to check()
 * and run(); it is not a declared parameter. */
typedef struct mb_cell mb_cell;

const char *mb_cell_task(const mb_cell *c);
const char *mb_cell_str(const mb_cell *c, const char *key); /* NULL if absent */
long mb_cell_int(const mb_cell *c, const char *key);
double mb_cell_real(const mb_cell *c, const char *key);
int mb_cell_bool(const mb_cell *c, const char *key);

/* The replication index ("rep", 0 if absent) and the matrix's own seed
 * ("matrix_seed", which the harness sets like "rep"; 0 if absent): a task
 * whose random streams must not depend on every parameter of its cell
 * (e.g. training that must not change with evaluation settings, or common
 * random numbers across the variants of one replication) derives them from
 * these instead of the cell's seed. */
long mb_cell_rep(const mb_cell *c);
uint64_t mb_cell_matrix_seed(const mb_cell *c);
/* The first key a task asked for that the cell does not hold (a parameter
 * it did not declare: a misspelling in the task), or NULL. The harness
 * fails such a cell instead of letting the lookup read as 0. */
const char *mb_cell_undeclared(const mb_cell *c);
/* Threads a task may give one model (`moebench run --threads N`, passed
 * to the workers as MOEBENCH_THREADS): 1 when unset. Not a cell
 * parameter: results are bit-identical for every thread count, and a
 * parameter would enter every cell id. */
int mb_task_threads(void);

/* What a run reports: named scalar metrics and short text notes. */
typedef struct mb_result mb_result;

int mb_result_metric(mb_result *r, const char *name, double value);
int mb_result_note(mb_result *r, const char *key, const char *text);

#define MB_RUN_DIVERGED 2

typedef struct mb_task {
  const char *name; /* value of `task:` in a matrix */
  const char *summary;
  const mb_param *params;     /* terminated by an entry with name == NULL */
  const char *const *metrics; /* NULL-terminated names run() may report */
  /* Cross-field constraints (e.g. K <= E). Return 0 if fine; otherwise
   * write a message into err, set *bad_key to the offending parameter (so
   * the harness can point at its line in the YAML) and return non-zero.
   * May be NULL. */
  int (*check)(const mb_cell *c, const char **bad_key, char *err, size_t errlen);
  /* Run one cell. Return 0 on success; MB_RUN_DIVERGED when the
   * computation finished or stopped but its result cannot be trusted (a
   * diverged training run: non-finite or exploding loss), with the step
   * and cause in err: recorded with status "diverged" and the metrics so
   * far, never as "ok", and not rerun (it is deterministic); any other
   * non-zero value: failed, with a message in err. */
  int (*run)(const mb_cell *c, uint64_t seed, mb_result *r, char *err, size_t errlen);
} mb_task;

/* Every routing variant's name, in moe_variant order (bench/tasks/tasks.c). */
extern const char *const mb_variant_names[];

/* The registry (bench/tasks/tasks.c): NULL-terminated. */
extern const mb_task *const mb_tasks[];
const mb_task *mb_task_find(const char *name);
/* Non-zero for a task that only tests the harness (selftest). */
int mb_task_internal(const mb_task *t);

/* Record what data a run read: note "data_files" lists "NAME SHA256" for
 * each of paths[0..n) (NAME its last path component, in the order given)
 * and note "data_sha256" is the SHA-256 of that list, the fingerprint that
 * `report` and `merge` compare between cells. Returns 0, or non-zero with
 * a message naming the file in err. */
int mb_result_fingerprint(mb_result *r, const char *const *paths, size_t n, char *err,
                          size_t errlen);

/* The routing dump (`moebench run --dump-routing DIR`, passed to the
 * workers as MOEBENCH_DUMP_ROUTING; like the thread count not a cell
 * parameter, which would rename every cell): a text record of every
 * routing decision a task's router metrics are computed from, so that they
 * can be recomputed outside moebench (format: moebench(1), ROUTING DUMP).
 * mb_dump_open returns NULL when the dump is off (err "") or cannot be
 * opened (err says why); else a stream on DIR/TASK-SEED.routing.tmp
 * (SEED in 16 hex digits, as the lm task's checkpoints) holding the first
 * line "moebench-routing 1 TASK", its final name in path. mb_dump_close
 * closes it; with keep it renames it to path and records path in the note
 * "routing_dump", else it removes it. Returns 0, or -1 with err set (a
 * write error names the file). */
FILE *mb_dump_open(const char *task, uint64_t seed, char *path, size_t pathlen, char *err,
                   size_t errlen);
int mb_dump_close(FILE *f, const char *path, int keep, mb_result *r, char *err, size_t errlen);

/* Building cells and results (used by the harness and by tests). */
mb_cell *mb_cell_new(const char *task);
int mb_cell_set(mb_cell *c, const char *key, const char *value); /* replaces */
size_t mb_cell_size(const mb_cell *c);
const char *mb_cell_key_at(const mb_cell *c, size_t i); /* sorted by key */
const char *mb_cell_value_at(const mb_cell *c, size_t i);
mb_cell *mb_cell_copy(const mb_cell *c);      /* packed: one block, small */
size_t mb_cell_packed_size(const mb_cell *c); /* bytes of mb_cell_copy's block */
void mb_cell_free(mb_cell *c);

mb_result *mb_result_new(void);
size_t mb_result_size(const mb_result *r);
const char *mb_result_name_at(const mb_result *r, size_t i); /* in insertion order */
double mb_result_value_at(const mb_result *r, size_t i);
size_t mb_result_nnotes(const mb_result *r);
const char *mb_result_note_key_at(const mb_result *r, size_t i);
const char *mb_result_note_at(const mb_result *r, size_t i);
void mb_result_free(mb_result *r);

#endif
