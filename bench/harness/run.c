/* SPDX-License-Identifier: GPL-3.0-or-later */
/* run.c — `moebench expand`, `run`, `merge` and `slurm`: turning a matrix
 * into result files, resumably and in parallel.
 *
 * Every cell runs in its own fork()ed worker with BLAS pinned to one
 * thread, and its seed comes from the matrix seed and the cell id, so a
 * cell's metrics are the same bits whatever -j, --shard or the order. A
 * worker writes its result with temp file + fsync + rename, so a killed run
 * leaves finished cells complete and in-flight ones absent; a rerun skips
 * every cell whose file says "ok".  Runs sharing one --out claim each cell
 * with flock() on cells/.ID.lock before computing it (the kernel drops the
 * lock when the claimant dies, even by kill -9), so no cell is computed
 * twice. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
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
    if (!strcmp(argv[i], "--"))
      break;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 1;
    }
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
    if (*i + 1 >= argc)
      return "";
    return argv[++*i];
  }
  if (s && !strncmp(a, s, ls) && a[ls] && s[1] != '-')
    return a + ls;
  if (!strncmp(a, l, ll) && a[ll] == '=')
    return a + ll + 1;
  return NULL;
}

static int parse_shard(const char *s, int *i, int *n)
{
  char *end;
  long a = strtol(s, &end, 10);
  if (end == s || *end != '/')
    return 0;
  const char *q = end + 1;
  long b = strtol(q, &end, 10);
  if (end == q || *end || b < 1 || a < 1 || a > b || b > 1000000)
    return 0;
  *i = (int)a;
  *n = (int)b;
  return 1;
}

static int parse_pos(const char *s, long max, long *v)
{
  char *end;
  long x = strtol(s, &end, 10);
  if (!*s || *end || x < 1 || x > max)
    return 0;
  *v = x;
  return 1;
}

/* Files a matrix names (e.g. the synthetic task's limit_file) are found
 * relative to the matrix's own directory: tasks read it from
 * MOEBENCH_MATRIX_DIR, which forked workers inherit. */
static void export_matrix_dir(const char *path)
{
  char *abs = realpath(path, NULL);
  if (!abs)
    return;
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
  if (want_help(argc, argv, expand_usage))
    return 0;
  const char *file = NULL, *v;
  int ids = 0, canon = 0, name = 0, si = 1, sn = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ids"))
      ids = 1;
    else if (!strcmp(argv[i], "--name"))
      name = 1;
    else if (!strcmp(argv[i], "--canonical"))
      canon = 1;
    else if ((v = optval(argc, argv, &i, NULL, "--shard"))) {
      if (!parse_shard(v, &si, &sn)) {
        fprintf(stderr, "moebench expand: bad --shard '%s' (want I/N, 1 <= I <= N)\n", v);
        return 2;
      }
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "moebench expand: unknown option '%s'\n%s", argv[i], expand_usage);
      return 2;
    } else if (!file)
      file = argv[i];
    else {
      fprintf(stderr, "moebench expand: one matrix file at a time\n");
      return 2;
    }
  }
  if (!file) {
    fputs(expand_usage, stderr);
    return 2;
  }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m)
    return st;
  if (name) {
    printf("%s\n", m->name);
    mb_matrix_free(m);
    return 0;
  }
  size_t *idx = malloc((m->ncells ? m->ncells : 1) * sizeof *idx);
  if (!idx)
    return 1;
  size_t n = mb_matrix_shard(m, si, sn, idx);
  if (!ids)
    printf("# %s: %zu cells (task %s, seed %llu, %ld replications)%s\n", m->name, n, m->task->name,
           (unsigned long long)m->seed, m->replications, sn > 1 ? " in this shard" : "");
  for (size_t k = 0; k < n; k++) {
    const mb_xcell *x = &m->cells[idx[k]];
    if (ids) {
      printf("%s\n", x->id);
      continue;
    }
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
 * recorded), 2 (diverged, recorded) or 3 (could not write the result). A worker dies with its
 * parent (Linux: PR_SET_PDEATHSIG), so a killed run leaves no orphans
 * computing cells nobody will collect; the getppid check covers a parent
 * that died between fork and prctl. */
static void worker(const mb_matrix *m, const mb_xcell *x, const char *out, const char *prov,
                   pid_t parent, const int *other_locks, long nother)
{
#ifdef HAVE_SYS_PRCTL_H
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != parent)
    _exit(4);
#endif
  (void)parent;
  /* the claims of the cells in flight in other workers stay with them */
  for (long i = 0; i < nother; i++)
    if (other_locks[i] >= 0)
      close(other_locks[i]);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  moe_blas_set_threads(1);
  char errmsg[1024] = "", started[32], path[4096];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
  mb_result *r = mb_result_new();
  if (!r)
    _exit(3);
  double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
  mb_cell *cell = mb_xcell_task_cell(m, x);
  int rc = m->task->run(cell, x->seed, r, errmsg, sizeof errmsg);
  if (rc != 1 && mb_cell_undeclared(cell)) {
    snprintf(errmsg, sizeof errmsg,
             "task '%s' read parameter '%s', which it does not declare (a bug in the task)",
             m->task->name, mb_cell_undeclared(cell));
    rc = 1;
  }
  mb_cell_free(cell);
  double wall = now_s(CLOCK_MONOTONIC) - w0, cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  if (rc && !errmsg[0])
    snprintf(errmsg, sizeof errmsg, "task returned %d without a message", rc);
  const char *status = rc == 0 ? "ok" : rc == MB_RUN_DIVERGED ? "diverged" : "failed";
  mb_buf b;
  mb_buf_init(&b);
  mb_result_json(&b, m, x, status, errmsg, r, started, wall, cpu, prov);
  mb_path_cell(path, sizeof path, out, m->name, x->id);
  char werr[4600];
  if (b.oom || mb_write_atomic(path, b.s, b.n, werr, sizeof werr)) {
    fprintf(stderr, "moebench: %s: computed (%s) but cannot write the result: %s\n", x->id, status,
            b.oom ? "out of memory" : werr);
    _exit(3);
  }
  _exit(rc == 0 ? 0 : rc == MB_RUN_DIVERGED ? 2 : 1);
}

typedef struct {
  pid_t pid;
  size_t cell;
  double t0;
  int lock; /* the claim's fd, -1 if none */
} slot;

/* --until-resolved: the rounds are sequential.c's, each an ordinary run. */
static int until_resolved(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--until-resolved"))
      return 1;
  return 0;
}

/* The YAML key path of the line starting at b + at, from the indentation
 * of the lines before it: a stack of (indent, key), popped to the line's
 * indentation ("axes.lr"). Approximate (flow maps are not entered), but
 * enough to point at the place. */
static void key_path(const char *b, size_t at, char *path, size_t plen)
{
  enum { DEPTH = 32 };
  size_t ind[DEPTH], ko[DEPTH], kl[DEPTH];
  int n = 0;
  for (size_t ls = 0; ls <= at;) {
    size_t le = ls;
    while (b[le] && b[le] != '\n')
      le++;
    size_t k = ls;
    while (k < le && b[k] == ' ')
      k++;
    if (k < le && b[k] == '-') {
      k++;
      while (k < le && b[k] == ' ')
        k++;
    }
    size_t c = k;
    while (c < le && b[c] != ':' && b[c] != ' ' && b[c] != '#' && b[c] != '[' && b[c] != '{')
      c++;
    if (k < le && (b[k] != '#' ||
                   ls == at)) { /* a comment: its indentation closes keys only if it is the line */
      while (n > 0 && ind[n - 1] >= k - ls)
        n--;
      if (c < le && b[c] == ':' && c > k && n < DEPTH) {
        ind[n] = k - ls;
        ko[n] = k;
        kl[n] = c - k;
        n++;
      }
    }
    if (ls == at)
      break;
    ls = le + 1;
  }
  path[0] = 0;
  for (int i = 0; i < n; i++) {
    size_t L = strlen(path);
    snprintf(path + L, plen - L, "%s%.*s", L ? "." : "", (int)kl[i], b + ko[i]);
  }
}

/* The first line where the stored matrix a and the given one b (a
 * NUL-terminated file) differ: "line 7 (axes.lr): stored 'lr: [0.1]',
 * given 'lr: [0.2]'". */
