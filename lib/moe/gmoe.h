/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/gmoe.h — the paper's Gaussian mixture of experts with shared experts
 * (arXiv 2505.10860, eq. 1 and eq. 8), its sampler, log-likelihood, and
 * its maximum-likelihood fit by (generalised) EM.
 *
 *   f(y|x) = 1/2 Σ_{i<S} ω_i N(y | h1(x,κ_i), τ_i)
 *          + 1/2 Σ_{j<E} g_j(x) N(y | h2(x,η_j), ν_j)
 *
 * τ and ν are VARIANCES. The gate g is a softmax over u_j = β1_jᵀx + β0_j
 * (DeepSeek-V2) or a normalised sigmoid σ(u_j)/Σ_k σ(u_k) (DeepSeek-V3).
 * With top-K (App. F) the K experts with the largest β1_jᵀx are chosen
 * (ties: lower index), β0 is added afterwards and the softmax / normalised
 * sigmoid runs over the chosen ones only; the others get weight 0.
 *
 * Experts (paper §1.4):
 *   ReLU:   h1 = κ2 relu(κ1ᵀx + κ0)     h2 = η2 relu(η1ᵀx)      (no η0)
 *   linear: h1 = κ1ᵀx + κ0              h2 = η1ᵀx + η0          (κ2, η2 unused)
 *
 * Shape letters: N samples, D input width, S shared experts (k1),
 * E routed experts (k2).
 */
#ifndef MOE_GMOE_H
#define MOE_GMOE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <gsl/gsl_rng.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MOE_GMOE_SOFTMAX = 0, MOE_GMOE_NSIGMOID = 1 } moe_gmoe_gate;
typedef enum { MOE_GMOE_RELU = 0, MOE_GMOE_LINEAR = 1 } moe_gmoe_expert;

/* All arrays live in one allocation owned by the struct. Fields may be
 * read and written freely; the sizes (d, k1, k2) are fixed at alloc. */
typedef struct {
  int d, k1, k2;               /* D, S, E */
  moe_gmoe_gate gate;
  moe_gmoe_expert shared_kind, routed_kind;
  int topk;                    /* 0 = dense gate; else K in 1..E */
  double *omega;               /* (S) shared weights, > 0, sum 1 */
  double *kappa0;              /* (S) shared bias */
  double *kappa1;              /* (S, D) shared inner weights */
  double *kappa2;              /* (S) shared outer weight (ReLU only) */
  double *tau;                 /* (S) shared variances */
  double *beta0;               /* (E) gate biases */
  double *beta1;               /* (E, D) gate slopes */
  double *eta0;                /* (E) routed bias (linear only) */
  double *eta1;                /* (E, D) routed inner weights */
  double *eta2;                /* (E) routed outer weight (ReLU only) */
  double *nu;                  /* (E) routed variances */
  double *slab_;               /* private: the allocation */
} moe_gmoe;

/* A model with every parameter zero except ω = 1/S, κ2 = η2 = 1,
 * τ = ν = 1. NULL (error set) if d < 1, k1 < 1, k2 < 1 or no memory. */
moe_gmoe *moe_gmoe_alloc(int d, int k1, int k2, moe_gmoe_gate gate,
                         moe_gmoe_expert shared_kind, moe_gmoe_expert routed_kind);
void moe_gmoe_free(moe_gmoe *m);
moe_gmoe *moe_gmoe_clone(const moe_gmoe *m);
/* Copy values between models of the same shape (MOE_EINVAL otherwise). */
int moe_gmoe_copy(moe_gmoe *dst, const moe_gmoe *src);

/* Check constraints: d, k ≥ 1, 0 ≤ topk ≤ k2, ω > 0 summing to 1 (1e-9),
 * variances > 0, all finite. MOE_EINVAL / MOE_EDOM with a message. */
int moe_gmoe_validate(const moe_gmoe *m);

