/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix_int.h — inside the matrix parser: what its four files share.
 * matrix.c reads the file (the root keys, the values' canonical text,
 * freeing); matrix_yaml.c collects the diagnostics and checks YAML nodes
 * against the task's declaration; matrix_spec.c parses the report's part
 * (tables, fits, plots, sequential, claims); matrix_expand.c expands the
 * cells and gives them their ids. The mbx_ functions are for these files
 * only (matrix.h is the parser's interface). */
#ifndef MB_MATRIX_INT_H
#define MB_MATRIX_INT_H

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "matrix.h"

/* ---- allocation: out of memory stops the harness (mb_oom) ---- */

static inline char *xstrdup(const char *s)
{
  char *d = strdup(s ? s : "");
  if (!d)
    mb_oom(strlen(s ? s : "") + 1);
  return d;
}

static inline void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    mb_oom(n);
  return q;
}

/* Arrays grown one element at a time (PUSH) grow geometrically: capacity is
 * the next power of two >= n, so a 10-million-cell expansion does not
 * realloc 10 million times. */
static inline void *xgrow(void *p, size_t n, size_t size)
{
  if (n & (n - 1))
    return p; /* n not a power of two: room is left */
  if (n && size > ((size_t)-1) / 2 / n)
    mb_oom(0);
  return xrealloc(p, (n ? 2 * n : 1) * size);
}

#define PUSH(arr, n, v)                                                                            \
  do {                                                                                             \
    (arr) = xgrow((arr), (n), sizeof *(arr));                                                      \
    (arr)[(n)++] = (v);                                                                            \
  } while (0)

/* ---- error collection (matrix_yaml.c) ---- */

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
  size_t dropped; /* diagnostics beyond the first 200, not stored */
  mb_matrix *m;
} ctx;

/* A diagnostic at a place of the file: an error (counted in nerr: the
 * matrix is refused) or a warning. At most 200 are kept, one per (place,
 * message). */
void mbx_err(ctx *c, mb_mark at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void mbx_warn(ctx *c, mb_mark at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The diagnostics, sorted by place, the first 50 into msgs (may be NULL);
 * frees them. */
void mbx_flush_diags(ctx *c, mb_buf *msgs);

/* ---- YAML node helpers (matrix_yaml.c) ---- */

static inline yaml_node_t *node(ctx *c, int i) { return yaml_document_get_node(&c->doc, i); }

static inline mb_mark mark_of(const yaml_node_t *n)
{
  mb_mark m = {(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
  return m;
}

static inline const char *kind(const yaml_node_t *n)
{
  return n->type == YAML_MAPPING_NODE    ? "mapping"
         : n->type == YAML_SEQUENCE_NODE ? "list"
                                         : "scalar";
}

static inline const char *stext(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static inline int is_null(const yaml_node_t *n)
{
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  const char *s = stext(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

typedef struct {
  const char *key;
  yaml_node_t *k, *v;
} pair_t;

static inline yaml_node_t *get(pair_t *p, size_t n, const char *key, yaml_node_t **k)
{
  for (size_t i = 0; i < n; i++)
    if (!strcmp(p[i].key, key)) {
      if (k)
        *k = p[i].k;
      return p[i].v;
    }
  return NULL;
}

static inline size_t count(const char *const *list)
{
  size_t n = 0;
  while (list[n])
    n++;
  return n;
}

/* The pairs of a mapping, with keys checked: scalar, known (against
 * allowed; NULL = any), and not repeated. Unknown/duplicate pairs are
 * reported and left out. Returns a malloc'd array (count in *np). */
pair_t *mbx_pairs(ctx *c, yaml_node_t *map, const char *const *allowed, size_t nallowed,
                  const char *what, size_t *np);
/* A scalar string value; reports and returns NULL otherwise. */
const char *mbx_want_scalar(ctx *c, yaml_node_t *v, const char *what);
/* A boolean into *out: 1, or 0 (reported). */
int mbx_want_bool(ctx *c, yaml_node_t *v, const char *what, int *out);
/* A name or a list of names (rows: n / rows: [n, k]); where each one is
 * goes to *at (malloc'd) if at is given. */
char **mbx_want_names_at(ctx *c, yaml_node_t *v, const char *what, size_t *n, mb_mark **at);
/* The task's parameter named key (its index in *idx if idx), or NULL. */
const mb_param *mbx_find_param(const mb_task *t, const char *key, size_t *idx);
/* The replication index as a parameter, for the places that take rep. */
extern const mb_param mbx_rep_param;
/* Check that key names a parameter (or rep); report at at otherwise. */
const mb_param *mbx_want_param(ctx *c, const char *key, mb_mark at, int allow_rep,
                               const char *where);
/* Canonical value of parameter p from node v (malloc'd), or NULL (reported). */
char *mbx_canon_node(ctx *c, const mb_param *p, yaml_node_t *v);
void mbx_kvl_free(mb_kvl *kv);
/* One key with its value(s): a scalar, or (if allow_list) a non-empty list. */
int mbx_parse_kv(ctx *c, pair_t *pr, int allow_rep, int allow_list, const char *where, mb_kvl *out);
/* include/exclude: a list of maps of parameter (or rep) values. */
mb_map *mbx_parse_maps(ctx *c, yaml_node_t *v, const char *what, int allow_list, size_t *nout);
/* A name of [a-z0-9_-]+. */
int mbx_valid_name(const char *s);
/* The entry's 'name' (a valid name, malloc'd), or NULL (reported). */
char *mbx_want_name(ctx *c, pair_t *pr, size_t np, yaml_node_t *entry, const char *what);
/* Names that must be parameters (or rep), each checked at its own place. */
char **mbx_want_keys(ctx *c, yaml_node_t *v, const char *where, size_t *n);
/* The entry's key naming a metric of the task (malloc'd), or NULL (reported). */
char *mbx_want_metric_node(ctx *c, pair_t *pr, size_t np, yaml_node_t *entry, const char *key);
/* A positive real (half_width, effect): its value, or NaN (reported). */
double mbx_want_positive(ctx *c, yaml_node_t *v, const char *what);

/* ---- the report's part: tables, fits, plots, sequential, claims
 * (matrix_spec.c) ---- */

void mbx_parse_tables(ctx *c, yaml_node_t *v);
void mbx_parse_fits(ctx *c, yaml_node_t *v);
void mbx_parse_plots(ctx *c, yaml_node_t *v);      /* after the fits it names */
void mbx_parse_sequential(ctx *c, yaml_node_t *v); /* after the tables */
void mbx_parse_claims(ctx *c, yaml_node_t *v);     /* after the tables */
/* After expansion: every claim's comparison has cells. */
void mbx_check_claims(ctx *c);

/* ---- expansion (matrix_expand.c) ---- */

/* The cells of c->m (base, axes, replications, include, exclude), with
 * their ids and seeds, checked by the task; duplicates dropped. */
void mbx_expand(ctx *c);
void mbx_xcell_free(mb_xcell *x);

#endif
