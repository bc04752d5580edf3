/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_fuzz_regress.c — replays every input under t/fuzz/regress/NAME/
 * (inputs that once crashed a reader or broke its contract, found by the
 * libFuzzer harnesses) and the seeds under t/fuzz/seeds/NAME/ through the
 * same entry points the harnesses use, in the normal build. A harness
 * aborts on a contract violation, so a regression shows as a crash of this
 * test with the harness's message; a pass prints one TAP line per input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each harness defines LLVMFuzzerTestOneInput: give each its own name. */
#define LLVMFuzzerTestOneInput fuzz_matrix_one
#include "fuzz/fuzz_matrix.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_one
#include "fuzz/fuzz_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokfile_one
#include "fuzz/fuzz_tokfile.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_bpe_merges_one
#include "fuzz/fuzz_bpe_merges.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tiktoken_one
#include "fuzz/fuzz_tiktoken.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_bpe_roundtrip_one
#include "fuzz/fuzz_bpe_roundtrip.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_corpus_one
#include "fuzz/fuzz_corpus.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_report_one
#include "fuzz/fuzz_report.c"
#undef LLVMFuzzerTestOneInput

#include "tap.h"

static const struct {
  const char *name;
  int (*one)(const uint8_t *, size_t);
} harness[] = {
  {"matrix", fuzz_matrix_one},         {"json", fuzz_json_one},
  {"idx", fuzz_idx_one},               {"tokfile", fuzz_tokfile_one},
  {"bpe_merges", fuzz_bpe_merges_one}, {"tiktoken", fuzz_tiktoken_one},
  {"bpe_roundtrip", fuzz_bpe_roundtrip_one}, {"corpus", fuzz_corpus_one},
  {"report", fuzz_report_one},
};

static unsigned char *slurp(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  unsigned char *buf = malloc(cap);
  for (size_t r; buf && (r = fread(buf + len, 1, cap - len, f)) > 0;) {
    len += r;
    if (len == cap) {
      unsigned char *nb = realloc(buf, cap *= 2);
      if (!nb) { free(buf); buf = NULL; }
      buf = nb;
    }
  }
  fclose(f);
  *n = len;
  return buf;
}

static int visible(const struct dirent *d) { return d->d_name[0] != '.'; }

static int replay(const char *top, const char *kind, size_t h)
{
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/t/fuzz/%s/%s", top, kind, harness[h].name);
  struct dirent **ents;
  int n = scandir(dir, &ents, visible, alphasort);
  if (n < 0) return 0; /* no inputs for this harness */
  for (int i = 0; i < n; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
    size_t len = 0;
    unsigned char *data = slurp(path, &len);
    ok(data != NULL, "read %s/%s/%s", kind, harness[h].name, ents[i]->d_name);
    if (data) {
      harness[h].one(data, len); /* aborts on a contract violation */
      ok(1, "%s: %s/%s (%zu bytes) handled", harness[h].name, kind, ents[i]->d_name, len);
    }
    free(data);
    free(ents[i]);
  }
  free(ents);
  return n;
}

int main(void)
{
  const char *top = getenv("srcdir");
  if (!top || !*top) top = ".";
  int total = 0;
  for (size_t h = 0; h < sizeof harness / sizeof *harness; h++) {
    total += replay(top, "regress", h);
    total += replay(top, "seeds", h);
  }
  ok(total > 0, "%d inputs replayed", total);
  remove(fuzz_path(""));
  return tap_done();
}
