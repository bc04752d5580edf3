#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# router-dump.sh — the router metrics of the lm and vision tasks by value:
# the smoke matrices run with `--dump-routing`, and t/routing-check (its
# own code, no libmoe) recomputes saturation against the final
# checkpoint, change rate between consecutive checkpoints, and Jain's
# index of token counts and of routing weight — per checkpoint, per layer
# (lm), per class (vision) and overall — from the dumped routing; every
# value must equal the one the cell recorded, and every router metric the
# cell recorded must be recomputed. Tolerance 1e-12 relative: the set
# metrics are ratios of the same integer counts and the Jain indices sums
# of the same doubles (the weights round-trip through %.9g), so only the
# order of the sums can differ (a few ulps; 1e-12 is the n·eps bound for
# 10^4 terms). The dump changes no metric, and a bad dump directory is
# refused.
: "${MOEBENCH:?}" "${srcdir:=.}" "${top_builddir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/routerdump.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
check=$top_builddir/t/routing-check
export MOEBENCH_GNUPLOT=
[ -x "$check" ]; ok $? "t/routing-check is built"

# compare CELL CHECKER-OUTPUT: one line "compared N maxrel X missing M" and
# status 0 when every recomputed value matches and every router metric of
# the cell was recomputed
compare() {
  grep '"metrics"' "$1" | grep -o '"[A-Za-z_]*\(@[-0-9.e+]*\)\{0,1\}": [^,}]*' | tr -d '"' | sed 's/: / /' >"$tmp/json"
  awk 'NR == FNR { v[$1] = $2; next }
    /^#/ { next }
    { got[$1] = 1; n++
      if (!($1 in v)) { print "    not in the cell: " $1 >"/dev/stderr"; bad++; next }
      d = $2 - v[$1]; if (d < 0) d = -d; s = v[$1] < 0 ? -v[$1] : v[$1]; rel = s > 0 ? d / s : d
      if (rel > max) max = rel
      if (rel > 1e-12) { print "    " $1 ": cell " v[$1] ", recomputed " $2 >"/dev/stderr"; bad++ } }
    END { for (k in v) if (k ~ /^(saturation|change_rate|jfi_tokens|jfi_weight|router_types)/ && !(k in got)) {
            print "    not recomputed: " k >"/dev/stderr"; miss++ }
          printf "compared %d maxrel %.3g missing %d\n", n, max, miss + 0; exit bad + miss > 0 }' "$tmp/json" "$2"
}

