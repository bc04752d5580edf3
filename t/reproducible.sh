#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# reproducible.sh — nothing in the build depends on when or where it ran:
# no __DATE__/__TIME__/__TIMESTAMP__ in any C source or header, no
# machine-specific or value-changing flags (-march=native, -mtune=native,
# -mcpu=native, -ffast-math, -Ofast, -funsafe-math-optimizations) in the
# build files, the shipped compiler flags pin -ffp-contract=off, and the
# built library holds no build date. (SOURCE_DATE_EPOCH then has nothing
# to replace.)
set -u
build=${top_builddir:-.}
top=${top_srcdir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/reproducible.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"

# The macro names are assembled so that this script does not match itself.
u=__
find "$top" \( -name '*.c' -o -name '*.h' -o -name '*.cc' -o -name '*.in' \) -type f \
  ! -path '*/autom4te.cache/*' ! -path '*/.git/*' ! -name 'config.h.in' ! -name 'Makefile.in' >"$tmp/files"
[ -s "$tmp/files" ]; ok $? "$(wc -l <"$tmp/files") C sources and templates to scan"
tr '\n' '\0' <"$tmp/files" | xargs -0 grep -n -E "${u}(DATE|TIME|TIMESTAMP)${u}" >"$tmp/dates" 2>/dev/null
[ ! -s "$tmp/dates" ]; ok $? "no ${u}DATE${u}, ${u}TIME${u} or ${u}TIMESTAMP${u} in the sources"
sed 's/^/# /' "$tmp/dates"

bad='-march=native|-mtune=native|-mcpu=native|-ffast-math|-Ofast|-funsafe-math-optimizations'
grep -n -E -e "$bad" "$top/configure.ac" "$top/Makefile.am" "$top"/mk/*.mk >"$tmp/flags" 2>&1
[ $? -eq 1 ]; ok $? "no -march=native, -ffast-math, -Ofast (...) in configure.ac, Makefile.am, mk/*.mk"
sed 's/^/# /' "$tmp/flags"

# MOE_CFLAGS as configure substituted it (from mk/t.mk's test environment,
# else from the generated Makefile).
cf=${MOE_CFLAGS:-$(sed -n 's/^MOE_CFLAGS = //p' "$build/Makefile")}
case " $cf " in *" -ffp-contract=off "*) r=0 ;; *) r=1 ;; esac
ok $r "MOE_CFLAGS has -ffp-contract=off: $cf"
echo " $cf " | grep -q -E -e "$bad"
[ $? -eq 1 ]; ok $? "MOE_CFLAGS has no machine-specific or fast-math flag"

# A __DATE__ would appear as "Mmm dd yyyy" (day padded with a space), in
# local time: look for today's date and the library file's, local and UTC,
# in the built library and program.
so=$build/lib/.libs/libmoe.so
if [ -f "$so" ]; then
  fmt='+%b %e %Y'
  d1=$(LC_ALL=C date "$fmt"); d2=$(LC_ALL=C date -u "$fmt")
  d3=$(LC_ALL=C date -r "$so" "$fmt" 2>/dev/null || echo "$d1")
  d4=$(LC_ALL=C date -u -r "$so" "$fmt" 2>/dev/null || echo "$d2")
  found=
  for f in "$so" "$build/bench/.libs/moebench" "$build/bench/moebench"; do
    [ -f "$f" ] || continue
    if grep -a -q -F -e "$d1" -e "$d2" -e "$d3" -e "$d4" "$f"; then found="$found $f"; fi
  done
  [ -z "$found" ]; ok $? "no build date ('$d1') in the built library or program${found:+:$found}"
else
  n=$((n + 1)); echo "ok $n # SKIP no shared library built"
fi

echo "1..$n"
[ $failed -eq 0 ]
