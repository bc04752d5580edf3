#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# make bench-perf: the C micro-benchmark and, when Debian's python3-torch is
# installed, the straightforward PyTorch layer at the same shapes and thread
# count; prints the throughput ratio measured in this one run.
# Usage: bench/perf/perf.sh BUILDDIR SRCDIR [THREADS]
set -u
b=${1:-.}; s=${2:-.}; th=${3:-1}
export OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th
out=$(mktemp)
"$b/bench/perf/moe-perf" --steps 20 | tee "$out" || exit 1
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 "$s/bench/perf/torch_baseline.py" --threads "$th" --steps 20 | tee -a "$out"
  awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    $1 == "moe"   { key = v["T"] "," v["D"] "," v["E"] "," v["K"] "," v["F"] "," v["S"]; c[key] = v["tokens/s"] }
    $1 == "torch" { key = v["T"] "," v["D"] "," v["E"] "," v["K"] "," v["F"] "," v["S"]; t[key] = v["tokens/s"] }
    END { for (k in c) if (k in t) printf "ratio moe/torch (T,D,E,K,F,S=%s) = %.2f\n", k, c[k] / t[k] }' "$out"
else
  echo "python3-torch not installed: no PyTorch comparison (apt-get install python3-torch)"
fi
# The kernels OpenBLAS picked, against what the CPU can do: Debian's 0.3.21
# takes some AVX-512 CPUs for Haswell or Prescott.
core=$(sed -n 's/.*core=\([^ ]*\).*/\1/p' "$out" | head -1)
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  case $core in SkylakeX|Cooperlake|SapphireRapids) ;; *)
    echo "note: this CPU has AVX-512 but OpenBLAS uses $core kernels; compare with" \
         "OPENBLAS_CORETYPE=SkylakeX make bench-perf (results are not bit-identical across kernels)" ;;
  esac
fi
rm -f "$out"
