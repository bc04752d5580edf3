#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the golden fixture of t/test_vision.c: t/data/vision/vision_golden.txt.gz.

Run from the source tree with Debian's python3-torch:
    /usr/bin/python3 t/gen_vision_fixtures.py
(not run by `make check`; the output is committed).

An independent PyTorch reference of moe/vision.h's model: a linear patch
embedding with bias plus learned positions, pre-LN encoder blocks
(LayerNorm, non-causal multi-head attention through plain matmuls, a
dense GELU FFN behind a one-expert router, or the MoE FFN when
"everywhere"), LayerNorm, the MoE connector (routed token by token with
torch.topk; GELU experts; shared experts by either combine rule; Switch
balance loss and router z-loss coef * mean_t logsumexp(l_t)^2), pre-LN
head blocks, final LayerNorm, mean pool over patches, a linear classifier
and mean cross-entropy. Autograd gives every gradient;
torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW with the warmup-cosine
rate give three training steps. Parameters are drawn in float32 and the
reference runs in float64 on those values.

The parameters are one flat vector in libmoe's slab order (moe/vision.h,
moe/nn.h, moe/layer.h), so the gradient is that vector's .grad.

gzip'ed text (mtime 0). Format: '#' comments, then cases, each "@ label"
followed by records "name count" and count numbers:
  config   Hi Wi P C D H L Lh F everywhere E K S score normalize use_bias
           route_scale Fm act combine coef zcoef B seed
  params, bias (connector then encoder MoE layers, E each), x (B, Np, pd),
  y (B), logits (B, C), loss (CE + aux), ce, aux, grads (slab order),
  optim    weight_decay lr warmup total min_ratio clip
  step_loss (3), step_norm (3, before clipping), params_after
