/* SPDX-License-Identifier: GPL-3.0-or-later */
/* run.c — `moebench expand`, `run`, `merge` and `slurm`: turning a matrix
 * into result files, resumably and in parallel.
 *
 * Every cell runs in its own fork()ed worker with BLAS pinned to one
 * thread, and its seed comes from the matrix seed and the cell id, so a
 * cell's metrics are the same bits whatever -j, --shard or the order. A
 * worker writes its result with temp file + fsync + rename, so a killed run
 * leaves finished cells complete and in-flight ones absent; a rerun skips
 * every cell whose file says "ok". */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "matrix.h"
#include "moe/version.h"
#include "results.h"
#include "verbs.h"

static int want_help(int argc, char **argv, const char *usage)
{
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage, stdout); return 1; }
    if (!strcmp(argv[i], "--version")) {
      printf("moebench %s %s (libmoe %s)\n", argv[0], MOE_VERSION_STRING, moe_version());
      return 1;
    }
  }
  return 0;
}

/* "-j N", "-jN", "--jobs N", "--jobs=N" style options: the value or NULL. */
static const char *optval(int argc, char **argv, int *i, const char *s, const char *l)
{
  const char *a = argv[*i];
  size_t ls = s ? strlen(s) : 0, ll = strlen(l);
  if ((s && !strcmp(a, s)) || !strcmp(a, l)) {
    if (*i + 1 >= argc) return "";
    return argv[++*i];
  }
  if (s && !strncmp(a, s, ls) && a[ls] && s[1] != '-') return a + ls;
  if (!strncmp(a, l, ll) && a[ll] == '=') return a + ll + 1;
  return NULL;
}

static int parse_shard(const char *s, int *i, int *n)
{
  char *end;
  long a = strtol(s, &end, 10);
  if (end == s || *end != '/') return 0;
  const char *q = end + 1;
  long b = strtol(q, &end, 10);
  if (end == q || *end || b < 1 || a < 1 || a > b || b > 1000000) return 0;
  *i = (int)a;
  *n = (int)b;
  return 1;
}

static int parse_pos(const char *s, long max, long *v)
{
  char *end;
  long x = strtol(s, &end, 10);
  if (!*s || *end || x < 1 || x > max) return 0;
  *v = x;
  return 1;
}

/* Files a matrix names (e.g. the synthetic task's limit_file) are found
 * relative to the matrix's own directory: tasks read it from
 * MOEBENCH_MATRIX_DIR, which forked workers inherit. */
static void export_matrix_dir(const char *path)
{
  char *abs = realpath(path, NULL);
  if (!abs) return;
  char *slash = strrchr(abs, '/');
  if (slash) {
    *slash = 0;
    setenv("MOEBENCH_MATRIX_DIR", *abs ? abs : "/", 1);
  }
  free(abs);
}

static mb_matrix *load_or_report(const char *path, int *status)
{
  export_matrix_dir(path);
  return mb_matrix_load_stderr(path, status);
}

/* ---- expand ---- */

static const char expand_usage[] =
  "usage: moebench expand FILE [--ids | --canonical | --name] [--shard I/N]\n"
  "Validate the matrix FILE and print every cell with its stable id, in\n"
  "expansion order: `ID  rep=R  key=value ...` (all parameters, sorted).\n"
  "  --ids         print only the ids\n"
  "  --canonical   print the canonical text each id hashes\n"
  "  --name        print only the matrix name (its results go to OUT/NAME)\n"
  "  --shard I/N   only the cells of shard I of N (see moebench(1))\n"
  "Exit status: 0 valid, 2 usage or validation error.\n";

