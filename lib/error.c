/* SPDX-License-Identifier: GPL-3.0-or-later */
/* error.c — error codes, per-thread last message, optional handler. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "moe/error.h"
#include "internal.h"

static _Thread_local char last_msg[1024];
static moe_error_handler handler;

const char *moe_strerror(int code)
{
  switch (code) {
  case MOE_OK: return "success";
  case MOE_EINVAL: return "invalid argument";
  case MOE_ENOMEM: return "out of memory";
  case MOE_EDOM: return "non-finite value";
  case MOE_EIO: return "input/output error";
  case MOE_EFORMAT: return "malformed data";
  case MOE_ERANGE: return "value out of range";
  case MOE_ENOCONV: return "did not converge";
  case MOE_ECHECKSUM: return "checksum mismatch";
  default: return "unknown error";
  }
}

const char *moe_last_error(void) { return last_msg; }

void moe_error_clear(void) { last_msg[0] = '\0'; }

/* The message is formatted into a scratch buffer and then copied, so an
 * argument may be moe_last_error() itself: callers add context with
 * `moe_error(rc, "block %d: %s", l, moe_last_error())`. */
int moe_error(int code, const char *fmt, ...)
{
  char msg[sizeof last_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* every allocation failure says so, whatever context its caller gave */
  if (code == MOE_ENOMEM && !strstr(msg, "memory")) {
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof msg - n, "%sout of memory", n ? ": " : "");
  }
  memcpy(last_msg, msg, sizeof last_msg);
  if (handler)
    handler(code, last_msg);
  return code;
}

moe_error_handler moe_set_error_handler(moe_error_handler h)
{
  moe_error_handler old = handler;
  handler = h;
  return old;
}

void *moei_alloc_aligned(size_t bytes)
{
  void *p = NULL;
  if (bytes > (size_t)-1 - 63)
    return NULL; /* bytes + 63 would wrap to a tiny buffer */
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0)
    rounded = 64;
  if (posix_memalign(&p, 64, rounded) != 0)
    return NULL;
  memset(p, 0, rounded);
  return p;
}

void *moei_alloc_array(size_t count, size_t size)
{
  size_t bytes;
  return moei_mul(count, size, &bytes) ? moei_alloc_aligned(bytes) : NULL;
}

void moei_free_aligned(void *p) { free(p); }

/* The scans below are integer work on every gradient and parameter of a
 * step (2–4% of it): plain -O2 GCC 12 leaves their block loops scalar
 * (its very-cheap vectoriser cost model), so they are vectorised here and
 * compiled for AVX2 too. Integers only: no result depends on it. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("tree-vectorize")
#endif
MOE_VEC_CLONES size_t moei_first_nonfinite_f(const float *x, size_t n)
{
  enum { BLOCK = 1024 };
  for (size_t b = 0; b < n; b += BLOCK) {
    size_t e = n - b < BLOCK ? n : b + BLOCK;
    uint32_t bad = 0;
    for (size_t i = b; i < e; i++) {
      uint32_t u;
      memcpy(&u, x + i, sizeof u);
      bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    if (bad)
      for (size_t i = b; i < e; i++)
        if (!isfinite(x[i]))
          return i;
  }
  return n;
}

MOE_VEC_CLONES size_t moei_first_nonfinite_d(const double *x, size_t n)
{
  enum { BLOCK = 1024 };
  for (size_t b = 0; b < n; b += BLOCK) {
    size_t e = n - b < BLOCK ? n : b + BLOCK;
    uint64_t bad = 0;
    for (size_t i = b; i < e; i++) {
      uint64_t u;
      memcpy(&u, x + i, sizeof u);
      bad |= (uint64_t)((u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
    }
    if (bad)
      for (size_t i = b; i < e; i++)
        if (!isfinite(x[i]))
          return i;
  }
  return n;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* ---- GSL's error handler (see internal.h) --------------------------------- */
static pthread_mutex_t gsl_lock = PTHREAD_MUTEX_INITIALIZER;
static long gsl_depth;                   /* threads x nesting inside libmoe's GSL regions */
static gsl_error_handler_t *gsl_saved;   /* the application's handler (NULL: GSL's default) */
static _Thread_local int gsl_inside;     /* this thread's nesting */
static _Thread_local char gsl_msg[256];

static void moei_gsl_handler(const char *reason, const char *file, int line, int gsl_errno)
{
  if (gsl_inside) {
    snprintf(gsl_msg, sizeof gsl_msg, "%s (gsl %s:%d, %s)", reason, file, line,
             gsl_strerror(gsl_errno));
    return;
  }
  /* another thread, outside libmoe, while libmoe holds the handler */
  gsl_error_handler_t *h = gsl_saved;
  if (h)
    h(reason, file, line, gsl_errno);
  else
    fprintf(stderr, "gsl: %s:%d: ERROR: %s\n", file, line, reason);
}

void moei_gsl_enter(void)
{
  if (gsl_inside++)
    return;
  pthread_mutex_lock(&gsl_lock);
  if (gsl_depth++ == 0)
    gsl_saved = gsl_set_error_handler(moei_gsl_handler);
  pthread_mutex_unlock(&gsl_lock);
}

void moei_gsl_leave(void)
{
  if (--gsl_inside)
    return;
  pthread_mutex_lock(&gsl_lock);
  if (--gsl_depth == 0)
    gsl_set_error_handler(gsl_saved);
  pthread_mutex_unlock(&gsl_lock);
}

const char *moei_gsl_last_error(void) { return gsl_msg; }

int moei_parse_name(const char *what, const char *name, const char *const *names, int *out)
{
  MOE_CHECK_ARG(name && out, "%s: NULL argument", what);
  for (int i = 0; names[i]; i++)
    if (strcmp(name, names[i]) == 0) {
      *out = i;
      return MOE_OK;
    }
  char known[256] = "";
  size_t len = 0;
  for (int i = 0; names[i] && len < sizeof known; i++)
    len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", names[i]);
  return moe_error(MOE_EINVAL, "unknown %s '%s' (known: %s)", what, name, known);
}
