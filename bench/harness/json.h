/* SPDX-License-Identifier: GPL-3.0-or-later */
/* json.h — the small JSON writer and reader behind result files.
 *
 * Writer: appends to a growing text buffer (so a result is composed in
 * memory and then written in one go to a temp file). Reader: parses a whole
 * document into a tree; any malformation (truncation, bad escape, depth
 * over 64) is an error with a byte offset, never a crash. Numbers keep
 * their source text so integers and "%.17g" reals round-trip exactly. */
#ifndef MB_JSON_H
#define MB_JSON_H

#include <stddef.h>
#include <stdio.h>

/* A growing NUL-terminated text buffer. */
typedef struct {
  char *s;
  size_t n, cap;
  int oom; /* set once an allocation failed; later appends are dropped */
} mb_buf;

void mb_buf_init(mb_buf *b);
void mb_buf_free(mb_buf *b);
void mb_buf_add(mb_buf *b, const char *s, size_t n);
void mb_buf_puts(mb_buf *b, const char *s);
void mb_buf_printf(mb_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s as a JSON string literal (quotes, escapes, control chars as \u00XX). */
void mb_buf_json_str(mb_buf *b, const char *s);
/* v as a JSON value: "%.17g" (round-trips), or the strings "nan", "inf",
 * "-inf" since JSON has no literal for them. */
void mb_buf_json_num(mb_buf *b, double v);

typedef enum { MB_J_NULL, MB_J_BOOL, MB_J_NUM, MB_J_STR, MB_J_ARR, MB_J_OBJ } mb_jtype;

typedef struct mb_json {
  mb_jtype type;
  char *text;             /* NUM: source text; STR: decoded; BOOL: "true"/"false" */
  double num;             /* NUM, BOOL (0/1) */
  size_t n;               /* ARR/OBJ: number of items */
  char **keys;            /* OBJ: keys, in document order */
  struct mb_json **items; /* ARR/OBJ */
} mb_json;

/* Parse s[0..len). On error returns NULL and writes a message to err. */
mb_json *mb_json_parse(const char *s, size_t len, char *err, size_t errlen);
/* Read and parse a file; NULL with a message (naming the file) on error. */
mb_json *mb_json_load(const char *path, char *err, size_t errlen);
void mb_json_free(mb_json *j);
/* Member of an object (NULL if absent or j is not an object). */
const mb_json *mb_json_get(const mb_json *j, const char *key);
/* Member as a string (STR text) or NULL. */
const char *mb_json_str(const mb_json *j, const char *key);
/* A JSON value as a double: numbers, and the strings "nan"/"inf"/"-inf". */
int mb_json_as_double(const mb_json *j, double *v);

#endif
