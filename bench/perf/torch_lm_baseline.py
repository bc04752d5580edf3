#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The MoE language model of moe/lm.h written plainly in PyTorch, timed on
the same training step as bench/perf/lm_perf.c (forward, backward,
clip_grad_norm_, AdamW) at the same sizes, initialisation and thread
count; the reference point of `make bench-perf`.

Architecture: token + learned position embeddings; L pre-LN blocks
(LayerNorm, causal multi-head attention with a fused qkv projection and
no biases, LayerNorm, MoE FFN: router, gate, top-K, ReLU experts grouped
per expert with index_select / index_add_, shared experts added);
final LayerNorm; head tied to the token embedding; cross-entropy + the
Switch balance loss. Initialisation as moe_lm_init_params: N(0, 0.02)
embeddings and qkv, N(0, 0.02/sqrt(2L)) output projection, router and
expert keys N(0, 1/D), routed values N(0, 1/(E F)), shared values
N(0, 1/(S F)).

Not run by `make check`. Prints one line:
  torch size=.. variant=.. ... threads=.. params=.. ms/step=.. tokens/s=.. tokens/cpu_s=..
        rss_peak_MB=..
"""
import argparse
import math
import resource
import statistics
import time

import torch


def variant_sizes(variant, N, K, s, F):
    """moe_layer_config_variant: (E, K, S, F, sigmoid)."""
    if variant == "dense":
        return 1, 1, 0, K * F, False
    ds = variant.startswith("ds_")
    sig = variant in ("smoe_sg", "ds_v3", "ds_v3_bias")
    if not ds:
        s = 0
    return N - s, K - s, s, F, sig


class MoE(torch.nn.Module):
    def __init__(self, D, E, K, S, F, sigmoid, coef):
        super().__init__()
        self.E, self.K, self.S, self.sigmoid, self.coef = E, K, S, sigmoid, coef
        self.router = torch.nn.Parameter(torch.randn(E, D) * D ** -0.5)
        self.w1 = torch.nn.Parameter(torch.randn(E, F, D) * D ** -0.5)
        self.w2 = torch.nn.Parameter(torch.randn(E, D, F) * (E * F) ** -0.5)
        if S:
            self.s1 = torch.nn.Parameter(torch.randn(S * F, D) * D ** -0.5)
            self.s2 = torch.nn.Parameter(torch.randn(D, S * F) * (S * F) ** -0.5)

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
            h = torch.relu(x.index_select(0, t) @ self.w1[e].T) @ self.w2[e].T
            y = y.index_add(0, t, h * wf[o:o + n].unsqueeze(-1))
            o += n
        if self.S:  # S shared experts of width F = one FFN of width S*F
            y = y + torch.relu(x @ self.s1.T) @ self.s2.T
        aux = x.new_zeros(())
        if self.coef > 0 and self.E > 1:
            f = torch.bincount(flat, minlength=self.E).to(x.dtype) / flat.numel()
            p = s if not self.sigmoid else s / s.sum(-1, keepdim=True)
            aux = self.coef * self.E * (f * p.mean(0)).sum()
        return y, aux


class Block(torch.nn.Module):
    def __init__(self, D, H, L, moe):
        super().__init__()
        self.D, self.H = D, H
        self.ln1 = torch.nn.LayerNorm(D)
        self.qkv = torch.nn.Parameter(torch.randn(3 * D, D) * 0.02)
        self.wo = torch.nn.Parameter(torch.randn(D, D) * 0.02 / math.sqrt(2 * L))
        self.ln2 = torch.nn.LayerNorm(D)
        self.moe = moe

    def forward(self, x, mask):  # x (B, T, D)
        B, T, D = x.shape
        H, hs = self.H, D // self.H
        qkv = self.ln1(x) @ self.qkv.T
        q, k, v = qkv.split(D, dim=-1)
        q = q.view(B, T, H, hs).transpose(1, 2)
        k = k.view(B, T, H, hs).transpose(1, 2)
        v = v.view(B, T, H, hs).transpose(1, 2)
        a = (q @ k.transpose(-1, -2)) * (hs ** -0.5)
        a = torch.softmax(a.masked_fill(mask[:T, :T], float("-inf")), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, T, D)
        x = x + o @ self.wo.T
        f, aux = self.moe(self.ln2(x).reshape(B * T, D))
        return x + f.view(B, T, D), aux


class LM(torch.nn.Module):
    def __init__(self, V, T, D, L, H, E, K, S, F, sigmoid, coef):
        super().__init__()
        self.wte = torch.nn.Parameter(torch.randn(V, D) * 0.02)
        self.wpe = torch.nn.Parameter(torch.randn(T, D) * 0.02)
        self.blocks = torch.nn.ModuleList(
            [Block(D, H, L, MoE(D, E, K, S, F, sigmoid, coef)) for _ in range(L)])
        self.lnf = torch.nn.LayerNorm(D)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, x, y):
        B, T = x.shape
        h = self.wte[x] + self.wpe[:T]
        aux = 0
        for b in self.blocks:
            h, a = b(h, self.mask)
            aux = aux + a
        logits = self.lnf(h) @ self.wte.T
        return torch.nn.functional.cross_entropy(logits.view(B * T, -1), y.view(-1)) + aux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="custom")
    ap.add_argument("--variant", default="ds_v3")
    for k, v in dict(V=8000, T=128, D=128, L=4, H=4, N=16, K=4, s=2, F=32, B=8, steps=10,
                     threads=1).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    E, K, S, F, sig = variant_sizes(a.variant, a.N, a.K, a.s, a.F)
    m = LM(a.V, a.T, a.D, a.L, a.H, E, K, S, F, sig, 0.01)
    opt = torch.optim.AdamW(m.parameters(), lr=2.5e-4, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps + 2, eta_min=2.5e-5)
    gen = torch.Generator().manual_seed(1)
    times, cpu = [], []
    for i in range(a.steps + 2):
        x = torch.randint(0, a.V, (a.B, a.T), generator=gen)
        y = torch.randint(0, a.V, (a.B, a.T), generator=gen)
        t0, c0 = time.perf_counter(), time.process_time()
        loss = m(x, y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 0.1)
        opt.step()
        sched.step()
        if i >= 2:
            times.append(1e3 * (time.perf_counter() - t0))
            cpu.append(1e3 * (time.process_time() - c0))
    med, cmed = statistics.median(times), statistics.median(cpu)
    P = sum(p.numel() for p in m.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch size=%s variant=%s V=%d T=%d D=%d L=%d H=%d E=%d K=%d S=%d F=%d B=%d threads=%d "
          "params=%d ms/step=%.2f tokens/s=%.0f tokens/cpu_s=%.0f rss_peak_MB=%.1f"
          % (a.size, a.variant, a.V, a.T, a.D, a.L, a.H, E, K, S, F, a.B, a.threads, P, med,
             a.B * a.T / (med * 1e-3), a.B * a.T / (cmed * 1e-3), rss))


if __name__ == "__main__":
    main()
