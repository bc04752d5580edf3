#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# perf-lm-args.sh — bench/perf/lm-perf and vision-perf: --help prints the
# usage and exits 0 without running anything (a lone last argument used to
# be skipped, so --help ran the default benchmark); an option without its
# value, a value that is not a whole number and an unknown option are
# refused with exit 2 before any timing.
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
done
echo "1..$n"
