/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_voronoi.c — Voronoi cells and losses D1–D5 on hand-computed cases,
 * the pitfall handling (ReLU alignment, softmax shift, sigmoid scale) and
 * the error paths. Every expected number is written out by hand. */
#include <math.h>
#include <string.h>

#include "moe/error.h"
#include "moe/gmoe.h"
#include "moe/voronoi.h"
#include "tap.h"

static moe_gmoe *truth(const char *name)
{
  moe_gmoe *m = NULL;
  moe_gmoe_truth(name, 1, &m);
  return m;
}

/* Case A: thm1 truth (ReLU, softmax), fitted k1 = 2, k2 = 3. */
static moe_gmoe *case_a(void)
{
  moe_gmoe *f = moe_gmoe_alloc(1, 2, 3, MOE_GMOE_SOFTMAX, MOE_GMOE_RELU, MOE_GMOE_RELU);
  /* shared: both atoms in the single true cell (|V1,1| = 2) */
  f->omega[0] = 0.6; f->kappa0[0] = 0.0; f->kappa1[0] = 6; f->kappa2[0] = -8; f->tau[0] = 0.35;
  f->omega[1] = 0.4; f->kappa0[1] = 0.2; f->kappa1[1] = 6; f->kappa2[1] = -8; f->tau[1] = 0.25;
  /* routed: atom 0 alone near true atom 1; atoms 1, 2 share true atom 2 */
  f->beta0[0] = -0.5; f->beta1[0] = 5.0; f->eta1[0] = -12; f->eta2[0] = 4.0; f->nu[0] = 0.5;
  f->beta0[1] = 0.5 - log(2.0); f->beta1[1] = 5.3; f->eta1[1] = 12; f->eta2[1] = 4.0; f->nu[1] = 0.4;
  f->beta0[2] = 0.5 - log(2.0); f->beta1[2] = 5.0; f->eta1[2] = 12; f->eta2[2] = 4.0; f->nu[2] = 0.6;
  return f;
}

static void test_r(void)
{
  is_int(moe_voronoi_r(1), 1, "r(1) = 1 (unused: exact cells)");
  is_int(moe_voronoi_r(2), 4, "r(2) = 4");
  is_int(moe_voronoi_r(3), 6, "r(3) = 6");
  is_int(moe_voronoi_r(4), 7, "r(4) = 7 (paper: >= 7)");
  is_int(moe_voronoi_r(9), 7, "r(9) = 7");
}

