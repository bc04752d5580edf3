/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix.c — parse, validate and expand an experiment matrix.
 *
 * libyaml's document API gives a node tree with start marks; every check
 * reports at the mark of the offending key or value. Values are reduced to
 * canonical text per parameter type (integers "%lld", reals the shortest
 * "%.Ng" that reads back to the same double, booleans true/false), so the
 * cell id — a hash of that text — does not depend on how a value was
 * spelled, nor on key or axis order. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "matrix.h"
#include "moe/rng.h"
#include "sha256.h"

const char *const mb_stat_names[] = {"mean", "sd", "se", "ci95", "n", "median", "min", "max", "trmean", NULL};

static const char *const top_keys[] = {"name", "description", "task", "seed", "base", "axes",
                                       "replications", "include", "exclude", "tables", "fits",
                                       "plots", "summary", "sequential", "claims", NULL};
static const char *const table_keys[] = {"name", "rows", "columns", "metric", "stats", "paired", "reach",
                                         "power", "family", NULL};
static const char *const power_keys[] = {"effect", NULL};
static const char *const sequential_keys[] = {"compare", "half_width", "max_replications", "round", NULL};
static const char *const fit_keys[] = {"name", "x", "y", "by", "bootstrap", "references", "centers", "exclude", NULL};
static const char *const center_names[] = {"mean", "median", "trmean", NULL};
static const char *const plot_keys[] = {"name", "x", "y", "by", "panels", "logx", "logy", "errorbars",
                                        "fit", "title", "xlabel", "ylabel", "titles", NULL};
static const char *const ref_labels[] = {"loss", "paper", "theory", NULL};
static const char *const claim_keys[] = {"claim", "table", "row", "column", "expect", NULL};
const char *const mb_expect_names[] = {"lt0", "gt0", "ne0", NULL};

/* ---- small helpers ---- */

/* Edit distance counting an adjacent transposition as one edit (optimal
 * string alignment), so 'rpe' is nearer 'rep' than 'e'. */
static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return (size_t)-1;
  size_t d[65][65];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

const char *mb_did_you_mean(const char *word, const char *const *cands, size_t n)
{
  const char *best = NULL;
  size_t bd = (size_t)-1, lim = strlen(word) / 3;
  if (lim < 2) lim = 2;
  for (size_t i = 0; i < n && cands[i]; i++) {
    size_t d = edit_distance(word, cands[i]);
    if (d < bd) { bd = d; best = cands[i]; }
  }
  if (bd <= lim) return best;
  /* a truncated name ('sleep' for 'sleep_ms') */
  size_t lw = strlen(word);
  for (size_t i = 0; lw >= 3 && i < n && cands[i]; i++)
    if (!strncmp(word, cands[i], lw)) return cands[i];
  return NULL;
}

/* The harness has no way on without memory: say so and stop (exit 1),
 * never a silent abort. Nothing is lost: matrices are expanded before any
 * cell runs, and results are written by the workers one file at a time. */
void mb_oom(size_t bytes)
{
  if (bytes) fprintf(stderr, "moebench: out of memory (allocating %zu bytes); see ulimit -v and free memory\n", bytes);
  else fprintf(stderr, "moebench: out of memory; see ulimit -v and free memory\n");
  exit(1);
}

static char *xstrdup(const char *s)
{
  char *d = strdup(s ? s : "");
  if (!d) mb_oom(strlen(s ? s : "") + 1);
  return d;
}

static void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q) mb_oom(n);
  return q;
}

/* Arrays grown one element at a time (PUSH) grow geometrically: capacity is
 * the next power of two >= n, so a 10-million-cell expansion does not
 * realloc 10 million times. */
static void *xgrow(void *p, size_t n, size_t size)
{
  if (n & (n - 1)) return p;   /* n not a power of two: room is left */
  if (n && size > ((size_t)-1) / 2 / n) mb_oom(0);
  return xrealloc(p, (n ? 2 * n : 1) * size);
}

#define PUSH(arr, n, v) do { (arr) = xgrow((arr), (n), sizeof *(arr)); (arr)[(n)++] = (v); } while (0)

typedef struct { const char *id; size_t i; } idpos_t;

/* Bytes this process may still allocate: the smaller of what `ulimit -v`
 * (RLIMIT_AS) leaves above the current size and the system's available
 * memory plus free swap; what in *why. 0 if neither is known. */
static double memory_available(const char **why)
{
  double best = 0;
  *why = "";
  struct rlimit rl;
  long page = sysconf(_SC_PAGESIZE);
  if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY && page > 0) {
    unsigned long vm = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%lu", &vm) != 1) vm = 0; fclose(f); }
    double left = (double)rl.rlim_cur - (double)vm * (double)page;
    best = left > 0 ? left : 1;
    *why = "the address-space limit, ulimit -v";
  }
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    double avail = -1, swap = 0, kb;
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) avail = kb * 1024;
      else if (sscanf(line, "SwapFree: %lf kB", &kb) == 1) swap = kb * 1024;
    }
    fclose(f);
    if (avail >= 0 && (best == 0 || avail + swap < best)) { best = avail + swap; *why = "available memory and free swap"; }
  }
  return best;
}

/* Shortest "%.Ng" that reads back to the same double. */
static void real_text(double v, char *buf, size_t len)
{
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, len, "%.*g", p, v);
    if (strtod(buf, NULL) == v) return;
  }
}

int mb_param_canon(const mb_param *p, const char *s, char **out, char *why, size_t whylen)
{
  char buf[64];
  char *end;
  *out = NULL;
  switch (p->type) {
  case MB_INT: {
    /* digits, or an integral value in exponent form (1e3); one too large
     * for any range (1e300, 99999999999999999999) is out of range, not
     * "not an integer" */
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno) {
      errno = 0;
      double d = strtod(s, &end);
      int huge = end != s && !*end && ((isinf(d) && errno == ERANGE) || (isfinite(d) && d == floor(d) && fabs(d) > 9007199254740992.0));
      if (huge) {
        if (p->min <= p->max) snprintf(why, whylen, "'%s' = %s is out of range [%.15g, %.15g]", p->name, s, p->min, p->max);
        else snprintf(why, whylen, "'%s' = %s is out of range (integers up to 2^53)", p->name, s);
        return 2;
      }
      if (end == s || *end || !isfinite(d) || d != floor(d)) {
        snprintf(why, whylen, "'%s' must be an integer, got '%s'", p->name, s);
        return 1;
      }
      v = (long long)d;
    }
    if (p->min <= p->max && ((double)v < p->min || (double)v > p->max)) {
      snprintf(why, whylen, "'%s' = %lld is out of range [%.15g, %.15g]", p->name, v, p->min, p->max);
      return 2;
    }
    snprintf(buf, sizeof buf, "%lld", v);
    break;
  }
  case MB_REAL: {
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d)) {
      snprintf(why, whylen, "'%s' must be a finite real number, got '%s'", p->name, s);
      return 1;
    }
    if (p->min <= p->max && (d < p->min || d > p->max)) {
      snprintf(why, whylen, "'%s' = %s is out of range [%.15g, %.15g]", p->name, s, p->min, p->max);
      return 2;
    }
    if (d == 0) d = 0; /* -0 and 0 are one configuration */
    real_text(d, buf, sizeof buf);
    break;
  }
  case MB_BOOL: {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    int v = -1;
    for (int i = 0; yes[i]; i++) if (!strcmp(s, yes[i])) v = 1;
    for (int i = 0; no[i]; i++) if (!strcmp(s, no[i])) v = 0;
    if (v < 0) {
      snprintf(why, whylen, "'%s' must be true or false, got '%s'", p->name, s);
      return 1;
    }
    snprintf(buf, sizeof buf, "%s", v ? "true" : "false");
    break;
  }
  case MB_STR:
  default:
    if (p->choices) {
      int found = 0;
      size_t nc = 0;
      for (const char *const *c = p->choices; *c; c++, nc++) if (!strcmp(*c, s)) found = 1;
      if (!found) {
        mb_buf b;
        mb_buf_init(&b);
        for (const char *const *c = p->choices; *c; c++) mb_buf_printf(&b, "%s%s", c == p->choices ? "" : ", ", *c);
        const char *dym = mb_did_you_mean(s, p->choices, nc);
        snprintf(why, whylen, "'%s' = '%s' is not one of: %s%s%s%s", p->name, s, b.s ? b.s : "",
                 dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        mb_buf_free(&b);
        return 2;
      }
    }
    *out = xstrdup(s);
    return 0;
  }
  *out = xstrdup(buf);
  return 0;
}

/* ---- error collection ---- */

typedef struct {
  mb_mark at;
  int warning;
  char *msg;
} diag_t;

typedef struct {
  const char *file;
  yaml_document_t doc;
  diag_t *d;
  size_t nd;
  int nerr;
  size_t dropped;   /* diagnostics beyond the first 200, not stored */
  mb_matrix *m;
} ctx;

static void vreport(ctx *c, mb_mark at, int warning, const char *fmt, va_list ap)
{
  char msg[1024];
  if (c->nd >= 200) {   /* enough to act on; count the rest */
    c->dropped++;
    if (!warning) c->nerr++;
    return;
  }
  vsnprintf(msg, sizeof msg, fmt, ap);
  for (size_t i = 0; i < c->nd; i++) /* one report per (place, message) */
    if (c->d[i].at.line == at.line && c->d[i].at.col == at.col && !strcmp(c->d[i].msg, msg)) return;
  diag_t d = {at, warning, xstrdup(msg)};
  PUSH(c->d, c->nd, d);
  if (!warning) c->nerr++;
}

