/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_fashion_mnist.c — the real Fashion-MNIST through the IDX reader,
 * when it is present: $MOE_FASHION_MNIST, else $top_builddir/data/fashion-mnist
 * (what `make fetch-data` makes), else Debian's
 * /usr/share/datasets/fashion-mnist. SKIPs when none exists.
 * Reference values (labels, counts, pixel sum, mean/std) were computed with
 * numpy from the decompressed files whose sha256 is in datasets/SHA256SUMS. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include "moe/error.h"
#include "moe/idx.h"
#include "tap.h"

static int is_dir_with_train(const char *dir)
{
  char p[4096];
  struct stat st;
  snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
  if (stat(p, &st) == 0)
    return 1;
  snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
  return stat(p, &st) == 0;
}

int main(void)
{
  static char dir[4096];
  const char *env = getenv("MOE_FASHION_MNIST"), *tb = getenv("top_builddir");
  if (env && *env)
    snprintf(dir, sizeof dir, "%s", env);
  else if (snprintf(dir, sizeof dir, "%s/data/fashion-mnist", tb && *tb ? tb : "."),
           !is_dir_with_train(dir))
    snprintf(dir, sizeof dir, "/usr/share/datasets/fashion-mnist");
  if (!is_dir_with_train(dir))
    tap_skip("Fashion-MNIST not found (run make fetch-data, or apt-get install dataset-fashion-mnist)");
  diag("reading %s", dir);

  moe_idx_set *tr = NULL, *te = NULL;
  if (!is_int(moe_idx_set_load_dir(dir, "train", &tr), MOE_OK, "train split loads"))
    diag("%s", moe_last_error());
  if (!is_int(moe_idx_set_load_dir(dir, "test", &te), MOE_OK, "test split loads"))
    diag("%s", moe_last_error());
  if (!tr || !te)
    return tap_done();

  ok(tr->n == 60000 && tr->h == 28 && tr->w == 28, "train: 60000 x 28 x 28");
  ok(te->n == 10000 && te->h == 28 && te->w == 28, "test: 10000 x 28 x 28");
  static const uint8_t tr8[8] = {9, 0, 0, 3, 0, 2, 7, 2}, te8[8] = {9, 2, 1, 1, 6, 1, 4, 6};
  ok(memcmp(tr->labels, tr8, 8) == 0, "train labels start 9 0 0 3 0 2 7 2");
  ok(memcmp(te->labels, te8, 8) == 0, "test labels start 9 2 1 1 6 1 4 6");

  size_t h[10];
  moe_idx_set_class_hist(tr, h, 10);
  int bal = 1;
  for (int c = 0; c < 10; c++) bal &= h[c] == 6000;
  ok(bal, "train: 6000 of each class");
  moe_idx_set_class_hist(te, h, 10);
  bal = 1;
  for (int c = 0; c < 10; c++) bal &= h[c] == 1000;
  ok(bal, "test: 1000 of each class");

  uint64_t sum = 0;
  for (size_t i = 0; i < tr->n * 784; i++) sum += tr->pixels[i];
  is_int((long)sum, 3431114169L, "train pixel sum (numpy)");
  is_int(tr->pixels[10 * 28 + 13], 193, "train image 0 pixel (10,13) = 193 (numpy)");

  double m, s;
  moe_idx_set_pixel_stats(tr, &m, &s);
  is_close(m, 0.2860405969887955, 1e-12, 0, "train pixel mean (numpy 0.28604)");
  is_close(s, 0.35302424451492237, 1e-12, 0, "train pixel std (numpy 0.35302)");
  moe_idx_set_pixel_stats(te, &m, &s);
  is_close(m, 0.2868492807122849, 1e-12, 0, "test pixel mean (numpy 0.28685)");

  moe_patches pp;
  moe_idx_set_pixel_stats(tr, &m, &s);
  is_int(moe_patches_init(&pp, tr->h, tr->w, 4, MOE_PATCH_STANDARD, m, s), MOE_OK, "P=4 standardised");
  static float x[2 * 49 * 16];
  const size_t idx[2] = {0, 59999};
  is_int(moe_patches_cut(&pp, tr->pixels, tr->n, idx, 2, x), MOE_OK, "cut images 0 and 59999");
  /* Image 0, pixel (10,13): patch (2,3) = 17, element (2,1) = 9. */
  is_close(x[17 * 16 + 9], (193 / 255.0 - m) / s, 1e-6, 0, "image 0 pixel (10,13) lands in patch 17 elt 9");
  moe_idx_set_free(tr);
  moe_idx_set_free(te);
  return tap_done();
}
