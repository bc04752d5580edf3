#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# perf-lm-args.sh — bench/perf/lm-perf and vision-perf: --help prints the
# usage and exits 0 without running anything (a lone last argument used to
# be skipped, so --help ran the default benchmark); an option without its
# value, a value that is not a whole number and an unknown option are
# refused with exit 2 before any timing. --blas-core NAME runs on OpenBLAS's
# NAME kernels and says so (core_source=option), as moebench run's does; a
# name OpenBLAS does not have is refused with exit 2.
set -u
build=${top_builddir:-.}
. "${srcdir:-.}/t/tap.sh"

for p in lm-perf vision-perf; do
  prog=$build/bench/perf/$p
  out=$("$prog" --help 2>&1); rc=$?
  ok $(( rc != 0 )) "$p --help exits 0"
  case $out in "usage: $p"*) s=0 ;; *) s=1 ;; esac
  case $out in *"ms/step"*) s=1 ;; esac
  ok $s "$p --help prints the usage and runs nothing"
  check() { # check NAME WANT-IN-STDERR ARGS...
    name=$1 want=$2; shift 2
    err=$("$prog" "$@" 2>&1 >/dev/null); rc=$?
    ok $(( rc != 2 )) "$p $name: exit 2 (got $rc)"
    case $err in *"$want"*) s=0 ;; *) s=1 ;; esac
    ok $s "$p $name: says '$want'"
  }
  check "lone last option" "option --steps needs a value" --D 16 --steps
  check "not a number" "--D '16x' is not a whole number" --D 16x
  check "unknown option" "unknown option --bogus" --bogus 1
  case $p in
    lm-perf) tiny="--V 64 --T 8 --D 16 --L 1 --H 1 --N 4 --K 2 --s 1 --F 8 --B 1 --steps 1" ;;
    *) tiny="--B 2 --steps 1" ;;
  esac
  if [ "$(uname -m)" = x86_64 ]; then
    # shellcheck disable=SC2086
    line=$("$prog" $tiny --blas-core Prescott 2>&1); rc=$?
    case $line in *" core=Prescott core_source=option "*) s=$rc ;; *) s=1 ;; esac
    ok $s "$p --blas-core Prescott runs on Prescott kernels, core_source=option"
    # shellcheck disable=SC2086
    line=$(OPENBLAS_CORETYPE=Prescott "$prog" $tiny 2>&1); rc=$?
    case $line in *" core=Prescott core_source=env "*) s=$rc ;; *) s=1 ;; esac
    ok $s "$p: OPENBLAS_CORETYPE=Prescott gives core_source=env"
    # shellcheck disable=SC2086
    check "kernel OpenBLAS lacks" "not a kernel this OpenBLAS has" $tiny --blas-core NoSuchCore
  else
    for _ in 1 2 3; do n=$((n + 1)); echo "ok $n # SKIP $p --blas-core: the kernel names are x86-64's"; done
  fi
done
echo "1..$n"
