#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Scale-out: the Slurm array script runs the shards that together make the
# whole run; the GNU parallel recipe of moebench(1) (only if parallel is
# installed).
: "${MOEBENCH:?}" "${srcdir:=.}"
smoke="$srcdir/experiments/smoke-selftest.yaml"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
metrics() { for f in "$1"/*/cells/*.json; do echo "$(basename "$f" .json) $(grep '"metrics"' "$f")"; done | sort; }

"$MOEBENCH" run -q "$smoke" --out "$tmp/whole"; ok $? "whole run"
metrics "$tmp/whole" > "$tmp/mw"

"$MOEBENCH" slurm "$smoke" --shards 3 --out "$tmp/sl" --moebench "$MOEBENCH" > "$tmp/job.sh"; ok $? "slurm script"
grep -q '^#SBATCH --array=1-3$' "$tmp/job.sh"; ok $? "job array of 3"
grep -q '^#SBATCH --job-name=moebench-smoke-selftest$' "$tmp/job.sh"; ok $? "job name"
grep -q -- '^s=$SLURM_ARRAY_TASK_ID$' "$tmp/job.sh" && grep -q -- '--shard "$s/3"' "$tmp/job.sh"; ok $? "each task runs its shard"
for i in 1 2 3; do SLURM_ARRAY_TASK_ID=$i sh "$tmp/job.sh" 2> /dev/null || failed=$((failed + 1)); done
metrics "$tmp/sl" | cmp -s - "$tmp/mw"; ok $? "the 3 array tasks together == the whole run, bit for bit"
# more shards than --max-array: each task runs several, together the whole run
"$MOEBENCH" slurm "$smoke" --shards 5 --max-array 2 --out "$tmp/chunk" --moebench "$MOEBENCH" > "$tmp/job3.sh"
grep -q '^#SBATCH --array=1-2$' "$tmp/job3.sh"; ok $? "--shards 5 --max-array 2: an array of 2 tasks"
for i in 1 2; do SLURM_ARRAY_TASK_ID=$i sh "$tmp/job3.sh" 2> "$tmp/chunk$i.err" || failed=$((failed + 1)); done
[ "$(cat "$tmp/chunk1.err" "$tmp/chunk2.err" | grep -c 'in this shard')" = 5 ] && metrics "$tmp/chunk" | cmp -s - "$tmp/mw"
ok $? "task 1 runs shards 1, 3, 5 and task 2 shards 2, 4: together == the whole run"
# refusals: each a usage error (2) with a message naming the option
refuse() { # WHY ARGS...
  why=$1; shift
  "$MOEBENCH" slurm "$smoke" "$@" > /dev/null 2> "$tmp/refuse.err"
  rc=$?
  [ $rc = 2 ] && grep -q 'moebench slurm' "$tmp/refuse.err"; ok $? "$why: exit $rc, $(head -1 "$tmp/refuse.err")"
}
refuse "--sbatch without an option" --sbatch 'qos=long'
refuse "--sbatch with a newline" --sbatch "$(printf -- '--qos=long\n#SBATCH --x')"
refuse "--sbatch --array (moebench sets it)" --sbatch '--array=1-9'
refuse "--time with a space" --time '1 day'
refuse "--max-array 0" --max-array 0
refuse "--throttle x" --throttle x
refuse "--resubmit a missing directory" --resubmit "$tmp/nothing"
"$MOEBENCH" slurm "$smoke" --shards 1000 > "$tmp/job2.sh"
grep -q '^#SBATCH --array=1-24$' "$tmp/job2.sh"; ok $? "no more shards than cells"
"$MOEBENCH" slurm "$smoke" --shards 0 > /dev/null 2>&1; [ $? = 2 ]; ok $? "--shards 0: usage error"

if command -v parallel > /dev/null 2>&1 && parallel --version 2>/dev/null | grep -q GNU; then
  parallel -j 2 "$MOEBENCH" run -q "$smoke" --shard {}/4 --out "$tmp/par/{}" ::: 1 2 3 4; ok $? "GNU parallel recipe"
  "$MOEBENCH" merge "$tmp/pm" "$tmp"/par/* 2> /dev/null; ok $? "merge the per-shard directories"
  metrics "$tmp/pm" | cmp -s - "$tmp/mw"; ok $? "parallel shards + merge == whole run"
else
  n=$((n + 1)); echo "ok $n # SKIP GNU parallel not installed"
fi

echo "1..$n"
[ $failed = 0 ]
