/* SPDX-License-Identifier: GPL-3.0-or-later */
/* json.c — see json.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void mb_buf_init(mb_buf *b)
{
  b->s = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}
void mb_buf_free(mb_buf *b)
{
  free(b->s);
  mb_buf_init(b);
}

static int reserve(mb_buf *b, size_t extra)
{
  if (b->oom)
    return 0;
  if (b->n + extra + 1 <= b->cap)
    return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + extra + 1)
    cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s) {
    b->oom = 1;
    return 0;
  }
  b->s = s;
  b->cap = cap;
  return 1;
}

void mb_buf_add(mb_buf *b, const char *s, size_t n)
{
  if (!reserve(b, n))
    return;
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

void mb_buf_puts(mb_buf *b, const char *s) { mb_buf_add(b, s, strlen(s)); }

void mb_buf_printf(mb_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0 || !reserve(b, (size_t)k))
    return;
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

void mb_buf_json_str(mb_buf *b, const char *s)
{
  mb_buf_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
    case '"': mb_buf_add(b, "\\\"", 2); break;
    case '\\': mb_buf_add(b, "\\\\", 2); break;
    case '\n': mb_buf_add(b, "\\n", 2); break;
    case '\r': mb_buf_add(b, "\\r", 2); break;
    case '\t': mb_buf_add(b, "\\t", 2); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        mb_buf_printf(b, "\\u%04x", *p);
      else
        mb_buf_add(b, (const char *)p, 1);
    }
  }
  mb_buf_add(b, "\"", 1);
}

void mb_buf_json_num(mb_buf *b, double v)
{
  if (isnan(v))
    mb_buf_puts(b, "\"nan\"");
  else if (isinf(v))
    mb_buf_puts(b, v > 0 ? "\"inf\"" : "\"-inf\"");
  else
    mb_buf_printf(b, "%.17g", v);
}

/* ---- reader ---- */

typedef struct {
  const char *s, *end, *p;
  char *err;
  size_t errlen;
  int failed;
} rd;

static void fail(rd *r, const char *what)
{
  if (r->failed)
    return;
  r->failed = 1;
  snprintf(r->err, r->errlen, "%s at byte %ld", what, (long)(r->p - r->s));
}