static void err(ctx *c, mb_mark at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void err(ctx *c, mb_mark at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(c, at, 0, fmt, ap);
  va_end(ap);
}

static void warn(ctx *c, mb_mark at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void warn(ctx *c, mb_mark at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(c, at, 1, fmt, ap);
  va_end(ap);
}

static void flush_diags(ctx *c, mb_buf *msgs)
{
  diag_t *d = c->d;
  size_t n = c->nd;
  /* insertion sort keeps equal positions in discovery order */
  for (size_t i = 1; i < n; i++) {
    diag_t t = d[i];
    size_t j = i;
    while (j > 0 && (d[j - 1].at.line > t.at.line ||
                     (d[j - 1].at.line == t.at.line && d[j - 1].at.col > t.at.col))) {
      d[j] = d[j - 1];
      j--;
    }
    d[j] = t;
  }
  size_t shown = 0;
  for (size_t i = 0; i < n; i++) {
    if (shown == 50) break;
    if (msgs) {
      if (d[i].at.line > 0) mb_buf_printf(msgs, "%s:%d:%d: ", c->file, d[i].at.line, d[i].at.col);
      else mb_buf_printf(msgs, "%s: ", c->file);
      mb_buf_printf(msgs, "%s%s\n", d[i].warning ? "warning: " : "", d[i].msg);
    }
    shown++;
  }
  if (msgs && n + c->dropped > shown)
    mb_buf_printf(msgs, "%s: ... and %zu more\n", c->file, n + c->dropped - shown);
  for (size_t i = 0; i < n; i++) free(d[i].msg);
  free(d);
  c->d = NULL;
  c->nd = 0;
}

/* ---- YAML node helpers ---- */

static yaml_node_t *node(ctx *c, int i) { return yaml_document_get_node(&c->doc, i); }

static mb_mark mark_of(const yaml_node_t *n)
{
  mb_mark m = {(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
  return m;
}

static const char *kind(const yaml_node_t *n)
{
  return n->type == YAML_MAPPING_NODE ? "mapping" : n->type == YAML_SEQUENCE_NODE ? "list" : "scalar";
}

static const char *stext(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n)
{
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *s = stext(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

typedef struct {
  const char *key;
  yaml_node_t *k, *v;
} pair_t;

/* The pairs of a mapping, with keys checked: scalar, known (against
 * allowed; NULL = any), and not repeated. Unknown/duplicate pairs are
 * reported and left out. Returns a malloc'd array (count in *np). */
static pair_t *pairs(ctx *c, yaml_node_t *map, const char *const *allowed, size_t nallowed,
                     const char *what, size_t *np)
{
  pair_t *out = NULL;
  size_t n = 0;
  *np = 0;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    if (!k || !v) continue;
    if (k->type != YAML_SCALAR_NODE) { err(c, mark_of(k), "a key must be a plain name, not a %s", kind(k)); continue; }
    const char *key = stext(k);
    int dup = 0;
    for (size_t i = 0; i < n; i++)
      if (!strcmp(out[i].key, key)) {
        err(c, mark_of(k), "duplicate key '%s' (first at line %d)", key, mark_of(out[i].k).line);
        dup = 1;
      }
    if (dup) continue;
    if (allowed) {
      int ok = 0;
      for (size_t i = 0; i < nallowed; i++) if (!strcmp(allowed[i], key)) ok = 1;
      if (!ok) {
        const char *dym = mb_did_you_mean(key, allowed, nallowed);
        if (dym) err(c, mark_of(k), "unknown key '%s' in %s (did you mean '%s'?)", key, what, dym);
        else err(c, mark_of(k), "unknown key '%s' in %s", key, what);
        continue;
      }
    }
    pair_t pr = {key, k, v};
    PUSH(out, n, pr);
  }
  *np = n;
  return out;
}

static yaml_node_t *get(pair_t *p, size_t n, const char *key, yaml_node_t **k)
{
  for (size_t i = 0; i < n; i++)
    if (!strcmp(p[i].key, key)) { if (k) *k = p[i].k; return p[i].v; }
  return NULL;
}

static size_t count(const char *const *list)
{
  size_t n = 0;
  while (list[n]) n++;
  return n;
}

/* A scalar string value; reports and returns NULL otherwise. */
static const char *want_scalar(ctx *c, yaml_node_t *v, const char *what)
{
  if (v->type != YAML_SCALAR_NODE) { err(c, mark_of(v), "%s must be a scalar, got a %s", what, kind(v)); return NULL; }
  if (is_null(v)) { err(c, mark_of(v), "%s has no value", what); return NULL; }
  return stext(v);
}

static int want_bool(ctx *c, yaml_node_t *v, const char *what, int *out)
{
  static const mb_param bp = {"", MB_BOOL, NULL, 0, -1, NULL, NULL};
  const char *s = want_scalar(c, v, what);
  char *canon, why[256];
  if (!s) return 0;
  if (mb_param_canon(&bp, s, &canon, why, sizeof why)) {
    err(c, mark_of(v), "%s must be true or false, got '%s'", what, s);
    return 0;
  }
  *out = canon[0] == 't';
  free(canon);
  return 1;
}

/* A name or a list of names (rows: n / rows: [n, k]); where each one is
 * goes to *at (malloc'd) if at is given. */
static char **want_names_at(ctx *c, yaml_node_t *v, const char *what, size_t *n, mb_mark **at)
{
  char **out = NULL;
  size_t na = 0;
  *n = 0;
  if (at) *at = NULL;
  if (v->type == YAML_SCALAR_NODE) {
    const char *s = want_scalar(c, v, what);
    if (s) {
      PUSH(out, *n, xstrdup(s));
      if (at) PUSH(*at, na, mark_of(v));
    }
    return out;
  }
  if (v->type != YAML_SEQUENCE_NODE) { err(c, mark_of(v), "%s must be a name or a list of names", what); return NULL; }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    const char *s = e ? want_scalar(c, e, what) : NULL;
    if (!s) continue;
    PUSH(out, *n, xstrdup(s));
    if (at) PUSH(*at, na, mark_of(e));
  }
  return out;
}

static const mb_param *find_param(const mb_task *t, const char *key, size_t *idx)
{
  size_t i = 0;
  for (const mb_param *p = t->params; p->name; p++, i++)
    if (!strcmp(p->name, key)) { if (idx) *idx = i; return p; }
  return NULL;
}

static const mb_param rep_param = {"rep", MB_INT, "0", 0, 1e9, NULL, "replication index"};

/* Parameter names (plus "rep" if with_rep) for did-you-mean. */
static const char **param_names(const mb_task *t, int with_rep, size_t *n)
{
  const char **names = NULL;
  *n = 0;
  for (const mb_param *p = t->params; p->name; p++) PUSH(names, *n, p->name);
  if (with_rep) PUSH(names, *n, "rep");
  return names;
}

/* Check that key names a parameter (or rep); report at k otherwise. */
static const mb_param *want_param(ctx *c, const char *key, mb_mark at, int allow_rep, const char *where)
{
  const mb_task *t = c->m->task;
  const mb_param *p = find_param(t, key, NULL);
  if (p) return p;
  if (allow_rep && !strcmp(key, "rep")) return &rep_param;
  size_t n;
  const char **names = param_names(t, allow_rep, &n);
  const char *dym = mb_did_you_mean(key, names, n);
  if (dym) err(c, at, "unknown parameter '%s' in %s for task '%s' (did you mean '%s'?)", key, where, t->name, dym);
  else err(c, at, "unknown parameter '%s' in %s for task '%s' (see `moebench tasks %s`)", key, where, t->name, t->name);
  free(names);
  return NULL;
}

static int want_metric(ctx *c, const char *name, mb_mark at)
{
  const mb_task *t = c->m->task;
  size_t n = t->metrics ? count(t->metrics) : 0;
  for (size_t i = 0; i < n; i++) if (!strcmp(t->metrics[i], name)) return 1;
  /* NAME@X: a declared family NAME@ at one index X (a number) */
  const char *a = strrchr(name, '@');
  if (a && a[1]) {
    char *end;
    double x = strtod(a + 1, &end);
    size_t L = (size_t)(a - name) + 1;
    if (!*end && isfinite(x))
      for (size_t i = 0; i < n; i++)
        if (!strncmp(t->metrics[i], name, L) && !t->metrics[i][L]) return 1;
  }
  const char *dym = n ? mb_did_you_mean(name, (const char *const *)t->metrics, n) : NULL;
  mb_buf b;
  mb_buf_init(&b);
  for (size_t i = 0; i < n; i++) mb_buf_printf(&b, "%s%s", i ? ", " : "", t->metrics[i]);
  if (dym) err(c, at, "unknown metric '%s' for task '%s' (did you mean '%s'?)", name, t->name, dym);
  else err(c, at, "unknown metric '%s' for task '%s' (it reports: %s)", name, t->name, b.s ? b.s : "nothing");
  mb_buf_free(&b);
  return 0;
}

/* Canonical value of parameter p from node v. */
static char *canon_node(ctx *c, const mb_param *p, yaml_node_t *v)
{
  static const char *const tn[] = {"an integer", "a real number", "a string", "a boolean"};
  if (v->type != YAML_SCALAR_NODE) {
    err(c, mark_of(v), "'%s' must be %s, got a %s", p->name, tn[p->type], kind(v));
    return NULL;
  }
  if (is_null(v)) { err(c, mark_of(v), "'%s' has no value", p->name); return NULL; }
  char *out, why[512];
  if (mb_param_canon(p, stext(v), &out, why, sizeof why)) { err(c, mark_of(v), "%s", why); return NULL; }
  return out;
}

static void kvl_free(mb_kvl *kv)
{
  free(kv->key);
  for (size_t i = 0; i < kv->n; i++) free(kv->val[i]);
  free(kv->val);
  free(kv->at);
}

/* Order of value indices by (text, index), for finding repeated values. */
static char *const *dup_vals;
static int dup_cmp(const void *a, const void *b)
{
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  int r = strcmp(dup_vals[i], dup_vals[j]);
  return r ? r : (i > j) - (i < j);
}

static int size_cmp(const void *a, const void *b)
{
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  return (i > j) - (i < j);
}

/* Report every value of out that repeats an earlier one, naming the first
 * occurrence, in file order: sorted, not pairwise (200k values: 0.2 s,
 * not minutes). 0 if there were repeats. */
static int no_dup_values(ctx *c, const mb_kvl *out)
{
  if (out->n < 2) return 1;
  size_t *ix = xrealloc(NULL, out->n * sizeof *ix), *rep = xrealloc(NULL, 2 * out->n * sizeof *rep), nrep = 0;
  for (size_t i = 0; i < out->n; i++) ix[i] = i;
  dup_vals = out->val;
  qsort(ix, out->n, sizeof *ix, dup_cmp);
  for (size_t i = 1, first = ix[0]; i < out->n; i++) {
    if (strcmp(out->val[ix[i]], out->val[first])) { first = ix[i]; continue; }
    rep[2 * nrep] = ix[i];
    rep[2 * nrep++ + 1] = first;
  }
  qsort(rep, nrep, 2 * sizeof *rep, size_cmp); /* file order of the repeats */
  for (size_t r = 0; r < nrep; r++)
    err(c, out->at[rep[2 * r]], "duplicate value '%s' for '%s' (first at line %d)", out->val[rep[2 * r]], out->key,
        out->at[rep[2 * r + 1]].line);
  free(ix);
  free(rep);
  return nrep == 0;
}

/* One key with its value(s): a scalar, or (if allow_list) a non-empty list. */
static int parse_kv(ctx *c, pair_t *pr, int allow_rep, int allow_list, const char *where, mb_kvl *out)
{
  memset(out, 0, sizeof *out);
  const mb_param *p = want_param(c, pr->key, mark_of(pr->k), allow_rep, where);
  if (!p) return 0;
  out->key = xstrdup(pr->key);
  out->kat = mark_of(pr->k);
  int okay = 1;
  if (pr->v->type == YAML_SEQUENCE_NODE && allow_list) {
    yaml_node_item_t *it0 = pr->v->data.sequence.items.start, *it1 = pr->v->data.sequence.items.top;
    if (it0 == it1) { err(c, mark_of(pr->v), "'%s' has an empty list of values", pr->key); okay = 0; }
    size_t cap = (size_t)(it1 - it0);
    out->val = xrealloc(NULL, (cap ? cap : 1) * sizeof *out->val);
    out->at = xrealloc(NULL, (cap ? cap : 1) * sizeof *out->at);
    for (yaml_node_item_t *it = it0; it < it1; it++) {
      yaml_node_t *e = node(c, *it);
      char *v = e ? canon_node(c, p, e) : NULL;
      if (!v) { okay = 0; continue; }
      out->val[out->n] = v;
      out->at[out->n++] = mark_of(e);
    }
    if (!no_dup_values(c, out)) okay = 0;
  } else {
    char *v = canon_node(c, p, pr->v);
    if (!v) okay = 0;
    else {
      out->val = xrealloc(NULL, sizeof *out->val);
      out->at = xrealloc(NULL, sizeof *out->at);
      out->val[0] = v;
      out->at[0] = mark_of(pr->v);
      out->n = 1;
    }
  }
  if (!okay) { kvl_free(out); memset(out, 0, sizeof *out); }
  return okay;
}

/* include/exclude: a list of maps of parameter (or rep) values. */
static mb_map *parse_maps(ctx *c, yaml_node_t *v, const char *what, int allow_list, size_t *nout)
{
  mb_map *maps = NULL;
  *nout = 0;
  if (v->type != YAML_SEQUENCE_NODE) { err(c, mark_of(v), "%s must be a list of mappings", what); return NULL; }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e) continue;
    if (e->type != YAML_MAPPING_NODE) { err(c, mark_of(e), "each %s entry must be a mapping, got a %s", what, kind(e)); continue; }
    size_t np;
    pair_t *pr = pairs(c, e, NULL, 0, what, &np);
    mb_map m = {NULL, 0, mark_of(e)};
    if (np == 0) err(c, mark_of(e), "empty %s entry", what);
    for (size_t i = 0; i < np; i++) {
      if (pr[i].v->type == YAML_SEQUENCE_NODE && !allow_list) {
        err(c, mark_of(pr[i].v), "'%s' in include must be a single value (lists are for exclude)", pr[i].key);
        continue;
      }
      mb_kvl kv;
      if (parse_kv(c, &pr[i], 1, allow_list, what, &kv)) PUSH(m.kv, m.n, kv);
    }
    free(pr);
    PUSH(maps, *nout, m);
  }
  return maps;
}

/* ---- tables, fits, plots ---- */

static int valid_name(const char *s)
{
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-')) return 0;
  return 1;
}

static char *want_name(ctx *c, pair_t *pr, size_t np, yaml_node_t *entry, const char *what)
{
  yaml_node_t *v = get(pr, np, "name", NULL);
  if (!v) { err(c, mark_of(entry), "%s entry has no 'name'", what); return NULL; }
  const char *s = want_scalar(c, v, "'name'");
  if (!s) return NULL;
  if (!valid_name(s)) { err(c, mark_of(v), "name '%s' must match [a-z0-9_-]+", s); return NULL; }
  return xstrdup(s);
}

/* Names that must be parameters (or rep), each checked at its own place. */
static char **want_keys(ctx *c, yaml_node_t *v, const char *where, size_t *n)
{
  mb_mark *at;
  char **names = want_names_at(c, v, where, n, &at);
  for (size_t i = 0; i < *n; i++) want_param(c, names[i], at[i], 1, where);
  free(at);
  return names;
}

static char *want_metric_node(ctx *c, pair_t *pr, size_t np, yaml_node_t *entry, const char *key)
{
  yaml_node_t *v = get(pr, np, key, NULL);
  if (!v) { err(c, mark_of(entry), "missing '%s'", key); return NULL; }
  const char *s = want_scalar(c, v, key);
  if (!s || !want_metric(c, s, mark_of(v))) return NULL;
  return xstrdup(s);
}

/* A positive real (half_width, effect): its value, or NaN (reported). */
static double want_positive(ctx *c, yaml_node_t *v, const char *what)
{
  const mb_param p = {what, MB_REAL, NULL, 0, -1, NULL, NULL};
  char *s = canon_node(c, &p, v);
  double d = s ? strtod(s, NULL) : NAN;
  free(s);
  if (s && !(d > 0)) { err(c, mark_of(v), "'%s' must be positive, got %s", what, stext(v)); d = NAN; }
  return d;
}

/* power: {effect: X} on a paired table: the n that detects X. */
static void parse_power(ctx *c, yaml_node_t *x, mb_table *t)
{
  if (x->type != YAML_MAPPING_NODE) { err(c, mark_of(x), "power must be a mapping, e.g. {effect: 0.01}"); return; }
  size_t np;
  pair_t *pr = pairs(c, x, power_keys, count(power_keys), "power", &np);
  yaml_node_t *e = get(pr, np, "effect", NULL);
  if (!e) err(c, mark_of(x), "power has no 'effect' (the difference to detect, in the metric's units)");
  else t->power_effect = want_positive(c, e, "effect");
  if (!t->paired || t->reach) err(c, mark_of(x), "power needs a paired table (without reach)");
  free(pr);
}

static void parse_tables(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) { err(c, mark_of(v), "tables must be a list of mappings"); return; }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e) continue;
    if (e->type != YAML_MAPPING_NODE) { err(c, mark_of(e), "each table must be a mapping"); continue; }
    size_t np;
    pair_t *pr = pairs(c, e, table_keys, count(table_keys), "table", &np);
    mb_table t;
    memset(&t, 0, sizeof t);
    t.name = want_name(c, pr, np, e, "table");
    for (size_t i = 0; t.name && i < m->ntables; i++)
      if (m->tables[i].name && !strcmp(m->tables[i].name, t.name)) err(c, mark_of(e), "duplicate table name '%s'", t.name);
    yaml_node_t *x;
    if ((x = get(pr, np, "rows", NULL))) {
      t.rows = want_keys(c, x, "rows", &t.nrows);
      if (t.nrows == 0 && x->type == YAML_SEQUENCE_NODE) err(c, mark_of(x), "rows must name at least one key");
    } else err(c, mark_of(e), "table has no 'rows'");
    if ((x = get(pr, np, "columns", NULL))) {
      t.cols = want_keys(c, x, "columns", &t.ncols);
      for (size_t i = 0; i < t.ncols; i++)
        for (size_t j = 0; j < t.nrows; j++)
          if (!strcmp(t.cols[i], t.rows[j])) err(c, mark_of(x), "'%s' is in both rows and columns", t.cols[i]);
    }
    t.metric = want_metric_node(c, pr, np, e, "metric");
    if ((x = get(pr, np, "paired", NULL))) {
      const char *s = want_scalar(c, x, "paired");
      if (s && t.nrows != 1) err(c, mark_of(x), "paired needs exactly one row key");
      else if (s) {
        /* the baseline must be a value the row key takes */
        const mb_param *p = find_param(m->task, t.rows[0], NULL);
        char *cv = NULL, why[256];
        if (p && mb_param_canon(p, s, &cv, why, sizeof why)) err(c, mark_of(x), "paired: %s", why);
        else t.paired = cv ? cv : xstrdup(s);
      }
    }
    if ((x = get(pr, np, "reach", NULL))) {
      want_bool(c, x, "reach", &t.reach);
      if (t.reach && (!t.paired || !t.metric || t.metric[strlen(t.metric) - 1] != '@'))
        err(c, mark_of(x), "reach needs paired and a metric family (NAME@)");
    }
    t.power_effect = NAN;
    if ((x = get(pr, np, "power", NULL))) parse_power(c, x, &t);
    if ((x = get(pr, np, "family", NULL))) {
      const char *s = want_scalar(c, x, "family");
      if (s && !valid_name(s)) err(c, mark_of(x), "family '%s' must match [a-z0-9_-]+", s);
      else if (s && (!t.paired || t.reach)) err(c, mark_of(x), "family needs a paired table (without reach)");
      else if (s) t.family = xstrdup(s);
    }
    if ((x = get(pr, np, "stats", NULL))) {
      size_t ns;
      mb_mark *sat;
      char **s = want_names_at(c, x, "stats", &ns, &sat);
      for (size_t i = 0; i < ns; i++) {
        int k = -1;
        for (int j = 0; j < MB_S_COUNT; j++) if (!strcmp(s[i], mb_stat_names[j])) k = j;
        if (k < 0) {
          const char *dym = mb_did_you_mean(s[i], mb_stat_names, MB_S_COUNT);
          err(c, sat[i], "unknown statistic '%s'%s%s%s (one of: mean sd se ci95 n median min max trmean)", s[i],
              dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        } else t.stats[t.nstats++ % MB_S_COUNT] = k;
        free(s[i]);
      }
      free(s);
      free(sat);
      if (t.nstats > MB_S_COUNT) { err(c, mark_of(x), "too many statistics"); t.nstats = MB_S_COUNT; }
      if (ns == 0) err(c, mark_of(x), "stats must name at least one statistic");
    } else {
      t.stats[0] = MB_S_MEAN;
      t.stats[1] = MB_S_SE;
      t.nstats = 2;
    }
    free(pr);
    PUSH(m->tables, m->ntables, t);
  }
}

