#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A straightforward PyTorch CPU implementation of one MoE layer step
(forward + backward + AdamW), the reference point for bench/perf.

Not run by `make check`; `make bench-perf` runs it when Debian's
python3-torch is installed. Same shapes, same thread count as the C
benchmark; prints one line per shape:
  torch T=.. D=.. E=.. K=.. F=.. S=.. ms/step=.. tokens/s=.. GFLOP/s=..
"""
import argparse
import statistics
import time

import torch


class MoE(torch.nn.Module):
    def __init__(self, D, E, K, F, S, gate):
        super().__init__()
        self.E, self.K, self.gate = E, K, gate
        self.router = torch.nn.Linear(D, E, bias=False)
        self.w1 = torch.nn.Parameter(torch.randn(E, D, F) * D ** -0.5)
        self.w2 = torch.nn.Parameter(torch.randn(E, F, D) * F ** -0.5)
        self.s1 = torch.nn.Parameter(torch.randn(S, D, F) * D ** -0.5)
        self.s2 = torch.nn.Parameter(torch.randn(S, F, D) * F ** -0.5)

    def forward(self, x):  # x: (T, D)
        logits = self.router(x)
        s = torch.softmax(logits, -1) if self.gate == "softmax" else torch.sigmoid(logits)
        v, idx = torch.topk(s, self.K, dim=-1)
        w = v / v.sum(-1, keepdim=True)
        y = torch.zeros_like(x)
        for e in range(self.E):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            h = torch.relu(x[tok] @ self.w1[e]) @ self.w2[e]
            y = y.index_add(0, tok, h * w[tok, slot].unsqueeze(-1))
        for i in range(self.s1.shape[0]):
            y = y + torch.relu(x @ self.s1[i]) @ self.s2[i]
        return y


def flops(T, D, E, K, F, S):
    # forward: router 2TDE, experts 2*(T*K + T*S)*(2DF); backward ~2x forward
    fwd = 2 * T * D * E + (T * K + T * S) * 4 * D * F
    return 3 * fwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--gate", default="sigmoid")
    ap.add_argument("--shape", action="append",
                    help="T,D,E,K,F,S (repeatable); default: the two issue shapes")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(2505)
    shapes = [tuple(map(int, s.split(","))) for s in a.shape] if a.shape else \
        [(2048, 256, 16, 2, 256, 1), (512, 64, 8, 2, 64, 1)]
    for T, D, E, K, F, S in shapes:
        m = MoE(D, E, K, F, S, a.gate)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
        x = torch.randn(T, D)
        tgt = torch.randn(T, D)
        times = []
        for step in range(a.steps + 3):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            loss = torch.nn.functional.mse_loss(m(x), tgt)
            loss.backward()
            opt.step()
            if step >= 3:
                times.append(time.perf_counter() - t0)
        ms = statistics.median(times) * 1e3
        print(f"torch T={T} D={D} E={E} K={K} F={F} S={S} threads={a.threads} "
              f"ms/step={ms:.3f} tokens/s={T / ms * 1e3:.0f} "
              f"GFLOP/s={flops(T, D, E, K, F, S) / ms / 1e6:.2f}", flush=True)


if __name__ == "__main__":
    main()
