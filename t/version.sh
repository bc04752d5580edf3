#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# version.sh — one package version everywhere: AC_INIT (config.h's
# PACKAGE_VERSION in the build tree) must equal what moe_version() returns
# (printed by `moebench --version`), MOE_VERSION_STRING and
# MAJOR.MINOR.PATCH in lib/moe/version.h, the pkg-config module's Version,
# the version in libmoe(3)'s title line and the upstream part of
# debian/changelog's latest entry. Bump them together.
set -u
build=${top_builddir:-.}
top=${top_srcdir:-.}
mb=${MOEBENCH:-$build/bench/moebench}
. "${srcdir:-.}/t/tap.sh"
hdr=$top/lib/moe/version.h

v=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$build/config.h")
[ -n "$v" ]; ok $? "config.h says PACKAGE_VERSION \"$v\""
ac=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
[ "$ac" = "$v" ]; ok $? "AC_INIT in configure.ac has the same version ($ac)"

out=$("$mb" --version 2>&1)
ok $? "moebench --version runs"
[ "$out" = "moebench $v (libmoe $v)" ]
ok $? "moebench --version: '$out' (program and moe_version() are $v)"

hs=$(sed -n 's/^#define MOE_VERSION_STRING "\(.*\)"$/\1/p' "$hdr")
[ "$hs" = "$v" ]; ok $? "MOE_VERSION_STRING \"$hs\" in lib/moe/version.h"
part() { sed -n "s/^#define MOE_VERSION_$1 \\([0-9][0-9]*\\)\$/\\1/p" "$hdr"; }
mmp="$(part MAJOR).$(part MINOR).$(part PATCH)"
[ "$mmp" = "$v" ]; ok $? "MOE_VERSION_MAJOR.MINOR.PATCH = $mmp"

pcv=$(sed -n 's/^Version: *//p' "$build/lib/libmoe.pc")
[ "$pcv" = "$v" ]; ok $? "lib/libmoe.pc Version: $pcv"

grep -q "^\.TH LIBMOE 3 [^ ]* \"moebench $v\"" "$top/doc/libmoe.3"
ok $? "doc/libmoe.3 title line names moebench $v"

# The Debian packaging's latest entry packages this version (VERSION-REV).
dv=$(sed -n '1s/^moebench (\([^)]*\)-[^-)]*).*/\1/p' "$top/debian/changelog")
[ "$dv" = "$v" ]; ok $? "debian/changelog's latest entry packages $dv"

echo "1..$n"
[ $failed -eq 0 ]