/* The true parameters of the paper's experiments (App. G.1): "thm1",
 * "thm2", "thm3", "thm4" (k1* = 1, k2* = 2), plus
 * "gatecmp": the Thm 4 experts (shared ReLU, routed linear) with gate
 * slopes (5, -3) and biases (-0.5, 0.5), so both the softmax and the
 * normalised-sigmoid gate depend on x (used to compare the two gates on
 * one parameter set; its `gate` field is softmax, override it).
 * For d > 1 every inner weight vector (κ1, β1, η1) is extended by
 * θ_k = θ_1 · (-1/2)^(k-1), k = 2..d, so the d = 1 values are the paper's.
 * Exact representations of thm4 with three routed atoms (k2 = 3; see
 * doc/thm4-limit.md for the derivation):
 *   "thm4-pstar": P*, the same conditional density as thm4 (KL = 0):
 *     routed (β0, β1) = (−ln(e−2), 0) with expert 1, (−ln(e−2), 0) with
 *     expert 2 and (−1/2, −β1*) with expert 2, since
 *     σ(z+½)/σ(z−½) = 1 + (e−1)σ(−z−½);
 *   "thm4-pad1", "thm4-pad2": the truth padded with a vanishing third
 *     atom: expert J's (η, ν) and slope, β0 = β0*_J − (15.5 + 3‖β1*_J‖₁)
 *     (gate weight below ~3e-7 of atom J's on [−3, 3]^d).
 * On success *out is a new model (free with moe_gmoe_free).
 * MOE_EINVAL for an unknown name (message lists the known ones) or d < 1. */
int moe_gmoe_truth(const char *name, int d, moe_gmoe **out);

/* Expert means and the gate at one input x (D). */
double moe_gmoe_shared_mean(const moe_gmoe *m, int i, const double *x);
double moe_gmoe_routed_mean(const moe_gmoe *m, int j, const double *x);
/* g (E): the routed gate weights at x (zeros outside the top-K). */
void moe_gmoe_gate_eval(const moe_gmoe *m, const double *x, double *g);

/* Conditional density f(y|x) and its log (log-sum-exp, no underflow). */
double moe_gmoe_density(const moe_gmoe *m, const double *x, double y);
double moe_gmoe_logdensity(const moe_gmoe *m, const double *x, double y);

/* Draw n pairs: X (N, D) ~ U[-3,3]^D, then Y | X from the mixture (first
 * the block with probability 1/2, then the expert, then the Gaussian). */
int moe_gmoe_sample(const moe_gmoe *m, gsl_rng *r, size_t n, double *X, double *Y);

/* Mean log-likelihood (1/n) Σ log f(Y_i | X_i). */
int moe_gmoe_loglik(const moe_gmoe *m, size_t n, const double *X, const double *Y,
                    double *ll);

/* Text form (used for cached limits such as Thm 4's Ǧ2):
 *   moebench-gmoe 1
 *   d 1
 *   k1 2
 *   k2 3
 *   gate nsigmoid            (softmax | nsigmoid)
 *   shared_expert relu       (relu | linear)
 *   routed_expert linear
 *   topk 0
 *   shared OMEGA KAPPA0 KAPPA1[1..D] KAPPA2 TAU          (k1 lines)
 *   routed BETA0 BETA1[1..D] ETA0 ETA1[1..D] ETA2 NU     (k2 lines)
 * Lines starting with '#' and blank lines are ignored anywhere; numbers
 * are written with %.17g so a round trip is exact. Errors from the
 * reader name the file and line: "PATH:LINE: message" (MOE_EIO if it
 * cannot be opened, MOE_EFORMAT otherwise). */
int moe_gmoe_write(FILE *f, const moe_gmoe *m);
int moe_gmoe_read(const char *path, moe_gmoe **out);
/* A file may hold several models one after the other, each starting with
 * its own 'moebench-gmoe 1' line (e.g. the branches of a cached limit);
 * moe_gmoe_read requires exactly one, moe_gmoe_read_all returns them all
 * (*out: an array of *count models; free with moe_gmoe_free_all). */
int moe_gmoe_read_all(const char *path, moe_gmoe ***out, int *count);
void moe_gmoe_free_all(moe_gmoe **models, int count);

