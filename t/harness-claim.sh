#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench run into an --out shared with another matrix or another run: a
# stored matrix.yaml that differs is refused (naming the first difference)
# unless --replace; concurrent runs claim cells (flock), so none is
# computed twice, and a claim dies with its run (kill -9).
: "${MOEBENCH:?}" "${srcdir:=.}"
smoke="$srcdir/experiments/smoke-selftest.yaml"
hold="$srcdir/t/data/run/hold.yaml"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
count() { ls "$1" 2>/dev/null | grep -c '\.json$'; }

# -- a different matrix under the same name --
"$MOEBENCH" run "$smoke" --out "$tmp/a" -q 2> /dev/null; ok $? "smoke run"
sed 's/^  n: \[10, 100, 1000\]$/  n: [10, 100, 2000]/' "$smoke" > "$tmp/other.yaml"
! cmp -s "$smoke" "$tmp/other.yaml"; ok $? "a second matrix with the same name, one axis changed"
line=$(grep -n '^  n: \[10, 100, 2000\]' "$tmp/other.yaml" | cut -d: -f1)
"$MOEBENCH" run "$tmp/other.yaml" --out "$tmp/a" -q 2> "$tmp/log"; rc=$?
[ $rc = 2 ]; ok $? "run into an --out holding another matrix: exit status 2 (got $rc)"
grep -q "smoke-selftest/matrix.yaml holds another matrix than $tmp/other.yaml (first difference at line $line (axes.n): stored '  n: \[10, 100, 1000\]', given '  n: \[10, 100, 2000\]')" "$tmp/log"
ok $? "the refusal names the first difference: line, key path, both lines"
grep -q -- '--replace' "$tmp/log"; ok $? "and says how to override"
cmp -s "$smoke" "$tmp/a/smoke-selftest/matrix.yaml" && [ "$(count "$tmp/a/smoke-selftest/cells")" = 24 ]
ok $? "refused: the stored matrix and the 24 results untouched"
"$MOEBENCH" report "$tmp/a/smoke-selftest" --format csv > /dev/null 2>&1; ok $? "report still reads the old run"
cat "$smoke" > "$tmp/other2.yaml"; echo "# a comment" >> "$tmp/other2.yaml"
"$MOEBENCH" run "$tmp/other2.yaml" --out "$tmp/a" -q 2> "$tmp/log"; rc=$?
nl=$(wc -l < "$smoke")
[ $rc = 2 ] && grep -q "first difference at line $((nl + 1)): stored (end of file), given '# a comment'" "$tmp/log"
ok $? "a matrix longer than the stored one: the first line past its end (rc $rc)"
"$MOEBENCH" run "$tmp/other.yaml" --out "$tmp/a" --replace -q 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && cmp -s "$tmp/other.yaml" "$tmp/a/smoke-selftest/matrix.yaml"; ok $? "--replace: runs and stores the new matrix (rc $rc)"
"$MOEBENCH" run "$tmp/other.yaml" --out "$tmp/a" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q '24 already done, 0 to run' "$tmp/log"; ok $? "the same matrix again: nothing to do, no refusal"

