#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# perf-synthetic-args.sh — bench/perf/perf_synthetic refuses what it
# cannot read (an unknown option, a count that is not a positive whole
# number, too many arguments) with its usage and exit 2, before any
# timing; --help prints the usage and exits 0.
set -u
build=${top_builddir:-.}
ps=$build/bench/perf/perf_synthetic
. "${srcdir:-.}/t/tap.sh"

out=$("$ps" --help 2>&1); rc=$?
ok $(( rc != 0 )) "--help exits 0"
case $out in *"usage: perf_synthetic"*) s=0 ;; *) s=1 ;; esac
ok $s "--help prints the usage"

check() { # check NAME WANT-IN-STDERR ARGS...
  name=$1 want=$2; shift 2
  err=$("$ps" "$@" 2>&1 >/dev/null); rc=$?
  ok $(( rc != 2 )) "$name: exit 2 (got $rc)"
  case $err in *"$want"*) s=0 ;; *) s=1 ;; esac
  ok $s "$name: says '$want'"
}
check "unknown option" "'--bogus' is not an option" --bogus
check "zero replications" "'0' is not a positive whole number" --em-only 0
check "not a number" "'3x' is not a positive whole number" 3x
check "negative NMAX" "'-5' is not a positive whole number" 2 -5
check "too many arguments" "usage: perf_synthetic" 1 2 3
check "d4 without limits" "usage: perf_synthetic" --d4-sensitivity a
echo "1..$n"
[ "$failed" -eq 0 ]
