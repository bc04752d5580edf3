#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench run --until-resolved, report's power columns and moebench plan,
# end to end on experiments/toy-sequential.yaml (selftest task, seconds):
# the stopping rule against the confidence sequence recomputed here from
# the cells, continued replication indices (the cells of a fixed-n run of
# the final count), resume, the record in report, and the error paths.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
toy="$srcdir/experiments/toy-sequential.yaml"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
d="$tmp/r/toy-sequential"

"$MOEBENCH" run -q "$toy" --out "$tmp/r" -j 2 --until-resolved; ok $? "run --until-resolved"
rec="$d/sequential.json"
grep -q '"format": "moebench-sequential-1"' "$rec"; ok $? "decision recorded in sequential.json"
nrep=$(sed -n 's/.*"replications": \([0-9]*\), "stopped": "resolved".*/\1/p' "$rec")
[ -n "$nrep" ] && [ "$nrep" -gt 3 ] && [ "$nrep" -lt 30 ]; ok $? "stopped resolved before max_replications (n = $nrep)"
rounds=$(grep -c '"round": [0-9]*, "replications"' "$rec")
[ "$rounds" = $(( (nrep - 3) / 3 + 1 )) ]; ok $? "rounds of 3 from 3: $rounds rounds for n = $nrep"
[ "$(ls "$d/cells" | wc -l)" = $((4 * nrep)) ]; ok $? "4 cells per replication, reps 0..n-1 ($(ls "$d/cells" | wc -l) cells)"

# the decision, recomputed from the cells: every comparison of the last
# round resolved, some of the one before not; CS excludes 0 or half-width <= 0.1
last=$(grep '"comparison"' "$rec" | tail -4)
echo "$last" | grep -q '"resolved": "no"'; [ $? = 1 ]; ok $? "last round: all resolved"
grep '"comparison"' "$rec" | tail -8 | head -4 | grep -q '"resolved": "no"'; ok $? "round before: some unresolved"
echo "$last" | awk -F'"half_width": |, "resolved": "' '{split($3, r, "\""); hw = $2 + 0
  lo = $0; sub(/.*"cs_lo": /, "", lo); lo += 0; hi = $0; sub(/.*"cs_hi": /, "", hi); hi += 0
  if (r[1] == "narrow" && !(hw <= 0.1)) bad = 1
  if (r[1] == "excludes 0" && !(lo > 0 || hi < 0)) bad = 1 } END { exit bad }'
ok $? "each resolution is what its interval says"
# the confidence sequence of one comparison, recomputed from its pairs with
# the formula of power.h (awk; c from the record)
c=$(sed -n 's/.*"c": \([0-9.e+-]*\),.*/\1/p' "$rec")
got=$(echo "$last" | sed -n '4s/.*"half_width": \([0-9.e+-]*\),.*/\1/p')
sd=$(echo "$last" | sed -n '4s/.*"sd": \([0-9.e+-]*\),.*/\1/p')
awk -v n="$nrep" -v s="$sd" -v c="$c" -v got="$got" 'BEGIN {
  K = exp((2 / n) * (log(1 / 0.05) + 0.5 * log((n + c) / c)))
  h = sqrt((K - 1) * (n - 1) * s * s / (n * (1 - K * c / (n + c))))
  d = h - got; if (d < 0) d = -d; exit !(d < 1e-9 * h) }'; ok $? "CS half-width = closed form at n = $nrep (sd $sd, c $c)"

# resume: a rerun replays the same rounds and runs nothing
cp "$rec" "$tmp/rec1"
"$MOEBENCH" run "$toy" --out "$tmp/r" --until-resolved 2> "$tmp/log"; ok $? "rerun"
cmp -s "$rec" "$tmp/rec1"; ok $? "rerun: the same record"
! grep -q ' ran ok' "$tmp/log" || ! grep -v ' 0 ran ok' "$tmp/log" | grep -q ' ran ok'; ok $? "rerun: no cell run again"
# interrupted mid-way: remove the last round's cells; the rerun redoes them
ls "$d/cells" | head -3 | while read f; do rm "$d/cells/$f"; done
"$MOEBENCH" run -q "$toy" --out "$tmp/r" --until-resolved; ok $? "resume after lost cells"
cmp -s "$rec" "$tmp/rec1"; ok $? "resume: the same decisions"

# the cells are those of a fixed-n run with the final count
sed "s/^replications: 3$/replications: $nrep/; /^sequential:/,\$d" "$toy" > "$tmp/fixed.yaml"
"$MOEBENCH" run -q "$tmp/fixed.yaml" --out "$tmp/f" -j 2; ok $? "fixed-n run of $nrep replications"
(cd "$d/cells" && ls) > "$tmp/ids1"; (cd "$tmp/f/toy-sequential/cells" && ls) > "$tmp/ids2"
cmp -s "$tmp/ids1" "$tmp/ids2"; ok $? "same cell ids"
for f in $(head -5 "$tmp/ids1"); do
  grep '"value"' "$d/cells/$f" > "$tmp/m1"; grep '"value"' "$tmp/f/toy-sequential/cells/$f" > "$tmp/m2"
  cmp -s "$tmp/m1" "$tmp/m2" || echo "differs: $f"
done > "$tmp/diffs"
[ ! -s "$tmp/diffs" ]; ok $? "same metrics"

