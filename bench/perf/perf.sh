#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# make bench-perf: the performance benchmarks, one part after another, on
# THREADS threads (1 by default), with the BLAS provenance first.
# Usage: bench/perf/perf.sh BUILDDIR SRCDIR THREADS PART...
# Each PART is a script (path relative to SRCDIR) run as
#   sh PART BUILDDIR SRCDIR OUTDIR THREADS
# with the BLAS thread variables exported; it prints its results and may
# write tables and figures under OUTDIR (BUILDDIR/results/perf). New parts
# are one line in mk/*.mk: BENCH_PERF_PARTS += bench/perf/perf-NAME.sh
set -u
b=${1:-.}; s=${2:-.}; th=${3:-1}
[ $# -ge 3 ] && shift 3 || set --
[ $# -gt 0 ] || set -- bench/perf/perf-layer.sh
export OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th GOTO_NUM_THREADS=$th
out=$b/results/perf
mkdir -p "$out" || exit 1

# Where OpenBLAS's kernels come from: OPENBLAS_CORETYPE set in the
# environment forces them; otherwise OpenBLAS detects the CPU (and Debian's
# 0.3.21 takes some AVX-512 CPUs for Haswell or Prescott).
info=$("$b/bench/perf/moe-perf" --blas) || exit 1
core=$(echo "$info" | sed -n 's/.*core=\([^ ]*\).*/\1/p')
if [ -n "${OPENBLAS_CORETYPE+set}" ]; then
  src="set in the environment: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
else
  src="detected from the CPU (OPENBLAS_CORETYPE not set)"
fi
cpu=$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo 2>/dev/null | head -1)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: ${cpu:-unknown}, $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?") cores, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo "$info"
  echo "blas kernels: $core, $src"
  echo "threads: $th"
} | tee "$out/provenance.txt"
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  case $core in SkylakeX|Cooperlake|SapphireRapids) ;; *)
    echo "note: this CPU has AVX-512 but OpenBLAS runs $core kernels ($src);" \
         "compare with OPENBLAS_CORETYPE=SkylakeX make bench-perf" \
         "(results are not bit-identical across kernels)" | tee -a "$out/provenance.txt" ;;
  esac
fi

rc=0
for part in "$@"; do
  echo
  echo "== $part"
  sh "$s/$part" "$b" "$s" "$out" "$th" || rc=1
done
exit $rc