/* ---- Maximum likelihood by EM ------------------------------------------
 *
 * Generalised EM in GSL's init / iterate / test shape. One iteration:
 *   E-step: responsibilities r (N, S+E) at the current parameters;
 *   M-step, block by block (the expected complete log-likelihood is a sum
 *   of independent blocks given r, so improving each block improves Q):
 *     ω       closed form (normalised responsibility mass);
 *     linear experts: weighted least squares (normal equations, Cholesky),
 *             then the variance in closed form — an exact maximiser;
 *     ReLU experts: Gauss-Newton (default) or BFGS (gsl_multimin
 *             bfgs2, analytic gradient) on the weighted squared error from
 *             the current point, at most inner_iter steps, accepted only
 *             if it decreases; then the variance in closed form;
 *     gate:   -Σ r log g minimised by a modified Newton method (exact
 *             Hessian, eigenvalues floored to be positive, step halving)
 *             or BFGS (moe_gmoe_em_set_gate_solver), from the current
 *             point, at most inner_iter steps, accepted only if it decreases.
 *             With top-K the chosen sets are held fixed during the inner
 *             solve, and the step is then accepted only if the objective
 *             with the sets the new slopes choose decreases.
 *   Variances are kept ≥ var_floor (compact Θ, assumption A.1): the
 *   clamped closed form is still the constrained maximiser.
 * Hence the log-likelihood never decreases (up to rounding).
 *
 * Stopping rule (moe_gmoe_em_test), ℓ_t = mean log-likelihood after
 * iteration t (i.e. at the parameters the M-step produced):
 *   MOE_GMOE_TOL_REL:   |ℓ_t - ℓ_{t-1}| ≤ tol · |ℓ_{t-1}|   (paper: 1e-6)
 *   MOE_GMOE_TOL_ABS:   |ℓ_t - ℓ_{t-1}| ≤ tol
 *   MOE_GMOE_TOL_TOTAL: N |ℓ_t - ℓ_{t-1}| ≤ tol   (the TOTAL log-likelihood:
 *                       a tolerance that scales with n; the relative rule on
 *                       the mean allows |Δ N ℓ| ≈ 0.1–0.2 per iteration at
 *                       N = 10^5, and stops far from the maximum)
 * After a SQUAREM cycle (moe_gmoe_em_squarem) ℓ_{t-1} is the value before
 * the cycle.
 */
typedef enum { MOE_GMOE_TOL_REL = 0, MOE_GMOE_TOL_ABS = 1, MOE_GMOE_TOL_TOTAL = 2 } moe_gmoe_tol_kind;

#define MOE_GMOE_CONTINUE (-1)   /* moe_gmoe_em_test: not converged yet */

typedef struct moe_gmoe_em moe_gmoe_em;

/* Workspace for fitting models shaped like `shape` on up to nmax points. */
moe_gmoe_em *moe_gmoe_em_alloc(const moe_gmoe *shape, size_t nmax);
void moe_gmoe_em_free(moe_gmoe_em *w);
/* Tuning (defaults: inner_iter 1, var_floor 1e-6). */
void moe_gmoe_em_set_inner(moe_gmoe_em *w, int inner_iter, double var_floor);
/* Gate M-step solver: 0 = modified Newton (default: exact Hessian, one
 * pass per step, a few steps), 1 = BFGS (gsl bfgs2, ~4 passes per
 * iteration). Both accept only decreases of the gate objective. */
void moe_gmoe_em_set_gate_solver(moe_gmoe_em *w, int use_bfgs);
/* ReLU expert M-step solver: 0 = Gauss-Newton (default; JᵀWJ eigen-solved,
 * step halving), 1 = BFGS. Both accept only decreases. */
void moe_gmoe_em_set_expert_solver(moe_gmoe_em *w, int use_bfgs);
/* Start EM from model m (which the workspace then updates in place) on
 * data X (N, D), Y (N); the data must outlive the fit. Computes ℓ_0. */