static void first_difference(const char *a, size_t na, const char *b, size_t nb, char *out,
                             size_t outlen)
{
  size_t ia = 0, ib = 0, line = 1;
  for (;;) {
    size_t ea = ia, eb = ib;
    while (ea < na && a[ea] != '\n')
      ea++;
    while (eb < nb && b[eb] != '\n')
      eb++;
    int enda = ia >= na, endb = ib >= nb;
    if (enda && endb) {
      snprintf(out, outlen, "the end of the file (line endings or NUL bytes)");
      return;
    }
    if (enda || endb || ea - ia != eb - ib || memcmp(a + ia, b + ib, ea - ia)) {
      char path[256] = "";
      if (!endb)
        key_path(b, ib, path, sizeof path);
      int wa = enda ? 0 : (int)(ea - ia > 60 ? 60 : ea - ia),
          wb = endb ? 0 : (int)(eb - ib > 60 ? 60 : eb - ib);
      snprintf(out, outlen, "line %zu%s%s%s: stored %s%.*s%s, given %s%.*s%s", line,
               path[0] ? " (" : "", path, path[0] ? ")" : "", enda ? "(end of file)" : "'", wa,
               enda ? "" : a + ia, enda ? "" : "'", endb ? "(end of file)" : "'", wb,
               endb ? "" : b + ib, endb ? "" : "'");
      return;
    }
    ia = ea + 1;
    ib = eb + 1;
    line++;
  }
}

/* Claim a cell for this run: flock(LOCK_EX | LOCK_NB) on cells/.ID.lock.
 * Returns the fd (>= 0: claimed; keep it open while the cell runs), -1
 * when another run holds the claim, -2 when no lock file can be made (a
 * read-only directory: run without a claim, as before). */
static int claim_cell(const char *cells, const char *id)
{
  char lp[4400];
  snprintf(lp, sizeof lp, "%s/.%s.lock", cells, id);
  for (int attempt = 0; attempt < 8; attempt++) {
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return -2;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
      int e = errno;
      close(fd);
      return e == EWOULDBLOCK ? -1 : -2;
    }
    /* the claimant before us may have unlinked the file between our open
     * and our flock: then this lock guards nothing, try the new file */
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(lp, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
      return fd;
    close(fd);
  }
  return -1;
}

/* Drop a claim: the result is written (or the cell given up), so the lock
 * file goes first, then the lock; whoever claims the id later re-reads
 * the result. */
static void release_cell(const char *cells, const char *id, int fd)
{
  if (fd < 0)
    return;
  char lp[4400];
  snprintf(lp, sizeof lp, "%s/.%s.lock", cells, id);
  unlink(lp);
  close(fd);
}

/* Can results be written in dir? 0 if so, else the errno of a probe file
 * (EROFS, EACCES, ENOSPC ...), so a read-only directory is not blamed on
 * the disk. */
static int write_probe(const char *dir)
{
  char p[4400];
  snprintf(p, sizeof p, "%s/.probe.%ld", dir, (long)getpid());
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  int e = write(fd, "x", 1) == 1 ? 0 : errno;
  close(fd);
  unlink(p);
  return e;
}

/* The inode of a cell's result file (0: none), to see whether another run
 * wrote it since the scan. */
static ino_t result_ino(const char *path)
{
  struct stat sb;
  return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

/* --reuse-from DIR: a cell with no result here takes an ok (or diverged)
 * result of the same id from DIR/cells/ID.json or DIR/SUB/cells/ID.json
 * (DIR a results root or one matrix's directory, such as another matrix of
 * the archive that shares cells with this one: the id hashes every
 * parameter and the seed, so the same id is the same computation, the same
 * bits). The file is copied byte for byte, provenance and `matrix` field
 * included. 1 copied, 0 none found, -1 found but not stored (err). */
static int reuse_try(const char *cand, const char *id, const char *dest, char *err, size_t errlen)
{
  struct stat st;
  if (stat(cand, &st) || !S_ISREG(st.st_mode))
    return 0;
  mb_rfile rf;
  char e2[600];
  int r = mb_rfile_load(cand, &rf, e2, sizeof e2), use = 0;
  if (r == 0) {
    use = (rf.ok || rf.diverged) && !strcmp(rf.id, id);
    mb_rfile_free(&rf);
  }
  if (!use)
    return 0;
  size_t n;
  char *b = mb_read_file(cand, &n);
  if (!b) {
    snprintf(err, errlen, "cannot read %s", cand);
    return -1;
  }
  int w = mb_write_atomic(dest, b, n, err, errlen);
  free(b);
  return w ? -1 : 1;
}

static int reuse_cell(char *const *from, int nfrom, const char *id, const char *dest, char *err,
                      size_t errlen)
{
  char cand[4600];
  for (int f = 0; f < nfrom; f++) {
    snprintf(cand, sizeof cand, "%s/cells/%s.json", from[f], id);
    int r = reuse_try(cand, id, dest, err, errlen);
    if (r)
      return r;
    DIR *d = opendir(from[f]);
    if (!d)
      continue;
    struct dirent *e;
    /* readdir's order: any copy will do, they are the same computation */
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.')
        continue;
      snprintf(cand, sizeof cand, "%s/%s/cells/%s.json", from[f], e->d_name, id);
      if (!strcmp(cand, dest))
        continue;
      r = reuse_try(cand, id, dest, err, errlen);
      if (r) {
        closedir(d);
        return r;
      }
    }
    closedir(d);
  }
  return 0;
}

static const char run_usage[] =
    "usage: moebench run FILE [-j N] [--threads N] [--shard I/N] [--out DIR] [--replace] [-q] "
    "[--until-resolved]\n"
    "         [--blas-core auto|NAME] [--reuse-from SRC]...\n"
    "Run every cell of the matrix FILE that has no \"ok\" result yet, writing\n"
    "DIR/NAME/cells/ID.json (default DIR: results) and DIR/NAME/matrix.yaml.\n"
    "Runs sharing DIR split the work: each cell is claimed by one of them.\n"
    "Missing cells run replication by replication (whole replications first).\n"
    "  -j, --jobs N    run N cells at a time, each in its own process (default 1)\n"
    "  --threads N     threads inside each lm and vision cell's model (default 1;\n"
    "                  the same bits for every N; -j J uses J x N threads)\n"
    "  --shard I/N     run only shard I of N (cells sorted by id, position mod N)\n"
    "  --out DIR       results root (default: results)\n"
    "  --blas-core auto  if OpenBLAS runs kernels older than this CPU's (its\n"
    "                  detection, or OPENBLAS_CORETYPE), re-execute once with\n"
    "                  OPENBLAS_CORETYPE naming the kernels for this CPU: faster,\n"
    "                  but not the bits of a machine that runs other kernels;\n"
    "                  results record core_source \"auto\" (default: leave it)\n"
    "  --blas-core NAME  run OpenBLAS's NAME kernels (e.g. Haswell, SkylakeX),\n"
    "                  re-executing if need be; core_source \"option\"\n"
    "  --replace       DIR/NAME/matrix.yaml may differ from FILE: replace it (the\n"
    "                  results of the old matrix then drop out of `report`)\n"
    "  --reuse-from SRC  (repeatable) a cell with no result in DIR takes a copy of\n"
    "                  an ok or diverged result with its id from SRC/cells/ or\n"
    "                  SRC/*/cells/ (another results root or matrix directory, e.g.\n"
    "                  a pilot sharing cells with this matrix), instead of rerunning\n"
    "  --save-models DIR  tasks that train a model save it in DIR (lm: lm-SEED.ckpt,\n"
    "                  named in the result's note `checkpoint`; see moebench lm-eval)\n"
    "  --dump-routing DIR  lm and vision cells write every routing decision their\n"
    "                  router metrics come from to DIR/TASK-SEED.routing (named in\n"
    "                  the result's note `routing_dump`; format in moebench(1))\n"
    "  -q, --quiet     no per-cell log lines / progress line; a long run prints\n"
    "                  one line of progress a minute at most\n"
    "  --until-resolved  add replications in rounds, as the matrix's `sequential:`\n"
    "                  says, until its comparisons are resolved (anytime-valid\n"
    "                  confidence sequences; decisions in DIR/NAME/sequential.json)\n"
    "A cell whose task reports an untrustworthy result (a diverged training run)\n"
    "is recorded with status \"diverged\" and its cause, never as ok, and is\n"
    "not rerun.\n"
    "Exit status: 0 every cell of the selection ok or diverged (recorded), 1 some\n"
    "failed (or could not be written), 2 usage or validation error, 128+SIG when\n"
    "interrupted.\n";

/* --blas-core's value (NULL if absent; "" if it has none) and -q, found
 * before anything else is done: the process may be re-executed for it. */
static const char *blas_core_arg(int argc, char **argv, int *quiet)
{
  const char *want = NULL, *v;
  *quiet = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--"))
      break;
    if ((v = optval(argc, argv, &i, NULL, "--blas-core")))
      want = v;
    else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
      *quiet = 1;
  }
  return want;
}

/* A kernel name as OpenBLAS spells them (SkylakeX, Opteron_SSE3), or auto */
static int blas_core_name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 31)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return 0;
  return 1;
}