# report: the n of the run, the record, the power and Holm columns
"$MOEBENCH" report "$tmp/r" --format md,csv,json 2> /dev/null; ok $? "report"
rep="$d/report"
grep -q "^Task \`selftest\`, seed 19, $((4 * nrep)) cells ($nrep replications)" "$rep/summary.md"; ok $? "report uses the run's n"
grep -q '^### Sequential replication' "$rep/summary.md"; ok $? "report: the sequential record"
grep -q "^Sequential: stopped at $nrep replications: resolved" "$rep/brief.txt"; ok $? "brief: the stopping decision"
grep -q '^| mode | n=10 mean | n=10 ci95 | n=10 n | n=10 sd | n=10 mde80 | n=10 p | n=10 p_holm | n=10 holm | n=10 n for 0.05 |' "$rep/draw_vs_plain.md"
ok $? "paired table: sd, mde80, p, p_holm, holm, n for the effect"
grep -q '^| noisy | [0-9.]* | .* | differs |' "$rep/value_vs_plain.md"; ok $? "value differs (Holm)"
[ "$(head -1 "$rep/draw_vs_plain.csv")" = "mode,n,metric,n,mean,sd,se,ci95_lo,ci95_hi,median,min,max,trmean,mde80,p,p_holm,n_for_effect" ]
ok $? "csv: power columns"
grep -q 'Holm-adjusted over the 4 comparisons of family `vs-plain`' "$rep/summary.md"; ok $? "one Holm family over both tables"
# p_holm from the csv p values, by hand (awk): sorted, (m-j+1) p, running max
awk -F, 'FNR > 1 && $15 != "" { p[++m] = $15; a[m] = $16 } END {
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (p[j] < p[i]) { t = p[i]; p[i] = p[j]; p[j] = t; t = a[i]; a[i] = a[j]; a[j] = t }
  run = 0; for (i = 1; i <= m; i++) { v = (m - i + 1) * p[i]; if (v > 1) v = 1; if (v > run) run = v
    d = run - a[i]; if (d < 0) d = -d; if (d > 1e-12 * run + 1e-300) bad = 1 }
  exit bad || m != 4 }' "$rep/value_vs_plain.csv" "$rep/draw_vs_plain.csv"; ok $? "p_holm = Holm of the family's p (recomputed)"

# plan: from this run as the pilot
"$MOEBENCH" plan "$toy" --pilot "$tmp/r" > "$tmp/plan.md"; ok $? "plan"
grep -q '^| draw_vs_plain: mode=noisy, n=10 | '"$nrep"' | ' "$tmp/plan.md"; ok $? "plan: one row per comparison, pilot n"
grep -q 'CPU s per replication in the pilot' "$tmp/plan.md"; ok $? "plan: CPU of the whole matrix"
"$MOEBENCH" plan "$toy" --pilot "$d" --effect 0.02 --format csv > "$tmp/plan.csv"; ok $? "plan --effect --format csv"
[ "$(wc -l < "$tmp/plan.csv")" = 5 ]; ok $? "plan csv: header + 4 comparisons"
"$MOEBENCH" plan "$toy" --pilot "$d" --half-width 0.05 --format json | grep -q '"n_cs_half_width": [0-9]'; ok $? "plan json"

# errors
"$MOEBENCH" run -q "$tmp/fixed.yaml" --out "$tmp/f" --until-resolved 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "needs a 'sequential:' key" "$tmp/err"; ok $? "--until-resolved without sequential: exit 2 (got $rc)"
"$MOEBENCH" run -q "$toy" --out "$tmp/r" --until-resolved --shard 1/2 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q 'cannot run a shard' "$tmp/err"; ok $? "--until-resolved --shard: exit 2"
"$MOEBENCH" plan "$toy" 2> /dev/null; [ $? = 2 ]; ok $? "plan without --pilot: exit 2"
"$MOEBENCH" plan "$toy" --pilot "$tmp/none" 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q 'no pilot results' "$tmp/err"; ok $? "plan: missing pilot named, exit 2"
"$MOEBENCH" plan "$toy" --pilot "$d" --effect -1 2> /dev/null; [ $? = 2 ]; ok $? "plan: bad --effect"
sed 's/^replications: 3$/replications: 1/; /^sequential:/,$d' "$toy" > "$tmp/one.yaml"
"$MOEBENCH" run -q "$tmp/one.yaml" --out "$tmp/one" 2> /dev/null
"$MOEBENCH" plan "$tmp/one.yaml" --pilot "$tmp/one" --effect 0.1 2> "$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'fewer than 2 pilot pairs' "$tmp/err"; ok $? "plan: a 1-replication pilot is refused (exit 1)"
echo '{"format": "other"}' > "$tmp/one/toy-sequential/sequential.json"
"$MOEBENCH" report "$tmp/one" 2> "$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'not a moebench-sequential-1 record' "$tmp/err"; ok $? "report: a bad sequential record is named (exit 1)"
# replications raised above where the sequential run stopped, then run as a
# fixed-n matrix (paper-lm: stopped at 8, raised to 12): report counts them all
cp -r "$tmp/r" "$tmp/more"
more=$((nrep + 2))
sed "s/^replications: 3$/replications: $more/" "$toy" > "$tmp/more/toy-sequential/matrix.yaml"
"$MOEBENCH" run -q "$tmp/more/toy-sequential/matrix.yaml" --out "$tmp/more" -j 2; ok $? "fixed-n run of $more replications over the sequential one"
"$MOEBENCH" report "$tmp/more/toy-sequential" --format md 2> /dev/null &&
  grep -q "^Task \`selftest\`, seed 19, $((4 * more)) cells ($more replications)" "$tmp/more/toy-sequential/report/summary.md"
ok $? "report: the matrix's $more replications, not the sequential record's $nrep"
grep -q "^| noisy | .* | $more | " "$tmp/more/toy-sequential/report/value_vs_plain.md"
ok $? "report: the paired table has $more pairs"
echo "1..$n"
[ $failed = 0 ]
