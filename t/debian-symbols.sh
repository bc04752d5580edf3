#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# debian-symbols.sh — debian/libmoeN.symbols (the Debian package's symbols
# file) lists exactly the symbols the built libmoe.so exports, under the
# soname it has. When a public function is added or removed this goes red
# until the file is regenerated with one command: `make debian-symbols`
# (build-aux/gen-symbols.sh), which keeps the versions already recorded.
set -u
build=${top_builddir:-.}
top=${top_srcdir:-.}
so=$build/lib/.libs/libmoe.so
tmp=$(mktemp -d "${TMPDIR:-/tmp}/debsym.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"
if ! command -v nm >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
  echo "1..0 # SKIP nm or readelf (binutils) not found"; exit 0
fi
if [ ! -f "$so" ]; then echo "1..0 # SKIP no shared library at $so"; exit 0; fi

soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
major=${soname##*.so.}
sym=$top/debian/libmoe$major.symbols
[ -f "$sym" ]; ok $? "debian/libmoe$major.symbols exists for soname $soname"
[ -f "$sym" ] || { echo "1..$n"; exit 1; }
grep -q "^$soname libmoe$major #MINVER#\$" "$sym"
ok $? "its header line is '$soname libmoe$major #MINVER#'"

LC_ALL=C nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | LC_ALL=C sort -u >"$tmp/exported"
sed -n 's/^ \([^@ ]*\)@Base .*/\1/p' "$sym" | LC_ALL=C sort >"$tmp/listed"
LC_ALL=C sort -u "$tmp/listed" | cmp -s - "$tmp/listed"; ok $? "no symbol is listed twice"
LC_ALL=C comm -23 "$tmp/exported" "$tmp/listed" >"$tmp/new"
LC_ALL=C comm -13 "$tmp/exported" "$tmp/listed" >"$tmp/gone"
[ ! -s "$tmp/new" ]
ok $? "every exported symbol ($(wc -l <"$tmp/exported")) is in the symbols file"
sed 's/^/# exported, not in the symbols file: /' "$tmp/new"
[ ! -s "$tmp/gone" ]
ok $? "every symbol in the symbols file is exported"
sed 's/^/# in the symbols file, no longer exported (an ABI break): /' "$tmp/gone"
if [ -s "$tmp/new" ] || [ -s "$tmp/gone" ]; then
  echo "# regenerate with: make debian-symbols   (build-aux/gen-symbols.sh)"
fi
# Every version is a plain upstream version no later than this one.
v=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$build/config.h")
awk -v v="$v" '/^ [^ ]*@Base / { if ($2 !~ /^[0-9]+\.[0-9]+\.[0-9]+$/) print "bad version: " $0 }' "$sym" >"$tmp/badv"
[ ! -s "$tmp/badv" ]; ok $? "every symbol has an upstream version MAJOR.MINOR.PATCH"
sed 's/^/# /' "$tmp/badv"

echo "1..$n"
[ $failed -eq 0 ]
