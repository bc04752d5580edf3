/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gmoe_polish.c — the full log-likelihood on the EM workspace of
 * gmoe_em.c: packing of θ, gradient, Hessian, the second-order and BFGS
 * polish, and SQUAREM.
 * Shape letters: N samples, D input width, S shared (k1), E routed (k2),
 * C = S + E mixture components (shared first). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_blas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>

#include "internal.h"
#include "gmoe_impl.h"
#include "moe/error.h"
#include "moe/gmoe.h"
#include "vmath.h"

/* ---- the full log-likelihood: packing, gradient, polish, SQUAREM -------
 *
 * θ packs every free parameter unconstrained: per shared expert i
 *   a_i (ω = softmax(a)), κ0_i, κ1_i[D], κ2_i (ReLU only), s_i,
 * per routed expert j
 *   β0_j, β1_j[D], η0_j (linear only), η1_j[D], η2_j (ReLU only), s_j,
 * with a variance v = var_floor + exp(s) (the floor stays a constraint).
 * The gradient of the mean log-likelihood ℓ is the gradient of Q at the
 * current point (Fisher's identity): with responsibilities r_nc and
 * residuals e = y − μ_c(x),
 *   ∂ℓ/∂a_i  = (1/N) Σ_n (r_ni − ω_i Σ_{i'} r_ni')
 *   ∂ℓ/∂μ_c  = (1/N) Σ_n r_nc e / v_c          (chained through μ's parameters)
 *   ∂ℓ/∂s_c  = (1/N) Σ_n r_nc (e²/v_c − 1)/2 · (v_c − floor)/v_c
 *   ∂ℓ/∂u_j  = (1/N) Σ_n (r_nj − R_n g_j) · [1 − σ(u_j) for the normalised sigmoid]
 * (R_n = Σ_j r_nj, routed only; top-K sets held fixed, as in the M-step). */

static int shared_np(const moe_gmoe *m) { return 1 + 1 + m->d + (m->shared_kind == MOE_GMOE_RELU) + 1; }
static int routed_np(const moe_gmoe *m)
{
  return 1 + m->d + (m->routed_kind == MOE_GMOE_LINEAR) + m->d + (m->routed_kind == MOE_GMOE_RELU) + 1;
}

int moe_gmoe_em_nparams(const moe_gmoe_em *w)
{
  return w && w->m ? w->S * shared_np(w->m) + w->E * routed_np(w->m) : 0;
}

static double var_to_s(double v, double fl)
{
  double e = v - fl;
  return log(e > 1e-12 * fl ? e : 1e-12 * fl);
}

static void em_pack(const moe_gmoe_em *w, double *th)
{
  const moe_gmoe *m = w->m;
  const int D = w->D;
  double *p = th;
  for (int i = 0; i < w->S; i++) {
    *p++ = log(m->omega[i]);
    *p++ = m->kappa0[i];
    for (int k = 0; k < D; k++) *p++ = m->kappa1[(size_t)i * D + k];
    if (m->shared_kind == MOE_GMOE_RELU) *p++ = m->kappa2[i];
    *p++ = var_to_s(m->tau[i], w->var_floor);
  }
  for (int j = 0; j < w->E; j++) {
    *p++ = m->beta0[j];
    for (int k = 0; k < D; k++) *p++ = m->beta1[(size_t)j * D + k];
    if (m->routed_kind == MOE_GMOE_LINEAR) *p++ = m->eta0[j];
    for (int k = 0; k < D; k++) *p++ = m->eta1[(size_t)j * D + k];
    if (m->routed_kind == MOE_GMOE_RELU) *p++ = m->eta2[j];
    *p++ = var_to_s(m->nu[j], w->var_floor);
  }
}

/* θ → model; 0 if every value is finite (ω renormalised). */
static int em_unpack(moe_gmoe_em *w, const double *th)
{
  moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, sn = shared_np(m);
  for (int q = 0; q < moe_gmoe_em_nparams(w); q++)
    if (!isfinite(th[q])) return 1;
  double amax = -INFINITY, os = 0;
  for (int i = 0; i < S; i++) amax = fmax(amax, th[(size_t)i * sn]);
  const double *p = th;
  for (int i = 0; i < S; i++) {
    m->omega[i] = exp(*p++ - amax);
    os += m->omega[i];
    m->kappa0[i] = *p++;
    for (int k = 0; k < D; k++) m->kappa1[(size_t)i * D + k] = *p++;
    if (m->shared_kind == MOE_GMOE_RELU) m->kappa2[i] = *p++;
    m->tau[i] = w->var_floor + exp(*p++);
  }
  for (int i = 0; i < S; i++) m->omega[i] = fmax(m->omega[i] / os, 1e-300);
  for (int j = 0; j < w->E; j++) {
    m->beta0[j] = *p++;
    for (int k = 0; k < D; k++) m->beta1[(size_t)j * D + k] = *p++;
    if (m->routed_kind == MOE_GMOE_LINEAR) m->eta0[j] = *p++;
    for (int k = 0; k < D; k++) m->eta1[(size_t)j * D + k] = *p++;
    if (m->routed_kind == MOE_GMOE_RELU) m->eta2[j] = *p++;
    m->nu[j] = w->var_floor + exp(*p++);
  }
  for (int i = 0; i < S; i++) if (!(m->tau[i] > 0) || !isfinite(m->tau[i])) return 1;
  for (int j = 0; j < w->E; j++) if (!(m->nu[j] > 0) || !isfinite(m->nu[j])) return 1;
  return 0;
}