/* A list of maps whose keys are the by-keys (values canonical, selecting
 * groups) or one of labels (free text): fit references, plot titles. */
static mb_ref *parse_refs(ctx *c, yaml_node_t *x, char **by, size_t nby, const char *const *labels,
                          const char *what, const char *each, size_t *nout)
{
  mb_matrix *m = c->m;
  mb_ref *out = NULL;
  *nout = 0;
  if (x->type != YAML_SEQUENCE_NODE) { err(c, mark_of(x), "%s must be a list of mappings", what); return NULL; }
  for (yaml_node_item_t *ri = x->data.sequence.items.start; ri < x->data.sequence.items.top; ri++) {
    yaml_node_t *re = node(c, *ri);
    if (!re) continue;
    if (re->type != YAML_MAPPING_NODE) { err(c, mark_of(re), "each %s must be a mapping", each); continue; }
    const char **allowed = NULL;
    size_t na = 0;
    for (size_t i = 0; i < nby; i++) PUSH(allowed, na, by[i]);
    for (size_t i = 0; labels[i]; i++) PUSH(allowed, na, labels[i]);
    size_t nr;
    pair_t *rp = pairs(c, re, allowed, na, each, &nr);
    mb_ref r = {NULL, NULL, 0};
    for (size_t i = 0; i < nr; i++) {
      const char *s = want_scalar(c, rp[i].v, rp[i].key);
      if (!s) continue;
      char *val = NULL;
      const mb_param *p = find_param(m->task, rp[i].key, NULL);
      int is_label = 0;
      for (size_t j = 0; labels[j]; j++) if (!strcmp(labels[j], rp[i].key)) is_label = 1;
      if (!is_label) {
        if (!p && !strcmp(rp[i].key, "rep")) p = &rep_param;
        if (p) val = canon_node(c, p, rp[i].v);
      } else val = xstrdup(s);
      if (!val) continue;
      r.key = xrealloc(r.key, (r.n + 1) * sizeof *r.key);
      r.val = xrealloc(r.val, (r.n + 1) * sizeof *r.val);
      r.key[r.n] = xstrdup(rp[i].key);
      r.val[r.n++] = val;
    }
    free(rp);
    free(allowed);
    PUSH(out, *nout, r);
  }
  return out;
}