static void ws(rd *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

void mb_json_free(mb_json *j)
{
  if (!j)
    return;
  for (size_t i = 0; i < j->n; i++) {
    mb_json_free(j->items[i]);
    if (j->keys)
      free(j->keys[i]);
  }
  free(j->items);
  free(j->keys);
  free(j->text);
  free(j);
}

static void put_utf8(mb_buf *b, uint32_t c)
{
  char o[4];
  if (c < 0x80) {
    o[0] = (char)c;
    mb_buf_add(b, o, 1);
  } else if (c < 0x800) {
    o[0] = (char)(0xc0 | c >> 6);
    o[1] = (char)(0x80 | (c & 63));
    mb_buf_add(b, o, 2);
  } else if (c < 0x10000) {
    o[0] = (char)(0xe0 | c >> 12);
    o[1] = (char)(0x80 | ((c >> 6) & 63));
    o[2] = (char)(0x80 | (c & 63));
    mb_buf_add(b, o, 3);
  } else {
    o[0] = (char)(0xf0 | c >> 18);
    o[1] = (char)(0x80 | ((c >> 12) & 63));
    o[2] = (char)(0x80 | ((c >> 6) & 63));
    o[3] = (char)(0x80 | (c & 63));
    mb_buf_add(b, o, 4);
  }
}

static int hex4(rd *r, uint32_t *c)
{
  *c = 0;
  for (int i = 0; i < 4; i++, r->p++) {
    if (r->p >= r->end)
      return 0;
    char h = *r->p;
    *c <<= 4;
    if (h >= '0' && h <= '9')
      *c |= (uint32_t)(h - '0');
    else if (h >= 'a' && h <= 'f')
      *c |= (uint32_t)(h - 'a' + 10);
    else if (h >= 'A' && h <= 'F')
      *c |= (uint32_t)(h - 'A' + 10);
    else
      return 0;
  }
  return 1;
}

static char *string(rd *r)
{
  mb_buf b;
  mb_buf_init(&b);
  mb_buf_add(&b, "", 0);
  r->p++; /* opening quote */
  for (;;) {
    if (r->p >= r->end) {
      fail(r, "unterminated string");
      break;
    }
    unsigned char ch = (unsigned char)*r->p;
    if (ch == '"') {
      r->p++;
      break;
    }
    if (ch < 0x20) {
      fail(r, "control character in string");
      break;
    }
    if (ch != '\\') {
      mb_buf_add(&b, r->p, 1);
      r->p++;
      continue;
    }
    if (++r->p >= r->end) {
      fail(r, "unterminated escape");
      break;
    }
    char e = *r->p++;
    const char *m = NULL;
    switch (e) {
    case '"': m = "\""; break;
    case '\\': m = "\\"; break;
    case '/': m = "/"; break;
    case 'b': m = "\b"; break;
    case 'f': m = "\f"; break;
    case 'n': m = "\n"; break;
    case 'r': m = "\r"; break;
    case 't': m = "\t"; break;
    case 'u': {
      uint32_t c;
      if (!hex4(r, &c)) {
        fail(r, "bad \\u escape");
        goto out;
      }
      if (c >= 0xd800 && c < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
        uint32_t lo;
        r->p += 2;
        if (!hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff) {
          fail(r, "bad surrogate pair");
          goto out;
        }
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
      }
      if (c == 0) {
        fail(r, "NUL in string");
        goto out;
      }
      put_utf8(&b, c);
      continue;
    }
    default: fail(r, "bad escape"); goto out;
    }
    mb_buf_puts(&b, m);
  }
out:
  if (r->failed || b.oom) {
    if (b.oom)
      fail(r, "out of memory");
    mb_buf_free(&b);
    return NULL;
  }
  return b.s;
}

static mb_json *value(rd *r, int depth);

static int push(mb_json *j, char *key, mb_json *v, size_t *cap)
{
  if (j->n == *cap) {
    size_t c = *cap ? 2 * *cap : 8;
    mb_json **it = realloc(j->items, c * sizeof *it);
    if (!it)
      return 0;
    j->items = it;
    if (j->type == MB_J_OBJ) {
      char **k = realloc(j->keys, c * sizeof *k);
      if (!k)
        return 0;
      j->keys = k;
    }
    *cap = c;
  }
  j->items[j->n] = v;
  if (j->type == MB_J_OBJ)
    j->keys[j->n] = key;
  j->n++;
  return 1;
}

static mb_json *container(rd *r, int depth, mb_jtype type)
{
  char close = type == MB_J_OBJ ? '}' : ']';
  mb_json *j = calloc(1, sizeof *j);
  size_t cap = 0;
  if (!j) {
    fail(r, "out of memory");
    return NULL;
  }
  j->type = type;
  r->p++;
  ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return j;
  }
  for (;;) {
    char *key = NULL;
    ws(r);
    if (type == MB_J_OBJ) {
      if (r->p >= r->end || *r->p != '"') {
        fail(r, "expected a key");
        break;
      }
      if (!(key = string(r)))
        break;
      ws(r);
      if (r->p >= r->end || *r->p != ':') {
        free(key);
        fail(r, "expected ':'");
        break;
      }
      r->p++;
    }
    mb_json *v = value(r, depth + 1);
    if (!v) {
      free(key);
      break;
    }
    if (!push(j, key, v, &cap)) {
      free(key);
      mb_json_free(v);
      fail(r, "out of memory");
      break;
    }
    ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return j;
    }
    fail(r, type == MB_J_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
    break;
  }
  mb_json_free(j);
  return NULL;
}