/* Gradient of ℓ (mean) at the model's current parameters, using the
 * responsibilities R and the gate values of the last E-step (which must
 * be at this point); with B (P, P) also the scores' outer product. */
static void em_grad(moe_gmoe_em *w, double *grad, double *B)
{
  const moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C, sn = shared_np(m), rn = routed_np(m);
  const int P = moe_gmoe_em_nparams(w);
  const int srelu = m->shared_kind == MOE_GMOE_RELU, rrelu = m->routed_kind == MOE_GMOE_RELU;
  memset(grad, 0, (size_t)P * sizeof *grad);
  /* with B, each sample's score s_n is a row of sv (GATE_BLOCK, P);
   * grad += s_n, and B += svᵀ sv (BLAS dsyrk) after each block */
  double *acc = grad, *gr = grad + (size_t)S * sn;   /* routed block */
  if (B) memset(B, 0, (size_t)P * P * sizeof *B);
  for (size_t t0 = 0; t0 < w->n; t0 += GATE_BLOCK) {
    const size_t nb = w->n - t0 < GATE_BLOCK ? w->n - t0 : GATE_BLOCK;
    if (B) memset(w->sv, 0, nb * (size_t)P * sizeof *w->sv);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = w->X + t * D, *r = w->R + t * C;
      const double y = w->Y[t];
      if (B) {
        acc = w->sv + b * (size_t)P;
        gr = acc + (size_t)S * sn;
      }
      double rsh = 0;
      for (int i = 0; i < S; i++) rsh += r[i];
      for (int i = 0; i < S; i++) {
        double *g = acc + (size_t)i * sn;
        g[0] += r[i] - m->omega[i] * rsh;
        double z = dot(m->kappa1 + (size_t)i * D, x, D) + m->kappa0[i];
        double mu = srelu ? m->kappa2[i] * (z > 0 ? z : 0) : z;
        double e = y - mu, v = m->tau[i];
        double c = r[i] * e / v;                     /* ∂/∂μ */
        double dz = srelu ? (z > 0 ? c * m->kappa2[i] : 0) : c;
        g[1] += dz;
        for (int k = 0; k < D; k++) g[2 + k] += dz * x[k];
        if (srelu) g[2 + D] += c * (z > 0 ? z : 0);
        g[sn - 1] += 0.5 * r[i] * (e * e / v - 1);
      }
      const double *gw = w->gall + t * E, *om = w->omall + t * E;   /* the E-step's gate, at this point */
      const unsigned char *sel = w->selall + t * E;
      double rs = 0;
      for (int j = 0; j < E; j++) rs += r[S + j];
      for (int j = 0; j < E; j++) {
        double *g = gr + (size_t)j * rn;
        const double rj = r[S + j];
        if (sel[j]) {
          double cu = rj - rs * gw[j];
          if (m->gate == MOE_GMOE_NSIGMOID) cu *= om[j];
          g[0] += cu;
          for (int k = 0; k < D; k++) g[1 + k] += cu * x[k];
        }
        const double *e1 = m->eta1 + (size_t)j * D;
        double z = dot(e1, x, D);
        double mu = rrelu ? m->eta2[j] * (z > 0 ? z : 0) : z + m->eta0[j];
        double e = y - mu, v = m->nu[j];
        double c = rj * e / v;
        int q = 1 + D;
        if (!rrelu) g[q++] += c;
        double dz = rrelu ? (z > 0 ? c * m->eta2[j] : 0) : c;
        for (int k = 0; k < D; k++) g[q + k] += dz * x[k];
        q += D;
        if (rrelu) g[q++] += c * (z > 0 ? z : 0);
        g[q] += 0.5 * rj * (e * e / v - 1);
      }
      if (B)
        for (int q = 0; q < P; q++) grad[q] += acc[q];
    }
    if (B)   /* upper triangle of B += svᵀ sv */
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, P, (int)nb, 1.0, w->sv, P, 1.0, B, P);
  }
  gr = grad + (size_t)S * sn;
  const double s = 1.0 / (double)w->n;
  for (int q = 0; q < P; q++) grad[q] *= s;
  /* chain rule for v = floor + exp(s) */
  for (int i = 0; i < S; i++) grad[(size_t)i * sn + sn - 1] *= (m->tau[i] - w->var_floor) / m->tau[i];
  for (int j = 0; j < E; j++) gr[(size_t)j * rn + rn - 1] *= (m->nu[j] - w->var_floor) / m->nu[j];
  if (!B) return;
  /* B likewise: scaled by 1/N and by the chain factor of each variance
   * parameter on its row and column; the lower triangle mirrored */
  double *f = w->sv;
  for (int q = 0; q < P; q++) f[q] = 1;
  for (int i = 0; i < S; i++) f[(size_t)i * sn + sn - 1] = (m->tau[i] - w->var_floor) / m->tau[i];
  for (int j = 0; j < E; j++) f[(size_t)S * sn + (size_t)j * rn + rn - 1] = (m->nu[j] - w->var_floor) / m->nu[j];
  for (int q = 0; q < P; q++)
    for (int u = q; u < P; u++) B[(size_t)u * P + q] = B[(size_t)q * P + u] *= s * f[q] * f[u];
}

