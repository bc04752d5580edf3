#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The result-file reader against moebench-result-1 as documented
# (moebench(1), FILES): a metric that is not finite (1e999 overflows) and a
# status other than "ok"/"failed" make the file corrupt, named, and the
# cell is rerun; a valid file is kept.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
printf 'name: rr\ntask: selftest\nseed: 7\naxes:\n  n: [1, 2, 3]\n' > "$tmp/rr.yaml"
"$MOEBENCH" run -q "$tmp/rr.yaml" --out "$tmp/o"; ok $? "run 3 cells"
set -- "$tmp"/o/rr/cells/*.json
[ $# = 3 ]; ok $? "3 result files"
sed 's/"metrics": {"value": [^,}]*/"metrics": {"value": 1e999/' "$1" > "$tmp/x" && cat "$tmp/x" > "$1"
sed 's/"status": "ok"/"status": "done"/' "$2" > "$tmp/x" && cat "$tmp/x" > "$2"
grep -q '"value": 1e999' "$1" && grep -q '"status": "done"' "$2"; ok $? "planted 1e999 and status \"done\""
"$MOEBENCH" status "$tmp/rr.yaml" --out "$tmp/o" -v > "$tmp/st"; rc=$?
[ $rc = 1 ]; ok $? "status: exit 1 with corrupt files (got $rc)"
grep -q "^corrupt  .*$1: metric 'value' = 1e999 is not a finite number" "$tmp/st"; ok $? "1e999: corrupt, file named"
grep -q "^corrupt  .*$2: bad or missing \"status\"" "$tmp/st"; ok $? "status \"done\": corrupt, file named"
[ "$(grep -c '^corrupt ' "$tmp/st")" = 2 ]; ok $? "the third file is read as valid"
"$MOEBENCH" run -q "$tmp/rr.yaml" --out "$tmp/o" 2> /dev/null; ok $? "run reruns the corrupt cells"
"$MOEBENCH" status "$tmp/rr.yaml" --out "$tmp/o" > /dev/null; ok $? "then all 3 are done"
# a metric that is not a number at all is named, in status and in report
sed 's/"draw_mean": [^,}]*/"draw_mean": "many"/' "$3" > "$tmp/x" && cat "$tmp/x" > "$3"
grep -q '"draw_mean": "many"' "$3"; ok $? "planted a string metric"
"$MOEBENCH" status "$tmp/rr.yaml" --out "$tmp/o" -v > "$tmp/st"
grep -q "^corrupt  .*$3: metric 'draw_mean' is not a number" "$tmp/st"; ok $? "status names the metric that is not a number"
"$MOEBENCH" report "$tmp/o/rr" > /dev/null 2> "$tmp/err"
grep -q "$3: metric 'draw_mean' is not a number" "$tmp/err"; ok $? "report names it too"
echo "1..$n"; [ $failed -eq 0 ]
