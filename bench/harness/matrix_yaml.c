/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix_yaml.c — the matrix parser's diagnostics (collected, one per
 * place and message, reported in file order) and its checks of YAML nodes
 * against the task's declaration: keys, scalars, names, parameters,
 * metrics, values (matrix_int.h). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "matrix_int.h"

/* ---- error collection ---- */

static void vreport(ctx *c, mb_mark at, int warning, const char *fmt, va_list ap)
{
  char msg[1024];
  if (c->nd >= 200) { /* enough to act on; count the rest */
    c->dropped++;
    if (!warning)
      c->nerr++;
    return;
  }
  vsnprintf(msg, sizeof msg, fmt, ap);
  for (size_t i = 0; i < c->nd; i++) /* one report per (place, message) */
    if (c->d[i].at.line == at.line && c->d[i].at.col == at.col && !strcmp(c->d[i].msg, msg))
      return;
  diag_t d = {at, warning, xstrdup(msg)};
  PUSH(c->d, c->nd, d);
  if (!warning)
    c->nerr++;
}

void mbx_err(ctx *c, mb_mark at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(c, at, 0, fmt, ap);
  va_end(ap);
}

void mbx_warn(ctx *c, mb_mark at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(c, at, 1, fmt, ap);
  va_end(ap);
}

void mbx_flush_diags(ctx *c, mb_buf *msgs)
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
    if (shown == 50)
      break;
    if (msgs) {
      if (d[i].at.line > 0)
        mb_buf_printf(msgs, "%s:%d:%d: ", c->file, d[i].at.line, d[i].at.col);
      else
        mb_buf_printf(msgs, "%s: ", c->file);
      mb_buf_printf(msgs, "%s%s\n", d[i].warning ? "warning: " : "", d[i].msg);
    }
    shown++;
  }
  if (msgs && n + c->dropped > shown)
    mb_buf_printf(msgs, "%s: ... and %zu more\n", c->file, n + c->dropped - shown);
  for (size_t i = 0; i < n; i++)
    free(d[i].msg);
  free(d);
  c->d = NULL;
  c->nd = 0;
}

/* ---- YAML node helpers ---- */

/* The pairs of a mapping, with keys checked: scalar, known (against
 * allowed; NULL = any), and not repeated. Unknown/duplicate pairs are
 * reported and left out. Returns a malloc'd array (count in *np). */
pair_t *mbx_pairs(ctx *c, yaml_node_t *map, const char *const *allowed, size_t nallowed,
                  const char *what, size_t *np)
{
  pair_t *out = NULL;
  size_t n = 0;
  *np = 0;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    if (!k || !v)
      continue;
    if (k->type != YAML_SCALAR_NODE) {
      mbx_err(c, mark_of(k), "a key must be a plain name, not a %s", kind(k));
      continue;
    }
    const char *key = stext(k);
    int dup = 0;
    for (size_t i = 0; i < n; i++)
      if (!strcmp(out[i].key, key)) {
        mbx_err(c, mark_of(k), "duplicate key '%s' (first at line %d)", key,
                mark_of(out[i].k).line);
        dup = 1;
      }
    if (dup)
      continue;
    if (allowed) {
      int ok = 0;
      for (size_t i = 0; i < nallowed; i++)
        if (!strcmp(allowed[i], key))
          ok = 1;
      if (!ok) {
        const char *dym = mb_did_you_mean(key, allowed, nallowed);
        if (dym)
          mbx_err(c, mark_of(k), "unknown key '%s' in %s (did you mean '%s'?)", key, what, dym);
        else
          mbx_err(c, mark_of(k), "unknown key '%s' in %s", key, what);
        continue;
      }
    }
    pair_t pr = {key, k, v};
    PUSH(out, n, pr);
  }
  *np = n;
  return out;
}

/* A scalar string value; reports and returns NULL otherwise. */
const char *mbx_want_scalar(ctx *c, yaml_node_t *v, const char *what)
{
  if (v->type != YAML_SCALAR_NODE) {
    mbx_err(c, mark_of(v), "%s must be a scalar, got a %s", what, kind(v));
    return NULL;
  }
  if (is_null(v)) {
    mbx_err(c, mark_of(v), "%s has no value", what);
    return NULL;
  }
  return stext(v);
}