int mb_verb_expand(int argc, char **argv)
{
  if (want_help(argc, argv, expand_usage)) return 0;
  const char *file = NULL, *v;
  int ids = 0, canon = 0, name = 0, si = 1, sn = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ids")) ids = 1;
    else if (!strcmp(argv[i], "--name")) name = 1;
    else if (!strcmp(argv[i], "--canonical")) canon = 1;
    else if ((v = optval(argc, argv, &i, NULL, "--shard"))) {
      if (!parse_shard(v, &si, &sn)) { fprintf(stderr, "moebench expand: bad --shard '%s' (want I/N, 1 <= I <= N)\n", v); return 2; }
    } else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "moebench expand: unknown option '%s'\n%s", argv[i], expand_usage); return 2; }
    else if (!file) file = argv[i];
    else { fprintf(stderr, "moebench expand: one matrix file at a time\n"); return 2; }
  }
  if (!file) { fputs(expand_usage, stderr); return 2; }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m) return st;
  if (name) {
    printf("%s\n", m->name);
    mb_matrix_free(m);
    return 0;
  }
  size_t *idx = malloc((m->ncells ? m->ncells : 1) * sizeof *idx);
  if (!idx) return 1;
  size_t n = mb_matrix_shard(m, si, sn, idx);
  if (!ids)
    printf("# %s: %zu cells (task %s, seed %llu, %ld replications)%s\n", m->name, n, m->task->name,
           (unsigned long long)m->seed, m->replications, sn > 1 ? " in this shard" : "");
  for (size_t k = 0; k < n; k++) {
    const mb_xcell *x = &m->cells[idx[k]];
    if (ids) { printf("%s\n", x->id); continue; }
    if (canon) {
      mb_buf b;
      mb_buf_init(&b);
      mb_cell_canonical(x->cell, x->rep, &b);
      printf("%s\n%s\n", x->id, b.s);
      mb_buf_free(&b);
      continue;
    }
    printf("%s  rep=%ld ", x->id, x->rep);
    for (size_t i = 0; i < mb_cell_size(x->cell); i++)
      printf(" %s=%s", mb_cell_key_at(x->cell, i), mb_cell_value_at(x->cell, i));
    printf("\n");
  }
  free(idx);
  mb_matrix_free(m);
  return 0;
}

/* ---- run ---- */