int moe_gmoe_em_init(moe_gmoe_em *w, moe_gmoe *m, size_t n, const double *X, const double *Y);
/* One E+M step. MOE_EDOM if the likelihood became non-finite. */
int moe_gmoe_em_iterate(moe_gmoe_em *w);
/* MOE_OK if converged by the rule above, MOE_GMOE_CONTINUE otherwise
 * (also before the first iteration). */
int moe_gmoe_em_test(const moe_gmoe_em *w, double tol, moe_gmoe_tol_kind kind);
double moe_gmoe_em_loglik(const moe_gmoe_em *w);     /* ℓ_t */
int moe_gmoe_em_iterations(const moe_gmoe_em *w);    /* t */

/* The full likelihood. θ packs every free parameter unconstrained, P of
 * them (moe_gmoe_em_nparams): per shared expert (a, κ0, κ1[D], κ2 if
 * ReLU, s) with ω = softmax(a), per routed expert (β0, β1[D], η0 if
 * linear, η1[D], η2 if ReLU, s), every variance = var_floor + exp(s).
 * moe_gmoe_em_gradient: ∇_θ ℓ (mean log-likelihood) at the current point
 * by Fisher's identity (the gradient of Q at the E-step's responsibilities;
 * top-K sets held fixed) into grad (P) if not NULL, and *norm =
 * √N ‖∇_θ ℓ‖₂ = ‖∇ total‖/√N if not NULL — the score in units of its
 * sampling sd, so one tolerance serves every N.
 * moe_gmoe_em_score_outer: the same gradient and B (P, P) = (1/N) Σ_n
 * s_n s_nᵀ, the outer product of the per-sample scores s_n = ∇_θ log
 * p(y_n | x_n) (BHHH; for a correct model it estimates the Fisher
 * information, e.g. for standard errors).
 * moe_gmoe_em_polish: second order first (moe_gmoe_em_set_polish, on by
 * default): at most 30 Levenberg-Marquardt iterations with B as the
 * curvature, then Newton with the analytic Hessian of
 * moe_gmoe_em_hessian at every step (|eigenvalues| floored, step
 * halving), which stops as flat
 * when 10 iterations gain less than 1e-2 in TOTAL log-likelihood. Then,
 * if still short of the test, rounds of quasi-Newton (gsl bfgs2 on −ℓ,
 * restarted from the best point when its line search stalls), each
 * followed by three SQUAREM cycles. Until *grad_norm ≤ grad_tol
 * (*how = 1), a flat stretch (Newton's, or a BFGS round gaining less
 * than 1e-3 in total log-likelihood: *how = 2, a flat maximum or a kink —
 * a ReLU expert's likelihood is not differentiable where a data point
 * sits on the hinge, so there the gradient norm need not be small), or
 * max_iter iterations of all three kinds together (*how = 0). ℓ never
 * decreases; the model, responsibilities and ℓ are left at the best
 * point. MOE_EDOM if the likelihood became non-finite there.
 * moe_gmoe_em_squarem: one SQUAREM cycle (Varadhan & Roland 2008, S3):
 * two EM maps θ0 → θ1 → θ2, the extrapolation θ' = θ0 − 2αr + α²v
 * (r = θ1 − θ0, v = θ2 − 2θ1 + θ0, α = −‖r‖/‖v‖), then one EM map from θ';
 * accepted only if its ℓ ≥ ℓ(θ2) (else α halves towards −1, three times,
 * then θ2 itself): ℓ never decreases. Every EM map counts as an iteration. */
int moe_gmoe_em_nparams(const moe_gmoe_em *w);
/* θ of the current model (P values); set: the model from θ, then an
 * E-step (ℓ and responsibilities at θ). MOE_EDOM on a non-finite θ or ℓ. */
