/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vmath.c — element-wise math through SLEEF (see vmath.h for the accuracy
 * and determinism contract), and the C library's expf over arrays. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "vmath.h"

void moei_vexp_libm_f64(size_t n, const double *x, double *y)
{
  for (size_t i = 0; i < n; i++)
    y[i] = exp(x[i]);
}

static void vexpf_scalar(size_t n, const float *x, float *y)
{
  for (size_t i = 0; i < n; i++)
    y[i] = expf(x[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
/* sleef.h declares its 256- and 512-bit kernels only where __AVX__ and
 * __AVX512F__ are defined. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#include <sleef.h>
#pragma GCC pop_options

/* Full vectors straight from x to y, then the tail through a zero-padded
 * vector, so every element passes through the same kernel whatever n. */
#define VMATH_LOOP(T, W, LOAD, STORE, kernel)                                 \
  size_t i = 0;                                                               \
  for (; i + W <= n; i += W)                                                  \
    STORE(y + i, kernel(LOAD(x + i)));                                        \
  if (i < n) {                                                                \
    T b[W] = {0};                                                             \
    memcpy(b, x + i, (n - i) * sizeof *b);                                    \
    STORE(b, kernel(LOAD(b)));                                                \
    memcpy(y + i, b, (n - i) * sizeof *b);                                    \
  }

/* Three tiers, all SLEEF deterministic kernels: AVX-512F (finz, 16
 * floats / 8 doubles a vector) or AVX2 + FMA (finz, 8 / 4), which return
 * the same bits (both are the finz family), else SSE2 (cinz, 4 / 2; every
 * x86-64). moei_vmath_isa() picks the widest the CPU has, unless a test
 * forced one with moei_vmath_force_isa(). */
#define VMATH(name, T, f16, f8, f4)                                           \
  __attribute__((target("avx512f"))) static void name##_avx512(size_t n, const T *x, T *y) \
  {                                                                           \
    VMATH_LOOP(T, 64 / sizeof(T), VLOAD512_##T, VSTORE512_##T, f16)           \
  }                                                                           \
  __attribute__((target("avx2,fma"))) static void name##_avx2(size_t n, const T *x, T *y) \
  {                                                                           \
    VMATH_LOOP(T, 32 / sizeof(T), VLOAD256_##T, VSTORE256_##T, f8)            \
  }                                                                           \
  static void name##_sse2(size_t n, const T *x, T *y)                         \
  {                                                                           \
    VMATH_LOOP(T, 16 / sizeof(T), VLOAD128_##T, VSTORE128_##T, f4)            \
  }                                                                           \
  void name(size_t n, const T *x, T *y)                                       \
  {                                                                           \
    switch (moei_vmath_isa()) {                                               \
    case MOEI_VMATH_AVX512: name##_avx512(n, x, y); break;                    \
    case MOEI_VMATH_AVX2: name##_avx2(n, x, y); break;                        \
    default: name##_sse2(n, x, y); break;                                     \
    }                                                                         \
  }
#define VLOAD512_float _mm512_loadu_ps
#define VSTORE512_float _mm512_storeu_ps
#define VLOAD512_double _mm512_loadu_pd
#define VSTORE512_double _mm512_storeu_pd
#define VLOAD256_float _mm256_loadu_ps
#define VSTORE256_float _mm256_storeu_ps
#define VLOAD128_float _mm_loadu_ps
#define VSTORE128_float _mm_storeu_ps
#define VLOAD256_double _mm256_loadu_pd
#define VSTORE256_double _mm256_storeu_pd
#define VLOAD128_double _mm_loadu_pd
#define VSTORE128_double _mm_storeu_pd

static int vmath_forced = -1;   /* set only by tests, before any use */

static int vmath_detect(void)
{
  if (__builtin_cpu_supports("avx512f")) return MOEI_VMATH_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MOEI_VMATH_AVX2;
  return MOEI_VMATH_SSE2;
}

int moei_vmath_isa(void) { return vmath_forced >= 0 ? vmath_forced : vmath_detect(); }

int moei_vmath_force_isa(int isa)
{
  if (isa < 0) { vmath_forced = -1; return 0; }
  if (isa > vmath_detect()) return -1;
  vmath_forced = isa;
  return 0;
}

VMATH(moei_vexp, float, Sleef_finz_expf16_u10avx512f, Sleef_finz_expf8_u10avx2, Sleef_cinz_expf4_u10sse2)
VMATH(moei_verf, float, Sleef_finz_erff16_u10avx512f, Sleef_finz_erff8_u10avx2, Sleef_cinz_erff4_u10sse2)
VMATH(moei_vtanh, float, Sleef_finz_tanhf16_u10avx512f, Sleef_finz_tanhf8_u10avx2, Sleef_cinz_tanhf4_u10sse2)
VMATH(moei_vexp_f64, double, Sleef_finz_expd8_u10avx512f, Sleef_finz_expd4_u10avx2, Sleef_cinz_expd2_u10sse2)
VMATH(moei_verf_f64, double, Sleef_finz_erfd8_u10avx512f, Sleef_finz_erfd4_u10avx2, Sleef_cinz_erfd2_u10sse2)
VMATH(moei_vtanh_f64, double, Sleef_finz_tanhd8_u10avx512f, Sleef_finz_tanhd4_u10avx2, Sleef_cinz_tanhd2_u10sse2)
VMATH(moei_vlog_f64, double, Sleef_finz_logd8_u10avx512f, Sleef_finz_logd4_u10avx2, Sleef_cinz_logd2_u10sse2)

/* ---- expf as glibc computes it (vmath.h) ----
 * glibc 2.28+'s expf, as its FMA build (__expf_fma) runs it:
 *   xd = (double)x;  kd0 = fma(InvLn2N, xd, SHIFT);  ki = bits(kd0);
 *   kd = kd0 − SHIFT;  r = fma(InvLn2N, xd, −kd);
 *   s = double(T[ki % 32] + (ki << 47));
 *   z = fma(r, C0, C1);  r2 = r·r;  y = fma(r, C2, 1);  y = fma(z, r2, y);
 *   return (float)(y·s)
 * for |x| < 88 (top 12 bits of |x| <= 0x42a); other lanes call expf.
 * The constants are glibc's __exp2f_data (e_exp2f_data.c): tab,
 * invln2_scaled, poly_scaled, shift. */
static const uint64_t vexpf_tab[32] = {
  0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
  0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
  0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
  0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
  0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
  0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
  0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
  0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

__attribute__((target("avx2,fma"))) static inline __m128 vexpf4_fma(__m128 x)
{
  const __m256d invln2n = _mm256_set1_pd(0x1.71547652b82fep+5), shift = _mm256_set1_pd(0x1.8p+52);
  const __m256d c0 = _mm256_set1_pd(0x1.c6af84b912394p-20), c1 = _mm256_set1_pd(0x1.ebfce50fac4f3p-13);
  const __m256d c2 = _mm256_set1_pd(0x1.62e42ff0c52d6p-6), one = _mm256_set1_pd(1.0);
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d kd0 = _mm256_fmadd_pd(invln2n, xd, shift);
  const __m256i ki = _mm256_castpd_si256(kd0);
  const __m256d kd = _mm256_sub_pd(kd0, shift);
  const __m256d r = _mm256_fmsub_pd(invln2n, xd, kd);
  const __m256i t = _mm256_add_epi64(
    _mm256_i64gather_epi64((const long long *)vexpf_tab, _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8),
    _mm256_slli_epi64(ki, 47));
  const __m256d z = _mm256_fmadd_pd(r, c0, c1), r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(r, c2, one);
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, _mm256_castsi256_pd(t)));
}

__attribute__((target("avx2,fma"))) static void vexpf_fma(size_t n, const float *x, float *y)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    const __m256 e = _mm256_set_m128(vexpf4_fma(_mm256_extractf128_ps(xv, 1)),
                                     vexpf4_fma(_mm256_castps256_ps128(xv)));
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(xv), 20),
                                         _mm256_set1_epi32(0x7ff));
    const int far = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(0x42a))));
    if (far) {
      float xs[8], es[8];
      _mm256_storeu_ps(xs, xv);
      _mm256_storeu_ps(es, e);
      for (int k = 0; k < 8; k++)
        if (far >> k & 1)
          es[k] = expf(xs[k]);
      memcpy(y + i, es, sizeof es);
    } else {
      _mm256_storeu_ps(y + i, e);
    }
  }
  vexpf_scalar(n - i, x + i, y + i);
}

