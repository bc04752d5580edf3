/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_gmoe_ref.c — the Gaussian MoE against independent NumPy references
 * (t/gen_gmoe_fixtures.py): the Voronoi losses D1, D2, D3, D5 of fitted
 * measures whose masses do NOT match the truth's (the hand cases of
 * test_voronoi.c all have matching masses, so a dropped mass term passed
 * them), and one EM step from non-uniform shared weights ω (the mean
 * log-likelihood of the E-step and the ω M-step). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/voronoi.h"
#include "tap.h"

static void test_voronoi_ref(void)
{
  moe_gmoe **m = NULL;
  int count = 0;
  char path[4096];
  snprintf(path, sizeof path, "%s", tap_datafile("data/gmoe/voronoi_ref.gmoe"));
  int rc = moe_gmoe_read_all(path, &m, &count);
  if (!ok(rc == MOE_OK && count % 2 == 0 && count > 0, "read %d models (fit/truth pairs)", count))
    return;
  FILE *f = fopen(tap_datafile("data/gmoe/voronoi_ref.txt"), "r");
  if (!ok(f != NULL, "open voronoi_ref.txt")) { moe_gmoe_free_all(m, count); return; }
  char line[256];
  int c = 0;
  while (fgets(line, sizeof line, f)) {
    int kind, topk;
    double want;
    if (line[0] == '#' || sscanf(line, "%d %d %lf", &kind, &topk, &want) != 3) continue;
    if (2 * c + 1 >= count) { ok(0, "more reference lines than model pairs"); break; }
    moe_voronoi_opts o;
    moe_voronoi_opts_default(&o, (moe_voronoi_kind)kind);
    o.align_relu = 0; o.min_shift = 0; o.sigmoid_scale = 0; o.topk = topk;
    double L = NAN;
    int rc = moe_voronoi_loss(m[2 * c], m[2 * c + 1], &o, &L);
    ok(rc == MOE_OK && fabs(L - want) <= 1e-10 * (1 + fabs(want)),
       "pair %d: D%d (K=%d) = %.15g, NumPy %.15g", c, kind, topk, L, want);
    c++;
  }
  fclose(f);
  is_int(2 * c, count, "every pair has a reference value");
  moe_gmoe_free_all(m, count);
}

static void test_em_step(void)
{
  moe_gmoe *m = NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s", tap_datafile("data/gmoe/em_model.gmoe"));
  if (!ok(moe_gmoe_read(path, &m) == MOE_OK, "read em_model.gmoe")) return;
  FILE *f = fopen(tap_datafile("data/gmoe/em_step.txt"), "r");
  if (!ok(f != NULL, "open em_step.txt")) { moe_gmoe_free(m); return; }
  const int D = m->d, S = m->k1;
  size_t n = 0, t = 0;
  double *X = NULL, *Y = NULL, ll = NAN, omega[16];
  int nw = 0;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    char *p = line, *e;
    if (!strncmp(line, "n ", 2)) {
      n = strtoul(line + 2, NULL, 10);
      X = calloc(n * D, sizeof *X); Y = calloc(n, sizeof *Y);
    } else if (!strncmp(line, "xy ", 3) && X && t < n) {
      p += 3;
      for (int k = 0; k < D; k++, p = e) X[t * D + k] = strtod(p, &e);
      Y[t++] = strtod(p, NULL);
    } else if (!strncmp(line, "loglik ", 7)) {
      ll = strtod(line + 7, NULL);
    } else if (!strncmp(line, "omega ", 6)) {
      p += 6;
      for (nw = 0; nw < S && nw < 16; nw++, p = e) omega[nw] = strtod(p, &e);
    }
  }
  fclose(f);
  if (ok(X && t == n && n > 0 && nw == S, "fixture: %zu points, %d weights", t, nw)) {
    moe_gmoe_em *w = moe_gmoe_em_alloc(m, n);
    is_int(moe_gmoe_em_init(w, m, n, X, Y), MOE_OK, "EM init");
    is_close(moe_gmoe_em_loglik(w), ll, 1e-12, 1e-12, "E-step: mean log-likelihood = NumPy %.15g", ll);
    is_int(moe_gmoe_em_iterate(w), MOE_OK, "one EM step");
    for (int i = 0; i < S; i++)
      is_close(m->omega[i], omega[i], 1e-12, 1e-10, "M-step: omega[%d] = NumPy %.15g (start non-uniform)", i,
               omega[i]);
    moe_gmoe_em_free(w);
  }
  free(X); free(Y);
  moe_gmoe_free(m);
}

int main(void)
{
  test_voronoi_ref();
  test_em_step();
  return tap_done();
}