int moe_gmoe_em_get_params(const moe_gmoe_em *w, double *theta);
int moe_gmoe_em_set_params(moe_gmoe_em *w, const double *theta);
int moe_gmoe_em_gradient(moe_gmoe_em *w, double *grad, double *norm);
int moe_gmoe_em_score_outer(moe_gmoe_em *w, double *grad, double *B);
/* ∇²_θ ℓ (mean log-likelihood; P, P, row-major, symmetric) at the current
 * point, analytically by Louis' identity (complete-data Hessians and
 * score outer products under the responsibilities, minus the score's
 * outer product), in one pass over the data; top-K sets held fixed and a
 * ReLU hinge's kink ignored, as in the gradient. grad (P) may be NULL,
 * else receives the gradient. MOE_ENOMEM if its O(P²) scratch fails. */
int moe_gmoe_em_hessian(moe_gmoe_em *w, double *grad, double *H);
/* polish: 1 (default) LM and Newton before the BFGS rounds; 0 BFGS
 * rounds only (the first study's polish, kept for comparison) */
void moe_gmoe_em_set_polish(moe_gmoe_em *w, int second_order);
int moe_gmoe_em_polish(moe_gmoe_em *w, int max_iter, double grad_tol, int *iters, double *grad_norm, int *how);
int moe_gmoe_em_squarem(moe_gmoe_em *w);

/* The fitting driver: restarts × (init; SQUAREM cycles, or single EM
 * steps, until the test or max_iter EM maps; then the polish of the full
 * likelihood, moe_gmoe_em_polish), keeping the restart with the best final
 * log-likelihood. The paper's rule is {tol 1e-6, TOL_REL, inner_iter 1,
 * squarem 0, polish 0}; the defaults aim at the MLE itself. */
typedef enum { MOE_GMOE_INIT_TRUTH = 0, MOE_GMOE_INIT_RANDOM = 1 } moe_gmoe_init_kind;
/* How INIT_TRUTH starts an extra routed atom that duplicates a true atom
 * of a normalised-sigmoid gate: COPY gives it the true slope β1 (the gate
 * is then wrong wherever the slope matters, e.g. x > 1 on thm4); SLOPE0
 * gives the copies slope 0 and the split bias logit(σ(β0)/m) (the first
 * copy keeps the true slope). Softmax splits are exact either way
 * (β0 − log m, same slope). For the exact over-parameterised start pass an
 * exact representation as `truth` (e.g. moe_gmoe_truth("thm4-pstar")). */
typedef enum { MOE_GMOE_START_SLOPE0 = 0, MOE_GMOE_START_COPY = 1 } moe_gmoe_start_kind;

typedef struct {
  int restarts;                /* ≥ 1 (default 1) */
  moe_gmoe_init_kind init;     /* default MOE_GMOE_INIT_TRUTH */
  double init_sd;              /* perturbation sd for INIT_TRUTH (default 0.5) */
  int max_iter;                /* EM maps at most (default 1000, the paper's) */
  double tol;                  /* default 1 (with the second-order polish; paper: 1e-6 relative) */
  moe_gmoe_tol_kind tol_kind;  /* default MOE_GMOE_TOL_TOTAL (paper: MOE_GMOE_TOL_REL) */
  int inner_iter;              /* solver steps per M-step block (default 2) */
  double var_floor;            /* default 1e-6 */
  int bfgs;                    /* M-step solvers: 1 BFGS for gate and ReLU experts; 0 Newton /
                                  Gauss-Newton; -1 (default) auto: BFGS for a normalised-sigmoid
                                  gate, Newton for softmax, Gauss-Newton for ReLU experts */
  int dup_routed;              /* INIT_TRUTH: extra routed atoms copy this true atom (-1: random, default) */
  moe_gmoe_start_kind start;   /* INIT_TRUTH duplicates (default SLOPE0) */
  int squarem;                 /* 1 (default): SQUAREM cycles instead of single EM steps */
  int polish;                  /* polish iterations at most (default 300; 0: none) */
  int polish_bfgs;             /* 1: polish by BFGS rounds only; 0 (default): LM, Newton, then BFGS */
  double grad_tol;             /* polish until √N ‖∇ℓ‖ ≤ grad_tol (default 1e-2) */
} moe_gmoe_fit_opts;

