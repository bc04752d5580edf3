#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The installed quick start (bench/harness/share.mk, installed as
# /usr/share/moebench/Makefile, and mb-bench.sh): run from an empty
# directory without the data sets, a matrix that needs one is skipped with
# one line naming the make target that makes it, the others run, and the
# exit status is 0; once the data is there the matrix is no longer skipped.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
top=$(cd "$srcdir" && pwd)
share=$top/bench/harness
m="$top/experiments/quick-lm.yaml $top/experiments/smoke-selftest.yaml"
mkdir "$tmp/empty"
(cd "$tmp/empty" && make -s -f "$share/share.mk" bench-quick MOEBENCH="$MOEBENCH" MATRICES="$m" >out 2>err)
ok $? "make -f share.mk bench-quick in an empty directory: exit 0 with quick-lm's data missing"
grep -q "^mb-bench: skipped quick-lm: no LM token files in data/lm (make them with: make -f $share/Makefile lm-data" \
  "$tmp/empty/err"
ok $? "one line says quick-lm was skipped and how to make its data: $(grep '^mb-bench: skipped' "$tmp/empty/err")"
[ "$(grep -c '^mb-bench: skipped' "$tmp/empty/err")" = 1 ] && [ ! -d "$tmp/empty/results/quick-lm" ] &&
  [ -s "$tmp/empty/results/smoke-selftest/report/summary.md" ] && [ -s "$tmp/empty/results/results-quick.md" ]
ok $? "quick-lm has no results, smoke-selftest ran and was reported"
# With token files present (unusable ones) quick-lm runs, and its cells fail.
mkdir -p "$tmp/data/lm" && : >"$tmp/data/lm/train.tok"
(cd "$tmp/empty" && make -s -f "$share/share.mk" bench-quick MOEBENCH="$MOEBENCH" DATADIR="$tmp/data" \
  MATRICES="$top/experiments/quick-lm.yaml" >out2 2>err2)
rc=$?
[ $rc -ne 0 ] && ! grep -q '^mb-bench: skipped' "$tmp/empty/err2" && [ -d "$tmp/empty/results/quick-lm/cells" ]
ok $? "with DATADIR holding lm/train.tok, quick-lm is run (and fails on the empty file: exit $rc)"
echo "1..$n"
[ $failed -eq 0 ]
