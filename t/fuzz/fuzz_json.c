/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_json.c — the harness's JSON reader (mb_json_parse) and the result
 * file loader on top of it (mb_rfile_load): no crash, an error message
 * whenever a document is refused, and every value of a parsed document
 * walkable. */
#include "fuzz.h"
#include "harness/json.h"
#include "harness/results.h"

static size_t walk(const mb_json *j, int depth)
{
  size_t n = 1;
  double v;
  FUZZ_ASSERT(depth < 100000);
  (void)mb_json_as_double(j, &v);
  if (j->type == MB_J_STR || j->type == MB_J_NUM || j->type == MB_J_BOOL) FUZZ_ASSERT(j->text);
  for (size_t i = 0; (j->type == MB_J_ARR || j->type == MB_J_OBJ) && i < j->n; i++) {
    if (j->type == MB_J_OBJ) {
      FUZZ_ASSERT(j->keys[i]);
      FUZZ_ASSERT(mb_json_get(j, j->keys[i]));
    }
    n += walk(j->items[i], depth + 1);
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char err[512] = "";
  mb_json *j = mb_json_parse((const char *)data, size, err, sizeof err);
  if (j) {
    walk(j, 0);
    mb_json_free(j);
  } else {
    FUZZ_ASSERT(err[0]);
  }
  const char *path = fuzz_write(data, size, ".json");
  mb_rfile r;
  err[0] = 0;
  int rc = mb_rfile_load(path, &r, err, sizeof err);
  if (rc == 0) {
    double v;
    for (size_t i = 0; i < r.nm; i++) FUZZ_ASSERT(mb_rfile_metric(&r, r.mname[i], &v) == 1);
    mb_rfile_free(&r);
  } else {
    FUZZ_ASSERT(rc == 1 && err[0]);
  }
  return 0;
}