"""
import gzip
import io
import math
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "vision")
SOFTMAX, SIGMOID = 0, 1
PAPER, ADDITIVE = 0, 1
GELU = 1


def r(v):
    return repr(float(v))


def dense_cfg(c):
    return dict(E=1, K=1, S=0, score=SOFTMAX, normalize=1, use_bias=0, route_scale=1.0,
                combine=ADDITIVE, coef=0.0, zcoef=0.0, F=c["F"])


def moe_cfg(c):
    return dict(E=c["E"], K=c["K"], S=c["S"], score=c["score"], normalize=c["normalize"],
                use_bias=c["use_bias"], route_scale=c["route_scale"], combine=c["combine"],
                coef=c["coef"], zcoef=c["zcoef"], F=c["Fm"])


class Layout:
    """Named slices of the flat parameter vector, in slab order."""

    def __init__(self, c):
        self.items = []
        self.n = 0
        D, C = c["D"], c["C"]
        Np, pd = c["Np"], c["P"] * c["P"]
        self.add("Wp", (D, pd))
        self.add("bp", (D,))
        self.add("pos", (Np, D))
        enc = moe_cfg(c) if c["everywhere"] else dense_cfg(c)
        for l in range(c["L"]):
            self.block("enc%d" % l, D, enc)
        self.add("lncw", (D,))
        self.add("lncb", (D,))
        self.layer("conn", D, moe_cfg(c))
        for j in range(c["Lh"]):
            self.block("head%d" % j, D, dense_cfg(c))
        self.add("lnfw", (D,))
        self.add("lnfb", (D,))
        self.add("Wc", (C, D))
        self.add("bc", (C,))

    def block(self, pre, D, mc):
        self.add(pre + "ln1w", (D,))
        self.add(pre + "ln1b", (D,))
        self.add(pre + "Wqkv", (3 * D, D))
        self.add(pre + "Wo", (D, D))
        self.add(pre + "ln2w", (D,))
        self.add(pre + "ln2b", (D,))
        self.layer(pre + "ffn", D, mc)

    def layer(self, pre, D, mc):
        E, S, F = mc["E"], mc["S"], mc["F"]
        self.add(pre + "Wr", (E, D))
        if mc["combine"] == PAPER and S > 0:
            self.add(pre + "sigma", (S,))
        for i in range(S):
            self.add(pre + "sh%d_W1" % i, (F, D))
            self.add(pre + "sh%d_W2" % i, (D, F))
        for e in range(E):
            self.add(pre + "ro%d_W1" % e, (F, D))
            self.add(pre + "ro%d_W2" % e, (D, F))

    def add(self, name, shape):
        self.items.append((name, self.n, shape))
        self.n += math.prod(shape)

    def views(self, flat):
        return {name: flat[o:o + math.prod(shape)].view(shape) for name, o, shape in self.items}


def init(lay, gen):
    """float32 draws (exact in float64): LN weights 1 + 0.1 N, LN biases 0.1 N, rest 0.3 N."""
    p = (torch.randn(lay.n, generator=gen, dtype=torch.float32) * 0.3).to(torch.float64)
    v = lay.views(p)
    for name, t in v.items():
        if name.endswith(("ln1w", "ln2w")) or name in ("lncw", "lnfw"):
            t.copy_(1 + 0.1 * t)
        elif name.endswith(("ln1b", "ln2b")) or name in ("lncb", "lnfb"):
            t.mul_(0.1)
    return p


def layernorm(x, w, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5) * w + b


def attention(a, Wqkv, Wo, B, T, D, H):
    """Non-causal multi-head self-attention, no biases."""
    hs = D // H
    qkv = a @ Wqkv.T
    q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
    q = q.view(B, T, H, hs).transpose(1, 2)
    k = k.view(B, T, H, hs).transpose(1, 2)
    v = v.view(B, T, H, hs).transpose(1, 2)
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs), dim=-1)
    return (p @ v).transpose(1, 2).reshape(B, T, D) @ Wo.T


def ffn(x, W1, W2):
    """mlp2x_gelu: Linear, exact GELU, Linear (no biases)."""
    return torch.nn.functional.gelu(x @ W1.T) @ W2.T


def moe(mc, v, pre, x, bias):
    """x (N, D) -> y (N, D), aux (balance + z-loss); routed token by token."""
    N, D = x.shape
    E, K, S = mc["E"], mc["K"], mc["S"]
    logits = x @ v[pre + "Wr"].T
    s = torch.softmax(logits, dim=1) if mc["score"] == SOFTMAX else torch.sigmoid(logits)
    sel = s.detach() + (bias if mc["use_bias"] else 0)
    idx = torch.topk(sel, K, dim=1).indices
    rows = []
    for t in range(N):
        vals = s[t, idx[t]]
        w = vals / (vals.sum() + 1e-20) if mc["normalize"] else vals
        w = w * mc["route_scale"]
        acc = 0
        for k in range(K):
            e = int(idx[t, k])
            acc = acc + w[k] * ffn(x[t], v[pre + "ro%d_W1" % e], v[pre + "ro%d_W2" % e])
        rows.append(acc)
    routed = torch.stack(rows)
    sh = [ffn(x, v[pre + "sh%d_W1" % i], v[pre + "sh%d_W2" % i]) for i in range(S)]
    if S == 0:
        y = routed
    elif mc["combine"] == ADDITIVE:
        y = routed + sum(sh)
    else:
        om = torch.softmax(v[pre + "sigma"], dim=0)
        y = 0.5 * routed + 0.5 * sum(om[i] * sh[i] for i in range(S))
    aux = torch.zeros((), dtype=torch.float64)
    if mc["coef"] > 0:
        load = torch.zeros(E, dtype=torch.float64)
        for e in idx.reshape(-1).tolist():
            load[e] += 1
        f = load / (N * K)
        p = s if mc["score"] == SOFTMAX else s / s.sum(dim=1, keepdim=True)
        aux = aux + mc["coef"] * E * (f * p.mean(dim=0)).sum()
    if mc["zcoef"] > 0:
        aux = aux + mc["zcoef"] * (torch.logsumexp(logits, dim=1) ** 2).mean()
    return y, aux


def block(mc, v, pre, h, bias, H):
    B, T, D = h.shape
    a = layernorm(h, v[pre + "ln1w"], v[pre + "ln1b"])
    h = h + attention(a, v[pre + "Wqkv"], v[pre + "Wo"], B, T, D, H)
    m = layernorm(h, v[pre + "ln2w"], v[pre + "ln2b"]).reshape(B * T, D)
    f, aux = moe(mc, v, pre + "ffn", m, bias)
    return h + f.view(B, T, D), aux


def model(c, flat, biases, x, y):
    v = Layout(c).views(flat)
    B, Np, pd = x.shape
    D, H = c["D"], c["H"]
    h = x @ v["Wp"].T + v["bp"] + v["pos"]
    aux = torch.zeros((), dtype=torch.float64)
    enc = moe_cfg(c) if c["everywhere"] else dense_cfg(c)
    for l in range(c["L"]):
        h, a = block(enc, v, "enc%d" % l, h, biases[1 + l] if c["everywhere"] else None, H)
        aux = aux + a
    u = layernorm(h, v["lncw"], v["lncb"]).reshape(B * Np, D)
    g, a = moe(moe_cfg(c), v, "conn", u, biases[0])
    aux = aux + a
    g = g.view(B, Np, D)
    for j in range(c["Lh"]):
        g, a = block(dense_cfg(c), v, "head%d" % j, g, None, H)
        aux = aux + a
    z = layernorm(g, v["lnfw"], v["lnfb"])
    q = z.mean(dim=1)
    logits = q @ v["Wc"].T + v["bc"]
    ce = torch.nn.functional.cross_entropy(logits, y)
    return logits, ce, aux


def write_case(out, label, c, seed):
    gen = torch.Generator().manual_seed(seed)
    c = dict(c)
    c["Np"] = (c["Hi"] // c["P"]) * (c["Wi"] // c["P"])
    lay = Layout(c)
    p0 = init(lay, gen)
    nmoe = 1 + (c["L"] if c["everywhere"] else 0)
    biases = (torch.randn(nmoe, c["E"], generator=gen, dtype=torch.float32) * 0.05).to(torch.float64)
    if not c["use_bias"]:
        biases.zero_()
    B, pd = c["B"], c["P"] * c["P"]
    x = torch.randn(B, c["Np"], pd, generator=gen, dtype=torch.float32).to(torch.float64)
    y = torch.randint(0, c["C"], (B,), generator=gen)

    flat = p0.clone().requires_grad_(True)
    logits, ce, aux = model(c, flat, biases, x, y)
    loss = ce + aux
    loss.backward()

    opt = dict(weight_decay=0.01, lr=0.01, warmup=1, total=3, min_ratio=0.1, clip=0.5)
    w = torch.nn.Parameter(p0.clone())
    adam = torch.optim.AdamW([w], lr=opt["lr"], betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=opt["weight_decay"])
    step_loss, step_norm = [], []
    for s in range(3):
        if s < opt["warmup"]:
            lr = opt["lr"] * (s + 1) / opt["warmup"]
        else:
            q = min(1.0, (s - opt["warmup"]) / max(1, opt["total"] - opt["warmup"]))
            lr = opt["lr"] * (opt["min_ratio"] + (1 - opt["min_ratio"]) * 0.5 * (1 + math.cos(math.pi * q)))
        for gr in adam.param_groups:
            gr["lr"] = lr
        adam.zero_grad()
        _, ce_s, aux_s = model(c, w, biases, x, y)
        (ce_s + aux_s).backward()
        step_loss.append(float(ce_s + aux_s))
        step_norm.append(float(torch.nn.utils.clip_grad_norm_([w], opt["clip"])))
        adam.step()

    out.write("@ %s\n" % label)

    def put(name, vals):
        if isinstance(vals, torch.Tensor):
            vals = vals.detach().reshape(-1).tolist()
        out.write("%s %d\n%s\n" % (name, len(vals), " ".join(r(v) for v in vals)))

    put("config", [c[k] for k in ("Hi", "Wi", "P", "C", "D", "H", "L", "Lh", "F", "everywhere",
                                  "E", "K", "S", "score", "normalize", "use_bias", "route_scale",
                                  "Fm", "act", "combine", "coef", "zcoef", "B")] + [seed])
    put("params", p0)
    put("bias", biases)
    put("x", x)
    put("y", y.to(torch.float64))
    put("logits", logits)
    put("loss", [float(loss)])
    put("ce", [float(ce)])
    put("aux", [float(aux)])
    put("grads", flat.grad)
    put("optim", [opt[k] for k in ("weight_decay", "lr", "warmup", "total", "min_ratio", "clip")])
    put("step_loss", step_loss)
    put("step_norm", step_norm)
    put("params_after", w)


def write_idx(path, dims, data):
    """An IDX file of unsigned bytes, gzip'ed with mtime 0."""
    head = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(head + bytes(data))


