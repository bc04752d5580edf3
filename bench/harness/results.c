/* SPDX-License-Identifier: GPL-3.0-or-later */
/* results.c — see results.h. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gsl/gsl_version.h>
#include <yaml.h>
#include <zlib.h>

#include "bench/mb_build.h"
#include "moe/version.h"
#include "results.h"

void mb_path_cell(char *buf, size_t len, const char *out, const char *name, const char *id)
{
  snprintf(buf, len, "%s/%s/cells/%s.json", out, name, id);
}

void mb_rfile_free(mb_rfile *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->nm; i++)
    free(r->mname[i]);
  free(r->mname);
  free(r->mval);
  free(r->error);
  mb_json_free(r->doc);
  memset(r, 0, sizeof *r);
}

int mb_rfile_load(const char *path, mb_rfile *out, char *err, size_t errlen)
{
  memset(out, 0, sizeof *out);
  if (access(path, F_OK) != 0 && errno == ENOENT)
    return -1;
  mb_json *j = mb_json_load(path, err, errlen);
  if (!j)
    return 1;
  const char *fmt = mb_json_str(j, "format"), *id = mb_json_str(j, "id"),
             *st = mb_json_str(j, "status");
  const mb_json *mt = mb_json_get(j, "metrics");
  const char *why = NULL;
  if (!fmt || strcmp(fmt, MB_RESULT_FORMAT))
    why = "not a moebench result (no \"format\": \"" MB_RESULT_FORMAT "\")";
  else if (!id || strlen(id) != 12)
    why = "bad or missing \"id\"";
  else if (!st || (strcmp(st, "ok") && strcmp(st, "failed") && strcmp(st, "diverged")))
    why = "bad or missing \"status\"";
  else if (!mt || mt->type != MB_J_OBJ)
    why = "missing \"metrics\" object";
  char whybuf[300];
  if (!why)
    for (size_t i = 0; i < mt->n; i++) {
      double v;
      if (!mb_json_as_double(mt->items[i], &v)) {
        snprintf(whybuf, sizeof whybuf, "metric '%.100s' is not a number", mt->keys[i]);
        why = whybuf;
        break;
      }
      /* a literal such as 1e999 overflows to inf: not what was measured.
       * The writer spells non-finite values "nan", "inf", "-inf". */
      if (mt->items[i]->type == MB_J_NUM && !isfinite(v)) {
        snprintf(whybuf, sizeof whybuf,
                 "metric '%.100s' = %.60s is not a finite number (non-finite values are written "
                 "\"nan\", \"inf\", \"-inf\")",
                 mt->keys[i], mt->items[i]->text ? mt->items[i]->text : "?");
        why = whybuf;
        break;
      }
    }
  if (why) {
    snprintf(err, errlen, "%s: %s", path, why);
    mb_json_free(j);
    return 1;
  }
  memcpy(out->id, id, 13);
  out->ok = !strcmp(st, "ok");
  out->diverged = !strcmp(st, "diverged");
  const char *e = mb_json_str(j, "error");
  out->error = e ? strdup(e) : NULL;
  out->nm = mt->n;
  out->mname = calloc(mt->n ? mt->n : 1, sizeof *out->mname);
  out->mval = calloc(mt->n ? mt->n : 1, sizeof *out->mval);
  if (!out->mname || !out->mval) {
    snprintf(err, errlen, "%s: out of memory", path);
    mb_json_free(j);
    mb_rfile_free(out);
    return 1;
  }
  for (size_t i = 0; i < mt->n; i++) {
    out->mname[i] = strdup(mt->keys[i]);
    mb_json_as_double(mt->items[i], &out->mval[i]);
  }
  out->doc = j;
  return 0;
}

int mb_rfile_metric(const mb_rfile *r, const char *name, double *v)
{
  for (size_t i = 0; i < r->nm; i++)
    if (!strcmp(r->mname[i], name)) {
      *v = r->mval[i];
      return 1;
    }
  return 0;
}