static void test_d1(void)
{
  moe_gmoe *t = truth("thm1"), *f = case_a();
  int c1[2], c2[3];
  is_int(moe_voronoi_cells(f, t, NULL, 0, c1, c2), MOE_OK, "cells");
  ok(c1[0] == 0 && c1[1] == 0, "shared cells {0, 0}");
  ok(c2[0] == 0 && c2[1] == 1 && c2[2] == 1, "routed cells {0, 1, 1}");
  moe_voronoi_opts o;
  moe_voronoi_opts_default(&o, MOE_VORONOI_D1);
  o.align_relu = 0;
  o.min_shift = 0;
  double L;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_OK, "D1");
  /* shared: mass |0.6 + 0.4 − 1| = 0; |V| = 2, squared terms:
   *   0.6 (0² + 0.1²) + 0.4 (0.2² + 0²) = 0.006 + 0.016 = 0.022
   * routed cell 1 (exact): mass |e^-0.5 − e^-0.5| = 0;
   *   e^-0.5 (|Δβ1| + ‖Δη‖ + |Δν|) = e^-0.5 (0 + 0 + 0.1)
   * routed cell 2 (|V| = 2): mass |2 e^0.5/2 − e^0.5| = 0;
   *   atom 1 |Δβ1| = 0.3, atom 2 |Δν| = 0.2:
   *   (e^0.5/2)(0.3²) + (e^0.5/2)(0.2²) = 0.065 e^0.5
   * D1 = 0.022 + 0.1 e^-0.5 + 0.065 e^0.5 = 0.022 + 0.0606531 + 0.1071669 */
  double want = 0.022 + 0.1 * exp(-0.5) + 0.065 * exp(0.5);
  is_close(L, want, 1e-12, 1e-12, "D1 case A (no alignment, no shift) = %.7f", want);
  /* a ReLU rescaling does not matter once aligned: atom 0's κ → (κ/2, 2 κ2) */
  f->kappa0[0] /= 2; f->kappa1[0] /= 2; f->kappa2[0] *= 2;
  f->eta1[0] /= 4; f->eta2[0] *= 4;
  double Lraw, Lal;
  moe_voronoi_loss(f, t, &o, &Lraw);
  ok(Lraw > want + 1, "without alignment a rescaled ReLU atom inflates D1 (%.3f)", Lraw);
  o.align_relu = 1;
  moe_voronoi_loss(f, t, &o, &Lal);
  /* atom 1's (0.2, 6, -8) also moves slightly when aligned, so D1 can only
   * drop below the hand value: aligned cost ≤ the s = 1 cost */
  ok(Lal <= want + 1e-12 && Lal > want - 0.01, "aligned D1 %.6f back to <= %.6f", Lal, want);
  /* exact check of the aligned shared term on atom 0 alone */
  f->kappa0[1] = 0;   /* atom 1 now equals the truth except τ */
  double want_b = 0.6 * 0.01 + 0.4 * 0 + 0.1 * exp(-0.5) + 0.065 * exp(0.5);
  moe_voronoi_loss(f, t, &o, &Lal);
  is_close(Lal, want_b, 1e-9, 1e-9, "aligned: rescaled atoms count as the truth (%.7f)", want_b);
  moe_gmoe_free(f);

  /* softmax shift: shifting every fitted (β0, β1) leaves min-shift D1 alone */
  f = case_a();
  o.align_relu = 0;
  o.min_shift = 1;
  double Lmin, Lmin2;
  moe_voronoi_loss(f, t, &o, &Lmin);
  ok(Lmin <= want + 1e-12, "min over shift (%.7f) <= unshifted (%.7f)", Lmin, want);
  for (int j = 0; j < 3; j++) { f->beta0[j] += 1.37; f->beta1[j] -= 0.71; }
  moe_voronoi_loss(f, t, &o, &Lmin2);
  is_close(Lmin2, Lmin, 1e-6, 1e-6, "shifted by (1.37, -0.71): same min-shift D1");
  o.min_shift = 0;
  moe_voronoi_loss(f, t, &o, &Lraw);
  ok(Lraw > Lmin2 + 0.5, "without the shift the shifted fit looks far (%.3f)", Lraw);
  moe_gmoe_free(f);

  /* fit == truth: D1 = 0 */
  f = moe_gmoe_clone(t);
  moe_voronoi_opts_default(&o, MOE_VORONOI_D1);
  moe_voronoi_loss(f, t, &o, &L);
  is_close(L, 0, 1e-12, 0, "D1(truth, truth) = 0");
  moe_gmoe_free(f);
  moe_gmoe_free(t);
}

static void test_d2(void)
{
  moe_gmoe *t = truth("thm2");
  moe_gmoe *f = moe_gmoe_alloc(1, 2, 3, MOE_GMOE_SOFTMAX, MOE_GMOE_LINEAR, MOE_GMOE_LINEAR);
  f->omega[0] = 0.5; f->kappa0[0] = 0.1; f->kappa1[0] = 2.0; f->tau[0] = 0.2;
  f->omega[1] = 0.5; f->kappa0[1] = -0.1; f->kappa1[1] = 2.2; f->tau[1] = 0.3;
  f->beta0[0] = -0.5; f->beta1[0] = 5.1; f->eta0[0] = 2.2; f->eta1[0] = 8.0; f->nu[0] = 0.4;
  f->beta0[1] = 0.5 - log(2.0); f->beta1[1] = 5.0; f->eta0[1] = 1.0; f->eta1[1] = -6.2; f->nu[1] = 0.4;
  f->beta0[2] = 0.5 - log(2.0); f->beta1[2] = 4.9; f->eta0[2] = 1.1; f->eta1[2] = -6.0; f->nu[2] = 0.5;
  moe_voronoi_opts o;
  moe_voronoi_opts_default(&o, MOE_VORONOI_D2);
  o.min_shift = 0;
  double L;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_OK, "D2");
  /* shared |V| = 2, r = 4: ω(‖Δκ1‖² + |Δκ0|^4 + |Δτ|^2)
   *   0.5 (0 + 0.1^4 + 0) + 0.5 (0.2² + 0.1^4 + 0.1²) = 0.5·0.0001 + 0.5·0.0501 = 0.0251
   * routed cell 1 exact: e^-0.5 (|Δβ1| + |Δη1| + |Δη0| + |Δν|) = e^-0.5 (0.1 + 0 + 0.2 + 0)
   * routed cell 2, r = 4: (e^0.5/2)(|Δβ1|^4 + |Δη1|^2 + |Δη0|^4 + |Δν|^2)
   *   atom 1: 0 + 0.2² + 0 + 0 = 0.04
   *   atom 2: 0.1^4 + 0 + 0.1^4 + 0.1² = 0.0102
   * masses 0. D2 = 0.0251 + 0.3 e^-0.5 + (e^0.5/2)(0.0502) */
  double want = 0.0251 + 0.3 * exp(-0.5) + exp(0.5) / 2 * 0.0502;
  is_close(L, want, 1e-12, 1e-10, "D2 hand value %.7f", want);
  /* masses: drop shared weight 0.1 from atom 1 → +|0.9 − 1| = 0.1 and
   * atom 1's term scales: 0.4·0.0501 instead of 0.5·0.0501 */
  f->omega[1] = 0.4;
  moe_voronoi_loss(f, t, &o, &L);
  is_close(L, want + 0.1 - 0.1 * 0.0501, 1e-12, 1e-10, "D2 mass term");
  moe_gmoe_free(f);
  moe_gmoe_free(t);
}