# check_task DIR TASK: every routed cell's dump recomputed; prints totals
check_task() {
  nc=0 bad=0 nv=0 max=0
  for f in "$1"/*.json; do
    d=$(grep -o '"routing_dump": "[^"]*"' "$f" | cut -d'"' -f4)
    if grep -q '"variant": "dense"' "$f"; then
      [ -z "$d" ] || { echo "    $f: a dense cell with a routing dump" >&2; bad=1; }
      continue
    fi
    [ -n "$d" ] && [ -s "$d" ] || { echo "    $f: no routing dump" >&2; bad=1; continue; }
    "$check" "$d" >"$tmp/re" || { bad=1; continue; }
    cat "$tmp/re" >>"$tmp/all-$2"
    line=$(compare "$f" "$tmp/re") || bad=1
    set -- "$1" "$2" $line
    nv=$((nv + $4)); max=$(awk -v a="$max" -v b="$6" 'BEGIN { print (b > a ? b : a) }')
    nc=$((nc + 1))
  done
  echo "$nc $nv $max $bad"
}

# ---- lm: the smoke matrix on the tiny corpus of lm-metrics.sh ----
MOE_DATA_DIR=$tmp/data
export MOE_DATA_DIR
mkdir -p "$tmp/data"
"$MOEBENCH" data lm-corpus --data "$srcdir/t/data/text" --vocab 300 --valid 0.12 --test 0.1 \
  --out-dir "$tmp/data/lm" >"$tmp/log" 2>&1
ok $? "tiny LM corpus from the fixtures"
# router_types 30 of the 62 types evaluated cuts among types seen twice:
# which of them are analysed depends on the tie rule (the lower id)
sed -e 's/^replications: 2$/replications: 1/' -e 's/^  router_types: 40$/  router_types: 30/' \
  "$srcdir/experiments/smoke-lm.yaml" >"$tmp/lm.yaml"
"$MOEBENCH" run -q "$tmp/lm.yaml" --out "$tmp/a" -j 2 --dump-routing "$tmp/dump" 2>"$tmp/log"
ok $? "smoke-lm with --dump-routing"
set -- $(check_task "$tmp/a/smoke-lm/cells" lm)
[ "$1" = 5 ] && [ "$4" = 0 ]
ok $? "lm: $1 routed cells, $2 router metrics recomputed from the dump, all within 1e-12 (max rel. difference $3)"
head -1 "$tmp/dump"/lm-*.routing | grep -q '^moebench-routing 1 lm$'; ok $? "  the dump's first line"
# the values can tell the mutations apart: not all changes 0, not all
# saturations 100, the weights' index not the counts', and fewer types
# analysed than evaluated, cut among equally frequent ones (the ranking
# and its tie rule matter)
awk '/^change_rate@/ && $2 > 0 { c++ } /^saturation@/ && $2 < 100 { s++ } /^saturation@/ && $2 == 100 { f++ }
  /^jfi_tokens@/ { t = $2 } /^jfi_weight@/ && $2 != t { w++ }
  END { printf "%d changes > 0, %d saturations < 100 (%d = 100), %d weight indices differ\n", c, s, f, w; exit !(c > 5 && s > 5 && w > 5) }' \
  "$tmp/all-lm" >"$tmp/nd"
ok $? "  not degenerate: $(cat "$tmp/nd")"
grep -h '^# types' "$tmp/all-lm" | awk '{ if (!($3 > $5 && $11 == $12)) bad = 1 } END { exit bad + !NR }'
ok $? "  $(grep -h '^# types' "$tmp/all-lm" | head -1 | sed 's/^# //')"
# the dump changes nothing
"$MOEBENCH" run -q "$tmp/lm.yaml" --out "$tmp/b" -j 2 2>/dev/null
strip() { grep '"metrics"' "$1" | tr ',' '\n' | grep -v -e tokens_per -e _seconds -e peak_rss -e eval_cpu -e gain_per_second; }
same=0
for f in "$tmp/a/smoke-lm/cells"/*.json; do
  strip "$f" >"$tmp/x"; strip "$tmp/b/smoke-lm/cells/${f##*/}" >"$tmp/y"
  cmp -s "$tmp/x" "$tmp/y" || same=1
done
[ $same = 0 ]; ok $? "  the same metrics without the dump"
grep -q routing_dump "$tmp/b/smoke-lm/cells"/*.json; [ $? -ne 0 ]; ok $? "  and no routing_dump note"

# ---- vision: the smoke matrix on the tiny Fashion-MNIST stand-in ----
MOE_DATA_DIR=$srcdir/t/data/vision
"$MOEBENCH" run -q "$srcdir/experiments/smoke-vision.yaml" --out "$tmp/v" -j 2 --dump-routing "$tmp/vdump" 2>"$tmp/log"
ok $? "smoke-vision with --dump-routing"
set -- $(check_task "$tmp/v/smoke-vision/cells" vision)
[ "$1" = 5 ] && [ "$4" = 0 ]
ok $? "vision: $1 routed cells, $2 router metrics recomputed from the dump, all within 1e-12 (max rel. difference $3)"
awk '/^change_rate@/ && $2 > 0 { c++ } /^saturation@/ && $2 < 100 { s++ } /^jfi_tokens_class@/ && $2 < 1 { j++ }
  /^jfi_tokens@/ { t = $2 } /^jfi_weight@/ && $2 != t { w++ }
  END { printf "%d changes > 0, %d saturations < 100, %d weight indices differ, %d class indices < 1\n", c, s, w, j; exit !(c > 3 && s > 3 && w > 3 && j > 5) }' \
  "$tmp/all-vision" >"$tmp/nd"
ok $? "  not degenerate: $(cat "$tmp/nd")"

# ---- refusals ----
"$MOEBENCH" run -q "$tmp/lm.yaml" --out "$tmp/c" --dump-routing /dev/null/x 2>"$tmp/log"
[ $? = 1 ] && grep -q -e '--dump-routing: .*/dev/null' "$tmp/log"; ok $? "a dump directory that cannot be made: exit 1, named"
sed '4s/^.*$/0 1 99/' "$(ls "$tmp/dump"/lm-*.routing | head -1)" >"$tmp/bad.routing"
"$check" "$tmp/bad.routing" >/dev/null 2>"$tmp/log"
[ $? = 1 ] && grep -q 'bad.routing:4:' "$tmp/log"; ok $? "routing-check: a bad line is named by file and line"
echo "1..$n"
[ $failed -eq 0 ]
