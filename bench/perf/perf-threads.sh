#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# bench-perf part: a model's own threads (OpenMP, BLAS on one thread), N
# threads against 1 on the LM at size M (bench/perf/lm-perf), the vision
# model at size M (bench/perf/vision-perf) and the MoE layer's GEMM-bound
# shapes (bench/perf/moe-perf --threads), one
# process per setting, interleaved 1 N 1 N ... (PAIRS pairs) so a change of
# load hits both; prints, per workload, the median of the paired ratios of
# the step's median wall time (1 thread / N threads: the speed-up; target
# 1.8 at N = 2 on an idle 2-core machine), both step times, the load
# average and run queue before and after every pair, the BLAS core, and
# whether 1 and N threads trained bit-identical parameters. The LM's line
# also gives the serial fraction of its step (lm-perf serial_cpu_frac),
# the speed-up Amdahl's law allows with it, and the one its fixed
# partition allows (lm-perf partition_speedup). The layer's lines also
# give the speed-up of the layer's own forward, backward and AdamW: the
# step less the harness's MSE loss (moe-perf layer_wall_ms_med), which
# has no threads.
# Each pair runs under both of libgomp's wait policies, interleaved:
# its default (OMP_WAIT_POLICY unset: a thread that waits spins a while,
# then sleeps; what `moebench run --threads` gets unless told otherwise)
# and passive (it sleeps at once: what README advises on a shared
# machine, where spinning threads that the kernel deschedules make a
# step several times slower). An OMP_WAIT_POLICY set in the environment
# is the only policy measured.
# Writes OUTDIR/threads.txt (raw lines).
# Usage: sh bench/perf/perf-threads.sh BUILDDIR SRCDIR OUTDIR [THREADS]
#   (THREADS, the BLAS threads of the other parts, is not used: BLAS stays
#   on one thread here)
# Environment: PERF_THREADS_PAIRS (5), PERF_THREADS_N (2), PERF_THREADS_LM
#   (lm-perf's size options), PERF_THREADS_VISION (vision-perf's),
#   PERF_THREADS_SHAPES (T,D,E,K,F,S ...), OMP_WAIT_POLICY
#   (both policies above unless set).
# On an idle 2-core machine it takes about 5 minutes, 8 with 9 pairs.
set -u
b=$1; outdir=$3
pairs=${PERF_THREADS_PAIRS:-5}; nt=${PERF_THREADS_N:-2}
policies=${OMP_WAIT_POLICY:-"default passive"}
unset OMP_WAIT_POLICY
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 GOTO_NUM_THREADS=1
mkdir -p "$outdir" || exit 1
out=$outdir/threads.txt
: >"$out"
# the LM at size M (perf-lm.sh's) and the GEMM-bound shapes of the layer
# grid (perf-layer.sh's, D > 64 and F > 64)
lm=${PERF_THREADS_LM:-"--V 8000 --T 128 --D 128 --L 4 --H 4 --N 16 --K 4 --s 2 --F 32 --B 8 --steps 4"}
# the vision model at size M (perf-vision.sh's)
vision=${PERF_THREADS_VISION:-"--P 4 --D 64 --L 2 --Lh 1 --H 4 --F 128 --Fm 64 --N 8 --K 4 --s 1 --B 64 --steps 8"}
shapes=${PERF_THREADS_SHAPES:-"8192,128,16,1,128,0 8192,256,16,1,256,1 4096,128,32,4,128,2 4096,256,32,4,256,2
  1024,256,8,2,512,1 1024,512,8,2,1024,0 2048,512,16,2,512,2"}
sargs=
for sh in $shapes; do sargs="$sargs --shape $sh"; done
load() { echo "load $1 $(cut -d' ' -f1-4 /proc/loadavg)" | tee -a "$out"; }
# run POLICY CMD...: CMD under the wait policy (default: the variable unset)
run() {
  p=$1; shift
  if [ "$p" = default ]; then "$@"; else OMP_WAIT_POLICY=$p "$@"; fi
}
echo "threads: $nt against 1, $pairs interleaved pairs, OMP_WAIT_POLICY: $policies, BLAS on 1 thread" | tee -a "$out"
k=1
while [ $k -le "$pairs" ]; do
  load before
  for p in $policies; do
    for t in 1 "$nt"; do
      # shellcheck disable=SC2086
      run "$p" "$b/bench/perf/lm-perf" --size M --threads "$t" $lm | sed "s/^lm /lmt$t wait=$p /" |
        tee -a "$out" || exit 1
    done
    for t in 1 "$nt"; do
      # shellcheck disable=SC2086
      run "$p" "$b/bench/perf/vision-perf" --size M --threads "$t" $vision |
        sed "s/^vision /visiont$t wait=$p /" | tee -a "$out" || exit 1
    done
    for t in 1 "$nt"; do
      # shellcheck disable=SC2086
      run "$p" "$b/bench/perf/moe-perf" --threads "$t" --reps 1 --steps 3 $sargs |
        grep '^moe-threads' | sed "s/^moe-threads /layert$t wait=$p /" | tee -a "$out" || exit 1
    done
  done
  load after
  k=$((k + 1))
done
awk -v nt="$nt" -v policies="$policies" '
  function med(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function lowest(list,   n, a, i, m) {
    n = split(list, a, " "); m = a[1]
    for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]
    return m
  }
  { delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } p = v["wait"] }
  $1 == "load" { ld[$2] = ld[$2] " " $3; rq[$2] = rq[$2] " " $6 }
  $1 == "lmt1" { a1[p] = v["ms/step"]; h1[p] = v["params_fnv"]; l1[p] = l1[p] " " a1[p]; core = v["core"] }
  $1 == "lmt" nt { l2[p] = l2[p] " " v["ms/step"]; lr[p] = lr[p] " " a1[p] / v["ms/step"]; sf[p] = sf[p] " " v["serial_cpu_frac"]
                   ps[p] = ps[p] " " v["partition_speedup"]; if (v["params_fnv"] != h1[p]) ldiff[p] = 1 }
  $1 == "visiont1" { va1[p] = v["ms/step"]; vh1[p] = v["params_fnv"]; v1[p] = v1[p] " " va1[p] }
  $1 == "visiont" nt { v2[p] = v2[p] " " v["ms/step"]; vr[p] = vr[p] " " va1[p] / v["ms/step"]; vsf[p] = vsf[p] " " v["serial_cpu_frac"]
                       vps[p] = vps[p] " " v["partition_speedup"]; if (v["params_fnv"] != vh1[p]) vdiff[p] = 1 }
  $1 ~ /^layert/ { key = v["T"] "," v["D"] "," v["E"] "," v["K"] "," v["F"] "," v["S"] }
  $1 == "layert1" { if (!(key in seen)) { seen[key] = 1; order[++ns] = key }
                    b1[p, key] = v["wall_ms_med"]; c1[p, key] = v["layer_wall_ms_med"]
                    s1[p, key] = s1[p, key] " " v["wall_ms_med"]; g1[p, key] = v["params_fnv"] }
  $1 == "layert" nt { s2[p, key] = s2[p, key] " " v["wall_ms_med"]; r[p, key] = r[p, key] " " b1[p, key] / v["wall_ms_med"]
                      rl[p, key] = rl[p, key] " " c1[p, key] / v["layer_wall_ms_med"]
                      if (v["params_fnv"] != g1[p, key]) gdiff[p, key] = 1 }
  END {
    np = split(policies, pol, " ")
    for (j = 1; j <= np; j++) {
      p = pol[j]
      if (lr[p] != "") {
        s = med(sf[p]); am = 1 / (s + (1 - s) / nt)
        printf "threads lm, wait %s: %d threads / 1: speed-up %.2fx (median of the paired ratios%s; target 1.80 at 2 threads on an idle machine); 1 thread %.0f ms/step, %d threads %.0f; serial fraction %.3f (Amdahl allows %.2fx; the partition, its busiest threads counted, %.2fx); parameters %s; core %s\n", p, nt, med(lr[p]), lr[p], med(l1[p]), nt, med(l2[p]), s, am, med(ps[p]), (p in ldiff) ? "DIFFER" : "bit-identical", core
      }
      if (vr[p] != "") {
        s = med(vsf[p]); am = 1 / (s + (1 - s) / nt)
        printf "threads vision, wait %s: %d threads / 1: speed-up %.2fx (median of the paired ratios%s); 1 thread %.1f ms/step, %d threads %.1f; serial fraction %.3f (Amdahl allows %.2fx; the partition %.2fx); parameters %s\n", p, nt, med(vr[p]), vr[p], med(v1[p]), nt, med(v2[p]), s, am, med(vps[p]), (p in vdiff) ? "DIFFER" : "bit-identical"
      }
      all = ""; alll = ""
      for (i = 1; i <= ns; i++) {
        k = order[i]
        if (!((p, k) in r)) continue
        all = all " " med(r[p, k]); alll = alll " " med(rl[p, k])
        printf "threads layer %s, wait %s: speed-up %.2fx (median of%s), the layer without the loss %.2fx (median of%s); 1 thread %.1f ms/step, %d threads %.1f; parameters %s\n", k, p, med(r[p, k]), r[p, k], med(rl[p, k]), rl[p, k], med(s1[p, k]), nt, med(s2[p, k]), ((p, k) in gdiff) ? "DIFFER" : "bit-identical"
      }
      if (all != "") {
        n = split(all, q, " ")
        printf "threads layer, wait %s, the %d GEMM-bound shapes: median speed-up %.2fx, lowest %.2fx; the layer without the loss: median %.2fx, lowest %.2fx (target 1.80)\n", p, n, med(all), lowest(all), med(alll), lowest(alll)
      }
    }
    printf "threads: 1-min load average before each pair:%s; after:%s; running/total tasks before:%s; after:%s\n", ld["before"], ld["after"], rq["before"], rq["after"]
  }' "$out"
