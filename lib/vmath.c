/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vmath.c — element-wise math through SLEEF (see vmath.h for the accuracy
 * and determinism contract). */
#include <string.h>

#include "vmath.h"

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

#else /* other compilers and architectures: SLEEF's scalar cinz kernels */
#include <sleef.h>

int moei_vmath_isa(void) { return MOEI_VMATH_SSE2; }
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
