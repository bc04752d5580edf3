#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the golden fixtures of t/test_golden.c into t/data/core/.

Run from the source tree with Debian's python3-torch:
    /usr/bin/python3 t/gen_core_fixtures.py
(not run by `make check`; the outputs are committed).

The reference is written independently of libmoe's algorithm: it routes
token by token with torch.topk and lets autograd produce every gradient.
Inputs and weights are drawn in float32 and the reference is evaluated in
float64 on those exact values, so the C float code is compared within
float tolerances and the C double twin within ~1e-10.

MoE layer fixtures: layer_grid_<gate>.txt.gz, one file per gate of the
grid (gate x expert form x S x combine = 7 x 5 x 3 x 2 = 210 cases), and
layer_wide.txt.gz (the first five configurations at wider shapes). They
are gzip'ed text (zcat to read; written with mtime 0, so regenerating
with the same torch gives identical bytes): the full-precision float64
results of 210 cases are ~1 MB as text, ~0.4 MB compressed. Format:
'#' comment lines, then cases, each a header line
    @ <label> <gate preset> T D E K S F kind act ebias combine coef
followed by records
    <name> <count>
    <count whitespace-separated numbers>
params (the layer's slab, moe/layer.h order), bias (deepseek_v3 only), x,
dy (the upstream gradient; the loss is sum(y * dy) + L_aux) hold float32
values, written as the shortest decimal that reads back (also through
strtod and a cast to float) as that float32; idx (T, K) the chosen
experts; weights (T, K), y, aux, grads (the slab's gradient) and dx the
float64 results, written with repr() (exact).

loss.txt and optim_*.txt are plain text in the record format, floats
written with repr() of their float64 value.
"""
import contextlib
import gzip
import io
import os
import sys

import numpy
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


@contextlib.contextmanager
def gz_text(path):
    """A text stream writing a reproducible gzip file (no name, mtime 0)."""
    with open(path, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="ascii", newline="\n") as out:
        yield out


def fmt_f32(v):
    """Shortest decimal that reads back as the same float32, even through
    C's strtod followed by a cast to float (no double rounding)."""
    s = str(numpy.float32(v))
    if numpy.float32(float(s)) != numpy.float32(v) or float(numpy.float32(v)) != v:
        raise ValueError("%r is not a float32 or does not round-trip as %s" % (v, s))
    return s


def fmt_f64(v):
    """Shortest decimal that reads back as the same double (exact)."""
    return repr(float(v))


# ---- the reference: an independent token-by-token layer with autograd ----

# Gate presets as moe/gate.h documents them (score, normalize, route_scale,
# use_bias); the C test builds its config with moe_gate_preset(name), so a
# wrong preset table shows up here too.
PRESETS = {
    "softmax": (SOFTMAX, 0, 1.0, 0),
    "softmax_topk": (SOFTMAX, 1, 1.0, 0),
    "sigmoid_topk": (SIGMOID, 0, 1.0, 0),
    "sigmoid_norm_topk": (SIGMOID, 1, 1.0, 0),
    "sigmoid_norm": (SIGMOID, 1, 1.0, 0),
    "deepseek_v3": (SIGMOID, 1, 2.5, 1),
}


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


def expert_pre(cfg, p, x):
    """FFN pre-activations h (N, F)."""
    d = dict(p)
    h = x @ d["W1"].T
    return h + d["b1"] if "b1" in d else h


def expert_apply(cfg, p, x):
    d = dict(p)
    if cfg["kind"] == LINEAR:
        y = x @ d["W"].T
        return y + d["b"] if "b" in d else y
    y = ACTS[cfg["act"]](expert_pre(cfg, p, x)) @ d["W2"].T
    return y + d["b2"] if "b2" in d else y


def draw_case(cfg, gen):
    """Inputs for one case, redrawn until routing is unambiguous: every
    token's top-K (and the order inside it) has gaps > 1e-3 in s + b, a
    biased gate chooses a different set than it would without the bias for
    some token, and no ReLU pre-activation is within 1e-4 of its kink."""
    D, E, K, S, T = cfg["D"], cfg["E"], cfg["K"], cfg["S"], cfg["T"]
    score, normalize, scale, use_bias = PRESETS[cfg["gate"]]
    for attempt in range(1000):
        Wr = f32((E, D), gen, D ** -0.5).requires_grad_()
        paper = cfg["combine"] == PAPER
        sigma = f32((S,), gen, 0.5).requires_grad_() if paper and S > 0 else None
        shared = [expert_params(cfg, gen) for _ in range(S)]
        routed = [expert_params(cfg, gen) for _ in range(E)]
        bias = f32((E,), gen, 0.1) if use_bias else torch.zeros(E, dtype=torch.float64)
        x = f32((T, D), gen).requires_grad_()
        dy = f32((T, D), gen)
        with torch.no_grad():
            logits = x @ Wr.T
            s = torch.softmax(logits, dim=1) if score == SOFTMAX else torch.sigmoid(logits)
            good = True
            if K < E:
                top = torch.sort(s + bias, dim=1, descending=True).values[:, :K + 1]
                good = bool((top[:, :-1] - top[:, 1:]).min() > 1e-3)
                if use_bias:
                    biased = torch.topk(s + bias, K, dim=1).indices.sort(dim=1).values
                    plain = torch.topk(s, K, dim=1).indices.sort(dim=1).values
                    good = good and bool((biased != plain).any())
            if cfg["kind"] == FFN and cfg["act"] == 0:
                for blk in shared + routed:
                    good = good and bool(expert_pre(cfg, blk, x).abs().min() > 1e-4)
        if good:
            return Wr, sigma, shared, routed, bias, x, dy, attempt + 1
    raise RuntimeError("no unambiguous draw for %s" % cfg["label"])


def layer_case(out, cfg, gen):
    """Evaluate one configuration in float64 and write it as one case."""
    D, E, K, S, T = cfg["D"], cfg["E"], cfg["K"], cfg["S"], cfg["T"]
    score, normalize, scale, use_bias = PRESETS[cfg["gate"]]
    Wr, sigma, shared, routed, bias, x, dy, attempts = draw_case(cfg, gen)
    paper = cfg["combine"] == PAPER

    logits = x @ Wr.T
    s = torch.softmax(logits, dim=1) if score == SOFTMAX else torch.sigmoid(logits)
    if K == E:
        idx = torch.arange(E).repeat(T, 1)
    else:
        _, idx = torch.topk(s.detach() + bias, K, dim=1, sorted=True)
    v = s.gather(1, idx)
    if normalize:
        v = v / (v.sum(dim=1, keepdim=True) + 1e-20)
    w = scale * v
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
    p = torch.softmax(logits, dim=1) if score == SOFTMAX else s / s.sum(dim=1, keepdim=True)
    aux = cfg["coef"] * E * (f * p.mean(dim=0)).sum()
    L = (y * dy).sum() + aux
    L.backward()

    slab = [Wr] + ([sigma] if sigma is not None else [])
    for blk in shared + routed:
        slab += [t for _, t in blk]

    def put(name, values, fmt):
        if isinstance(values, torch.Tensor):
            values = values.detach().reshape(-1).tolist()
        out.write("%s %d\n%s\n" % (name, len(values), " ".join(fmt(v) for v in values)))

    out.write("@ %s %s %d %d %d %d %d %d %d %d %d %d %s\n" % (
        cfg["label"], cfg["gate"], T, D, E, K, S, cfg["F"], cfg["kind"], cfg["act"], cfg["ebias"],
        cfg["combine"], fmt_f64(cfg["coef"])))
    put("params", torch.cat([t.detach().reshape(-1) for t in slab]), fmt_f32)
    if use_bias:
        put("bias", bias, fmt_f32)
    put("x", x, fmt_f32)
    put("dy", dy, fmt_f32)
    put("idx", idx, str)
    put("weights", w, fmt_f64)
    put("y", y, fmt_f64)
    put("aux", [float(aux)], fmt_f64)
    # an expert no token chose has no autograd graph: its gradient is zero
    put("grads", torch.cat([(t.grad if t.grad is not None else torch.zeros_like(t)).reshape(-1)
                            for t in slab]), fmt_f64)
    put("dx", x.grad, fmt_f64)
    return attempts


# ---- the grid: every gate x expert x S x combine ----

# (label, preset, dense): the seven gates of the grid
GRID_GATES = [
    ("softmax", "softmax", True),             # dense softmax, K = E
    ("switch", "softmax", False),             # softmax top-K, no renormalisation
    ("softmax_topk", "softmax_topk", False),  # DeepSeek-V2
    ("sigmoid_topk", "sigmoid_topk", False),
    ("sigmoid_norm_topk", "sigmoid_norm_topk", False),
    ("sigmoid_norm", "sigmoid_norm", True),   # the paper's theory gate, K = E
    ("deepseek_v3", "deepseek_v3", False),    # biased selection, route_scale 2.5
]
# (label, kind, act)
GRID_EXPERTS = [("linear", LINEAR, 0), ("relu", FFN, 0), ("gelu", FFN, 1), ("silu", FFN, 2),
                ("tanh", FFN, 3)]
# Small shapes keep 210 cases (inputs + float64 results) a few hundred KB;
# F != D so a transposed expert weight cannot pass, K < E so selection and
# its bias matter.
GRID = dict(T=5, D=3, E=4, K=2, F=2)
COEF = 0.37


def case_label(gate, expert, ebias, S, combine, coef):
    return "%s/%s%s/S%d/%s%s" % (gate, expert, "+b" if ebias else "", S,
                                 "additive" if combine == ADDITIVE else "paper",
                                 "/aux" if coef else "")


def grid():
    """Write layer_grid_<gate>.txt.gz: 30 cases per gate, in the order
    expert, combine, S.  With n the running case number and g the gate's
    index, m = n + g: the balance loss is on for odd m, expert biases for
    m % 4 in {2, 3}.  Within a gate S (period 3) and m % 4 run through all
    12 (S, loss, bias) combinations; across the gates every (expert,
    combine, S) cell meets all four (loss, bias) pairs; each pair is used in
    52 or 53 of the 210 cases."""
    n = 0
    total_attempts = 0
    for gi, (glabel, preset, dense) in enumerate(GRID_GATES):
        path = os.path.join(OUT, "layer_grid_%s.txt.gz" % glabel)
        with gz_text(path) as out:
            out.write("# MoE layer golden cases for gate '%s' (preset %s, %s)\n"
                      % (glabel, preset, "K = E" if dense else "K = %d of E = %d" % (GRID["K"], GRID["E"])))
            out.write("# written by t/gen_core_fixtures.py (torch %s); format in its docstring\n"
                      % torch.__version__)
            gen = torch.Generator().manual_seed(20250516 + gi)
            for elabel, kind, act in GRID_EXPERTS:
                for combine in (PAPER, ADDITIVE):
                    for S in (0, 1, 2):
                        m = n + gi
                        coef = COEF if m % 2 else 0.0
                        ebias = (m // 2) % 2
                        cfg = dict(GRID, gate=preset, S=S, kind=kind, act=act, ebias=ebias,
                                   combine=combine, coef=coef)
                        if dense:
                            cfg["K"] = cfg["E"]
                        cfg["label"] = case_label(glabel, elabel, ebias, S, combine, coef)
                        total_attempts += layer_case(out, cfg, gen)
                        n += 1
    return n, total_attempts


# The five configurations of the first golden test, at wider shapes
# (D = 8, E = 6, F = 10, T = 12: bigger GEMMs than the grid's), K = 3 for
# the raw sigmoid gate.
WIDE = [
    ("softmax_topk", "relu", dict(K=2, S=1, kind=FFN, act=0, ebias=1, combine=PAPER, coef=0.0)),
    ("deepseek_v3", "silu", dict(K=2, S=2, kind=FFN, act=2, ebias=0, combine=ADDITIVE, coef=0.0)),
    ("softmax", "linear", dict(K=6, S=0, kind=LINEAR, act=0, ebias=1, combine=PAPER, coef=0.0)),
    ("sigmoid_topk", "gelu", dict(K=3, S=2, kind=FFN, act=1, ebias=1, combine=PAPER, coef=0.01)),
    ("sigmoid_norm", "tanh", dict(K=6, S=1, kind=FFN, act=3, ebias=1, combine=ADDITIVE, coef=0.02)),
]


def wide():
    with gz_text(os.path.join(OUT, "layer_wide.txt.gz")) as out:
        out.write("# MoE layer golden cases at wider shapes (D=8, E=6, F=10, T=12)\n")
        out.write("# written by t/gen_core_fixtures.py (torch %s); format in its docstring\n"
                  % torch.__version__)
        for i, (preset, elabel, kw) in enumerate(WIDE):
            cfg = dict(T=12, D=8, E=6, F=10, gate=preset, **kw)
            cfg["label"] = "wide/" + case_label(preset, elabel, kw["ebias"], kw["S"], kw["combine"],
                                                kw["coef"])
            layer_case(out, cfg, torch.Generator().manual_seed(100 + i))


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


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    n, attempts = grid()
    wide()
    optim_fixtures()
    loss_fixture()
    print("wrote %d grid cases (%d draws) and the other fixtures to %s" % (n, attempts, OUT),
          file=sys.stderr)


if __name__ == "__main__":
    main()