static int is_dir(const char *p)
{
  struct stat s;
  return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static volatile sig_atomic_t stop_signal;
static void on_stop(int sig) { stop_signal = sig; }

static double now_s(clockid_t clk)
{
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The worker: run one cell, write its result, exit 0 (ok), 1 (failed,
 * recorded) or 3 (could not write the result). A worker dies with its
 * parent (Linux: PR_SET_PDEATHSIG), so a killed run leaves no orphans
 * computing cells nobody will collect; the getppid check covers a parent
 * that died between fork and prctl. */
static void worker(const mb_matrix *m, const mb_xcell *x, const char *out, const char *prov, pid_t parent)
{
#ifdef HAVE_SYS_PRCTL_H
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != parent) _exit(4);
#endif
  (void)parent;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  moe_blas_set_threads(1);
  char errmsg[1024] = "", started[32], path[4096];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
  mb_result *r = mb_result_new();
  if (!r) _exit(3);
  double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
  mb_cell *cell = mb_xcell_task_cell(x);
  int rc = m->task->run(cell, x->seed, r, errmsg, sizeof errmsg);
  mb_cell_free(cell);
  double wall = now_s(CLOCK_MONOTONIC) - w0, cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  if (rc && !errmsg[0]) snprintf(errmsg, sizeof errmsg, "task returned %d without a message", rc);
  mb_buf b;
  mb_buf_init(&b);
  mb_result_json(&b, m, x, rc == 0, errmsg, r, started, wall, cpu, prov);
  mb_path_cell(path, sizeof path, out, m->name, x->id);
  char werr[4600];
  if (b.oom || mb_write_atomic(path, b.s, b.n, werr, sizeof werr)) {
    fprintf(stderr, "moebench: %s: computed (%s) but cannot write the result: %s\n", x->id,
            rc ? "failed" : "ok", b.oom ? "out of memory" : werr);
    _exit(3);
  }
  _exit(rc ? 1 : 0);
}

typedef struct {
  pid_t pid;
  size_t cell;
  double t0;
} slot;

static const char run_usage[] =
  "usage: moebench run FILE [-j N] [--threads N] [--shard I/N] [--out DIR] [-q]\n"
  "Run every cell of the matrix FILE that has no \"ok\" result yet, writing\n"
  "DIR/NAME/cells/ID.json (default DIR: results) and DIR/NAME/matrix.yaml.\n"
  "  -j, --jobs N    run N cells at a time, each in its own process (default 1)\n"
  "  --threads N     threads inside each lm and vision cell's model (default 1;\n"
  "                  the same bits for every N; -j J uses J x N threads)\n"
  "  --shard I/N     run only shard I of N (cells sorted by id, position mod N)\n"
  "  --out DIR       results root (default: results)\n"
  "  -q, --quiet     no per-cell log lines / progress line\n"
  "Exit status: 0 all cells of the selection ok, 1 some failed (or could not\n"
  "be written), 2 usage or validation error, 128+SIG when interrupted.\n";

int mb_verb_run(int argc, char **argv)
{
  if (want_help(argc, argv, run_usage)) return 0;
  const char *file = NULL, *out = "results", *v;
  long jobs = 1, threads = 1;
  int si = 1, sn = 1, quiet = 0;
  for (int i = 1; i < argc; i++) {
    if ((v = optval(argc, argv, &i, "-j", "--jobs"))) {
      if (!parse_pos(v, 4096, &jobs)) { fprintf(stderr, "moebench run: bad -j '%s' (want 1..4096)\n", v); return 2; }
    } else if ((v = optval(argc, argv, &i, NULL, "--threads"))) {
      if (!parse_pos(v, 1024, &threads)) { fprintf(stderr, "moebench run: bad --threads '%s' (want 1..1024)\n", v); return 2; }
    } else if ((v = optval(argc, argv, &i, NULL, "--shard"))) {
      if (!parse_shard(v, &si, &sn)) { fprintf(stderr, "moebench run: bad --shard '%s' (want I/N, 1 <= I <= N)\n", v); return 2; }
    } else if ((v = optval(argc, argv, &i, NULL, "--out"))) {
      if (!*v) { fprintf(stderr, "moebench run: --out needs a directory\n"); return 2; }
      out = v;
    } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = 1;
    else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "moebench run: unknown option '%s'\n%s", argv[i], run_usage); return 2; }
    else if (!file) file = argv[i];
    else { fprintf(stderr, "moebench run: one matrix file at a time\n"); return 2; }
  }
  if (!file) { fputs(run_usage, stderr); return 2; }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m) return st;

  char dir[4096], cells[4200], path[4400], err[5000];
  snprintf(dir, sizeof dir, "%s/%s", out, m->name);
  snprintf(cells, sizeof cells, "%s/cells", dir);
  if (!is_dir(cells) && mb_mkdirs(cells, err, sizeof err)) { fprintf(stderr, "moebench run: %s\n", err); mb_matrix_free(m); return 1; }
  size_t flen, olen;
  char *src = mb_read_file(file, &flen);
  snprintf(path, sizeof path, "%s/matrix.yaml", dir);
  /* an identical stored matrix is left alone: a finished run can be
   * checked again in a read-only directory */
  char *old = src ? mb_read_file(path, &olen) : NULL;
  int same = old && olen == flen && !memcmp(old, src, flen);
  free(old);
  if (!src || (!same && mb_write_atomic(path, src, flen, err, sizeof err))) {
    fprintf(stderr, "moebench run: cannot store the matrix in %s: %s\n", path, src ? err : "read error");
    free(src); mb_matrix_free(m);
    return 1;
  }
  free(src);
  int cleaned = mb_clean_temps(cells);
  if (cleaned && !quiet) fprintf(stderr, "moebench: removed %d temp file(s) left by killed runs\n", cleaned);

  size_t *sel = malloc((m->ncells ? m->ncells : 1) * sizeof *sel);
  size_t *todo = malloc((m->ncells ? m->ncells : 1) * sizeof *todo);
  if (!sel || !todo) { mb_matrix_free(m); return 1; }
  size_t nsel = mb_matrix_shard(m, si, sn, sel), ntodo = 0, skipped = 0, nfail = 0, nok = 0, corrupt = 0;
  for (size_t k = 0; k < nsel; k++) {
    mb_rfile rf;
    mb_path_cell(path, sizeof path, out, m->name, m->cells[sel[k]].id);
    int r = mb_rfile_load(path, &rf, err, sizeof err);
    if (r == 1) { fprintf(stderr, "moebench: corrupt result, will rerun: %s\n", err); corrupt++; }
    if (r == 0 && rf.ok && !strcmp(rf.id, m->cells[sel[k]].id)) skipped++;
    else todo[ntodo++] = sel[k];
    mb_rfile_free(&rf);
  }

  /* Pin BLAS to one thread here so the workers inherit it, and in the
   * environment for anything a task might exec. */
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("OMP_NUM_THREADS", "1", 1);
  setenv("GOTO_NUM_THREADS", "1", 1);
  char thr[32];
  snprintf(thr, sizeof thr, "%ld", threads);
  setenv("MOEBENCH_THREADS", thr, 1); /* the models' own threads (mb_task_threads) */
  moe_blas_set_threads(1);
  mb_buf prov;
  mb_buf_init(&prov);
  mb_provenance(&prov, moe_blas_threads());
  char bw[400];
  if (!quiet && mb_blas_core_warning(bw, sizeof bw)) fprintf(stderr, "moebench: warning: %s\n", bw);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  int tty = !quiet && isatty(2);
  if (!quiet)
    fprintf(stderr, "moebench: %s: %zu cells%s, %zu already done, %zu to run with -j %ld -> %s\n", m->name, nsel,
            sn > 1 ? " in this shard" : "", skipped, ntodo, jobs, cells);
  slot *run = calloc((size_t)jobs, sizeof *run);
  size_t next = 0, running = 0, done = 0;
  int fork_failed = 0;
  size_t write_failed = 0;   /* cells computed but not stored: stop starting new ones */
  pid_t self = getpid();
  double tstart = now_s(CLOCK_MONOTONIC), busy = 0;
  while ((next < ntodo && !stop_signal && !fork_failed && !write_failed) || running > 0) {
    while (!stop_signal && !fork_failed && !write_failed && next < ntodo && running < (size_t)jobs) {
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) { fprintf(stderr, "moebench: fork: %s: not starting more cells\n", strerror(errno)); fork_failed = 1; break; }
      if (pid == 0) worker(m, &m->cells[todo[next]], out, prov.s, self);
      for (long s = 0; s < jobs; s++)
        if (!run[s].pid) { run[s].pid = pid; run[s].cell = todo[next]; run[s].t0 = now_s(CLOCK_MONOTONIC); break; }
      next++;
      running++;
    }
    int ws;
    pid_t pid = waitpid(-1, &ws, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        if (stop_signal)
          for (long s = 0; s < jobs; s++) if (run[s].pid) kill(run[s].pid, SIGTERM);
        continue;
      }
      break;
    }
    long s = 0;
    while (s < jobs && run[s].pid != pid) s++;
    if (s == jobs) continue;
    const mb_xcell *x = &m->cells[run[s].cell];
    double dt = now_s(CLOCK_MONOTONIC) - run[s].t0;
    run[s].pid = 0;
    running--;
    busy += dt;
    const char *what = "ok";
    char msg[1200] = "";
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) nok++;
    else if (WIFSIGNALED(ws) && stop_signal) { what = "interrupted"; }
    else {
      nfail++;
      what = "FAILED";
      mb_path_cell(path, sizeof path, out, m->name, x->id);
      if (WIFEXITED(ws) && WEXITSTATUS(ws) == 1) {
        mb_rfile rf;
        if (mb_rfile_load(path, &rf, err, sizeof err) == 0 && rf.error) snprintf(msg, sizeof msg, ": %s", rf.error);
        mb_rfile_free(&rf);
      } else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 3) {
        snprintf(msg, sizeof msg, ": result not written");
        write_failed++;
      } else {
        /* the worker died without recording anything: record it here */
        char why[200];
        if (WIFSIGNALED(ws)) snprintf(why, sizeof why, "worker killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
        else snprintf(why, sizeof why, "worker exited with status %d", WEXITSTATUS(ws));
        mb_buf b;
        mb_buf_init(&b);
        mb_result_json(&b, m, x, 0, why, NULL, "", dt, 0, prov.s);
        if (mb_write_atomic(path, b.s, b.n, err, sizeof err)) { fprintf(stderr, "moebench: %s\n", err); write_failed++; }
        mb_buf_free(&b);
        snprintf(msg, sizeof msg, ": %s", why);
      }
    }
    done++;
    if (quiet) continue;
    if (tty) {
      double el = now_s(CLOCK_MONOTONIC) - tstart;
      double eta = done ? el / (double)done * (double)(ntodo - done) : 0;
      if (strcmp(what, "ok")) fprintf(stderr, "\r\033[K%s %s%s\n", x->id, what, msg);
      fprintf(stderr, "\r\033[K[%zu/%zu] %zu failed, %zu running, ETA %ld:%02ld", done, ntodo, nfail, running,
              (long)eta / 60, (long)eta % 60);
    } else {
      fprintf(stderr, "moebench: [%zu/%zu] %s %s (%.2f s)%s\n", done, ntodo, x->id, what, dt, msg);
    }
  }
  if (tty) fprintf(stderr, "\n");
  int removed = mb_clean_temps(cells);
  free(run);
  int rc = 0;
  if (stop_signal) {
    fprintf(stderr, "moebench: interrupted by signal %d: %zu cells done, %zu not started or in flight%s\n",
            (int)stop_signal, nok + nfail, ntodo - nok - nfail, removed ? " (temp files removed)" : "");
    rc = 128 + stop_signal;
  } else {
    if (!quiet)
      fprintf(stderr, "moebench: %s: %zu ran ok, %zu failed, %zu skipped (already ok), %.2f s (%.2f s in cells)\n",
              m->name, nok, nfail, skipped, now_s(CLOCK_MONOTONIC) - tstart, busy);
    rc = nfail || fork_failed || write_failed ? 1 : 0;
  }
  if (write_failed && !stop_signal)
    fprintf(stderr, "moebench: %s: %zu result(s) could not be written (disk full or I/O error?): stopped after the "
            "cells in flight; %zu cell(s) not started; free space and rerun to continue\n", m->name, write_failed,
            ntodo - next);
  (void)corrupt;
  mb_buf_free(&prov);
  free(sel);
  free(todo);
  mb_matrix_free(m);
  return rc;
}

