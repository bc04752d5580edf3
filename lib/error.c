/* SPDX-License-Identifier: GPL-3.0-or-later */
/* error.c — error codes, per-thread last message, optional handler. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int moe_error(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
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
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0)
    rounded = 64;
  if (posix_memalign(&p, 64, rounded) != 0)
    return NULL;
  memset(p, 0, rounded);
  return p;
}

void moei_free_aligned(void *p) { free(p); }

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
