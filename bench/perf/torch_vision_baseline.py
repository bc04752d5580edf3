#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image classifier of moe/vision.h written plainly in PyTorch, timed on
the same training step as bench/perf/vision_perf.c (forward, backward,
clip_grad_norm_, AdamW) at the same sizes and thread count; the reference
point of `make bench-perf` for the vision track.

Architecture: a linear patch embedding with bias plus learned positions;
L pre-LN encoder blocks (LayerNorm, non-causal multi-head attention with
a fused qkv projection and no biases, LayerNorm, dense GELU FFN); LayerNorm;
the MoE connector (router, softmax or sigmoid scores, top-K, renormalised
weights, GELU experts grouped per expert with index_select / index_add_,
shared experts mixed by softmax weights, output = 1/2 shared + 1/2 routed;
Switch balance loss 0.01 and router z-loss 0.001); Lh pre-LN head blocks;
LayerNorm, mean pool over patches, linear classifier, cross-entropy. The
patches come in already cut, as in the C program.

Not run by `make check`. Prints one line:
  torch size=.. variant=.. ... threads=.. params=.. ms/step=.. cpu_ms/step=.. images/s=.. rss_peak_MB=..
(cpu_ms/step: the median process CPU time of a step, steadier than the wall
time on a shared machine, as vision-perf's).
"""
import argparse
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as Fn


def variant_sizes(variant, N, K, s):
    """moe_layer_config_variant: (E, K, S, sigmoid)."""
    ds = variant.startswith("ds_")
    sig = variant in ("smoe_sg", "ds_v3", "ds_v3_bias")
    if not ds:
        s = 0
    return N - s, K - s, s, sig


class MoE(torch.nn.Module):
    def __init__(self, D, E, K, S, F, sigmoid, coef, zcoef):
        super().__init__()
        self.E, self.K, self.S, self.sigmoid, self.coef, self.zcoef = E, K, S, sigmoid, coef, zcoef
        self.router = torch.nn.Parameter(torch.randn(E, D) * D ** -0.5)
        self.w1 = torch.nn.Parameter(torch.randn(E, F, D) * D ** -0.5)
        self.w2 = torch.nn.Parameter(torch.randn(E, D, F) * F ** -0.5)
        if S:
            self.sigma = torch.nn.Parameter(torch.zeros(S))
            self.s1 = torch.nn.Parameter(torch.randn(S, F, D) * D ** -0.5)
            self.s2 = torch.nn.Parameter(torch.randn(S, D, F) * F ** -0.5)

    def forward(self, x):  # x (N, D)
        logits = x @ self.router.T
        s = torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, -1)
        v, idx = torch.topk(s, self.K, dim=-1)
        w = v / (v.sum(-1, keepdim=True) + 1e-20)
        y = torch.zeros_like(x)
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.E).tolist()
        tok = order // self.K
        wf = w.reshape(-1)[order]
        o = 0
        for e in range(self.E):
            n = counts[e]
            if n == 0:
                continue
            t = tok[o:o + n]
            h = Fn.gelu(x.index_select(0, t) @ self.w1[e].T) @ self.w2[e].T
            y = y.index_add(0, t, h * wf[o:o + n].unsqueeze(-1))
            o += n
        if self.S:
            om = torch.softmax(self.sigma, 0)
            sh = sum(om[i] * (Fn.gelu(x @ self.s1[i].T) @ self.s2[i].T) for i in range(self.S))
            y = 0.5 * y + 0.5 * sh
        f = torch.bincount(flat, minlength=self.E).to(x.dtype) / flat.numel()
        p = s if not self.sigmoid else s / s.sum(-1, keepdim=True)
        aux = self.coef * self.E * (f * p.mean(0)).sum()
        aux = aux + self.zcoef * (torch.logsumexp(logits, -1) ** 2).mean()
        return y, aux


class Block(torch.nn.Module):
    def __init__(self, D, H, F, nblocks):
        super().__init__()
        self.D, self.H = D, H
        self.ln1 = torch.nn.LayerNorm(D)
        self.qkv = torch.nn.Parameter(torch.randn(3 * D, D) * 0.02)
        self.wo = torch.nn.Parameter(torch.randn(D, D) * 0.02 / math.sqrt(2 * nblocks))
        self.ln2 = torch.nn.LayerNorm(D)
        self.w1 = torch.nn.Parameter(torch.randn(F, D) * D ** -0.5)
        self.w2 = torch.nn.Parameter(torch.randn(D, F) * F ** -0.5)

    def forward(self, x):  # x (B, T, D)
        B, T, D = x.shape
        H, hs = self.H, D // self.H
        qkv = self.ln1(x) @ self.qkv.T
        q, k, v = qkv.split(D, dim=-1)
        q = q.view(B, T, H, hs).transpose(1, 2)
        k = k.view(B, T, H, hs).transpose(1, 2)
        v = v.view(B, T, H, hs).transpose(1, 2)
        a = torch.softmax((q @ k.transpose(-1, -2)) * (hs ** -0.5), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, T, D)
        x = x + o @ self.wo.T
        return x + Fn.gelu(self.ln2(x) @ self.w1.T) @ self.w2.T


class Vision(torch.nn.Module):
    def __init__(self, Np, pd, C, D, H, L, Lh, F, moe):
        super().__init__()
        self.embed = torch.nn.Linear(pd, D)
        self.pos = torch.nn.Parameter(torch.randn(Np, D) * 0.02)
        self.enc = torch.nn.ModuleList([Block(D, H, F, L + Lh) for _ in range(L)])
        self.lnc = torch.nn.LayerNorm(D)
        self.moe = moe
        self.head = torch.nn.ModuleList([Block(D, H, F, L + Lh) for _ in range(Lh)])
        self.lnf = torch.nn.LayerNorm(D)
        self.cls = torch.nn.Linear(D, C)

    def forward(self, x, y):  # x (B, Np, pd)
        B, Np, _ = x.shape
        h = self.embed(x) + self.pos
        for b in self.enc:
            h = b(h)
        g, aux = self.moe(self.lnc(h).reshape(B * Np, -1))
        g = g.view(B, Np, -1)
        for b in self.head:
            g = b(g)
        logits = self.cls(self.lnf(g).mean(1))
        return Fn.cross_entropy(logits, y) + aux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="custom")
    ap.add_argument("--variant", default="ds_v3")
    for k, v in dict(P=7, D=32, L=1, Lh=1, H=2, F=64, Fm=32, N=8, K=4, s=1, B=64, steps=20,
                     threads=1).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    E, K, S, sig = variant_sizes(a.variant, a.N, a.K, a.s)
    Np, pd = (28 // a.P) ** 2, a.P * a.P
    m = Vision(Np, pd, 10, a.D, a.H, a.L, a.Lh, a.F, MoE(a.D, E, K, S, a.Fm, sig, 0.01, 0.001))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps + 3, eta_min=3e-4)
    gen = torch.Generator().manual_seed(1)
    times, cpu = [], []
    for i in range(a.steps + 3):
        x = torch.randn(a.B, Np, pd, generator=gen)
        y = torch.randint(0, 10, (a.B,), generator=gen)
        t0, c0 = time.perf_counter(), time.process_time()
        loss = m(x, y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        sched.step()
        if i >= 3:
            times.append(1e3 * (time.perf_counter() - t0))
            cpu.append(1e3 * (time.process_time() - c0))
    med, cmed = statistics.median(times), statistics.median(cpu)
    P = sum(p.numel() for p in m.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch size=%s variant=%s P=%d D=%d L=%d Lh=%d H=%d F=%d E=%d K=%d S=%d Fm=%d B=%d threads=%d "
          "params=%d ms/step=%.3f cpu_ms/step=%.3f images/s=%.0f rss_peak_MB=%.1f"
          % (a.size, a.variant, a.P, a.D, a.L, a.Lh, a.H, a.F, E, K, S, a.Fm, a.B, a.threads, P, med,
             cmed, a.B / (med * 1e-3), rss))


if __name__ == "__main__":
    main()