/* ---- status ---- */

static const char status_usage[] =
  "usage: moebench status FILE [--out DIR] [--shard I/N] [-v]\n"
  "Count the cells of the matrix FILE (or of one shard) by the state of\n"
  "their result under DIR/NAME/cells (default DIR: results): ok, failed,\n"
  "missing, corrupt; list the failed ones with their errors (-v: also the\n"
  "missing and corrupt ones).\n"
  "Exit status: 0 every cell ok, 1 some are not, 2 usage or validation error.\n";

int mb_verb_status(int argc, char **argv)
{
  if (want_help(argc, argv, status_usage)) return 0;
  const char *file = NULL, *out = "results", *v;
  int si = 1, sn = 1, verbose = 0;
  for (int i = 1; i < argc; i++) {
    if ((v = optval(argc, argv, &i, NULL, "--shard"))) {
      if (!parse_shard(v, &si, &sn)) { fprintf(stderr, "moebench status: bad --shard '%s' (want I/N, 1 <= I <= N)\n", v); return 2; }
    } else if ((v = optval(argc, argv, &i, NULL, "--out"))) {
      if (!*v) { fprintf(stderr, "moebench status: --out needs a directory\n"); return 2; }
      out = v;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) verbose = 1;
    else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "moebench status: unknown option '%s'\n%s", argv[i], status_usage); return 2; }
    else if (!file) file = argv[i];
    else { fprintf(stderr, "moebench status: one matrix file at a time\n"); return 2; }
  }
  if (!file) { fputs(status_usage, stderr); return 2; }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m) return st;
  /* a results root that does not exist is a mistake (a typo in --out),
   * not a run whose every cell is missing */
  if (!is_dir(out)) {
    fprintf(stderr, "moebench status: %s: %s\n", out, access(out, F_OK) ? "no such directory (nothing was run into it)" : "not a directory");
    mb_matrix_free(m);
    return 2;
  }
  size_t *sel = malloc((m->ncells ? m->ncells : 1) * sizeof *sel);
  if (!sel) { mb_matrix_free(m); return 1; }
  size_t nsel = mb_matrix_shard(m, si, sn, sel), n[4] = {0, 0, 0, 0};   /* ok, failed, missing, corrupt */
  char path[4400], err[5000];
  for (size_t k = 0; k < nsel; k++) {
    const mb_xcell *x = &m->cells[sel[k]];
    mb_rfile rf;
    mb_path_cell(path, sizeof path, out, m->name, x->id);
    int r = mb_rfile_load(path, &rf, err, sizeof err);
    if (r == 0 && strcmp(rf.id, x->id)) { r = 1; snprintf(err, sizeof err, "%s: holds id %s", path, rf.id); }
    if (r == 0 && rf.ok) n[0]++;
    else if (r == 0) { n[1]++; printf("failed   %s  %s\n", x->id, rf.error ? rf.error : ""); }
    else if (r < 0) { n[2]++; if (verbose) printf("missing  %s\n", x->id); }
    else { n[3]++; if (verbose) printf("corrupt  %s  %s\n", x->id, err); }
    mb_rfile_free(&rf);
  }
  printf("%s: %zu cells%s: %zu ok, %zu failed, %zu missing, %zu corrupt\n", m->name, nsel,
         sn > 1 ? " in this shard" : "", n[0], n[1], n[2], n[3]);
  free(sel);
  mb_matrix_free(m);
  return n[0] == nsel ? 0 : 1;
}

