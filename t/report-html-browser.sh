#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The HTML report in a real browser: headless Chromium (Debian's
# `chromium`; CHROMIUM=path to choose another) loads the report of the
# fixture matrix and of the smoke matrix. A checker
# (t/data/report/html-check.js), put into a copy of each page ahead of its
# Content-Security-Policy, reports errors and policy violations, figures
# that did not render (no box, or an image of no size), rows per table,
# header scopes, the page's own sort, sideways scrolling. Screenshots at
# 1280 px and at a phone's 390 px are kept in $REPORT_HTML_SHOTS (default
# t/report-html-shots in the build tree; CI: under the stage's log).
# Without Chromium the test is skipped: `make check` does not need it.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "$srcdir/t/tap.sh"
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
if [ -z "$browser" ] || [ ! -x "$browser" ]; then
  echo "1..0 # SKIP chromium not installed (apt-get install chromium): the HTML report is not loaded in a browser"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
shots=${REPORT_HTML_SHOTS:-t/report-html-shots}
mkdir -p "$shots" || exit 1
shots=$(cd "$shots" && pwd)
gp=1; command -v gnuplot > /dev/null || gp=0

# a private profile and no first-run work; root in a container needs --no-sandbox
run_browser() { # run_browser WIDTH ARGS...: headless, at WIDTH px, 60 s at most
  w=$1; shift
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
    --user-data-dir="$tmp/profile" --hide-scrollbars --window-size="$w,2000" --virtual-time-budget=5000 "$@" \
    2> "$tmp/browser.log"
}

# the page with the checker ahead of its policy
checked() { # checked PAGE OUT
  { sed -n '1,/^<head>$/p' "$1"; echo '<script>'; cat "$srcdir/t/data/report/html-check.js"; echo '</script>'
    sed '1,/^<head>$/d' "$1"; } > "$2"
}

check_page() { # check_page PAGE WIDTH: the checker's lines in $tmp/check
  checked "$1" "$tmp/checked.html"
  run_browser "$2" --dump-dom "file://$tmp/checked.html" > "$tmp/dom"
  sed -n '/^<pre id="browser-check">$/,/^<\/pre>/p' "$tmp/dom" > "$tmp/check"
  # the DOM shows text as &lt; ...; the checker's lines are plain words
  sed 's/^/# /' "$tmp/check"
}

"$MOEBENCH" run -q "$srcdir/t/data/report/html.yaml" --out "$tmp/r" -j 2; ok $? "fixture run"
"$MOEBENCH" run -q "$srcdir/experiments/smoke-selftest.yaml" --out "$tmp/r" -j 2; ok $? "smoke run"
"$MOEBENCH" report "$tmp/r" --format html --page "$tmp/all.html" 2> "$tmp/log"; ok $? "report --format html --page"
fix="$tmp/r/html-fixture/report/report.html"

# the checker must see what it looks for: a page with a script injected
# past the escaping, and a figure that cannot render, are caught
sed 's|<p class="desc">|<p class="desc"><script>document.title="pwned"</script>|' "$fix" > "$tmp/bad.html"
sed -i 's|data:image/svg+xml;base64,[A-Za-z0-9+/=]*|data:image/svg+xml;base64,PHN2Zz4=|' "$tmp/bad.html"
check_page "$tmp/bad.html" 1280
grep -q '^E csp: script-src' "$tmp/check"; ok $? "control: an unescaped script is refused and reported"
! grep -q '^title .*pwned' "$tmp/check"; ok $? "control: ...and does not run"
if [ $gp = 1 ]; then grep -q '^E figure not rendered: html-fixture-fig-value$' "$tmp/check"; ok $? "control: a broken figure is reported"
else n=$((n + 1)); echo "ok $n # SKIP gnuplot not installed: no figures"; fi

for w in 1280 390; do
  check_page "$fix" $w
  grep -q '^errors 0$' "$tmp/check"; ok $? "fixture at $w px: no errors, no policy violations"
  if [ $gp = 1 ]; then grep -q '^figures 1 rendered 1$' "$tmp/check"; ok $? "fixture at $w px: the figure rendered"
  else n=$((n + 1)); echo "ok $n # SKIP gnuplot not installed: no figures"; fi
  for t in 'claims 3' 'table-value_vs_plain 2' 'table-draw_vs_plain 2' 'table-value_by_n 4' 'fit-growth 2'; do
    grep -q "^rows html-fixture-$t\$" "$tmp/check"; ok $? "fixture at $w px: rows $t"
  done
  grep -q '^th-without-scope 0$' "$tmp/check"; ok $? "fixture at $w px: every header cell has its scope"
  grep -q '^scripts 2$' "$tmp/check" && grep -q '^title moebench report: html-fixture$' "$tmp/check"; ok $? "fixture at $w px: only the page's script (and the checker)"
  grep -q '^h1 1$' "$tmp/check"; ok $? "fixture at $w px: one h1"
  grep -q '^sort ok$' "$tmp/check"; ok $? "fixture at $w px: a table sorts by a column, both ways"
  grep -q '^wide fits$' "$tmp/check"; ok $? "fixture at $w px: no sideways scrolling of the page (wide tables scroll in their box)"
  run_browser $w --screenshot="$shots/report-$w.png" "file://$fix" > /dev/null
  [ -s "$shots/report-$w.png" ]; ok $? "screenshot $shots/report-$w.png"
done

check_page "$tmp/all.html" 1280
grep -q '^errors 0$' "$tmp/check"; ok $? "joined page: no errors"
if [ $gp = 1 ]; then grep -q '^figures 2 rendered 2$' "$tmp/check"; ok $? "joined page: both matrices' figures rendered"
else n=$((n + 1)); echo "ok $n # SKIP gnuplot not installed: no figures"; fi
grep -q '^rows smoke-selftest-table-draw_by_n 3$' "$tmp/check" && grep -q '^rows html-fixture-table-value_by_n 4$' "$tmp/check"
ok $? "joined page: both matrices' tables"
run_browser 1280 --screenshot="$shots/results-1280.png" "file://$tmp/all.html" > /dev/null
[ -s "$shots/results-1280.png" ]; ok $? "screenshot $shots/results-1280.png"

echo "1..$n"
[ $failed -eq 0 ]