static int vexpf_vector;
static pthread_once_t vexpf_once = PTHREAD_ONCE_INIT;

/* The vector path on 2^17 inputs against expf: every 65537th bit pattern
 * (NaNs, infinities, subnormals, both signs) and 2^16 points of [-88, 88]. */
static void vexpf_init(void)
{
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return;
  enum { M = 1 << 16 };
  static float xs[2 * M], ys[2 * M];
  for (uint32_t i = 0; i < M; i++) {
    uint32_t u = i * 65537u;
    memcpy(xs + i, &u, sizeof u);
    xs[M + i] = -88.0f + 176.0f * (float)i / (float)M;
  }
  vexpf_fma(2 * M, xs, ys);
  for (size_t i = 0; i < 2 * M; i++) {
    const float e = expf(xs[i]);
    if (memcmp(&e, ys + i, sizeof e))
      return;
  }
  vexpf_vector = 1;
}

int moei_vexpf_libm_vector(void)
{
  pthread_once(&vexpf_once, vexpf_init);
  return vexpf_vector;
}

void moei_vexpf_libm(size_t n, const float *x, float *y)
{
  if (moei_vexpf_libm_vector())
    vexpf_fma(n, x, y);
  else
    vexpf_scalar(n, x, y);
}

#else /* other compilers and architectures: SLEEF's scalar cinz kernels */
#include <sleef.h>

int moei_vmath_isa(void) { return MOEI_VMATH_SSE2; }
int moei_vexpf_libm_vector(void) { return 0; }
void moei_vexpf_libm(size_t n, const float *x, float *y) { vexpf_scalar(n, x, y); }
int moei_vmath_force_isa(int isa) { return isa > MOEI_VMATH_SSE2 ? -1 : 0; }

#define VMATH_1(name, T, kernel)                                              \
  void name(size_t n, const T *x, T *y)                                       \
  {                                                                           \
    for (size_t i = 0; i < n; i++)                                            \
      y[i] = kernel(x[i]);                                                    \
  }
VMATH_1(moei_vexp, float, Sleef_cinz_expf1_u10purec)
VMATH_1(moei_verf, float, Sleef_cinz_erff1_u10purec)
VMATH_1(moei_vtanh, float, Sleef_cinz_tanhf1_u10purec)
VMATH_1(moei_vexp_f64, double, Sleef_cinz_expd1_u10purec)
VMATH_1(moei_verf_f64, double, Sleef_cinz_erfd1_u10purec)
VMATH_1(moei_vtanh_f64, double, Sleef_cinz_tanhd1_u10purec)
VMATH_1(moei_vlog_f64, double, Sleef_cinz_logd1_u10purec)
#endif