/* ---- merge ---- */

static const char merge_usage[] =
  "usage: moebench merge OUT DIR...\n"
  "Join result directories (each a results root holding NAME/cells/, or one\n"
  "NAME directory itself) into the results root OUT. Identical duplicates are\n"
  "fine; an ok result replaces a failed one; two ok results of one cell with\n"
  "different metrics are a conflict: reported, the one already in OUT kept.\n"
  "Corrupt files are reported and skipped.\n"
  "Exit status: 0 merged, 1 conflicts or I/O errors, 2 usage error.\n";

static int same_metrics(const mb_rfile *a, const mb_rfile *b)
{
  if (a->nm != b->nm) return 0;
  for (size_t i = 0; i < a->nm; i++)
    if (strcmp(a->mname[i], b->mname[i]) || memcmp(&a->mval[i], &b->mval[i], sizeof(double))) return 0;
  return 1;
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
  size_t n;
  char *s = mb_read_file(from, &n);
  if (!s) { snprintf(err, errlen, "%s: cannot read", from); return -1; }
  int r = mb_write_atomic(to, s, n, err, errlen);
  free(s);
  return r;
}

static int merge_one(const char *src, const char *name, const char *out, size_t *stats)
{
  char od[4096], oc[4200], p[4400], q[4400], err[5000];
  int bad = 0;
  snprintf(od, sizeof od, "%s/%s", out, name);
  snprintf(oc, sizeof oc, "%s/cells", od);
  if (mb_mkdirs(oc, err, sizeof err)) { fprintf(stderr, "moebench merge: %s\n", err); return 1; }
  snprintf(p, sizeof p, "%s/matrix.yaml", src);
  snprintf(q, sizeof q, "%s/matrix.yaml", od);
  size_t na, nb;
  char *a = mb_read_file(p, &na), *b = mb_read_file(q, &nb);
  if (a && !b) { if (mb_write_atomic(q, a, na, err, sizeof err)) { fprintf(stderr, "moebench merge: %s\n", err); bad = 1; } }
  else if (a && b && (na != nb || memcmp(a, b, na)))
    fprintf(stderr, "moebench merge: warning: %s differs from %s (keeping the latter)\n", p, q);
  free(a);
  free(b);
  snprintf(p, sizeof p, "%s/cells", src);
  DIR *d = opendir(p);
  if (!d) { fprintf(stderr, "moebench merge: %s: %s\n", p, strerror(errno)); return 1; }
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t L = strlen(e->d_name);
    if (e->d_name[0] == '.' || L < 6 || strcmp(e->d_name + L - 5, ".json")) continue;
    char from[4700], to[4700];
    snprintf(from, sizeof from, "%s/%s", p, e->d_name);
    snprintf(to, sizeof to, "%s/%s", oc, e->d_name);
    struct stat s1, s2;
    if (stat(from, &s1) == 0 && stat(to, &s2) == 0 && s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino) { stats[1]++; continue; }
    mb_rfile rs, rd;
    if (mb_rfile_load(from, &rs, err, sizeof err)) {
      fprintf(stderr, "moebench merge: skipping corrupt result: %s\n", err);
      stats[3]++;
      continue;
    }
    int dr = mb_rfile_load(to, &rd, err, sizeof err);
    if (dr == 1) fprintf(stderr, "moebench merge: replacing corrupt result: %s\n", err);
    int copy = 0;
    if (dr != 0) copy = 1;
    else if (!rd.ok && rs.ok) copy = 1;
    else if (rd.ok && rs.ok && !same_metrics(&rd, &rs)) {
      fprintf(stderr, "moebench merge: conflict: %s and %s are both ok but their metrics differ (keeping %s)\n",
              from, to, to);
      stats[2]++;
      bad = 1;
    } else stats[1]++;
    if (copy) {
      if (copy_file(from, to, err, sizeof err)) { fprintf(stderr, "moebench merge: %s\n", err); bad = 1; }
      else stats[0]++;
    }
    mb_rfile_free(&rs);
    mb_rfile_free(&rd);
  }
  closedir(d);
  return bad;
}