static void dir_of(const char *path, char *dir, size_t len, const char **base)
{
  const char *slash = strrchr(path, '/');
  if (!slash) {
    snprintf(dir, len, ".");
    *base = path;
    return;
  }
  snprintf(dir, len, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
  *base = slash + 1;
}

int mb_write_atomic(const char *path, const char *data, size_t n, char *err, size_t errlen)
{
  char dir[4096], tmp[4352], host[256] = "localhost";
  const char *base;
  dir_of(path, dir, sizeof dir, &base);
  if (gethostname(host, sizeof host - 1))
    snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = 0;
  for (char *h = host; *h; h++)
    if (*h == '/')
      *h = '_';
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%s.%ld", dir, base, host, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
    return -1;
  }
  size_t done = 0;
  while (done < n) {
    ssize_t k = write(fd, data + done, n - done);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
      close(fd);
      unlink(tmp);
      return -1;
    }
    done += (size_t)k;
  }
  if (fsync(fd) || close(fd)) {
    snprintf(err, errlen, "%s: fsync/close: %s", tmp, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path)) {
    snprintf(err, errlen, "rename %s -> %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  /* make the rename itself durable */
  int dfd = open(dir, O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

/* Is the writer of a temp file still running? A killed worker whose
 * parent died too stays a zombie until something reaps it (in a container
 * whose init does not reap, forever); it will never finish its file, so a
 * zombie counts as dead. A process that started after the file was last
 * written cannot be its writer: the pid was reused (a busy machine goes
 * through pids quickly), so it counts as dead too. Not ours to judge
 * (EPERM) counts as alive. */
static int pid_alive(pid_t pid, time_t file_mtime)
{
  if (kill(pid, 0) != 0)
    return errno != ESRCH;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *rp = strrchr(buf, ')'); /* comm may contain spaces */
  if (!rp || rp[1] != ' ')
    return 1;
  if (rp[2] == 'Z' || rp[2] == 'X')
    return 0;
  /* field 22, starttime (clock ticks after boot); rp + 2 is field 3 */
  const char *q = rp + 2;
  for (int field = 3; field < 22 && q; field++) {
    q = strchr(q, ' ');
    if (q)
      q++;
  }
  long ticks = sysconf(_SC_CLK_TCK);
  if (!q || ticks <= 0)
    return 1;
  unsigned long long start = strtoull(q, NULL, 10);
  FILE *st = fopen("/proc/stat", "r");
  if (!st)
    return 1;
  char line[256];
  long long btime = -1;
  while (fgets(line, sizeof line, st))
    if (sscanf(line, "btime %lld", &btime) == 1)
      break;
  fclose(st);
  if (btime < 0)
    return 1;
  /* whole seconds on both sides: allow one of slack */
  return !((long long)(btime + (long long)(start / (unsigned long long)ticks)) >
           (long long)file_mtime + 1);
}

int mb_clean_temps(const char *dir)
{
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1))
    snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = 0;
  for (char *h = host; *h; h++)
    if (*h == '/')
      *h = '_';
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *nm = e->d_name;
    if (nm[0] != '.')
      continue;
    const char *t = strstr(nm, ".tmp.");
    if (!t)
      continue;
    const char *h = t + 5, *dot = strrchr(nm, '.');
    if (!dot || dot < h)
      continue;
    char *end;
    long pid = strtol(dot + 1, &end, 10);
    if (*end || pid <= 0)
      continue;
    if ((size_t)(dot - h) != strlen(host) || strncmp(h, host, (size_t)(dot - h)))
      continue;
    char p[4352];
    snprintf(p, sizeof p, "%s/%s", dir, nm);
    struct stat sb;
    if (stat(p, &sb))
      continue;
    if (pid_alive((pid_t)pid, sb.st_mtime))
      continue;
    if (!unlink(p))
      removed++;
  }
  closedir(d);
  return removed;
}

int mb_mkdirs(const char *path, char *err, size_t errlen)
{
  char p[4096];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        return -1;
      }
      *s = c;
      if (!c)
        break;
    }
  }
  return 0;
}

char *mb_read_file(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  mb_buf b;
  mb_buf_init(&b);
  mb_buf_add(&b, "", 0);
  char chunk[8192];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
    mb_buf_add(&b, chunk, k);
  int bad = ferror(f) || b.oom;
  fclose(f);
  if (bad) {
    mb_buf_free(&b);
    return NULL;
  }
  if (n)
    *n = b.n;
  return b.s;
}

static void cpu_model(char *buf, size_t len)
{
  snprintf(buf, len, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10))
      continue;
    char *c = strchr(line, ':');
    if (!c)
      continue;
    c++;
    while (*c == ' ' || *c == '\t')
      c++;
    c[strcspn(c, "\n")] = 0;
    snprintf(buf, len, "%s", c);
    break;
  }
  fclose(f);
}

/* OpenBLAS's x86-64 kernels by the instructions their sgemm needs: 1 SSE
 * (Prescott … Nehalem and their AMD peers), 2 AVX, 3 AVX2 + FMA, 4 AVX-512
 * (SkylakeX, and Cooperlake / SapphireRapids, which add bf16 kernels and
 * share its sgemm: the same bits, measured with 0.3.21); 0 unknown. */
