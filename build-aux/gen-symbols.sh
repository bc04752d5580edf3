#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# gen-symbols.sh — (re)write debian/libmoeN.symbols from what the built
# libmoe.so exports (dpkg-gensymbols format). One command after adding or
# removing a public function:
#     make debian-symbols          (or: sh build-aux/gen-symbols.sh)
# A symbol already listed keeps its version (the first upstream version
# that had it); a new one gets the current PACKAGE_VERSION; a removed one
# disappears, which is an ABI break: bump MOE_LT_VERSION (configure.ac)
# and the package name libmoeN with it. t/debian-symbols.sh (make check)
# fails while the file and the library disagree, and so does the package
# build (DPKG_GENSYMBOLS_CHECK_LEVEL=4 in debian/rules).
# usage: gen-symbols.sh [BUILDDIR [SRCDIR]]   (defaults: . and .)
set -eu
build=${1:-.}
top=${2:-.}
so=$build/lib/.libs/libmoe.so
[ -f "$so" ] || { echo "gen-symbols.sh: no $so: build the library first (make)" >&2; exit 1; }
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$build/config.h")
[ -n "$version" ] || { echo "gen-symbols.sh: no PACKAGE_VERSION in $build/config.h" >&2; exit 1; }
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
major=${soname##*.so.}
case $soname in libmoe.so.[0-9]*) ;; *) echo "gen-symbols.sh: unexpected soname '$soname'" >&2; exit 1 ;; esac
out=$top/debian/libmoe$major.symbols
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Versions already recorded: "name version".
if [ -f "$out" ]; then
  sed -n 's/^ \([^@ ]*\)@Base \([^ ]*\).*/\1 \2/p' "$out" | LC_ALL=C sort -u >"$tmp/old"
else
  : >"$tmp/old"
fi
LC_ALL=C nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | LC_ALL=C sort -u >"$tmp/names"
{
  echo "# libmoe's exported symbols (dpkg-gensymbols(1) format), written by"
  echo "# build-aux/gen-symbols.sh from the built library: regenerate with"
  echo "# \`make debian-symbols\` after changing the public API; do not edit by hand"
  echo "# except to correct the version in which a symbol first appeared."
  echo "$soname libmoe$major #MINVER#"
  echo "* Build-Depends-Package: libmoe-dev"
  LC_ALL=C join -a 1 -e "$version" -o 1.1,2.2 "$tmp/names" "$tmp/old" |
    awk '{ printf " %s@Base %s\n", $1, $2 }'
} >"$tmp/new"
added=$(cut -d" " -f1 "$tmp/old" | LC_ALL=C comm -23 "$tmp/names" - | wc -l)
removed=$(cut -d' ' -f1 "$tmp/old" | LC_ALL=C comm -13 "$tmp/names" - | wc -l)
if [ -f "$out" ] && cmp -s "$tmp/new" "$out"; then
  echo "gen-symbols.sh: $out is up to date ($(wc -l <"$tmp/names") symbols)"
else
  mv "$tmp/new" "$out"
  echo "gen-symbols.sh: wrote $out ($(wc -l <"$tmp/names") symbols; $added new at $version, $removed removed)"
fi
[ "$removed" -eq 0 ] || echo "gen-symbols.sh: symbols were REMOVED: an ABI break (see configure.ac, MOE_LT_VERSION)" >&2
