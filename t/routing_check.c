/* SPDX-License-Identifier: GPL-3.0-or-later */
/* routing_check.c — the router metrics of the lm and vision tasks
 * recomputed from a routing dump (`moebench run --dump-routing DIR`,
 * format in moebench(1), ROUTING DUMP) by code of its own, written from
 * the definitions (moe/metrics.h and the tasks' headers), without libmoe:
 * t/router-dump.sh compares what it prints with what the cell recorded.
 *
 *   routing-check FILE.routing   prints "NAME VALUE" lines, NAME as in
 *                                the result file's metrics
 *
 * Definitions, for checkpoints c = 0..C−1 (C−1 the final one) and sets
 * S of K experts out of E:
 *   saturation(c) = 100 · Σ_i |S_i(c) ∩ S_i(C−1)| / (n K)
 *   change(c)     = 100 · Σ_i |S_i(c) \ S_i(c−1)| / (n K),  c ≥ 1
 *   Jain(r)       = (Σ_e r_e)² / (E Σ_e r_e²)
 * lm: i runs over the R = min(router_types, distinct) most frequent input
 * types of the evaluated tokens (more tokens first, then the lower id);
 * S_i(c) = the K experts the type's tokens were sent to most often at c
 * (equal counts: the lower expert first); r = the (token, slot) pairs, or
 * the routing weight, of those types' tokens per expert; per layer, and
 * overall the mean over layers. vision: i runs over the patch tokens of
 * the first router_images images and S_i(c) is the token's own set; r
 * over every evaluated token; per class the same restricted to the
 * images of that class, and the class's Jain index of token counts from
 * the final pass over the validation split.
 * Exit 0, or 1 with a message naming the file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXK 64

typedef struct {
  int a, b, c;           /* lm: layer, token, -; vision: image, patch, class */
  int sec;               /* section: checkpoint 0.., or -1 for vision's final pass */
  int e[MAXK];
  double w[MAXK];
} rec;

static const char *fname;
static int fail(long line, const char *what)
{
  fprintf(stderr, "routing-check: %s:%ld: %s\n", fname, line, what);
  exit(1);
}

static void *grow(void *p, size_t n, size_t size)
{
  void *q = realloc(p, n * size);
  if (!q) { fprintf(stderr, "routing-check: out of memory\n"); exit(1); }
  return q;
}

static double jain(const double *r, int n)
{
  double s = 0, q = 0;
  for (int i = 0; i < n; i++) { s += r[i]; q += r[i] * r[i]; }
  return s * s / (n * q);
}

/* |A \ B| and |A ∩ B| of two rows of K experts, as sets (a repeated index counts once) */
static void compare_sets(const int *a, const int *b, int K, int *only_a, int *both)
{
  char in_a[1024] = {0}, in_b[1024] = {0};
  for (int k = 0; k < K; k++) { in_a[a[k]] = 1; in_b[b[k]] = 1; }
  *only_a = *both = 0;
  for (int e = 0; e < 1024; e++) {
    if (in_a[e] && in_b[e]) ++*both;
    if (in_a[e] && !in_b[e]) ++*only_a;
  }
}

static void out(const char *name, double at, double v)
{
  if (at >= 0) printf("%s@%.17g %.17g\n", name, at, v);
  else printf("%s %.17g\n", name, v);
}

/* ---- lm ---- */

static int L, E, K, C, task_lm;
static long router_types, ntok_hdr, nimg_router;
static long *steps;      /* (C) */
static rec *r;           /* every record in file order */
static size_t nr;

typedef struct { int id; long n; } tcount;
static int by_freq(const void *x, const void *y)
{
  const tcount *p = x, *q = y;
  if (p->n != q->n) return p->n > q->n ? -1 : 1;
  return (p->id > q->id) - (p->id < q->id);
}