/* Hessian of ℓ (mean) at the current point, analytically, by Louis'
 * identity (Louis 1982): with the complete-data log-likelihoods
 * ℓ_c = log π_c + log N(y; μ_c, v_c) (π_c = ω_i/2 for shared i, g_j(x)/2
 * for routed j) and the responsibilities r_c,
 *   ∇² log p = Σ_c r_c (∇²ℓ_c + ∇ℓ_c ∇ℓ_cᵀ) − s sᵀ,   s = Σ_c r_c ∇ℓ_c.
 * ∇ℓ_c is sparse: the weight (a) or gate (β) parameters, and component
 * c's expert. Per component, with e = y − μ, v = floor + e^σ, φ = v − floor:
 *   ∂ℓ/∂μ = e/v, ∂²ℓ/∂μ² = −1/v, ∂ℓ/∂σ = φ (e²/v − 1)/(2v),
 *   ∂²ℓ/∂μ∂σ = −φ e/v², ∂²ℓ/∂σ² = φ² (1/(2v²) − e²/v³) + ∂ℓ/∂σ;
 * μ linear in its parameters, or κ2·max(z, 0) (ReLU: ∂²μ/∂κ2∂z-param =
 * 1{z>0} x̃, the hinge's kink ignored, as in the gradient);
 * ∂ log ω_i/∂a_k = δ_ik − ω_k, ∂² = −(δ_kl ω_k − ω_k ω_l);
 * ∂ log g_j/∂u_k = δ_jk − g_k (softmax), δ_jk (1 − σ_j) − q_k
 * (normalised sigmoid, q_k = g_k (1 − σ_k)), over the chosen set (held
 * fixed, as in the gradient); Σ_j r_j ∂² log g_j/∂u_k∂u_l =
 * −R (δ_kl g_k − g_k g_l) (softmax), −δ_kl (r_k σ_k (1 − σ_k) +
 * R q_k (1 − 2σ_k)) + R q_k q_l (normalised sigmoid), times x̃ x̃ᵀ.
 * ∇ℓ_c has two disjoint parts, the weights' or gate's (w_c) and expert
 * c's (ê_c), so Σ_c r_c ∇ℓ_c ∇ℓ_cᵀ is formed block by block per sample
 * (the gate block as [Σ_j r_j d_j d_jᵀ] ⊗ x̃ x̃ᵀ); only − Σ s sᵀ is dense,
 * through BLAS (dsyrk) over batches of samples. One pass over the data,
 * against P gradient passes for a differenced Hessian.
 * grad (P) may be NULL; H (P, P) row-major, symmetric. */
/* One expert's part of em_hess for one sample, weighted by its
 * responsibility r: fills ê (eh: ne values ∂ℓ/∂μ · ∇μ, then ∂ℓ/∂σ) from
 * ∇μ (gmu) and adds r (∇²ℓ + ê êᵀ) to the expert's block of Hd (its ne
 * mean parameters from oe, σ at oe + ne) and r ê to the score sc. zin:
 * for a ReLU expert on the positive side, the nz = ne − 1 inputs of its
 * pre-activation (the scale is parameter ne − 1), else NULL. */
static void hess_expert(double *Hd, int P, double *sc, size_t oe, int ne, double r, const double *gmu, double *eh,
                        double v, double phi, double e, const double *zin)
{
#define HD(a, b) Hd[(size_t)(a) * P + (b)]
  const double dmu = e / v, ds = phi * (e * e / v - 1) / (2 * v);
  for (int a = 0; a < ne; a++) eh[a] = dmu * gmu[a];
  eh[ne] = ds;
  for (int a = 0; a <= ne; a++)
    for (int c = 0; c <= ne; c++) HD(oe + a, oe + c) += r * eh[a] * eh[c];
  for (int a = 0; a < ne; a++) {
    for (int c = 0; c < ne; c++) HD(oe + a, oe + c) -= r * gmu[a] * gmu[c] / v;
    const double hs = -r * phi * e / (v * v) * gmu[a];
    HD(oe + a, oe + ne) += hs;
    HD(oe + ne, oe + a) += hs;
  }
  if (zin)   /* ∂²μ/∂scale∂z-param = x̃ */
    for (int k = 0; k < ne - 1; k++) {
      const double h = r * dmu * zin[k];
      HD(oe + k, oe + ne - 1) += h;
      HD(oe + ne - 1, oe + k) += h;
    }
  HD(oe + ne, oe + ne) += r * (phi * phi * (0.5 / (v * v) - e * e / (v * v * v)) + ds);
  for (int a = 0; a <= ne; a++) sc[oe + a] += r * eh[a];
#undef HD
}