# -- a run holding two cells; a second run into the same --out --
# MOEBENCH_SELFTEST_HOLD=DIR: the cells n: 3 and n: 4 of hold.yaml announce
# their worker in DIR and wait to be killed (see t/harness-run.sh).
await() {
  i=0
  while [ "$(ls "$1" 2> /dev/null | wc -l)" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && return 1
    sleep 0.05
  done
}
if command -v setsid > /dev/null 2>&1; then
  mkdir "$tmp/h"
  MOEBENCH_SELFTEST_HOLD="$tmp/h" setsid "$MOEBENCH" run "$hold" --out "$tmp/k" -j 2 2> /dev/null &
  pid=$!
  if await "$tmp/h" 2; then
    "$MOEBENCH" run "$hold" --out "$tmp/k" -j 2 2> "$tmp/log"; rc=$?
    [ $rc = 0 ]; ok $? "a second run while the first holds 2 cells: exit status 0 (got $rc)"
    grep -q '2 already done, 2 to run' "$tmp/log" && grep -q '0 ran ok, 0 diverged, 0 failed, 2 skipped (already done), 2 taken by another run' "$tmp/log"
    ok $? "it computes neither held cell: both claimed by the first run"
    [ "$(count "$tmp/k/hold/cells")" = 2 ]; ok $? "the held cells have no result yet"
    read w parent pg < "$(ls -d "$tmp"/h/* | head -1)"
    kill -9 -"$pg"
    wait $pid 2> /dev/null
    ls -a "$tmp/k/hold/cells" | grep -q '\.lock$'; ok $? "kill -9 of the first run leaves its lock files"
    "$MOEBENCH" run "$hold" --out "$tmp/k" -j 2 2> "$tmp/log"; rc=$?
    [ $rc = 0 ] && grep -q '2 ran ok, 0 diverged, 0 failed, 2 skipped' "$tmp/log"
    ok $? "a rerun after kill -9: the dead run's claims are gone, its 2 cells run (rc $rc)"
    [ "$(grep -l '"status": "ok"' "$tmp"/k/hold/cells/*.json | wc -l)" = 4 ]; ok $? "all 4 ok"
    [ -z "$(ls -A "$tmp/k/hold/cells" | grep '^\.')" ]; ok $? "no lock or temp files left"
  else
    kill -9 $pid; wait $pid; ok 1 "held workers never announced themselves"
  fi
else
  n=$((n + 1)); echo "ok $n # SKIP setsid not available"
fi

# -- two runs started together: every cell computed once, by one of them --
cat > "$tmp/many.yaml" <<'YAML'
name: many
task: selftest
seed: 7
base:
  sleep_ms: 60
axes:
  n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
YAML
"$MOEBENCH" run "$tmp/many.yaml" --out "$tmp/c" -j 2 2> "$tmp/log1" &
p1=$!
"$MOEBENCH" run "$tmp/many.yaml" --out "$tmp/c" -j 2 2> "$tmp/log2" &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
[ $r1 = 0 ] && [ $r2 = 0 ]; ok $? "two concurrent runs into one --out: both exit 0 ($r1, $r2)"
cat "$tmp/log1" "$tmp/log2" | sed -n 's/^moebench: \[[0-9]*\/[0-9]*\] \([0-9a-f]*\) ok .*/\1/p' | sort > "$tmp/computed"
"$MOEBENCH" expand --ids "$tmp/many.yaml" | sort > "$tmp/ids"
cmp -s "$tmp/computed" "$tmp/ids"
ok $? "each of the 16 cells computed exactly once ($(grep -c . < "$tmp/computed") computations; first run \
$(grep -c '\] .* ok (' "$tmp/log1"), second $(grep -c '\] .* ok (' "$tmp/log2"))"
[ "$(grep -l '"status": "ok"' "$tmp"/c/many/cells/*.json | wc -l)" = 16 ]; ok $? "16 ok results"
[ -z "$(ls -A "$tmp/c/many/cells" | grep '^\.')" ]; ok $? "no lock or temp files left"
# -- small items of the run and merge paths --
# a quiet run that lasts prints a progress line now and then (every 60 s;
# here every 0.2 s)
printf 'name: slow\ntask: selftest\nseed: 3\nbase:\n  sleep_ms: 150\naxes:\n  n: [1, 2, 3, 4, 5, 6]\n' > "$tmp/slow.yaml"
MOEBENCH_PROGRESS_EVERY=0.2 "$MOEBENCH" run -q "$tmp/slow.yaml" --out "$tmp/q" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q '^moebench: slow: \[[1-5]/6\] 0 failed, 0 running, ETA [0-9]*:[0-5][0-9]$' "$tmp/log"
ok $? "run -q: a progress line when the run lasts ($(grep -c . < "$tmp/log") lines)"
"$MOEBENCH" run -q "$tmp/slow.yaml" --out "$tmp/q2" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && [ ! -s "$tmp/log" ]; ok $? "run -q: silent when it is short"
# merge into a matrix's own directory would nest NAME/NAME/: refused
"$MOEBENCH" merge "$tmp/q/slow" "$tmp/q2/slow" 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "merge: $tmp/q/slow holds cells/: it is one matrix's directory, not a results root" "$tmp/log" &&
  [ ! -e "$tmp/q/slow/slow" ]; ok $? "merge A/x B: refused, no A/x/x/ (rc $rc)"
"$MOEBENCH" merge "$tmp/q" "$tmp/q2/slow" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q '0 copied, 6 already present' "$tmp/log"; ok $? "merge A B/x: fine"
# a read-only results directory is named as such, before any cell runs
if [ "$(id -u)" != 0 ]; then
  mkdir -p "$tmp/ro/slow/cells" && cp "$tmp/slow.yaml" "$tmp/ro/slow/matrix.yaml" && chmod a-w "$tmp/ro/slow/cells"
  "$MOEBENCH" run -q "$tmp/slow.yaml" --out "$tmp/ro" 2> "$tmp/log"; rc=$?
  chmod u+w "$tmp/ro/slow/cells"
  [ $rc = 1 ] && grep -q "6 cell(s) to run, but results cannot be written there: Permission denied" "$tmp/log"
  ok $? "read-only cells/: refused up front with the reason, not blamed on the disk (rc $rc)"
else
  n=$((n + 1)); echo "ok $n # SKIP read-only directory: root writes anyway"
fi

echo "1..$n"
[ $failed = 0 ]