static void lm_metrics(void)
{
  /* the types: counted over the first checkpoint's tokens of layer 0 */
  int maxid = 0;
  for (size_t i = 0; i < nr; i++) if (r[i].b > maxid) maxid = r[i].b;
  tcount *tc = calloc((size_t)maxid + 1, sizeof *tc);
  int *rank = malloc(sizeof *rank * ((size_t)maxid + 1));
  if (!tc || !rank) { fprintf(stderr, "routing-check: out of memory\n"); exit(1); }
  for (int i = 0; i <= maxid; i++) { tc[i].id = i; rank[i] = -1; }
  for (size_t i = 0; i < nr; i++) if (r[i].sec == 0 && r[i].a == 0) tc[r[i].b].n++;
  qsort(tc, (size_t)maxid + 1, sizeof *tc, by_freq);
  int distinct = 0;
  while (distinct <= maxid && tc[distinct].n > 0) distinct++;
  const int R = distinct < router_types ? distinct : (int)router_types;
  for (int i = 0; i < R; i++) rank[tc[i].id] = i;
  /* the counts either side of the cut: equal ones make the tie rule matter */
  printf("# types %d distinct %d analysed, counts at the cut %ld %ld\n", distinct, R, R > 0 ? tc[R - 1].n : 0,
         R < distinct ? tc[R].n : 0);

  /* per (c, l): counts (R, E), load and weight (E); membership (R, E) */
  const size_t cl = (size_t)C * L;
  double *cnt = calloc(cl * R * E, sizeof *cnt), *load = calloc(cl * E, sizeof *load), *wsum = calloc(cl * E, sizeof *wsum);
  char *member = calloc(cl * R * E, 1);
  if (!cnt || !load || !wsum || !member) { fprintf(stderr, "routing-check: out of memory\n"); exit(1); }
  for (size_t i = 0; i < nr; i++) {
    const int t = rank[r[i].b];
    if (t < 0) continue;
    const size_t at = (size_t)r[i].sec * L + (size_t)r[i].a;
    for (int k = 0; k < K; k++) {
      cnt[(at * R + t) * E + r[i].e[k]] += 1;
      load[at * E + r[i].e[k]] += 1;
      wsum[at * E + r[i].e[k]] += r[i].w[k];
    }
  }
  /* expert e is in the type's set when fewer than K experts come before it
   * (more uses, or as many and a lower index) */
  for (size_t at = 0; at < cl; at++)
    for (int t = 0; t < R; t++) {
      const double *c = cnt + (at * R + t) * E;
      for (int e = 0; e < E; e++) {
        int before = 0;
        for (int f = 0; f < E; f++) before += c[f] > c[e] || (c[f] == c[e] && f < e);
        member[(at * R + t) * E + e] = before < K;
      }
    }
  /* saturation and change per (c, l), in % */
  double *sat = calloc(cl, sizeof *sat), *chg = calloc(cl, sizeof *chg);
  if (!sat || !chg) { fprintf(stderr, "routing-check: out of memory\n"); exit(1); }
  for (int c = 0; c < C; c++)
    for (int l = 0; l < L; l++) {
      long both = 0, fresh = 0;
      const char *m = member + ((size_t)c * L + l) * R * E, *f = member + ((size_t)(C - 1) * L + l) * R * E,
                 *p = c > 0 ? member + ((size_t)(c - 1) * L + l) * R * E : NULL;
      for (long j = 0; j < (long)R * E; j++) {
        both += m[j] && f[j];
        if (p) fresh += m[j] && !p[j];
      }
      sat[c * L + l] = 100.0 * (double)both / ((double)R * K);
      chg[c * L + l] = 100.0 * (double)fresh / ((double)R * K);
    }
  double cr_sum = 0;
  for (int c = 0; c < C; c++) {
    double s = 0, ch = 0, jt = 0, jw = 0;
    for (int l = 0; l < L; l++) {
      s += sat[c * L + l];
      ch += chg[c * L + l];
      jt += jain(load + ((size_t)c * L + l) * E, E);
      jw += jain(wsum + ((size_t)c * L + l) * E, E);
    }
    if (c < C - 1) out("saturation", (double)steps[c], s / L);
    if (c == 0) out("saturation_first", -1, s / L);
    if (c > 0) { out("change_rate", (double)steps[c], ch / L); cr_sum += ch / L; }
    out("jfi_tokens", (double)steps[c], jt / L);
    out("jfi_weight", (double)steps[c], jw / L);
    if (c == C - 1) { out("jfi_tokens", -1, jt / L); out("jfi_weight", -1, jw / L); }
  }
  if (C > 1) out("change_rate", -1, cr_sum / (C - 1));
  for (int l = 0; l < L; l++) {
    out("saturation_first_layer", l, sat[l]);
    if (C > 1) {
      double s = 0;
      for (int c = 1; c < C; c++) s += chg[c * L + l];
      out("change_rate_layer", l, s / (C - 1));
    }
    out("jfi_tokens_layer", l, jain(load + ((size_t)(C - 1) * L + l) * E, E));
    out("jfi_weight_layer", l, jain(wsum + ((size_t)(C - 1) * L + l) * E, E));
  }
  out("router_types", -1, R);
  free(tc); free(rank); free(cnt); free(load); free(wsum); free(member); free(sat); free(chg);
}