static int em_hess(moe_gmoe_em *w, double *grad, double *H)
{
  const moe_gmoe *m = w->m;
  const int D = w->D, S = w->S, E = w->E, C = w->C, sn = shared_np(m), rn = routed_np(m);
  const int P = moe_gmoe_em_nparams(w), D1 = D + 1;
  const int srelu = m->shared_kind == MOE_GMOE_RELU, rrelu = m->routed_kind == MOE_GMOE_RELU;
  const int nsig = m->gate == MOE_GMOE_NSIGMOID;
  enum { NB = 256 };   /* samples per dsyrk batch */
  const size_t PP = (size_t)P * (size_t)P;
  const size_t EE = (size_t)E * (size_t)E;
  double *buf = malloc(((size_t)NB * (size_t)P + PP + (size_t)P + 3 * (size_t)E + EE + 2 * (size_t)D1 + 2 +
                        (size_t)D1 + 2) * sizeof *buf);
  if (!buf) return moe_error(MOE_ENOMEM, "gmoe_em_hessian: no memory for P=%d", P);
  double *neg = buf, *Hd = neg + (size_t)NB * P, *gs = Hd + PP;
  double *q = gs + P, *sgm = q + E, *dj = sgm + E, *M = dj + E, *xt = M + EE, *gmu = xt + D1, *eh = gmu + D1 + 1;
  memset(H, 0, PP * sizeof *H);
  memset(Hd, 0, PP * sizeof *Hd);
  memset(gs, 0, (size_t)P * sizeof *gs);
  const size_t R0 = (size_t)S * sn;   /* first routed parameter */
#define HD(a, b) Hd[(size_t)(a) * P + (b)]
  for (size_t t0 = 0; t0 < w->n; t0 += NB) {
    const size_t nb = w->n - t0 < NB ? w->n - t0 : NB;
    memset(neg, 0, nb * (size_t)P * sizeof *neg);
    for (size_t b = 0; b < nb; b++) {
      const size_t t = t0 + b;
      const double *x = w->X + t * D, *r = w->R + t * C;
      const double y = w->Y[t];
      double *sc = neg + b * (size_t)P;   /* s, the sample's score */
      xt[0] = 1;
      for (int k = 0; k < D; k++) xt[1 + k] = x[k];
      /* shared experts and their weights; expert block at o+1 .. o+sn−1:
       * ∇μ (ne of them) then σ */
      double rsh = 0;
      for (int i = 0; i < S; i++) rsh += r[i];
      for (int i = 0; i < S; i++) {
        const double ri = r[i];
        const size_t o = (size_t)i * sn;
        for (int k = 0; k < S; k++) sc[(size_t)k * sn] += ri * ((k == i) - m->omega[k]);
        if (!(ri > 0)) continue;
        const double z = dot(m->kappa1 + (size_t)i * D, x, D) + m->kappa0[i];
        const int on = z > 0;
        const double mu = srelu ? m->kappa2[i] * (on ? z : 0) : z;
        const double v = m->tau[i], phi = v - w->var_floor, e = y - mu;
        const int ne = sn - 2;
        for (int a = 0; a < D1; a++) gmu[a] = srelu ? (on ? m->kappa2[i] * xt[a] : 0) : xt[a];
        if (srelu) gmu[D1] = on ? z : 0;
        hess_expert(Hd, P, sc, o + 1, ne, ri, gmu, eh, v, phi, e, srelu && on ? xt : NULL);
        /* weights × expert i: r (δ_ik − ω_k) ê */
        for (int k = 0; k < S; k++) {
          const double wk = ri * ((k == i) - m->omega[k]);
          for (int a = 0; a <= ne; a++) {
            HD((size_t)k * sn, o + 1 + a) += wk * eh[a];
            HD(o + 1 + a, (size_t)k * sn) += wk * eh[a];
          }
        }
      }
      /* weights: Σ_i r_i (e_i − ω)(e_i − ω)ᵀ − Σ r_i (diag ω − ω ωᵀ) */
      for (int k = 0; k < S; k++)
        for (int l = 0; l < S; l++) {
          double a = 0;
          for (int i = 0; i < S; i++) a += r[i] * ((k == i) - m->omega[k]) * ((l == i) - m->omega[l]);
          HD((size_t)k * sn, (size_t)l * sn) += a - rsh * ((k == l) * m->omega[k] - m->omega[k] * m->omega[l]);
        }
      /* routed experts and the gate; block j: gate at o .. o+D, expert
       * (∇μ then σ) at oe .. o+rn−1 */
      const double *gw = w->gall + t * E, *om = w->omall + t * E;
      const unsigned char *sel = w->selall + t * E;
      double rs = 0;
      for (int j = 0; j < E; j++) {
        rs += r[S + j];
        q[j] = sel[j] ? (nsig ? gw[j] * om[j] : gw[j]) : 0;
        sgm[j] = 1 - om[j];
      }
      memset(M, 0, EE * sizeof *M);
      for (int j = 0; j < E; j++) {
        const double rj = r[S + j];
        if (!sel[j] || !(rj > 0)) continue;   /* r = 0 outside the chosen set */
        const size_t o = R0 + (size_t)j * rn, oe = o + D1;
        for (int k = 0; k < E; k++) dj[k] = sel[k] ? (k == j) * (nsig ? om[j] : 1.0) - q[k] : 0;
        for (int k = 0; k < E; k++)
          for (int l = 0; l < E; l++) M[(size_t)k * E + l] += rj * dj[k] * dj[l];
        const double z = dot(m->eta1 + (size_t)j * D, x, D);
        const int on = z > 0;
        const double mu = rrelu ? m->eta2[j] * (on ? z : 0) : z + m->eta0[j];
        const double v = m->nu[j], phi = v - w->var_floor, e = y - mu;
        const int ne = rn - D1 - 1;
        int a0 = 0;
        if (!rrelu) gmu[a0++] = 1;
        for (int k = 0; k < D; k++) gmu[a0 + k] = rrelu ? (on ? m->eta2[j] * x[k] : 0) : x[k];
        if (rrelu) gmu[D] = on ? z : 0;
        hess_expert(Hd, P, sc, oe, ne, rj, gmu, eh, v, phi, e, rrelu && on ? x : NULL);
        /* gate × expert j: r d_k x̃ ê */
        for (int k = 0; k < E; k++) {
          if (dj[k] == 0) continue;
          const size_t og = R0 + (size_t)k * rn;
          for (int a = 0; a < D1; a++) {
            const double ga = rj * dj[k] * xt[a];
            sc[og + a] += ga;
            for (int c = 0; c <= ne; c++) {
              HD(og + a, oe + c) += ga * eh[c];
              HD(oe + c, og + a) += ga * eh[c];
            }
          }
        }
      }
      /* gate × gate: [Σ_j r_j d_j d_jᵀ + Σ_j r_j ∇²_u log g_j] ⊗ x̃ x̃ᵀ */
      for (int k = 0; k < E; k++) {
        if (!sel[k]) continue;
        for (int l = 0; l < E; l++) {
          if (!sel[l]) continue;
          const double h = nsig ? (k == l) * (r[S + k] * sgm[k] * om[k] + rs * q[k] * (1 - 2 * sgm[k])) - rs * q[k] * q[l]
                                : rs * ((k == l) * gw[k] - gw[k] * gw[l]);
          const double c = M[(size_t)k * E + l] - h;
          if (c == 0) continue;
          for (int a = 0; a < D1; a++)
            for (int u = 0; u < D1; u++) HD(R0 + (size_t)k * rn + a, R0 + (size_t)l * rn + u) += c * xt[a] * xt[u];
        }
      }
      for (int p = 0; p < P; p++) gs[p] += sc[p];
    }
    /* upper triangle: H −= Σ s sᵀ */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, P, (int)nb, -1.0, neg, P, 1.0, H, P);
  }
