#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the reference fixtures of t/test_gmoe_ref.c into t/data/gmoe/.

Run from the source tree:  /usr/bin/python3 t/gen_gmoe_fixtures.py
(not run by `make check`; the outputs are committed).

Independent of libmoe: NumPy evaluates the definitions directly.

voronoi_ref.gmoe / voronoi_ref.txt: pairs (fit, truth) of Gaussian MoE
mixing measures in the text form of moe/gmoe.h, and the Voronoi loss of
each pair computed from the paper's definitions (eq. 4, 6, 10; Thm 5's D5 as the
max over K-subsets of the true routed atoms), without any alignment,
shift or scale (the opts align_relu = min_shift = sigmoid_scale = 0).
The fitted measures are perturbed copies of the truth whose masses do
NOT match the truth's (Σ_{i∈V_j} ω_i ≠ ω*_j, Σ e^{β0i} ≠ e^{β*0j},
Σ σ(β0i) ≠ σ(β*0j)), with cells of 1, 2 and 3 atoms, so every mass term
and every exponent r(|V|) contributes. voronoi_ref.txt: one line per
pair, "KIND TOPK VALUE" (KIND 1..5, TOPK for D5, VALUE repr()).

em_step.txt: a model with NON-uniform shared weights ω and data (X, Y);
the reference mean log-likelihood (1/n) Σ_t log f(y_t | x_t) and the
weights after one EM M-step for ω:
    R_tc ∝ ½ ω_i N(y; h1(x; κ_i), τ_i)  (shared c = i)
         ∝ ½ g_j(x) N(y; h2(x; η_j), ν_j)  (routed c = S + j)
    ω_i' = Σ_t R_ti / Σ_t Σ_{i'<S} R_ti'