static void parse_fits(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) { err(c, mark_of(v), "fits must be a list of mappings"); return; }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e) continue;
    if (e->type != YAML_MAPPING_NODE) { err(c, mark_of(e), "each fit must be a mapping"); continue; }
    size_t np;
    pair_t *pr = pairs(c, e, fit_keys, count(fit_keys), "fit", &np);
    mb_fit f;
    memset(&f, 0, sizeof f);
    f.bootstrap = 1000;
    f.centers[0] = 0;
    f.ncenters = 1;
    f.name = want_name(c, pr, np, e, "fit");
    for (size_t i = 0; f.name && i < m->nfits; i++)
      if (m->fits[i].name && !strcmp(m->fits[i].name, f.name)) err(c, mark_of(e), "duplicate fit name '%s'", f.name);
    yaml_node_t *x;
    if ((x = get(pr, np, "x", NULL))) {
      const char *s = want_scalar(c, x, "x");
      if (s) {
        const mb_param *p = want_param(c, s, mark_of(x), 0, "fit x");
        if (p && p->type != MB_INT && p->type != MB_REAL) err(c, mark_of(x), "fit x '%s' must be a numeric parameter", s);
        f.x = xstrdup(s);
      }
    } else err(c, mark_of(e), "fit has no 'x'");
    f.y = want_metric_node(c, pr, np, e, "y");
    if ((x = get(pr, np, "by", NULL))) {
      f.by = want_keys(c, x, "by", &f.nby);
    }
    if ((x = get(pr, np, "bootstrap", NULL))) {
      static const mb_param bp = {"bootstrap", MB_INT, NULL, 0, 1e6, NULL, NULL};
      char *s = canon_node(c, &bp, x);
      if (s) { f.bootstrap = atol(s); free(s); }
    }
    if (get(pr, np, "exclude", NULL)) f.exclude = want_metric_node(c, pr, np, e, "exclude");
    if ((x = get(pr, np, "centers", NULL))) {
      size_t ns;
      mb_mark *sat;
      char **s = want_names_at(c, x, "centers", &ns, &sat);
      f.ncenters = 0;
      for (size_t i = 0; i < ns; i++) {
        int k = -1;
        for (int j = 0; center_names[j]; j++) if (!strcmp(s[i], center_names[j])) k = j;
        if (k < 0) err(c, sat[i], "unknown centre '%s' (one of: mean median trmean)", s[i]);
        else if (f.ncenters < 3) f.centers[f.ncenters++] = k;
        else err(c, sat[i], "at most 3 centres");
        free(s[i]);
      }
      free(s);
      free(sat);
      if (f.ncenters == 0) { err(c, mark_of(x), "centers must name at least one of mean median trmean"); f.ncenters = 1; }
    }
    if ((x = get(pr, np, "references", NULL))) f.refs = parse_refs(c, x, f.by, f.nby, ref_labels, "references", "reference", &f.nrefs);
    free(pr);
    PUSH(m->fits, m->nfits, f);
  }
}

