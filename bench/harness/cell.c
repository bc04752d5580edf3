/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cell.c — resolved cells (sorted key/value text) and task results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "task.h"

/* A cell is either growable (every string and array malloc'd on its own)
 * or packed: one block holding the struct, the key/value arrays and the
 * strings, as mb_cell_copy makes it. An expanded matrix holds millions of
 * cells, and packing makes each several times smaller. Setting a value of
 * a packed cell first unpacks it (the block stays until mb_cell_free). */
struct mb_cell {
  char *task;
  size_t n, cap;
  char **key, **val; /* sorted by key (strcmp) */
  int packed;
  char *undeclared; /* first key asked for and not held (see mb_cell_undeclared) */
};

struct mb_result {
  size_t n, cap, nn, ncap;
  char **name;
  double *value;
  char **nkey, **ntext;
};

static char *dup(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

mb_cell *mb_cell_new(const char *task)
{
  mb_cell *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->task = dup(task ? task : "");
  if (!c->task) {
    free(c);
    return NULL;
  }
  return c;
}

void mb_cell_free(mb_cell *c)
{
  if (!c)
    return;
  free(c->undeclared);
  if (c->packed) {
    free(c);
    return;
  }
  for (size_t i = 0; i < c->n; i++) {
    free(c->key[i]);
    free(c->val[i]);
  }
  free(c->key);
  free(c->val);
  free(c->task);
  free(c);
}

static size_t find(const mb_cell *c, const char *key, int *found)
{
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int d = strcmp(c->key[mid], key);
    if (d == 0) {
      *found = 1;
      return mid;
    }
    if (d < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

/* Give a packed cell strings and arrays of its own, so it can grow. */
static int unpack(mb_cell *c)
{
  size_t cap = c->n ? c->n + 1 : 16;
  char **k = calloc(cap, sizeof *k), **v = calloc(cap, sizeof *v), *t = dup(c->task);
  int bad = !k || !v || !t;
  for (size_t i = 0; !bad && i < c->n; i++)
    if (!(k[i] = dup(c->key[i])) || !(v[i] = dup(c->val[i])))
      bad = 1;
  if (bad) {
    for (size_t i = 0; k && v && i < c->n; i++) {
      free(k[i]);
      free(v[i]);
    }
    free(k);
    free(v);
    free(t);
    return -1;
  }
  c->key = k;
  c->val = v;
  c->task = t;
  c->cap = cap;
  c->packed = 0;
  return 0;
}

int mb_cell_set(mb_cell *c, const char *key, const char *value)
{
  int found;
  if (c->packed && unpack(c))
    return -1;
  size_t i = find(c, key, &found);
  char *v = dup(value);
  if (!v)
    return -1;
  if (found) {
    free(c->val[i]);
    c->val[i] = v;
    return 0;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 16;
    char **k = realloc(c->key, cap * sizeof *k);
    if (!k) {
      free(v);
      return -1;
    }
    c->key = k;
    char **vv = realloc(c->val, cap * sizeof *vv);
    if (!vv) {
      free(v);
      return -1;
    }
    c->val = vv;
    c->cap = cap;
  }
  char *k = dup(key);
  if (!k) {
    free(v);
    return -1;
  }
  memmove(c->key + i + 1, c->key + i, (c->n - i) * sizeof *c->key);
  memmove(c->val + i + 1, c->val + i, (c->n - i) * sizeof *c->val);
  c->key[i] = k;
  c->val[i] = v;
  c->n++;
  return 0;
}

size_t mb_cell_packed_size(const mb_cell *c)
{
  size_t b = sizeof *c + 2 * c->n * sizeof(char *) + strlen(c->task) + 1;
  for (size_t i = 0; i < c->n; i++)
    b += strlen(c->key[i]) + strlen(c->val[i]) + 2;
  return b;
}

mb_cell *mb_cell_copy(const mb_cell *c)
{
  mb_cell *d = malloc(mb_cell_packed_size(c));
  if (!d)
    return NULL;
  d->n = d->cap = c->n;
  d->packed = 1;
  d->undeclared = NULL;
  d->key = (char **)(d + 1);
  d->val = d->key + c->n;
  char *s = (char *)(d->val + c->n);
#define PACK(dst, src)                                                                             \
  do {                                                                                             \
    size_t L_ = strlen(src) + 1;                                                                   \
    memcpy(s, (src), L_);                                                                          \
    (dst) = s;                                                                                     \
    s += L_;                                                                                       \
  } while (0)
  PACK(d->task, c->task);
  for (size_t i = 0; i < c->n; i++) {
    PACK(d->key[i], c->key[i]);
    PACK(d->val[i], c->val[i]);
  }
#undef PACK
  return d;
}

const char *mb_cell_task(const mb_cell *c) { return c->task; }
size_t mb_cell_size(const mb_cell *c) { return c->n; }
const char *mb_cell_key_at(const mb_cell *c, size_t i) { return i < c->n ? c->key[i] : NULL; }
const char *mb_cell_value_at(const mb_cell *c, size_t i) { return i < c->n ? c->val[i] : NULL; }

const char *mb_cell_str(const mb_cell *c, const char *key)
{
  int found;
  size_t i = find(c, key, &found);
  if (!found && !c->undeclared && strcmp(key, "rep") && strcmp(key, "matrix_seed"))
    ((mb_cell *)c)->undeclared =
        strdup(key); /* out of memory: the check is lost, the lookup still NULL */
  return found ? c->val[i] : NULL;
}

const char *mb_cell_undeclared(const mb_cell *c) { return c ? c->undeclared : NULL; }

long mb_cell_rep(const mb_cell *c)
{
  int found;
  size_t i = find(c, "rep", &found);
  return found ? strtol(c->val[i], NULL, 10) : 0;
}

uint64_t mb_cell_matrix_seed(const mb_cell *c)
{
  int found;
  size_t i = find(c, "matrix_seed", &found);
  return found ? strtoull(c->val[i], NULL, 10) : 0;
}

long mb_cell_int(const mb_cell *c, const char *key)
{
  const char *s = mb_cell_str(c, key);
  return s ? strtol(s, NULL, 10) : 0;
}

double mb_cell_real(const mb_cell *c, const char *key)
{
  const char *s = mb_cell_str(c, key);
  return s ? strtod(s, NULL) : 0.0;
}

int mb_cell_bool(const mb_cell *c, const char *key)
{
  const char *s = mb_cell_str(c, key);
  return s && (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "on"));
}

int mb_task_threads(void)
{
  const char *v = getenv("MOEBENCH_THREADS");
  char *end;
  long n = v ? strtol(v, &end, 10) : 1;
  return v && (*end || n < 1 || n > 1024) ? 1 : (int)n;
}

mb_result *mb_result_new(void) { return calloc(1, sizeof(mb_result)); }

void mb_result_free(mb_result *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    free(r->name[i]);
  for (size_t i = 0; i < r->nn; i++) {
    free(r->nkey[i]);
    free(r->ntext[i]);
  }
  free(r->name);
  free(r->value);
  free(r->nkey);
  free(r->ntext);
  free(r);
}

int mb_result_metric(mb_result *r, const char *name, double value)
{
  for (size_t i = 0; i < r->n; i++)
    if (!strcmp(r->name[i], name)) {
      r->value[i] = value;
      return 0;
    }
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    char **nm = realloc(r->name, cap * sizeof *nm);
    if (!nm)
      return -1;
    r->name = nm;
    double *v = realloc(r->value, cap * sizeof *v);
    if (!v)
      return -1;
    r->value = v;
    r->cap = cap;
  }
  if (!(r->name[r->n] = dup(name)))
    return -1;
  r->value[r->n++] = value;
  return 0;
}

int mb_result_note(mb_result *r, const char *key, const char *text)
{
  if (r->nn == r->ncap) {
    size_t cap = r->ncap ? 2 * r->ncap : 8;
    char **k = realloc(r->nkey, cap * sizeof *k);
    if (!k)
      return -1;
    r->nkey = k;
    char **t = realloc(r->ntext, cap * sizeof *t);
    if (!t)
      return -1;
    r->ntext = t;
    r->ncap = cap;
  }
  r->nkey[r->nn] = dup(key);
  r->ntext[r->nn] = dup(text);
  if (!r->nkey[r->nn] || !r->ntext[r->nn])
    return -1;
  r->nn++;
  return 0;
}

size_t mb_result_size(const mb_result *r) { return r->n; }
const char *mb_result_name_at(const mb_result *r, size_t i) { return i < r->n ? r->name[i] : NULL; }
double mb_result_value_at(const mb_result *r, size_t i) { return i < r->n ? r->value[i] : 0.0; }
size_t mb_result_nnotes(const mb_result *r) { return r->nn; }
const char *mb_result_note_key_at(const mb_result *r, size_t i)
{
  return i < r->nn ? r->nkey[i] : NULL;
}
const char *mb_result_note_at(const mb_result *r, size_t i)
{
  return i < r->nn ? r->ntext[i] : NULL;
}

int mb_result_fingerprint(mb_result *r, const char *const *paths, size_t n, char *err,
                          size_t errlen)
{
  size_t cap = 1, len = 0;
  for (size_t i = 0; i < n; i++)
    cap += strlen(paths[i]) + 67;
  char *list = malloc(cap);
  if (!list) {
    snprintf(err, errlen, "data fingerprint: out of memory");
    return -1;
  }
  list[0] = 0;
  unsigned char *buf = malloc(1 << 16);
  if (!buf) {
    free(list);
    snprintf(err, errlen, "data fingerprint: out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    FILE *f = fopen(paths[i], "rb");
    if (!f) {
      snprintf(err, errlen, "%s: cannot open to fingerprint it: %s", paths[i], strerror(errno));
      goto fail;
    }
    moei_sha256 s;
    moei_sha256_init(&s);
    size_t got;
    while ((got = fread(buf, 1, 1 << 16, f)) > 0)
      moei_sha256_update(&s, buf, got);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
      snprintf(err, errlen, "%s: read error while fingerprinting it", paths[i]);
      goto fail;
    }
    unsigned char d[32];
    moei_sha256_final(&s, d);
    const char *base = strrchr(paths[i], '/');
    base = base ? base + 1 : paths[i];
    len += (size_t)sprintf(list + len, "%s%s ", i ? "\n" : "", base);
    for (int k = 0; k < 32; k++)
      len += (size_t)sprintf(list + len, "%02x", d[k]);
  }
  char hex[65];
  moei_sha256_hex(list, len, hex);
  if (mb_result_note(r, "data_files", list) || mb_result_note(r, "data_sha256", hex)) {
    snprintf(err, errlen, "data fingerprint: out of memory");
    goto fail;
  }
  free(buf);
  free(list);
  return 0;
fail:
  free(buf);
  free(list);
  return -1;
}
