#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# moebench report --format html (no browser: t/report-html-browser.sh loads
# the page in one): every string from a matrix or a result escaped, the
# page self-contained, claims resolved, cells not ok listed, provenance
# with data fingerprints, the joined page of --page, and the errors.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "$srcdir/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fix="$srcdir/t/data/report/html.yaml"
cells="$tmp/r/html-fixture/cells"
rep="$tmp/r/html-fixture/report"

"$MOEBENCH" run -q "$fix" --out "$tmp/r" -j 2; ok $? "fixture run"
# results that are not ok, with text a browser must not interpret; data
# fingerprints as the lm task records them
pick() { # pick REP N MODE: that cell's result file
  for f in "$cells"/*.json; do
    grep -q "\"rep\": $1," "$f" && grep -q "\"n\": $2, .*\"mode\": \"$3\"" "$f" && echo "$f" && return
  done
}
set -- "$(basename "$(pick 4 100 plain)")" "$(basename "$(pick 4 100 noisy)")" "$(basename "$(pick 3 100 noisy)")"
sed -i 's|"status": "ok",|"status": "failed",\n  "error": "<img src=x onerror=alert(1)> boom \&amp;",|' "$cells/$1"
sed -i 's|"status": "ok",|"status": "diverged",\n  "error": "training loss nan at step 3",|' "$cells/$2"
rm "$cells/$3"
for f in "$cells"/*.json; do
  sed -i 's|"notes": {}|"notes": {"data_files": "tokens.bin 0123", "data_sha256": "5e1f<b>"}|' "$f"
done
# a sequential run's record (as `run --until-resolved` writes it)
cat > "$tmp/r/html-fixture/sequential.json" <<'EOF'
{"format": "moebench-sequential-1", "method": "t-mixture <cs>", "half_width": 0.25, "max_replications": 9,
 "replications": 5, "stopped": "all resolved <b>", "rounds": [{"round": 1, "replications": 5, "comparisons": [
 {"comparison": "value_vs_plain: mode=noisy, n=10", "pairs": 5, "mean": 0.4446, "sd": 0.09207, "cs_lo": 0.21,
  "cs_hi": 0.68, "half_width": 0.235, "resolved": "excludes 0"}]}]}
EOF
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r" --format html 2> "$tmp/log"; ok $? "report --format html"
h="$rep/report.html"
[ -s "$h" ]; ok $? "report.html written"
head -1 "$h" | grep -qx '<!DOCTYPE html>'; ok $? "an HTML5 document"

grep -q '<h2>Sequential replication</h2>' "$h" && grep -q 'Confidence sequence: t-mixture &lt;cs&gt;. Target half-width 0.25; at most 9 replications; stopped at 5 replications after 1 round(s): all resolved &lt;b&gt;.' "$h"
ok $? "the sequential record, escaped"
grep -q '<tr><td class="num">1</td><td class="num">5</td><th scope="row">value_vs_plain: mode=noisy, n=10</th><td class="num">5</td><td class="num">0.4446</td><td class="num">0.09207</td><td class="num">\[0.21, 0.68\]</td><td class="num">0.235</td><td>excludes 0</td></tr>' "$h"
ok $? "its rounds"

# escaping: no markup from the matrix or the results reaches the page
[ "$(grep -c '<script' "$h")" = 1 ]; ok $? "one <script> element: the page's own"
grep -q '<p class="desc">&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; description</p>' "$h"
ok $? "description escaped"
grep -q '<td>&lt;img src=x onerror=alert(1)&gt; boom &amp;amp;</td>' "$h"; ok $? "a failed cell's message escaped"
grep -q 'noisy adds to the value at n = 10 &lt;em&gt;(confirmed)&lt;/em&gt;' "$h"; ok $? "claim text escaped"
grep -q '<td>&lt;i&gt;value&lt;/i&gt;</td>' "$h" && grep -q '1 &lt;script&gt;x&lt;/script&gt;' "$h"; ok $? "fit reference labels escaped"
grep -q 'aria-label="&lt;/title&gt;&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; value &amp; n: value' "$h"
ok $? "plot title escaped in the figure's label"
grep -q '5e1f&lt;b&gt;' "$h"; ok $? "provenance values escaped"
! grep -q '<b>\|<em>\|<i>\|<img src=x' "$h"; ok $? "no markup from the data at all"

# self-contained: nothing fetched, only the page's own script runs
! grep -Eq '<link|src="(https?:)?//|href="(https?:)?//|@import|url\(' "$h"; ok $? "no external resource"
grep -q "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-" "$h"
ok $? "a policy that allows no network and only the page's own script"
# the policy's hash is that of the script (perl's Digest::SHA: core perl)
if perl -MDigest::SHA -e 1 2> /dev/null; then
  want=$(sed -n "s/.*script-src 'sha256-\([^']*\)'.*/\1/p" "$h")
  got=$(sed -n 's|^<script>\(.*\)</script>$|\1|p' "$h" | perl -MDigest::SHA=sha256_base64 -0777 -ne 's/\n\z//; $d = sha256_base64($_); $d .= "=" while length($d) % 4; print $d')
  [ -n "$want" ] && [ "$want" = "$got" ]; ok $? "the policy's hash matches the script ($want)"
else
  n=$((n + 1)); echo "ok $n # SKIP perl Digest::SHA not found"
fi

# content: the Markdown's tables, fits, claims, brief; cells; provenance
grep -q '<h1 id="m-html-fixture-h">html-fixture</h1>' "$h"; ok $? "the matrix name as the heading"
for t in value_vs_plain draw_vs_plain value_by_n; do
  grep -q "<table class=\"sortable\" id=\"html-fixture-table-$t\">" "$h"; ok $? "table $t"
done
grep -q '<table class="sortable" id="html-fixture-fit-growth">' "$h"; ok $? "fit growth"
for c in 'n=10 mde80' 'n=10 p_holm' 'n=10 holm' 'n=10 n for 0.1' 'n=10 ci95'; do
  grep -q "<button type=\"button\">$c</button>" "$h"; ok $? "paired table column '$c'"
done
# the same cell text as the Markdown
md_row=$(grep '^| noisy |' "$rep/value_vs_plain.md" 2> /dev/null || grep '^| noisy |' "$rep/summary.md" | head -1)
first=$(printf '%s\n' "$md_row" | awk -F' \\| ' '{print $2}')
[ -n "$first" ] && grep -q "<th scope=\"row\">noisy</th><td class=\"num\">$first</td>" "$h"; ok $? "cells as in the Markdown ($first)"
grep -q '<tr><th scope="row">noisy adds.*<td class="v-confirmed">confirmed</td></tr>' "$h"; ok $? "claim confirmed"
grep -q '<tr><th scope="row">noisy lowers.*<td class="v-refuted">refuted</td></tr>' "$h"; ok $? "claim refuted"
grep -q '<tr><th scope="row">the draws differ.*<td class="v-unresolved">unresolved</td></tr>' "$h"; ok $? "claim unresolved"
grep -q '^| noisy adds to the value at n = 10 <em>(confirmed)</em> | value_vs_plain | noisy, n=10 | > 0 | 5 | .* | confirmed |$' "$rep/summary.md"
ok $? "claims in summary.md too"
grep -q '^Claims: 1 confirmed, 1 refuted, 1 unresolved (of 3)$' "$rep/brief.txt"; ok $? "claims counted in the brief"
grep -q '<h2 id="m-html-fixture-brief">Summary</h2>' "$h" && grep -q '^Claims: 1 confirmed' "$h"; ok $? "the brief as the summary box"
grep -q "<code>${1%.json}</code></th><td class=\"st-failed\">failed</td>" "$h"; ok $? "failed cell listed"
grep -q "<code>${2%.json}</code></th><td class=\"st-diverged\">diverged</td>.*training loss nan at step 3" "$h"; ok $? "diverged cell listed, with its message"
grep -q "<code>${3%.json}</code></th><td class=\"st-missing\">missing</td>" "$h"; ok $? "missing cell listed"
grep -q '20 cells (5 replications): 17 ok, 1 diverged, 1 failed, 1 missing' "$h"; ok $? "counts"
grep -q '<tr><th scope="row">notes.data_sha256</th><td class="pre">5e1f&lt;b&gt;</td><td class="num">17</td></tr>' "$h"; ok $? "data fingerprint in the provenance"
grep -q '^| notes.data_sha256 | 5e1f<b> | 17 |$' "$rep/provenance.md"; ok $? "...and in provenance.md"
grep -q '<th scope="row">git_commit.tree</th><td class="pre">\(clean\|dirty (uncommitted changes)\|unknown\)</td>' "$h"; ok $? "clean or dirty tree"
grep -q '<th scope="row">blas.core_source</th>' "$h"; ok $? "the BLAS core's source"
grep -q '<p class="missing" role="img" aria-label=".*">Figure not rendered (gnuplot not found)' "$h"; ok $? "a figure gnuplot could not draw is named"

# a joined page (make bench's doc/results.html): two matrices, contents
"$MOEBENCH" run -q "$srcdir/experiments/smoke-selftest.yaml" --out "$tmp/r" -j 2; ok $? "smoke run"
MOEBENCH_GNUPLOT= "$MOEBENCH" report "$tmp/r/smoke-selftest" "$tmp/r/html-fixture" --format md --page "$tmp/all.html" 2> "$tmp/log"
ok $? "report --page of two matrices"
grep -q "wrote $tmp/all.html (2 matrices)" "$tmp/log"; ok $? "page written"
grep -q '<li><a href="#m-smoke-selftest">smoke-selftest</a></li>' "$tmp/all.html" && grep -q '<li><a href="#m-html-fixture">html-fixture</a></li>' "$tmp/all.html"
ok $? "table of contents"
[ "$(grep -c '<h1' "$tmp/all.html")" = 1 ] && grep -q '<h2 id="m-smoke-selftest-h">smoke-selftest</h2>' "$tmp/all.html" && grep -q '<h4 id="html-fixture-table-value_by_n-h">' "$tmp/all.html"
ok $? "one h1; the matrices' headings one level down"
[ -z "$(grep -o ' id="[^"]*"' "$tmp/all.html" | sort | uniq -d)" ]; ok $? "ids unique across matrices"
[ ! -e "$tmp/r/smoke-selftest/report/report.html" ]; ok $? "--page alone writes no report.html"
"$MOEBENCH" report "$tmp/r" --page "$tmp/root.html" 2> "$tmp/log"; ok $? "--page over a results root"
grep -q '(2 matrices)' "$tmp/log"; ok $? "...every matrix in it"

# errors
"$MOEBENCH" report "$tmp/r/smoke-selftest" "$tmp/r/html-fixture" 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q 'one directory at a time (several only with --page FILE)' "$tmp/log"; ok $? "two directories without --page: exit 2"
"$MOEBENCH" report "$tmp/r" --page 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q -- '--page needs a file' "$tmp/log"; ok $? "--page without a file: exit 2"
"$MOEBENCH" report "$tmp/r" --format htm 2> "$tmp/log"; rc=$?
[ $rc = 2 ] && grep -q "unknown format 'htm' (md, csv, tex, json, html)" "$tmp/log"; ok $? "unknown format names html"
"$MOEBENCH" report "$tmp/r" --page "$tmp/no/such/dir/p.html" 2> "$tmp/log"; rc=$?
[ $rc = 1 ] && grep -q "cannot write the page $tmp/no/such/dir/p.html: " "$tmp/log"; ok $? "an unwritable page: exit 1, named"

# claims: errors at their place
claims() { # claims BODY: a matrix with the fixture's tables and these claims
  sed '/^claims:/,$d' "$fix" > "$tmp/c.yaml"
  printf 'claims:\n%s\n' "$1" >> "$tmp/c.yaml"
  "$MOEBENCH" expand "$tmp/c.yaml" > /dev/null 2> "$tmp/log"
}
claims '  - {claim: a, table: value_by_n, row: noisy, expect: gt0}'; rc=$?
[ $rc = 2 ] && grep -q "c.yaml:[0-9]*:[0-9]*: claim names table 'value_by_n', which is not a paired table (without reach)" "$tmp/log"; ok $? "claim on an unpaired table"
claims '  - {claim: a, table: value_vs_plan, row: noisy, column: {n: 10}, expect: gt0}'
grep -q "claim names table 'value_vs_plan', which is no table of this matrix (did you mean 'value_vs_plain'?)" "$tmp/log"; ok $? "unknown table, with a suggestion"
claims '  - {claim: a, table: value_vs_plain, row: plain, column: {n: 10}, expect: gt0}'
grep -q "claim row 'plain' is the baseline of table 'value_vs_plain'" "$tmp/log"; ok $? "the baseline is no comparison"
claims '  - {claim: a, table: value_vs_plain, row: noisy, expect: gt0}'
grep -q "claim has no 'column' (table 'value_vs_plain' has columns" "$tmp/log"; ok $? "a column is needed"
claims '  - {claim: a, table: value_vs_plain, row: noisy, column: {n: 1000}, expect: gt0}'; rc=$?
[ $rc = 2 ] && grep -q "c.yaml:[0-9]*:5: claim 'a': no cell of the matrix has mode=noisy in the column given" "$tmp/log"; ok $? "a comparison without cells"
claims '  - {claim: a, table: value_vs_plain, row: noisy, column: {n: 10}, expect: positive}'
grep -q "c.yaml:[0-9]*:[0-9]*: expect must be lt0, gt0 or ne0" "$tmp/log"; ok $? "expect spelled wrong"
claims '  - {table: value_vs_plain, row: nosy, column: {n: 10, mode: plain}, expect: gt0}'
grep -q "claim entry has no 'claim'" "$tmp/log" && grep -q "nosy" "$tmp/log" && grep -q "unknown key 'mode' in column" "$tmp/log"; ok $? "missing text, bad row value, unknown column key"
claims '  - {claim: a, table: value_vs_plain, row: noisy, column: {n: 10}, expect: lt0}'; ok $? "a good claim expands"

echo "1..$n"
[ $failed -eq 0 ]
