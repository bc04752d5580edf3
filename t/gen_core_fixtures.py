#!/usr/bin/python3
"""Write the golden fixtures of t/test_golden.c into t/data/core/.

Run from the source tree with Debian's python3-torch:
    /usr/bin/python3 t/gen_core_fixtures.py
(not run by `make check`; the outputs are committed).

The reference is written independently of libmoe's algorithm: it routes
token by token with torch.topk and lets autograd produce every gradient.
Inputs and weights are drawn in float32 and the reference is evaluated in
float64 on those exact values, so the C float code is compared within
float tolerances and the C double twin within ~1e-12.

File format (one fixture per file): '#' comment lines, then records
    <name> <count>
    <count whitespace-separated numbers>
floats written with repr() of their float64 value (exact for the float32
inputs), integers as integers.
"""
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "core")

SOFTMAX, SIGMOID = 0, 1
LINEAR, FFN = 0, 1
ACTS = {0: torch.relu, 1: lambda h: torch.nn.functional.gelu(h), 2: torch.nn.functional.silu,
        3: torch.tanh}
PAPER, ADDITIVE = 0, 1


class Writer:
    def __init__(self, path, comment):
        self.f = open(path, "w")
        self.f.write("# %s\n# written by t/gen_core_fixtures.py (torch %s)\n" % (comment, torch.__version__))

    def put(self, name, values):
        if isinstance(values, torch.Tensor):
            values = values.detach().reshape(-1).tolist()
        elif not isinstance(values, (list, tuple)):
            values = [values]
        self.f.write("%s %d\n" % (name, len(values)))
        self.f.write(" ".join(repr(int(v)) if isinstance(v, int) else repr(float(v)) for v in values))
        self.f.write("\n")

    def close(self):
        self.f.close()


def f32(shape, gen, std=1.0):
    """float32 draws, returned as float64 tensors holding the exact values."""
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * std).to(torch.float64)


def expert_params(cfg, gen):
    D, F = cfg["D"], cfg["F"]
    p = {}
    if cfg["kind"] == LINEAR:
        p["W"] = f32((D, D), gen, D ** -0.5)
        if cfg["ebias"]:
            p["b"] = f32((D,), gen, 0.3)
        order = ["W", "b"]
    else:
        p["W1"] = f32((F, D), gen, D ** -0.5)
        if cfg["ebias"]:
            p["b1"] = f32((F,), gen, 0.3)
        p["W2"] = f32((D, F), gen, F ** -0.5)
        if cfg["ebias"]:
            p["b2"] = f32((D,), gen, 0.3)
        order = ["W1", "b1", "W2", "b2"]
    return [(k, p[k].requires_grad_()) for k in order if k in p]


def expert_apply(cfg, p, x):
    d = dict(p)
    if cfg["kind"] == LINEAR:
        y = x @ d["W"].T
        return y + d["b"] if "b" in d else y
    h = x @ d["W1"].T
    if "b1" in d:
        h = h + d["b1"]
    y = ACTS[cfg["act"]](h) @ d["W2"].T
    return y + d["b2"] if "b2" in d else y


def layer_fixture(name, cfg, seed, T=12):
    gen = torch.Generator().manual_seed(seed)
    D, E, K, S = cfg["D"], cfg["E"], cfg["K"], cfg["S"]
    Wr = f32((E, D), gen, D ** -0.5).requires_grad_()
    paper = cfg["combine"] == PAPER
    sigma = f32((S,), gen, 0.5).requires_grad_() if paper and S > 0 else None
    shared = [expert_params(cfg, gen) for _ in range(S)]
    routed = [expert_params(cfg, gen) for _ in range(E)]
    bias = f32((E,), gen, 0.05) if cfg["use_bias"] else torch.zeros(E, dtype=torch.float64)
    x = f32((T, D), gen).requires_grad_()
    R = f32((T, D), gen)

    logits = x @ Wr.T
    s = torch.softmax(logits, dim=1) if cfg["score"] == SOFTMAX else torch.sigmoid(logits)
    if K == E:
        idx = torch.arange(E).repeat(T, 1)
    else:
        _, idx = torch.topk(s.detach() + bias, K, dim=1, sorted=True)
    v = s.gather(1, idx)
    if cfg["normalize"]:
        v = v / (v.sum(dim=1, keepdim=True) + 1e-20)
    w = cfg["route_scale"] * v
    rows = []
    for t in range(T):
        acc = 0
        for k in range(K):
            acc = acc + w[t, k] * expert_apply(cfg, routed[idx[t, k]], x[t:t + 1])[0]
        rows.append(acc)
    routed_mix = torch.stack(rows)
    if S == 0:
        y = routed_mix
    elif paper:
        omega = torch.softmax(sigma, dim=0)
        sh = sum(omega[i] * expert_apply(cfg, shared[i], x) for i in range(S))
        y = 0.5 * sh + 0.5 * routed_mix
    else:
        y = sum(expert_apply(cfg, shared[i], x) for i in range(S)) + routed_mix

    counts = torch.bincount(idx.reshape(-1), minlength=E).to(torch.float64)
    f = counts / (T * K)
    p = torch.softmax(logits, dim=1) if cfg["score"] == SOFTMAX else s / s.sum(dim=1, keepdim=True)
    aux = cfg["coef"] * E * (f * p.mean(dim=0)).sum()
    L = (y * R).sum() + aux
    L.backward()

    slab = [Wr] + ([sigma] if sigma is not None else [])
    for blk in shared + routed:
        slab += [t for _, t in blk]
    wr = Writer(os.path.join(OUT, "layer_%s.txt" % name), "MoE layer fixture '%s'" % name)
    for key in ["D", "E", "K", "S", "F", "score", "normalize", "route_scale", "use_bias", "kind",
                "act", "ebias", "combine", "coef"]:
        wr.put(key, cfg[key] if isinstance(cfg[key], int) else float(cfg[key]))
    wr.put("T", T)
    wr.put("params", torch.cat([t.detach().reshape(-1) for t in slab]))
    wr.put("bias", bias)
    wr.put("x", x)
    wr.put("dy", R)
    wr.put("y", y)
    wr.put("idx", [int(i) for i in idx.reshape(-1).tolist()])
    wr.put("weights", w)
    wr.put("aux", float(aux))
    wr.put("grads", torch.cat([t.grad.reshape(-1) for t in slab]))
    wr.put("dx", x.grad)
    wr.close()


