#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write t/data/report/seeds.txt for t/report-seeds.sh.

Run from the source tree:  /usr/bin/python3 t/gen_seed_fixtures.py
(not run by `make check`; the output is committed).

An independent implementation of the seed derivation that moe/rng.h
documents: moe_seed_derive(parent, label) = D(parent, FNV-1a-64(label)),
D(p, l) = SplitMix64(SplitMix64(p) ^ SplitMix64(l ^ 0xA5A5A5A5A5A5A5A5)),
SplitMix64 the standard finaliser (Steele, Lea, Flood 2014). A cell's
seed is moe_seed_derive(matrix seed, cell id). The cell ids of
experiments/smoke-selftest.yaml (seed 2505) are the input: they are what
moebench names the cells (hashes of their configurations), not a
reference; the seeds are the reference.
"""
import os

M = (1 << 64) - 1
MATRIX_SEED = 2505
IDS = """
164d337120bc 2f55bd4423ca 340dc62c79db 351a8baa412f 3afefc36c82e 4044c7f025c9
49b7e6467265 65e0e1515cdb 6b23df06e81d 77a5642a2a33 81fad16a1037 820c06ab240f
8e57b0cded03 a9ca354dd816 aa50ecab8647 c1ad318970b3 c7973a86fff1 c84148abe133
cafdc4108e94 df7c4ca016f5 e0a4966a2cfd e4c3b42feb60 f3ef53101936 f64cd4631816
""".split()


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M
    return h


def derive(parent, label):
    return splitmix64(splitmix64(parent) ^ splitmix64(fnv1a64(label) ^ 0xA5A5A5A5A5A5A5A5))


out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "report", "seeds.txt")
with open(out, "w") as f:
    f.write("# cell id and moe_seed_derive(%d, id) of experiments/smoke-selftest.yaml (t/gen_seed_fixtures.py)\n"
            % MATRIX_SEED)
    for i in IDS:
        f.write("%s %d\n" % (i, derive(MATRIX_SEED, i)))
