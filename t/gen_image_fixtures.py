#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the tiny IDX fixtures under t/data/image/ used by t/test_idx.c.

Run by hand (not by make check) from the top source directory:
    /usr/bin/python3 t/gen_image_fixtures.py
The output is byte-for-byte reproducible (gzip mtime 0, no randomness), so
rerunning it must leave `git status` clean.

Pixel (n, r, c) of the good image file is (n*97 + r*29 + c*13 + (r*c) % 7) % 256,
a formula the C test evaluates independently; the labels are 9 0 3 7 2.
"""
import gzip
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "image")


def pixels(n, h, w):
    i, r, c = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    return ((i * 97 + r * 29 + c * 13 + (r * c) % 7) % 256).astype(np.uint8)


def idx(arr, type_code=0x08, dims=None):
    dims = list(arr.shape) if dims is None else dims
    head = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + arr.astype(np.uint8).tobytes()


def gz(data):
    # mtime=0 and a fixed level keep the bytes reproducible.
    return gzip.compress(data, compresslevel=9, mtime=0)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    img = pixels(5, 28, 28)
    lab = np.array([9, 0, 3, 7, 2], dtype=np.uint8)
    good_img, good_lab = idx(img), idx(lab)

    # Good files, plain and gzip: both must read to the same arrays.
    write("good-images-idx3-ubyte", good_img)
    write("good-labels-idx1-ubyte", good_lab)
    write("good-images-idx3-ubyte.gz", gz(good_img))
    write("good-labels-idx1-ubyte.gz", gz(good_lab))

    small = pixels(3, 8, 8)
    # Truncated: header + 100 of the 192 data bytes -> "truncated at byte 116".
    write("trunc-images-idx3-ubyte", idx(small)[:16 + 100])
    # Truncated inside the header (6 of 16 bytes).
    write("trunc-header-idx3-ubyte", idx(small)[:6])
    # Wrong magic: the first two bytes must be zero.
    write("badmagic-images-idx3-ubyte", b"\x12\x34" + idx(small)[2:])
    # Wrong type code 0x0D (float) instead of 0x08.
    write("badtype-images-idx3-ubyte", idx(small, type_code=0x0D))
    # Dims disagree with the data: header says 3x8x7 (data longer -> trailing)
    # and 4x8x8 (data shorter -> truncated at byte 16+192).
    write("dims-short-images-idx3-ubyte", idx(small, dims=[3, 8, 7]))
    write("dims-long-images-idx3-ubyte", idx(small, dims=[4, 8, 8]))
    # A zero dimension.
    write("zerodim-images-idx3-ubyte", idx(small[:0], dims=[0, 8, 8]))
    # Labels for the small images: 4 of them for 3 images (count mismatch),
    # and 3 with one out of range (10 for 10 classes).
    write("small-images-idx3-ubyte", idx(small))
    write("count4-labels-idx1-ubyte", idx(np.array([1, 2, 3, 4], dtype=np.uint8)))
    write("range-labels-idx1-ubyte", idx(np.array([1, 10, 3], dtype=np.uint8)))

    # Corrupt gzip: the first deflate block header (byte 10, after the
    # 10-byte gzip header) gets the reserved block type 3 (bits 1-2).
    z = bytearray(gz(good_img))
    z[10] |= 0x06
    write("corrupt-images-idx3-ubyte.gz", bytes(z))
    # Corrupt gzip trailer: the data inflate fine but the CRC-32 is wrong.
    z = bytearray(gz(good_img))
    z[-8] ^= 0x01
    write("badcrc-images-idx3-ubyte.gz", bytes(z))
    # A gzip member cut in half (zlib: unexpected end of file).
    z = gz(good_img)
    write("cut-images-idx3-ubyte.gz", z[: len(z) // 2])

    # A split directory laid out like Fashion-MNIST's, for moe_idx_set_load_dir:
    # train as .gz, t10k plain (the loader must find either form). Labels of
    # t10k are 4 1 8.
    d = os.path.join(OUT, "split")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "train-images-idx3-ubyte.gz"), "wb") as f:
        f.write(gz(good_img))
    with open(os.path.join(d, "train-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(gz(good_lab))
    # t10k: images 5..7 of the same formula, so train and test differ.
    with open(os.path.join(d, "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(idx(pixels(8, 28, 28)[5:]))
    with open(os.path.join(d, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(idx(np.array([4, 1, 8], dtype=np.uint8)))


if __name__ == "__main__":
    main()
