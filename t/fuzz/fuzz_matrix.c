/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_matrix.c — mb_matrix_load (the experiment-matrix YAML: parse,
 * validate, expand) with moebench's real task registry. A matrix that
 * loads must have cells with distinct ids; one that does not must say
 * why. Includes name other files, so an input may read any file: run the
 * fuzzer where that is harmless. */
#include "fuzz.h"
#include "harness/matrix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *path = fuzz_write(data, size, ".yaml");
  mb_matrix *m = NULL;
  mb_buf msgs;
  mb_buf_init(&msgs);
  int rc = mb_matrix_load(path, &m, &msgs);
  if (rc == 0) {
    FUZZ_ASSERT(m && m->ncells > 0);
    for (size_t i = 0; i < m->ncells; i++) FUZZ_ASSERT(m->cells[i].id[12] == 0);
    mb_matrix_free(m);
  } else {
    FUZZ_ASSERT(rc == 2 && msgs.n > 0);
  }
  mb_buf_free(&msgs);
  return 0;
}
