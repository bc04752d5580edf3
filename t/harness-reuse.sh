#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench run --reuse-from SRC: a cell with no result takes a byte copy of
# an ok result with the same id from another results root or matrix
# directory (a matrix sharing cells with another, as paper-vision with
# paper-vision-upcycle); what it copies equals what a run computes; failed,
# corrupt or foreign files are not taken; a bad SRC is a usage error.
: "${MOEBENCH:?}" "${srcdir:=.}"
smoke="$srcdir/experiments/smoke-selftest.yaml"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
count() { ls "$1" 2>/dev/null | grep -c '\.json$'; }

"$MOEBENCH" run "$smoke" --out "$tmp/a" -q 2> /dev/null; ok $? "smoke run: 24 cells"
# another matrix (another name) holding the smoke run's 24 cells and 8 more
sed 's/^name: smoke-selftest$/name: wider/; s/^  n: \[10, 100, 1000\]$/  n: [10, 100, 1000, 5000]/' \
  "$smoke" > "$tmp/w.yaml"
grep -q '^name: wider' "$tmp/w.yaml" && grep -q '^  n: \[10, 100, 1000, 5000\]' "$tmp/w.yaml"
ok $? "a wider matrix under another name"
"$MOEBENCH" run "$tmp/w.yaml" --out "$tmp/b" --reuse-from "$tmp/a" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q 'wider: 24 result(s) of the same cells copied from --reuse-from' "$tmp/log" &&
  grep -q '32 cells, 24 already done, 8 to run' "$tmp/log" &&
  grep -q '8 ran ok, 0 diverged, 0 failed, 24 skipped' "$tmp/log"
ok $? "--reuse-from a results root: 24 copied, 8 run (rc $rc)"
same=0
for f in "$tmp"/a/smoke-selftest/cells/*.json; do
  cmp -s "$f" "$tmp/b/wider/cells/$(basename "$f")" && same=$((same + 1))
done
[ $same = 24 ] && [ "$(count "$tmp/b/wider/cells")" = 32 ]; ok $? "the 24 are byte copies ($same)"
# what was copied is what a run computes (the id is the computation)
"$MOEBENCH" run "$tmp/w.yaml" --out "$tmp/c" -q 2> /dev/null
diffs=0
for f in "$tmp"/c/wider/cells/*.json; do
  a=$(sed -n '/"metrics"/,/}/p' "$f"); b=$(sed -n '/"metrics"/,/}/p' "$tmp/b/wider/cells/$(basename "$f")")
  [ -n "$a" ] && [ "$a" = "$b" ] || diffs=$((diffs + 1))
done
[ $diffs = 0 ]; ok $? "every metric of the reusing run equals a run from scratch ($diffs differ)"
"$MOEBENCH" report "$tmp/b/wider" --format csv > /dev/null 2>&1; ok $? "report reads the reusing run"

# a matrix directory as SRC, and nothing left to copy the second time
"$MOEBENCH" run "$tmp/w.yaml" --out "$tmp/d" --reuse-from "$tmp/a/smoke-selftest" 2> "$tmp/log"
grep -q '24 result(s) of the same cells copied' "$tmp/log"; ok $? "--reuse-from one matrix's directory"
"$MOEBENCH" run "$tmp/w.yaml" --out "$tmp/d" --reuse-from "$tmp/a" 2> "$tmp/log"
! grep -q 'copied from --reuse-from' "$tmp/log" && grep -q '32 already done, 0 to run' "$tmp/log"
ok $? "a cell with a result here is left alone"

# failed and corrupt sources are not taken: those cells run
cp -r "$tmp/a" "$tmp/s"
set -- "$tmp"/s/smoke-selftest/cells/*.json
sed 's/"status": "ok"/"status": "failed"/' "$1" > "$tmp/x" && mv "$tmp/x" "$1"
head -c 40 "$2" > "$tmp/x" && mv "$tmp/x" "$2"
grep -q '"status": "failed"' "$1"; ok $? "a source result marked failed"
"$MOEBENCH" run "$tmp/w.yaml" --out "$tmp/e" --reuse-from "$tmp/s" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q '22 result(s) of the same cells copied' "$tmp/log" &&
  grep -q '10 ran ok, 0 diverged, 0 failed, 22 skipped' "$tmp/log"
ok $? "a failed and a corrupt source are not copied: their cells run (rc $rc)"
cmp -s "$1" "$tmp/e/wider/cells/$(basename "$1")"; [ $? != 0 ]; ok $? "the failed file was not copied"

# usage errors
"$MOEBENCH" run "$tmp/w.yaml" --out "$tmp/f" --reuse-from "$tmp/none" 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "reuse-from: '$tmp/none' is not a directory" "$tmp/log" && [ ! -d "$tmp/f" ]
ok $? "--reuse-from a missing directory: exit status 2, named, nothing written (rc $rc)"
# --until-resolved passes the option on with its value (not taken as the matrix)
"$MOEBENCH" run --until-resolved --reuse-from "$tmp/a" "$tmp/w.yaml" --out "$tmp/g" 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "$tmp/w.yaml: --until-resolved needs a 'sequential:' key" "$tmp/log"
ok $? "--until-resolved reads --reuse-from's value as its value (rc $rc)"
echo "1..$n"
[ $failed -eq 0 ]