typedef struct {
  double loglik;               /* best restart's final mean log-likelihood */
  int iterations;              /* its EM iterations */
  int converged;               /* its converged flag */
  int best_restart;            /* 0-based */
  int restarts_used;
  long total_iterations;       /* over all restarts */
  double grad_norm;            /* best restart's final √N ‖∇ℓ‖ (moe_gmoe_em_gradient) */
  int polish_iters;            /* its polish iterations (LM, Newton and BFGS) */
  int stationary;              /* grad_norm ≤ grad_tol, or the polish ended flat (how = 2) */
  int polish_how;              /* the polish's *how (-1: no polish) */
  double loglik_em;            /* its log-likelihood before the polish */
} moe_gmoe_fit_info;

void moe_gmoe_fit_opts_default(moe_gmoe_fit_opts *o);

/* Initial point for restart `r` (exposed for tests and tools).
 * INIT_TRUTH: the truth (k1* ≤ k1, k2* ≤ k2, same d/kinds) embedded in the
 *   bigger model: every true atom gets at least one fitted atom, the
 *   extra fitted atoms copy true atoms chosen at random; the copies share
 *   the weight (ω split, softmax β0 - log m, sigmoid β0 = logit(σ(β0)/m);
 *   the sigmoid split preserves the density only where the slopes are 0,
 *   which is the point of the paper's sparse/dense regimes);
 *   then every location parameter gets N(0, init_sd²) noise and every
 *   variance a factor exp(N(0, (init_sd/5)²)).
 * INIT_RANDOM: ignores truth; draws parameters from scales taken from the
 *   data: biases ~ N(mean Y, sd Y²), slopes ~ N(0, (sd Y/ sd X)²) (ReLU
 *   inner weights ~ N(0, 3²), outer ~ N(0, sd Y²)), gate ~ N(0, 1),
 *   ω ~ Dirichlet(1), variances = var Y · U(0.2, 1). */
int moe_gmoe_init_params(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_init_kind kind,
                         double init_sd, gsl_rng *r, size_t n, const double *X,
                         const double *Y);

/* INIT_TRUTH with an explicit duplicate rule (dup_routed: -1 random, else
 * the true routed atom the extra atoms copy). */
int moe_gmoe_init_start(moe_gmoe *fit, const moe_gmoe *truth, moe_gmoe_start_kind start, int dup_routed,
                        double init_sd, gsl_rng *r);

/* Fit `fit` (in: shape and kinds; out: best parameters) to (X, Y).
 * `truth` is needed for INIT_TRUTH (may be NULL for INIT_RANDOM). Restart
 * k uses the stream moe_seed_derive(seed, "restart-k"). info may be NULL. */
int moe_gmoe_fit(moe_gmoe *fit, const moe_gmoe *truth, size_t n, const double *X,
                 const double *Y, const moe_gmoe_fit_opts *o, uint64_t seed,
                 moe_gmoe_fit_info *info);

/* ---- Gradients (exposed so tests can compare them with differences) ----
 * Block objectives used by the M-step, on data (X, Y, weights w (N)):
 *   expert: (1/Σw) Σ w_n (y_n - h(x_n; p))², p packed as
 *           shared ReLU (κ0, κ1[D], κ2), routed ReLU (η1[D], η2);
 *   gate:   -(1/N) Σ_n Σ_j R_nj log g_j(x_n; β), β packed (β0[E], β1[E,D]),
 *           R (N, E) row-major.
 * Each returns the objective and writes the gradient into grad. */
double moe_gmoe_expert_objective(moe_gmoe_expert kind, int has_bias, int d, size_t n,
                                 const double *X, const double *Y, const double *w,
                                 const double *p, double *grad);
double moe_gmoe_gate_objective(const moe_gmoe *m, size_t n, const double *X,
                               const double *R, const double *beta, double *grad);
/* The gate objective's gradient (P) and Hessian H (P, P), P = E(D+1), and
 * the objective in *f (may be NULL). At most 64 routed experts / inputs. */
int moe_gmoe_gate_hessian(const moe_gmoe *m, size_t n, const double *X, const double *R,
                          const double *beta, double *grad, double *H, double *f);

#ifdef __cplusplus
}
#endif
#endif
