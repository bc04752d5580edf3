#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench run / merge: result files, resume, determinism across -j and
# shards, failures, corrupt files, interruption (SIGTERM and kill -9).
: "${MOEBENCH:?}" "${srcdir:=.}"
smoke="$srcdir/experiments/smoke-selftest.yaml"
data="$srcdir/t/data/run"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# "id metrics-line" for every result under a results root, sorted
metrics() { for f in "$1"/*/cells/*.json; do echo "$(basename "$f" .json) $(grep '"metrics"' "$f")"; done | sort; }
count() { ls "$1" 2>/dev/null | grep -c '\.json$'; }

"$MOEBENCH" run "$smoke" --out "$tmp/a" -j 1 2> "$tmp/log"; rc=$?
ok $rc "smoke run -j 1 succeeds"
[ "$(count "$tmp/a/smoke-selftest/cells")" = 24 ]; ok $? "24 result files"
[ "$(grep -l '"status": "ok"' "$tmp"/a/smoke-selftest/cells/*.json | wc -l)" = 24 ]; ok $? "all ok"
cmp -s "$smoke" "$tmp/a/smoke-selftest/matrix.yaml"; ok $? "matrix stored beside the results"
# cells run replication by replication (a run stopped part-way leaves whole
# replications): the reps of the ids in the order the log reports them
"$MOEBENCH" expand "$smoke" | awk '!/^#/ { sub(/^rep=/, "", $2); print $1, $2 }' > "$tmp/reps"
sed -n 's/.*\] \([0-9a-f]*\) ok .*/\1/p' "$tmp/log" > "$tmp/order"
reps=$(awk 'NR == FNR { r[$1] = $2; next } { printf "%s ", r[$1] }' "$tmp/reps" "$tmp/order")
[ "$reps" = "0 0 0 0 0 0 1 1 1 1 1 1 2 2 2 2 2 2 3 3 3 3 3 3 " ]; ok $? "cells run replication by replication ($reps)"
"$MOEBENCH" expand --ids "$smoke" | sort > "$tmp/ids"
ls "$tmp/a/smoke-selftest/cells" | sed 's/\.json$//' | sort | cmp -s - "$tmp/ids"; ok $? "one file per expanded id"
f=$(ls "$tmp"/a/smoke-selftest/cells/*.json | head -1)
for k in '"format": "moebench-result-1"' '"seed": ' '"config": {' '"timing": {"started"' '"git_commit"' \
         '"compiler"' '"cflags"' '"gsl"' '"libyaml"' '"zlib"' '"blas": {"name"' '"threads": 1' '"cpu"' '"hostname"'; do
  grep -q "$k" "$f"; ok $? "result has $k"
done

"$MOEBENCH" run "$smoke" --out "$tmp/a" 2> "$tmp/log"; rc=$?
ok $rc "rerun succeeds"
grep -q '24 already done, 0 to run' "$tmp/log"; ok $? "rerun skips every ok cell"

"$MOEBENCH" run "$smoke" --out "$tmp/b" -j 2 2> /dev/null; ok $? "smoke run -j 2 succeeds"
metrics "$tmp/a" > "$tmp/ma"; metrics "$tmp/b" > "$tmp/mb"
[ -s "$tmp/ma" ] && cmp -s "$tmp/ma" "$tmp/mb"; ok $? "metrics bit-identical across -j 1 and -j 2"

"$MOEBENCH" run "$smoke" --out "$tmp/s1" --shard 1/2 2> /dev/null; ok $? "shard 1/2"
"$MOEBENCH" run "$smoke" --out "$tmp/s2" --shard 2/2 -j 2 2> /dev/null; ok $? "shard 2/2"
[ "$(count "$tmp/s1/smoke-selftest/cells")" = 12 ] && [ "$(count "$tmp/s2/smoke-selftest/cells")" = 12 ]; ok $? "12 cells per shard"
"$MOEBENCH" merge "$tmp/m" "$tmp/s1" "$tmp/s2" 2> "$tmp/log"; ok $? "merge shards"
metrics "$tmp/m" > "$tmp/mm"
cmp -s "$tmp/ma" "$tmp/mm"; ok $? "shard 1/2 + 2/2 + merge == whole run, bit for bit"
cmp -s "$smoke" "$tmp/m/smoke-selftest/matrix.yaml"; ok $? "merge carries the matrix"
"$MOEBENCH" merge "$tmp/m" "$tmp/a/smoke-selftest" 2> "$tmp/log"; rc=$?
ok $rc "merging identical duplicates is fine"
grep -q '0 copied, 24 already present, 0 conflicts' "$tmp/log"; ok $? "merge counts identical duplicates"
mkdir -p "$tmp/c/smoke-selftest/cells"
g=$(ls "$tmp"/a/smoke-selftest/cells/ | head -1)
sed 's/"metrics": {"value": /"metrics": {"value": 1/' "$tmp/a/smoke-selftest/cells/$g" > "$tmp/c/smoke-selftest/cells/$g"
"$MOEBENCH" merge "$tmp/m" "$tmp/c" 2> "$tmp/log"; rc=$?
[ $rc = 1 ]; ok $? "conflicting duplicate: exit status 1 (got $rc)"
grep -q "conflict: .*$g" "$tmp/log"; ok $? "conflict names the file"
[ "$(grep '"metrics"' "$tmp/a/smoke-selftest/cells/$g")" = "$(grep '"metrics"' "$tmp/m/smoke-selftest/cells/$g")" ]
ok $? "conflict keeps the result already merged"
"$MOEBENCH" merge "$tmp/m" 2> /dev/null; [ $? = 2 ]; ok $? "merge without inputs is a usage error"

# cells of one matrix and data that read different bytes (data_sha256
# notes) are not merged, as report does not combine them
fa=$(printf a%.0s $(seq 64)) fb=$(printf b%.0s $(seq 64))
cp -r "$tmp/s1" "$tmp/d1"; cp -r "$tmp/s2" "$tmp/d2"
sed -i "s/\"notes\": {}/\"notes\": {\"data_sha256\": \"$fa\"}/" "$tmp"/d1/smoke-selftest/cells/*.json "$tmp"/d2/smoke-selftest/cells/*.json
g=$(ls "$tmp/d2/smoke-selftest/cells" | head -1)
sed -i "s/$fa/$fb/" "$tmp/d2/smoke-selftest/cells/$g"
"$MOEBENCH" merge "$tmp/dm" "$tmp/d1" "$tmp/d2" 2> "$tmp/log"; rc=$?
[ $rc = 1 ] && [ ! -e "$tmp/dm/smoke-selftest/cells/$g" ] && [ "$(count "$tmp/dm/smoke-selftest/cells")" = 0 ]
ok $? "merge of two shards that read different data: exit 1 (got $rc), nothing merged"
grep -q "d1/smoke-selftest/cells/.*\.json and .*d2/smoke-selftest/cells/$g .*data_sha256 $fa vs $fb" "$tmp/log" &&
  grep -q 'nothing merged (--allow-mixed-data' "$tmp/log"; ok $? "  both files and both fingerprints named"
"$MOEBENCH" merge "$tmp/dm" "$tmp/d1" "$tmp/d2" --allow-mixed-data 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && [ "$(count "$tmp/dm/smoke-selftest/cells")" = 24 ] && grep -q 'merged anyway' "$tmp/log"
ok $? "  --allow-mixed-data merges them, saying so (rc $rc)"
"$MOEBENCH" merge "$tmp/do" "$tmp/d1" 2> /dev/null && "$MOEBENCH" merge "$tmp/do" "$tmp/d2/smoke-selftest" 2> "$tmp/log"; rc=$?
[ $rc = 1 ] && grep -q "do/smoke-selftest/cells/.*\.json and .*d2/smoke-selftest/cells/$g " "$tmp/log" &&
  [ "$(count "$tmp/do/smoke-selftest/cells")" = 12 ]; ok $? "  against the cells already in OUT too (rc $rc)"
sed -i 's/"config": {/"config": {"data": "other", /' "$tmp/d2/smoke-selftest/cells/$g"
"$MOEBENCH" merge "$tmp/do" "$tmp/d2/smoke-selftest" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && [ "$(count "$tmp/do/smoke-selftest/cells")" = 24 ]; ok $? "  a cell of other data is not compared (rc $rc)"

# failures are recorded, the others continue, exit status 1; rerun retries only them
"$MOEBENCH" run "$data/fail.yaml" --out "$tmp/f" -j 2 2> "$tmp/log"; rc=$?
[ $rc = 1 ]; ok $? "failed cells: exit status 1 (got $rc)"
[ "$(grep -l '"status": "failed"' "$tmp"/f/fail/cells/*.json | wc -l)" = 2 ]; ok $? "2 failed results recorded"
[ "$(grep -l '"error": "failed on purpose (fail: true)"' "$tmp"/f/fail/cells/*.json | wc -l)" = 2 ]; ok $? "with the task's message"
[ "$(grep -l '"status": "ok"' "$tmp"/f/fail/cells/*.json | wc -l)" = 2 ]; ok $? "the other 2 ran ok"
grep -q 'FAILED.*failed on purpose' "$tmp/log"; ok $? "failure logged"
"$MOEBENCH" run "$data/fail.yaml" --out "$tmp/f" 2> "$tmp/log"; rc=$?
[ $rc = 1 ] && grep -q '2 already done, 2 to run' "$tmp/log"; ok $? "rerun retries only the failed cells"

"$MOEBENCH" status "$data/fail.yaml" --out "$tmp/f" > "$tmp/st"; rc=$?
[ $rc = 1 ] && grep -q '^fail: 4 cells: 2 ok, 0 diverged, 2 failed, 0 missing, 0 corrupt$' "$tmp/st"; ok $? "status counts failed cells (exit 1)"
[ "$(grep -c '^failed .*failed on purpose' "$tmp/st")" = 2 ]; ok $? "status lists the failures with their errors"
"$MOEBENCH" status "$smoke" --out "$tmp/a" > "$tmp/st"; ok $? "status: all ok (exit 0)"
"$MOEBENCH" status "$smoke" --out "$tmp/s1" --shard 2/2 -v > "$tmp/st"; rc=$?
[ $rc = 1 ] && grep -q 'in this shard: 0 ok, 0 diverged, 0 failed, 12 missing' "$tmp/st" && [ "$(grep -c '^missing ' "$tmp/st")" = 12 ]
ok $? "status of a shard never run: 12 missing, listed with -v"

# a corrupt (truncated) result is reported by name and rerun
h=$(ls "$tmp"/a/smoke-selftest/cells/*.json | tail -1)
head -c 100 "$h" > "$tmp/trunc"; cat "$tmp/trunc" > "$h"
"$MOEBENCH" run "$smoke" --out "$tmp/a" 2> "$tmp/log"; rc=$?
ok $rc "run after corruption succeeds"
grep -q "corrupt result, will rerun: $h" "$tmp/log"; ok $? "corrupt file reported by name"
grep -q '23 already done, 1 to run' "$tmp/log"; ok $? "only the corrupt cell reruns"
metrics "$tmp/a" | cmp -s - "$tmp/ma"; ok $? "and gets the same metrics back"

# Signals are sent at known states, never after a guessed delay: with
# MOEBENCH_SELFTEST_HOLD=DIR the cells of hold.yaml with sleep_ms > 0
# (n: 3, 4) write "PID PPID PGID" to DIR/PID and wait to be killed.
# await DIR K: wait until DIR holds K announcements (a minute at most)
await() {
  i=0
  while [ "$(ls "$1" 2> /dev/null | wc -l)" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && return 1
    sleep 0.05
  done
}
hold="$data/hold.yaml"
"$MOEBENCH" expand --ids "$hold" > "$tmp/hold-ids.order"
sort "$tmp/hold-ids.order" > "$tmp/hold-ids"

# SIGTERM with both held cells in flight: they are lost cleanly, the two
# finished ones kept, no temp files, exit 128+15
mkdir "$tmp/ht"
MOEBENCH_SELFTEST_HOLD="$tmp/ht" "$MOEBENCH" run "$hold" --out "$tmp/t" -j 2 2> "$tmp/log" &
pid=$!
if await "$tmp/ht" 2; then
  read w parent pg < "$(ls -d "$tmp"/ht/* | head -1)"
  kill -TERM "$parent"
  wait $pid; rc=$?
  [ $rc = 143 ]; ok $? "SIGTERM: exit status 143 (got $rc)"
  [ -z "$(ls -A "$tmp/t/hold/cells" | grep '^\.')" ]; ok $? "SIGTERM: no temp files left"
  [ "$(count "$tmp/t/hold/cells")" = 2 ]; ok $? "SIGTERM: the 2 finished cells kept, the 2 in flight absent"
else
  kill -9 $pid; wait $pid; ok 1 "SIGTERM: held workers never announced themselves"
fi

# kill -9 of the whole process group with both held cells in flight, and a
# stale temp file of a dead process planted: the rerun cleans it, loses and
# duplicates nothing.
mkdir "$tmp/hk"
if command -v setsid > /dev/null 2>&1; then
  MOEBENCH_SELFTEST_HOLD="$tmp/hk" setsid "$MOEBENCH" run "$hold" --out "$tmp/k" -j 2 2> /dev/null &
  pid=$!
  if await "$tmp/hk" 2; then
    read w parent pg < "$(ls -d "$tmp"/hk/* | head -1)"
    kill -9 -"$pg"
    wait $pid 2> /dev/null
    ok 0 "kill -9 of the process group with 2 workers in flight"
  else
    kill -9 $pid; wait $pid; ok 1 "kill -9: held workers never announced themselves"
  fi
  done2=$(count "$tmp/k/hold/cells")
  dead=$(sh -c 'echo $$')
  first=$(head -1 "$tmp/hold-ids")
  echo partial > "$tmp/k/hold/cells/.$first.json.tmp.$(uname -n).$dead"
  "$MOEBENCH" run "$hold" --out "$tmp/k" -j 2 2> "$tmp/log"; rc=$?
  ok $rc "rerun after kill -9 succeeds ($done2 of 4 were done)"
  grep -q 'removed 1 temp file' "$tmp/log"; ok $? "stale temp file of a dead process removed"
  grep -q '2 already done, 2 to run' "$tmp/log"; ok $? "the 2 cells finished before the kill are kept"
  [ -z "$(ls -A "$tmp/k/hold/cells" | grep '^\.')" ]; ok $? "no temp files left"
  ls "$tmp/k/hold/cells" | sed 's/\.json$//' | sort | cmp -s - "$tmp/hold-ids"; ok $? "exactly one result per cell"
  [ "$(grep -l '"status": "ok"' "$tmp"/k/hold/cells/*.json | wc -l)" = 4 ]; ok $? "all 4 ok"
  # a temp file whose pid now names a process that started after the file
  # was written (pid reuse on a busy machine) is stale all the same
  sleep 60 &
  spid=$!
  tf="$tmp/k/hold/cells/.$first.json.tmp.$(uname -n).$spid"
  echo partial > "$tf"
  touch -d '1 hour ago' "$tf"
  "$MOEBENCH" run "$hold" --out "$tmp/k" -j 2 2> "$tmp/log"; rc=$?
  [ $rc = 0 ] && grep -q 'removed 1 temp file' "$tmp/log" && [ ! -e "$tf" ]
  ok $? "a temp file of a reused pid (the process is younger than the file) is removed"
  kill "$spid" 2> /dev/null; wait "$spid" 2> /dev/null
else
  n=$((n + 1)); echo "ok $n # SKIP setsid not available"
fi

# a worker that dies (here: SIGKILL) fails only its own cell, recorded by
# the parent; the run goes on (-j 1: each held worker is killed in turn)
mkdir "$tmp/hw"
MOEBENCH_SELFTEST_HOLD="$tmp/hw" "$MOEBENCH" run "$hold" --out "$tmp/w" -j 1 2> "$tmp/log" &
pid=$!
killed=0
for k in 1 2; do
  await "$tmp/hw" 1 || break
  f=$(ls -d "$tmp"/hw/* | head -1)
  read w parent pg < "$f"
  rm -f "$f"
  kill -9 "$w" && killed=$((killed + 1))
done
[ $killed = 2 ] || kill -9 $pid
wait $pid; rc=$?
[ $killed = 2 ] && [ $rc = 1 ]; ok $? "killed workers: run continues, exit status 1 (got $rc)"
[ "$(grep -l '"error": "worker killed by signal 9' "$tmp"/w/hold/cells/*.json | wc -l)" = 2 ]; ok $? "each killed worker recorded as a failed cell"
[ "$(grep -l '"status": "ok"' "$tmp"/w/hold/cells/*.json | wc -l)" = 2 ]; ok $? "the 2 other cells ran ok"

# workers die with their parent (PR_SET_PDEATHSIG): kill -9 of the parent
# alone, with both held workers in flight, leaves no orphan computing
gone() { [ ! -d "/proc/$1" ] || grep -q '^[^ ]* ([^)]*) [ZX]' "/proc/$1/stat" 2> /dev/null; }
if [ -d /proc/self ] && [ "$(uname -s)" = Linux ]; then
  mkdir "$tmp/ho"
  MOEBENCH_SELFTEST_HOLD="$tmp/ho" "$MOEBENCH" run "$hold" --out "$tmp/o" -j 2 2> /dev/null &
  pid=$!
  if await "$tmp/ho" 2; then
    ws=$(cat "$tmp"/ho/* | cut -d' ' -f1)
    read w parent pg < "$(ls -d "$tmp"/ho/* | head -1)"
    kill -9 "$parent"; wait $pid 2> /dev/null
    i=0 alive=1
    while [ $i -lt 1200 ]; do
      alive=0; for w in $ws; do gone "$w" || alive=1; done
      [ $alive = 0 ] && break
      i=$((i + 1)); sleep 0.05
    done
    [ $alive = 0 ]; ok $? "kill -9 of the parent: its 2 workers die too"
    for w in $ws; do gone "$w" || kill -9 "$w"; done
  else
    kill -9 $pid; wait $pid; ok 1 "orphans: held workers never announced themselves"
  fi
else
  n=$((n + 1)); echo "ok $n # SKIP PR_SET_PDEATHSIG is Linux-only"
fi

# a result that cannot be written (here: a directory in its place; disk
# full is the same path) stops the run: the cells in flight finish, no new
# one starts, the failure is reported, exit status 1
set -- $(cat "$tmp/hold-ids.order")
mkdir -p "$tmp/wf/hold/cells/$3.json"
"$MOEBENCH" run "$hold" --out "$tmp/wf" -j 1 2> "$tmp/log"; rc=$?
[ $rc = 1 ]; ok $? "unwritable result: exit status 1 (got $rc)"
grep -q "^moebench: $3: computed (ok) but cannot write the result: " "$tmp/log"; ok $? "...the computed cell is reported"
grep -q '^moebench: hold: 1 result(s) could not be written (disk full or I/O error?): stopped after the cells in flight; 1 cell(s) not started' "$tmp/log"
ok $? "...no new cell started after it, and it says so"
[ -f "$tmp/wf/hold/cells/$1.json" ] && [ -f "$tmp/wf/hold/cells/$2.json" ] && [ ! -e "$tmp/wf/hold/cells/$4.json" ]
ok $? "...the cells before it kept, the one after it not run"

# rerunning a finished run does not rewrite its stored matrix (so it works
# in a read-only directory)
"$MOEBENCH" run -q "$hold" --out "$tmp/ro" 2> /dev/null
i1=$(ls -i "$tmp/ro/hold/matrix.yaml" | cut -d' ' -f1)
"$MOEBENCH" run -q "$hold" --out "$tmp/ro" 2> /dev/null; rc=$?
i2=$(ls -i "$tmp/ro/hold/matrix.yaml" | cut -d' ' -f1)
[ $rc = 0 ] && [ "$i1" = "$i2" ]; ok $? "rerun of a finished run: exit 0, matrix.yaml not rewritten"
if [ "$(id -u)" != 0 ]; then
  chmod -R a-w "$tmp/ro"
  "$MOEBENCH" run -q "$hold" --out "$tmp/ro" 2> "$tmp/log"; rc=$?
  chmod -R u+w "$tmp/ro"
  [ $rc = 0 ]; ok $? "...also in a read-only directory (got $rc)"
else
  n=$((n + 1)); echo "ok $n # SKIP read-only directory: root writes anyway"
fi

# a number that overflows (1e999) is not a finite metric: the file is
# corrupt, named, and the cell rerun
g=$(ls "$tmp"/ro/hold/cells/*.json | head -1)
sed 's/"metrics": {"value": [^,}]*/"metrics": {"value": 1e999/' "$g" > "$tmp/inf" && cat "$tmp/inf" > "$g"
grep -q '"value": 1e999' "$g"; ok $? "planted 1e999"
"$MOEBENCH" status "$hold" --out "$tmp/ro" -v > "$tmp/st"; rc=$?
[ $rc = 1 ] && grep -q "^corrupt  .*$g: metric 'value' = 1e999 is not a finite number" "$tmp/st"; ok $? "status: 1e999 is corrupt, file named (exit $rc)"
"$MOEBENCH" run "$hold" --out "$tmp/ro" 2> "$tmp/log"; rc=$?
[ $rc = 0 ] && grep -q "corrupt result, will rerun: $g: metric 'value' = 1e999" "$tmp/log"; ok $? "run reruns it"

# a BLAS core older than the CPU is warned about (only testable on an AVX2 CPU with OpenBLAS)
if grep -qw avx2 /proc/cpuinfo 2> /dev/null && grep -q '"blas": {"name": "OpenBLAS"' "$tmp"/a/smoke-selftest/cells/*.json; then
  OPENBLAS_CORETYPE=Prescott "$MOEBENCH" run "$data/fail.yaml" --out "$tmp/p" 2> "$tmp/log"
  grep -q "warning: the BLAS uses 'Prescott' kernels but this CPU has AVX" "$tmp/log"; ok $? "old BLAS core warned about"
  grep -q '"core": "Prescott"' "$tmp"/p/fail/cells/*.json; ok $? "and recorded in the results"
  grep -q "kernels forced by OPENBLAS_CORETYPE=Prescott set in the environment" "$tmp/log"; ok $? "the warning says the core came from the environment"
  grep -q '"core_source": "env"' "$tmp"/p/fail/cells/*.json; ok $? "and the results record that source"
else
  for i in 1 2 3 4; do n=$((n + 1)); echo "ok $n # SKIP needs OpenBLAS on an AVX2 CPU"; done
fi

"$MOEBENCH" run "$smoke" --out "$tmp/a" -j 0 2> /dev/null; [ $? = 2 ]; ok $? "-j 0 is a usage error"
"$MOEBENCH" run "$smoke" --shard 3/2 2> /dev/null; [ $? = 2 ]; ok $? "--shard 3/2 is a usage error"
"$MOEBENCH" run "$srcdir/t/data/matrix/err-cross.yaml" --out "$tmp/x" 2> /dev/null; rc=$?
[ $rc = 2 ] && [ ! -e "$tmp/x" ]; ok $? "invalid matrix: exit 2 before any work"

echo "1..$n"
[ $failed = 0 ]