int mb_verb_run(int argc, char **argv)
{
  if (want_help(argc, argv, run_usage))
    return 0;
  int bq;
  const char *bc = blas_core_arg(argc, argv, &bq);
  if (bc) {
    if (!blas_core_name_ok(bc)) {
      fprintf(stderr,
              "moebench run: bad --blas-core '%s' (want auto or a kernel name such as SkylakeX)\n",
              bc);
      return 2;
    }
    int r = mb_blas_core_select(bc, bq, argc, argv);
    if (r)
      return r;
  }
  if (until_resolved(argc, argv))
    return mb_run_until_resolved(argc, argv);
  const char *file = NULL, *out = "results", *v;
  long jobs = 1, threads = 1;
  int si = 1, sn = 1, quiet = 0, replace = 0, nfrom = 0;
  char *from[16];
  for (int i = 1; i < argc; i++) {
    if ((v = optval(argc, argv, &i, "-j", "--jobs"))) {
      if (!parse_pos(v, 4096, &jobs)) {
        fprintf(stderr, "moebench run: bad -j '%s' (want 1..4096)\n", v);
        return 2;
      }
    } else if ((v = optval(argc, argv, &i, NULL, "--threads"))) {
      if (!parse_pos(v, 1024, &threads)) {
        fprintf(stderr, "moebench run: bad --threads '%s' (want 1..1024)\n", v);
        return 2;
      }
    } else if ((v = optval(argc, argv, &i, NULL, "--blas-core"))) {
      /* done above, before anything else */
    } else if (!strcmp(argv[i], "--replace")) {
      replace = 1;
    } else if ((v = optval(argc, argv, &i, NULL, "--reuse-from"))) {
      if (!*v || !is_dir(v)) {
        fprintf(stderr, "moebench run: --reuse-from: '%s' is not a directory\n", v);
        return 2;
      }
      if (nfrom == (int)(sizeof from / sizeof *from)) {
        fprintf(stderr, "moebench run: at most %d --reuse-from\n", nfrom);
        return 2;
      }
      from[nfrom++] = (char *)v;
    } else if ((v = optval(argc, argv, &i, NULL, "--save-models"))) {
      char e[4200];
      if (!*v) {
        fprintf(stderr, "moebench run: --save-models needs a directory\n");
        return 2;
      }
      if (mb_mkdirs(v, e, sizeof e)) {
        fprintf(stderr, "moebench run: --save-models: %s\n", e);
        return 1;
      }
      setenv("MOEBENCH_SAVE_MODELS", v, 1);
    } else if ((v = optval(argc, argv, &i, NULL, "--dump-routing"))) {
      char e[4200];
      if (!*v) {
        fprintf(stderr, "moebench run: --dump-routing needs a directory\n");
        return 2;
      }
      if (mb_mkdirs(v, e, sizeof e)) {
        fprintf(stderr, "moebench run: --dump-routing: %s\n", e);
        return 1;
      }
      setenv("MOEBENCH_DUMP_ROUTING", v, 1); /* not a cell parameter: it would rename every cell */
    } else if ((v = optval(argc, argv, &i, NULL, "--shard"))) {
      if (!parse_shard(v, &si, &sn)) {
        fprintf(stderr, "moebench run: bad --shard '%s' (want I/N, 1 <= I <= N)\n", v);
        return 2;
      }
    } else if ((v = optval(argc, argv, &i, NULL, "--out"))) {
      if (!*v) {
        fprintf(stderr, "moebench run: --out needs a directory\n");
        return 2;
      }
      out = v;
    } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
      quiet = 1;
    else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "moebench run: unknown option '%s'\n%s", argv[i], run_usage);
      return 2;
    } else if (!file)
      file = argv[i];
    else {
      fprintf(stderr, "moebench run: one matrix file at a time\n");
      return 2;
    }
  }
  if (!file) {
    fputs(run_usage, stderr);
    return 2;
  }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m)
    return st;

  char dir[4096], cells[4200], path[4400], err[5000];
  snprintf(dir, sizeof dir, "%s/%s", out, m->name);
  snprintf(cells, sizeof cells, "%s/cells", dir);
  if (!is_dir(cells) && mb_mkdirs(cells, err, sizeof err)) {
    fprintf(stderr, "moebench run: %s\n", err);
    mb_matrix_free(m);
    return 1;
  }
  size_t flen, olen;
  char *src = mb_read_file(file, &flen);
  snprintf(path, sizeof path, "%s/matrix.yaml", dir);
  /* an identical stored matrix is left alone: a finished run can be
   * checked again in a read-only directory */
  char *old = src ? mb_read_file(path, &olen) : NULL;
  int same = old && olen == flen && !memcmp(old, src, flen);
  if (old && !same && !replace) {
    char diff[400];
    first_difference(old, olen, src, flen, diff, sizeof diff);
    fprintf(
        stderr,
        "moebench run: %s holds another matrix than %s (first difference at %s); its results would "
        "drop out of `report`: use another --out, or --replace to replace it\n",
        path, file, diff);
    free(old);
    free(src);
    mb_matrix_free(m);
    return 2;
  }
  free(old);
  if (!src || (!same && mb_write_atomic(path, src, flen, err, sizeof err))) {
    fprintf(stderr, "moebench run: cannot store the matrix in %s: %s\n", path,
            src ? err : "read error");
    free(src);
    mb_matrix_free(m);
    return 1;
  }
  free(src);
  int cleaned = mb_clean_temps(cells);
  if (cleaned && !quiet)
    fprintf(stderr, "moebench: removed %d temp file(s) left by killed runs\n", cleaned);

  size_t *sel = malloc((m->ncells ? m->ncells : 1) * sizeof *sel);
  size_t *todo = malloc((m->ncells ? m->ncells : 1) * sizeof *todo);
  ino_t *seen =
      malloc((m->ncells ? m->ncells : 1) * sizeof *seen); /* (todo) result inode at the scan */
  if (!sel || !todo || !seen) {
    fprintf(stderr, "moebench run: out of memory for %zu cells\n", m->ncells);
    free(sel);
    free(todo);
    free(seen);
    mb_matrix_free(m);
    return 1;
  }
  size_t nsel = mb_matrix_shard(m, si, sn, sel), ntodo = 0, skipped = 0, nfail = 0, nok = 0,
         ndiv = 0, corrupt = 0, reused = 0;
  /* Replication by replication (stable: the matrix's order within one):
   * a run stopped part-way leaves whole replications, every variant of
   * them paired, not every replication of the first variants. */
  for (size_t a = 1; a < nsel; a++) {
    const size_t c = sel[a];
    size_t b = a;
    for (; b > 0 && m->cells[sel[b - 1]].rep > m->cells[c].rep; b--)
      sel[b] = sel[b - 1];
    sel[b] = c;
  }
  for (size_t k = 0; k < nsel; k++) {
    mb_rfile rf;
    mb_path_cell(path, sizeof path, out, m->name, m->cells[sel[k]].id);
    int r = mb_rfile_load(path, &rf, err, sizeof err);
    if (r == 1) {
      fprintf(stderr, "moebench: corrupt result, will rerun: %s\n", err);
      corrupt++;
    }
    int have = r == 0 && (rf.ok || rf.diverged) && !strcmp(rf.id, m->cells[sel[k]].id);
    if (!have && nfrom) {
      int u = reuse_cell(from, nfrom, m->cells[sel[k]].id, path, err, sizeof err);
      if (u < 0)
        fprintf(stderr, "moebench run: --reuse-from: %s (the cell will run)\n", err);
      have = u > 0;
      reused += have;
    }
    if (have)
      skipped++;
    else {
      seen[ntodo] = result_ino(path);
      todo[ntodo++] = sel[k];
    }
    mb_rfile_free(&rf);
  }
  int werr = ntodo ? write_probe(cells) : 0;
  if (werr) {
    fprintf(stderr,
            "moebench run: %s: %zu cell(s) to run, but results cannot be written there: %s\n",
            cells, ntodo, strerror(werr));
    free(sel);
    free(todo);
    free(seen);
    mb_matrix_free(m);
    return 1;
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
  if (!quiet && mb_blas_core_warning(bw, sizeof bw))
    fprintf(stderr, "moebench: warning: %s\n", bw);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  int tty = !quiet && isatty(2);
  if (!quiet && reused)
    fprintf(stderr, "moebench: %s: %zu result(s) of the same cells copied from --reuse-from\n",
            m->name, reused);
  if (!quiet)
    fprintf(stderr, "moebench: %s: %zu cells%s, %zu already done, %zu to run with -j %ld -> %s\n",
            m->name, nsel, sn > 1 ? " in this shard" : "", skipped, ntodo, jobs, cells);
  slot *run = calloc((size_t)jobs, sizeof *run);
  size_t next = 0, running = 0, done = 0,
         elsewhere = 0; /* elsewhere: claimed or done by another run */
  int *locks = malloc((size_t)jobs * sizeof *locks);
  if (!run || !locks) {
    fprintf(stderr, "moebench run: out of memory\n");
    free(run);
    free(locks);
    return 1;
  }
  int fork_failed = 0;
  size_t write_failed = 0; /* cells computed but not stored: stop starting new ones */
  pid_t self = getpid();
  double tstart = now_s(CLOCK_MONOTONIC), busy = 0, last_beat = tstart;
  const char *be =
      getenv("MOEBENCH_PROGRESS_EVERY"); /* seconds between quiet progress lines (tests) */
  const double beat_every = be && atof(be) > 0 ? atof(be) : 60;
  while ((next < ntodo && !stop_signal && !fork_failed && !write_failed) || running > 0) {
    while (!stop_signal && !fork_failed && !write_failed && next < ntodo &&
           running < (size_t)jobs) {
      const mb_xcell *xc = &m->cells[todo[next]];
      int lock = claim_cell(cells, xc->id);
      mb_path_cell(path, sizeof path, out, m->name, xc->id);
      if (lock == -1 || (result_ino(path) != seen[next] && result_ino(path) != 0)) {
        /* another run has it in flight, or wrote its result since the scan */
        if (lock >= 0)
          release_cell(cells, xc->id, lock);
        elsewhere++;
        done++;
        next++;
        continue;
      }
      long nl = 0;
      for (long s = 0; s < jobs; s++)
        if (run[s].pid)
          locks[nl++] = run[s].lock;
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) {
        fprintf(stderr, "moebench: fork: %s: not starting more cells\n", strerror(errno));
        release_cell(cells, xc->id, lock);
        fork_failed = 1;
        break;
      }
      if (pid == 0)
        worker(m, xc, out, prov.s, self, locks, nl);
      for (long s = 0; s < jobs; s++)
        if (!run[s].pid) {
          run[s].pid = pid;
          run[s].cell = todo[next];
          run[s].t0 = now_s(CLOCK_MONOTONIC);
          run[s].lock = lock;
          break;
        }
      next++;
      running++;
    }
    int ws;
    pid_t pid = waitpid(-1, &ws, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        if (stop_signal)
          for (long s = 0; s < jobs; s++)
            if (run[s].pid)
              kill(run[s].pid, SIGTERM);
        continue;
      }
      break;
    }
    long s = 0;
    while (s < jobs && run[s].pid != pid)
      s++;
    if (s == jobs)
      continue;
    const mb_xcell *x = &m->cells[run[s].cell];
    double dt = now_s(CLOCK_MONOTONIC) - run[s].t0;
    const int lock = run[s].lock;
    run[s].pid = 0;
    running--;
    busy += dt;
    const char *what = "ok";
    char msg[1200] = "";
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
      nok++;
    else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 2) {
      ndiv++;
      what = "DIVERGED";
      mb_rfile rf;
      mb_path_cell(path, sizeof path, out, m->name, x->id);
      if (mb_rfile_load(path, &rf, err, sizeof err) == 0 && rf.error)
        snprintf(msg, sizeof msg, ": %s", rf.error);
      mb_rfile_free(&rf);
    } else if (WIFSIGNALED(ws) && stop_signal) {
      what = "interrupted";
    } else {
      nfail++;
      what = "FAILED";
      mb_path_cell(path, sizeof path, out, m->name, x->id);
      if (WIFEXITED(ws) && WEXITSTATUS(ws) == 1) {
        mb_rfile rf;
        if (mb_rfile_load(path, &rf, err, sizeof err) == 0 && rf.error)
          snprintf(msg, sizeof msg, ": %s", rf.error);
        mb_rfile_free(&rf);
      } else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 3) {
        snprintf(msg, sizeof msg, ": result not written");
        write_failed++;
      } else {
        /* the worker died without recording anything: record it here */
        char why[200];
        if (WIFSIGNALED(ws))
          snprintf(why, sizeof why, "worker killed by signal %d (%s)", WTERMSIG(ws),
                   strsignal(WTERMSIG(ws)));
        else
          snprintf(why, sizeof why, "worker exited with status %d", WEXITSTATUS(ws));
        mb_buf b;
        mb_buf_init(&b);
        mb_result_json(&b, m, x, "failed", why, NULL, "", dt, 0, prov.s);
        if (mb_write_atomic(path, b.s, b.n, err, sizeof err)) {
          fprintf(stderr, "moebench: %s\n", err);
          write_failed++;
        }
        mb_buf_free(&b);
        snprintf(msg, sizeof msg, ": %s", why);
      }
    }
    release_cell(cells, x->id, lock);
    done++;
    if (quiet) {
      /* a long quiet run still shows it is alive: a line a minute at most */
      double t = now_s(CLOCK_MONOTONIC);
      if (t - last_beat >= beat_every && done < ntodo) {
        double eta = (t - tstart) / (double)done * (double)(ntodo - done);
        fprintf(stderr, "moebench: %s: [%zu/%zu] %zu failed, %zu running, ETA %ld:%02ld\n", m->name,
                done, ntodo, nfail, running, (long)eta / 60, (long)eta % 60);
        last_beat = t;
      }
      continue;
    }
    if (tty) {
      double el = now_s(CLOCK_MONOTONIC) - tstart;
      double eta = done ? el / (double)done * (double)(ntodo - done) : 0;
      if (strcmp(what, "ok"))
        fprintf(stderr, "\r\033[K%s %s%s\n", x->id, what, msg);
      fprintf(stderr, "\r\033[K[%zu/%zu] %zu failed, %zu running, ETA %ld:%02ld", done, ntodo,
              nfail, running, (long)eta / 60, (long)eta % 60);
    } else {
      fprintf(stderr, "moebench: [%zu/%zu] %s %s (%.2f s)%s\n", done, ntodo, x->id, what, dt, msg);
    }
  }
  if (tty)
    fprintf(stderr, "\n");
  int removed = mb_clean_temps(cells);
  free(run);
  free(locks);
  int rc = 0;
  if (stop_signal) {
    fprintf(stderr,
            "moebench: interrupted by signal %d: %zu cells done, %zu not started or in flight%s\n",
            (int)stop_signal, nok + ndiv + nfail, ntodo - nok - ndiv - nfail - elsewhere,
            removed ? " (temp files removed)" : "");
    rc = 128 + stop_signal;
  } else {
    if (!quiet) {
      char also[80] = "";
      if (elsewhere)
        snprintf(also, sizeof also, ", %zu taken by another run", elsewhere);
      fprintf(stderr,
              "moebench: %s: %zu ran ok, %zu diverged, %zu failed, %zu skipped (already done)%s, "
              "%.2f s (%.2f s in cells)\n",
              m->name, nok, ndiv, nfail, skipped, also, now_s(CLOCK_MONOTONIC) - tstart, busy);
    }
    rc = nfail || fork_failed || write_failed ? 1 : 0;
  }
  if (write_failed && !stop_signal) {
    int e = write_probe(cells);
    fprintf(stderr,
            "moebench: %s: %zu result(s) could not be written (%s): stopped after the cells in "
            "flight; %zu "
            "cell(s) not started; %s and rerun to continue\n",
            m->name, write_failed, e ? strerror(e) : "disk full or I/O error?", ntodo - next,
            e == ENOSPC || e == EDQUOT || !e ? "free space" : "make the directory writable");
  }
  (void)corrupt;
  mb_buf_free(&prov);
  free(sel);
  free(todo);
  free(seen);
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
  if (want_help(argc, argv, status_usage))
    return 0;
  const char *file = NULL, *out = "results", *v;
  int si = 1, sn = 1, verbose = 0;
  for (int i = 1; i < argc; i++) {
    if ((v = optval(argc, argv, &i, NULL, "--shard"))) {
      if (!parse_shard(v, &si, &sn)) {
        fprintf(stderr, "moebench status: bad --shard '%s' (want I/N, 1 <= I <= N)\n", v);
        return 2;
      }
    } else if ((v = optval(argc, argv, &i, NULL, "--out"))) {
      if (!*v) {
        fprintf(stderr, "moebench status: --out needs a directory\n");
        return 2;
      }
      out = v;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
      verbose = 1;
    else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "moebench status: unknown option '%s'\n%s", argv[i], status_usage);
      return 2;
    } else if (!file)
      file = argv[i];
    else {
      fprintf(stderr, "moebench status: one matrix file at a time\n");
      return 2;
    }
  }
  if (!file) {
    fputs(status_usage, stderr);
    return 2;
  }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m)
    return st;
  /* a results root that does not exist is a mistake (a typo in --out),
   * not a run whose every cell is missing */
  if (!is_dir(out)) {
    fprintf(stderr, "moebench status: %s: %s\n", out,
            access(out, F_OK) ? "no such directory (nothing was run into it)" : "not a directory");
    mb_matrix_free(m);
    return 2;
  }
  size_t *sel = malloc((m->ncells ? m->ncells : 1) * sizeof *sel);
  if (!sel) {
    mb_matrix_free(m);
    return 1;
  }
  size_t nsel = mb_matrix_shard(m, si, sn, sel),
         n[5] = {0, 0, 0, 0, 0}; /* ok, failed, missing, corrupt, diverged */
  char path[4400], err[5000];
  for (size_t k = 0; k < nsel; k++) {
    const mb_xcell *x = &m->cells[sel[k]];
    mb_rfile rf;
    mb_path_cell(path, sizeof path, out, m->name, x->id);
    int r = mb_rfile_load(path, &rf, err, sizeof err);
    if (r == 0 && strcmp(rf.id, x->id)) {
      r = 1;
      snprintf(err, sizeof err, "%s: holds id %s", path, rf.id);
    }
    if (r == 0 && rf.ok)
      n[0]++;
    else if (r == 0 && rf.diverged) {
      n[4]++;
      printf("diverged %s  %s\n", x->id, rf.error ? rf.error : "");
    } else if (r == 0) {
      n[1]++;
      printf("failed   %s  %s\n", x->id, rf.error ? rf.error : "");
    } else if (r < 0) {
      n[2]++;
      if (verbose)
        printf("missing  %s\n", x->id);
    } else {
      n[3]++;
      if (verbose)
        printf("corrupt  %s  %s\n", x->id, err);
    }
    mb_rfile_free(&rf);
  }
  printf("%s: %zu cells%s: %zu ok, %zu diverged, %zu failed, %zu missing, %zu corrupt\n", m->name,
         nsel, sn > 1 ? " in this shard" : "", n[0], n[4], n[1], n[2], n[3]);
  free(sel);
  mb_matrix_free(m);
  return n[0] == nsel ? 0 : 1;
}