int mbx_want_bool(ctx *c, yaml_node_t *v, const char *what, int *out)
{
  static const mb_param bp = {"", MB_BOOL, NULL, 0, -1, NULL, NULL};
  const char *s = mbx_want_scalar(c, v, what);
  char *canon, why[256];
  if (!s)
    return 0;
  if (mb_param_canon(&bp, s, &canon, why, sizeof why)) {
    mbx_err(c, mark_of(v), "%s must be true or false, got '%s'", what, s);
    return 0;
  }
  *out = canon[0] == 't';
  free(canon);
  return 1;
}

/* A name or a list of names (rows: n / rows: [n, k]); where each one is
 * goes to *at (malloc'd) if at is given. */
char **mbx_want_names_at(ctx *c, yaml_node_t *v, const char *what, size_t *n, mb_mark **at)
{
  char **out = NULL;
  size_t na = 0;
  *n = 0;
  if (at)
    *at = NULL;
  if (v->type == YAML_SCALAR_NODE) {
    const char *s = mbx_want_scalar(c, v, what);
    if (s) {
      PUSH(out, *n, xstrdup(s));
      if (at)
        PUSH(*at, na, mark_of(v));
    }
    return out;
  }
  if (v->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(v), "%s must be a name or a list of names", what);
    return NULL;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    const char *s = e ? mbx_want_scalar(c, e, what) : NULL;
    if (!s)
      continue;
    PUSH(out, *n, xstrdup(s));
    if (at)
      PUSH(*at, na, mark_of(e));
  }
  return out;
}

const mb_param *mbx_find_param(const mb_task *t, const char *key, size_t *idx)
{
  size_t i = 0;
  for (const mb_param *p = t->params; p->name; p++, i++)
    if (!strcmp(p->name, key)) {
      if (idx)
        *idx = i;
      return p;
    }
  return NULL;
}

const mb_param mbx_rep_param = {"rep", MB_INT, "0", 0, 1e9, NULL, "replication index"};

/* Parameter names (plus "rep" if with_rep) for did-you-mean. */
static const char **param_names(const mb_task *t, int with_rep, size_t *n)
{
  const char **names = NULL;
  *n = 0;
  for (const mb_param *p = t->params; p->name; p++)
    PUSH(names, *n, p->name);
  if (with_rep)
    PUSH(names, *n, "rep");
  return names;
}

/* Check that key names a parameter (or rep); report at k otherwise. */
const mb_param *mbx_want_param(ctx *c, const char *key, mb_mark at, int allow_rep,
                               const char *where)
{
  const mb_task *t = c->m->task;
  const mb_param *p = mbx_find_param(t, key, NULL);
  if (p)
    return p;
  if (allow_rep && !strcmp(key, "rep"))
    return &mbx_rep_param;
  size_t n;
  const char **names = param_names(t, allow_rep, &n);
  const char *dym = mb_did_you_mean(key, names, n);
  if (dym)
    mbx_err(c, at, "unknown parameter '%s' in %s for task '%s' (did you mean '%s'?)", key, where,
            t->name, dym);
  else
    mbx_err(c, at, "unknown parameter '%s' in %s for task '%s' (see `moebench tasks %s`)", key,
            where, t->name, t->name);
  free(names);
  return NULL;
}

static int want_metric(ctx *c, const char *name, mb_mark at)
{
  const mb_task *t = c->m->task;
  size_t n = t->metrics ? count(t->metrics) : 0;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(t->metrics[i], name))
      return 1;
  /* NAME@X: a declared family NAME@ at one index X (a number) */
  const char *a = strrchr(name, '@');
  if (a && a[1]) {
    char *end;
    double x = strtod(a + 1, &end);
    size_t L = (size_t)(a - name) + 1;
    if (!*end && isfinite(x))
      for (size_t i = 0; i < n; i++)
        if (!strncmp(t->metrics[i], name, L) && !t->metrics[i][L])
          return 1;
  }
  const char *dym = n ? mb_did_you_mean(name, (const char *const *)t->metrics, n) : NULL;
  mb_buf b;
  mb_buf_init(&b);
  for (size_t i = 0; i < n; i++)
    mb_buf_printf(&b, "%s%s", i ? ", " : "", t->metrics[i]);
  if (dym)
    mbx_err(c, at, "unknown metric '%s' for task '%s' (did you mean '%s'?)", name, t->name, dym);
  else
    mbx_err(c, at, "unknown metric '%s' for task '%s' (it reports: %s)", name, t->name,
            b.s ? b.s : "nothing");
  mb_buf_free(&b);
  return 0;
}

