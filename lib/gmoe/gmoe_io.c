/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_io.c — the text form of a Gaussian MoE (moe_gmoe_write / _read). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "moe/error.h"
#include "moe/gmoe.h"

/* ---- text form -------------------------------------------------------- */

int moe_gmoe_write(FILE *f, const moe_gmoe *m)
{
  MOE_CHECK_ARG(f && m, "gmoe_write: NULL argument");
  int D = m->d;
  fprintf(f, "moebench-gmoe 1\nd %d\nk1 %d\nk2 %d\ngate %s\nshared_expert %s\nrouted_expert %s\ntopk %d\n",
          D, m->k1, m->k2, m->gate == MOE_GMOE_SOFTMAX ? "softmax" : "nsigmoid",
          m->shared_kind == MOE_GMOE_RELU ? "relu" : "linear",
          m->routed_kind == MOE_GMOE_RELU ? "relu" : "linear", m->topk);
  fprintf(f, "# shared OMEGA KAPPA0 KAPPA1[1..d] KAPPA2 TAU\n");
  for (int i = 0; i < m->k1; i++) {
    fprintf(f, "shared %.17g %.17g", m->omega[i], m->kappa0[i]);
    for (int k = 0; k < D; k++) fprintf(f, " %.17g", m->kappa1[(size_t)i * D + k]);
    fprintf(f, " %.17g %.17g\n", m->kappa2[i], m->tau[i]);
  }
  fprintf(f, "# routed BETA0 BETA1[1..d] ETA0 ETA1[1..d] ETA2 NU\n");
  for (int j = 0; j < m->k2; j++) {
    fprintf(f, "routed %.17g", m->beta0[j]);
    for (int k = 0; k < D; k++) fprintf(f, " %.17g", m->beta1[(size_t)j * D + k]);
    fprintf(f, " %.17g", m->eta0[j]);
    for (int k = 0; k < D; k++) fprintf(f, " %.17g", m->eta1[(size_t)j * D + k]);
    fprintf(f, " %.17g %.17g\n", m->eta2[j], m->nu[j]);
  }
  return ferror(f) ? moe_error(MOE_EIO, "gmoe_write: write failed") : MOE_OK;
}

/* Parse exactly `want` numbers from s into v; returns count parsed, or -1
 * on a malformed token / trailing text. */
static int parse_numbers(const char *s, double *v, int want)
{
  int k = 0;
  for (;;) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '\n' || *s == '\r' || *s == '#') break;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(x)) return -1;
    if (*end && !isspace((unsigned char)*end) && *end != '#') return -1;
    if (k < want) v[k] = x;
    k++;
    s = end;
  }
  return k;
}

/* Close the model being read: complete and valid, appended to the list. */
static int read_finish(const char *path, int lineno, moe_gmoe **m, int ns, int nr, int k1, int k2,
                       moe_gmoe ***list, int *count)
{
  if (!*m || ns != k1 || nr != k2)
    return moe_error(MOE_EFORMAT, "%s:%d: found %d shared and %d routed lines, expected k1=%d and k2=%d", path,
                     lineno, ns, nr, k1, k2);
  if (moe_gmoe_validate(*m)) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", moe_last_error());
    return moe_error(MOE_EFORMAT, "%s:%d: invalid model: %s", path, lineno, msg);
  }
  moe_gmoe **l = realloc(*list, (size_t)(*count + 1) * sizeof *l);
  if (!l) return moe_error(MOE_ENOMEM, "%s: no memory", path);
  l[(*count)++] = *m;
  *list = l;
  *m = NULL;
  return MOE_OK;
}

