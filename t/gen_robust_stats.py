#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reference values for the robust summaries in t/test_stats.c (issue 12),
computed with NumPy independently of the C code (GSL):
  median, 10%-trimmed mean (mean of the order statistics k+1..n-k,
  k = floor(0.1 n), as scipy.stats.trim_mean(x, 0.1)), and the least-squares
  slope/intercept of log(centre) on log(x) and on log(x / log x) for the
  centres mean, median and trimmed mean.
Heavy-tailed data (log-normal with a few huge outliers, like saturated fits).
Usage: /usr/bin/python3 t/gen_robust_stats.py > t/data/robust_stats.txt
Not run by make check; the output is committed."""
import numpy as np

rng = np.random.default_rng(1205)


def trmean(v, a=0.1):
    v = np.sort(v)
    k = int(np.floor(a * len(v)))
    return v[k:len(v) - k].mean()


xs = [100, 187, 351, 658, 1233, 2310, 4329]
reps = [40, 37, 40, 9, 11, 40, 23]
groups = []
for x, k in zip(xs, reps):
    y = 3.0 * x ** -0.5 * rng.lognormal(0.0, 0.6, size=k)
    out = rng.random(k) < 0.12              # saturated fits: 10^2-10^4 times larger
    y[out] *= 10 ** rng.uniform(2, 4, size=out.sum())
    groups.append(y)
print("# G ; then per group: x k y_1..y_k ; then per group: median trmean ; then per centre "
      "(mean median trmean): slope intercept slope_nlogn intercept_nlogn")
print(len(xs))
for x, y in zip(xs, groups):
    print(x, len(y), " ".join(repr(float(v)) for v in y))
for y in groups:
    print(repr(float(np.median(y))), repr(float(trmean(y))))
lx = np.log(np.array(xs, float))
lxn = np.log(np.array(xs, float) / np.log(np.array(xs, float)))
for f in (np.mean, np.median, trmean):
    ly = np.log(np.array([f(y) for y in groups]))
    s, c = np.polyfit(lx, ly, 1)
    sn, cn = np.polyfit(lxn, ly, 1)
    print(repr(float(s)), repr(float(c)), repr(float(sn)), repr(float(cn)))
