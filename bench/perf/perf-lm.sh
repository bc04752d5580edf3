#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# bench-perf part: training tokens/s of the MoE language model (moe_lm,
# bench/perf/lm-perf) against the same model in PyTorch
# (bench/perf/torch_lm_baseline.py: same architecture, initialisation,
# step and thread count), at two sizes, the two programs run alternately
# REPS times so machine load hits both alike; prints the median tokens/s
# (wall and CPU time) of each, their ratio, peak RSS against the bytes
# training must hold, and the step's GFLOP/s against one-thread sgemm at
# the model's largest product (the head), with the BLAS core and the load
# average before and after (the model's own threads: perf-threads.sh).
# Where the kernels OpenBLAS runs are older than the CPU's (`moebench run
# --blas-core auto` would re-execute), size M runs a second time as M@auto
# on the kernels auto picks, PyTorch on the same (OPENBLAS_CORETYPE).
# Writes OUTDIR/lm.txt (raw lines).
# Usage: sh bench/perf/perf-lm.sh BUILDDIR SRCDIR OUTDIR THREADS
# Environment: PERF_LM_REPS (5).
set -u
b=$1; s=$2; outdir=$3; th=${4:-1}
reps=${PERF_LM_REPS:-5}
export OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th
mkdir -p "$outdir" || exit 1
out=$outdir/lm.txt
: >"$out"
# name and options of each size (variant ds_v3, the paper's N=16 experts,
# K=4 active, 2 shared, expert width D/4, vocabulary 8000)
sizes="S:--V 8000 --T 64 --D 64 --L 2 --H 2 --N 16 --K 4 --s 2 --F 16 --B 8 --steps 6
M:--V 8000 --T 128 --D 128 --L 4 --H 4 --N 16 --K 4 --s 2 --F 32 --B 8 --steps 4"
# the kernels now and those --blas-core auto picks, from a one-step run
core_of() {
  "$b/bench/perf/lm-perf" --V 64 --T 8 --D 16 --L 1 --H 1 --N 4 --K 2 --s 1 --F 8 --B 1 --steps 1 "$@" |
    sed -n 's/.* core=\([^ ]*\) .*/\1/p'
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
    "$b/bench/perf/lm-perf" --size "$name" --threads "$th" $opts | tee -a "$out" || exit 1
    if [ $torch = 1 ]; then
      tenv='' topts=$opts
      case $name in
        *@auto) tenv=OPENBLAS_CORETYPE=$core_auto topts=${opts#--blas-core auto } ;;
      esac
      # shellcheck disable=SC2086
      env $tenv /usr/bin/python3 "$s/bench/perf/torch_lm_baseline.py" --size "$name" --threads "$th" $topts |
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
  $1 == "lm"    { gf[v["size"]] = gf[v["size"]] " " v["step_GFLOPs"]; sgf[v["size"]] = sgf[v["size"]] " " v["sgemm_GFLOPs"]; of[v["size"]] = of[v["size"]] " " v["of_sgemm"] }
  $1 == "lm"    { cc_[v["size"]] = cc_[v["size"]] " " v["tokens/cpu_s"]; c[v["size"]] = c[v["size"]] " " v["tokens/s"]; rss[v["size"]] = v["rss_peak_MB"]; must[v["size"]] = v["must_hold_MB"]; trss[v["size"]] = trss[v["size"]] }
  $1 == "torch" { tc_[v["size"]] = tc_[v["size"]] " " v["tokens/cpu_s"]; t[v["size"]] = t[v["size"]] " " v["tokens/s"]; trss[v["size"]] = v["rss_peak_MB"]
                  n = split(c[v["size"]], cc, " "); pr[v["size"]] = pr[v["size"]] " " cc[n] / v["tokens/s"] }
  $1 == "load"  { load[$2] = $3 " " $4 " " $5 }
  $1 == "lm"    { core[v["size"]] = v["core"] " (" v["core_source"] ")" }
  END {
    for (k in c) {
      mc = med(c[k])
      printf "lm %s: moebench %.0f tokens/s (median of%s)", k, mc, c[k]
      if (k in t) { mt = med(t[k]); printf ", PyTorch %.0f (median of%s), ratio moebench/PyTorch = %.2f (median of the %d paired ratios %.2f)", mt, t[k], mc / mt, split(pr[k], q, " "), med(pr[k]) }
      printf "\n"
      if (k in tc_) printf "lm %s: by CPU time: moebench %.0f tokens/cpu-s, PyTorch %.0f, ratio %.2f\n", k, med(cc_[k]), med(tc_[k]), med(cc_[k]) / med(tc_[k])
      if (of[k] != "") printf "lm %s: step %.2f GFLOP/s, one-thread sgemm at the head (B*T, V, D) %.2f GFLOP/s: %.2f of it (median of the per-run ratios%s; target 0.60); core %s, load average before %s, after %s\n", k, med(gf[k]), med(sgf[k]), med(of[k]), of[k], core[k], load["before"], load["after"]
      printf "lm %s: peak RSS %.1f MB, must hold %.1f MB (%.2fx)", k, rss[k], must[k], rss[k] / must[k]
      if (trss[k] != "") printf "; PyTorch peak RSS %.1f MB", trss[k]
      printf "\n"
    }
  }' "$out"