/* ---- merge ---- */

static const char merge_usage[] =
    "usage: moebench merge OUT DIR... [--allow-mixed-data]\n"
    "Join result directories (each a results root holding NAME/cells/, or one\n"
    "NAME directory itself) into the results root OUT. Identical duplicates are\n"
    "fine; an ok result replaces a failed one; two ok results of one cell with\n"
    "different metrics are a conflict: reported, the one already in OUT kept.\n"
    "Corrupt files are reported and skipped.\n"
    "Cells of one matrix that name the same data but read different bytes\n"
    "(their data_sha256 notes differ, in OUT or in the DIRs) are named with\n"
    "both files and nothing is merged, as `report` refuses to combine them;\n"
    "  --allow-mixed-data  merge them anyway (each pair is still named)\n"
    "Exit status: 0 merged, 1 conflicts, mixed data or I/O errors, 2 usage error.\n";

static int same_metrics(const mb_rfile *a, const mb_rfile *b)
{
  if (a->nm != b->nm)
    return 0;
  for (size_t i = 0; i < a->nm; i++)
    if (strcmp(a->mname[i], b->mname[i]) || memcmp(&a->mval[i], &b->mval[i], sizeof(double)))
      return 0;
  return 1;
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
  size_t n;
  char *s = mb_read_file(from, &n);
  if (!s) {
    snprintf(err, errlen, "%s: cannot read", from);
    return -1;
  }
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
  if (mb_mkdirs(oc, err, sizeof err)) {
    fprintf(stderr, "moebench merge: %s\n", err);
    return 1;
  }
  snprintf(p, sizeof p, "%s/matrix.yaml", src);
  snprintf(q, sizeof q, "%s/matrix.yaml", od);
  size_t na, nb;
  char *a = mb_read_file(p, &na), *b = mb_read_file(q, &nb);
  if (a && !b) {
    if (mb_write_atomic(q, a, na, err, sizeof err)) {
      fprintf(stderr, "moebench merge: %s\n", err);
      bad = 1;
    }
  } else if (a && b && (na != nb || memcmp(a, b, na)))
    fprintf(stderr, "moebench merge: warning: %s differs from %s (keeping the latter)\n", p, q);
  free(a);
  free(b);
  snprintf(p, sizeof p, "%s/cells", src);
  DIR *d = opendir(p);
  if (!d) {
    fprintf(stderr, "moebench merge: %s: %s\n", p, strerror(errno));
    return 1;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t L = strlen(e->d_name);
    if (e->d_name[0] == '.' || L < 6 || strcmp(e->d_name + L - 5, ".json"))
      continue;
    char from[4700], to[4700];
    snprintf(from, sizeof from, "%s/%s", p, e->d_name);
    snprintf(to, sizeof to, "%s/%s", oc, e->d_name);
    struct stat s1, s2;
    if (stat(from, &s1) == 0 && stat(to, &s2) == 0 && s1.st_dev == s2.st_dev &&
        s1.st_ino == s2.st_ino) {
      stats[1]++;
      continue;
    }
    mb_rfile rs, rd;
    if (mb_rfile_load(from, &rs, err, sizeof err)) {
      fprintf(stderr, "moebench merge: skipping corrupt result: %s\n", err);
      stats[3]++;
      continue;
    }
    int dr = mb_rfile_load(to, &rd, err, sizeof err);
    if (dr == 1)
      fprintf(stderr, "moebench merge: replacing corrupt result: %s\n", err);
    int copy = 0;
    if (dr != 0)
      copy = 1;
    else if (!rd.ok && rs.ok)
      copy = 1;
    else if (rd.ok && rs.ok && !same_metrics(&rd, &rs)) {
      fprintf(
          stderr,
          "moebench merge: conflict: %s and %s are both ok but their metrics differ (keeping %s)\n",
          from, to, to);
      stats[2]++;
      bad = 1;
    } else
      stats[1]++;
    if (copy) {
      if (copy_file(from, to, err, sizeof err)) {
        fprintf(stderr, "moebench merge: %s\n", err);
        bad = 1;
      } else
        stats[0]++;
    }
    mb_rfile_free(&rs);
    mb_rfile_free(&rd);
  }
  closedir(d);
  return bad;
}

