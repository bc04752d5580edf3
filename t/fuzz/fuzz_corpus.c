/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz_corpus.c — moe_corpus_sotu_split over a directory of fuzzed files.
 * Byte 0 picks the split years (one pair invalid: valid_from > test_from);
 * the rest is a list of files separated by NUL bytes, each "NAME\nBYTES"
 * (a '/' in NAME becomes '_', an empty NAME is "x.txt"; a NAME ending in
 * '/' is made a directory instead). The reader must not crash, must name
 * what it refuses, and what it accepts must add up: each split's length is
 * its speeches' bytes plus one "\n" between files, its years within the
 * split's bounds. */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "moe/corpus.h"

static const char *corpus_dir(void)
{
  static char dir[4096];
  if (!dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/moe-fuzz-%ld.corpus", t && *t ? t : "/tmp", (long)getpid());
  }
  return dir;
}

static void empty_dir(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4400];
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p)) rmdir(p);
  }
  if (d) closedir(d);
}

/* the year of a speech file name (four digits, '_', ..., ".txt"), or -1 */
static int speech_year(const char *nm)
{
  size_t L = strlen(nm);
  if (L < 9 || strcmp(nm + L - 4, ".txt") || nm[4] != '_') return -1;
  for (int i = 0; i < 4; i++)
    if (nm[i] < '0' || nm[i] > '9') return -1;
  return (nm[0] - '0') * 1000 + (nm[1] - '0') * 100 + (nm[2] - '0') * 10 + (nm[3] - '0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  static const int years[4][2] = {{2001, 2011}, {1900, 1900}, {1790, 2100}, {2011, 2001}};
  const int vf = years[data[0] & 3][0], tf = years[data[0] & 3][1];
  const char *dir = corpus_dir();
  mkdir(dir, 0700);
  empty_dir(dir);
  size_t want[MOE_SPLIT_N] = {0}, nfiles[MOE_SPLIT_N] = {0};
  for (size_t i = 1; i < size;) {
    size_t e = i;
    while (e < size && data[e]) e++;
    size_t nl = i;
    while (nl < e && data[nl] != '\n') nl++;
    char name[80];
    size_t nn = nl - i < 64 ? nl - i : 64;
    memcpy(name, data + i, nn);
    name[nn] = 0;
    int isdir = nn > 0 && name[nn - 1] == '/';
    for (size_t k = 0; k < nn; k++)
      if (name[k] == '/' || name[k] == 0) name[k] = '_';
    if (!nn || !strcmp(name, ".") || !strcmp(name, "..")) snprintf(name, sizeof name, "x.txt");
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    const uint8_t *body = nl < e ? data + nl + 1 : data + e;
    size_t blen = nl < e ? e - nl - 1 : 0;
    struct stat sb;
    if (stat(p, &sb) == 0) { i = e + 1; continue; } /* first one wins */
    if (isdir) {
      FUZZ_ASSERT(mkdir(p, 0700) == 0);
    } else {
      FILE *f = fopen(p, "wb");
      FUZZ_ASSERT(f);
      if (blen) FUZZ_ASSERT(fwrite(body, 1, blen, f) == blen);
      FUZZ_ASSERT(fclose(f) == 0);
      int y = speech_year(name);
      if (y >= 0) {
        int s = y < vf ? MOE_SPLIT_TRAIN : y < tf ? MOE_SPLIT_VALID : MOE_SPLIT_TEST;
        want[s] += blen;
        nfiles[s]++;
      }
    }
    i = e + 1;
  }
  moe_corpus_split cs;
  int rc = moe_corpus_sotu_split(dir, vf, tf, &cs);
  if (rc != MOE_OK) {
    FUZZ_ASSERT(rc == MOE_EIO || rc == MOE_EFORMAT || rc == MOE_EINVAL || rc == MOE_ENOMEM);
    FUZZ_ASSERT(moe_last_error()[0]);
    FUZZ_ASSERT(vf > tf || rc != MOE_EINVAL);
    return 0;
  }
  FUZZ_ASSERT(vf <= tf);
  size_t total = 0;
  for (int s = 0; s < MOE_SPLIT_N; s++) {
    FUZZ_ASSERT(cs.n_files[s] == nfiles[s]);
    FUZZ_ASSERT(cs.len[s] == want[s] + (nfiles[s] ? nfiles[s] - 1 : 0));
    FUZZ_ASSERT(!cs.len[s] || cs.text[s]);
    if (cs.text[s]) FUZZ_ASSERT(cs.text[s][cs.len[s]] == 0);
    if (nfiles[s]) {
      FUZZ_ASSERT(cs.first_year[s] <= cs.last_year[s]);
      FUZZ_ASSERT(s != MOE_SPLIT_TRAIN || cs.last_year[s] < vf);
      FUZZ_ASSERT(s != MOE_SPLIT_VALID || (cs.first_year[s] >= vf && cs.last_year[s] < tf));
      FUZZ_ASSERT(s != MOE_SPLIT_TEST || cs.first_year[s] >= tf);
    } else {
      FUZZ_ASSERT(cs.first_year[s] == 0);
    }
    total += nfiles[s];
  }
  FUZZ_ASSERT(total > 0);
  moe_corpus_split_free(&cs);
  return 0;
}
