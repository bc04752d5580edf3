#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# perf-layer-args.sh — bench/perf/moe-perf --threads N gives the layer N
# threads of its own and keeps BLAS on one thread whatever
# OPENBLAS_NUM_THREADS says (with two BLAS threads inside each of the
# layer's, two threads ran twice as slow as one on two cores, and the
# bits were BLAS's threaded ones); 1 and 2 threads end with the same
# parameters, also with --collapse (the router zeroed before every step:
# every token on one expert); a malformed --shape and an unknown option
# exit 2.
set -u
build=${top_builddir:-.}
. "${srcdir:-.}/t/tap.sh"
prog=$build/bench/perf/moe-perf
h=
for t in 1 2; do
  line=$(OPENBLAS_NUM_THREADS=2 "$prog" --threads $t --reps 1 --steps 1 \
    --shape 96,16,4,2,16,1 2>&1 | grep '^moe-threads'); rc=$?
  case $line in *" threads=$t blas_threads=1 "*) s=$rc ;; *) s=1 ;; esac
  ok $s "moe-perf --threads $t under OPENBLAS_NUM_THREADS=2: BLAS on 1 thread ($line)"
  f=${line##*params_fnv=}
  if [ $t = 1 ]; then h=$f; else
    [ -n "$h" ] && [ "$f" = "$h" ]; ok $? "moe-perf: 1 and 2 threads, same parameters ($h, $f)"
  fi
done
# --collapse: every token on the first expert, at 1 and 2 threads alike
h=
for t in 1 2; do
  line=$("$prog" --threads $t --collapse --reps 1 --steps 1 --shape 300,16,4,1,16,0 2>&1 |
    grep '^moe-threads'); rc=$?
  case $line in *" max_load=300 "*) s=$rc ;; *) s=1 ;; esac
  ok $s "moe-perf --collapse --threads $t: all 300 tokens on one expert ($line)"
  f=${line##*params_fnv=}
  if [ $t = 1 ]; then h=$f; else
    [ -n "$h" ] && [ "$f" = "$h" ]; ok $? "moe-perf --collapse: 1 and 2 threads, same parameters"
  fi
done
err=$("$prog" --shape 96,16,4 2>&1 >/dev/null); rc=$?
case $err in *"--shape wants T,D,E,K,F,S"*) s=$(( rc != 2 )) ;; *) s=1 ;; esac
ok $s "moe-perf: a short --shape exits 2 and says what it wants (rc $rc)"
"$prog" --bogus >/dev/null 2>&1; rc=$?
ok $(( rc != 2 )) "moe-perf: an unknown option exits 2 (rc $rc)"
echo "1..$n"