"""
import itertools
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gmoe")
rng = np.random.default_rng(20261129)


class Model:
    def __init__(self, d, k1, k2, gate, sk, rk, topk=0):
        self.d, self.k1, self.k2, self.gate, self.sk, self.rk, self.topk = d, k1, k2, gate, sk, rk, topk
        self.omega = np.full(k1, 1.0 / k1)
        self.kappa0 = np.zeros(k1); self.kappa1 = np.zeros((k1, d)); self.kappa2 = np.ones(k1)
        self.tau = np.ones(k1)
        self.beta0 = np.zeros(k2); self.beta1 = np.zeros((k2, d)); self.eta0 = np.zeros(k2)
        self.eta1 = np.zeros((k2, d)); self.eta2 = np.ones(k2); self.nu = np.ones(k2)

    def text(self):
        s = ["moebench-gmoe 1", "d %d" % self.d, "k1 %d" % self.k1, "k2 %d" % self.k2,
             "gate %s" % self.gate, "shared_expert %s" % self.sk, "routed_expert %s" % self.rk,
             "topk %d" % self.topk]
        for i in range(self.k1):
            s.append("shared " + " ".join(repr(float(v)) for v in
                     [self.omega[i], self.kappa0[i], *self.kappa1[i], self.kappa2[i], self.tau[i]]))
        for j in range(self.k2):
            s.append("routed " + " ".join(repr(float(v)) for v in
                     [self.beta0[j], *self.beta1[j], self.eta0[j], *self.eta1[j], self.eta2[j], self.nu[j]]))
        return "\n".join(s) + "\n"

    def kappa(self, i):
        v = [self.kappa0[i], *self.kappa1[i]]
        if self.sk == "relu":
            v.append(self.kappa2[i])
        return np.array(v)

    def eta(self, j):
        if self.rk == "relu":
            return np.array([*self.eta1[j], self.eta2[j]])
        return np.array([self.eta0[j], *self.eta1[j]])


def r_of(m):
    return 1 if m <= 1 else {2: 4, 3: 6}.get(m, 7)


def truth(d, k1, k2, gate, sk, rk, topk=0):
    t = Model(d, k1, k2, gate, sk, rk, topk)
    t.omega = rng.dirichlet(np.ones(k1) * 3)
    for i in range(k1):
        t.kappa0[i] = rng.normal(); t.kappa1[i] = rng.normal(size=d) * 2 + 3 * i
        t.kappa2[i] = 1 + rng.uniform(); t.tau[i] = 0.2 + 0.5 * rng.uniform()
    for j in range(k2):
        t.beta0[j] = rng.normal() * 0.5; t.beta1[j] = rng.normal(size=d) + 4 * j
        t.eta0[j] = rng.normal(); t.eta1[j] = rng.normal(size=d) * 2 - 4 * j
        t.eta2[j] = 1 + rng.uniform(); t.nu[j] = 0.2 + 0.5 * rng.uniform()
    return t


def perturbed(t, shared_copies, routed_copies, eps=0.05):
    """Fit with shared_copies[j] / routed_copies[j] atoms near true atom j;
    masses split unevenly and scaled off the truth."""
    k1, k2 = sum(shared_copies), sum(routed_copies)
    f = Model(t.d, k1, k2, t.gate, t.sk, t.rk, t.topk)
    i = 0
    w = []
    for j, c in enumerate(shared_copies):
        for _ in range(c):
            w.append(t.omega[j] * rng.uniform(0.3, 1.2) / c)
            f.kappa0[i] = t.kappa0[j] + eps * rng.normal()
            f.kappa1[i] = t.kappa1[j] + eps * rng.normal(size=t.d)
            f.kappa2[i] = t.kappa2[j] + eps * rng.normal()
            f.tau[i] = t.tau[j] + eps * rng.uniform()
            i += 1
    f.omega = np.array(w) / sum(w)
    i = 0
    for j, c in enumerate(routed_copies):
        for _ in range(c):
            f.beta0[i] = t.beta0[j] + rng.uniform(-0.6, 0.6)
            f.beta1[i] = t.beta1[j] + eps * rng.normal(size=t.d)
            f.eta0[i] = t.eta0[j] + eps * rng.normal()
            f.eta1[i] = t.eta1[j] + eps * rng.normal(size=t.d)
            f.eta2[i] = t.eta2[j] + eps * rng.normal()
            f.nu[i] = t.nu[j] + eps * rng.uniform()
            i += 1
    return f


def cells(dist, nf, nt):
    return [min(range(nt), key=lambda j: (dist(i, j), j)) for i in range(nf)]


def shared_block(f, t):
    V = cells(lambda i, j: np.sum((f.kappa(i) - t.kappa(j)) ** 2) + (f.tau[i] - t.tau[j]) ** 2, f.k1, t.k1)
    L = 0.0
    for j in range(t.k1):
        mem = [i for i in range(f.k1) if V[i] == j]
        L += abs(sum(f.omega[i] for i in mem) - t.omega[j])
        m, r = len(mem), r_of(len(mem))
        for i in mem:
            dtau = abs(f.tau[i] - t.tau[j])
            if f.sk == "relu":
                dk = np.linalg.norm(f.kappa(i) - t.kappa(j))
                term = dk + dtau if m == 1 else dk ** 2 + dtau ** 2
            else:
                dk1 = np.linalg.norm(f.kappa1[i] - t.kappa1[j]); dk0 = abs(f.kappa0[i] - t.kappa0[j])
                term = dk1 + dk0 + dtau if m == 1 else dk1 ** 2 + dk0 ** r + dtau ** (r / 2)
            L += f.omega[i] * term
    return L


def routed_cells(f, t):
    return cells(lambda i, j: np.sum((f.beta1[i] - t.beta1[j]) ** 2) + np.sum((f.eta(i) - t.eta(j)) ** 2)
                 + (f.nu[i] - t.nu[j]) ** 2, f.k2, t.k2)


def routed_softmax(f, t, js):
    V = routed_cells(f, t)
    L = 0.0
    for j in js:
        mem = [i for i in range(f.k2) if V[i] == j]
        L += abs(sum(np.exp(f.beta0[i]) for i in mem) - np.exp(t.beta0[j]))
        m, r = len(mem), r_of(len(mem))
        for i in mem:
            db1 = np.linalg.norm(f.beta1[i] - t.beta1[j]); dnu = abs(f.nu[i] - t.nu[j])
            if f.rk == "relu":
                de = np.linalg.norm(f.eta(i) - t.eta(j))
                term = db1 + de + dnu if m == 1 else db1 ** 2 + de ** 2 + dnu ** 2
            else:
                de1 = np.linalg.norm(f.eta1[i] - t.eta1[j]); de0 = abs(f.eta0[i] - t.eta0[j])
                term = (db1 + de1 + de0 + dnu if m == 1 else
                        db1 ** r + de1 ** (r / 2) + de0 ** r + dnu ** (r / 2))
            L += np.exp(f.beta0[i]) * term
    return L


def sigm(u):
    return 1 / (1 + np.exp(-u))


def routed_d3(f, t):   # ReLU routed experts only
    V = routed_cells(f, t)
    L = 0.0
    for j in range(t.k2):
        mem = [i for i in range(f.k2) if V[i] == j]
        m = len(mem)
        if m > 1:
            L += abs(sum(sigm(f.beta0[i]) for i in mem) - sigm(t.beta0[j]))
        for i in mem:
            db1 = np.linalg.norm(f.beta1[i] - t.beta1[j]); dnu = abs(f.nu[i] - t.nu[j])
            de = np.linalg.norm(f.eta(i) - t.eta(j))
            if m == 1:
                L += db1 + abs(f.beta0[i] - t.beta0[j]) + de + dnu
            else:
                L += db1 ** 2 + de ** 2 + dnu ** 2
    return L


def loss(kind, f, t, topk=0):
    if kind in (1, 2):
        return shared_block(f, t) + routed_softmax(f, t, range(t.k2))
    if kind == 3:
        return shared_block(f, t) + routed_d3(f, t)
    if kind == 5:
        return shared_block(f, t) + max(routed_softmax(f, t, M) for M in itertools.combinations(range(t.k2), topk))
    raise ValueError(kind)


def write_voronoi():
    cases = []
    for d, sk, rk in ((1, "relu", "relu"), (2, "relu", "relu"), (2, "linear", "linear"), (1, "relu", "linear")):
        t = truth(d, 2, 3, "softmax", sk, rk)
        for sc, rc in (((2, 1), (1, 2, 3)), ((1, 1), (3, 1, 1)), ((1, 3), (2, 2, 1))):
            f = perturbed(t, sc, rc)
            cases.append((1 if rk == "relu" else 2, 0, f, t))
    for d in (1, 2):
        t = truth(d, 2, 3, "nsigmoid", "relu", "relu")
        for sc, rc in (((2, 1), (1, 2, 3)), ((1, 2), (3, 1, 2))):
            cases.append((3, 0, perturbed(t, sc, rc), t))
    for d, K in ((1, 1), (2, 2)):
        t = truth(d, 2, 3, "softmax", "relu", "relu", topk=K)
        for sc, rc in (((2, 1), (1, 2, 3)), ((1, 1), (2, 1, 1))):
            cases.append((5, K, perturbed(t, sc, rc), t))
    with open(os.path.join(OUT, "voronoi_ref.gmoe"), "w") as g, open(os.path.join(OUT, "voronoi_ref.txt"), "w") as v:
        g.write("# fit/truth pairs for t/test_gmoe_ref.c, written by t/gen_gmoe_fixtures.py\n")
        v.write("# KIND TOPK VALUE per fit/truth pair of voronoi_ref.gmoe (t/gen_gmoe_fixtures.py, NumPy %s)\n"
                % np.__version__)
        for kind, K, f, t in cases:
            g.write(f.text()); g.write(t.text())
            v.write("%d %d %r\n" % (kind, K, float(loss(kind, f, t, K))))


def write_em():
    d, S, E, n = 2, 3, 2, 200
    m = Model(d, S, E, "softmax", "relu", "relu")
    m.omega = np.array([0.6, 0.3, 0.1])
    m.kappa0 = np.array([0.3, -0.5, 0.1]); m.kappa1 = rng.normal(size=(S, d)); m.kappa2 = np.array([1.5, 0.7, 2.0])
    m.tau = np.array([0.4, 0.9, 0.25])
    m.beta0 = np.array([0.4, -0.2]); m.beta1 = rng.normal(size=(E, d))
    m.eta1 = rng.normal(size=(E, d)); m.eta2 = np.array([1.2, -0.8]); m.nu = np.array([0.5, 0.3])
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=n) + X[:, 0]
    lc = np.zeros((n, S + E))
    for i in range(S):
        mu = m.kappa2[i] * np.maximum(X @ m.kappa1[i] + m.kappa0[i], 0)
        lc[:, i] = np.log(0.5) + np.log(m.omega[i]) - 0.5 * np.log(2 * np.pi * m.tau[i]) - (Y - mu) ** 2 / (2 * m.tau[i])
    u = X @ m.beta1.T + m.beta0
    lg = u - np.log(np.sum(np.exp(u), axis=1, keepdims=True))
    for j in range(E):
        mu = m.eta2[j] * np.maximum(X @ m.eta1[j], 0)
        lc[:, S + j] = np.log(0.5) + lg[:, j] - 0.5 * np.log(2 * np.pi * m.nu[j]) - (Y - mu) ** 2 / (2 * m.nu[j])
    mx = lc.max(axis=1, keepdims=True)
    ll = mx[:, 0] + np.log(np.sum(np.exp(lc - mx), axis=1))
    R = np.exp(lc - ll[:, None])
    mass = R[:, :S].sum(axis=0)
    omega = mass / mass.sum()
    with open(os.path.join(OUT, "em_model.gmoe"), "w") as g:
        g.write("# start of one EM step for t/test_gmoe_ref.c (t/gen_gmoe_fixtures.py)\n")
        g.write(m.text())
    with open(os.path.join(OUT, "em_step.txt"), "w") as v:
        v.write("# one EM step from em_model.gmoe (t/gen_gmoe_fixtures.py, NumPy %s)\n" % np.__version__)
        v.write("n %d\n" % n)
        for t in range(n):
            v.write("xy %s %r\n" % (" ".join(repr(float(a)) for a in X[t]), float(Y[t])))
        v.write("loglik %r\n" % float(ll.mean()))
        v.write("omega %s\n" % " ".join(repr(float(a)) for a in omega))


os.makedirs(OUT, exist_ok=True)
write_voronoi()
write_em()
