/* SPDX-License-Identifier: GPL-3.0-or-later */
/* corpus.c — the SOTU corpus split by year (see moe/corpus.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/corpus.h"
#include "internal.h"

const char *moe_split_name(int split)
{
  static const char *names[MOE_SPLIT_N] = {"train", "valid", "test"};
  return split >= 0 && split < MOE_SPLIT_N ? names[split] : "?";
}

void moe_corpus_split_free(moe_corpus_split *s)
{
  if (!s) return;
  for (int i = 0; i < MOE_SPLIT_N; i++) free(s->text[i]);
  memset(s, 0, sizeof *s);
}

/* YEAR_*.txt: four digits, '_', anything, ".txt". */
static int speech_year(const char *name)
{
  size_t n = strlen(name);
  if (n < 9 || strcmp(name + n - 4, ".txt") != 0 || name[4] != '_') return -1;
  int y = 0;
  for (int i = 0; i < 4; i++) {
    if (name[i] < '0' || name[i] > '9') return -1;
    y = y * 10 + (name[i] - '0');
  }
  return y;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append the file's bytes to buf (growing it). */
static int append_file(const char *path, uint8_t **buf, size_t *len, size_t *cap)
{
  FILE *f = fopen(path, "rb");
  if (!f) return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  for (;;) {
    if (*cap - *len < 65536) {
      size_t nc = *cap ? *cap * 2 : 1 << 20;
      uint8_t *p = realloc(*buf, nc);
      if (!p) { fclose(f); return moe_error(MOE_ENOMEM, "%s: out of memory", path); }
      *buf = p;
      *cap = nc;
    }
    size_t r = fread(*buf + *len, 1, *cap - *len - 1, f);
    *len += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) return moe_error(MOE_EIO, "%s: read error", path);
  return MOE_OK;
}

int moe_corpus_sotu_split(const char *dir, int valid_from, int test_from, moe_corpus_split *out)
{
  MOE_CHECK_ARG(dir && out, "moe_corpus_sotu_split: NULL argument");
  memset(out, 0, sizeof *out);
  MOE_CHECK_ARG(valid_from <= test_from, "SOTU split: valid_from %d > test_from %d", valid_from, test_from);
  DIR *d = opendir(dir);
  if (!d) return moe_error(MOE_EIO, "%s: cannot open the SOTU directory: %s", dir, strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = MOE_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (speech_year(e->d_name) < 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      char **p = realloc(names, cap * sizeof *p);
      if (!p) { rc = moe_error(MOE_ENOMEM, "out of memory"); break; }
      names = p;
    }
    if (!(names[n] = strdup(e->d_name))) { rc = moe_error(MOE_ENOMEM, "out of memory"); break; }
    n++;
  }
  closedir(d);
  if (rc == MOE_OK && n == 0)
    rc = moe_error(MOE_EFORMAT, "%s: no SOTU speech files (YEAR_FIRST_LAST_PARTY.txt)", dir);
  if (rc == MOE_OK) qsort(names, n, sizeof *names, cmp_names);

  size_t caps[MOE_SPLIT_N] = {0};
  char *path = NULL;
  for (size_t i = 0; rc == MOE_OK && i < n; i++) {
    int y = speech_year(names[i]);
    int s = y < valid_from ? MOE_SPLIT_TRAIN : y < test_from ? MOE_SPLIT_VALID : MOE_SPLIT_TEST;
    free(path);
    path = malloc(strlen(dir) + strlen(names[i]) + 2);
    if (!path) { rc = moe_error(MOE_ENOMEM, "out of memory"); break; }
    sprintf(path, "%s/%s", dir, names[i]);
    if (out->n_files[s] > 0) {
      /* The separator goes in before the next file's bytes. */
      if (caps[s] - out->len[s] < 2) {
        uint8_t *p = realloc(out->text[s], caps[s] * 2);
        if (!p) { rc = moe_error(MOE_ENOMEM, "out of memory"); break; }
        out->text[s] = p;
        caps[s] *= 2;
      }
      out->text[s][out->len[s]++] = '\n';
    }
    rc = append_file(path, &out->text[s], &out->len[s], &caps[s]);
    if (rc) break;
    if (out->n_files[s] == 0) out->first_year[s] = y;
    out->last_year[s] = y;
    out->n_files[s]++;
  }
  free(path);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  for (int s = 0; rc == MOE_OK && s < MOE_SPLIT_N; s++) {
    if (!out->text[s] && !(out->text[s] = malloc(1))) rc = moe_error(MOE_ENOMEM, "out of memory");
    else out->text[s][out->len[s]] = 0;
  }
  if (rc) moe_corpus_split_free(out);
  return rc;
}