/* The data fingerprints of the results to be joined: cells (ok or
 * diverged, as `report` counts them) of one matrix NAME that name the
 * same data (their config's `data`, "" for a task without one) must carry
 * the same data_sha256 note; results without one are not compared. */
typedef struct {
  const char *name;
  char *data, *fp, *file;
} data_seen;

typedef struct {
  data_seen *v;
  size_t n, cap, mixed;
} data_prints;

static void data_prints_free(data_prints *d)
{
  for (size_t i = 0; i < d->n; i++) {
    free(d->v[i].data);
    free(d->v[i].fp);
    free(d->v[i].file);
  }
  free(d->v);
}

/* Compare the results in dir/cells with those seen so far; each first
 * fingerprint of a (name, data) is kept, each different one named. */
static int scan_data_prints(const char *dir, const char *name, data_prints *d, int allow)
{
  char p[4400], err[5000];
  snprintf(p, sizeof p, "%s/cells", dir);
  DIR *dd = opendir(p);
  if (!dd)
    return errno == ENOENT ? 0 : -1;
  struct dirent *e;
  while ((e = readdir(dd))) {
    size_t L = strlen(e->d_name);
    if (e->d_name[0] == '.' || L < 6 || strcmp(e->d_name + L - 5, ".json"))
      continue;
    char f[4700];
    snprintf(f, sizeof f, "%s/%s", p, e->d_name);
    mb_rfile rf;
    if (mb_rfile_load(f, &rf, err, sizeof err))
      continue; /* the merge pass reports it */
    const mb_json *notes = mb_json_get(rf.doc, "notes"), *cfg = mb_json_get(rf.doc, "config");
    const char *fp = notes ? mb_json_str(notes, "data_sha256") : NULL,
               *data = cfg ? mb_json_str(cfg, "data") : NULL;
    if (fp && (rf.ok || rf.diverged)) {
      if (!data)
        data = "";
      size_t i = 0;
      while (i < d->n && (strcmp(d->v[i].name, name) || strcmp(d->v[i].data, data)))
        i++;
      if (i == d->n) {
        if (d->n == d->cap) {
          size_t cap = d->cap ? 2 * d->cap : 8;
          data_seen *v = realloc(d->v, cap * sizeof *v);
          if (!v) {
            mb_rfile_free(&rf);
            closedir(dd);
            return -1;
          }
          d->v = v;
          d->cap = cap;
        }
        d->v[d->n] = (data_seen){name, strdup(data), strdup(fp), strdup(f)};
        if (!d->v[d->n].data || !d->v[d->n].fp || !d->v[d->n].file) {
          mb_rfile_free(&rf);
          closedir(dd);
          return -1;
        }
        d->n++;
      } else if (strcmp(d->v[i].fp, fp)) {
        if (d->mixed++ < 10)
          fprintf(
              stderr,
              "moebench merge: %s and %s both read %s%s%s of matrix %s but of different content "
              "(data_sha256 %s vs %s)%s\n",
              d->v[i].file, f, *data ? "data '" : "the data", data, *data ? "'" : "", name,
              d->v[i].fp, fp, allow ? " (--allow-mixed-data: merged anyway)" : "");
      }
    }
    mb_rfile_free(&rf);
  }
  closedir(dd);
  return 0;
}