def tiny_fashion(n_train=240, n_test=60):
    """A tiny Fashion-MNIST stand-in for t/vision-task.sh (fmnist-tiny/):
    28x28 images whose class c (0..9) is a bright 3-row band at rows
    2c+1..2c+3, with sparse noise; labels cycle through the classes."""
    d = os.path.join(OUT, "fmnist-tiny")
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(77)
    for split, n in (("train", n_train), ("t10k", n_test)):
        img = torch.zeros(n, 28, 28, dtype=torch.uint8)
        lab = torch.tensor([i % 10 for i in range(n)], dtype=torch.uint8)
        for i in range(n):
            c = int(lab[i])
            img[i, 2 * c + 1:2 * c + 4, 4:24] = 200
            noise = torch.rand(28, 28, generator=gen) < 0.05
            img[i][noise] = 90
        write_idx(os.path.join(d, "%s-images-idx3-ubyte.gz" % split), (n, 28, 28), img.reshape(-1).tolist())
        write_idx(os.path.join(d, "%s-labels-idx1-ubyte.gz" % split), (n,), lab.tolist())


def main():
    os.makedirs(OUT, exist_ok=True)
    tiny_fashion()
    # 4 x 6 images in 2 x 2 patches: Np = 6 patches of pd = 4 values
    base = dict(Hi=4, Wi=6, P=2, C=5, D=8, H=2, L=1, Lh=1, F=6, everywhere=0, Fm=5, act=GELU,
                B=3, route_scale=1.0, coef=0.01, zcoef=0.001)
    cases = [
        ("smoe", dict(E=4, K=2, S=0, score=SOFTMAX, normalize=1, use_bias=0, combine=PAPER)),
        ("smoe_sg", dict(E=4, K=2, S=0, score=SIGMOID, normalize=1, use_bias=0, combine=PAPER)),
        ("ds_v2_paper", dict(E=3, K=1, S=1, score=SOFTMAX, normalize=1, use_bias=0,
                             combine=PAPER)),
        ("ds_v3_paper", dict(E=3, K=2, S=1, score=SIGMOID, normalize=1, use_bias=0,
                             combine=PAPER, zcoef=0.05)),
        ("ds_v3_bias_additive_everywhere", dict(E=3, K=2, S=1, score=SIGMOID, normalize=1,
                                                use_bias=1, combine=ADDITIVE, everywhere=1)),
        ("ds_v2_S2_everywhere_L2", dict(E=4, K=2, S=2, score=SOFTMAX, normalize=1, use_bias=0,
                                        combine=PAPER, everywhere=1, L=2, Lh=0, coef=0.1,
                                        zcoef=0.01)),
    ]
    path = os.path.join(OUT, "vision_golden.txt.gz")
    with open(path, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="ascii") as out:
        out.write("# MoE vision model golden cases (t/test_vision.c)\n"
                  "# written by t/gen_vision_fixtures.py (torch %s); format in its docstring\n"
                  % torch.__version__)
        for i, (label, fields) in enumerate(cases):
            c = dict(base)
            c.update(fields)
            write_case(out, label, c, 2000 + i)
    print("wrote", path)


if __name__ == "__main__":
    main()
