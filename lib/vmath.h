/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vmath.h — element-wise exp, erf, tanh (and log for double) over arrays,
 * through SLEEF's vector math library; not installed.
 *
 *   moei_vexp(n, x, y)      y_i = exp(x_i)      (float;  _f64: double)
 *   moei_verf(n, x, y)      y_i = erf(x_i)
 *   moei_vtanh(n, x, y)     y_i = tanh(x_i)
 *   moei_vlog_f64(n, x, y)  y_i = log(x_i)      (double only)
 * y may be x (in place); any n >= 0, any alignment.
 *
 * Accuracy: SLEEF's u10 kernels, documented error bound 1.0 ULP for exp,
 * erf, tanh and log in float and double (SLEEF's reference gives tanhf as
 * 1.0001 ULP). Measured here against double-precision glibc on 8·10⁶
 * floats in [−20, 20]: exp 0.97, erf 0.83, tanh 1.00 ULP (both kernel
 * families below); double exp against long double: 0.85 ULP. glibc's own
 * expf/erff/tanhf are within 1–2 ULP too, so a tolerance that held with
 * libm holds with these.
 *
 * Kernels: on x86-64 with AVX-512F, SLEEF's "finz" family at 16 floats or
 * 8 doubles a vector; with AVX2 and FMA, the same family at 8 or 4; on
 * other x86-64, its "cinz" family with SSE2 (4 or 2); elsewhere the scalar
 * cinz kernels. finz and cinz are SLEEF's deterministic families: a finz
 * kernel returns the same bits on every FMA machine whatever its vector
 * width (t/test_vmath checks AVX-512F against AVX2 bit for bit), a cinz
 * kernel the same bits on every machine without FMA (the SSE2 and scalar
 * cinz kernels agree bit for bit on 8·10⁶ inputs here). The two families differ in the last bit now and then, as BLAS
 * kernels do, so results are bit-identical on one machine (and across
 * machines of one family) and equal within tolerance elsewhere. The tail
 * of an array that does not fill a vector is padded and run through the
 * same vector kernel, so exp(x) never depends on n or on x's position.
 * None of these functions sets errno.
 *
 * Why SLEEF: glibc's scalar expf/erff/tanhf cost 3–20 ns an element and
 * the compiler cannot vectorise calls that may set errno; SLEEF is
 * packaged by Debian (libsleef-dev), documents its ULP bounds, and its
 * deterministic families keep results reproducible, which glibc's libmvec
 * (no erf or tanh, results tied to the ISA it picks) does not offer. Per
 * element on this machine (AVX2): exp 3.0 → 0.38 ns, erf 9.3 → 5.8 ns,
 * tanh 20 → 2.5 ns. AVX-512F against AVX2, double (this machine, a Xeon
 * with AVX-512): log 3.5 → 1.4 ns, exp 1.7 → 1.0 ns. */
#ifndef MOE_VMATH_H
#define MOE_VMATH_H

#include <stddef.h>

void moei_vexp(size_t n, const float *x, float *y);
void moei_verf(size_t n, const float *x, float *y);
void moei_vtanh(size_t n, const float *x, float *y);
void moei_vexp_f64(size_t n, const double *x, double *y);
void moei_verf_f64(size_t n, const double *x, double *y);
void moei_vtanh_f64(size_t n, const double *x, double *y);
void moei_vlog_f64(size_t n, const double *x, double *y);

/* y_i = expf(x_i) (float; _f64: exp) with the bits of the C library's
 * own expf/exp, the function the element-wise code called before (the
 * attention's softmax). For float, where the C library is glibc's and the
 * CPU has AVX2 and FMA, 8 lanes at a time in the operations of glibc's
 * expf as glibc runs it there (__expf_fma: sysdeps/ieee754/flt-32/e_expf.c
 * with its multiplications and additions fused as that build fuses them,
 * the same table and polynomial); a lane whose |x| >= 88 or NaN, and the
 * tail of an array, call expf itself. The first call compares the vector
 * path with expf on 2^17 inputs spread over every float and over
 * [-88, 88]; on any difference (another C library, another build of it)
 * every element calls expf. t/test_vmath compares them on 2^26 more.
 * y may be x. moei_vexpf_libm_vector() says whether the vector path runs. */
void moei_vexpf_libm(size_t n, const float *x, float *y);
void moei_vexp_libm_f64(size_t n, const double *x, double *y);
int moei_vexpf_libm_vector(void);

/* The kernel tier the functions above run: the widest this CPU has,
 * unless moei_vmath_force_isa() chose a narrower one. */
enum { MOEI_VMATH_SSE2 = 0, MOEI_VMATH_AVX2 = 1, MOEI_VMATH_AVX512 = 2 };
int moei_vmath_isa(void);
/* For tests: run tier isa (an MOEI_VMATH_* value) from now on, or the
 * detected one again if isa < 0. -1 if this CPU lacks that tier. Not
 * thread-safe: call it before any thread uses these functions. */
int moei_vmath_force_isa(int isa);

#endif
