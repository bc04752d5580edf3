#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# bench-perf part: training images/s of the image classifier with an MoE
# connector (moe_vision, bench/perf/vision-perf) against the same model in
# PyTorch (bench/perf/torch_vision_baseline.py: same architecture, step and
# thread count), at two sizes, the two programs run alternately REPS times
# so machine load hits both alike; prints the median images/s of each,
# their ratio (the target: >= 2 at the larger size, M), peak RSS, and the
# step's GFLOP/s against one-thread sgemm at the model's largest product
# (the qkv projection (B*Np, 3D, D) at these sizes; target 0.60), with the
# BLAS core and the load average before and after. Where the kernels
# OpenBLAS runs are older than the CPU's (`moebench run --blas-core auto`
# would re-execute), size M runs a second time as M@auto on the kernels
# auto picks, PyTorch on the same (OPENBLAS_CORETYPE; its linear layers
# call the same OpenBLAS). PyTorch is optional: without python3-torch one
# line says so and libmoe runs alone.
# Writes OUTDIR/vision.txt (raw lines).
# Usage: sh bench/perf/perf-vision.sh BUILDDIR SRCDIR OUTDIR THREADS
# Environment: PERF_VISION_REPS (5).
set -u
b=$1; s=$2; outdir=$3; th=${4:-1}
reps=${PERF_VISION_REPS:-5}
export OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th
mkdir -p "$outdir" || exit 1
out=$outdir/vision.txt
: >"$out"
# S: experiments/paper-vision.yaml's model (7x7 patches, D = 32);
# M: 4x4 patches (49 tokens), D = 64. Variant ds_v3: 7 routed top-3 + 1 shared.
sizes="S:--P 7 --D 32 --L 1 --Lh 1 --H 2 --F 64 --Fm 32 --N 8 --K 4 --s 1 --B 64 --steps 20
M:--P 4 --D 64 --L 2 --Lh 1 --H 4 --F 128 --Fm 64 --N 8 --K 4 --s 1 --B 64 --steps 8"
# the kernels now and those --blas-core auto picks, from a one-step run
core_of() {
  # shellcheck disable=SC2086
  "$b/bench/perf/vision-perf" --B 2 --steps 1 "$@" | sed -n 's/.* core=\([^ ]*\) .*/\1/p'
}
core_now=$(core_of) && core_auto=$(core_of --blas-core auto) || exit 1
if [ -n "$core_auto" ] && [ "$core_auto" != "$core_now" ]; then
  sizes="$sizes
M@auto:--blas-core auto $(echo "$sizes" | sed -n 's/^M://p')"
  echo "kernels: $core_now now, $core_auto with --blas-core auto: size M runs on both"
fi
torch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && torch=1
[ $torch = 1 ] || echo "python3-torch not installed: no PyTorch comparison (apt-get install python3-torch)"
echo "load before $(cut -d' ' -f1-4 /proc/loadavg)" | tee -a "$out"
r=1
while [ $r -le "$reps" ]; do
  echo "$sizes" | while IFS=: read -r name opts; do
    # shellcheck disable=SC2086
    "$b/bench/perf/vision-perf" --size "$name" --threads "$th" $opts | tee -a "$out" || exit 1
    if [ $torch = 1 ]; then
      tenv='' topts=$opts
      case $name in
        *@auto) tenv=OPENBLAS_CORETYPE=$core_auto topts=${opts#--blas-core auto } ;;
      esac
      # shellcheck disable=SC2086
      env $tenv /usr/bin/python3 "$s/bench/perf/torch_vision_baseline.py" --size "$name" --threads "$th" $topts |
        tee -a "$out" || exit 1
    fi
  done || exit 1
  r=$((r + 1))
done
echo "load after $(cut -d' ' -f1-4 /proc/loadavg)" | tee -a "$out"
awk '
  function med(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  $1 == "load"   { load[$2] = $3 " " $4 " " $5 }
  $1 == "vision" { c[v["size"]] = c[v["size"]] " " v["images/s"]; rss[v["size"]] = v["rss_peak_MB"]
                   gf[v["size"]] = gf[v["size"]] " " v["step_GFLOPs"]; sgf[v["size"]] = sgf[v["size"]] " " v["sgemm_GFLOPs"]
                   of[v["size"]] = of[v["size"]] " " v["of_sgemm"]; shp[v["size"]] = v["sgemm_shape"]
                   core[v["size"]] = v["core"] " (" v["core_source"] ")" }
  $1 == "torch"  { t[v["size"]] = t[v["size"]] " " v["images/s"]; trss[v["size"]] = v["rss_peak_MB"]
                   n = split(c[v["size"]], cc, " "); pr[v["size"]] = pr[v["size"]] " " cc[n] / v["images/s"] }
  END {
    for (k in c) {
      mc = med(c[k])
      printf "vision %s: moebench %.0f images/s (median of%s)", k, mc, c[k]
      if (k in t) { mt = med(t[k]); printf ", PyTorch %.0f (median of%s), ratio moebench/PyTorch = %.2f (median of the paired ratios %.2f)%s", mt, t[k], mc / mt, med(pr[k]), k ~ /^M/ ? "; target >= 2 at this, the larger size" : "" }
      printf "\n"
      if (of[k] != "") printf "vision %s: step %.2f GFLOP/s, one-thread sgemm at the largest product (%s) %.2f GFLOP/s: %.2f of it (median of the per-run ratios%s; target 0.60); core %s, load average before %s, after %s\n", k, med(gf[k]), shp[k], med(sgf[k]), med(of[k]), of[k], core[k], load["before"], load["after"]
      printf "vision %s: peak RSS %.1f MB", k, rss[k]
      if (k in trss) printf "; PyTorch peak RSS %.1f MB", trss[k]
      printf "\n"
    }
  }' "$out"