/* The NAME directories of the sources, in argument order. */
typedef struct {
  char **dir, **name;
  size_t n, cap;
} merge_srcs;

static int srcs_add(merge_srcs *s, const char *dir, const char *name)
{
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 8;
    char **d = realloc(s->dir, cap * sizeof *d), **m = d ? realloc(s->name, cap * sizeof *m) : NULL;
    if (d)
      s->dir = d;
    if (!d || !m)
      return -1;
    s->name = m;
    s->cap = cap;
  }
  if (!(s->dir[s->n] = strdup(dir)))
    return -1;
  if (!(s->name[s->n] = strdup(name))) {
    free(s->dir[s->n]);
    return -1;
  }
  s->n++;
  return 0;
}

static void srcs_free(merge_srcs *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free(s->dir[i]);
    free(s->name[i]);
  }
  free(s->dir);
  free(s->name);
}

static int merge_all(int argc, char **argv, int allow_mixed)
{
  if (argc < 3) {
    fputs(merge_usage, stderr);
    return 2;
  }
  const char *out = argv[1];
  {
    /* OUT is a results root; given a NAME directory, everything would land
     * in OUT/NAME/NAME/ */
    char oc[4200];
    snprintf(oc, sizeof oc, "%s/cells", out);
    int named = is_dir(oc);
    snprintf(oc, sizeof oc, "%s/matrix.yaml", out);
    if (named || access(oc, F_OK) == 0) {
      fprintf(stderr,
              "moebench merge: %s holds cells/: it is one matrix's directory, not a results root; "
              "give the "
              "directory above it as OUT\n",
              out);
      return 2;
    }
  }
  size_t stats[4] = {0, 0, 0, 0}; /* copied, identical/kept, conflicts, corrupt */
  int bad = 0, nomem = 0;
  merge_srcs srcs = {0};
  for (int i = 2; i < argc; i++) {
    char p[4200];
    if (!is_dir(argv[i])) {
      fprintf(stderr, "moebench merge: %s: not a directory\n", argv[i]);
      bad = 1;
      continue;
    }
    snprintf(p, sizeof p, "%s/cells", argv[i]);
    if (is_dir(p)) { /* a NAME directory */
      char tmp[4096];
      snprintf(tmp, sizeof tmp, "%s", argv[i]);
      size_t L = strlen(tmp);
      while (L > 1 && tmp[L - 1] == '/')
        tmp[--L] = 0;
      const char *name = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
      nomem |= srcs_add(&srcs, argv[i], name);
      continue;
    }
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.')
        continue;
      char sub[4600];
      snprintf(sub, sizeof sub, "%s/%s/cells", argv[i], e->d_name);
      if (!is_dir(sub))
        continue;
      snprintf(sub, sizeof sub, "%s/%s", argv[i], e->d_name);
      nomem |= srcs_add(&srcs, sub, e->d_name);
    }
    if (d)
      closedir(d);
  }
  if (nomem) {
    fprintf(stderr, "moebench merge: out of memory\n");
    srcs_free(&srcs);
    return 1;
  }
  if (!srcs.n) {
    fprintf(stderr, "moebench merge: no result directories (NAME/cells/) found\n");
    srcs_free(&srcs);
    return 1;
  }
  /* first the data fingerprints, OUT's results first: mixed data is
   * refused before anything is written */
  data_prints dp = {0};
  for (size_t i = 0; i < srcs.n && !nomem; i++) {
    char od[4400];
    snprintf(od, sizeof od, "%s/%s", out, srcs.name[i]);
    nomem |= scan_data_prints(od, srcs.name[i], &dp, allow_mixed) != 0;
  }
  for (size_t i = 0; i < srcs.n && !nomem; i++)
    nomem |= scan_data_prints(srcs.dir[i], srcs.name[i], &dp, allow_mixed) != 0;
  if (nomem)
    fprintf(stderr, "moebench merge: cannot compare the data fingerprints (out of memory, or a "
                    "directory unreadable)\n");
  else if (dp.mixed && !allow_mixed)
    fprintf(stderr,
            "moebench merge: %zu result%s read other bytes than the first cell of the same matrix "
            "and data; "
            "nothing merged (--allow-mixed-data to merge anyway)\n",
            dp.mixed, dp.mixed == 1 ? "" : "s");
  const size_t mixed = dp.mixed;
  data_prints_free(&dp);
  if (nomem || (mixed && !allow_mixed)) {
    srcs_free(&srcs);
    return 1;
  }
  for (size_t i = 0; i < srcs.n; i++)
    bad |= merge_one(srcs.dir[i], srcs.name[i], out, stats);
  srcs_free(&srcs);
  fprintf(stderr,
          "moebench merge: %zu copied, %zu already present, %zu conflicts, %zu corrupt skipped\n",
          stats[0], stats[1], stats[2], stats[3]);
  return bad ? 1 : 0;
}

int mb_verb_merge(int argc, char **argv)
{
  if (want_help(argc, argv, merge_usage))
    return 0;
  int allow_mixed = 0, na = 0;
  char **args = malloc(sizeof *args * (size_t)(argc + 1));
  if (!args) {
    fprintf(stderr, "moebench merge: out of memory\n");
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    if (i > 0 && !strcmp(argv[i], "--allow-mixed-data")) {
      allow_mixed = 1;
      continue;
    }
    if (i > 0 && argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "moebench merge: unknown option '%s'\n%s", argv[i], merge_usage);
      free(args);
      return 2;
    }
    args[na++] = argv[i];
  }
  int rc = merge_all(na, args, allow_mixed);
  free(args);
  return rc;
}

/* ---- slurm ---- */

static const char slurm_usage[] =
    "usage: moebench slurm FILE [--shards N] [--out DIR | --out-per-task DIR] [-j N]\n"
    "         [--time T] [--mem M] [--partition P] [--account A] [--sbatch LINE]...\n"
    "         [--max-array N] [--throttle N] [--report] [--no-coretype] [--moebench PATH]\n"
    "       moebench slurm FILE [--shards N] [--max-array N] [--throttle N] --resubmit DIR\n"
    "Validate FILE and print a Slurm batch script whose job array runs the\n"
    "matrix in N shards with `moebench run --shard`, all writing to DIR (a\n"
    "shared file system) or each task to DIR/TASK (--out-per-task; join them\n"
    "with moebench merge). The script carries the matrix and the limit files\n"
    "next to it (FILE's limits/ directory): the queued array runs what was\n"
    "submitted, whatever happens to FILE later, on nodes that cannot see it.\n"
    "  --shards N        shards (default 10, at most the number of cells)\n"
    "  --out DIR         results root (default: results, made absolute)\n"
    "  --out-per-task DIR  each array task writes to DIR/$SLURM_ARRAY_TASK_ID\n"
    "  -j N              cells at a time within a task (default 1; sets --cpus-per-task)\n"
    "  --time T, --mem M, --partition P, --account A\n"
    "                    the #SBATCH options of those names\n"
    "  --sbatch LINE     any further #SBATCH option, e.g. --sbatch '--qos=long'\n"
    "                    (repeatable)\n"
    "  --max-array N     at most N array tasks (default 1000, within Slurm's default\n"
    "                    MaxArraySize of 1001); more shards than that run several\n"
    "                    per task\n"
    "  --throttle N      at most N tasks running at once (--array=...%N)\n"
    "  --report          `sh job.sh` also submits `moebench report` as a job that\n"
    "                    starts when every array task succeeded (afterok)\n"
    "  --no-coretype     do not pin OPENBLAS_CORETYPE to this machine's BLAS kernels\n"
    "                    (by default every node runs them: the same bits everywhere,\n"
    "                    and a node whose CPU lacks them fails instead of differing)\n"
    "  --moebench PATH   the program to run (default: moebench on PATH)\n"
    "  --resubmit DIR    print the array indices (for sbatch --array=) of the tasks\n"
    "                    whose shards have failed or missing cells under DIR;\n"
    "                    give the same --shards and --max-array as the script\n"
    "Submit with: moebench slurm M.yaml --shards 20 > job.sh && sbatch job.sh\n"
    "(or `sh job.sh [SBATCH OPTIONS]`, which also submits the --report job).\n"
    "Exit status: 0 printed, 1 a file could not be read, 2 usage or validation error.\n";