#undef HD
  const double s = 1.0 / (double)w->n;
  for (int a = 0; a < P; a++)
    for (int c = a; c < P; c++) {
      const double v = (H[(size_t)a * P + c] + 0.5 * (Hd[(size_t)a * P + c] + Hd[(size_t)c * P + a])) * s;
      H[(size_t)a * P + c] = H[(size_t)c * P + a] = v;
    }
  if (grad)
    for (int p = 0; p < P; p++) grad[p] = gs[p] * s;
  free(buf);
  return MOE_OK;
}

int moe_gmoe_em_hessian(moe_gmoe_em *w, double *grad, double *H)
{
  MOE_CHECK_ARG(w && w->m && H, "gmoe_em_hessian: not initialised or H NULL");
  return em_hess(w, grad, H);
}

int moe_gmoe_em_gradient(moe_gmoe_em *w, double *grad, double *norm)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_gradient: not initialised");
  int P = moe_gmoe_em_nparams(w);
  double *g = grad ? grad : malloc((size_t)P * sizeof *g);
  if (!g) return moe_error(MOE_ENOMEM, "gmoe_em_gradient: no memory");
  em_grad(w, g, NULL);
  if (norm) {
    double s = 0;
    for (int q = 0; q < P; q++) s += g[q] * g[q];
    *norm = sqrt(s * (double)w->n);
  }
  if (!grad) free(g);
  return MOE_OK;
}

int moe_gmoe_em_score_outer(moe_gmoe_em *w, double *grad, double *B)
{
  MOE_CHECK_ARG(w && w->m && grad && B, "gmoe_em_score_outer: not initialised, or NULL output");
  em_grad(w, grad, B);
  return MOE_OK;
}

int moe_gmoe_em_get_params(const moe_gmoe_em *w, double *theta)
{
  MOE_CHECK_ARG(w && w->m && theta, "gmoe_em_get_params: not initialised");
  em_pack(w, theta);
  return MOE_OK;
}

int moe_gmoe_em_set_params(moe_gmoe_em *w, const double *theta)
{
  MOE_CHECK_ARG(w && w->m && theta, "gmoe_em_set_params: not initialised");
  if (em_unpack(w, theta)) return moe_error(MOE_EDOM, "gmoe_em_set_params: non-finite parameter");
  return moei_gmoe_em_estep(w);
}

/* −ℓ and its gradient at θ for gsl_multimin (the model and R move with θ). */
static double full_fdf(moe_gmoe_em *w, const double *th, double *grad)
{
  if (em_unpack(w, th)) return GSL_POSINF;
  if (moei_gmoe_em_estep(w)) { moe_error_clear(); return GSL_POSINF; }
  if (grad) {
    em_grad(w, grad, NULL);
    for (int q = 0; q < moe_gmoe_em_nparams(w); q++) grad[q] = -grad[q];
  }
  return -w->ll;
}
static double full_f(const gsl_vector *v, void *p) { return full_fdf(p, v->data, NULL); }
static void full_df(const gsl_vector *v, void *p, gsl_vector *g)
{
  if (!isfinite(full_fdf(p, v->data, g->data))) gsl_vector_set_zero(g);
}
static void full_fdf3(const gsl_vector *v, void *p, double *f, gsl_vector *g)
{
  *f = full_fdf(p, v->data, g->data);
  if (!isfinite(*f)) gsl_vector_set_zero(g);
}

