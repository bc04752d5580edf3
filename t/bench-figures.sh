#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# mb-bench.sh's figures (make bench, make archive-report): each report's
# plots are copied beside the joined summary under figures/SUMMARY/MATRIX/
# and the summary links there, so two matrices with the same plot names
# (paper-lm and paper-lm-4x both draw lm_valid_ppl.svg), or one matrix in
# two summaries (doc/results.md and doc/archive-results.md), never replace
# each other's figures. Driven by a stand-in for moebench that writes a
# report whose figure says which matrix drew it.
: "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
top=$(cd "$srcdir" && pwd)
cat >"$tmp/mb" <<'STUB'
#!/bin/sh
case $1 in
--version) echo "moebench stand-in" ;;
expand) basename "$3" .yaml ;;
report)
  [ "$3" = --format ] || exit 0   # the joined HTML page: not tested here
  d=$2/report; mkdir -p "$d"; n=$(basename "$2")
  printf '## %s\n\n![plot](lm_valid_ppl.svg)\n' "$n" >"$d/summary.md"
  printf '<svg>%s</svg>\n' "$n" >"$d/lm_valid_ppl.svg"
  echo "provenance of $n" >"$d/provenance.md"; echo "$n brief" >"$d/brief.txt" ;;
esac
STUB
chmod +x "$tmp/mb"
mkdir -p "$tmp/arch/mat-a" "$tmp/arch/mat-b" "$tmp/doc" "$tmp/exp"
: >"$tmp/arch/mat-a/matrix.yaml"; : >"$tmp/arch/mat-b/matrix.yaml"
: >"$tmp/exp/mat-a.yaml"; : >"$tmp/exp/mat-b.yaml"
MB_BENCH_REPORT_ONLY=1 MATRICES="$tmp/exp/mat-a.yaml $tmp/exp/mat-b.yaml" \
  sh "$top/bench/harness/mb-bench.sh" "$tmp/mb" "$top" paper "$tmp/arch" 1 "$tmp/doc/archive-results.md" \
  >"$tmp/out" 2>&1
ok $? "mb-bench.sh (report only) over two matrices with the same plot name"
links=$(grep -o '](figures/[^)]*)' "$tmp/doc/archive-results.md" | tr -d '()]' | tr '\n' ' ')
[ "$links" = "figures/archive-results/mat-a/lm_valid_ppl.svg figures/archive-results/mat-b/lm_valid_ppl.svg " ]
ok $? "the summary links each matrix's figure under figures/SUMMARY/MATRIX/: $links"
[ "$(cat "$tmp/doc/figures/archive-results/mat-a/lm_valid_ppl.svg")" = "<svg>mat-a</svg>" ] &&
  [ "$(cat "$tmp/doc/figures/archive-results/mat-b/lm_valid_ppl.svg")" = "<svg>mat-b</svg>" ]
ok $? "each link holds the figure its own matrix drew"
# The same matrix in a second summary leaves the first one's figures alone.
printf '<svg>older</svg>\n' >"$tmp/doc/figures/archive-results/mat-a/lm_valid_ppl.svg"
MB_BENCH_REPORT_ONLY=1 MATRICES="$tmp/exp/mat-a.yaml" \
  sh "$top/bench/harness/mb-bench.sh" "$tmp/mb" "$top" paper "$tmp/arch" 1 "$tmp/doc/results.md" >"$tmp/out2" 2>&1 &&
  grep -q '](figures/results/mat-a/lm_valid_ppl.svg)' "$tmp/doc/results.md" &&
  [ "$(cat "$tmp/doc/figures/archive-results/mat-a/lm_valid_ppl.svg")" = "<svg>older</svg>" ] &&
  [ "$(cat "$tmp/doc/figures/results/mat-a/lm_valid_ppl.svg")" = "<svg>mat-a</svg>" ]
ok $? "a second summary of the same matrix writes figures/results/mat-a/, not over figures/archive-results/"
echo "1..$n"
[ $failed -eq 0 ]