static void parse_plots(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) { err(c, mark_of(v), "plots must be a list of mappings"); return; }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e) continue;
    if (e->type != YAML_MAPPING_NODE) { err(c, mark_of(e), "each plot must be a mapping"); continue; }
    size_t np;
    pair_t *pr = pairs(c, e, plot_keys, count(plot_keys), "plot", &np);
    mb_plot p;
    memset(&p, 0, sizeof p);
    p.errorbars = MB_S_SE;
    p.name = want_name(c, pr, np, e, "plot");
    for (size_t i = 0; p.name && i < m->nplots; i++)
      if (m->plots[i].name && !strcmp(m->plots[i].name, p.name)) err(c, mark_of(e), "duplicate plot name '%s'", p.name);
    yaml_node_t *x;
    yaml_node_t *xn = get(pr, np, "x", NULL);
    if ((x = xn)) {
      const char *s = want_scalar(c, x, "x");
      if (s && !strcmp(s, "@")) p.x = xstrdup(s);
      else if (s) {
        const mb_param *q = want_param(c, s, mark_of(x), 1, "plot x");
        if (q && q->type != MB_INT && q->type != MB_REAL) err(c, mark_of(x), "plot x '%s' must be a numeric parameter", s);
        p.x = xstrdup(s);
      }
    } else err(c, mark_of(e), "plot has no 'x'");
    p.y = want_metric_node(c, pr, np, e, "y");
    if (p.x && p.y && (!strcmp(p.x, "@") != (p.y[strlen(p.y) - 1] == '@')))
      err(c, mark_of(xn), "x '@' (the index) goes with a metric family y (NAME@), and only with one");
    if ((x = get(pr, np, "by", NULL))) {
      p.by = want_keys(c, x, "by", &p.nby);
    }
    if ((x = get(pr, np, "panels", NULL))) want_bool(c, x, "panels", &p.panels);
    if ((x = get(pr, np, "logx", NULL))) want_bool(c, x, "logx", &p.logx);
    if ((x = get(pr, np, "logy", NULL))) want_bool(c, x, "logy", &p.logy);
    if ((x = get(pr, np, "errorbars", NULL))) {
      const char *s = want_scalar(c, x, "errorbars");
      if (s) {
        if (!strcmp(s, "none")) p.errorbars = -1;
        else if (!strcmp(s, "sd")) p.errorbars = MB_S_SD;
        else if (!strcmp(s, "se")) p.errorbars = MB_S_SE;
        else if (!strcmp(s, "ci95")) p.errorbars = MB_S_CI95;
        else err(c, mark_of(x), "errorbars must be one of: none, sd, se, ci95; got '%s'", s);
      }
    }
    if ((x = get(pr, np, "fit", NULL))) {
      const char *s = want_scalar(c, x, "fit");
      if (s) {
        int found = 0;
        const char **names = NULL;
        size_t nn = 0;
        for (size_t i = 0; i < m->nfits; i++) {
          if (m->fits[i].name && !strcmp(m->fits[i].name, s)) found = 1;
          if (m->fits[i].name) PUSH(names, nn, m->fits[i].name);
        }
        if (!found) {
          const char *dym = mb_did_you_mean(s, names, nn);
          err(c, mark_of(x), "plot refers to unknown fit '%s'%s%s%s", s, dym ? " (did you mean '" : "",
              dym ? dym : "", dym ? "'?)" : "");
        } else p.fit = xstrdup(s);
        free(names);
      }
    }
    static const char *const title_label[] = {"title", NULL};
    if ((x = get(pr, np, "titles", NULL))) p.titles = parse_refs(c, x, p.by, p.nby, title_label, "titles", "titles entry", &p.ntitles);
    const char *const lab[] = {"title", "xlabel", "ylabel"};
    char **dst[] = {&p.title, &p.xlabel, &p.ylabel};
    for (int i = 0; i < 3; i++)
      if ((x = get(pr, np, lab[i], NULL))) {
        const char *s = want_scalar(c, x, lab[i]);
        if (s) *dst[i] = xstrdup(s);
      }
    free(pr);
    PUSH(m->plots, m->nplots, p);
  }
}

/* ---- expansion ---- */

static mb_xcell new_xcell(const mb_matrix *m, const mb_cell *proto, const mb_mark *where, long rep)
{
  mb_xcell x;
  memset(&x, 0, sizeof x);
  x.cell = mb_cell_copy(proto);
  if (!x.cell) mb_oom(mb_cell_packed_size(proto));
  x.where = xrealloc(NULL, m->nparams * sizeof *x.where);
  memcpy(x.where, where, m->nparams * sizeof *x.where);
  x.rep = rep;
  snprintf(x.reptext, sizeof x.reptext, "%ld", rep);
  return x;
}

static void set_val(const mb_matrix *m, mb_xcell *x, const char *key, const char *val, mb_mark at)
{
  size_t idx;
  if (!strcmp(key, "rep")) {
    x->rep = atol(val);
    snprintf(x->reptext, sizeof x->reptext, "%ld", x->rep);
    return;
  }
  if (!find_param(m->task, key, &idx)) return;
  /* set unpacks the cell; pack it again so it stays small */
  if (mb_cell_set(x->cell, key, val)) mb_oom(0);
  mb_cell *packed = mb_cell_copy(x->cell);
  if (!packed) mb_oom(0);
  mb_cell_free(x->cell);
  x->cell = packed;
  x->where[idx] = at;
}

const char *mb_xcell_get(const mb_xcell *x, const char *key)
{
  if (!strcmp(key, "rep")) return x->reptext;
  return mb_cell_str(x->cell, key);
}

mb_cell *mb_xcell_task_cell(const mb_matrix *m, const mb_xcell *x)
{
  char seed[24];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
  mb_cell *c = mb_cell_copy(x->cell);
  if (!c || mb_cell_set(c, "rep", x->reptext) || mb_cell_set(c, "matrix_seed", seed)) mb_oom(0);
  return c;
}

static int kvl_matches(const mb_xcell *x, const mb_kvl *kv)
{
  const char *v = mb_xcell_get(x, kv->key);
  if (!v) return 0;
  for (size_t i = 0; i < kv->n; i++) if (!strcmp(v, kv->val[i])) return 1;
  return 0;
}

static int is_axis(const mb_matrix *m, const char *key)
{
  if (!strcmp(key, "rep")) return 1;
  for (size_t i = 0; i < m->naxes; i++) if (!strcmp(m->axes[i].key, key)) return 1;
  return 0;
}

static void xcell_free(mb_xcell *x)
{
  mb_cell_free(x->cell);
  free(x->where);
}

void mb_cell_canonical(const mb_cell *c, long rep, mb_buf *out)
{
  mb_buf_printf(out, "task=%s\n", mb_cell_task(c));
  for (size_t i = 0; i < mb_cell_size(c); i++)
    mb_buf_printf(out, "%s=%s\n", mb_cell_key_at(c, i), mb_cell_value_at(c, i));
  mb_buf_printf(out, "rep=%ld\n", rep);
}

void mb_cell_id(const mb_cell *c, long rep, char id[13])
{
  mb_buf b;
  char hex[65];
  mb_buf_init(&b);
  mb_cell_canonical(c, rep, &b);
  if (b.oom) mb_oom(0);
  moei_sha256_hex(b.s, b.n, hex);
  mb_buf_free(&b);
  memcpy(id, hex, 12);
  id[12] = 0;
}

static int idpos_cmp(const void *a, const void *b)
{
  const idpos_t *x = a, *y = b;
  int d = strcmp(x->id, y->id);
  return d ? d : (x->i > y->i) - (x->i < y->i);
}