/* BFGS from the current point until the gradient test, max_iter
 * iterations, or a stalled line search; restarted (fresh Hessian) from
 * the best point while that makes progress. Leaves the model, R and ℓ at
 * the best point. Returns 1 if the gradient test was met. */
static int polish_bfgs(moe_gmoe_em *w, gsl_multimin_fdfminimizer *s, gsl_vector *best, int max_iter, double grad_tol,
                       int *it)
{
  const int P = moe_gmoe_em_nparams(w);
  const double sq = sqrt((double)w->n);
  em_pack(w, best->data);
  double fbest = full_fdf(w, best->data, NULL);
  int met = 0;
  gsl_multimin_function_fdf fn = {full_f, full_df, full_fdf3, (size_t)P, w};
  for (int restart = 0; restart < 6 && *it < max_iter && isfinite(fbest) && !met; restart++) {
    gsl_multimin_fdfminimizer_set(s, &fn, best, 0.01, 0.1);
    if (!isfinite(s->f)) break;
    if (gsl_blas_dnrm2(s->gradient) * sq <= grad_tol) { met = 1; break; }
    int progressed = 0;
    while (*it < max_iter) {
      int st = gsl_multimin_fdfminimizer_iterate(s);
      ++*it;
      if (isfinite(s->f) && s->f < fbest) {
        if (s->f < fbest - 1e-15 * fabs(fbest)) progressed = 1;
        fbest = s->f;
        gsl_vector_memcpy(best, s->x);
      }
      if (st) break;
      if (gsl_blas_dnrm2(s->gradient) * sq <= grad_tol) { met = 1; break; }
    }
    if (!progressed) break;
  }
  if (em_unpack(w, best->data) || moei_gmoe_em_estep(w)) return -1;
  return met;
}

/* Scale a polish step so that no parameter moves by more than 5 (logits,
 * slopes, log-variances): along a direction where the likelihood keeps
 * rising towards a saturated gate (small n: the maximum is at infinity),
 * a second-order step can otherwise jump to parameters whose exp()
 * overflows; capped, the flat test stops it first. */
static void step_cap(int P, double *d)
{
  double m = 0;
  for (int q = 0; q < P; q++) m = fmax(m, fabs(d[q]));
  if (m > 5)
    for (int q = 0; q < P; q++) d[q] *= 5 / m;
}

/* Levenberg-Marquardt ascent of ℓ with the outer product of the
 * per-sample scores as its curvature (BHHH: Berndt, Hall, Hall & Hausman
 * 1974; for a correct model it estimates the Fisher information, so near
 * the maximum the steps are nearly Newton's, where EM creeps along the
 * over-specified model's flat directions). Step δ solves
 * (B + λ diag B) δ = ∇ℓ by Cholesky; λ is divided by 3 after a gain and
 * multiplied by 4 after a loss (10 tries). One gradient-and-B pass per
 * iteration plus one E-step per try. Leaves the model at the best point.
 * Returns 1 if the gradient test was met, 0 if not, -1 on a non-finite
 * log-likelihood at the start, -2 if out of memory. */
static int polish_lm(moe_gmoe_em *w, int max_iter, double grad_tol, int *it)
{
  const int P = moe_gmoe_em_nparams(w);
  const double sq = sqrt((double)w->n);
  double *buf = malloc(((size_t)2 * P * P + 4 * (size_t)P) * sizeof *buf);
  if (!buf) { moe_error(MOE_ENOMEM, "gmoe_em_polish: no memory for P=%d", P); return -2; }
  double *B = buf, *A = B + (size_t)P * P, *g = A + (size_t)P * P, *th = g + P, *tr = th + P, *d = tr + P;
  em_pack(w, th);
  double ll = w->ll, lam = 1e-3;
  int met = 0;
  if (!isfinite(ll)) { free(buf); return -1; }
  while (*it < max_iter) {
    em_grad(w, g, B);
    double gg = 0, dmax = 0;
    for (int q = 0; q < P; q++) { gg += g[q] * g[q]; dmax = fmax(dmax, B[(size_t)q * P + q]); }
    if (sqrt(gg) * sq <= grad_tol) { met = 1; break; }
    if (!(dmax > 0) || !isfinite(dmax) || !isfinite(gg)) break;
    int accepted = 0;
    ++*it;
    for (int tries = 0; tries < 10 && !accepted; tries++, lam *= 4) {
      memcpy(A, B, (size_t)P * P * sizeof *A);
      for (int q = 0; q < P; q++) A[(size_t)q * P + q] += lam * B[(size_t)q * P + q] + 1e-12 * dmax;
      gsl_matrix_view Am = gsl_matrix_view_array(A, (size_t)P, (size_t)P);
      gsl_vector_view gv = gsl_vector_view_array(g, (size_t)P), dv = gsl_vector_view_array(d, (size_t)P);
      moei_gsl_enter();
      int st = gsl_linalg_cholesky_decomp1(&Am.matrix);
      if (!st) st = gsl_linalg_cholesky_solve(&Am.matrix, &gv.vector, &dv.vector);
      moei_gsl_leave();
      if (st) continue;
      step_cap(P, d);
      for (int q = 0; q < P; q++) tr[q] = th[q] + d[q];
      if (em_unpack(w, tr) || moei_gmoe_em_estep(w)) { moe_error_clear(); continue; }
      if (isfinite(w->ll) && w->ll > ll) {
        accepted = 1;
        ll = w->ll;
        memcpy(th, tr, (size_t)P * sizeof *th);
        lam = fmax(lam / 12, 1e-9);   /* /4 undoes the loop's *4, then /3 */
      }
    }
    if (!accepted) break;
  }
  if (em_unpack(w, th) || moei_gmoe_em_estep(w)) { free(buf); return -1; }
  free(buf);
  return met;
}

