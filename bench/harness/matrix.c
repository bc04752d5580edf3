/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix.c — parse, validate and expand an experiment matrix: the file
 * (its root keys), the values' canonical text, freeing; the rest of the
 * parser is in matrix_yaml.c, matrix_spec.c and matrix_expand.c
 * (matrix_int.h).
 *
 * libyaml's document API gives a node tree with start marks; every check
 * reports at the mark of the offending key or value. Values are reduced to
 * canonical text per parameter type (integers "%lld", reals the shortest
 * "%.Ng" that reads back to the same double, booleans true/false), so the
 * cell id — a hash of that text — does not depend on how a value was
 * spelled, nor on key or axis order. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "matrix_int.h"

static const char *const top_keys[] = {
    "name",    "description", "task", "seed",  "base",    "axes",       "replications", "include",
    "exclude", "tables",      "fits", "plots", "summary", "sequential", "claims",       NULL};

/* ---- small helpers ---- */

/* Edit distance counting an adjacent transposition as one edit (optimal
 * string alignment), so 'rpe' is nearer 'rep' than 'e'. */
static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64)
    return (size_t)-1;
  size_t d[65][65];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < v)
        v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v)
        v = d[i][j - 1] + 1;
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
  if (lim < 2)
    lim = 2;
  for (size_t i = 0; i < n && cands[i]; i++) {
    size_t d = edit_distance(word, cands[i]);
    if (d < bd) {
      bd = d;
      best = cands[i];
    }
  }
  if (bd <= lim)
    return best;
  /* a truncated name ('sleep' for 'sleep_ms') */
  size_t lw = strlen(word);
  for (size_t i = 0; lw >= 3 && i < n && cands[i]; i++)
    if (!strncmp(word, cands[i], lw))
      return cands[i];
  return NULL;
}

/* The harness has no way on without memory: say so and stop (exit 1),
 * never a silent abort. Nothing is lost: matrices are expanded before any
 * cell runs, and results are written by the workers one file at a time. */
void mb_oom(size_t bytes)
{
  if (bytes)
    fprintf(stderr,
            "moebench: out of memory (allocating %zu bytes); see ulimit -v and free memory\n",
            bytes);
  else
    fprintf(stderr, "moebench: out of memory; see ulimit -v and free memory\n");
  exit(1);
}