/* ---- vision ---- */

static void vision_metrics(void)
{
  /* the probe tokens of each checkpoint, in file order */
  size_t nprobe = 0;
  rec **probe = NULL;
  size_t np = 0, cap = 0;
  for (size_t i = 0; i < nr; i++)
    if (r[i].sec >= 0 && r[i].a < nimg_router) {
      if (np == cap) probe = grow(probe, cap = cap ? 2 * cap : 1024, sizeof *probe);
      probe[np++] = &r[i];
    }
  if (C < 1 || np % (size_t)C) fail(0, "the checkpoints hold different numbers of probe tokens");
  nprobe = np / (size_t)C;
  for (size_t j = 0; j < np; j++) {
    const rec *p = probe[j], *q = probe[j % nprobe];
    if (p->sec != (int)(j / nprobe) || p->a != q->a || p->b != q->b || p->c != q->c)
      fail(0, "the probe tokens differ between checkpoints");
  }
  /* overall, and per class (cls = -1: all) */
  for (int cls = -1; cls < 10; cls++) {
    size_t n = 0;
    for (size_t j = 0; j < nprobe; j++) n += cls < 0 || probe[j]->c == cls;
    if (!n) continue;
    double cr_sum = 0;
    for (int c = 0; c < C; c++) {
      long both = 0, fresh = 0;
      for (size_t j = 0; j < nprobe; j++) {
        if (cls >= 0 && probe[j]->c != cls) continue;
        int o, b;
        compare_sets(probe[c * nprobe + j]->e, probe[(C - 1) * nprobe + j]->e, K, &o, &b);
        both += b;
        if (c > 0) {
          compare_sets(probe[c * nprobe + j]->e, probe[(c - 1) * nprobe + j]->e, K, &o, &b);
          fresh += o;
        }
      }
      const double s = 100.0 * (double)both / ((double)n * K), ch = 100.0 * (double)fresh / ((double)n * K);
      if (cls < 0) {
        if (c < C - 1) out("saturation", (double)steps[c], s);
        if (c == 0) out("saturation_first", -1, s);
        if (c > 0) out("change_rate", (double)steps[c], ch);
      } else if (c == 0) out("saturation_first_class", cls, s);
      if (c > 0) cr_sum += ch;
    }
    if (C > 1) {
      if (cls < 0) out("change_rate", -1, cr_sum / (C - 1));
      else out("change_rate_class", cls, cr_sum / (C - 1));
    }
  }
  /* Jain's index of every evaluated token at each checkpoint */
  double *load = calloc((size_t)E * (C + 11), sizeof *load), *wsum = calloc((size_t)E * C, sizeof *wsum);
  if (!load || !wsum) { fprintf(stderr, "routing-check: out of memory\n"); exit(1); }
  for (size_t i = 0; i < nr; i++)
    for (int k = 0; k < K; k++) {
      if (r[i].sec >= 0) {
        load[(size_t)r[i].sec * E + r[i].e[k]] += 1;
        wsum[(size_t)r[i].sec * E + r[i].e[k]] += r[i].w[k];
      } else load[(size_t)(C + 1 + r[i].c) * E + r[i].e[k]] += 1;   /* the final pass, per class */
    }
  for (int c = 0; c < C; c++) {
    out("jfi_tokens", (double)steps[c], jain(load + (size_t)c * E, E));
    out("jfi_weight", (double)steps[c], jain(wsum + (size_t)c * E, E));
  }
  out("jfi_tokens", -1, jain(load + (size_t)(C - 1) * E, E));
  out("jfi_weight", -1, jain(wsum + (size_t)(C - 1) * E, E));
  for (int cls = 0; cls < 10; cls++) {
    const double *x = load + (size_t)(C + 1 + cls) * E;
    double s = 0;
    for (int e = 0; e < E; e++) s += x[e];
    if (s > 0) out("jfi_tokens_class", cls, jain(x, E));
  }
  free(probe); free(load); free(wsum);
}