/* Newton ascent of ℓ with the analytic Hessian (em_hess: one pass over
 * the data with the gradient) at every iteration; the step is
 * modified_newton_step's (|eigenvalues| floored: an ascent direction even
 * at a saddle), capped (step_cap), with step halving (8 tries). For the
 * curved, nearly flat valleys of an over-specified mixture, where the
 * BHHH curvature zigzags. Stops as "flat" when 10 iterations gained less
 * than 1e-2 in total log-likelihood (with ReLU experts ℓ has a kink
 * wherever a point crosses a hinge, and the gradient test may never be
 * met: the fit then sits on a kinked ridge whose remaining ascent is
 * statistically nil). Returns 1 if the gradient test was met, 2 if flat,
 * 0 if no ascent was found, -1 on a non-finite likelihood, -2 if the
 * Hessian's scratch could not be allocated (the model then stays at the
 * last accepted point). */
static int polish_newton(moe_gmoe_em *w, int max_iter, double grad_tol, int *it)
{
  const int P = moe_gmoe_em_nparams(w);
  const double sq = sqrt((double)w->n);
  double *buf = malloc(((size_t)P * P + 4 * (size_t)P) * sizeof *buf);
  gsl_matrix *evec = gsl_matrix_alloc((size_t)P, (size_t)P);
  gsl_vector *eval = gsl_vector_alloc((size_t)P);
  gsl_eigen_symmv_workspace *eig = gsl_eigen_symmv_alloc((size_t)P);
  int met = -1;
  if (!buf || !evec || !eval || !eig) {
    met = -2;
    moe_error(MOE_ENOMEM, "gmoe_em_polish: no memory for P=%d", P);
    goto out;
  }
  double *H = buf, *g = H + (size_t)P * P, *th = g + P, *tr = th + P, *d = tr + P;
  em_pack(w, th);
  double ll = w->ll, hist[10];
  if (!isfinite(ll)) goto out;
  met = 0;
  for (int k = 0; *it < max_iter; k++) {
    if (k >= 10 && (ll - hist[k % 10]) * (double)w->n < 1e-2) { met = 2; break; }
    hist[k % 10] = ll;
    if (em_hess(w, g, H)) { met = -2; break; }   /* no memory: its error stands */
    double gg = 0;
    for (int q = 0; q < P; q++) gg += g[q] * g[q];
    if (sqrt(gg) * sq <= grad_tol) { met = 1; break; }
    ++*it;
    for (int q = 0; q < P * P; q++) H[q] = -H[q];   /* of −ℓ */
    for (int q = 0; q < P; q++) g[q] = -g[q];
    if (moei_gmoe_modified_newton_step(P, H, g, d, evec, eval, eig)) break;
    step_cap(P, d);
    int accepted = 0;
    double t = 1.0;
    for (int h = 0; h < 8 && !accepted; h++, t *= 0.5) {
      for (int q = 0; q < P; q++) tr[q] = th[q] + t * d[q];
      if (em_unpack(w, tr) || moei_gmoe_em_estep(w)) { moe_error_clear(); continue; }
      if (isfinite(w->ll) && w->ll > ll) {
        accepted = 1;
        ll = w->ll;
        memcpy(th, tr, (size_t)P * sizeof *th);
      }
    }
    if (!accepted) break;   /* the exact Hessian's step finds no ascent: done (θ restored below) */
  }
  if (met >= 0 && (em_unpack(w, th) || moei_gmoe_em_estep(w))) met = -1;
out:
  free(buf);
  if (evec) gsl_matrix_free(evec);
  if (eval) gsl_vector_free(eval);
  if (eig) gsl_eigen_symmv_free(eig);
  return met;
}

