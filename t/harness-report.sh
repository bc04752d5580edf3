#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench report: golden tables from the smoke matrix (md, tex), csv/json
# shape, missing/corrupt cells, --matrix, plots with and without gnuplot.
: "${MOEBENCH:?}" "${srcdir:=.}"
smoke="$srcdir/experiments/smoke-selftest.yaml"
gold="$srcdir/t/data/report"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
rep="$tmp/r/smoke-selftest/report"

"$MOEBENCH" run -q "$smoke" --out "$tmp/r" -j 2; ok $? "smoke run"
"$MOEBENCH" report "$tmp/r" --format md,tex --format csv -f json 2> "$tmp/log"; ok $? "report md, tex, csv, json"
cp "$tmp/log" "$tmp/log.golden"
for f in draw_by_n.md value_by_n.md growth.md summary.md growth.tex; do
  if cmp -s "$rep/$f" "$gold/smoke-$f"; then ok 0 "$f matches the golden file"; else
    ok 1 "$f matches the golden file"; diff "$gold/smoke-$f" "$rep/$f" | sed 's/^/# /'; fi
done
grep -q '24 cells: 24 ok, 0 diverged, 0 failed, 0 missing, 0 corrupt' "$tmp/log"; ok $? "cell counts logged"
[ "$(head -1 "$rep/draw_by_n.csv")" = "n,mode,metric,n,mean,sd,se,ci95_lo,ci95_hi,median,min,max,trmean" ]; ok $? "csv header (long format)"
[ "$(wc -l < "$rep/draw_by_n.csv")" = 7 ]; ok $? "csv: one record per (row, column)"
grep -q '^1000,plain,draw_mean,4,' "$rep/draw_by_n.csv"; ok $? "csv record"
grep -q '^{"table": "draw_by_n", "metric": "draw_mean", "records": \[' "$rep/draw_by_n.json"; ok $? "json table"
grep -q '"group": "mode=plain", "loss": "value", "points": 3, "cells": 12, "rate": -1' "$rep/growth.json"; ok $? "json fit"
grep -q '^\\begin{tabular}{lrrrrrr}$' "$rep/draw_by_n.tex"; ok $? "tex tabular"
[ "$(grep -c '^\\midrule$' "$rep/value_by_n.tex")" = 1 ]; ok $? "tex booktabs rules"

grep -q '^| blas.threads | 1 | 24 |$' "$rep/provenance.md"; ok $? "provenance.md: BLAS pinned to 1 thread in all 24 cells"
grep -q '^| git_commit | .* | 24 |$' "$rep/provenance.md"; ok $? "provenance.md: git commit"

# the reports only need DIR: the stored matrix, also via DIR/NAME
"$MOEBENCH" report "$tmp/r/smoke-selftest" 2> /dev/null && cmp -s "$rep/summary.md" "$gold/smoke-summary.md"; ok $? "report DIR/NAME"