static mb_json *value(rd *r, int depth)
{
  ws(r);
  if (depth > 64) {
    fail(r, "nesting too deep");
    return NULL;
  }
  if (r->p >= r->end) {
    fail(r, "unexpected end of input");
    return NULL;
  }
  char c = *r->p;
  if (c == '{')
    return container(r, depth, MB_J_OBJ);
  if (c == '[')
    return container(r, depth, MB_J_ARR);
  mb_json *j = calloc(1, sizeof *j);
  if (!j) {
    fail(r, "out of memory");
    return NULL;
  }
  if (c == '"') {
    j->type = MB_J_STR;
    if (!(j->text = string(r))) {
      free(j);
      return NULL;
    }
    return j;
  }
  static const struct {
    const char *w;
    mb_jtype t;
    double v;
  } lit[] = {{"true", MB_J_BOOL, 1}, {"false", MB_J_BOOL, 0}, {"null", MB_J_NULL, 0}};
  for (int i = 0; i < 3; i++) {
    size_t L = strlen(lit[i].w);
    if ((size_t)(r->end - r->p) >= L && !memcmp(r->p, lit[i].w, L)) {
      r->p += L;
      j->type = lit[i].t;
      j->num = lit[i].v;
      if (j->type == MB_J_BOOL && !(j->text = strdup(lit[i].w))) {
        free(j);
        fail(r, "out of memory");
        return NULL;
      }
      return j;
    }
  }
  /* number: -?digits(.digits)?([eE][+-]?digits)? */
  const char *q = r->p;
  if (q < r->end && *q == '-')
    q++;
  const char *d0 = q;
  while (q < r->end && *q >= '0' && *q <= '9')
    q++;
  if (q == d0) {
    free(j);
    fail(r, "unexpected character");
    return NULL;
  }
  if (q < r->end && *q == '.') {
    const char *f0 = ++q;
    while (q < r->end && *q >= '0' && *q <= '9')
      q++;
    if (q == f0) {
      free(j);
      fail(r, "bad number");
      return NULL;
    }
  }
  if (q < r->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < r->end && (*q == '+' || *q == '-'))
      q++;
    const char *e0 = q;
    while (q < r->end && *q >= '0' && *q <= '9')
      q++;
    if (q == e0) {
      free(j);
      fail(r, "bad number");
      return NULL;
    }
  }
  size_t L = (size_t)(q - r->p);
  j->type = MB_J_NUM;
  if (!(j->text = malloc(L + 1))) {
    free(j);
    fail(r, "out of memory");
    return NULL;
  }
  memcpy(j->text, r->p, L);
  j->text[L] = 0;
  j->num = strtod(j->text, NULL);
  r->p = q;
  return j;
}

mb_json *mb_json_parse(const char *s, size_t len, char *err, size_t errlen)
{
  rd r = {s, s + len, s, err, errlen, 0};
  mb_json *j = value(&r, 0);
  if (j) {
    ws(&r);
    if (r.p != r.end) {
      fail(&r, "trailing garbage");
      mb_json_free(j);
      j = NULL;
    }
  }
  return j;
}

mb_json *mb_json_load(const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  mb_buf b;
  mb_buf_init(&b);
  char chunk[8192];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
    mb_buf_add(&b, chunk, k);
  int bad = ferror(f);
  fclose(f);
  if (bad || b.oom) {
    snprintf(err, errlen, "%s: read error", path);
    mb_buf_free(&b);
    return NULL;
  }
  if (b.n != strlen(b.s ? b.s : "")) {
    snprintf(err, errlen, "%s: NUL byte in file", path);
    mb_buf_free(&b);
    return NULL;
  }
  char e[200];
  mb_json *j = mb_json_parse(b.s ? b.s : "", b.n, e, sizeof e);
  if (!j)
    snprintf(err, errlen, "%s: %s", path, e);
  mb_buf_free(&b);
  return j;
}

const mb_json *mb_json_get(const mb_json *j, const char *key)
{
  if (!j || j->type != MB_J_OBJ)
    return NULL;
  for (size_t i = 0; i < j->n; i++)
    if (!strcmp(j->keys[i], key))
      return j->items[i];
  return NULL;
}

const char *mb_json_str(const mb_json *j, const char *key)
{
  const mb_json *v = mb_json_get(j, key);
  return v && v->type == MB_J_STR ? v->text : NULL;
}

int mb_json_as_double(const mb_json *j, double *v)
{
  if (!j)
    return 0;
  if (j->type == MB_J_NUM) {
    *v = j->num;
    return 1;
  }
  if (j->type == MB_J_STR) {
    if (!strcmp(j->text, "nan")) {
      *v = NAN;
      return 1;
    }
    if (!strcmp(j->text, "inf")) {
      *v = INFINITY;
      return 1;
    }
    if (!strcmp(j->text, "-inf")) {
      *v = -INFINITY;
      return 1;
    }
  }
  return 0;
}
