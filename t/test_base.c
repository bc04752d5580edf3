/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_base.c — error codes, seed derivation, RNG determinism, version. */
#include <string.h>
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/version.h"
#include "tap.h"

static int handled_code;
static void handler(int code, const char *msg) { (void)msg; handled_code = code; }

int main(void)
{
  /* errors */
  ok(strcmp(moe_strerror(MOE_EINVAL), "invalid argument") == 0, "strerror(EINVAL)");
  ok(strcmp(moe_strerror(12345), "unknown error") == 0, "strerror(unknown)");
  moe_set_error_handler(handler);
  is_int(moe_error(MOE_EFORMAT, "file %s: bad magic at byte %d", "x.tok", 0), MOE_EFORMAT,
         "moe_error returns its code");
  ok(strcmp(moe_last_error(), "file x.tok: bad magic at byte 0") == 0, "message kept with context");
  is_int(handled_code, MOE_EFORMAT, "handler called");
  moe_set_error_handler(NULL);
  /* context put in front of the last message, three levels deep: the
   * argument is the buffer being written */
  moe_error(MOE_EDOM, "x[%d] is %s", 3, "inf");
  moe_error(MOE_EDOM, "block %d: %s", 1, moe_last_error());
  moe_error(MOE_EDOM, "%s (forward, step %d)", moe_last_error(), 7);
  moe_error(MOE_EDOM, "cell %s: %s", "ab12", moe_last_error());
  ok(strcmp(moe_last_error(), "cell ab12: block 1: x[3] is inf (forward, step 7)") == 0,
     "nested context, prefix and suffix: %s", moe_last_error());
  {
    char longer[1500];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    moe_error(MOE_EIO, "%s", longer);
    moe_error(MOE_EIO, "ctx: %s", moe_last_error());
    ok(strlen(moe_last_error()) == 1023 && !strncmp(moe_last_error(), "ctx: aaa", 8),
       "a long message is cut at 1023 bytes, the context kept");
  }
  moe_error(MOE_ENOMEM, "lm load %s", "x.ckpt");
  ok(strcmp(moe_last_error(), "lm load x.ckpt: out of memory") == 0, "ENOMEM says memory: %s", moe_last_error());
  moe_error(MOE_ENOMEM, "lm alloc: %s", moe_last_error());
  ok(strcmp(moe_last_error(), "lm alloc: lm load x.ckpt: out of memory") == 0, "...once: %s", moe_last_error());
  moe_error(MOE_ENOMEM, "%s", "");
  ok(strcmp(moe_last_error(), "out of memory") == 0, "...also with no message: %s", moe_last_error());
  moe_error(MOE_EIO, "lm load %s", "x.ckpt");
  ok(strcmp(moe_last_error(), "lm load x.ckpt") == 0, "other codes untouched");
  moe_error_clear();
  ok(moe_last_error()[0] == '\0', "clear");

  /* seeds: stable golden values pin the derivation across platforms */
  uint64_t a = moe_seed_derive(42, "cell-abc"), b = moe_seed_derive(42, "cell-abd");
  ok(a != b, "labels give distinct seeds");
  ok(a == moe_seed_derive(42, "cell-abc"), "derivation is a function");
  ok(moe_seed_derive(42, "x") != moe_seed_derive(43, "x"), "parents give distinct seeds");
  ok(moe_seed_derive_u64(7, 1) != moe_seed_derive_u64(7, 2), "integer labels distinct");
  is_int((long)(moe_seed_derive(0, "") & 0x7fffffff), (long)(moe_seed_derive(0, "") & 0x7fffffff),
         "empty label");
  {
    /* golden: an independent Python rendering of the derivation gives
     * these; changing it would silently change every published result. */
    ok(moe_seed_derive(2505, "moebench") == 6535894799812977367ull, "golden seed (2505, moebench)");
    ok(moe_seed_derive(42, "cell-abc") == 2233043889612459324ull, "golden seed (42, cell-abc)");
  }

  /* rng determinism */
  gsl_rng *r1 = moe_rng_alloc(a), *r2 = moe_rng_alloc(a);
  double x1[64], x2[64];
  moe_rng_normal_f64(r1, x1, 64, 2.385);
  moe_rng_normal_f64(r2, x2, 64, 2.385);
  ok(memcmp(x1, x2, sizeof x1) == 0, "same seed, identical bits");
  double mean = 0;
  for (int i = 0; i < 64; i++) mean += x1[i] / 64;
  ok(fabs(mean) < 1.5, "normal draws are centred (mean %.3f)", mean);
  float u[1000];
  moe_rng_uniform_f32(r1, u, 1000, -3, 3);
  int inrange = 1;
  for (int i = 0; i < 1000; i++) inrange &= (u[i] >= -3 && u[i] < 3);
  ok(inrange, "uniform in [-3,3)");
  gsl_rng_free(r1);
  gsl_rng_free(r2);

  /* version and blas facts */
  ok(strcmp(moe_version(), MOE_VERSION_STRING) == 0, "version string");
  ok(moe_version_check(MOE_VERSION_MAJOR), "version check");
  ok(moe_blas_corename() && moe_blas_corename()[0], "blas core name: %s", moe_blas_corename());
  ok(moe_blas_threads() >= 1, "blas threads: %d", moe_blas_threads());
  return tap_done();
}
