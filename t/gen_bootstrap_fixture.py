#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reference percentile bootstrap intervals for t/test_stats.c, computed with
NumPy from the same resample indices as moe_stats_bootstrap_slope_center:
GSL's mt19937 seeded as moe_rng_alloc does (the 64-bit seed folded to 32
bits, Knuth's initialisation), indices from gsl_rng_uniform_int's rule
(k = draw // (0xffffffff // n), redrawn while k >= n), drawn resample by
resample, group by group, replication by replication.  Everything else is
NumPy: the group centres, the least-squares slope (numpy.polyfit), and the
percentiles (numpy.quantile, linear interpolation = GSL's
gsl_stats_quantile_from_sorted_data).
Usage: /usr/bin/python3 t/gen_bootstrap_fixture.py > t/data/stats/bootstrap.txt
Not run by make check; the output is committed."""
import numpy as np


class MT19937:
    """The reference MT19937 (Matsumoto & Nishimura), seeded as GSL's."""

    def __init__(self, seed):
        if seed == 0:
            seed = 4357  # GSL's default for 0
        self.mt = [seed & 0xffffffff]
        for i in range(1, 624):
            prev = self.mt[-1]
            self.mt.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xffffffff)
        self.i = 624

    def next(self):
        if self.i >= 624:
            mt = self.mt
            for k in range(624):
                y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff)
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ (0x9908b0df if y & 1 else 0)
            self.i = 0
        y = self.mt[self.i]
        self.i += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c5680
        y ^= (y << 15) & 0xefc60000
        y ^= y >> 18
        return y

    def uniform_int(self, n):
        scale = 0xffffffff // n
        while True:
            k = self.next() // scale
            if k < n:
                return k


def bootstrap(xs, groups, scale, centre, B, seed, level):
    s = seed ^ (seed >> 32)
    r = MT19937(s & 0xffffffff)
    x = np.array(xs, float)
    lx = np.log(x) if scale == "log" else np.log(x / np.log(x))
    slopes = []
    for _ in range(B):
        ly = []
        for y in groups:
            idx = [r.uniform_int(len(y)) for _ in range(len(y))]
            ly.append(np.log(centre(y[idx])))
        slopes.append(np.polyfit(lx, np.array(ly), 1)[0])
    a = (1 - level) / 2
    return np.quantile(slopes, a), np.quantile(slopes, 1 - a)


rng = np.random.default_rng(2612)
xs = [120, 250, 530, 1100, 2300]
reps = [7, 5, 9, 6, 8]
groups = [2.5 * x ** -0.5 * rng.lognormal(0.0, 0.4, size=k) for x, k in zip(xs, reps)]
B, seed, level = 37, 0x1234567890abcdef, 0.9
print("# G ; per group: x k y_1..y_k ; B seed level ; lo hi for (mean, log x), "
      "(median, log x), (mean, log(x / log x))")
print(len(xs))
for x, y in zip(xs, groups):
    print(x, len(y), " ".join(repr(float(v)) for v in y))
print(B, seed, level)
for scale, centre in (("log", np.mean), ("log", np.median), ("nlogn", np.mean)):
    lo, hi = bootstrap(xs, groups, scale, centre, B, seed, level)
    print(repr(float(lo)), repr(float(hi)))
