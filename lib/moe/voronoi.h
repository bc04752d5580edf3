/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/voronoi.h — Voronoi cells and the Voronoi losses D1–D5 between a
 * fitted and a true mixing measure of the Gaussian MoE with shared experts
 * (arXiv 2505.10860 eq. 3, 4, 6, 10, 11 and Thm 5).
 *
 * Atoms (β0 is NOT part of a routed atom):
 *   shared ξ = (κ, τ):  ReLU κ = (κ0, κ1[D], κ2);  linear κ = (κ0, κ1[D])
 *   routed ζ = (β1[D], η, ν):  ReLU η = (η1[D], η2);  linear η = (η0, η1[D])
 * V_{1,j} = { fitted shared atoms i closer (Euclidean) to true ξ*_j than to
 * any other true atom }, ties to the lower j; V_{2,j} likewise with ζ.
 *
 * Per-cell terms, Δ = fitted − true (after the alignments below):
 *  shared block (all losses), weight ω_i:
 *    mass   Σ_j | Σ_{i∈V1j} ω_i − ω*_j |
 *    ReLU   |V|=1: ω_i(‖Δκ‖ + |Δτ|)          |V|>1: ω_i(‖Δκ‖² + |Δτ|²)
 *    linear |V|=1: ω_i(‖Δκ1‖ + |Δκ0| + |Δτ|) |V|>1: ω_i(‖Δκ1‖² + |Δκ0|^r + |Δτ|^(r/2))
 *  routed block, softmax losses D1, D2, D5, weight e^{β0i}:
 *    mass   Σ_j | Σ_{i∈V2j} e^{β0i} − e^{β*0j} |
 *    ReLU   |V|=1: e^{β0i}(‖Δβ1‖ + ‖Δη‖ + |Δν|)   |V|>1: e^{β0i}(‖Δβ1‖² + ‖Δη‖² + |Δν|²)
 *    linear |V|=1: e^{β0i}(‖Δβ1‖ + ‖Δη1‖ + |Δη0| + |Δν|)
 *           |V|>1: e^{β0i}(‖Δβ1‖^r + ‖Δη1‖^(r/2) + |Δη0|^r + |Δν|^(r/2))
 *  routed block, D3 (normalised sigmoid, sparse regime), NO weight factor:
 *    mass only over cells with |V|>1: | Σ σ(β0i) − σ(β*0j) |
 *    |V|=1: ‖Δβ1‖ + |Δβ0| + ‖Δη‖ + |Δν|      |V|>1: ‖Δβ1‖² + ‖Δη‖² + |Δν|²
 *    (linear experts: ‖Δη‖ → ‖Δη1‖ + |Δη0| resp. ‖Δη1‖^(r/2) + |Δη0|^r)
 *  routed block, D4 (dense regime), against the routed atoms of a limit
 *    Ǧ2 (cells built around Ǧ2's atoms), every cell linear order:
 *    Σ_j Σ_{i∈V2j} (‖β1i − β̌1j‖ + |β0i − β̌0j| + ‖ηi − η̌j‖ + |νi − ν̌j|)
 *  D1 = D2 = shared + softmax-routed: "D1" and "D2" name the same formula;
 *    the expert kind (ReLU vs linear) selects the strongly identifiable
 *    (eq. 4) or the linear (eq. 6) form per block, so a model with ReLU
 *    shared and linear routed experts gets eq. 4's shared terms and eq. 6's
 *    routed terms.
 *  D5 (Thm 5, top-K softmax) = max over K-subsets M of the true routed
 *    atoms of [shared terms + routed terms over j ∈ M only].
 * The inner Σ_{i∈V1,j} of the |V1,j|>1 shared term, missing in the printed
 * eq. 4, is restored.
 *
 * r = r(|V|): r(2) = 4, r(3) = 6 (App. B). For |V| ≥ 4 the paper only says
 * r ≥ 7; we use 7 (moe_voronoi_r). r is used only for cells with |V| > 1.
 *
 * Pitfalls of the losses as defined, and the choices made here:
 *  1. shared/routed swap: in Thm 1–3 the true gate is constant, so the two
 *     blocks can trade roles without changing the density. The loss is NOT
 *     symmetrised: it is the paper's D, comparing shared with shared and
 *     routed with routed. A fit that landed in the swapped labelling gets
 *     a large D; the initialisation (perturbed truth vs random) decides how
 *     often that happens and is reported by the caller.
 *  2. ReLU positive rescaling a·relu(b·x + c) = (a s)·relu((b·x + c)/s):
 *     with `align_relu`, every (fitted i, true j) pair is compared at the
 *     s > 0 that minimises ‖(a s, b/s, c/s) − (a*, b*, c*)‖ (a quartic in s,
 *     solved exactly); cells and terms use those aligned coordinates.
 *  3. softmax shift invariance (β0, β1) → (β0 − c0, β1 − c1): with
 *     `min_shift` the softmax losses (D1, D2, D5) are minimised over the
 *     common shift c ∈ R^{D+1} (Nelder–Mead from two starts: c = 0 and the
 *     shift matching total mass e^{β0} and the e^{β0}-weighted mean β1),
 *     cells recomputed at each c. Without it the fitted β are used as they
 *     are (then fix the last expert's gate to 0 on both sides beforehand).
 *  4. Thm 3 (all true β1 = 0): only ratios of σ(β0) are identified; with
 *     `sigmoid_scale`, D3 is minimised over a common scale s of the fitted
 *     σ(β0i) → s σ(β0i) (β0i → logit(s σ(β0i))), s ∈ (0, 1/max σ(β0i)],
 *     by a log-grid of 241 points and golden-section refinement.
 *     Observed (thm3, EM from the perturbed truth): in some replications
 *     the MLE leaves the sparse regime for the saturated one (all β0 ≪ 0,
 *     a large common β1 — there σ ≈ exp and the normalised sigmoid is a
 *     softmax in disguise); in the replication we compared, the saturated
 *     fit (Newton M-steps) had a log-likelihood 0.0022 nats/point above a
 *     fit that stayed near the truth (BFGS M-steps, same data, n = 1233).
 *     D3 as written is then dominated by ‖Δβ1‖² and reaches
 *     10²–10⁴. The loss is reported as written; medians are the robust
 *     summary.
 *  5. D4's Ǧ2 is whatever limit the caller passes (see moebench gmoe-limit);
 *     its routed atoms are used, its shared atoms ignored (shared terms are
 *     against the truth G1*). Thm 4 takes the inf over the set of KL
 *     minimisers; that set has several branches (which true routed atom
 *     the extra fitted atom duplicates) and ridges, so the caller may pass
 *     several limits (opts.limits): D4 is then the minimum over them.
 */
#ifndef MOE_VORONOI_H
#define MOE_VORONOI_H

#include "moe/gmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  MOE_VORONOI_D1 = 1, MOE_VORONOI_D2 = 2, MOE_VORONOI_D3 = 3,
  MOE_VORONOI_D4 = 4, MOE_VORONOI_D5 = 5
} moe_voronoi_kind;

typedef struct {
  moe_voronoi_kind kind;
  int align_relu;            /* pitfall 2 (default 1) */
  int min_shift;             /* pitfall 3, softmax losses (default 1) */
  int sigmoid_scale;         /* pitfall 4, D3 (default 1) */
  int topk;                  /* D5: K (1..k2*) */
  const moe_gmoe *limit;     /* D4: Ǧ2 (its routed atoms); required for D4 ... */
  const moe_gmoe *const *limits;  /* ... unless nlimits > 0: then D4 = min over these */
  int nlimits;
} moe_voronoi_opts;

void moe_voronoi_opts_default(moe_voronoi_opts *o, moe_voronoi_kind kind);

/* r(m) for a cell of m fitted atoms: 1 for m ≤ 1, 4, 6, then 7. */
int moe_voronoi_r(int m);

/* The loss D(fit, truth). fit and truth must share d and expert kinds;
 * the truth may have fewer atoms. MOE_EINVAL on mismatched shapes, a
 * missing limit for D4 or a bad topk for D5. */
int moe_voronoi_loss(const moe_gmoe *fit, const moe_gmoe *truth, const moe_voronoi_opts *o,
                     double *loss);

/* Cells without any shift: cell1 (k1 of fit) and cell2 (k2 of fit) get
 * the index of the true atom whose cell holds each fitted atom (routed
 * atoms are compared with `ref2`'s routed atoms, normally the truth). */
int moe_voronoi_cells(const moe_gmoe *fit, const moe_gmoe *truth, const moe_gmoe *ref2,
                      int align_relu, int *cell1, int *cell2);

/* Expert estimation error of the routed experts, gate-free: fitted routed
 * atoms are assigned to the nearest reference atom on (η, ν) (after ReLU
 * alignment if asked); the result is max ‖η_i − η_j‖ over the fitted atoms
 * in over-specified cells (|V| > 1), or over all atoms if every cell is
 * exact. With linear experts η = (η0, η1): the paper's rates for a
 * |V| = 2 cell are n^(-1/8) (η0, softmax), n^(-1/2) (normalised sigmoid,
 * dense regime, against Ǧ2). */
int moe_voronoi_routed_error(const moe_gmoe *fit, const moe_gmoe *ref, int align_relu, double *err);

/* Positive-rescaling alignment of a ReLU unit: p = (inner[ni], outer),
 * compared with pt (same packing). Returns the s > 0 minimising
 * ‖(inner/s, outer·s) − pt‖ and writes the aligned vector into out
 * (may alias p). Returns 1 (no change) when outer or inner is zero. */
double moe_voronoi_relu_align(int ni, const double *p, const double *pt, double *out);

#ifdef __cplusplus
}
#endif
#endif
