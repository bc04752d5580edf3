#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# man.sh — libmoe(3) cannot rot: its EXAMPLE is examples/layer-demo.c
# byte for byte (after undoing the groff escapes \e \- \& \(aq), the output
# it quotes is what the in-tree build of the example prints, every moe_
# name it mentions exists in lib/moe/*.h, every public header is described,
# and groff formats it without a warning.
set -u
build=${top_builddir:-.}
top=${top_srcdir:-.}
man=$top/doc/libmoe.3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"

# The Nth .EX ... .EE block after .SH EXAMPLE, unescaped.
block() {
  awk -v want="$1" '
    /^\.SH / { inex = ($0 ~ /^\.SH EXAMPLE/) }
    inex && /^\.EX/ { k++; on = (k == want); next }
    /^\.EE/ { on = 0; next }
    on { print }' "$man" |
    sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\&//g' -e 's/\\e/\\/g'
}
block 1 >"$tmp/example.c"
[ -s "$tmp/example.c" ]; ok $? "libmoe.3 has an EXAMPLE ($(wc -l <"$tmp/example.c") lines)"
cmp -s "$tmp/example.c" "$top/examples/layer-demo.c"
ok $? "the EXAMPLE is examples/layer-demo.c, byte for byte"
cmp -s "$tmp/example.c" "$top/examples/layer-demo.c" ||
  diff "$top/examples/layer-demo.c" "$tmp/example.c" | sed 's/^/# /'

block 2 >"$tmp/quoted"
if [ -x "$build/examples/layer-demo" ]; then
  "$build/examples/layer-demo" >"$tmp/out" 2>&1
  ok $? "the in-tree examples/layer-demo runs"
  lines=$(wc -l <"$tmp/quoted")
  [ "$lines" -ge 2 ] && head -n "$lines" "$tmp/out" | cmp -s - "$tmp/quoted"
  ok $? "the output the manual quotes is what the example prints"
  head -n "$lines" "$tmp/out" | diff - "$tmp/quoted" | sed 's/^/# /'
else
  n=$((n + 1)); echo "not ok $n - examples/layer-demo was not built"; failed=$((failed + 1))
  n=$((n + 1)); echo "not ok $n - (no output to compare)"; failed=$((failed + 1))
fi

cat "$top"/lib/moe/*.h | grep -oE 'moe_[A-Za-z0-9_]*' | sort -u >"$tmp/named"
grep -oE 'moe_[A-Za-z0-9_]+' "$man" | sort -u >"$tmp/mentioned"
comm -23 "$tmp/mentioned" "$tmp/named" >"$tmp/unknown"
[ ! -s "$tmp/unknown" ]; ok $? "every moe_ name in libmoe.3 is in lib/moe/*.h"
sed 's/^/# not in any header: /' "$tmp/unknown"

miss=
for h in "$top"/lib/moe/*.h; do
  b=$(basename "$h")
  [ "$b" = moe.h ] && continue # the umbrella, named in SYNOPSIS
  grep -q "^\.B <moe/$b>" "$man" || miss="$miss $b"
done
[ -z "$miss" ]
ok $? "every public header has its entry in MODULES${miss:+ (add a .TP entry for:$miss)}"

if command -v groff >/dev/null 2>&1; then
  groff -man -Tutf8 -ww -z "$man" >"$tmp/warn" 2>&1
  [ $? -eq 0 ] && [ ! -s "$tmp/warn" ]; ok $? "groff -man -ww formats it without a warning"
  sed 's/^/# /' "$tmp/warn"
else
  n=$((n + 1)); echo "ok $n # SKIP groff not installed"
fi

echo "1..$n"
[ $failed -eq 0 ]
