#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench run --blas-core: auto re-executes once with the kernels for this
# CPU when OpenBLAS runs older ones and says so in every result; a forced
# name likewise; without the option the environment is left alone; a
# kernel OpenBLAS does not take stops after one re-execution.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
unset MOEBENCH_BLAS_CORE_EXEC
m=$tmp/bc.yaml
printf 'name: bc\ntask: selftest\nseed: 3\naxes:\n  n: [10, 20]\nreplications: 1\n' > "$m"
# "core source" of every result of a run, one line per distinct pair
cores() { sed -n 's/.*"core": "\([^"]*\)", "core_source": "\([^"]*\)".*/\1 \2/p' "$1"/bc/cells/*.json | sort -u | tr '\n' ' '; }

# The kernels for this CPU, by the flags the kernel reports (the program
# asks cpuid itself): what OpenBLAS 0.3.21 picks on a CPU it detects right.
flags=$(grep -m1 '^flags' /proc/cpuinfo 2> /dev/null)
has() { case " ${flags#*:} " in *" $1 "*) return 0 ;; esac; return 1; }
want=
if has avx512f && has avx512vl && has avx512bw && has avx512dq; then
  if has avx512_bf16; then want=Cooperlake; else want=SkylakeX; fi
elif has avx2 && has fma; then want=Haswell
fi
"$MOEBENCH" run "$m" --out "$tmp/probe" -q 2> /dev/null
if [ -z "$want" ] || ! grep -q '"blas": {"name": "OpenBLAS"' "$tmp"/probe/bc/cells/*.json 2> /dev/null; then
  echo "1..0 # SKIP needs OpenBLAS on an x86-64 CPU with AVX2 (want='$want')"
  exit 0
fi

OPENBLAS_CORETYPE=Prescott "$MOEBENCH" run "$m" --out "$tmp/auto" --blas-core auto 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q "re-executing with OPENBLAS_CORETYPE=$want" "$tmp/log"; ok $? "auto from Prescott re-executes for $want (exit $rc)"
[ "$(cores "$tmp/auto")" = "$want auto " ]; ok $? "every result records $want chosen by auto ($(cores "$tmp/auto"))"
! grep -q "warning: the BLAS uses" "$tmp/log"; ok $? "and no old-kernel warning follows"
[ "$(grep -c 're-executing' "$tmp/log")" = 1 ]; ok $? "once"

OPENBLAS_CORETYPE=$want "$MOEBENCH" run "$m" --out "$tmp/same" --blas-core auto 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && ! grep -q re-executing "$tmp/log" && [ "$(cores "$tmp/same")" = "$want env " ]
ok $? "auto on kernels already this CPU's: no re-execution, source env ($(cores "$tmp/same"))"

OPENBLAS_CORETYPE=Prescott "$MOEBENCH" run "$m" --out "$tmp/none" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && ! grep -q re-executing "$tmp/log" && [ "$(cores "$tmp/none")" = "Prescott env " ]
ok $? "without --blas-core the environment's Prescott stays ($(cores "$tmp/none"))"
grep -q "try --blas-core auto, i.e. OPENBLAS_CORETYPE=$want" "$tmp/log"; ok $? "and the warning names the option"
(unset OPENBLAS_CORETYPE; "$MOEBENCH" run "$m" --out "$tmp/det" -q 2> /dev/null)
case $(cores "$tmp/det") in *" detected ") r=0 ;; *) r=1 ;; esac; ok $r "unset and no option: detected ($(cores "$tmp/det"))"

OPENBLAS_CORETYPE=Prescott "$MOEBENCH" run "$m" --out "$tmp/forced" --blas-core Haswell -q 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && [ "$(cores "$tmp/forced")" = "Haswell option " ]; ok $? "--blas-core Haswell: source option ($(cores "$tmp/forced"))"

# the loop guard: a name OpenBLAS does not take (it falls back to its
# detection) is tried once, then refused
timeout 120 "$MOEBENCH" run "$m" --out "$tmp/nosuch" --blas-core NoSuchKernel 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "even with OPENBLAS_CORETYPE=NoSuchKernel" "$tmp/log" && [ ! -e "$tmp/nosuch/bc/cells" ]
ok $? "an unknown kernel: one re-execution, then exit 2 before any work (exit $rc)"
[ "$(grep -c re-executing "$tmp/log")" = 1 ]; ok $? "exactly one re-execution"
# auto in a process that was re-executed already and still has old kernels
OPENBLAS_CORETYPE=Prescott MOEBENCH_BLAS_CORE_EXEC=$want timeout 120 "$MOEBENCH" run "$m" --out "$tmp/guard" \
  --blas-core auto 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && ! grep -q re-executing "$tmp/log" && grep -q "going on with them" "$tmp/log" &&
  [ "$(cores "$tmp/guard")" = "Prescott env " ]
ok $? "auto after a re-execution that did not take: goes on, recorded as env ($(cores "$tmp/guard"))"

"$MOEBENCH" run "$m" --out "$tmp/bad" --blas-core 'Sky lake' 2> /dev/null; [ $? = 2 ]; ok $? "a malformed name is a usage error"
"$MOEBENCH" run --blas-core auto "$m" --until-resolved --out "$tmp/seq" -q 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "$m: --until-resolved needs a 'sequential:' key" "$tmp/log"
ok $? "--until-resolved takes --blas-core's value as its value, not as the matrix (exit $rc)"
"$MOEBENCH" run --help | grep -q -- '--blas-core auto'; ok $? "--help describes it"

echo "1..$n"
[ $failed = 0 ]