static void sh_quote(const char *s)
{
  putchar('\'');
  for (; *s; s++) {
    if (*s == '\'')
      fputs("'\\''", stdout);
    else
      putchar(*s);
  }
  putchar('\'');
}

/* An #SBATCH value must stay on its line and be one word. */
static int sbatch_word(const char *s)
{
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
      return 0;
  return 1;
}

/* FILE written by the script, from a quoted here-document: the bytes of
 * SRC exactly (a missing final newline is cut again with truncate).
 * Returns 0, or 1 with a message when SRC cannot be read or cannot be
 * carried (a line equal to the delimiter). */
static const char *const slurm_eof = "MOEBENCH_FILE_END";
static int slurm_carry(const char *src, const char *dst_expr)
{
  FILE *f = fopen(src, "rb");
  if (!f) {
    fprintf(stderr, "moebench slurm: %s: %s\n", src, strerror(errno));
    return 1;
  }
  mb_buf b;
  mb_buf_init(&b);
  char chunk[8192];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
    mb_buf_printf(&b, "%.*s", (int)k, chunk);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "moebench slurm: %s: read error\n", src);
    mb_buf_free(&b);
    return 1;
  }
  size_t dl = strlen(slurm_eof);
  for (size_t a = 0; a < b.n;) {
    const char *nl = memchr(b.s + a, '\n', b.n - a);
    size_t e = nl ? (size_t)(nl - b.s) : b.n;
    if (e - a == dl && !memcmp(b.s + a, slurm_eof, dl)) {
      fprintf(stderr, "moebench slurm: %s: has a line '%s' and cannot be carried in the script\n",
              src, slurm_eof);
      mb_buf_free(&b);
      return 1;
    }
    a = e + 1;
  }
  if (memchr(b.s ? b.s : "", 0, b.n)) {
    fprintf(stderr, "moebench slurm: %s: binary file, cannot be carried in the script\n", src);
    mb_buf_free(&b);
    return 1;
  }
  printf("cat >%s <<'%s'\n", dst_expr, slurm_eof);
  fwrite(b.s, 1, b.n, stdout);
  int nonl = b.n > 0 && b.s[b.n - 1] != '\n';
  printf("%s%s\n", nonl ? "\n" : "", slurm_eof);
  if (nonl)
    printf("truncate -s -1 %s\n", dst_expr);
  mb_buf_free(&b);
  return 0;
}

/* --resubmit: the array indices whose shards are not all ok under out, as
 * "1-3,7" (sbatch --array syntax; %throttle appended). Returns the count. */
static size_t slurm_resubmit(const mb_matrix *m, long shards, long tasks, long throttle,
                             const char *out)
{
  char *need = calloc((size_t)tasks + 1, 1);
  size_t *sel = malloc((m->ncells ? m->ncells : 1) * sizeof *sel);
  size_t nbad = 0, ntask = 0;
  if (!need || !sel) {
    free(need);
    free(sel);
    return (size_t)-1;
  }
  char path[4400], err[5000];
  for (long s = 1; s <= shards; s++) {
    size_t nsel = mb_matrix_shard(m, (int)s, (int)shards, sel), bad = 0;
    for (size_t k = 0; k < nsel; k++) {
      mb_rfile rf;
      mb_path_cell(path, sizeof path, out, m->name, m->cells[sel[k]].id);
      int r = mb_rfile_load(path, &rf, err, sizeof err);
      if (!(r == 0 && rf.ok && !strcmp(rf.id, m->cells[sel[k]].id)))
        bad++;
      mb_rfile_free(&rf);
    }
    if (bad) {
      nbad += bad;
      long t = (s - 1) % tasks + 1;
      if (!need[t])
        ntask++;
      need[t] = 1;
    }
  }
  int first = 1;
  for (long t = 1; t <= tasks; t++) {
    if (!need[t])
      continue;
    long e = t;
    while (e + 1 <= tasks && need[e + 1])
      e++;
    printf("%s%ld", first ? "" : ",", t);
    if (e > t)
      printf("-%ld", e);
    first = 0;
    t = e;
  }
  if (ntask) {
    if (throttle)
      printf("%%%ld", throttle);
    putchar('\n');
  }
  fprintf(stderr,
          "moebench slurm: %s: %zu cells failed or missing under %s, in %zu of %ld array tasks%s\n",
          m->name, nbad, out, ntask, tasks, ntask ? "" : ": nothing to resubmit");
  free(need);
  free(sel);
  return ntask;
}