static int core_class(const char *core)
{
  static const struct {
    const char *name;
    int cls;
  } t[] = {{"Katmai", 1},       {"Coppermine", 1},    {"Northwood", 1},  {"Prescott", 1},
           {"Banias", 1},       {"Atom", 1},          {"Core2", 1},      {"Penryn", 1},
           {"Dunnington", 1},   {"Nehalem", 1},       {"Athlon", 1},     {"Opteron", 1},
           {"Opteron_SSE3", 1}, {"Barcelona", 1},     {"Nano", 1},       {"Bobcat", 1},
           {"Sandybridge", 2},  {"Bulldozer", 2},     {"Piledriver", 2}, {"Steamroller", 2},
           {"Excavator", 2},    {"Haswell", 3},       {"Zen", 3},        {"SkylakeX", 4},
           {"Cooperlake", 4},   {"SapphireRapids", 4}};
  for (size_t i = 0; core && i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(core, t[i].name))
      return t[i].cls;
  return 0;
}

/* The kernels an OpenBLAS that detects this CPU right would pick, from
 * the CPU's own cpuid (which libgcc checks against what the OS enables),
 * with their class; NULL where none is known (not x86-64, or SSE only). */
static const char *cpu_core(int *cls)
{
  *cls = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
    *cls = 4;
    return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *cls = 3;
    return "Haswell";
  }
  if (__builtin_cpu_supports("avx")) {
    *cls = 2;
    return "Sandybridge";
  }
#endif
  return NULL;
}

/* Who chose the BLAS kernels: "auto" or "option" once --blas-core has
 * (mb_blas_core_select), else OPENBLAS_CORETYPE in the environment
 * ("env") or OpenBLAS's detection ("detected"). */
static const char *core_chosen_by;

const char *mb_blas_core_source(void)
{
  if (core_chosen_by)
    return core_chosen_by;
  return getenv("OPENBLAS_CORETYPE") ? "env" : "detected";
}

const char *mb_blas_core_warning(char *buf, size_t len)
{
  const char *core = moe_blas_corename();
  int have = core_class(core), want;
  const char *best = cpu_core(&want);
  if (!have || !best || have >= want)
    return NULL;
  const char *env = getenv("OPENBLAS_CORETYPE");
  char why[128];
  if (env)
    snprintf(why, sizeof why, "forced by OPENBLAS_CORETYPE=%.60s set in the environment", env);
  else
    snprintf(why, sizeof why, "detected from the CPU by OpenBLAS");
  static const char *const isa[] = {"", "SSE", "AVX", "AVX2", "AVX-512"};
  snprintf(buf, len,
           "the BLAS uses '%s' kernels but this CPU has %s (kernels %s): correct but slow; "
           "try --blas-core auto, i.e. OPENBLAS_CORETYPE=%s (the core and its source are recorded "
           "in every result)",
           core, isa[want], why, best);
  return buf;
}

#define BLAS_CORE_MARK "MOEBENCH_BLAS_CORE_EXEC"