int main(int argc, char **argv)
{
  if (argc != 2) { fprintf(stderr, "usage: routing-check FILE.routing\n"); return 2; }
  fname = argv[1];
  FILE *f = fopen(fname, "r");
  if (!f) { perror(fname); return 1; }
  char line[8192], task[32];
  long ln = 1, images = -1;
  int sec = -2, Np = 0;
  size_t cap = 0;
  if (!fgets(line, sizeof line, f) || sscanf(line, "moebench-routing 1 %31s", task) != 1) fail(1, "not a routing dump");
  task_lm = !strcmp(task, "lm");
  if (!task_lm && strcmp(task, "vision")) fail(1, "unknown task");
  ln++;
  if (!fgets(line, sizeof line, f)) fail(ln, "no header");
  if (task_lm ? sscanf(line, "layers %d experts %d k %d router_types %ld tokens %ld", &L, &E, &K, &router_types, &ntok_hdr) != 5
              : sscanf(line, "experts %d k %d patches %d router_images %ld images %ld", &E, &K, &Np, &nimg_router, &images) != 5)
    fail(ln, "bad header");
  if (K < 1 || K > MAXK || E < K || E > 1024 || (task_lm && L < 1)) fail(ln, "header out of range");
  if (!task_lm) L = 1;
  while (fgets(line, sizeof line, f)) {
    ln++;
    long st;
    if (sscanf(line, "checkpoint %ld", &st) == 1) {
      if (sec == -1) fail(ln, "a checkpoint after the final pass");
      sec = sec < 0 ? 0 : sec + 1;
      steps = grow(steps, (size_t)sec + 1, sizeof *steps);
      steps[sec] = st;
      C = sec + 1;
      continue;
    }
    if (!strcmp(line, "final\n")) { if (task_lm) fail(ln, "final section in an lm dump"); sec = -1; continue; }
    if (sec == -2) fail(ln, "a token before the first checkpoint");
    if (nr == cap) r = grow(r, cap = cap ? 2 * cap : 4096, sizeof *r);
    rec *p = &r[nr];
    memset(p, 0, sizeof *p);
    p->sec = sec;
    char *s = line, *end;
    long v[3];
    for (int i = 0; i < (task_lm ? 2 : 3); i++) {
      v[i] = strtol(s, &end, 10);
      if (end == s) fail(ln, "bad token line");
      s = end;
    }
    p->a = (int)v[0]; p->b = (int)v[1]; p->c = task_lm ? 0 : (int)v[2];
    for (int k = 0; k < K; k++) {
      p->e[k] = (int)strtol(s, &end, 10);
      if (end == s || p->e[k] < 0 || p->e[k] >= E) fail(ln, "bad expert");
      s = end;
    }
    for (int k = 0; k < K; k++) {
      p->w[k] = (double)(float)strtod(s, &end);  /* the float the model used: %.9g round-trips it */
      if (end == s) fail(ln, "bad weight");
      s = end;
    }
    if (task_lm && (p->a < 0 || p->a >= L)) fail(ln, "layer out of range");
    if (!task_lm && (p->c < 0 || p->c > 9 || p->b < 0 || p->b >= Np)) fail(ln, "class or patch out of range");
    nr++;
  }
  fclose(f);
  if (C < 1) fail(ln, "no checkpoint");
  if (task_lm) {
    for (int c = 0; c < C; c++)
      for (int l = 0; l < L; l++) {
        long n = 0;
        for (size_t i = 0; i < nr; i++) n += r[i].sec == c && r[i].a == l;
        if (n != ntok_hdr) fail(ln, "a checkpoint's layer does not hold the header's number of tokens");
      }
    lm_metrics();
  } else {
    for (int c = -1; c < C; c++) {
      long n = 0;
      for (size_t i = 0; i < nr; i++) n += r[i].sec == c;
      if (c >= 0 && n != images * Np) fail(ln, "a checkpoint does not hold images x patches tokens");
    }
    vision_metrics();
  }
  free(r);
  free(steps);
  return 0;
}
