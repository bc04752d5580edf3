#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reference values for t/test_metrics.c, computed with Python sets and
NumPy independently of the C code (paper §5 definitions).
Usage: /usr/bin/python3 t/gen_metrics_fixtures.py > t/data/metrics.txt
Not run by make check; the output is committed."""
import numpy as np

rng = np.random.default_rng(2505)
print("# case N k E ; then idx_t, idx_final, idx_next rows ; then sat cr jain_count")
# The last case draws with replacement: a record may name an expert twice in
# a row (the metrics count distinct members, as sets do).
for case, (N, k, E, dup) in enumerate([(7, 2, 5, False), (13, 3, 8, False), (40, 6, 64, False),
                                       (25, 1, 3, False), (30, 4, 5, True)]):
    def record():
        return np.array([rng.choice(E, size=k, replace=dup) for _ in range(N)])
    a, fin, nxt = record(), record(), record()
    # make them correlated so the values are not all near the random baseline
    mask = rng.random((N, k)) < 0.5
    fin = np.where(mask, a, fin)
    sat = np.mean([len(set(a[i]) & set(fin[i])) / k for i in range(N)])
    cr = np.mean([len(set(nxt[i]) - set(a[i])) / k for i in range(N)])
    counts = np.bincount(a.ravel(), minlength=E).astype(float)
    jain = counts.sum() ** 2 / (E * (counts ** 2).sum())
    print(f"case {N} {k} {E}")
    for arr in (a, fin, nxt):
        print(" ".join(str(v) for v in arr.ravel()))
    print(f"{sat!r} {cr!r} {jain!r}")
