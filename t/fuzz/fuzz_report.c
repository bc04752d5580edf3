/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_report.c — `moebench report` (mb_verb_report: result reader,
 * tables, fits with bootstrap, every output format) over fuzzed cell
 * files of a fixed selftest matrix. The input is split at NUL bytes; piece
 * i becomes the result file of cell i (mod the matrix's 12 cells, first
 * piece wins), under the cell's real id, so a valid piece reaches the
 * tables. report must not crash and must exit 0, 1 or 2; its output goes
 * to /dev/null. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "harness/matrix.h"
#include "verbs.h"

static const char fz_matrix[] =
  "name: fz\n"
  "task: selftest\n"
  "seed: 5\n"
  "axes:\n"
  "  n: [10, 100, 1000]\n"
  "  mode: [plain, noisy]\n"
  "replications: 2\n"
  "tables:\n"
  "  - name: t\n"
  "    rows: n\n"
  "    columns: [mode]\n"
  "    metric: value\n"
  "    stats: [mean, se, ci95, median, min, max, n]\n"
  "fits:\n"
  "  - name: g\n"
  "    x: n\n"
  "    y: value\n"
  "    by: [mode]\n"
  "    bootstrap: 20\n";

static char root[4096], cells[4200];
static mb_matrix *fz;

static int setup(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/moe-fuzz-%ld.report", t && *t ? t : "/tmp", (long)getpid());
  char p[4400];
  snprintf(p, sizeof p, "%s/fz", root);
  mkdir(root, 0700);
  mkdir(p, 0700);
  snprintf(cells, sizeof cells, "%s/cells", p);
  mkdir(cells, 0700);
  snprintf(p, sizeof p, "%s/fz/matrix.yaml", root);
  FILE *f = fopen(p, "w");
  FUZZ_ASSERT(f && fputs(fz_matrix, f) >= 0 && fclose(f) == 0);
  FUZZ_ASSERT(mb_matrix_load(p, &fz, NULL) == 0 && fz && fz->ncells == 12);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int ready;
  if (!ready) ready = setup();
  DIR *d = opendir(cells);
  struct dirent *e;
  char p[4400];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    snprintf(p, sizeof p, "%s/%s", cells, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  size_t k = 0;
  for (size_t i = 0; i <= size && k < 64; k++) {
    size_t j = i;
    while (j < size && data[j]) j++;
    snprintf(p, sizeof p, "%s/%s.json", cells, fz->cells[k % fz->ncells].id);
    if (access(p, F_OK)) {
      FILE *f = fopen(p, "wb");
      FUZZ_ASSERT(f);
      if (j > i) FUZZ_ASSERT(fwrite(data + i, 1, j - i, f) == j - i);
      FUZZ_ASSERT(fclose(f) == 0);
    }
    i = j + 1;
  }
  snprintf(p, sizeof p, "%s/fz", root);
  char *argv[] = {"report", p, "--format", "md,csv,tex,json", NULL};
  fflush(stdout);
  fflush(stderr);
  int o1 = dup(1), o2 = dup(2), nul = open("/dev/null", O_WRONLY);
  FUZZ_ASSERT(o1 >= 0 && o2 >= 0 && nul >= 0);
  dup2(nul, 1);
  dup2(nul, 2);
  int rc = mb_verb_report(4, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(o1, 1);
  dup2(o2, 2);
  close(o1);
  close(o2);
  close(nul);
  FUZZ_ASSERT(rc == 0 || rc == 1 || rc == 2);
  return 0;
}
