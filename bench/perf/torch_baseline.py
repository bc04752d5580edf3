#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""libmoe against a straightforward PyTorch MoE layer, timed interleaved.

One step = zero_grad, forward, MSE loss, backward (with dx), AdamW, on one
thread, for the layer both sides build: a sigmoid router with normalized
top-K weights (libmoe's "sigmoid_norm_topk"), S shared experts added with
weight 1 (DeepSeek's additive combine), FFN experts without biases, the
same activation, no balance loss.

The C side is `moe-perf --serve` (bench/perf/perf.c), driven through a
pipe, so the two alternate repetition by repetition in one run (the C side
first on even repetitions, PyTorch first on odd ones): a load change on a
shared machine hits both. Each repetition is the median of STEPS steps;
times are process CPU time (what a shared machine's other processes cannot
inflate by taking the core away) and wall time. Per shape it prints one
`grid` line of key=value pairs (perf.sh turns them into the table and the
figure):

  moe_ms / torch_ms    median over repetitions of the per-step CPU time
  *_min                the minimum over repetitions
  ratio                median over repetitions of moe_ms/torch_ms of the
                       same repetition (< 1: libmoe faster)
  gflops               step FLOPs / moe_ms (FLOPs as in perf.c)
  sgemm                single-thread sgemm GFLOP/s at the expert GEMM shape
                       (T·K/E rows, D → F), median over repetitions, same process
  frac_sgemm           gflops / sgemm
  moe_opt / torch_opt  AdamW alone, ns per parameter (median of 5 interleaved)

Not run by `make check`; needs Debian's python3-torch.
"""
import argparse
import statistics
import subprocess
import sys
import time

import torch

ACTS = {"relu": torch.relu, "gelu": torch.nn.functional.gelu,
        "silu": torch.nn.functional.silu, "tanh": torch.tanh}


class MoE(torch.nn.Module):
    def __init__(self, D, E, K, F, S, act):
        super().__init__()
        self.E, self.K, self.act = E, K, ACTS[act]
        self.router = torch.nn.Linear(D, E, bias=False)
        self.w1 = torch.nn.Parameter(torch.randn(E, D, F) * D ** -0.5)
        self.w2 = torch.nn.Parameter(torch.randn(E, F, D) * F ** -0.5)
        self.s1 = torch.nn.Parameter(torch.randn(S, D, F) * D ** -0.5)
        self.s2 = torch.nn.Parameter(torch.randn(S, F, D) * F ** -0.5)

    def forward(self, x):  # x: (T, D)
        s = torch.sigmoid(self.router(x))
        v, idx = torch.topk(s, self.K, dim=-1)
        w = v / (v.sum(-1, keepdim=True) + 1e-20)
        y = torch.zeros_like(x)
        for e in range(self.E):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            h = self.act(x[tok] @ self.w1[e]) @ self.w2[e]
            y = y.index_add(0, tok, h * w[tok, slot].unsqueeze(-1))
        for i in range(self.s1.shape[0]):
            y = y + self.act(x @ self.s1[i]) @ self.s2[i]
        return y


def flops(T, D, E, K, F, S):
    fwd = 2 * T * D * E + (T * K + T * S) * 4 * D * F
    return 3 * fwd


def timed(n, fn):
    """Median process-CPU and wall seconds of n calls."""
    c, w = [], []
    for _ in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        c.append(time.process_time() - c0)
        w.append(time.perf_counter() - w0)
    return statistics.median(c), statistics.median(w)


class Torch:
    def __init__(self, shape, act):
        T, D, E, K, F, S = shape
        torch.manual_seed(2505)
        self.m = MoE(D, E, K, F, S, act)
        self.opt = torch.optim.AdamW(self.m.parameters(), lr=1e-3, weight_decay=0.01)
        self.x = torch.randn(T, D, requires_grad=True)
        self.tgt = torch.randn(T, D)
        self.n = sum(p.numel() for p in self.m.parameters())

    def step(self):
        self.opt.zero_grad(set_to_none=False)
        self.x.grad = None
        loss = torch.nn.functional.mse_loss(self.m(self.x), self.tgt)
        loss.backward()
        self.opt.step()


class Moe:
    def __init__(self, path):
        self.p = subprocess.Popen([path, "--serve"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().split()
        if not ans or ans[0] == "error":
            sys.exit(f"moe-perf: {' '.join(ans)} (after '{cmd}')")
        return {k: float(v) for k, v in (a.split("=") for a in ans[1:])}

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moe-perf", required=True, help="path of bench/perf/moe-perf")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--act", default="silu")
    ap.add_argument("--shape", action="append", default=[], help="T,D,E,K,F,S (repeatable)")
    ap.add_argument("--optim", type=int, nargs="*", default=[],
                    help="also time libmoe's and torch's AdamW alone on these parameter counts")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}", flush=True)
    moe = Moe(a.moe_perf)
    for spec in a.shape:
        shape = tuple(map(int, spec.split(",")))
        T, D, E, K, F, S = shape
        params = moe.ask(f"shape {T} {D} {E} {K} {F} {S} {a.act} sigmoid_norm_topk")["params"]
        tb = Torch(shape, a.act)
        tb.step(), tb.step()
        mc, tc, mw, tw, ratio, sg = [], [], [], [], [], []
        for rep in range(a.reps):
            order = (0, 1) if rep % 2 == 0 else (1, 0)
            for side in order:
                if side == 0:
                    r = moe.ask(f"step {a.steps}")
                    mc.append(r["cpu_ms"]), mw.append(r["wall_ms"])
                else:
                    c, w = timed(a.steps, tb.step)
                    tc.append(c * 1e3), tw.append(w * 1e3)
            ratio.append(mc[-1] / tc[-1])
            sg.append(moe.ask("sgemm 3")["cpu_gflops"])
        mo, to = [], []
        for rep in range(5):
            mo.append(moe.ask("optim 1")["cpu_ns"])
            c, _ = timed(1, tb.opt.step)
            to.append(c * 1e9 / tb.n)
        med = statistics.median
        gfl = flops(*shape) / (med(mc) * 1e-3) / 1e9
        print(f"grid T={T} D={D} E={E} K={K} F={F} S={S} act={a.act} params={int(params)} "
              f"reps={a.reps} steps={a.steps} "
              f"moe_ms={med(mc):.3f} moe_min={min(mc):.3f} torch_ms={med(tc):.3f} "
              f"torch_min={min(tc):.3f} ratio={med(ratio):.3f} "
              f"moe_wall={med(mw):.3f} torch_wall={med(tw):.3f} "
              f"gflops={gfl:.1f} sgemm={med(sg):.1f} frac_sgemm={gfl / med(sg):.3f} "
              f"moe_opt={med(mo):.3f} torch_opt={med(to):.3f}", flush=True)
    for n in a.optim:
        mc, tc = [], []
        p = torch.nn.Parameter(torch.randn(n))
        p.grad = torch.randn(n) * 0.1
        opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01)
        opt.step()
        for rep in range(a.reps):
            mc.append(float(subprocess.run([a.moe_perf, "--optim", str(n), "--reps", "3"],
                                           capture_output=True, text=True, check=True)
                            .stdout.split("cpu_ns_med=")[1].split()[0]))
            c, _ = timed(3, opt.step)
            tc.append(c * 1e9 / n)
        print(f"optim n={n} moe_ns={statistics.median(mc):.3f} moe_min={min(mc):.3f} "
              f"torch_ns={statistics.median(tc):.3f} torch_min={min(tc):.3f}", flush=True)
    moe.close()


if __name__ == "__main__":
    main()
