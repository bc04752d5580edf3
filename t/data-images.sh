#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# data-images.sh — `moebench data images` on the fixture split in
# t/data/image/split (train: 5 images 28x28 .gz, labels 9 0 3 7 2; test:
# 3 images plain, labels 4 1 8; see t/gen_image_fixtures.py).
set -u
mb=${MOEBENCH:-bench/moebench}
dir=${srcdir:-.}/t/data/image/split
tmp=$(mktemp -d "${TMPDIR:-/tmp}/data-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"
has() { grep -F -q -- "$2" "$1"; }

"$mb" data images --data "$dir" --batch 2 --seed 7 >"$tmp/out" 2>"$tmp/err"
ok $? "runs on the fixture split"
has "$tmp/out" "train: 5 images of 28 x 28, 10 classes"; ok $? "train count and shape"
has "$tmp/out" "test: 3 images of 28 x 28, 10 classes"; ok $? "test count and shape"
has "$tmp/out" "first labels: 9 0 3 7 2"; ok $? "train first labels"
has "$tmp/out" "first labels: 4 1 8"; ok $? "test first labels"
# numpy: mean/std of pixel/255 of the 5 training images = 0.500728, 0.289665
has "$tmp/out" "pixel/255 mean 0.500728 std 0.289665"; ok $? "train pixel mean/std (numpy)"
has "$tmp/out" "pixel/255 mean 0.499853 std 0.290097"; ok $? "test pixel mean/std (numpy)"
has "$tmp/out" "9 Ankle boot   1"; ok $? "class histogram with Fashion-MNIST names"
has "$tmp/out" "P=4 -> 49 patches of 16 values per image; train tensor (5, 49, 16) float32"
ok $? "patch shape for P=4"
has "$tmp/out" "B=2, seed 7: 3 per epoch, the last has 1"; ok $? "batch count and last batch"

"$mb" data images --data "$dir" --patch 7 --norm unit >"$tmp/out" 2>&1
[ $? -eq 0 ] && has "$tmp/out" "P=7 -> 16 patches of 49" && has "$tmp/out" "values pixel/255 in [0, 1]"
ok $? "P=7 unit: 16 patches of 49"

"$mb" data images --data "$dir" --patch 5 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && has "$tmp/err" "patch size 5 does not divide the 28 x 28 image" && [ ! -s "$tmp/out" ]
ok $? "P=5 fails with the reason and prints nothing else (exit $rc)"

"$mb" data images --data "$tmp/nowhere" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && has "$tmp/err" "$tmp/nowhere/train-images-idx3-ubyte.gz"
ok $? "a missing directory fails naming the file"

cp "$dir/train-images-idx3-ubyte.gz" "$dir/train-labels-idx1-ubyte.gz" "$tmp/"
cp "${srcdir:-.}/t/data/image/trunc-images-idx3-ubyte" "$tmp/t10k-images-idx3-ubyte"
cp "$dir/t10k-labels-idx1-ubyte" "$tmp/"
"$mb" data images --data "$tmp" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && has "$tmp/err" "t10k-images-idx3-ubyte: truncated at byte 116"
ok $? "a truncated test file fails naming the file and byte"

"$mb" data images --help >"$tmp/out"; [ $? -eq 0 ] && has "$tmp/out" "usage: moebench data images"
ok $? "--help"
"$mb" data images >/dev/null 2>&1; [ $? -eq 2 ]; ok $? "no --data is a usage error"
"$mb" data images --data "$dir" --patch x >/dev/null 2>&1; [ $? -eq 2 ]; ok $? "--patch x is a usage error"
"$mb" data images --data "$dir" --norm z >/dev/null 2>&1; [ $? -eq 2 ]; ok $? "--norm z is a usage error"

echo "1..$n"
[ $failed -eq 0 ]
