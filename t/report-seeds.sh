#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Seeds against independent references, not against files moebench wrote:
#  - every cell's seed is moe_seed_derive(matrix seed, cell id), computed
#    by t/gen_seed_fixtures.py (t/data/report/seeds.txt);
#  - two fit groups with identical data get different bootstrap draws
#    (the bootstrap seed names the group), and the same draws on a rerun.
: "${MOEBENCH:?}" "${srcdir:=.}"
smoke="$srcdir/experiments/smoke-selftest.yaml"
ref="$srcdir/t/data/report/seeds.txt"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cells="$tmp/r/smoke-selftest/cells"
rep="$tmp/r/smoke-selftest/report"

"$MOEBENCH" run -q "$smoke" --out "$tmp/r" -j 2; ok $? "smoke run"
for f in "$cells"/*.json; do
  sed -n 's/^  "id": "\(.*\)",$/\1/p; s/^  "seed": \([0-9]*\),$/\1/p' "$f" | paste -d ' ' - -
done | sort > "$tmp/got"
grep -v '^#' "$ref" | sort > "$tmp/want"
[ "$(wc -l < "$tmp/got")" -eq 24 ]; ok $? "24 cells with an id and a seed"
if cmp -s "$tmp/got" "$tmp/want"; then ok 0 "cell seed = moe_seed_derive(2505, id) for every cell (reference: t/gen_seed_fixtures.py)"
else ok 1 "cell seed = moe_seed_derive(2505, id) for every cell"; diff "$tmp/want" "$tmp/got" | sed 's/^/# /'; fi

# Same data in both groups of the fit: value = 8 n^-1 (1 + rep/4) whatever
# the mode (the selftest task's own value is replaced in the result files).
for f in "$cells"/*.json; do
  r=$(sed -n 's/^  "rep": \([0-9]*\),$/\1/p' "$f")
  nn=$(sed -n 's/^  "config": {.*"n": \([0-9]*\),.*/\1/p' "$f")
  v=$(awk -v n="$nn" -v r="$r" 'BEGIN { printf "%.17g", 8 / n * (1 + r / 4) }')
  sed "s/^  \"metrics\": {\"value\": [^,]*,/  \"metrics\": {\"value\": $v,/" "$f" > "$tmp/c" && mv "$tmp/c" "$f"
done
"$MOEBENCH" report "$tmp/r" -f json 2> "$tmp/log"; ok $? "report on the rewritten cells"
grep -q '24 cells: 24 ok' "$tmp/log"; ok $? "all 24 rewritten cells read back"
field() { sed -n "s/.*\"group\": \"mode=$1\".*\"$2\": \([^,]*\),.*/\1/p" "$rep/growth.json"; }
for g in plain noisy; do
  eval "rate_$g=\$(field $g rate) lo_$g=\$(field $g rate_ci95_lo) hi_$g=\$(field $g rate_ci95_hi)"
done
[ -n "$rate_plain" ] && [ "$rate_plain" = "$rate_noisy" ]; ok $? "identical data, identical rate ($rate_plain, $rate_noisy)"
[ -n "$lo_plain" ] && [ "$lo_plain" != "$hi_plain" ]; ok $? "the bootstrap interval is not degenerate [$lo_plain, $hi_plain]"
[ "$lo_plain $hi_plain" != "$lo_noisy $hi_noisy" ]; ok $? "different groups draw different bootstrap samples ([$lo_plain, $hi_plain] vs [$lo_noisy, $hi_noisy])"
cp "$rep/growth.json" "$tmp/g1"
"$MOEBENCH" report "$tmp/r" -f json 2> /dev/null && cmp -s "$tmp/g1" "$rep/growth.json"; ok $? "a rerun draws the same samples"
echo "1..$n"; [ $failed -eq 0 ]