int moe_gmoe_read_all(const char *path, moe_gmoe ***out, int *count)
{
  MOE_CHECK_ARG(path && out && count, "gmoe_read: NULL argument");
  *out = NULL;
  *count = 0;
  moe_gmoe **list = NULL;
  int nlist = 0;
  FILE *f = fopen(path, "r");
  if (!f) return moe_error(MOE_EIO, "%s: cannot open: %s", path, strerror(errno));
  char line[8192];
  int lineno = 0, d = 0, k1 = 0, k2 = 0, topk = 0, seen_magic = 0, ns = 0, nr = 0;
  int gate = -1, sk = -1, rk = -1, rc = MOE_OK;
  moe_gmoe *m = NULL;
  double *v = NULL;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      rc = moe_error(MOE_EFORMAT, "%s:%d: line too long", path, lineno); goto done;
    }
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '\n' || *s == '\r' || *s == '#') continue;
    char key[32];
    int klen = 0;
    while (s[klen] && !isspace((unsigned char)s[klen]) && klen < 31) { key[klen] = s[klen]; klen++; }
    key[klen] = 0;
    char *rest = s + klen;
    if (seen_magic && !strcmp(key, "moebench-gmoe")) {   /* the next model of the file */
      if ((rc = read_finish(path, lineno - 1, &m, ns, nr, k1, k2, &list, &nlist))) goto done;
      seen_magic = 0;
      d = k1 = k2 = topk = ns = nr = 0;
      gate = sk = rk = -1;
      free(v);
      v = NULL;
    }
    if (!seen_magic) {
      double ver;
      if (strcmp(key, "moebench-gmoe") || parse_numbers(rest, &ver, 1) != 1 || ver != 1) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: expected header 'moebench-gmoe 1'", path, lineno);
        goto done;
      }
      seen_magic = 1;
      continue;
    }
    if (!strcmp(key, "d") || !strcmp(key, "k1") || !strcmp(key, "k2") || !strcmp(key, "topk")) {
      double x;
      if (m) { rc = moe_error(MOE_EFORMAT, "%s:%d: '%s' after the parameter lines", path, lineno, key); goto done; }
      if (parse_numbers(rest, &x, 1) != 1 || x != floor(x) || x < 0 || x > 4096) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: '%s' needs one integer in 0..4096", path, lineno, key);
        goto done;
      }
      if (key[0] == 'd') d = (int)x;
      else if (key[0] == 't') topk = (int)x;
      else if (key[1] == '1') k1 = (int)x;
      else k2 = (int)x;
      continue;
    }
    if (!strcmp(key, "gate") || !strcmp(key, "shared_expert") || !strcmp(key, "routed_expert")) {
      char word[32] = "";
      if (sscanf(rest, "%31s", word) != 1) word[0] = 0;
      int val = -1;
      if (key[0] == 'g') val = !strcmp(word, "softmax") ? 0 : !strcmp(word, "nsigmoid") ? 1 : -1;
      else val = !strcmp(word, "relu") ? 0 : !strcmp(word, "linear") ? 1 : -1;
      if (val < 0) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: bad value '%s' for '%s'", path, lineno, word, key);
        goto done;
      }
      if (key[0] == 'g') gate = val; else if (key[0] == 's') sk = val; else rk = val;
      continue;
    }
    if (!strcmp(key, "shared") || !strcmp(key, "routed")) {
      if (!m) {
        if (d < 1 || k1 < 1 || k2 < 1 || gate < 0 || sk < 0 || rk < 0) {
          rc = moe_error(MOE_EFORMAT, "%s:%d: parameter line before d, k1, k2, gate, shared_expert, routed_expert",
                         path, lineno);
          goto done;
        }
        if (topk > k2) { rc = moe_error(MOE_EFORMAT, "%s:%d: topk=%d > k2=%d", path, lineno, topk, k2); goto done; }
        m = moe_gmoe_alloc(d, k1, k2, gate, sk, rk);
        v = malloc((size_t)(2 * d + 8) * sizeof *v);
        if (!m || !v) { rc = moe_error(MOE_ENOMEM, "%s: no memory", path); goto done; }
        m->topk = topk;
      }
      int shared = key[0] == 's', want = shared ? d + 4 : 2 * d + 4;
      int got = parse_numbers(rest, v, want);
      if (got != want) {
        rc = moe_error(MOE_EFORMAT, "%s:%d: '%s' line needs %d numbers, found %s%d", path, lineno, key,
                       want, got < 0 ? "a malformed one after " : "", got < 0 ? 0 : got);
        goto done;
      }
      if (shared) {
        if (ns >= k1) { rc = moe_error(MOE_EFORMAT, "%s:%d: more than k1=%d shared lines", path, lineno, k1); goto done; }
        m->omega[ns] = v[0]; m->kappa0[ns] = v[1];
        memcpy(m->kappa1 + (size_t)ns * d, v + 2, (size_t)d * sizeof *v);
        m->kappa2[ns] = v[2 + d]; m->tau[ns] = v[3 + d];
        ns++;
      } else {
        if (nr >= k2) { rc = moe_error(MOE_EFORMAT, "%s:%d: more than k2=%d routed lines", path, lineno, k2); goto done; }
        m->beta0[nr] = v[0];
        memcpy(m->beta1 + (size_t)nr * d, v + 1, (size_t)d * sizeof *v);
        m->eta0[nr] = v[1 + d];
        memcpy(m->eta1 + (size_t)nr * d, v + 2 + d, (size_t)d * sizeof *v);
        m->eta2[nr] = v[2 + 2 * d]; m->nu[nr] = v[3 + 2 * d];
        nr++;
      }
      continue;
    }
    rc = moe_error(MOE_EFORMAT, "%s:%d: unknown key '%s'", path, lineno, key);
    goto done;
  }
  if (ferror(f)) { rc = moe_error(MOE_EIO, "%s: read error", path); goto done; }
  if (!seen_magic) { rc = moe_error(MOE_EFORMAT, "%s:%d: empty file (expected 'moebench-gmoe 1')", path, lineno); goto done; }
  rc = read_finish(path, lineno, &m, ns, nr, k1, k2, &list, &nlist);
done:
  fclose(f);
  free(v);
  if (rc) {
    moe_gmoe_free(m);
    for (int i = 0; i < nlist; i++) moe_gmoe_free(list[i]);
    free(list);
    return rc;
  }
  *out = list;
  *count = nlist;
  return MOE_OK;
}

void moe_gmoe_free_all(moe_gmoe **models, int count)
{
  for (int i = 0; models && i < count; i++) moe_gmoe_free(models[i]);
  free(models);
}

int moe_gmoe_read(const char *path, moe_gmoe **out)
{
  MOE_CHECK_ARG(path && out, "gmoe_read: NULL argument");
  *out = NULL;
  moe_gmoe **list;
  int n;
  int rc = moe_gmoe_read_all(path, &list, &n);
  if (rc) return rc;
  if (n != 1) {
    moe_gmoe_free_all(list, n);
    return moe_error(MOE_EFORMAT, "%s: holds %d models where one was expected", path, n);
  }
  *out = list[0];
  free(list);
  return MOE_OK;
}
