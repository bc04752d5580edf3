#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the golden fixture of t/test_lm.c: t/data/lm/lm_golden.txt.gz.

Run from the source tree with Debian's python3-torch:
    /usr/bin/python3 t/gen_lm_fixtures.py
(not run by `make check`; the output is committed).

An independent PyTorch reference of moe/lm.h's model: token + learned
position embeddings, pre-LN blocks (LayerNorm, causal multi-head attention
through plain matmuls and a -inf mask, MoE FFN routed token by token with
torch.topk), final LayerNorm, tied or untied head, mean cross-entropy plus
each layer's Switch balance loss; autograd gives every gradient, and
torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW with the warmup-cosine
rate give three training steps. Parameters are drawn in float32 and the
reference runs in float64 on those exact values, so the C float model is
compared within float tolerances and the C double twin within ~1e-10.

The parameters are one flat vector in libmoe's slab order (moe/lm.h,
moe/nn.h, moe/layer.h), so the gradient is that vector's .grad.

gzip'ed text (zcat to read; mtime 0, so the same torch gives the same
bytes). Format: '#' comments, then cases, each "@ label" followed by records
"name count" and count numbers:
  config   V T D L H tie E K S score normalize use_bias route_scale F act
           combine coef B Tseq seed
  params, bias (L x E selection biases), x, y (B, Tseq), logits (B, Tseq, V),
  loss (CE + aux), ce, aux, grads (slab order),
  optim    weight_decay lr warmup total min_ratio clip
  step_loss (3), step_norm (3, before clipping), params_after (after 3 steps)