/* Canonical value of parameter p from node v. */
char *mbx_canon_node(ctx *c, const mb_param *p, yaml_node_t *v)
{
  static const char *const tn[] = {"an integer", "a real number", "a string", "a boolean"};
  if (v->type != YAML_SCALAR_NODE) {
    mbx_err(c, mark_of(v), "'%s' must be %s, got a %s", p->name, tn[p->type], kind(v));
    return NULL;
  }
  if (is_null(v)) {
    mbx_err(c, mark_of(v), "'%s' has no value", p->name);
    return NULL;
  }
  char *out, why[512];
  if (mb_param_canon(p, stext(v), &out, why, sizeof why)) {
    mbx_err(c, mark_of(v), "%s", why);
    return NULL;
  }
  return out;
}

void mbx_kvl_free(mb_kvl *kv)
{
  free(kv->key);
  for (size_t i = 0; i < kv->n; i++)
    free(kv->val[i]);
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
  if (out->n < 2)
    return 1;
  size_t *ix = xrealloc(NULL, out->n * sizeof *ix), *rep = xrealloc(NULL, 2 * out->n * sizeof *rep),
         nrep = 0;
  for (size_t i = 0; i < out->n; i++)
    ix[i] = i;
  dup_vals = out->val;
  qsort(ix, out->n, sizeof *ix, dup_cmp);
  for (size_t i = 1, first = ix[0]; i < out->n; i++) {
    if (strcmp(out->val[ix[i]], out->val[first])) {
      first = ix[i];
      continue;
    }
    rep[2 * nrep] = ix[i];
    rep[2 * nrep++ + 1] = first;
  }
  qsort(rep, nrep, 2 * sizeof *rep, size_cmp); /* file order of the repeats */
  for (size_t r = 0; r < nrep; r++)
    mbx_err(c, out->at[rep[2 * r]], "duplicate value '%s' for '%s' (first at line %d)",
            out->val[rep[2 * r]], out->key, out->at[rep[2 * r + 1]].line);
  free(ix);
  free(rep);
  return nrep == 0;
}

/* One key with its value(s): a scalar, or (if allow_list) a non-empty list. */
int mbx_parse_kv(ctx *c, pair_t *pr, int allow_rep, int allow_list, const char *where, mb_kvl *out)
{
  memset(out, 0, sizeof *out);
  const mb_param *p = mbx_want_param(c, pr->key, mark_of(pr->k), allow_rep, where);
  if (!p)
    return 0;
  out->key = xstrdup(pr->key);
  out->kat = mark_of(pr->k);
  int okay = 1;
  if (pr->v->type == YAML_SEQUENCE_NODE && allow_list) {
    yaml_node_item_t *it0 = pr->v->data.sequence.items.start, *it1 = pr->v->data.sequence.items.top;
    if (it0 == it1) {
      mbx_err(c, mark_of(pr->v), "'%s' has an empty list of values", pr->key);
      okay = 0;
    }
    size_t cap = (size_t)(it1 - it0);
    out->val = xrealloc(NULL, (cap ? cap : 1) * sizeof *out->val);
    out->at = xrealloc(NULL, (cap ? cap : 1) * sizeof *out->at);
    for (yaml_node_item_t *it = it0; it < it1; it++) {
      yaml_node_t *e = node(c, *it);
      char *v = e ? mbx_canon_node(c, p, e) : NULL;
      if (!v) {
        okay = 0;
        continue;
      }
      out->val[out->n] = v;
      out->at[out->n++] = mark_of(e);
    }
    if (!no_dup_values(c, out))
      okay = 0;
  } else {
    char *v = mbx_canon_node(c, p, pr->v);
    if (!v)
      okay = 0;
    else {
      out->val = xrealloc(NULL, sizeof *out->val);
      out->at = xrealloc(NULL, sizeof *out->at);
      out->val[0] = v;
      out->at[0] = mark_of(pr->v);
      out->n = 1;
    }
  }
  if (!okay) {
    mbx_kvl_free(out);
    memset(out, 0, sizeof *out);
  }
  return okay;
}