static void expand(ctx *c)
{
  mb_matrix *m = c->m;
  const mb_task *t = m->task;
  mb_mark *where = xrealloc(NULL, m->nparams * sizeof *where);
  mb_cell *proto = mb_cell_new(t->name);
  if (!proto) mb_oom(0);
  size_t i = 0;
  for (const mb_param *p = t->params; p->name; p++, i++) {
    where[i].line = where[i].col = 0;
    if (!p->deflt) continue;
    char *v, why[512];
    if (mb_param_canon(p, p->deflt, &v, why, sizeof why)) {
      err(c, m->task_at, "task '%s' declares an invalid default: %s", t->name, why);
      continue;
    }
    mb_cell_set(proto, p->name, v);
    free(v);
  }
  for (i = 0; i < m->nbase; i++) {
    size_t idx;
    if (!find_param(t, m->base[i].key, &idx)) continue;
    mb_cell_set(proto, m->base[i].key, m->base[i].val[0]);
    where[idx] = m->base[i].at[0];
  }

  /* Cartesian product, first axis slowest, replications innermost. */
  double total = (double)m->replications;
  for (i = 0; i < m->naxes; i++) total *= (double)m->axes[i].n;
  if (total > 1e7) {
    err(c, m->task_at, "the matrix expands to %.0f cells (more than 10 million)", total);
    goto done;
  }
  /* What expanding will take, from the layout below (the cell array grows
   * by doubling; a packed cell, its marks, the id sort), refused up front
   * with the numbers rather than dying halfway. */
  {
    double vlen = 0;
    for (i = 0; i < m->naxes; i++) {
      size_t w = 0;
      for (size_t j = 0; j < m->axes[i].n; j++) if (strlen(m->axes[i].val[j]) > w) w = strlen(m->axes[i].val[j]);
      vlen += (double)w;
    }
    double per = 2.0 * sizeof(mb_xcell) + (double)mb_cell_packed_size(proto) + vlen + 32 +
                 (double)(m->nparams * sizeof(mb_mark)) + 32 + sizeof(idpos_t) + 1 + 2 * sizeof(size_t);
    const char *why;
    double need = total * per, avail = memory_available(&why);
    if (avail > 0 && need > avail) {
      err(c, m->task_at, "the matrix expands to %.0f cells, which need about %.0f MB to expand, more than the "
          "%.0f MB left (%s): split it into smaller matrices", total, need / 1048576, avail / 1048576, why);
      goto done;
    }
  }
  size_t ncombo = 1;
  for (i = 0; i < m->naxes; i++) ncombo *= m->axes[i].n;
  mb_xcell *cells = NULL;
  size_t n = 0;
  mb_cell *work = mb_cell_copy(proto);
  mb_mark *wwhere = xrealloc(NULL, (m->nparams ? m->nparams : 1) * sizeof *wwhere);
  if (!work) mb_oom(0);
  for (size_t k = 0; k < ncombo; k++) {
    size_t rest = k;
    memcpy(wwhere, where, m->nparams * sizeof *where);
    for (size_t a = m->naxes; a-- > 0;) {
      size_t v = rest % m->axes[a].n, idx;
      rest /= m->axes[a].n;
      if (!find_param(t, m->axes[a].key, &idx)) continue;
      if (mb_cell_set(work, m->axes[a].key, m->axes[a].val[v])) mb_oom(0);
      wwhere[idx] = m->axes[a].at[v];
    }
    mb_xcell x = new_xcell(m, work, wwhere, 0);
    for (long r = 0; r < m->replications; r++) {
      mb_xcell y = r + 1 < m->replications ? new_xcell(m, x.cell, x.where, r) : x;
      y.rep = r;
      snprintf(y.reptext, sizeof y.reptext, "%ld", r);
      PUSH(cells, n, y);
    }
  }
  mb_cell_free(work);
  free(wwhere);

  /* include: override matching cells, or add new ones */
  for (size_t q = 0; q < m->ninclude; q++) {
    const mb_map *mp = &m->include[q];
    size_t matched = 0;
    for (size_t j = 0; j < n; j++) {
      int all = 1;
      for (size_t k = 0; k < mp->n && all; k++)
        if (is_axis(m, mp->kv[k].key) && !kvl_matches(&cells[j], &mp->kv[k])) all = 0;
      if (!all) continue;
      matched++;
      for (size_t k = 0; k < mp->n; k++)
        if (!is_axis(m, mp->kv[k].key)) set_val(m, &cells[j], mp->kv[k].key, mp->kv[k].val[0], mp->kv[k].at[0]);
    }
    if (matched) continue;
    long r0 = 0, r1 = m->replications;
    for (size_t k = 0; k < mp->n; k++)
      if (!strcmp(mp->kv[k].key, "rep")) { r0 = atol(mp->kv[k].val[0]); r1 = r0 + 1; }
    for (long r = r0; r < r1; r++) {
      mb_xcell x = new_xcell(m, proto, where, r);
      for (size_t k = 0; k < mp->n; k++) set_val(m, &x, mp->kv[k].key, mp->kv[k].val[0], mp->kv[k].at[0]);
      x.rep = r;
      snprintf(x.reptext, sizeof x.reptext, "%ld", r);
      PUSH(cells, n, x);
    }
  }

  /* exclude: drop cells matching every key of some map */
  size_t *hits = m->nexclude ? xrealloc(NULL, m->nexclude * sizeof *hits) : NULL;
  for (size_t q = 0; q < m->nexclude; q++) hits[q] = 0;
  size_t kept = 0;
  for (size_t j = 0; j < n; j++) {
    int drop = 0;
    for (size_t q = 0; q < m->nexclude; q++) {
      int all = 1;
      for (size_t k = 0; k < m->exclude[q].n && all; k++)
        if (!kvl_matches(&cells[j], &m->exclude[q].kv[k])) all = 0;
      if (all) { hits[q]++; drop = 1; }
    }
    if (drop) xcell_free(&cells[j]);
    else cells[kept++] = cells[j];
  }
  n = kept;
  for (size_t q = 0; q < m->nexclude; q++)
    if (!hits[q]) warn(c, m->exclude[q].at, "this exclude entry matches no cell");
  free(hits);
  if (n == 0) err(c, m->task_at, "the matrix has no cells (everything was excluded)");

  /* ids, seeds, required parameters, cross-field checks, duplicates */
  size_t dups = 0;
  for (size_t j = 0; j < n; j++) mb_cell_id(cells[j].cell, cells[j].rep, cells[j].id);
  /* duplicates: sort by (id, position), keep the first of each id */
  char *dup = xrealloc(NULL, n ? n : 1);
  memset(dup, 0, n ? n : 1);
  {
    idpos_t *v = xrealloc(NULL, (n ? n : 1) * sizeof *v);
    for (size_t j = 0; j < n; j++) { v[j].id = cells[j].id; v[j].i = j; }
    qsort(v, n, sizeof *v, idpos_cmp);
    for (size_t j = 1; j < n; j++)
      if (!strcmp(v[j].id, v[j - 1].id)) dup[v[j].i] = 1;
    free(v);
  }
  kept = 0;
  for (size_t j = 0; j < n; j++) {
    mb_xcell *x = &cells[j];
    if (dup[j]) { dups++; xcell_free(x); continue; }
    x->seed = moe_seed_derive(m->seed, x->id);
    int complete = 1;
    for (const mb_param *p = t->params; p->name; p++)
      if (!mb_cell_str(x->cell, p->name)) {
        err(c, m->task_at, "parameter '%s' of task '%s' has no default: set it in base, axes or include",
            p->name, t->name);
        complete = 0;
      }
    if (complete && t->check) {
      const char *bad = NULL;
      char msg[512] = "";
      mb_cell *withrep = mb_xcell_task_cell(m, x);
      int failed = t->check(withrep, &bad, msg, sizeof msg);
      if (!failed && mb_cell_undeclared(withrep)) {
        snprintf(msg, sizeof msg, "task '%s' read parameter '%s', which it does not declare (a bug in the task)",
                 t->name, mb_cell_undeclared(withrep));
        failed = 1;
        bad = NULL;
      }
      mb_cell_free(withrep);
      if (failed) {
        size_t idx;
        mb_mark at = m->task_at;
        if (bad && find_param(t, bad, &idx) && x->where[idx].line > 0) at = x->where[idx];
        else if (bad) { err(c, at, "%s (from the default of '%s')", msg, bad); goto next; }
        err(c, at, "%s", msg);
      }
    }
  next:
    cells[kept++] = *x;
  }
  n = kept;
  free(dup);
  if (dups) warn(c, m->task_at, "%zu duplicate cells (same configuration) were dropped", dups);
  m->cells = cells;
  m->ncells = n;
done:
  mb_cell_free(proto);
  free(where);
}

/* ---- the whole file ---- */

