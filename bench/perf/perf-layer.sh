#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# bench-perf part: one MoE layer step (forward, backward with dx, AdamW) on a
# grid of shapes, libmoe and PyTorch interleaved repetition by repetition in
# one run (bench/perf/torch_baseline.py drives `moe-perf --serve`), against
# single-thread sgemm at each shape's expert GEMM; then AdamW alone.
# Writes OUTDIR/layer.txt (raw lines), layer.md (the table README.md quotes),
# layer.dat and layer-gflops.svg (gnuplot, when installed).
# Usage: sh bench/perf/perf-layer.sh BUILDDIR SRCDIR OUTDIR THREADS
# Environment: PERF_REPS (7), PERF_STEPS (3), PERF_SHAPES (T,D,E,K,F,S ...).
set -u
b=$1; s=$2; out=$3; th=${4:-1}
reps=${PERF_REPS:-7}; steps=${PERF_STEPS:-3}
# The grid: many small experts, small D, long sequences with K = 1, wide
# batch (E = 32, K = 4, S = 2), wide FFN (F = 2D, E = 8, K = 2); S in
# {0, 1, 2}; D from 64 to 512.
shapes=${PERF_SHAPES:-"1024,64,64,6,64,2 1024,128,64,6,64,2 512,64,8,2,64,1
  8192,128,16,1,128,0 8192,256,16,1,256,1 4096,128,32,4,128,2 4096,256,32,4,256,2
  1024,256,8,2,512,1 1024,512,8,2,1024,0 2048,512,16,2,512,2"}
perf=$b/bench/perf/moe-perf
raw=$out/layer.txt
args=
for sh in $shapes; do args="$args --shape $sh"; done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  # shellcheck disable=SC2086
  /usr/bin/python3 "$s/bench/perf/torch_baseline.py" --moe-perf "$perf" --threads "$th" \
    --reps "$reps" --steps "$steps" --optim 65536 4194304 $args | tee "$raw" || exit 1
else
  echo "python3-torch not installed: libmoe alone (apt-get install python3-torch for the comparison)"
  # shellcheck disable=SC2086
  "$perf" --reps "$reps" --steps "$steps" $args | tee "$raw" || exit 1
  for n in 65536 4194304; do "$perf" --optim $n --reps 21 | tee -a "$raw"; done
  exit 0
fi

# The table. Overhead-bound shapes (D <= 64 or F <= 64: small experts, small
# D) must take <= 0.5x PyTorch's time; GEMM-bound ones must reach >= 75% of
# sgemm at their expert GEMM shape; every shape must beat PyTorch.
awk -v md="$out/layer.md" -v dat="$out/layer.dat" '
  function kv(   i, p) { delete v; for (i = 2; i <= NF; i++) { split($i, p, "="); v[p[1]] = p[2] } }
  $1 == "grid" {
    kv(); n++
    ob = (v["D"] <= 64 || v["F"] <= 64)
    miss = ""
    if (v["ratio"] >= 1) miss = miss " slower than PyTorch;"
    if (ob && v["ratio"] > 0.5) miss = miss " > 0.5x PyTorch;"
    if (!ob && v["frac_sgemm"] < 0.75) miss = miss " < 75% of sgemm;"
    tgt = miss == "" ? "met" : "missed:" miss
    sub(/;$/, "", tgt)
    tf = 3 * (2 * v["T"] * v["D"] * v["E"] + v["T"] * (v["K"] + v["S"]) * 4 * v["D"] * v["F"])
    row[n] = sprintf("| %s, %s, %s, %s, %s, %s | %s | %.2f / %.2f | %.2f / %.2f | **%.2f** | %.0f | %.0f | **%.2f** | %.2f / %.2f | %s |",
      v["T"], v["D"], v["E"], v["K"], v["F"], v["S"], ob ? "overhead" : "GEMM",
      v["moe_ms"], v["moe_min"], v["torch_ms"], v["torch_min"], v["ratio"],
      v["gflops"], v["sgemm"], v["frac_sgemm"], v["moe_opt"], v["torch_opt"], tgt)
    printf "%d \"%s,%s,%s,%s,%s,%s\" %s %.2f %s\n", n, v["T"], v["D"], v["E"], v["K"], v["F"], v["S"],
      v["gflops"], tf / (v["torch_ms"] * 1e6), v["sgemm"] > dat
    reps = v["reps"]; steps = v["steps"]; act = v["act"]
  }
  $1 == "optim" { kv(); on++; orow[on] = sprintf("| %s | %.2f / %.2f | %.2f / %.2f |", v["n"], v["moe_ns"], v["moe_min"], v["torch_ns"], v["torch_min"]) }
  END {
    print "| shape (T, D, E, K, F, S) | bound | libmoe ms/step (median / min) | PyTorch ms/step (median / min) | libmoe / PyTorch time | libmoe GFLOP/s | sgemm GFLOP/s at the expert GEMM | libmoe / sgemm | AdamW ns/param in the step (libmoe / PyTorch) | targets |" > md
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---|" > md
    for (i = 1; i <= n; i++) print row[i] > md
    printf "\n%s activation, sigmoid_norm_topk gate, additive combine; %d interleaved repetitions of %d steps; process CPU time.\n\n", act, reps, steps > md
    print "| AdamW alone, parameters | libmoe ns/param (median / min) | PyTorch ns/param (median / min) |" > md
    print "|---:|---:|---:|" > md
    for (i = 1; i <= on; i++) print orow[i] > md
  }' "$raw"
echo
cat "$out/layer.md"

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot <<GP
set terminal svg size 900,480 dynamic font "sans,11"
set output "$out/layer-gflops.svg"
set title "One MoE layer step, one thread: GFLOP/s per shape (T,D,E,K,F,S)"
set ylabel "GFLOP/s"
set xtics rotate by -30
set key top left
set grid ytics
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set bmargin 7
plot "$out/layer.dat" using 1:5:xtic(2) with linespoints lw 2 dt 1 lc rgb "#555555" title "sgemm at the expert GEMM shape", \
     "" using 1:(\$5*0.75) with lines dt 2 lc rgb "#999999" title "75% of sgemm", \
     "" using 1:3 with points pt 7 ps 1.2 lc rgb "#1f77b4" title "libmoe", \
     "" using 1:4 with points pt 5 ps 1.2 lc rgb "#d62728" title "PyTorch"
GP
  echo "figure: $out/layer-gflops.svg"
fi
