/* SPDX-License-Identifier: GPL-3.0-or-later */
/* textio.c — temporary files for atomic writes (see textio.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/error.h"
#include "textio.h"

int textio_tmp_open(const char *path, char **tmp, int *fd)
{
  size_t cap = strlen(path) + 48;
  char *name = malloc(cap);
  if (!name) return moe_error(MOE_ENOMEM, "%s: out of memory", path);
  for (unsigned k = 0; k < 1000; k++) {
    snprintf(name, cap, "%s.tmp.%ld.%u", path, (long)getpid(), k);
    int f = open(name, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (f >= 0) {
      *tmp = name;
      *fd = f;
      return MOE_OK;
    }
    if (errno != EEXIST) {
      int e = errno;
      free(name);
      return moe_error(MOE_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
  }
  free(name);
  return moe_error(MOE_EIO, "%s: cannot find a free temporary name beside it", path);
}