static void free_names(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void mb_matrix_free(mb_matrix *m)
{
  if (!m) return;
  free(m->path); free(m->name); free(m->description);
  for (size_t i = 0; i < m->nbase; i++) kvl_free(&m->base[i]);
  free(m->base);
  for (size_t i = 0; i < m->naxes; i++) kvl_free(&m->axes[i]);
  free(m->axes);
  mb_map *lists[2] = {m->include, m->exclude};
  size_t ns[2] = {m->ninclude, m->nexclude};
  for (int l = 0; l < 2; l++) {
    for (size_t i = 0; i < ns[l]; i++) {
      for (size_t k = 0; k < lists[l][i].n; k++) kvl_free(&lists[l][i].kv[k]);
      free(lists[l][i].kv);
    }
    free(lists[l]);
  }
  for (size_t i = 0; i < m->ntables; i++) {
    mb_table *t = &m->tables[i];
    free(t->name); free(t->metric); free(t->paired); free(t->family); free_names(t->rows, t->nrows); free_names(t->cols, t->ncols);
  }
  free(m->tables);
  for (size_t i = 0; i < m->nfits; i++) {
    mb_fit *f = &m->fits[i];
    free(f->name); free(f->x); free(f->y); free(f->exclude); free_names(f->by, f->nby);
    for (size_t r = 0; r < f->nrefs; r++) { free_names(f->refs[r].key, f->refs[r].n); free_names(f->refs[r].val, f->refs[r].n); }
    free(f->refs);
  }
  free(m->fits);
  for (size_t i = 0; i < m->nplots; i++) {
    mb_plot *p = &m->plots[i];
    free(p->name); free(p->x); free(p->y); free_names(p->by, p->nby); free(p->fit);
    free(p->title); free(p->xlabel); free(p->ylabel);
    for (size_t r = 0; r < p->ntitles; r++) { free_names(p->titles[r].key, p->titles[r].n); free_names(p->titles[r].val, p->titles[r].n); }
    free(p->titles);
  }
  free(m->plots);
  free_names(m->summary, m->nsummary);
  free_names(m->sequential.compare, m->sequential.ncompare);
  for (size_t i = 0; i < m->nclaims; i++) {
    mb_claim *q = &m->claims[i];
    free(q->claim); free(q->table); free(q->row);
    free_names(q->column.key, q->column.n); free_names(q->column.val, q->column.n);
  }
  free(m->claims);
  for (size_t i = 0; i < m->ncells; i++) xcell_free(&m->cells[i]);
  free(m->cells);
  free(m);
}

/* A seed: digits up to 2^64-1 or, as for integer parameters, an integral
 * value in exponent form (1e3) up to 2^53. 0 ok, 1 not an unsigned
 * integer, 2 out of range. */
static int parse_seed(const char *s, uint64_t *out)
{
  char *end;
  if (!*s || s[0] == '-' || s[0] == '+') return 1;
  errno = 0;
  unsigned long long u = strtoull(s, &end, 10);
  if (!*end) {
    if (errno) return 2;
    *out = u;
    return 0;
  }
  errno = 0;
  double d = strtod(s, &end);
  if (*end || isnan(d) || (isinf(d) && errno != ERANGE) || (isfinite(d) && d != floor(d))) return 1;
  if (!isfinite(d) || d > 9007199254740992.0) return 2;
  *out = (uint64_t)d;
  return 0;
}

/* sequential: {compare: [paired tables], half_width: W, max_replications: M, round: R} */
static void parse_sequential(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  mb_sequential *q = &m->sequential;
  q->at = mark_of(v);
  if (v->type != YAML_MAPPING_NODE) {
    err(c, mark_of(v), "sequential must be a mapping (compare, half_width, max_replications, round)");
    return;
  }
  size_t np;
  pair_t *pr = pairs(c, v, sequential_keys, count(sequential_keys), "sequential", &np);
  yaml_node_t *x;
  q->half_width = NAN;
  q->round = 1;
  if ((x = get(pr, np, "compare", NULL))) {
    mb_mark *at;
    q->compare = want_names_at(c, x, "compare", &q->ncompare, &at);
    const char **names = NULL;
    size_t nn = 0;
    for (size_t i = 0; i < m->ntables; i++) if (m->tables[i].name) PUSH(names, nn, m->tables[i].name);
    for (size_t i = 0; i < q->ncompare; i++) {
      const mb_table *t = NULL;
      for (size_t j = 0; j < m->ntables; j++)
        if (m->tables[j].name && !strcmp(m->tables[j].name, q->compare[i])) t = &m->tables[j];
      if (!t) {
        const char *dym = nn ? mb_did_you_mean(q->compare[i], names, nn) : NULL;
        err(c, at[i], "compare names '%s', which is no table of this matrix%s%s%s", q->compare[i],
            dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
      } else if (!t->paired || t->reach)
        err(c, at[i], "compare names '%s', which is not a paired table (without reach)", q->compare[i]);
    }
    if (q->ncompare == 0 && x->type == YAML_SEQUENCE_NODE) err(c, mark_of(x), "compare must name at least one table");
    free(names);
    free(at);
  } else err(c, mark_of(v), "sequential has no 'compare' (the paired tables to resolve)");
  if ((x = get(pr, np, "half_width", NULL))) q->half_width = want_positive(c, x, "half_width");
  else err(c, mark_of(v), "sequential has no 'half_width' (stop once every interval is this narrow)");
  if ((x = get(pr, np, "max_replications", NULL))) {
    static const mb_param mp = {"max_replications", MB_INT, NULL, 2, 1e6, NULL, NULL};
    char *s = canon_node(c, &mp, x);
    if (s) {
      q->max_replications = atol(s);
      if (q->max_replications < m->replications)
        err(c, mark_of(x), "max_replications = %ld is below replications = %ld (the first round)", q->max_replications,
            m->replications);
    }
    free(s);
  } else err(c, mark_of(v), "sequential has no 'max_replications'");
  if ((x = get(pr, np, "round", NULL))) {
    static const mb_param rp = {"round", MB_INT, NULL, 1, 1e6, NULL, NULL};
    char *s = canon_node(c, &rp, x);
    if (s) q->round = atol(s);
    free(s);
  }
  if (m->replications < 2)
    err(c, mark_of(v), "sequential needs replications >= 2 (the first round: a paired sd needs two pairs)");
  free(pr);
  q->set = 1;
}

/* claims: [{claim, table, row, column, expect}]: each names a comparison
 * of a paired table (checked here: the table, the row value, the column
 * values; that the comparison has cells is checked after expansion). */
static void parse_claims(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) { err(c, mark_of(v), "claims must be a list of mappings"); return; }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e) continue;
    if (e->type != YAML_MAPPING_NODE) { err(c, mark_of(e), "each claim must be a mapping {claim, table, row, expect}"); continue; }
    size_t np;
    pair_t *pr = pairs(c, e, claim_keys, count(claim_keys), "claim", &np);
    mb_claim q;
    memset(&q, 0, sizeof q);
    q.at = mark_of(e);
    q.expect = -1;
    yaml_node_t *x;
    const char *s;
    if (!(x = get(pr, np, "claim", NULL))) err(c, mark_of(e), "claim entry has no 'claim' (the statement, as text)");
    else if ((s = want_scalar(c, x, "claim"))) q.claim = xstrdup(s);
    const mb_table *t = NULL;
    if (!(x = get(pr, np, "table", NULL))) err(c, mark_of(e), "claim has no 'table' (a paired table of this matrix)");
    else if ((s = want_scalar(c, x, "table"))) {
      const char **names = NULL;
      size_t nn = 0;
      for (size_t i = 0; i < m->ntables; i++) if (m->tables[i].name) PUSH(names, nn, m->tables[i].name);
      for (size_t i = 0; i < m->ntables; i++) if (m->tables[i].name && !strcmp(m->tables[i].name, s)) t = &m->tables[i];
      if (!t) {
        const char *dym = nn ? mb_did_you_mean(s, names, nn) : NULL;
        err(c, mark_of(x), "claim names table '%s', which is no table of this matrix%s%s%s", s,
            dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
      } else if (!t->paired || t->reach) {
        err(c, mark_of(x), "claim names table '%s', which is not a paired table (without reach)", s);
        t = NULL;
      } else q.table = xstrdup(s);
      free(names);
    }
    if (!(x = get(pr, np, "row", NULL))) err(c, mark_of(e), "claim has no 'row' (a value of the table's row key)");
    else if (t) {
      const mb_param *p = find_param(m->task, t->rows[0], NULL);
      if (!p && !strcmp(t->rows[0], "rep")) p = &rep_param;
      char *cv = p ? canon_node(c, p, x) : NULL;
      if (cv && !strcmp(cv, t->paired)) {
        err(c, mark_of(x), "claim row '%s' is the baseline of table '%s' (compare another row with it)", cv, t->name);
        free(cv);
      } else q.row = cv;
    }
    if ((x = get(pr, np, "column", NULL)) && t) {
      if (x->type != YAML_MAPPING_NODE) err(c, mark_of(x), "column must be a mapping of the table's column keys to values");
      else if (!t->ncols) err(c, mark_of(x), "column given, but table '%s' has no columns", t->name);
      else {
        size_t ncp;
        pair_t *cp = pairs(c, x, (const char *const *)t->cols, t->ncols, "column", &ncp);
        for (size_t k = 0; k < t->ncols; k++) {
          yaml_node_t *cv = get(cp, ncp, t->cols[k], NULL);
          if (!cv) { err(c, mark_of(x), "column has no value for '%s' (table '%s' has columns per %s)", t->cols[k], t->name, t->cols[k]); continue; }
          const mb_param *p = find_param(m->task, t->cols[k], NULL);
          if (!p && !strcmp(t->cols[k], "rep")) p = &rep_param;
          char *val = p ? canon_node(c, p, cv) : NULL;
          if (!val) continue;
          q.column.key = xrealloc(q.column.key, (q.column.n + 1) * sizeof *q.column.key);
          q.column.val = xrealloc(q.column.val, (q.column.n + 1) * sizeof *q.column.val);
          q.column.key[q.column.n] = xstrdup(t->cols[k]);
          q.column.val[q.column.n++] = val;
        }
        free(cp);
      }
    } else if (t && t->ncols)
      err(c, mark_of(e), "claim has no 'column' (table '%s' has columns: give a value for each of its column keys)", t->name);
    if (!(x = get(pr, np, "expect", NULL))) err(c, mark_of(e), "claim has no 'expect' (lt0, gt0 or ne0)");
    else if ((s = want_scalar(c, x, "expect"))) {
      for (int k = 0; mb_expect_names[k]; k++) if (!strcmp(s, mb_expect_names[k])) q.expect = k;
      if (q.expect < 0)
        err(c, mark_of(x), "expect must be lt0, gt0 or ne0 (the paired difference below 0, above 0, or not 0), got '%s'", s);
    }
    free(pr);
    PUSH(m->claims, m->nclaims, q);
  }
}

/* After expansion: every claim's comparison has cells. */
static void check_claims(ctx *c)
{
  mb_matrix *m = c->m;
  for (size_t i = 0; i < m->nclaims; i++) {
    const mb_claim *q = &m->claims[i];
    const mb_table *t = NULL;
    for (size_t j = 0; j < m->ntables; j++) if (!strcmp(m->tables[j].name, q->table)) t = &m->tables[j];
    int found = 0;
    for (size_t x = 0; x < m->ncells && !found; x++) {
      if (strcmp(mb_xcell_get(&m->cells[x], t->rows[0]), q->row)) continue;
      int all = 1;
      for (size_t k = 0; k < q->column.n && all; k++)
        if (strcmp(mb_xcell_get(&m->cells[x], q->column.key[k]), q->column.val[k])) all = 0;
      found = all;
    }
    if (!found) err(c, q->at, "claim '%s': no cell of the matrix has %s=%s%s", q->claim, t->rows[0], q->row,
                    q->column.n ? " in the column given" : "");
  }
}

static long replications_override;   /* mb_matrix_set_replications */
void mb_matrix_set_replications(long n) { replications_override = n > 0 ? n : 0; }

