/* SPDX-License-Identifier: GPL-3.0-or-later */
/* moe/idx.h — IDX image/label files (MNIST, Fashion-MNIST), image patches,
 * and a seeded epoch batcher.
 *
 * IDX format (LeCun's MNIST page): a 4-byte big-endian magic 0x0000TTDD
 * (TT = element type, only 0x08 "unsigned byte" is supported; DD = number
 * of dimensions), then DD big-endian uint32 sizes, then the elements in
 * row-major order. Images are 0x00000803 (N, H, W), labels 0x00000801 (N).
 * Files may be plain or gzip-compressed: both are read through zlib's
 * gzopen/gzread, which passes plain files through unchanged.
 *
 * Letters: N images in a set, B images in a batch, H x W pixels, P patch side.
 */
#ifndef MOE_IDX_H
#define MOE_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "moe/token.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- raw IDX files ----------------------------------------------------- */

/* One IDX file of unsigned bytes. */
typedef struct {
  int ndim;          /* 1 (labels) or 3 (images) */
  size_t dims[3];    /* N [, H, W]; unused entries are 1 */
  size_t count;      /* product of dims = number of bytes in data */
  uint8_t *data;     /* (dims[0], dims[1], dims[2]) row-major */
} moe_idx;

/* Read an IDX file (plain or .gz) whose header must say unsigned bytes and
 * `ndim` dimensions (1 or 3). Errors (message names the file):
 *   MOE_EIO      cannot open / read (errno text)
 *   MOE_EFORMAT  wrong magic or type code or ndim, zero dimension, data
 *                shorter than the header says ("truncated at byte X") or
 *                longer ("trailing data after byte X"), corrupt gzip
 *                stream (zlib's message)
 *   MOE_ENOMEM   allocation failed
 * On success *out is a new object (free with moe_idx_free). */
int moe_idx_read(const char *path, int ndim, moe_idx **out);
void moe_idx_free(moe_idx *x);

/* ---- an image set: images + labels ------------------------------------ */

typedef struct {
  size_t n;          /* N images */
  size_t h, w;       /* H x W pixels each */
  int num_classes;   /* every label is in [0, num_classes) */
  uint8_t *pixels;   /* (N, H, W) row-major, 0..255 */
  uint8_t *labels;   /* (N) */
} moe_idx_set;

/* Read an image file (ndim 3) and a label file (ndim 1) and check that they
 * describe the same number of items (MOE_EFORMAT naming both files) and
 * that every label is < num_classes (MOE_ERANGE naming the file, the item
 * and the value). num_classes must be in [1, 256]. */
int moe_idx_set_load(const char *images_path, const char *labels_path, int num_classes,
                     moe_idx_set **out);

/* The official MNIST/Fashion-MNIST split in directory `dir`: split "train"
 * reads train-{images-idx3,labels-idx1}-ubyte, "test" (or "t10k") reads
 * t10k-*; each name is tried with ".gz" first, then plain. 10 classes.
 * MOE_EIO names the missing file if neither exists. */
int moe_idx_set_load_dir(const char *dir, const char *split, moe_idx_set **out);

void moe_idx_set_free(moe_idx_set *s);

/* Mean and (population) standard deviation of pixel/255 over all N*H*W
 * pixels. Computed from the exact 256-bin histogram, so the result does
 * not depend on summation order. std may be 0 for a constant set. */
int moe_idx_set_pixel_stats(const moe_idx_set *s, double *mean, double *std);

/* Count of each label: hist[c] for c < num_classes (caller's array). */
int moe_idx_set_class_hist(const moe_idx_set *s, size_t *hist, int num_classes);

/* ---- patches ----------------------------------------------------------- */

/* How pixel bytes become patch values:
 *   MOE_PATCH_UNIT      v = pixel/255, in [0, 1]
 *   MOE_PATCH_STANDARD  v = (pixel/255 - mean) / std, with the mean and std
 *                       of pixel/255 given by the caller (normally the
 *                       training set's, from moe_idx_set_pixel_stats, so
 *                       train and test are scaled identically). */
typedef enum { MOE_PATCH_UNIT = 0, MOE_PATCH_STANDARD = 1 } moe_patch_norm;

