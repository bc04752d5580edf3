/* SPDX-License-Identifier: GPL-3.0-or-later */
/* real.h — the scalar type of a type-generic module instantiation.
 *
 * Each numerical module is written once, in lib/nn/<module>_impl.h,
 * against REAL and the macros below, and compiled twice by
 * lib/nn/<module>.c:
 *   #define MOE_REAL_DOUBLE 0 → float,  names as written (moe_layer_forward)
 *   #define MOE_REAL_DOUBLE 1 → double, names suffixed  (moe_layer_forward_f64)
 * float is what training runs in; double exists so finite-difference
 * gradient checks can be tight (1e-6) against the very same code. Not
 * installed. Include it again after changing MOE_REAL_DOUBLE. */
#undef REAL
#undef SFX
#undef R_GEMM
#undef R_AXPY
#undef R_EXP
#undef R_ERF
#undef R_TANH
#undef R_SQRT
#undef R_LOG
#undef R_FABS
#undef R_NORMAL
#undef R_FIRST_NONFINITE
#undef R_VEXP
#undef R_VERF
#undef R_VTANH
#undef R_VEXP_LIBM

#if MOE_REAL_DOUBLE
#define REAL double
#define SFX(name) name##_f64
#define R_GEMM cblas_dgemm
#define R_AXPY cblas_daxpy
#define R_EXP exp
#define R_ERF erf
#define R_TANH tanh
#define R_SQRT sqrt
#define R_LOG log
#define R_FABS fabs
#define R_NORMAL moe_rng_normal_f64
#define R_FIRST_NONFINITE moei_first_nonfinite_d
#define R_VEXP moei_vexp_f64
#define R_VERF moei_verf_f64
#define R_VTANH moei_vtanh_f64
#define R_VEXP_LIBM moei_vexp_libm_f64
#else
#define REAL float
#define SFX(name) name
#define R_GEMM cblas_sgemm
#define R_AXPY cblas_saxpy
#define R_EXP expf
#define R_ERF erff
#define R_TANH tanhf
#define R_SQRT sqrtf
#define R_LOG logf
#define R_FABS fabsf
#define R_NORMAL moe_rng_normal_f32
#define R_FIRST_NONFINITE moei_first_nonfinite_f
#define R_VEXP moei_vexp
#define R_VERF moei_verf
#define R_VTANH moei_vtanh
#define R_VEXP_LIBM moei_vexpf_libm /* R_EXP's bits, vmath.h */
#endif

/* C11 with _POSIX_C_SOURCE does not promise M_SQRT1_2 and friends. */
#ifndef MOE_SQRT1_2
#define MOE_SQRT1_2 0.70710678118654752440     /* 1/sqrt(2) */
#define MOE_INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */
#endif