static void test_d3(void)
{
  moe_gmoe *t = truth("thm3");
  moe_gmoe *f = moe_gmoe_alloc(1, 2, 3, MOE_GMOE_NSIGMOID, MOE_GMOE_RELU, MOE_GMOE_RELU);
  for (int i = 0; i < 2; i++) {
    f->omega[i] = 0.5; f->kappa0[i] = 0; f->kappa1[i] = 6; f->kappa2[i] = -8; f->tau[i] = 0.25;
  }
  double half = 1.0 / (1.0 + exp(-0.5)) / 2, b = log(half / (1 - half));   /* σ(b) = σ(0.5)/2 */
  f->beta0[0] = -0.5; f->beta1[0] = 0.1; f->eta1[0] = -12; f->eta2[0] = 4; f->nu[0] = 0.4;
  f->beta0[1] = b; f->beta1[1] = 0.0; f->eta1[1] = 12; f->eta2[1] = 4; f->nu[1] = 0.4;
  f->beta0[2] = b; f->beta1[2] = 0.2; f->eta1[2] = 12; f->eta2[2] = 4; f->nu[2] = 0.5;
  moe_voronoi_opts o;
  moe_voronoi_opts_default(&o, MOE_VORONOI_D3);
  o.sigmoid_scale = 0;
  double L, Ls;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_OK, "D3");
  /* shared: two exact copies of the truth with ω 1/2 + 1/2 → 0
   * routed cell 1 exact, no weight: |Δβ1| + |Δβ0| + ‖Δη‖ + |Δν| = 0.1
   * routed cell 2 (|V| = 2): mass |σ(b) + σ(b) − σ(0.5)| = 0;
   *   atom 1: 0; atom 2: 0.2² + 0 + 0.1² = 0.05
   * D3 = 0.15 */
  is_close(L, 0.15, 1e-12, 1e-12, "D3 hand value 0.15");
  o.sigmoid_scale = 1;
  moe_voronoi_loss(f, t, &o, &Ls);
  /* moving the scale off 1 raises |Δβ0| of the exact atom and the mass of
   * cell 2, so the minimum is at s = 1 */
  is_close(Ls, 0.15, 1e-12, 1e-12, "D3 min over scale = 0.15 (s = 1 optimal)");
  /* scale all fitted σ(β0) by 0.6: only the min-over-scale loss recovers */
  for (int i = 0; i < 3; i++) {
    double p = 0.6 / (1.0 + exp(-f->beta0[i]));
    f->beta0[i] = log(p / (1 - p));
  }
  moe_voronoi_loss(f, t, &o, &Ls);
  is_close(Ls, 0.15, 1e-7, 1e-7, "σ(β0) scaled by 0.6: min over scale still 0.15");
  o.sigmoid_scale = 0;
  moe_voronoi_loss(f, t, &o, &L);
  ok(L > 0.3, "without the scale: %.4f", L);
  moe_gmoe_free(f);
  moe_gmoe_free(t);
}