int moe_gmoe_em_polish(moe_gmoe_em *w, int max_iter, double grad_tol, int *iters, double *grad_norm, int *how)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_polish: not initialised");
  MOE_CHECK_ARG(max_iter >= 0 && grad_tol > 0, "gmoe_em_polish: max_iter=%d, grad_tol=%g", max_iter, grad_tol);
  const int P = moe_gmoe_em_nparams(w);
  gsl_vector *best = gsl_vector_alloc((size_t)P);
  gsl_multimin_fdfminimizer *s = gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, (size_t)P);
  if (!best || !s) {
    if (best) gsl_vector_free(best);
    if (s) gsl_multimin_fdfminimizer_free(s);
    return moe_error(MOE_ENOMEM, "gmoe_em_polish: no memory");
  }
  /* Second order first (unless set off): at most 30 Levenberg-Marquardt
   * (BHHH) iterations, then Newton with the analytic Hessian until the
   * gradient test, a flat stretch, or no ascent. Then, if still short,
   * rounds of BFGS, each followed by three SQUAREM cycles: a ReLU
   * expert's likelihood has kinks where a data point sits at the hinge,
   * and the M-step's Gauss-Newton solver tends to park the hinge exactly
   * on a point: there the gradient jumps, BFGS's line search stalls, and
   * the EM maps (which handle the kink) move on. Stop when a round gains
   * less than 1e-3 in total log-likelihood. */
  int it = 0, rc = MOE_OK, met = 0, flat = 0;
  if (w->second_order) {
    met = polish_lm(w, max_iter < 30 ? max_iter : 30, grad_tol, &it);
    if (met == 0) met = polish_newton(w, max_iter, grad_tol, &it);
    if (met == -2) rc = MOE_ENOMEM;   /* em_hess has set the error */
    else if (met < 0) rc = moe_error(MOE_EDOM, "gmoe_em_polish: non-finite log-likelihood");
    if (met == 2) { flat = 1; met = 0; }
  }
  for (int round = 0; round < 20 && it < max_iter && !met && !flat && !rc; round++) {
    const double l0 = w->ll;
    met = polish_bfgs(w, s, best, max_iter, grad_tol, &it);
    if (met < 0) { rc = moe_error(MOE_EDOM, "gmoe_em_polish: non-finite log-likelihood"); break; }
    if (met) break;
    for (int k = 0; k < 3 && !rc; k++) rc = moe_gmoe_em_squarem(w);
    if (rc) break;
    if ((w->ll - l0) * (double)w->n < 1e-3) { flat = 1; break; }
  }
  w->ll_prev = w->ll;
  double gn = NAN;
  if (!rc) moe_gmoe_em_gradient(w, NULL, &gn);
  if (iters) *iters = it;
  if (grad_norm) *grad_norm = gn;
  if (how) *how = met > 0 ? 1 : flat ? 2 : 0;
  gsl_vector_free(best);
  gsl_multimin_fdfminimizer_free(s);
  return rc;
}

/* One SQUAREM cycle (Varadhan & Roland 2008, scheme S3, with the
 * monotone safeguard): θ1 = F(θ0), θ2 = F(θ1), r = θ1 − θ0,
 * v = θ2 − 2θ1 + θ0, α = −‖r‖/‖v‖ (≤ −1), θ' = θ0 − 2αr + α²v, then one
 * EM step from θ'. The result is accepted only if its log-likelihood is
 * ≥ that of θ2; otherwise α is moved halfway to −1 (3 tries) and finally
 * θ2 itself is taken (plain EM). Counts the EM maps it ran in iter. */
int moe_gmoe_em_squarem(moe_gmoe_em *w)
{
  MOE_CHECK_ARG(w && w->m, "gmoe_em_squarem: not initialised");
  const int P = moe_gmoe_em_nparams(w);
  double *buf = malloc(4 * (size_t)P * sizeof *buf);
  if (!buf) return moe_error(MOE_ENOMEM, "gmoe_em_squarem: no memory");
  double *t0 = buf, *t1 = t0 + P, *t2 = t1 + P, *tp = t2 + P;
  const double ll0 = w->ll;
  em_pack(w, t0);
  int rc = moe_gmoe_em_iterate(w);
  if (!rc) { em_pack(w, t1); rc = moe_gmoe_em_iterate(w); }
  if (rc) { free(buf); return rc; }
  em_pack(w, t2);
  const double ll2 = w->ll;
  double rr = 0, vv = 0;
  for (int q = 0; q < P; q++) {
    double r = t1[q] - t0[q], v = t2[q] - 2 * t1[q] + t0[q];
    rr += r * r;
    vv += v * v;
  }
  int accepted = 0;
  if (vv > 0 && isfinite(rr) && isfinite(vv)) {
    double a = -sqrt(rr / vv);
    for (int tries = 0; tries < 4 && a < -1; tries++, a = (a - 1) / 2) {
      for (int q = 0; q < P; q++) {
        double r = t1[q] - t0[q], v = t2[q] - 2 * t1[q] + t0[q];
        tp[q] = t0[q] - 2 * a * r + a * a * v;
      }
      if (em_unpack(w, tp) || moei_gmoe_em_estep(w)) { moe_error_clear(); continue; }
      if (moe_gmoe_em_iterate(w)) { moe_error_clear(); continue; }
      if (isfinite(w->ll) && w->ll >= ll2) { accepted = 1; break; }
    }
  }
  if (!accepted) {   /* plain EM: back to θ2 */
    if (em_unpack(w, t2) || moei_gmoe_em_estep(w)) { free(buf); return moe_error(MOE_EDOM, "gmoe_em_squarem: lost θ2"); }
  }
  free(buf);
  w->ll_prev = ll0;   /* the test compares whole cycles; iter counts every EM map run */

  return MOE_OK;
}
