/* SPDX-License-Identifier: GPL-3.0-or-later */
/* verb_data_images.c — `moebench data images`: load an IDX image set
 * (Fashion-MNIST layout), check it, and print what a run would see: counts,
 * class histogram, pixel statistics, patch shape, first labels, and the
 * first batch of epoch 0. Also times the load and the patching, which is
 * how the data-path numbers in the project notes were measured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moe/error.h"
#include "moe/idx.h"
#include "verbs.h"

static const char *const fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

static void usage(FILE *f)
{
  fprintf(f, "usage: moebench data images --data DIR [--patch P] [--norm unit|standard]\n"
             "                            [--batch B] [--seed S]\n"
             "\n"
             "Load the train and test splits of an MNIST-style IDX image set from DIR\n"
             "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-*), check\n"
             "them, and print counts, class histograms, pixel mean/std (of pixel/255),\n"
             "the patch shape, the first labels and the first batch of epoch 0.\n"
             "\n"
             "  --data DIR     directory of the IDX files (e.g. data/fashion-mnist after\n"
             "                 `make fetch-data`)\n"
             "  --patch P      patch side; must divide the image size (default 4)\n"
             "  --norm N       unit: pixel/255; standard: (pixel/255 - mean)/std with the\n"
             "                 training set's mean and std (default standard)\n"
             "  --batch B      batch size for the batcher preview (default 64)\n"
             "  --seed S       batcher seed (default 2505)\n"
             "  -h, --help     this text\n"
             "\n"
             "Exit status 0 on success, 1 if the data cannot be read or the options do not\n"
             "fit the data (the message names the file or the option), 2 on usage errors.\n");
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_size(const char *opt, const char *s, size_t *out)
{
  char *end;
  unsigned long long v;
  if (!s || !*s || *s == '-')
    goto bad;
  v = strtoull(s, &end, 10);
  if (*end || v == 0)
    goto bad;
  *out = (size_t)v;
  return 0;
bad:
  fprintf(stderr, "moebench data images: %s needs a positive integer, not '%s'\n", opt, s ? s : "");
  return 2;
}

static void print_set(const char *name, const moe_idx_set *s, int fashion)
{
  size_t hist[256];
  double mean, std;
  moe_idx_set_class_hist(s, hist, s->num_classes);
  moe_idx_set_pixel_stats(s, &mean, &std);
  printf("%s: %zu images of %zu x %zu, %d classes\n", name, s->n, s->h, s->w, s->num_classes);
  printf("  pixel/255 mean %.6f std %.6f\n", mean, std);
  printf("  first labels:");
  for (size_t i = 0; i < s->n && i < 8; i++)
    printf(" %d", s->labels[i]);
  printf("\n  class histogram:\n");
  for (int c = 0; c < s->num_classes; c++)
    printf("    %d %-12s %zu\n", c, fashion ? fashion_names[c] : "", hist[c]);
}

int mb_verb_data_images(int argc, char **argv)
{
  const char *dir = NULL, *norm_s = "standard";
  size_t p = 4, b = 64, seed = 2505;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--data") && v) {
      dir = v;
      i++;
    } else if (!strcmp(a, "--patch") && v) {
      if (parse_size(a, v, &p))
        return 2;
      i++;
    } else if (!strcmp(a, "--norm") && v) {
      norm_s = v;
      i++;
    } else if (!strcmp(a, "--batch") && v) {
      if (parse_size(a, v, &b))
        return 2;
      i++;
    } else if (!strcmp(a, "--seed") && v) {
      char *end;
      unsigned long long sv = strtoull(v, &end, 10);
      if (!*v || *end || *v == '-') {
        fprintf(stderr, "moebench data images: --seed needs an unsigned integer, not '%s'\n", v);
        return 2;
      }
      seed = (size_t)sv;
      i++;
    } else {
      fprintf(stderr, "moebench data images: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!dir) {
    fprintf(stderr, "moebench data images: --data DIR is required\n");
    usage(stderr);
    return 2;
  }
  moe_patch_norm norm;
  if (!strcmp(norm_s, "unit"))
    norm = MOE_PATCH_UNIT;
  else if (!strcmp(norm_s, "standard"))
    norm = MOE_PATCH_STANDARD;
  else {
    fprintf(stderr, "moebench data images: --norm must be unit or standard, not '%s'\n", norm_s);
    return 2;
  }

  int rc = 1;
  moe_idx_set *tr = NULL, *te = NULL;
  moe_batcher *bt = NULL;
  float *x = NULL;
  double t0 = now();
  if (moe_idx_set_load_dir(dir, "train", &tr)) {
    fprintf(stderr, "moebench data images: %s\n", moe_last_error());
    goto done;
  }
  double t_train = now() - t0;
  t0 = now();
  if (moe_idx_set_load_dir(dir, "test", &te)) {
    fprintf(stderr, "moebench data images: %s\n", moe_last_error());
    goto done;
  }
  double t_test = now() - t0;
  if (te->h != tr->h || te->w != tr->w) {
    fprintf(stderr,
            "moebench data images: %s: train images are %zu x %zu but test images %zu x %zu\n", dir,
            tr->h, tr->w, te->h, te->w);
    goto done;
  }
  /* Fashion-MNIST's class names only when the set has its shape. */
  int fashion = tr->num_classes == 10 && tr->h == 28 && tr->w == 28;

  /* Options that must fit the data are checked before anything is printed. */
  double mean, std;
  moe_idx_set_pixel_stats(tr, &mean, &std);
  moe_patches pp;
  if (moe_patches_init(&pp, tr->h, tr->w, p, norm, mean, std)) {
    fprintf(stderr, "moebench data images: --patch %zu: %s\n", p, moe_last_error());
    goto done;
  }

  printf("data: %s\n", dir);
  print_set("train", tr, fashion);
  print_set("test", te, fashion);
  printf("patches: P=%zu -> %zu patches of %zu values per image; train tensor (%zu, %zu, %zu) "
         "float32\n",
         p, pp.num_patches, pp.patch_dim, tr->n, pp.num_patches, pp.patch_dim);
  if (norm == MOE_PATCH_STANDARD)
    printf("  values (pixel/255 - %.6f) / %.6f (training-set statistics)\n", pp.mean, pp.std);
  else
    printf("  values pixel/255 in [0, 1]\n");

  /* Patch the whole training set in chunks, as a training loop would, to
   * time it without holding the full float tensor. */
  size_t chunk = tr->n < 1000 ? tr->n : 1000;
  size_t per = pp.num_patches * pp.patch_dim;
  x = malloc(chunk * per * sizeof *x);
  if (!x) {
    fprintf(stderr, "moebench data images: out of memory\n");
    goto done;
  }
  t0 = now();
  for (size_t s = 0; s < tr->n; s += chunk) {
    size_t len = tr->n - s < chunk ? tr->n - s : chunk;
    moe_patches_cut(&pp, tr->pixels + s * tr->h * tr->w, len, NULL, len, x);
  }
  double t_patch = now() - t0;

  if (!(bt = moe_batcher_alloc(tr->n, b, (uint64_t)seed, MOE_BATCH_KEEP_LAST)) ||
      moe_batcher_epoch(bt, 0)) {
    fprintf(stderr, "moebench data images: %s\n", moe_last_error());
    goto done;
  }
  const size_t *ix, *last_ix;
  size_t nb = moe_batcher_num_batches(bt), last_len = moe_batcher_batch(bt, nb - 1, &last_ix);
  size_t len = moe_batcher_batch(bt, 0, &ix);
  printf("batches: B=%zu, seed %zu: %zu per epoch, the last has %zu (kept, so each image is seen "
         "once per epoch)\n",
         b, seed, nb, last_len);
  printf("  epoch 0 batch 0 indices:");
  for (size_t i = 0; i < len && i < 8; i++)
    printf(" %zu", ix[i]);
  printf("%s\n  labels:", len > 8 ? " ..." : "");
  for (size_t i = 0; i < len && i < 8; i++)
    printf(" %d", tr->labels[ix[i]]);
  printf("%s\n", len > 8 ? " ..." : "");
  printf("timing: load train %.3f s, load test %.3f s, patch train %.3f s (%.0f images/s)\n",
         t_train, t_test, t_patch, t_patch > 0 ? tr->n / t_patch : 0.0);
  rc = 0;
done:
  free(x);
  moe_batcher_free(bt);
  moe_idx_set_free(tr);
  moe_idx_set_free(te);
  return rc;
}