static void test_d4(void)
{
  moe_gmoe *t = truth("thm4");
  /* a hand-made limit Ǧ2 with 3 well-separated routed atoms */
  moe_gmoe *lim = moe_gmoe_alloc(1, 2, 3, MOE_GMOE_NSIGMOID, MOE_GMOE_RELU, MOE_GMOE_LINEAR);
  double L0[3][5] = {{-0.7, 4.0, 2.0, 8.0, 0.4}, {0.6, 5.5, 1.0, -6.0, 0.4}, {-2.0, 1.0, 2.1, 7.5, 0.3}};
  for (int j = 0; j < 3; j++) {
    lim->beta0[j] = L0[j][0]; lim->beta1[j] = L0[j][1]; lim->eta0[j] = L0[j][2];
    lim->eta1[j] = L0[j][3]; lim->nu[j] = L0[j][4];
  }
  moe_gmoe *f = moe_gmoe_clone(lim);
  for (int i = 0; i < 2; i++) {   /* shared = the truth split in two */
    f->omega[i] = 0.5; f->kappa0[i] = 0; f->kappa1[i] = 6; f->kappa2[i] = -8; f->tau[i] = 0.25;
  }
  f->beta0[0] += 0.1;             /* |Δβ0| = 0.1 */
  f->eta1[1] += 0.2;              /* ‖Δη‖ = 0.2 */
  f->nu[2] += 0.05; f->beta1[2] += 0.1;   /* |Δν| + |Δβ1| = 0.15 */
  moe_voronoi_opts o;
  moe_voronoi_opts_default(&o, MOE_VORONOI_D4);
  double L;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_EINVAL, "D4 without a limit is refused");
  ok(strstr(moe_last_error(), "limit") != NULL, "message names the limit");
  o.limit = lim;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_OK, "D4");
  /* shared 0 (|V| = 2, exact copies); routed: 0.1 + 0.2 + 0.15 = 0.45 */
  is_close(L, 0.45, 1e-12, 1e-12, "D4 hand value 0.45");
  /* inf over several limits: a second limit equal to the fit gives 0,
   * a farther one does not change the minimum */
  moe_gmoe *lim2 = moe_gmoe_clone(f), *lim3 = moe_gmoe_clone(lim);
  lim3->nu[0] += 1.0;
  const moe_gmoe *set[3] = {lim, lim3, lim2};
  o.limits = set;
  o.nlimits = 2;
  moe_voronoi_loss(f, t, &o, &L);
  is_close(L, 0.45, 1e-12, 1e-12, "D4 min over {Ǧ2, farther limit} = 0.45");
  o.nlimits = 3;
  moe_voronoi_loss(f, t, &o, &L);
  is_close(L, 0.0, 1e-12, 0, "D4 min over limits including the fit itself = 0");
  o.limits = NULL;
  o.nlimits = 0;
  moe_gmoe_free(lim2); moe_gmoe_free(lim3);
  int c1[2], c2[3];
  moe_voronoi_cells(f, t, lim, 1, c1, c2);
  ok(c2[0] == 0 && c2[1] == 1 && c2[2] == 2, "D4 cells are built around Ǧ2's atoms");
  moe_gmoe_free(f); moe_gmoe_free(lim); moe_gmoe_free(t);
}

static void test_d5(void)
{
  moe_gmoe *t = truth("thm1"), *f = case_a();
  moe_voronoi_opts o;
  moe_voronoi_opts_default(&o, MOE_VORONOI_D5);
  o.align_relu = 0;
  o.min_shift = 0;
  o.topk = 1;
  double L;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_OK, "D5");
  /* shared 0.022 + max(cell 1: 0.1 e^-0.5 = 0.0607, cell 2: 0.065 e^0.5 = 0.1072) */
  is_close(L, 0.022 + 0.065 * exp(0.5), 1e-12, 1e-12, "D5, K = 1: worst single region");
  o.topk = 2;
  moe_voronoi_loss(f, t, &o, &L);
  is_close(L, 0.022 + 0.1 * exp(-0.5) + 0.065 * exp(0.5), 1e-12, 1e-12, "D5, K = k2* = 2 equals D1");
  o.topk = 3;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_EINVAL, "D5, K > k2* refused");
  o.topk = 0;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_EINVAL, "D5, K = 0 refused");
  moe_gmoe_free(f); moe_gmoe_free(t);
}

