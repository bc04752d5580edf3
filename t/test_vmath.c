/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_vmath — lib/vmath.c: every kernel tier this CPU has returns the
 * same bits as the widest (finz tiers) for every function, array length
 * and alignment; the results are within SLEEF's documented 1.0 ULP of a
 * wider reference (long double for double, double for float); special
 * values; forcing a tier the CPU lacks is refused; moei_vexpf_libm gives
 * the C library's expf bits. */
#include <float.h>
#include <stdint.h>

#include "tap.h"
#include "../lib/vmath.h"

static uint64_t lcg = 0x9e3779b97f4a7c15u;
static double unif(double a, double b)
{
  lcg = lcg * 6364136223846793005u + 1442695040888963407u;
  return a + (b - a) * (double)(lcg >> 11) * 0x1p-53;
}

typedef void (*fn64)(size_t, const double *, double *);
typedef void (*fn32)(size_t, const float *, float *);

/* distance in units of the last place of the double nearest to the exact value */
static double ulp64(double got, long double want)
{
  if (isnan(got) && isnan((double)want)) return 0;
  if (got == (double)want) return 0;
  double w = (double)want;
  double u = nextafter(fabs(w), INFINITY) - fabs(w);
  if (!(u > 0) || !isfinite(u)) return INFINITY;
  return (double)fabsl((long double)got - want) / u;
}
static double ulp32(float got, double want)
{
  if (isnan(got) && isnan(want)) return 0;
  if (got == (float)want) return 0;
  float w = (float)want;
  float u = nextafterf(fabsf(w), INFINITY) - fabsf(w);
  if (!(u > 0) || !isfinite(u)) return INFINITY;
  return fabs((double)got - want) / (double)u;
}

enum { N = 1 << 17 };
static double xd[N + 16], yd[N + 16], zd[N + 16];
static float xf[N + 16], yf[N + 16], zf[N + 16];

static int isas[3], nisa;

/* Every other tier against isas[0]'s results y on x (N values): the same
 * bits; and every length 0..40 from an unaligned start, with nothing
 * written outside. z is scratch. */
#define DEFINE_TIERS(T, FN, SFX)                                                                        \
  static void tiers_##SFX(const char *name, FN f, const T *x, const T *y, T *z)                        \
  {                                                                                                     \
    for (int t = 1; t < nisa; t++) {                                                                    \
      moei_vmath_force_isa(isas[t]);                                                                    \
      f(N, x, z);                                                                                       \
      ok(!memcmp(y, z, N * sizeof *y), "%s: tier %d returns tier %d's bits (%d values)", name, isas[t], \
         isas[0], N);                                                                                   \
      int same = 1;                                                                                     \
      for (size_t n = 0; n <= 40 && same; n++) {                                                        \
        for (size_t i = 0; i < n + 2; i++) z[i] = (T)-12345;                                            \
        f(n, x + 1, z + 1);                                                                             \
        same = z[0] == (T)-12345 && z[n + 1] == (T)-12345 && !memcmp(z + 1, y + 1, n * sizeof *z);      \
      }                                                                                                 \
      ok(same, "%s: tier %d, lengths 0..40 from an unaligned start: same bits, nothing written outside", \
         name, isas[t]);                                                                                \
    }                                                                                                   \
    moei_vmath_force_isa(-1);                                                                           \
  }
DEFINE_TIERS(double, fn64, 64)
DEFINE_TIERS(float, fn32, 32)

/* x uniform on [lo, hi], or log-uniform if logscale (lo > 0) */
static void check64(const char *name, fn64 f, long double (*ref)(long double), double lo, double hi, int logscale,
                    double bound)
{
  for (size_t i = 0; i < N; i++) xd[i] = logscale ? exp(unif(log(lo), log(hi))) : unif(lo, hi);
  xd[0] = lo; xd[1] = hi;
  moei_vmath_force_isa(isas[0]);
  f(N, xd, yd);
  double worst = 0;
  for (size_t i = 0; i < N; i++) worst = fmax(worst, ulp64(yd[i], ref(xd[i])));
  ok(worst <= bound, "%s: within %.2f ULP of long double on [%g, %g] (max %.3f)", name, bound, lo, hi, worst);
  tiers_64(name, f, xd, yd, zd);
}

static void check32(const char *name, fn32 f, double (*ref)(double), float lo, float hi, double bound)
{
  for (size_t i = 0; i < N; i++) xf[i] = (float)unif(lo, hi);
  moei_vmath_force_isa(isas[0]);
  f(N, xf, yf);
  double worst = 0;
  for (size_t i = 0; i < N; i++) worst = fmax(worst, ulp32(yf[i], ref(xf[i])));
  ok(worst <= bound, "%s: within %.4f ULP of double on [%g, %g] (max %.3f)", name, bound, lo, hi, worst);
  tiers_32(name, f, xf, yf, zf);
}

static long double ref_exp(long double x) { return expl(x); }
static long double ref_log(long double x) { return logl(x); }
static long double ref_erf(long double x) { return erfl(x); }
static long double ref_tanh(long double x) { return tanhl(x); }