int mb_verb_merge(int argc, char **argv)
{
  if (want_help(argc, argv, merge_usage)) return 0;
  for (int i = 1; i < argc; i++)
    if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "moebench merge: unknown option '%s'\n%s", argv[i], merge_usage); return 2; }
  if (argc < 3) { fputs(merge_usage, stderr); return 2; }
  const char *out = argv[1];
  size_t stats[4] = {0, 0, 0, 0};  /* copied, identical/kept, conflicts, corrupt */
  int bad = 0, found = 0;
  for (int i = 2; i < argc; i++) {
    char p[4200];
    if (!is_dir(argv[i])) { fprintf(stderr, "moebench merge: %s: not a directory\n", argv[i]); bad = 1; continue; }
    snprintf(p, sizeof p, "%s/cells", argv[i]);
    if (is_dir(p)) {   /* a NAME directory */
      char tmp[4096];
      snprintf(tmp, sizeof tmp, "%s", argv[i]);
      size_t L = strlen(tmp);
      while (L > 1 && tmp[L - 1] == '/') tmp[--L] = 0;
      const char *name = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
      bad |= merge_one(argv[i], name, out, stats);
      found++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char sub[4600];
      snprintf(sub, sizeof sub, "%s/%s/cells", argv[i], e->d_name);
      if (!is_dir(sub)) continue;
      snprintf(sub, sizeof sub, "%s/%s", argv[i], e->d_name);
      bad |= merge_one(sub, e->d_name, out, stats);
      found++;
    }
    if (d) closedir(d);
  }
  if (!found) { fprintf(stderr, "moebench merge: no result directories (NAME/cells/) found\n"); return 1; }
  fprintf(stderr, "moebench merge: %zu copied, %zu already present, %zu conflicts, %zu corrupt skipped\n",
          stats[0], stats[1], stats[2], stats[3]);
  return bad ? 1 : 0;
}