static void test_align(void)
{
  /* (inner (2, -3), outer 4) rescaled by s = 2.385: inner/2.385, outer·2.385
   * aligns back exactly, returning s = 1/2.385 */
  double pt[3] = {2.0, -3.0, 4.0}, p[3] = {2.0 / 2.385, -3.0 / 2.385, 4.0 * 2.385}, out[3];
  double s = moe_voronoi_relu_align(2, p, pt, out);
  is_close(s, 1 / 2.385, 1e-10, 1e-10, "alignment finds s = 1/2.385");
  ok(fabs(out[0] - 2) < 1e-10 && fabs(out[1] + 3) < 1e-10 && fabs(out[2] - 4) < 1e-10, "aligned = truth");
  /* not an exact rescaling: cost at the returned s is below s = 1 and the
   * derivative of the cost vanishes there */
  double q[3] = {1.1, -2.0, 6.1};
  s = moe_voronoi_relu_align(2, q, pt, out);
  double c = 0, c1 = 0, cp = 0, cm = 0, h = 1e-6;
  for (int k = 0; k < 3; k++) {
    double f = k < 2 ? 1 / s : s, fp = k < 2 ? 1 / (s + h) : s + h, fm = k < 2 ? 1 / (s - h) : s - h;
    c += pow(q[k] * f - pt[k], 2); c1 += pow(q[k] - pt[k], 2);
    cp += pow(q[k] * fp - pt[k], 2); cm += pow(q[k] * fm - pt[k], 2);
  }
  ok(c < c1 && c <= cp && c <= cm, "aligned cost %.5f is a local minimum below %.5f", c, c1);
  double z[3] = {0, 0, 4.0};
  is_close(moe_voronoi_relu_align(2, z, pt, out), 1.0, 0, 0, "zero inner weights: s = 1");
}

static void test_routed_error(void)
{
  /* case A: routed atoms 1, 2 share true atom 2 (|V| = 2); atom 1's η
   * equals the truth, atom 2's differs only in ν (not part of the error),
   * atom 0 (exact cell, ν off by 0.1) is ignored: error 0. Then move atom
   * 2's outer weight by 0.3 with no alignment: ‖Δη‖ = 0.3. */
  moe_gmoe *t = truth("thm1"), *f = case_a();
  double e;
  is_int(moe_voronoi_routed_error(f, t, 0, &e), MOE_OK, "routed error");
  is_close(e, 0.0, 1e-15, 0, "over-specified cell exact in η: 0");
  f->eta2[2] = 4.3;
  moe_voronoi_routed_error(f, t, 0, &e);
  is_close(e, 0.3, 1e-12, 1e-12, "outer weight off by 0.3: 0.3");
  f->eta2[0] = 9.0;   /* exact cell: ignored while an over-specified cell exists */
  moe_voronoi_routed_error(f, t, 0, &e);
  is_close(e, 0.3, 1e-12, 1e-12, "exact cells ignored");
  moe_gmoe_free(f); moe_gmoe_free(t);
}

static void test_errors(void)
{
  moe_gmoe *t = truth("thm1"), *t2 = truth("thm2");
  moe_gmoe *f = case_a();
  moe_voronoi_opts o;
  moe_voronoi_opts_default(&o, MOE_VORONOI_D1);
  double L;
  is_int(moe_voronoi_loss(f, t2, &o, &L), MOE_EINVAL, "expert kinds differ: refused");
  moe_gmoe *t3 = NULL;
  moe_gmoe_truth("thm1", 2, &t3);
  is_int(moe_voronoi_loss(f, t3, &o, &L), MOE_EINVAL, "input widths differ: refused");
  ok(strstr(moe_last_error(), "d=1") != NULL, "message: %s", moe_last_error());
  o.kind = 9;
  is_int(moe_voronoi_loss(f, t, &o, &L), MOE_EINVAL, "unknown loss refused");
  is_int(moe_voronoi_loss(NULL, t, &o, &L), MOE_EINVAL, "NULL refused");
  moe_gmoe_free(f); moe_gmoe_free(t); moe_gmoe_free(t2); moe_gmoe_free(t3);
}

int main(void)
{
  test_r();
  test_d1();
  test_d2();
  test_d3();
  test_d4();
  test_d5();
  test_align();
  test_routed_error();
  test_errors();
  return tap_done();
}