int main(void)
{
  const int det = moei_vmath_isa();
  ok(det >= MOEI_VMATH_SSE2 && det <= MOEI_VMATH_AVX512, "detected tier %d is a known one", det);
  diag("detected tier: %s", det == MOEI_VMATH_AVX512 ? "AVX-512F (finz)" : det == MOEI_VMATH_AVX2 ? "AVX2+FMA (finz)"
                                                                                                   : "SSE2 (cinz)");
  /* the finz tiers must agree with each other; SSE2's cinz is another family */
  isas[nisa++] = det;
  if (det == MOEI_VMATH_AVX512) isas[nisa++] = MOEI_VMATH_AVX2;
  if (nisa == 1) diag("only one finz tier on this CPU: the tier-against-tier checks are not run");
  ok(moei_vmath_force_isa(MOEI_VMATH_AVX512 + 1) == -1, "forcing a tier beyond the CPU's is refused");
  ok(moei_vmath_isa() == det, "a refused force leaves the detected tier");
  ok(moei_vmath_force_isa(MOEI_VMATH_SSE2) == 0 && moei_vmath_isa() == MOEI_VMATH_SSE2, "SSE2 can always be forced");
  moei_vmath_force_isa(-1);
  ok(moei_vmath_isa() == det, "-1 restores the detected tier");

  check64("exp f64", moei_vexp_f64, ref_exp, -700, 700, 0, 1.0);
  check64("exp f64 small", moei_vexp_f64, ref_exp, -1, 1, 0, 1.0);
  check64("log f64", moei_vlog_f64, ref_log, 1e-300, 1e300, 1, 1.0);
  check64("log f64 near 1", moei_vlog_f64, ref_log, 0.5, 2, 0, 1.0);
  check64("erf f64", moei_verf_f64, ref_erf, -6, 6, 0, 1.0);
  check64("tanh f64", moei_vtanh_f64, ref_tanh, -20, 20, 0, 1.0);
  check32("exp f32", moei_vexp, exp, -87, 88, 1.0);
  check32("erf f32", moei_verf, erf, -5, 5, 1.0);
  check32("tanh f32", moei_vtanh, tanh, -20, 20, 1.0001);

  /* special values, on every tier */
  for (int t = 0; t < nisa; t++) {
    moei_vmath_force_isa(isas[t]);
    double sx[6] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1.0}, se[6], sl[6];
    moei_vexp_f64(6, sx, se);
    moei_vlog_f64(6, sx, sl);
    ok(se[0] == 1 && se[1] == 1 && se[2] == INFINITY && se[3] == 0 && isnan(se[4]) && se[5] == exp(1.0),
       "exp f64 tier %d: exp(±0)=1, exp(inf)=inf, exp(-inf)=0, exp(nan)=nan, exp(1) = libm's", isas[t]);
    ok(sl[0] == -INFINITY && sl[1] == -INFINITY && sl[2] == INFINITY && isnan(sl[3]) && isnan(sl[4]) && sl[5] == 0,
       "log f64 tier %d: log(±0)=-inf, log(inf)=inf, log(-inf)=nan, log(nan)=nan, log(1)=0", isas[t]);
    double big[2] = {710.0, -746.0}, bo[2];
    moei_vexp_f64(2, big, bo);
    ok(bo[0] == INFINITY && bo[1] == 0, "exp f64 tier %d: overflow to inf, underflow to 0", isas[t]);
    double in[3] = {1.0, 2.0, 3.0};
    moei_vexp_f64(3, in, in);
    ok(in[0] == exp(1.0) && fabs(in[1] - exp(2.0)) <= 2 * DBL_EPSILON * exp(2.0), "exp f64 tier %d: in place", isas[t]);
  }
  moei_vmath_force_isa(-1);

  /* moei_vexpf_libm: expf's bits, whichever path runs */
  diag("moei_vexpf_libm: %s", moei_vexpf_libm_vector() ? "the AVX2+FMA path (glibc's expf as __expf_fma runs it)"
                                                      : "expf itself (the vector path is off on this CPU or C library)");
  {
    enum { M = 1 << 20 };
    static float ex[M], ey[M];
    size_t bad = 0;
    for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)64 * M) {
      for (uint32_t i = 0; i < M; i++) {
        uint32_t u = (uint32_t)(base + (uint64_t)64 * i + (i % 61));
        memcpy(ex + i, &u, sizeof u);
      }
      moei_vexpf_libm(M, ex, ey);
      for (uint32_t i = 0; i < M; i++) {
        float e = expf(ex[i]);
        bad += memcmp(&e, ey + i, sizeof e) != 0;
      }
    }
    ok(bad == 0, "vexpf_libm: expf's bits on 2^26 floats spread over every bit pattern (%zu differ)", bad);
    bad = 0;
    for (uint32_t i = 0; i < M; i++)
      ex[i] = (float)unif(-90, 90);
    moei_vexpf_libm(M, ex, ey);
    for (uint32_t i = 0; i < M; i++) {
      float e = expf(ex[i]);
      bad += memcmp(&e, ey + i, sizeof e) != 0;
    }
    ok(bad == 0, "vexpf_libm: expf's bits on 2^20 floats of [-90, 90] (%zu differ)", bad);
    int same = 1;
    for (size_t n = 0; n <= 40 && same; n++) {
      for (size_t i = 0; i < n + 2; i++) ey[i] = -12345.0f;
      moei_vexpf_libm(n, ex + 1, ey + 1);
      same = ey[0] == -12345.0f && ey[n + 1] == -12345.0f;
      for (size_t i = 0; i < n && same; i++) {
        float e = expf(ex[1 + i]);
        same = !memcmp(&e, ey + 1 + i, sizeof e);
      }
    }
    ok(same, "vexpf_libm: lengths 0..40 from an unaligned start: expf's bits, nothing written outside");
    float in[9] = {0.0f, -0.0f, 1.0f, -1.0f, 88.5f, -100.0f, INFINITY, -INFINITY, NAN}, want[9];
    for (int i = 0; i < 9; i++) want[i] = expf(in[i]);
    moei_vexpf_libm(9, in, in);
    ok(!memcmp(in, want, sizeof in), "vexpf_libm: in place, with ±0, overflow, underflow, ±inf and NaN");
  }
  return tap_done();
}