static void parse_root(ctx *c, yaml_node_t *root)
{
  mb_matrix *m = c->m;
  mb_mark top = mark_of(root);
  if (root->type != YAML_MAPPING_NODE) {
    err(c, top, "a matrix must be a mapping of keys (name, task, seed, axes ...), got a %s", kind(root));
    return;
  }
  size_t np;
  pair_t *pr = pairs(c, root, top_keys, count(top_keys), "the matrix", &np);
  yaml_node_t *v, *k;

  if ((v = get(pr, np, "name", NULL))) {
    const char *s = want_scalar(c, v, "name");
    if (s && !valid_name(s)) err(c, mark_of(v), "name '%s' must match [a-z0-9_-]+", s);
    else if (s) m->name = xstrdup(s);
  } else err(c, top, "missing required key 'name'");
  if ((v = get(pr, np, "description", NULL))) {
    const char *s = want_scalar(c, v, "description");
    if (s) m->description = xstrdup(s);
  }
  if ((v = get(pr, np, "seed", NULL))) {
    const char *s = want_scalar(c, v, "seed");
    if (s) {
      int r = parse_seed(s, &m->seed);
      if (r == 2) err(c, mark_of(v), "seed = %s is out of range [0, 2^64-1] (up to 2^53 in exponent form)", s);
      else if (r) err(c, mark_of(v), "seed must be an unsigned 64-bit integer, got '%s'", s);
    }
  } else err(c, top, "missing required key 'seed'");
  m->replications = 1;
  if ((v = get(pr, np, "replications", NULL))) {
    static const mb_param rp = {"replications", MB_INT, NULL, 1, 1e6, NULL, NULL};
    char *s = canon_node(c, &rp, v);
    if (s) { m->replications = atol(s); free(s); }
  }
  m->file_replications = m->replications;
  if ((v = get(pr, np, "task", &k))) {
    m->task_at = mark_of(v);
    const char *s = want_scalar(c, v, "task");
    if (s && !(m->task = mb_task_find(s))) {
      const char **names = NULL;
      size_t nn = 0;
      for (const mb_task *const *t = mb_tasks; *t; t++) PUSH(names, nn, (*t)->name);
      const char *dym = mb_did_you_mean(s, names, nn);
      if (dym) err(c, mark_of(v), "unknown task '%s' (did you mean '%s'?)", s, dym);
      else err(c, mark_of(v), "unknown task '%s' (see `moebench tasks`)", s);
      free(names);
    }
  } else err(c, top, "missing required key 'task'");
  if (!m->task) { free(pr); return; }
  for (const mb_param *p = m->task->params; p->name; p++) m->nparams++;

  if ((v = get(pr, np, "base", NULL)) && !is_null(v)) {
    if (v->type != YAML_MAPPING_NODE) err(c, mark_of(v), "base must be a mapping of parameter values");
    else {
      size_t nb;
      pair_t *bp = pairs(c, v, NULL, 0, "base", &nb);
      for (size_t i = 0; i < nb; i++) {
        mb_kvl kv;
        if (parse_kv(c, &bp[i], 0, 0, "base", &kv)) PUSH(m->base, m->nbase, kv);
      }
      free(bp);
    }
  }
  if ((v = get(pr, np, "axes", NULL))) {
    if (v->type != YAML_MAPPING_NODE) err(c, mark_of(v), "axes must be a mapping of parameter lists");
    else if (v->data.mapping.pairs.start == v->data.mapping.pairs.top) err(c, mark_of(v), "axes is empty");
    else {
      size_t na;
      pair_t *ap = pairs(c, v, NULL, 0, "axes", &na);
      for (size_t i = 0; i < na; i++) {
        if (!strcmp(ap[i].key, "rep")) {
          err(c, mark_of(ap[i].k), "'rep' cannot be an axis: use 'replications'");
          continue;
        }
        if (ap[i].v->type != YAML_SEQUENCE_NODE) {
          if (find_param(m->task, ap[i].key, NULL))
            err(c, mark_of(ap[i].v), "axis '%s' must be a list of values, got a %s", ap[i].key, kind(ap[i].v));
          else want_param(c, ap[i].key, mark_of(ap[i].k), 0, "axes");
          continue;
        }
        mb_kvl kv;
        if (!parse_kv(c, &ap[i], 0, 1, "axes", &kv)) continue;
        for (size_t b = 0; b < m->nbase; b++)
          if (!strcmp(m->base[b].key, kv.key))
            err(c, kv.kat, "'%s' is set in both base (line %d) and axes", kv.key, m->base[b].kat.line);
        PUSH(m->axes, m->naxes, kv);
      }
      free(ap);
    }
  }
  if ((v = get(pr, np, "include", NULL)) && !is_null(v)) m->include = parse_maps(c, v, "include", 0, &m->ninclude);
  if ((v = get(pr, np, "exclude", NULL)) && !is_null(v)) m->exclude = parse_maps(c, v, "exclude", 1, &m->nexclude);
  if ((v = get(pr, np, "fits", NULL)) && !is_null(v)) parse_fits(c, v);
  if ((v = get(pr, np, "tables", NULL)) && !is_null(v)) parse_tables(c, v);
  if ((v = get(pr, np, "plots", NULL)) && !is_null(v)) parse_plots(c, v);
  if ((v = get(pr, np, "sequential", NULL)) && !is_null(v)) parse_sequential(c, v);
  if ((v = get(pr, np, "claims", NULL)) && !is_null(v)) parse_claims(c, v);
  if ((v = get(pr, np, "summary", NULL)) && !is_null(v)) {
    /* what `moebench report` puts in brief.txt: names of tables or fits */
    mb_mark *at;
    m->summary = want_names_at(c, v, "summary", &m->nsummary, &at);
    const char **names = NULL;
    size_t nn = 0;
    for (size_t i = 0; i < m->ntables; i++) if (m->tables[i].name) PUSH(names, nn, m->tables[i].name);
    for (size_t i = 0; i < m->nfits; i++) if (m->fits[i].name) PUSH(names, nn, m->fits[i].name);
    for (size_t i = 0; i < m->nsummary; i++) {
      int found = 0;
      for (size_t j = 0; j < nn; j++) if (!strcmp(names[j], m->summary[i])) found = 1;
      if (found) continue;
      const char *dym = nn ? mb_did_you_mean(m->summary[i], names, nn) : NULL;
      err(c, at[i], "summary names '%s', which is neither a table nor a fit of this matrix%s%s%s", m->summary[i],
          dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
    }
    if (m->nsummary == 0 && v->type == YAML_SEQUENCE_NODE) err(c, mark_of(v), "summary must name at least one table or fit");
    free(names);
    free(at);
  }
  free(pr);
  if (replications_override > 0) m->replications = replications_override;
  if (c->nerr == 0) expand(c);
  if (c->nerr == 0) check_claims(c);
}

/* libyaml has no nesting limit, and its cost grows fast with the depth
 * (80k levels: 46 s): a pass over the events refuses deeper nesting than a
 * matrix can use before any document is built. Syntax errors are left to
 * the load, which reports them. 1 if the nesting is fine. */
#define MB_YAML_MAX_DEPTH 64
static int depth_ok(ctx *c, FILE *f)
{
  yaml_parser_t p;
  yaml_event_t ev;
  int depth = 0, fine = 1;
  if (!yaml_parser_initialize(&p)) mb_oom(0);
  yaml_parser_set_input_file(&p, f);
  while (yaml_parser_parse(&p, &ev)) {
    yaml_event_type_t t = ev.type;
    if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
      if (++depth > MB_YAML_MAX_DEPTH) {
        err(c, (mb_mark){(int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1},
            "nesting deeper than %d levels (a matrix needs a handful)", MB_YAML_MAX_DEPTH);
        fine = 0;
      }
    } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
      depth--;
    }
    yaml_event_delete(&ev);
    if (!fine || t == YAML_STREAM_END_EVENT) break;
  }
  yaml_parser_delete(&p);
  rewind(f);
  return fine;
}

int mb_matrix_load(const char *path, mb_matrix **out, mb_buf *msgs)
{
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (msgs) mb_buf_printf(msgs, "%s: cannot open: %s\n", path, strerror(errno));
    return 2;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    if (msgs) mb_buf_printf(msgs, "%s: is a directory (expected a matrix file)\n", path);
    fclose(f);
    return 2;
  }
  yaml_parser_t parser;
  ctx c;
  memset(&c, 0, sizeof c);
  c.file = path;
  if (!depth_ok(&c, f)) {
    fclose(f);
    flush_diags(&c, msgs);
    return 2;
  }
  if (!yaml_parser_initialize(&parser)) mb_oom(0);
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &c.doc)) {
    mb_mark at = {(int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1};
    if (parser.context)
      err(&c, at, "malformed YAML: %s %s (line %d)", parser.problem ? parser.problem : "error",
          parser.context, (int)parser.context_mark.line + 1);
    else err(&c, at, "malformed YAML: %s", parser.problem ? parser.problem : "error");
    yaml_parser_delete(&parser);
    fclose(f);
    flush_diags(&c, msgs);
    return 2;
  }
  /* a second document would be silently ignored: refuse it */
  yaml_document_t extra;
  if (yaml_parser_load(&parser, &extra)) {
    yaml_node_t *r2 = yaml_document_get_root_node(&extra);
    if (r2) err(&c, mark_of(r2), "a matrix file holds one YAML document; this is a second one");
    yaml_document_delete(&extra);
  } else {
    mb_mark at = {(int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1};
    err(&c, at, "malformed YAML: %s%s%s", parser.problem ? parser.problem : "error",
        parser.context ? " " : "", parser.context ? parser.context : "");
  }
  yaml_parser_delete(&parser);
  fclose(f);
  if (c.nerr) {
    yaml_document_delete(&c.doc);
    flush_diags(&c, msgs);
    return 2;
  }
  mb_matrix *m = calloc(1, sizeof *m);
  if (!m) mb_oom(sizeof *m);
  m->path = xstrdup(path);
  c.m = m;
  yaml_node_t *root = yaml_document_get_root_node(&c.doc);
  if (!root) err(&c, (mb_mark){1, 1}, "the file is empty (expected a matrix)");
  else parse_root(&c, root);
  yaml_document_delete(&c.doc);
  int bad = c.nerr > 0;
  flush_diags(&c, msgs);
  if (bad) { mb_matrix_free(m); return 2; }
  *out = m;
  return 0;
}

size_t mb_matrix_shard(const mb_matrix *m, int i, int n, size_t *idx)
{
  idpos_t *v = xrealloc(NULL, (m->ncells ? m->ncells : 1) * sizeof *v);
  for (size_t k = 0; k < m->ncells; k++) { v[k].id = m->cells[k].id; v[k].i = k; }
  qsort(v, m->ncells, sizeof *v, idpos_cmp);
  char *mine = calloc(m->ncells ? m->ncells : 1, 1);
  if (!mine) mb_oom(m->ncells);
  for (size_t p = 0; p < m->ncells; p++)
    if ((int)(p % (size_t)n) == i - 1) mine[v[p].i] = 1;
  size_t k = 0;
  for (size_t p = 0; p < m->ncells; p++) if (mine[p]) idx[k++] = p;
  free(mine);
  free(v);
  return k;
}

mb_matrix *mb_matrix_load_stderr(const char *path, int *status)
{
  mb_buf msgs;
  mb_matrix *m = NULL;
  mb_buf_init(&msgs);
  *status = mb_matrix_load(path, &m, &msgs);
  if (msgs.n) fputs(msgs.s, stderr);
  mb_buf_free(&msgs);
  return m;
}