/* Geometry and scaling of non-overlapping P x P patches cut from H x W
 * images, in row-major patch order (patch (i, j) is number i*(W/P)+j, and
 * inside a patch pixel (r, c) is element r*P+c). 28x28 with P=4 gives 49
 * patches of 16 values; P=7 gives 16 of 49. */
typedef struct {
  size_t h, w, p;
  size_t num_patches;   /* (H/P) * (W/P) */
  size_t patch_dim;     /* P*P */
  moe_patch_norm norm;
  double mean, std;     /* used by MOE_PATCH_STANDARD; 0 and 1 for UNIT */
} moe_patches;

/* Fill *pp. MOE_EINVAL if P is 0, does not divide both H and W, or (for
 * MOE_PATCH_STANDARD) std is not finite and > 0 or mean is not finite. */
int moe_patches_init(moe_patches *pp, size_t h, size_t w, size_t p, moe_patch_norm norm,
                     double mean, double std);

/* Cut images idx[0..B) of pixels (N, H, W) into out (B, num_patches,
 * patch_dim) float32. idx NULL means images 0..B-1. Indices >= n give
 * MOE_ERANGE. */
int moe_patches_cut(const moe_patches *pp, const uint8_t *pixels, size_t n, const size_t *idx,
                    size_t b, float *out);

/* One training batch from a set: patches of images idx[0..B) into x
 * (B, num_patches, patch_dim) and their labels into y (B) (y may be NULL).
 * MOE_EINVAL if pp was made for another image size. */
int moe_idx_set_batch(const moe_idx_set *s, const moe_patches *pp, const size_t *idx, size_t b,
                      float *x, moe_token *y);

/* ---- augmentation ------------------------------------------------------- */

/* One image of h x w pixels, flipped left-right when flip is non-zero, then
 * shifted by dy rows down and dx columns right (negative: up / left) with
 * zero fill:  out[r][c] = f[r - dy][c - dx] inside the image, else 0,
 * where f[r][c] = in[r][w-1-c] if flip else in[r][c]. in and out must not
 * overlap. MOE_EINVAL for NULL buffers, h or w of 0, or |dy| >= h or
 * |dx| >= w (nothing of the image would remain). */
int moe_image_shift_flip(const uint8_t *in, size_t h, size_t w, int dy, int dx, int flip,
                         uint8_t *out);

/* ---- batcher ------------------------------------------------------------ */

/* What happens to the last N mod B items of an epoch. KEEP returns them as
 * a final, smaller batch (every item is seen exactly once per epoch); DROP
 * leaves them out of that epoch (every batch has exactly B items; because
 * each epoch reshuffles, different items are dropped each epoch). */
typedef enum { MOE_BATCH_KEEP_LAST = 0, MOE_BATCH_DROP_LAST = 1 } moe_batch_last;

typedef struct moe_batcher moe_batcher;

/* Batches of B indices out of 0..N-1. The order of epoch k is the identity
 * permutation shuffled by gsl_ran_shuffle with a stream seeded by
 * moe_seed_derive(seed, "epoch-<k>"): it depends only on (seed, k, N), so
 * a resumed run can jump to any epoch. NULL on failure (moe_last_error()
 * says why): N or B is 0, DROP leaves no batch (B > N), or memory is
 * short. */
moe_batcher *moe_batcher_alloc(size_t n, size_t b, uint64_t seed, moe_batch_last last);
void moe_batcher_free(moe_batcher *bt);

/* Make epoch k current (reshuffle). MOE_ENOMEM if the stream cannot be made. */
int moe_batcher_epoch(moe_batcher *bt, unsigned long k);

/* Number of batches per epoch: ceil(N/B) with KEEP, floor(N/B) with DROP. */
size_t moe_batcher_num_batches(const moe_batcher *bt);

/* Batch j of the current epoch: *idx points at its indices (valid until
 * the next moe_batcher_epoch) and the return value is its size (0 if j is
 * past the last batch). */
size_t moe_batcher_batch(const moe_batcher *bt, size_t j, const size_t **idx);

#ifdef __cplusplus
}
#endif
#endif
