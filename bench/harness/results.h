/* SPDX-License-Identifier: GPL-3.0-or-later */
/* results.h — the result store: one JSON file per cell,
 * <out>/<matrix name>/cells/<id>.json, written atomically (temp file in the
 * same directory, fsync, rename, fsync of the directory), plus the copy of
 * the matrix in <out>/<matrix name>/matrix.yaml. */
#ifndef MB_RESULTS_H
#define MB_RESULTS_H

#include <stddef.h>

#include "json.h"
#include "matrix.h"

#define MB_RESULT_FORMAT "moebench-result-1"

/* A result file read back. */
typedef struct {
  char id[13];
  int ok;       /* status "ok" */
  int diverged; /* status "diverged": ran, but the result cannot be trusted */
  char *error;  /* status "failed" or "diverged": the message */
  size_t nm;
  char **mname; /* metrics in file order */
  double *mval;
  mb_json *doc; /* the whole document */
} mb_rfile;

/* Read a result file. Returns 0 on success, -1 if it does not exist, 1 if
 * it is unreadable, malformed or truncated (message in err, naming the
 * file); a caller treats 1 as "missing" after reporting it. */
int mb_rfile_load(const char *path, mb_rfile *out, char *err, size_t errlen);
void mb_rfile_free(mb_rfile *r);
/* Value of a metric, or 0 if absent. */
int mb_rfile_metric(const mb_rfile *r, const char *name, double *v);

/* Write data to path atomically; 0 on success, else -1 with err set. */
int mb_write_atomic(const char *path, const char *data, size_t n, char *err, size_t errlen);
/* Remove temp files left in dir by dead processes of this host (temp files
 * of live processes and of other hosts are left alone). Returns how many. */
int mb_clean_temps(const char *dir);
/* mkdir -p; 0 or -1 with err. */
int mb_mkdirs(const char *path, char *err, size_t errlen);
/* Read a whole file (NUL-terminated); NULL on error. */
char *mb_read_file(const char *path, size_t *n);

/* The provenance JSON object (without BLAS thread count, which the worker
 * fills in after pinning). */
void mb_provenance(mb_buf *b, int blas_threads);

/* A warning if the BLAS picked kernels older than the CPU supports (e.g.
 * OpenBLAS's "Prescott" on an AVX2 machine: correct but several times
 * slower); NULL if the core looks right or cannot be judged. */
const char *mb_blas_core_warning(char *buf, size_t len);

/* moebench run --blas-core WANT ("auto" or a kernel name, e.g. SkylakeX):
 * when OpenBLAS runs other kernels than WANT (auto: kernels of an older
 * instruction set than this CPU's cpuid offers), re-execute the program
 * (/proc/self/exe, argv = "moebench" + the verb's argc/argv) once with
 * OPENBLAS_CORETYPE set, since OpenBLAS reads it only when it loads; an
 * environment mark stops a second re-execution. In the process that runs
 * on them, results then record core_source "auto" or "option". Returns 0
 * to go on, 2 (message printed) when WANT cannot be had, 1 when a forced
 * name could not be re-executed for. Does not return on re-execution. */
int mb_blas_core_select(const char *want, int quiet, int argc, char **argv);

/* Who chose the kernels OpenBLAS runs: "auto" or "option" (after
 * mb_blas_core_select re-executed for them), "env" (OPENBLAS_CORETYPE)
 * or "detected"; what results record as core_source. */
const char *mb_blas_core_source(void);

/* Compose the JSON of one cell's result. */
void mb_result_json(mb_buf *b, const mb_matrix *m, const mb_xcell *x, const char *status,
                    const char *error, const mb_result *r, const char *started, double wall_s,
                    double cpu_s, const char *provenance);

/* Paths: <out>/<name>, <out>/<name>/cells, <out>/<name>/cells/<id>.json */
void mb_path_cell(char *buf, size_t len, const char *out, const char *name, const char *id);

#endif