/* include/exclude: a list of maps of parameter (or rep) values. */
mb_map *mbx_parse_maps(ctx *c, yaml_node_t *v, const char *what, int allow_list, size_t *nout)
{
  mb_map *maps = NULL;
  *nout = 0;
  if (v->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(v), "%s must be a list of mappings", what);
    return NULL;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e)
      continue;
    if (e->type != YAML_MAPPING_NODE) {
      mbx_err(c, mark_of(e), "each %s entry must be a mapping, got a %s", what, kind(e));
      continue;
    }
    size_t np;
    pair_t *pr = mbx_pairs(c, e, NULL, 0, what, &np);
    mb_map m = {NULL, 0, mark_of(e)};
    if (np == 0)
      mbx_err(c, mark_of(e), "empty %s entry", what);
    for (size_t i = 0; i < np; i++) {
      if (pr[i].v->type == YAML_SEQUENCE_NODE && !allow_list) {
        mbx_err(c, mark_of(pr[i].v),
                "'%s' in include must be a single value (lists are for exclude)", pr[i].key);
        continue;
      }
      mb_kvl kv;
      if (mbx_parse_kv(c, &pr[i], 1, allow_list, what, &kv))
        PUSH(m.kv, m.n, kv);
    }
    free(pr);
    PUSH(maps, *nout, m);
  }
  return maps;
}

int mbx_valid_name(const char *s)
{
  if (!*s)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return 0;
  return 1;
}

char *mbx_want_name(ctx *c, pair_t *pr, size_t np, yaml_node_t *entry, const char *what)
{
  yaml_node_t *v = get(pr, np, "name", NULL);
  if (!v) {
    mbx_err(c, mark_of(entry), "%s entry has no 'name'", what);
    return NULL;
  }
  const char *s = mbx_want_scalar(c, v, "'name'");
  if (!s)
    return NULL;
  if (!mbx_valid_name(s)) {
    mbx_err(c, mark_of(v), "name '%s' must match [a-z0-9_-]+", s);
    return NULL;
  }
  return xstrdup(s);
}

/* Names that must be parameters (or rep), each checked at its own place. */
char **mbx_want_keys(ctx *c, yaml_node_t *v, const char *where, size_t *n)
{
  mb_mark *at;
  char **names = mbx_want_names_at(c, v, where, n, &at);
  for (size_t i = 0; i < *n; i++)
    mbx_want_param(c, names[i], at[i], 1, where);
  free(at);
  return names;
}

char *mbx_want_metric_node(ctx *c, pair_t *pr, size_t np, yaml_node_t *entry, const char *key)
{
  yaml_node_t *v = get(pr, np, key, NULL);
  if (!v) {
    mbx_err(c, mark_of(entry), "missing '%s'", key);
    return NULL;
  }
  const char *s = mbx_want_scalar(c, v, key);
  if (!s || !want_metric(c, s, mark_of(v)))
    return NULL;
  return xstrdup(s);
}

/* A positive real (half_width, effect): its value, or NaN (reported). */
double mbx_want_positive(ctx *c, yaml_node_t *v, const char *what)
{
  const mb_param p = {what, MB_REAL, NULL, 0, -1, NULL, NULL};
  char *s = mbx_canon_node(c, &p, v);
  double d = s ? strtod(s, NULL) : NAN;
  free(s);
  if (s && !(d > 0)) {
    mbx_err(c, mark_of(v), "'%s' must be positive, got %s", what, stext(v));
    d = NAN;
  }
  return d;
}