def optim_fixtures():
    gen = torch.Generator().manual_seed(7)
    n, steps = 23, 4
    p0 = torch.randn(n, generator=gen, dtype=torch.float32)
    grads = [torch.randn(n, generator=gen, dtype=torch.float32) * (0.1 * (s + 1)) for s in range(steps)]
    grads[1][3] = 0.0
    runs = [
        ("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.95), eps=1e-8,
                                               weight_decay=0.05),
         dict(kind=1, lr=0.01, beta1=0.9, beta2=0.95, eps=1e-8, wd=0.05, momentum=0.0, nesterov=0)),
        ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
         dict(kind=0, lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01, momentum=0.9, nesterov=1)),
    ]
    for name, make, cfg in runs:
        p = p0.clone().requires_grad_()
        opt = make([p])
        wr = Writer(os.path.join(OUT, "optim_%s.txt" % name), "torch.optim %s trajectory (float32)" % name)
        for k, v in cfg.items():
            wr.put(k, v if isinstance(v, int) else float(v))
        wr.put("n", n)
        wr.put("steps", steps)
        wr.put("p0", p0)
        for s in range(steps):
            p.grad = grads[s].clone()
            opt.step()
            wr.put("g%d" % s, grads[s])
            wr.put("p%d" % (s + 1), p)
        wr.close()


def loss_fixture():
    gen = torch.Generator().manual_seed(11)
    T, V, n = 6, 9, 17
    logits = f32((T, V), gen, 3.0).requires_grad_()
    targets = torch.randint(0, V, (T,), generator=gen)
    ce = torch.nn.functional.cross_entropy(logits, targets)
    ce.backward()
    pred = f32((n,), gen).requires_grad_()
    target = f32((n,), gen)
    mse = torch.nn.functional.mse_loss(pred, target)
    mse.backward()
    wr = Writer(os.path.join(OUT, "loss.txt"), "cross-entropy and MSE (float64 on float32 inputs)")
    wr.put("T", T)
    wr.put("V", V)
    wr.put("logits", logits)
    wr.put("targets", [int(t) for t in targets.tolist()])
    wr.put("ce", float(ce))
    wr.put("dlogits", logits.grad)
    wr.put("n", n)
    wr.put("pred", pred)
    wr.put("target", target)
    wr.put("mse", float(mse))
    wr.put("dpred", pred.grad)
    wr.close()


def base(**kw):
    cfg = dict(D=8, E=6, K=2, S=1, F=10, score=SOFTMAX, normalize=1, route_scale=1.0, use_bias=0,
               kind=FFN, act=0, ebias=1, combine=PAPER, coef=0.0)
    cfg.update(kw)
    return cfg


LAYERS = {
    # DeepSeek-V2 / the paper's SMoE: top-K softmax renormalised, ReLU FFN, one shared expert
    "softmax_topk_relu_paper_s1": base(),
    # DeepSeek-V3 routing: biased selection, scale 2.5, additive shared experts
    "deepseek_v3_silu_additive_s2": base(score=SIGMOID, route_scale=2.5, use_bias=1, act=2, ebias=0,
                                         S=2, combine=ADDITIVE),
    # dense softmax over linear experts, no shared experts
    "softmax_dense_linear_s0": base(K=6, normalize=0, kind=LINEAR, S=0),
    # top-3 raw sigmoid, GELU, two shared experts (learned omega), balance loss
    "sigmoid_topk_gelu_paper_s2_aux": base(score=SIGMOID, normalize=0, K=3, act=1, S=2, coef=0.01),
    # the paper's theory gate: dense normalized sigmoid, tanh, balance loss
    "sigmoid_norm_tanh_additive_s1_aux": base(score=SIGMOID, K=6, act=3, combine=ADDITIVE, coef=0.02),
}


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    for i, (name, cfg) in enumerate(sorted(LAYERS.items())):
        layer_fixture(name, cfg, 100 + i)
    optim_fixtures()
    loss_fixture()
    print("wrote fixtures to", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