int mb_blas_core_select(const char *want, int quiet, int argc, char **argv)
{
  /* set only in the process this function re-executed: the loop guard */
  const char *mark = getenv(BLAS_CORE_MARK);
  char marked[64] = "";
  if (mark)
    snprintf(marked, sizeof marked, "%s", mark);
  unsetenv(BLAS_CORE_MARK); /* what this process runs does not inherit it */
  const int is_auto = !strcmp(want, "auto");
  const char *core = moe_blas_corename();
  int cpu_cls;
  const char *best = cpu_core(&cpu_cls);
  const char *target = is_auto ? best : want;
  if (strcmp(moe_blas_name(), "OpenBLAS")) {
    if (is_auto)
      return 0; /* nothing to choose from */
    fprintf(stderr,
            "moebench: --blas-core %s: the BLAS is %s, not OpenBLAS: it has no kernels to choose\n",
            want, moe_blas_name());
    return 2;
  }
  if (!target)
    return 0; /* auto on a CPU without a kernel newer than SSE's */
  if (!is_auto && core_class(target) > cpu_cls) {
    fprintf(stderr, "moebench: --blas-core %s: this CPU lacks the instructions of those kernels\n",
            want);
    return 2;
  }
  int have = is_auto ? core_class(core) >= cpu_cls || !core_class(core) : !strcmp(core, target);
  if (have) {
    if (!is_auto)
      core_chosen_by = "option";
    else if (!strcmp(marked, target))
      core_chosen_by = "auto";
    return 0;
  }
  if (*marked) { /* re-executed once already, and OpenBLAS did not take the name */
    if (!is_auto) {
      fprintf(stderr,
              "moebench: --blas-core %s: OpenBLAS runs '%s' kernels even with OPENBLAS_CORETYPE=%s "
              "(not a kernel this OpenBLAS has?)\n",
              want, core, marked);
      return 2;
    }
    fprintf(stderr,
            "moebench: warning: --blas-core auto: OpenBLAS runs '%s' kernels even with "
            "OPENBLAS_CORETYPE=%s; going on with them\n",
            core, marked);
    return 0;
  }
  if (!quiet)
    fprintf(stderr,
            "moebench: --blas-core %s: OpenBLAS runs '%s' kernels (%s); re-executing with "
            "OPENBLAS_CORETYPE=%s\n",
            want, core, getenv("OPENBLAS_CORETYPE") ? "set in the environment" : "detected",
            target);
  char **av = calloc((size_t)argc + 2, sizeof *av);
  if (!av) {
    fprintf(stderr, "moebench: out of memory\n");
    return 1;
  }
  av[0] = (char *)"moebench";
  for (int i = 0; i < argc; i++)
    av[i + 1] = argv[i];
  char *old = getenv("OPENBLAS_CORETYPE") ? strdup(getenv("OPENBLAS_CORETYPE")) : NULL;
  setenv("OPENBLAS_CORETYPE", target, 1);
  setenv(BLAS_CORE_MARK, target, 1);
  fflush(NULL);
  execv("/proc/self/exe", av);
  int e = errno;
  free(av);
  unsetenv(BLAS_CORE_MARK);
  if (old)
    setenv("OPENBLAS_CORETYPE", old, 1);
  else
    unsetenv("OPENBLAS_CORETYPE");
  free(old);
  fprintf(stderr, "moebench: --blas-core %s: cannot re-execute /proc/self/exe: %s%s\n", want,
          strerror(e), is_auto ? "; going on with the kernels OpenBLAS runs" : "");
  return is_auto ? 0 : 1;
}

void mb_provenance(mb_buf *b, int blas_threads)
{
  char host[256] = "unknown", cpu[512];
  struct utsname u;
  if (gethostname(host, sizeof host - 1))
    snprintf(host, sizeof host, "unknown");
  host[sizeof host - 1] = 0;
  cpu_model(cpu, sizeof cpu);
  mb_buf_puts(b, "{\"moebench\": ");
  mb_buf_json_str(b, MOE_VERSION_STRING);
  mb_buf_puts(b, ", \"libmoe\": ");
  mb_buf_json_str(b, moe_version());
  mb_buf_puts(b, ", \"git_commit\": ");
  mb_buf_json_str(b, MB_GIT_COMMIT);
  mb_buf_puts(b, ",\n    \"compiler\": ");
#if defined(__clang__)
  mb_buf_json_str(b, "clang " __clang_version__);
#elif defined(__GNUC__)
  mb_buf_json_str(b, "gcc " __VERSION__);
#else
  mb_buf_json_str(b, "unknown");
#endif
  mb_buf_puts(b, ", \"cflags\": ");
  mb_buf_json_str(b, MB_CFLAGS);
  mb_buf_puts(b, ",\n    \"gsl\": ");
  mb_buf_json_str(b, gsl_version);
  mb_buf_puts(b, ", \"libyaml\": ");
  mb_buf_json_str(b, yaml_get_version_string());
  mb_buf_puts(b, ", \"zlib\": ");
  mb_buf_json_str(b, zlibVersion());
  mb_buf_puts(b, ",\n    \"blas\": {\"name\": ");
  mb_buf_json_str(b, moe_blas_name());
  mb_buf_puts(b, ", \"core\": ");
  mb_buf_json_str(b, moe_blas_corename());
  mb_buf_puts(b, ", \"core_source\": ");
  mb_buf_json_str(b, mb_blas_core_source());
  mb_buf_puts(b, ", \"config\": ");
  mb_buf_json_str(b, moe_blas_config());
  mb_buf_printf(b, ", \"threads\": %d},\n    \"cpu\": ", blas_threads);
  mb_buf_json_str(b, cpu);
  mb_buf_puts(b, ", \"hostname\": ");
  mb_buf_json_str(b, host);
  if (uname(&u) == 0) {
    char os[600];
    snprintf(os, sizeof os, "%s %s %s", u.sysname, u.release, u.machine);
    mb_buf_puts(b, ", \"os\": ");
    mb_buf_json_str(b, os);
  }
  mb_buf_puts(b, "}");
}