/* ---- slurm ---- */

static const char slurm_usage[] =
  "usage: moebench slurm FILE [--shards N] [--out DIR] [-j N] [--moebench PATH]\n"
  "Validate FILE and print a Slurm batch script whose job array runs shard\n"
  "$SLURM_ARRAY_TASK_ID of N with `moebench run`, all writing to DIR (a shared\n"
  "file system; otherwise join the per-node directories with moebench merge).\n"
  "  --shards N       array size (default 10, at most the number of cells)\n"
  "  --out DIR        results root (default: results, made absolute)\n"
  "  -j N             cells at a time within a task (default 1; sets --cpus-per-task)\n"
  "  --moebench PATH  the program to run (default: moebench on PATH)\n"
  "Submit with: moebench slurm M.yaml --shards 20 > job.sh && sbatch job.sh\n";

static void sh_quote(const char *s)
{
  putchar('\'');
  for (; *s; s++) {
    if (*s == '\'') fputs("'\\''", stdout);
    else putchar(*s);
  }
  putchar('\'');
}

int mb_verb_slurm(int argc, char **argv)
{
  if (want_help(argc, argv, slurm_usage)) return 0;
  const char *file = NULL, *out = "results", *prog = "moebench", *v;
  long shards = 10, jobs = 1;
  for (int i = 1; i < argc; i++) {
    if ((v = optval(argc, argv, &i, NULL, "--shards"))) {
      if (!parse_pos(v, 1000000, &shards)) { fprintf(stderr, "moebench slurm: bad --shards '%s'\n", v); return 2; }
    } else if ((v = optval(argc, argv, &i, "-j", "--jobs"))) {
      if (!parse_pos(v, 4096, &jobs)) { fprintf(stderr, "moebench slurm: bad -j '%s'\n", v); return 2; }
    } else if ((v = optval(argc, argv, &i, NULL, "--out"))) out = v;
    else if ((v = optval(argc, argv, &i, NULL, "--moebench"))) prog = v;
    else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "moebench slurm: unknown option '%s'\n%s", argv[i], slurm_usage); return 2; }
    else if (!file) file = argv[i];
    else { fprintf(stderr, "moebench slurm: one matrix file at a time\n"); return 2; }
  }
  if (!file || !*out) { fputs(slurm_usage, stderr); return 2; }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m) return st;
  if ((size_t)shards > m->ncells) shards = (long)m->ncells;
  char absfile[8300], absout[8300], cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
  if (file[0] == '/') snprintf(absfile, sizeof absfile, "%s", file);
  else snprintf(absfile, sizeof absfile, "%s/%s", cwd, file);
  if (out[0] == '/') snprintf(absout, sizeof absout, "%s", out);
  else snprintf(absout, sizeof absout, "%s/%s", cwd, out);
  printf("#!/bin/sh\n");
  printf("# moebench %s: %zu cells of matrix '%s' in %ld shards (see moebench(1)).\n", MOE_VERSION_STRING,
         m->ncells, m->name, shards);
  printf("#SBATCH --job-name=moebench-%s\n", m->name);
  printf("#SBATCH --array=1-%ld\n", shards);
  printf("#SBATCH --cpus-per-task=%ld\n", jobs);
  printf("#SBATCH --output=moebench-%s-%%A_%%a.log\n", m->name);
  printf("set -eu\n");
  printf("export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1\n");
  printf("exec ");
  sh_quote(prog);
  printf(" run ");
  sh_quote(absfile);
  printf(" --shard \"${SLURM_ARRAY_TASK_ID}/%ld\" --out ", shards);
  sh_quote(absout);
  printf(" -j %ld\n", jobs);
  mb_matrix_free(m);
  return 0;
}