int mb_verb_slurm(int argc, char **argv)
{
  if (want_help(argc, argv, slurm_usage))
    return 0;
  const char *file = NULL, *out = "results", *prog = "moebench", *resub = NULL, *v;
  const char *opt_val[4] = {NULL, NULL, NULL, NULL};
  static const char *const opt_name[4] = {"--time", "--mem", "--partition", "--account"};
  const char **extra = calloc((size_t)argc + 1, sizeof *extra);
  size_t nextra = 0;
  long shards = 10, jobs = 1, max_array = 1000, throttle = 0;
  int per_task = 0, report = 0, coretype = 1;
  if (!extra)
    return 1;
#define SLURM_BAD(...)                                                                             \
  do {                                                                                             \
    fprintf(stderr, "moebench slurm: " __VA_ARGS__);                                               \
    free(extra);                                                                                   \
    return 2;                                                                                      \
  } while (0)
  for (int i = 1; i < argc; i++) {
    int o;
    for (o = 0; o < 4; o++)
      if ((v = optval(argc, argv, &i, NULL, opt_name[o])))
        break;
    if (o < 4) {
      if (!sbatch_word(v))
        SLURM_BAD("bad %s '%s' (one word)\n", opt_name[o], v);
      opt_val[o] = v;
    } else if ((v = optval(argc, argv, &i, NULL, "--shards"))) {
      if (!parse_pos(v, 1000000, &shards))
        SLURM_BAD("bad --shards '%s'\n", v);
    } else if ((v = optval(argc, argv, &i, "-j", "--jobs"))) {
      if (!parse_pos(v, 4096, &jobs))
        SLURM_BAD("bad -j '%s'\n", v);
    } else if ((v = optval(argc, argv, &i, NULL, "--max-array"))) {
      if (!parse_pos(v, 1000000, &max_array))
        SLURM_BAD("bad --max-array '%s'\n", v);
    } else if ((v = optval(argc, argv, &i, NULL, "--throttle"))) {
      if (!parse_pos(v, 1000000, &throttle))
        SLURM_BAD("bad --throttle '%s'\n", v);
    } else if ((v = optval(argc, argv, &i, NULL, "--sbatch"))) {
      if (!strncmp(v, "#SBATCH", 7))
        v += 7;
      while (*v == ' ' || *v == '\t')
        v++;
      if (!*v || v[0] != '-' || strpbrk(v, "\n\r"))
        SLURM_BAD("bad --sbatch '%s' (one sbatch option, e.g. --qos=long)\n", v);
      if (!strncmp(v, "--array", 7) || !strncmp(v, "-a", 2) || !strncmp(v, "--output", 8) ||
          !strncmp(v, "--cpus-per-task", 15) || !strncmp(v, "-c", 2))
        SLURM_BAD("--sbatch '%s': moebench slurm sets that itself (use --shards, --max-array, "
                  "--throttle, -j)\n",
                  v);
      extra[nextra++] = v;
    } else if ((v = optval(argc, argv, &i, NULL, "--out"))) {
      out = v;
      per_task = 0;
    } else if ((v = optval(argc, argv, &i, NULL, "--out-per-task"))) {
      out = v;
      per_task = 1;
    } else if ((v = optval(argc, argv, &i, NULL, "--moebench")))
      prog = v;
    else if ((v = optval(argc, argv, &i, NULL, "--resubmit"))) {
      if (!*v)
        SLURM_BAD("--resubmit needs the results directory\n");
      resub = v;
    } else if (!strcmp(argv[i], "--report"))
      report = 1;
    else if (!strcmp(argv[i], "--no-coretype"))
      coretype = 0;
    else if (argv[i][0] == '-' && argv[i][1])
      SLURM_BAD("unknown option '%s'\n%s", argv[i], slurm_usage);
    else if (!file)
      file = argv[i];
    else
      SLURM_BAD("one matrix file at a time\n");
  }
#undef SLURM_BAD
  if (!file || !*out) {
    fputs(slurm_usage, stderr);
    free(extra);
    return 2;
  }
  int st;
  mb_matrix *m = load_or_report(file, &st);
  if (!m) {
    free(extra);
    return st;
  }
  if ((size_t)shards > m->ncells)
    shards = (long)(m->ncells ? m->ncells : 1);
  const long tasks = shards < max_array ? shards : max_array;
  if (throttle > tasks)
    throttle = 0; /* no limit then */

  if (resub) {
    if (!is_dir(resub)) {
      fprintf(stderr, "moebench slurm: --resubmit %s: no such directory\n", resub);
      mb_matrix_free(m);
      free(extra);
      return 2;
    }
    size_t r = slurm_resubmit(m, shards, tasks, throttle, resub);
    mb_matrix_free(m);
    free(extra);
    return r == (size_t)-1 ? 1 : 0;
  }

  char absout[8300], cwd[4096], mdir[4200];
  if (!getcwd(cwd, sizeof cwd))
    snprintf(cwd, sizeof cwd, ".");
  if (out[0] == '/')
    snprintf(absout, sizeof absout, "%s", out);
  else
    snprintf(absout, sizeof absout, "%s/%s", cwd, out);
  const char *md = getenv("MOEBENCH_MATRIX_DIR"); /* load_or_report set it */
  snprintf(mdir, sizeof mdir, "%s", md && *md ? md : ".");

  printf("#!/bin/sh\n");
  printf("# moebench %s: %zu cells of matrix '%s' in %ld shards, %ld array tasks",
         MOE_VERSION_STRING, m->ncells, m->name, shards, tasks);
  if (tasks < shards)
    printf(" (up to %ld shards each)", (shards + tasks - 1) / tasks);
  printf(" (see moebench(1)).\n");
  printf("#SBATCH --job-name=moebench-%s\n", m->name);
  printf("#SBATCH --array=1-%ld", tasks);
  if (throttle)
    printf("%%%ld", throttle);
  printf("\n#SBATCH --cpus-per-task=%ld\n", jobs);
  printf("#SBATCH --output=moebench-%s-%%A_%%a.log\n", m->name);
  for (int o = 0; o < 4; o++)
    if (opt_val[o])
      printf("#SBATCH %s=%s\n", opt_name[o], opt_val[o]);
  for (size_t k = 0; k < nextra; k++)
    printf("#SBATCH %s\n", extra[k]);
  printf("#\n# sbatch job.sh            submits the array\n");
  printf("# sh job.sh [OPTIONS]     the same with sbatch OPTIONS (e.g. --array=3,7 from\n"
         "#                         moebench slurm --resubmit)%s\n",
         report ? ", then the report job\n"
                  "#                         (--dependency=afterok: after every task succeeded)"
                : "");
  printf("set -eu\n");
  printf("if [ -z \"${SLURM_ARRAY_TASK_ID:-}\" ]; then\n");
  if (!report)
    printf("  exec sbatch \"$@\" \"$0\"\n");
  else {
    printf("  jid=$(sbatch --parsable \"$@\" \"$0\")\n  jid=${jid%%%%;*}\n");
    printf("  echo \"moebench: array job $jid\"\n");
    printf("  rid=$(sbatch --parsable --dependency=afterok:\"$jid\" --job-name=moebench-%s-report "
           "\\\n",
           m->name);
    printf("    --output=moebench-%s-report-%%j.log", m->name);
    for (int o = 0; o < 4; o++)
      if (opt_val[o]) {
        printf(" %s=", opt_name[o]);
        sh_quote(opt_val[o]);
      }
    for (size_t k = 0; k < nextra; k++) {
      putchar(' ');
      sh_quote(extra[k]);
    }
    printf(" \\\n    --wrap ");
    /* the report job's command, quoted once for --wrap's shell */
    mb_buf w;
    mb_buf_init(&w);
    char q[9000];
#define SLURM_Q(str)                                                                               \
  do {                                                                                             \
    const char *p_ = (str);                                                                        \
    size_t n_ = 0;                                                                                 \
    q[n_++] = '\'';                                                                                \
    for (; *p_ && n_ < sizeof q - 8; p_++) {                                                       \
      if (*p_ == '\'') {                                                                           \
        memcpy(q + n_, "'\\''", 4);                                                                \
        n_ += 4;                                                                                   \
      } else                                                                                       \
        q[n_++] = *p_;                                                                             \
    }                                                                                              \
    q[n_++] = '\'';                                                                                \
    q[n_] = 0;                                                                                     \
  } while (0)
    SLURM_Q(prog);
    mb_buf_printf(&w, "set -e; ");
    if (per_task) {
      char merged[8400];
      snprintf(merged, sizeof merged, "%s/merged", absout);
      mb_buf_printf(&w, "%s merge ", q);
      SLURM_Q(merged);
      mb_buf_printf(&w, "%s", q);
      for (long t = 1; t <= tasks; t++) {
        char d[8400];
        snprintf(d, sizeof d, "%s/%ld", absout, t);
        SLURM_Q(d);
        mb_buf_printf(&w, " %s", q);
      }
      mb_buf_printf(&w, "; ");
      snprintf(merged, sizeof merged, "%s/merged/%s", absout, m->name);
      SLURM_Q(prog);
      mb_buf_printf(&w, "%s report ", q);
      SLURM_Q(merged);
      mb_buf_printf(&w, "%s --format md,tex,csv", q);
    } else {
      char d[8400];
      snprintf(d, sizeof d, "%s/%s", absout, m->name);
      mb_buf_printf(&w, "%s report ", q);
      SLURM_Q(d);
      mb_buf_printf(&w, "%s --format md,tex,csv", q);
    }
#undef SLURM_Q
    sh_quote(w.s);
    mb_buf_free(&w);
    printf(")\n  rid=${rid%%%%;*}\n");
    printf("  echo \"moebench: report job $rid, after job $jid (afterok)\"\n  exit 0\nfi\n");
  }
  if (!report)
    printf("fi\n");
  printf("export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 GOTO_NUM_THREADS=1\n");
  if (coretype) {
    const char *core = moe_blas_corename();
    if (core && *core && strcmp(core, "unknown") && sbatch_word(core)) {
      printf("# the BLAS kernels of the machine that wrote this script (moebench slurm\n"
             "# --no-coretype: each node's own, and bits that may differ between nodes)\n");
      printf("export OPENBLAS_CORETYPE=");
      sh_quote(core);
      putchar('\n');
    }
  }
  /* the matrix and its limits, as submitted */
  printf("dir=$(mktemp -d \"${TMPDIR:-/tmp}/moebench-slurm.XXXXXX\")\n");
  printf("trap 'rm -rf \"$dir\"' EXIT\n");
  char mfile[8400];
  snprintf(mfile, sizeof mfile, "\"$dir\"/%s.yaml", m->name);
  int bad = slurm_carry(file, mfile);
  char lim[4300];
  snprintf(lim, sizeof lim, "%s/limits", mdir);
  DIR *ld = opendir(lim);
  if (ld && !bad) {
    printf("mkdir \"$dir\"/limits\n");
    struct dirent *e;
    char **names = NULL;
    size_t nn = 0;
    while ((e = readdir(ld))) {
      char src[8600];
      snprintf(src, sizeof src, "%s/%s", lim, e->d_name);
      struct stat sb;
      if (e->d_name[0] == '.' || stat(src, &sb) || !S_ISREG(sb.st_mode) ||
          !sbatch_word(e->d_name) || strchr(e->d_name, '\'') || strchr(e->d_name, '"') ||
          strchr(e->d_name, '$') || strchr(e->d_name, '`') || strchr(e->d_name, '\\'))
        continue;
      char **nn2 = realloc(names, (nn + 1) * sizeof *names);
      if (!nn2) {
        bad = 1;
        break;
      }
      names = nn2;
      names[nn++] = strdup(e->d_name);
    }
    /* sorted: the same script for the same files */
    for (size_t a = 1; a < nn; a++)
      for (size_t c = a; c > 0 && strcmp(names[c - 1], names[c]) > 0; c--) {
        char *t = names[c];
        names[c] = names[c - 1];
        names[c - 1] = t;
      }
    for (size_t a = 0; a < nn; a++) {
      char src[8600], dst[8600];
      snprintf(src, sizeof src, "%s/%s", lim, names[a]);
      snprintf(dst, sizeof dst, "\"$dir\"/limits/'%s'", names[a]);
      if (!bad && slurm_carry(src, dst))
        bad = 1;
      free(names[a]);
    }
    free(names);
  }
  if (ld)
    closedir(ld);
  printf("out=");
  sh_quote(absout);
  printf("%s\n", per_task ? "/\"$SLURM_ARRAY_TASK_ID\"" : "");
  printf("st=0\ns=$SLURM_ARRAY_TASK_ID\n");
  printf("while [ \"$s\" -le %ld ]; do\n  ", shards);
  sh_quote(prog);
  printf(" run \"$dir\"/%s.yaml --shard \"$s/%ld\" --out \"$out\" -j %ld || st=1\n", m->name,
         shards, jobs);
  printf("  s=$((s + %ld))\ndone\nexit $st\n", tasks);
  mb_matrix_free(m);
  free(extra);
  return bad ? 1 : 0;
}