"""
import gzip
import io
import math
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "lm")
SOFTMAX, SIGMOID = 0, 1
PAPER, ADDITIVE = 0, 1


def r(v):
    return repr(float(v))


class Layout:
    """Named slices of the flat parameter vector, in slab order."""

    def __init__(self, c):
        self.items = []
        self.n = 0
        V, T, D, L, E, S, F = c["V"], c["T"], c["D"], c["L"], c["E"], c["S"], c["F"]
        self.add("wte", (V, D))
        self.add("wpe", (T, D))
        for l in range(L):
            self.add("ln1w%d" % l, (D,))
            self.add("ln1b%d" % l, (D,))
            self.add("Wqkv%d" % l, (3 * D, D))
            self.add("Wo%d" % l, (D, D))
            self.add("ln2w%d" % l, (D,))
            self.add("ln2b%d" % l, (D,))
            self.add("Wr%d" % l, (E, D))
            if c["combine"] == PAPER and S > 0:
                self.add("sigma%d" % l, (S,))
            for i in range(S):
                self.add("sh%d_%d_W1" % (l, i), (F, D))
                self.add("sh%d_%d_W2" % (l, i), (D, F))
            for e in range(E):
                self.add("ro%d_%d_W1" % (l, e), (F, D))
                self.add("ro%d_%d_W2" % (l, e), (D, F))
        self.add("lnfw", (D,))
        self.add("lnfb", (D,))
        if not c["tie"]:
            self.add("head", (V, D))

    def add(self, name, shape):
        k = 1
        for s in shape:
            k *= s
        self.items.append((name, self.n, shape))
        self.n += k

    def views(self, flat):
        return {name: flat[o:o + math.prod(shape)].view(shape) for name, o, shape in self.items}


def init(c, lay, gen):
    """float32 draws (exact in float64): LN 1/0, the rest N(0, 0.3^2)."""
    p = (torch.randn(lay.n, generator=gen, dtype=torch.float32) * 0.3).to(torch.float64)
    v = lay.views(p)
    for name, t in v.items():
        if name.startswith(("ln1w", "ln2w", "lnfw")):
            t.copy_(1 + 0.1 * t)
        elif name.startswith(("ln1b", "ln2b", "lnfb")):
            t.mul_(0.1)
    return p


def layernorm(x, w, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5) * w + b


def attention(a, Wqkv, Wo, B, T, D, H):
    hs = D // H
    qkv = a @ Wqkv.T  # (B, T, 3D)
    q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
    q = q.view(B, T, H, hs).transpose(1, 2)
    k = k.view(B, T, H, hs).transpose(1, 2)
    v = v.view(B, T, H, hs).transpose(1, 2)
    s = q @ k.transpose(-1, -2) / math.sqrt(hs)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    s = s.masked_fill(mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = (p @ v).transpose(1, 2).reshape(B, T, D)
    return o @ Wo.T


def ffn(x, W1, W2):
    return torch.relu(x @ W1.T) @ W2.T


def moe(c, v, l, x, bias):
    """x (N, D) -> y (N, D), aux; routed token by token."""
    N, D = x.shape
    E, K, S = c["E"], c["K"], c["S"]
    logits = x @ v["Wr%d" % l].T
    if c["score"] == SOFTMAX:
        s = torch.softmax(logits, dim=1)
    else:
        s = torch.sigmoid(logits)
    sel = s.detach() + (bias if c["use_bias"] else 0)
    idx = torch.topk(sel, K, dim=1).indices
    rows = []
    for t in range(N):
        vals = s[t, idx[t]]
        w = vals / (vals.sum() + 1e-20) if c["normalize"] else vals
        w = w * c["route_scale"]
        acc = 0
        for k in range(K):
            e = int(idx[t, k])
            acc = acc + w[k] * ffn(x[t], v["ro%d_%d_W1" % (l, e)], v["ro%d_%d_W2" % (l, e)])
        rows.append(acc)
    routed = torch.stack(rows)
    if S == 0:
        y = routed
    elif c["combine"] == ADDITIVE:
        y = routed + sum(ffn(x, v["sh%d_%d_W1" % (l, i)], v["sh%d_%d_W2" % (l, i)]) for i in range(S))
    else:
        om = torch.softmax(v["sigma%d" % l], dim=0)
        y = 0.5 * routed + 0.5 * sum(om[i] * ffn(x, v["sh%d_%d_W1" % (l, i)], v["sh%d_%d_W2" % (l, i)])
                                     for i in range(S))
    aux = torch.zeros((), dtype=torch.float64)
    if c["coef"] > 0:
        load = torch.zeros(E, dtype=torch.float64)
        for e in idx.reshape(-1).tolist():
            load[e] += 1
        f = load / (N * K)
        p = s if c["score"] == SOFTMAX else s / s.sum(dim=1, keepdim=True)
        aux = c["coef"] * E * (f * p.mean(dim=0)).sum()
    return y, aux


def model(c, flat, bias, x, y):
    v = Layout(c).views(flat)
    B, T = x.shape
    D, L, H = c["D"], c["L"], c["H"]
    h = v["wte"][x] + v["wpe"][:T]
    aux = torch.zeros((), dtype=torch.float64)
    for l in range(L):
        a = layernorm(h, v["ln1w%d" % l], v["ln1b%d" % l])
        h = h + attention(a, v["Wqkv%d" % l], v["Wo%d" % l], B, T, D, H)
        m = layernorm(h, v["ln2w%d" % l], v["ln2b%d" % l]).reshape(B * T, D)
        f, al = moe(c, v, l, m, bias[l])
        h = h + f.view(B, T, D)
        aux = aux + al
    z = layernorm(h, v["lnfw"], v["lnfb"])
    W = v["wte"] if c["tie"] else v["head"]
    logits = z @ W.T
    ce = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), y.reshape(-1))
    return logits, ce, aux


def write_case(out, label, c, seed):
    gen = torch.Generator().manual_seed(seed)
    lay = Layout(c)
    p0 = init(c, lay, gen)
    bias = (torch.randn(c["L"], c["E"], generator=gen, dtype=torch.float32) * 0.05).to(torch.float64)
    if not c["use_bias"]:
        bias.zero_()
    B, T = c["B"], c["Tseq"]
    x = torch.randint(0, c["V"], (B, T), generator=gen)
    y = torch.randint(0, c["V"], (B, T), generator=gen)

    flat = p0.clone().requires_grad_(True)
    logits, ce, aux = model(c, flat, bias, x, y)
    loss = ce + aux
    loss.backward()

    opt = dict(weight_decay=0.01, lr=0.01, warmup=1, total=3, min_ratio=0.1, clip=0.05)
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
        for g in adam.param_groups:
            g["lr"] = lr
        adam.zero_grad()
        _, ce_s, aux_s = model(c, w, bias, x, y)
        (ce_s + aux_s).backward()
        step_loss.append(float(ce_s + aux_s))
        step_norm.append(float(torch.nn.utils.clip_grad_norm_([w], opt["clip"])))
        adam.step()

    out.write("@ %s\n" % label)

    def put(name, vals):
        if isinstance(vals, torch.Tensor):
            vals = vals.detach().reshape(-1).tolist()
        out.write("%s %d\n%s\n" % (name, len(vals), " ".join(r(v) for v in vals)))

    put("config", [c[k] for k in ("V", "T", "D", "L", "H", "tie", "E", "K", "S", "score",
                                  "normalize", "use_bias", "route_scale", "F", "act", "combine",
                                  "coef", "B", "Tseq")] + [seed])
    put("params", p0)
    put("bias", bias)
    put("x", x.to(torch.float64))
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


def main():
    os.makedirs(OUT, exist_ok=True)
    base = dict(V=13, T=7, D=8, L=2, H=2, F=6, act=0, B=2, Tseq=6, route_scale=1.0, coef=0.01)
    cases = [
        # label, variant fields
        ("smoe_tied", dict(E=6, K=2, S=0, score=SOFTMAX, normalize=1, use_bias=0,
                           combine=ADDITIVE, tie=1)),
        ("smoe_sg_untied", dict(E=6, K=2, S=0, score=SIGMOID, normalize=1, use_bias=0,
                                combine=ADDITIVE, tie=0)),
        ("ds_v2_additive", dict(E=4, K=1, S=2, score=SOFTMAX, normalize=1, use_bias=0,
                                combine=ADDITIVE, tie=1)),
        ("ds_v3_paper", dict(E=4, K=2, S=2, score=SIGMOID, normalize=1, use_bias=0,
                             combine=PAPER, tie=0)),
        ("ds_v3_bias", dict(E=4, K=2, S=2, score=SIGMOID, normalize=1, use_bias=1,
                            combine=ADDITIVE, tie=1)),
        ("dense", dict(E=1, K=1, S=0, score=SOFTMAX, normalize=1, use_bias=0,
                       combine=ADDITIVE, tie=1, F=18, coef=0.0)),
    ]
    path = os.path.join(OUT, "lm_golden.txt.gz")
    with open(path, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="ascii") as out:
        out.write("# MoE language model golden cases (t/test_lm.c)\n"
                  "# written by t/gen_lm_fixtures.py (torch %s); format in its docstring\n"
                  % torch.__version__)
        for i, (label, fields) in enumerate(cases):
            c = dict(base)
            c.update(fields)
            write_case(out, label, c, 1000 + i)
    print("wrote", path)


if __name__ == "__main__":
    main()