# missing and corrupt cells are counted and left out, never fatal
cells="$tmp/r/smoke-selftest/cells"
ls "$cells" | head -2 | while read f; do rm "$cells/$f"; done
c=$(ls "$cells"/*.json | tail -1)
printf '{"format": "moebench-result-1", "id": ' > "$c"
"$MOEBENCH" report "$tmp/r" 2> "$tmp/log"; ok $? "report with missing and corrupt cells"
grep -q '24 cells: 21 ok, 0 diverged, 0 failed, 2 missing, 1 corrupt' "$tmp/log"; ok $? "counted"
grep -q "corrupt result, treated as missing: $c" "$tmp/log"; ok $? "corrupt file named"
grep -q 'Task `selftest`, seed 2505, 24 cells (4 replications): 21 ok, 0 diverged, 0 failed, 3 missing.' "$rep/summary.md"; ok $? "summary says so"

# --matrix: another table over the same cells
sed 's/^    rows: n$/    rows: rep/' "$smoke" > "$tmp/alt.yaml"
"$MOEBENCH" report "$tmp/r" --matrix "$tmp/alt.yaml" 2> "$tmp/log"; ok $? "report --matrix"
grep -q '^| rep | mode=plain mean' "$rep/draw_by_n.md"; ok $? "--matrix table used (rows: rep)"
grep -q "note: table 'draw_by_n' pools cells that differ in: n$" "$tmp/log"; ok $? "pooling over a varying parameter is noted"
grep -q '^Pooled over the replications and over: n\.$' "$rep/summary.md"; ok $? "...in the summary too"
! grep -q 'pools cells' "$tmp/log.golden" 2> /dev/null; ok $? "no such note for the smoke matrix itself"
# a plot pools too (a curve over two models is as wrong as a table cell)
printf '  - name: pooled_draws\n    x: n\n    y: draw_mean\n    errorbars: se\n' | cat "$smoke" - > "$tmp/plot.yaml"
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r" --matrix "$tmp/plot.yaml" --plot 2> "$tmp/log"; ok $? "report --plot with a pooling plot"
grep -q "note: plot 'pooled_draws' pools cells that differ in: mode$" "$tmp/log"; ok $? "a plot pooling a varying parameter is noted"
grep -q "^Each point of \`pooled_draws\` pools the replications and: mode\.$" "$rep/summary.md"; ok $? "...in the summary too"
! grep -q "note: plot 'value' pools" "$tmp/log"; ok $? "no note for a plot whose by-keys cover the axes"
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r" --matrix "$tmp/plot.yaml" --format html 2> /dev/null
grep -q '<span class="note">Each point pools the replications and: mode\.</span></figcaption>' "$rep/report.html"; ok $? "...and in the HTML figure's caption"
[ "$(grep -c 'Each point pools' "$rep/report.html")" = 1 ]; ok $? "...of that figure only"
# cells without the statistic's metric add nothing to it: not counted as pooled
mkdir "$tmp/s" && cp -r "$tmp/r/smoke-selftest" "$tmp/s/"
sed '/^    columns: \[mode\]$/d' "$smoke" > "$tmp/rows.yaml"
"$MOEBENCH" report "$tmp/s" --matrix "$tmp/rows.yaml" 2> "$tmp/log"
grep -q "note: table 'draw_by_n' pools cells that differ in: mode$" "$tmp/log"; ok $? "a table over rows n alone pools mode"
for f in $(grep -l '"mode": "plain"' "$tmp/s/smoke-selftest/cells/"*.json); do
  sed -i 's/, "draw_mean": [-0-9.e+]*}/}/' "$f"
done
"$MOEBENCH" report "$tmp/s" --matrix "$tmp/rows.yaml" 2> "$tmp/log"; ok $? "report with draw_mean only in the noisy cells"
! grep -q "note: table 'draw_by_n' pools" "$tmp/log"; ok $? "...no pooling note: the plain cells have no draw_mean"
want=$(grep -l '"draw_mean"' "$tmp/s/smoke-selftest/cells/"*.json | wc -l)
got=$(awk -F' [|] ' '/^[|] [0-9]/ { s += $4 } END { print s + 0 }' "$tmp/s/smoke-selftest/report/draw_by_n.md")
[ "$want" -gt 0 ] && [ "$got" = "$want" ]; ok $? "...and its rows count the $want cells with draw_mean (got $got)"
# an unnamed table in a --matrix file is an error with its place, not a crash
printf 'name: t\ntask: selftest\nseed: 1\ntables:\n  - rows: n\n  - name: b\n' > "$tmp/noname.yaml"
"$MOEBENCH" report "$tmp/r" --matrix "$tmp/noname.yaml" 2> "$tmp/log"; rc=$?
[ $rc = 2 ]; ok $? "report --matrix with an unnamed table: exit status 2 (got $rc)"
grep -q "^$tmp/noname.yaml:5:5: table entry has no 'name'$" "$tmp/log"; ok $? "...with file:line:col"

# plots: scripts always; images when gnuplot is there; a note when it is not
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r" --plot 2> "$tmp/log"; ok $? "--plot without gnuplot"
grep -q 'note: gnuplot not found' "$tmp/log"; ok $? "clear note when gnuplot is absent"
[ -s "$rep/value.gp" ] && [ -s "$rep/value.dat" ] && [ ! -e "$rep/value.png" ]; ok $? "scripts written, nothing rendered"
grep -q "^plot 'value.dat' index 0 using 1:2:3:4 with yerrorlines" "$rep/value.gp"; ok $? "gnuplot script plots the data"
grep -q 'exp(.*) \* x\*\*(' "$rep/value.gp"; ok $? "fit line overlaid"
if command -v gnuplot > /dev/null 2>&1; then
  "$MOEBENCH" report "$tmp/r" --plot 2> "$tmp/log"; ok $? "--plot with gnuplot"
  [ -s "$rep/value.png" ] && [ -s "$rep/value.svg" ]; ok $? "PNG and SVG rendered"
  grep -q '!\[value\](value.svg)' "$rep/summary.md"; ok $? "summary links the figure"
else
  echo "ok $((n + 1)) # SKIP gnuplot not installed"; n=$((n + 1))
fi

"$MOEBENCH" report "$tmp/r" --format pdf 2> /dev/null; [ $? = 2 ]; ok $? "unknown format: exit 2"
"$MOEBENCH" report "$tmp/none" 2> /dev/null; [ $? = 2 ]; ok $? "no such directory: exit 2"
mkdir "$tmp/empty"
"$MOEBENCH" report "$tmp/empty" 2> /dev/null; [ $? = 2 ]; ok $? "directory without results: exit 2"

# brief.txt: the terminal's few lines. By default the fits; a matrix's
# summary: key picks tables/fits; at most 100 columns and 16 rows a table,
# the rest counted with the file that has it.
"$MOEBENCH" report "$tmp/r" 2> /dev/null
b="$rep/brief.txt"
head -1 "$b" | grep -q '^smoke-selftest: 24 cells: 21 ok, 0 diverged, 0 failed, 3 missing$'; ok $? "brief: cell counts first"
grep -q '^growth: rate = -slope of log(mean value) on log n, 95% bootstrap CI$' "$b" &&
  grep -q '^  mode   loss  *rate \[95% CI\]  paper  theory$' "$b" && grep -q '^  plain  value  *-1.000 \[-1.000, -1.000\]  *-1  *-1$' "$b"
ok $? "brief: the fit as a plain table with the paper's and the theory's rates"
! grep -q 'draw_by_n' "$b"; ok $? "brief: no table when the matrix has a fit and no summary key"
grep -q "^Tables: $rep/summary.md" "$b"; ok $? "brief: where the full tables are"
sed 's/^tables:$/summary: [long, wide]\ntables:\n  - name: long\n    rows: [mode, n, rep]\n    metric: value\n    stats: [mean]\n  - name: wide\n    rows: rep\n    columns: [n, mode]\n    metric: value\n    stats: [mean, sd, se, ci95, median]/' "$smoke" > "$tmp/brief.yaml"
"$MOEBENCH" report "$tmp/r" --matrix "$tmp/brief.yaml" 2> "$tmp/log"; ok $? "report with a summary: key"
grep -q '^long: value over the replications$' "$b" && grep -q '^wide: value over the replications$' "$b" && ! grep -q '^growth' "$b"
ok $? "brief: the tables the summary key names, only those"
grep -q "^  (8 more rows: $rep/long.md)$" "$b"; ok $? "brief: rows past 16 counted, with the file"
grep -q "^  ([0-9]* more columns: $rep/wide.md)$" "$b"; ok $? "brief: columns past 100 characters counted, with the file"
# (lines that name a file are as long as its path: a deep build tree,
# such as make distcheck's, makes them long)
[ "$(awk 'length > 100' "$b" | grep -cvF "$rep/")" = 0 ]; ok $? "brief: no line over 100 characters but the paths"
sed 's/^tables:$/summary: [value_by, growth]\ntables:/' "$smoke" > "$tmp/badsum.yaml"
"$MOEBENCH" expand "$tmp/badsum.yaml" > /dev/null 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "^$tmp/badsum.yaml:14:11: summary names 'value_by', which is neither a table nor a fit of this matrix (did you mean 'value_by_n'?)$" "$tmp/log"
ok $? "summary: an unknown name is an error with its place (exit $rc)"

# figures that read without the source: the legend off the data, the
# fitted line beside the paper's and the theory's rates where the fit's
# references give them, the y axis named after the loss, and with panels a
# title per panel (from the plot's titles: entries) under the plot's title.
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r" --plot 2> /dev/null
gp="$rep/value.gp"
grep -q '^set key below' "$gp"; ok $? "plot: legend below the data"
grep -q "^     \[10:1000\] .* \* (x / 100)\*\*(1) with lines dt 3 .* title \"paper: rate -1 (mode=plain)\", \\\\$" "$gp"; ok $? "plot: the paper's rate as a reference line"
grep -q 'title "theory: rate -1 (mode=noisy)"$' "$gp"; ok $? "plot: the theory's rate as a reference line"
[ "$(grep -c 'title "paper: ' "$gp")" = 2 ]; ok $? "plot: no paper line where the reference gives none (once per image)"
grep -q '^set ylabel "value (mean ± se)"' "$gp"; ok $? "plot: y axis named after the loss of the references"
sed -e 's/^    fit: growth$/    fit: growth\n    panels: true\n    title: "Value against n"\n    titles:\n      - {mode: plain, title: "Plain mode — x n"}/' "$smoke" > "$tmp/panels.yaml"
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r" --plot --matrix "$tmp/panels.yaml" 2> "$tmp/log"; ok $? "report with per-panel titles"
grep -q '^set multiplot layout 1,2 title "Value against n"' "$gp"; ok $? "panels: the plot's title over all panels"
grep -q '^set title "Plain mode — x n" noenhanced$' "$gp"; ok $? "panels: a titles entry names its panel"
grep -q '^set title "mode=noisy" noenhanced$' "$gp"; ok $? "panels: a panel without an entry is titled by its group"
[ "$(grep -c '^set title "value"' "$gp")" = 0 ]; ok $? "panels: no panel titled by the plot's name"
sed -e 's/^    fit: growth$/    fit: growth\n    titles:\n      - {mdoe: plain, title: "x"}/' "$smoke" > "$tmp/badtitles.yaml"
"$MOEBENCH" expand "$tmp/badtitles.yaml" > /dev/null 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "^$tmp/badtitles.yaml:43:10: unknown key 'mdoe' in titles entry (did you mean 'mode'?)$" "$tmp/log"; ok $? "titles: unknown key, with its place (exit $rc)"

echo "1..$n"
[ $failed = 0 ]
