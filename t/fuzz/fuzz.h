/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz.h — shared by the libFuzzer harnesses in t/fuzz/ (built by
 * build-aux/fuzz.sh, `make fuzz`) and by t/fuzz_replay.c, which feeds the
 * committed regression inputs in t/fuzz/regress/ to the same entry points
 * in the normal build (`make check`).
 *
 * Every reader in libmoe and the harness takes a path, so an input is
 * written to one scratch file per process and the reader opens it. A
 * harness aborts (a crash libFuzzer reports) only when a reader breaks its
 * contract: a result code outside the documented ones, an object returned
 * with an error, or a round trip that changes the bytes. */
#ifndef MOE_FUZZ_H
#define MOE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/error.h"

/* A scratch file for this process (suffix chooses nothing in the readers;
 * it only keeps the names readable in a crash report). */
static inline const char *fuzz_path(const char *suffix)
{
  static char path[4096];
  if (!path[0]) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/moe-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             suffix);
  }
  return path;
}

static inline const char *fuzz_write(const uint8_t *data, size_t size, const char *suffix)
{
  const char *p = fuzz_path(suffix);
  FILE *f = fopen(p, "wb");
  if (!f) { perror(p); abort(); }
  if (size && fwrite(data, 1, size, f) != size) { perror(p); abort(); }
  if (fclose(f)) { perror(p); abort(); }
  return p;
}

/* A contract violation: print why and abort so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                              \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "%s:%d: contract violated: %s (last error: %s)\n", __FILE__,    \
              __LINE__, #cond, moe_last_error());                                     \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