void mb_result_json(mb_buf *b, const mb_matrix *m, const mb_xcell *x, const char *status,
                    const char *error, const mb_result *r, const char *started, double wall_s,
                    double cpu_s, const char *provenance)
{
  mb_buf_printf(b, "{\n  \"format\": \"%s\",\n  \"id\": \"%s\",\n  \"matrix\": ", MB_RESULT_FORMAT,
                x->id);
  mb_buf_json_str(b, m->name);
  mb_buf_puts(b, ",\n  \"task\": ");
  mb_buf_json_str(b, m->task->name);
  mb_buf_printf(b, ",\n  \"rep\": %ld,\n  \"seed\": %llu,\n  \"status\": \"%s\",\n", x->rep,
                (unsigned long long)x->seed, status);
  if (strcmp(status, "ok")) {
    mb_buf_puts(b, "  \"error\": ");
    mb_buf_json_str(b, error ? error : "unknown error");
    mb_buf_puts(b, ",\n");
  }
  mb_buf_puts(b, "  \"config\": {");
  size_t i = 0;
  for (const mb_param *p = m->task->params; p->name; p++, i++) {
    const char *v = mb_cell_str(x->cell, p->name);
    mb_buf_puts(b, i ? ", " : "");
    mb_buf_json_str(b, p->name);
    mb_buf_puts(b, ": ");
    if (!v)
      mb_buf_puts(b, "null");
    else if (p->type == MB_STR)
      mb_buf_json_str(b, v);
    else
      mb_buf_puts(b, v); /* canonical text of int/real/bool is valid JSON */
  }
  /* metrics on one line: easy to compare across runs with grep */
  mb_buf_puts(b, "},\n  \"metrics\": {");
  for (i = 0; r && i < mb_result_size(r); i++) {
    mb_buf_puts(b, i ? ", " : "");
    mb_buf_json_str(b, mb_result_name_at(r, i));
    mb_buf_puts(b, ": ");
    mb_buf_json_num(b, mb_result_value_at(r, i));
  }
  mb_buf_puts(b, "},\n  \"notes\": {");
  for (i = 0; r && i < mb_result_nnotes(r); i++) {
    mb_buf_puts(b, i ? ", " : "");
    mb_buf_json_str(b, mb_result_note_key_at(r, i));
    mb_buf_puts(b, ": ");
    mb_buf_json_str(b, mb_result_note_at(r, i));
  }
  mb_buf_puts(b, "},\n  \"timing\": {\"started\": ");
  mb_buf_json_str(b, started);
  mb_buf_puts(b, ", \"wall_s\": ");
  mb_buf_json_num(b, wall_s);
  mb_buf_puts(b, ", \"cpu_s\": ");
  mb_buf_json_num(b, cpu_s);
  mb_buf_printf(b, "},\n  \"provenance\": %s\n}\n", provenance);
}

FILE *mb_dump_open(const char *task, uint64_t seed, char *path, size_t pathlen, char *err,
                   size_t errlen)
{
  const char *dir = getenv("MOEBENCH_DUMP_ROUTING");
  if (errlen)
    err[0] = 0;
  if (!dir || !*dir)
    return NULL;
  char tmp[4500];
  snprintf(path, pathlen, "%s/%s-%016llx.routing", dir, task, (unsigned long long)seed);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(err, errlen, "routing dump: %s: %s", tmp, strerror(errno));
    return NULL;
  }
  fprintf(f, "moebench-routing 1 %s\n", task);
  return f;
}

int mb_dump_close(FILE *f, const char *path, int keep, mb_result *r, char *err, size_t errlen)
{
  char tmp[4500];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int bad = fflush(f) != 0 || ferror(f);
  bad |= keep &&
         fsync(fileno(f)) != 0; /* then rename: a crash leaves the old name or the whole file */
  bad |= fclose(f) != 0;
  if (!keep) {
    remove(tmp);
    return 0;
  }
  if (bad) {
    snprintf(err, errlen, "routing dump: %s: write error (disk full?)", tmp);
    remove(tmp);
    return -1;
  }
  if (rename(tmp, path)) {
    snprintf(err, errlen, "routing dump: cannot rename %s to %s: %s", tmp, path, strerror(errno));
    remove(tmp);
    return -1;
  }
  if (mb_result_note(r, "routing_dump", path)) {
    snprintf(err, errlen, "routing dump: out of memory");
    return -1;
  }
  return 0;
}