/* Shortest "%.Ng" that reads back to the same double. */
static void real_text(double v, char *buf, size_t len)
{
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, len, "%.*g", p, v);
    if (strtod(buf, NULL) == v)
      return;
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
      int huge = end != s && !*end &&
                 ((isinf(d) && errno == ERANGE) ||
                  (isfinite(d) && d == floor(d) && fabs(d) > 9007199254740992.0));
      if (huge) {
        if (p->min <= p->max)
          snprintf(why, whylen, "'%s' = %s is out of range [%.15g, %.15g]", p->name, s, p->min,
                   p->max);
        else
          snprintf(why, whylen, "'%s' = %s is out of range (integers up to 2^53)", p->name, s);
        return 2;
      }
      if (end == s || *end || !isfinite(d) || d != floor(d)) {
        snprintf(why, whylen, "'%s' must be an integer, got '%s'", p->name, s);
        return 1;
      }
      v = (long long)d;
    }
    if (p->min <= p->max && ((double)v < p->min || (double)v > p->max)) {
      snprintf(why, whylen, "'%s' = %lld is out of range [%.15g, %.15g]", p->name, v, p->min,
               p->max);
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
    if (d == 0)
      d = 0; /* -0 and 0 are one configuration */
    real_text(d, buf, sizeof buf);
    break;
  }
  case MB_BOOL: {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON",  NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
                                     "NO",    "off",   "Off",   "OFF", NULL};
    int v = -1;
    for (int i = 0; yes[i]; i++)
      if (!strcmp(s, yes[i]))
        v = 1;
    for (int i = 0; no[i]; i++)
      if (!strcmp(s, no[i]))
        v = 0;
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
      for (const char *const *c = p->choices; *c; c++, nc++)
        if (!strcmp(*c, s))
          found = 1;
      if (!found) {
        mb_buf b;
        mb_buf_init(&b);
        for (const char *const *c = p->choices; *c; c++)
          mb_buf_printf(&b, "%s%s", c == p->choices ? "" : ", ", *c);
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

/* ---- the whole file ---- */

static void free_names(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void mb_matrix_free(mb_matrix *m)
{
  if (!m)
    return;
  free(m->path);
  free(m->name);
  free(m->description);
  for (size_t i = 0; i < m->nbase; i++)
    mbx_kvl_free(&m->base[i]);
  free(m->base);
  for (size_t i = 0; i < m->naxes; i++)
    mbx_kvl_free(&m->axes[i]);
  free(m->axes);
  mb_map *lists[2] = {m->include, m->exclude};
  size_t ns[2] = {m->ninclude, m->nexclude};
  for (int l = 0; l < 2; l++) {
    for (size_t i = 0; i < ns[l]; i++) {
      for (size_t k = 0; k < lists[l][i].n; k++)
        mbx_kvl_free(&lists[l][i].kv[k]);
      free(lists[l][i].kv);
    }
    free(lists[l]);
  }
  for (size_t i = 0; i < m->ntables; i++) {
    mb_table *t = &m->tables[i];
    free(t->name);
    free(t->metric);
    free(t->paired);
    free(t->family);
    free_names(t->rows, t->nrows);
    free_names(t->cols, t->ncols);
  }
  free(m->tables);
  for (size_t i = 0; i < m->nfits; i++) {
    mb_fit *f = &m->fits[i];
    free(f->name);
    free(f->x);
    free(f->y);
    free(f->exclude);
    free_names(f->by, f->nby);
    for (size_t r = 0; r < f->nrefs; r++) {
      free_names(f->refs[r].key, f->refs[r].n);
      free_names(f->refs[r].val, f->refs[r].n);
    }
    free(f->refs);
  }
  free(m->fits);
  for (size_t i = 0; i < m->nplots; i++) {
    mb_plot *p = &m->plots[i];
    free(p->name);
    free(p->x);
    free(p->y);
    free_names(p->by, p->nby);
    free(p->fit);
    free(p->title);
    free(p->xlabel);
    free(p->ylabel);
    for (size_t r = 0; r < p->ntitles; r++) {
      free_names(p->titles[r].key, p->titles[r].n);
      free_names(p->titles[r].val, p->titles[r].n);
    }
    free(p->titles);
  }
  free(m->plots);
  free_names(m->summary, m->nsummary);
  free_names(m->sequential.compare, m->sequential.ncompare);
  for (size_t i = 0; i < m->nclaims; i++) {
    mb_claim *q = &m->claims[i];
    free(q->claim);
    free(q->table);
    free(q->row);
    free_names(q->column.key, q->column.n);
    free_names(q->column.val, q->column.n);
  }
  free(m->claims);
  for (size_t i = 0; i < m->ncells; i++)
    mbx_xcell_free(&m->cells[i]);
  free(m->cells);
  free(m);
}

/* A seed: digits up to 2^64-1 or, as for integer parameters, an integral
 * value in exponent form (1e3) up to 2^53. 0 ok, 1 not an unsigned
 * integer, 2 out of range. */
static int parse_seed(const char *s, uint64_t *out)
{
  char *end;
  if (!*s || s[0] == '-' || s[0] == '+')
    return 1;
  errno = 0;
  unsigned long long u = strtoull(s, &end, 10);
  if (!*end) {
    if (errno)
      return 2;
    *out = u;
    return 0;
  }
  errno = 0;
  double d = strtod(s, &end);
  if (*end || isnan(d) || (isinf(d) && errno != ERANGE) || (isfinite(d) && d != floor(d)))
    return 1;
  if (!isfinite(d) || d > 9007199254740992.0)
    return 2;
  *out = (uint64_t)d;
  return 0;
}

static long replications_override; /* mb_matrix_set_replications */
void mb_matrix_set_replications(long n) { replications_override = n > 0 ? n : 0; }

static void parse_root(ctx *c, yaml_node_t *root)
{
  mb_matrix *m = c->m;
  mb_mark top = mark_of(root);
  if (root->type != YAML_MAPPING_NODE) {
    mbx_err(c, top, "a matrix must be a mapping of keys (name, task, seed, axes ...), got a %s",
            kind(root));
    return;
  }
  size_t np;
  pair_t *pr = mbx_pairs(c, root, top_keys, count(top_keys), "the matrix", &np);
  yaml_node_t *v, *k;

  if ((v = get(pr, np, "name", NULL))) {
    const char *s = mbx_want_scalar(c, v, "name");
    if (s && !mbx_valid_name(s))
      mbx_err(c, mark_of(v), "name '%s' must match [a-z0-9_-]+", s);
    else if (s)
      m->name = xstrdup(s);
  } else
    mbx_err(c, top, "missing required key 'name'");
  if ((v = get(pr, np, "description", NULL))) {
    const char *s = mbx_want_scalar(c, v, "description");
    if (s)
      m->description = xstrdup(s);
  }
  if ((v = get(pr, np, "seed", NULL))) {
    const char *s = mbx_want_scalar(c, v, "seed");
    if (s) {
      int r = parse_seed(s, &m->seed);
      if (r == 2)
        mbx_err(c, mark_of(v),
                "seed = %s is out of range [0, 2^64-1] (up to 2^53 in exponent form)", s);
      else if (r)
        mbx_err(c, mark_of(v), "seed must be an unsigned 64-bit integer, got '%s'", s);
    }
  } else
    mbx_err(c, top, "missing required key 'seed'");
  m->replications = 1;
  if ((v = get(pr, np, "replications", NULL))) {
    static const mb_param rp = {"replications", MB_INT, NULL, 1, 1e6, NULL, NULL};
    char *s = mbx_canon_node(c, &rp, v);
    if (s) {
      m->replications = atol(s);
      free(s);
    }
  }
  m->file_replications = m->replications;
  if ((v = get(pr, np, "task", &k))) {
    m->task_at = mark_of(v);
    const char *s = mbx_want_scalar(c, v, "task");
    if (s && !(m->task = mb_task_find(s))) {
      const char **names = NULL;
      size_t nn = 0;
      for (const mb_task *const *t = mb_tasks; *t; t++)
        PUSH(names, nn, (*t)->name);
      const char *dym = mb_did_you_mean(s, names, nn);
      if (dym)
        mbx_err(c, mark_of(v), "unknown task '%s' (did you mean '%s'?)", s, dym);
      else
        mbx_err(c, mark_of(v), "unknown task '%s' (see `moebench tasks`)", s);
      free(names);
    }
  } else
    mbx_err(c, top, "missing required key 'task'");
  if (!m->task) {
    free(pr);
    return;
  }
  for (const mb_param *p = m->task->params; p->name; p++)
    m->nparams++;

  if ((v = get(pr, np, "base", NULL)) && !is_null(v)) {
    if (v->type != YAML_MAPPING_NODE)
      mbx_err(c, mark_of(v), "base must be a mapping of parameter values");
    else {
      size_t nb;
      pair_t *bp = mbx_pairs(c, v, NULL, 0, "base", &nb);
      for (size_t i = 0; i < nb; i++) {
        mb_kvl kv;
        if (mbx_parse_kv(c, &bp[i], 0, 0, "base", &kv))
          PUSH(m->base, m->nbase, kv);
      }
      free(bp);
    }
  }
  if ((v = get(pr, np, "axes", NULL))) {
    if (v->type != YAML_MAPPING_NODE)
      mbx_err(c, mark_of(v), "axes must be a mapping of parameter lists");
    else if (v->data.mapping.pairs.start == v->data.mapping.pairs.top)
      mbx_err(c, mark_of(v), "axes is empty");
    else {
      size_t na;
      pair_t *ap = mbx_pairs(c, v, NULL, 0, "axes", &na);
      for (size_t i = 0; i < na; i++) {
        if (!strcmp(ap[i].key, "rep")) {
          mbx_err(c, mark_of(ap[i].k), "'rep' cannot be an axis: use 'replications'");
          continue;
        }
        if (ap[i].v->type != YAML_SEQUENCE_NODE) {
          if (mbx_find_param(m->task, ap[i].key, NULL))
            mbx_err(c, mark_of(ap[i].v), "axis '%s' must be a list of values, got a %s", ap[i].key,
                    kind(ap[i].v));
          else
            mbx_want_param(c, ap[i].key, mark_of(ap[i].k), 0, "axes");
          continue;
        }
        mb_kvl kv;
        if (!mbx_parse_kv(c, &ap[i], 0, 1, "axes", &kv))
          continue;
        for (size_t b = 0; b < m->nbase; b++)
          if (!strcmp(m->base[b].key, kv.key))
            mbx_err(c, kv.kat, "'%s' is set in both base (line %d) and axes", kv.key,
                    m->base[b].kat.line);
        PUSH(m->axes, m->naxes, kv);
      }
      free(ap);
    }
  }
  if ((v = get(pr, np, "include", NULL)) && !is_null(v))
    m->include = mbx_parse_maps(c, v, "include", 0, &m->ninclude);
  if ((v = get(pr, np, "exclude", NULL)) && !is_null(v))
    m->exclude = mbx_parse_maps(c, v, "exclude", 1, &m->nexclude);
  if ((v = get(pr, np, "fits", NULL)) && !is_null(v))
    mbx_parse_fits(c, v);
  if ((v = get(pr, np, "tables", NULL)) && !is_null(v))
    mbx_parse_tables(c, v);
  if ((v = get(pr, np, "plots", NULL)) && !is_null(v))
    mbx_parse_plots(c, v);
  if ((v = get(pr, np, "sequential", NULL)) && !is_null(v))
    mbx_parse_sequential(c, v);
  if ((v = get(pr, np, "claims", NULL)) && !is_null(v))
    mbx_parse_claims(c, v);
  if ((v = get(pr, np, "summary", NULL)) && !is_null(v)) {
    /* what `moebench report` puts in brief.txt: names of tables or fits */
    mb_mark *at;
    m->summary = mbx_want_names_at(c, v, "summary", &m->nsummary, &at);
    const char **names = NULL;
    size_t nn = 0;
    for (size_t i = 0; i < m->ntables; i++)
      if (m->tables[i].name)
        PUSH(names, nn, m->tables[i].name);
    for (size_t i = 0; i < m->nfits; i++)
      if (m->fits[i].name)
        PUSH(names, nn, m->fits[i].name);
    for (size_t i = 0; i < m->nsummary; i++) {
      int found = 0;
      for (size_t j = 0; j < nn; j++)
        if (!strcmp(names[j], m->summary[i]))
          found = 1;
      if (found)
        continue;
      const char *dym = nn ? mb_did_you_mean(m->summary[i], names, nn) : NULL;
      mbx_err(c, at[i],
              "summary names '%s', which is neither a table nor a fit of this matrix%s%s%s",
              m->summary[i], dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
    }
    if (m->nsummary == 0 && v->type == YAML_SEQUENCE_NODE)
      mbx_err(c, mark_of(v), "summary must name at least one table or fit");
    free(names);
    free(at);
  }
  free(pr);
  if (replications_override > m->replications)
    m->replications = replications_override;
  if (c->nerr == 0)
    mbx_expand(c);
  if (c->nerr == 0)
    mbx_check_claims(c);
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
  if (!yaml_parser_initialize(&p))
    mb_oom(0);
  yaml_parser_set_input_file(&p, f);
  while (yaml_parser_parse(&p, &ev)) {
    yaml_event_type_t t = ev.type;
    if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
      if (++depth > MB_YAML_MAX_DEPTH) {
        mbx_err(c, (mb_mark){(int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1},
                "nesting deeper than %d levels (a matrix needs a handful)", MB_YAML_MAX_DEPTH);
        fine = 0;
      }
    } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
      depth--;
    }
    yaml_event_delete(&ev);
    if (!fine || t == YAML_STREAM_END_EVENT)
      break;
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
    if (msgs)
      mb_buf_printf(msgs, "%s: cannot open: %s\n", path, strerror(errno));
    return 2;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    if (msgs)
      mb_buf_printf(msgs, "%s: is a directory (expected a matrix file)\n", path);
    fclose(f);
    return 2;
  }
  yaml_parser_t parser;
  ctx c;
  memset(&c, 0, sizeof c);
  c.file = path;
  if (!depth_ok(&c, f)) {
    fclose(f);
    mbx_flush_diags(&c, msgs);
    return 2;
  }
  if (!yaml_parser_initialize(&parser))
    mb_oom(0);
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &c.doc)) {
    mb_mark at = {(int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1};
    if (parser.context)
      mbx_err(&c, at, "malformed YAML: %s %s (line %d)", parser.problem ? parser.problem : "error",
              parser.context, (int)parser.context_mark.line + 1);
    else
      mbx_err(&c, at, "malformed YAML: %s", parser.problem ? parser.problem : "error");
    yaml_parser_delete(&parser);
    fclose(f);
    mbx_flush_diags(&c, msgs);
    return 2;
  }
  /* a second document would be silently ignored: refuse it */
  yaml_document_t extra;
  if (yaml_parser_load(&parser, &extra)) {
    yaml_node_t *r2 = yaml_document_get_root_node(&extra);
    if (r2)
      mbx_err(&c, mark_of(r2), "a matrix file holds one YAML document; this is a second one");
    yaml_document_delete(&extra);
  } else {
    mb_mark at = {(int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1};
    mbx_err(&c, at, "malformed YAML: %s%s%s", parser.problem ? parser.problem : "error",
            parser.context ? " " : "", parser.context ? parser.context : "");
  }
  yaml_parser_delete(&parser);
  fclose(f);
  if (c.nerr) {
    yaml_document_delete(&c.doc);
    mbx_flush_diags(&c, msgs);
    return 2;
  }
  mb_matrix *m = calloc(1, sizeof *m);
  if (!m)
    mb_oom(sizeof *m);
  m->path = xstrdup(path);
  c.m = m;
  yaml_node_t *root = yaml_document_get_root_node(&c.doc);
  if (!root)
    mbx_err(&c, (mb_mark){1, 1}, "the file is empty (expected a matrix)");
  else
    parse_root(&c, root);
  yaml_document_delete(&c.doc);
  int bad = c.nerr > 0;
  mbx_flush_diags(&c, msgs);
  if (bad) {
    mb_matrix_free(m);
    return 2;
  }
  *out = m;
  return 0;
}

mb_matrix *mb_matrix_load_stderr(const char *path, int *status)
{
  mb_buf msgs;
  mb_matrix *m = NULL;
  mb_buf_init(&msgs);
  *status = mb_matrix_load(path, &m, &msgs);
  if (msgs.n)
    fputs(msgs.s, stderr);
  mb_buf_free(&msgs);
  return m;
}
