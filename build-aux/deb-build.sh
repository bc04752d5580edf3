#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# deb-build.sh — build the Debian packages from the release tarball, the
# way a Debian maintainer would: the tarball becomes
# moebench_VERSION.orig.tar.gz, is unpacked, and `dpkg-buildpackage -us -uc`
# runs in it (format 3.0 (quilt); debian/ travels in the tarball). Then
# `lintian --fail-on error,warning` on the result, unless --no-lintian.
#
# usage: deb-build.sh [--tarball FILE] [--workdir DIR] [--no-lintian] [--install-test]
#   --tarball FILE  the release tarball (default: `make dist` in the current
#                   directory, a configured build tree)
#   --workdir DIR   where to unpack and build (default: a new temporary
#                   directory); the .debs, .changes and logs stay there
#   --install-test  as root: `dpkg -i` the built packages, run each test of
#                   debian/tests/control by hand (the autopkgtest commands),
#                   then `dpkg --purge` them again (packages that were
#                   installed before are left installed). For CI machines.
# Environment: DEB_BUILD_OPTIONS (e.g. "nocheck parallel=2"; parallel=2 is
# added when it names no parallel=). SOURCE_DATE_EPOCH is NOT passed on:
# dpkg-buildpackage takes it from debian/changelog.
# The last lines printed: the lintian verdict and the sha256 of each file.
set -eu
tarball= work= lint=yes itest=no
while [ $# -gt 0 ]; do
  case $1 in
  --tarball) tarball=$2; shift 2 ;;
  --workdir) work=$2; shift 2 ;;
  --no-lintian) lint=no; shift ;;
  --install-test) itest=yes; shift ;;
  *) echo "usage: $0 [--tarball FILE] [--workdir DIR] [--no-lintian] [--install-test]" >&2; exit 2 ;;
  esac
done
for t in dpkg-buildpackage dh; do
  command -v $t >/dev/null 2>&1 || { echo "deb-build.sh: $t not found (apt-get install dpkg-dev debhelper)" >&2; exit 1; }
done
if [ -z "$tarball" ]; then
  make -s dist >/dev/null
  tarball=$(ls -t moebench-*.tar.gz | head -1)
fi
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
base=$(basename "$tarball" .tar.gz)           # moebench-0.1.0
version=${base#moebench-}
[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/deb-build.XXXXXX")
mkdir -p "$work"
work=$(cd "$work" && pwd)
cp "$tarball" "$work/moebench_$version.orig.tar.gz"
rm -rf "${work:?}/$base"
tar -xzf "$work/moebench_$version.orig.tar.gz" -C "$work"
cd "$work/$base"
[ -d debian ] || { echo "deb-build.sh: the tarball has no debian/ directory" >&2; exit 1; }
dver=$(dpkg-parsechangelog -S Version)
[ "${dver%-*}" = "$version" ] ||
  { echo "deb-build.sh: debian/changelog says $dver, the tarball is $version" >&2; exit 1; }

echo "== dpkg-checkbuilddeps (Build-Depends of debian/control)"
dpkg-checkbuilddeps && echo "all Build-Depends installed"
opts=${DEB_BUILD_OPTIONS:-}
case " $opts " in *" parallel="*) ;; *) opts="${opts:+$opts }parallel=2" ;; esac
echo "== dpkg-buildpackage -us -uc (DEB_BUILD_OPTIONS='$opts') in $work/$base"
unset SOURCE_DATE_EPOCH
DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc >"$work/build.log" 2>&1 || {
  tail -60 "$work/build.log"; echo "deb-build.sh: dpkg-buildpackage failed (log: $work/build.log)"; exit 1; }
grep -E '^(# (PASS|FAIL|SKIP|ERROR|TOTAL)|dpkg-gensymbols: warning)' "$work/build.log" || true
cd "$work"
changes=$(ls moebench_"$dver"_*.changes)
echo "== built in $work:"
ls -l ./*.deb ./*.dsc ./*.debian.tar.* ./*.orig.tar.gz | awk '{ print "  " $5 "  " $NF }'

st=0
if [ "$lint" = yes ]; then
  if command -v lintian >/dev/null 2>&1; then
    echo "== lintian --fail-on error,warning $changes"
    lst=0
    lintian --fail-on error,warning --tag-display-limit 0 "$changes" >"$work/lintian.log" 2>&1 || lst=$?
    grep -v '^running with root privileges' "$work/lintian.log" || true
    ne=$(grep -c '^E: ' "$work/lintian.log" || true)
    nw=$(grep -c '^W: ' "$work/lintian.log" || true)
    # the overrides in force, each with its reason in the file named
    ov=$(cd "$base/debian" && grep -H -v -e '^#' -e '^ *$' source/lintian-overrides ./*.lintian-overrides 2>/dev/null |
      sed 's|^\./||; s|:[^:]*: *| |; s| \[.*||' | awk '{ printf "  %s (%s)\n", $2, $1 }')
    echo "lintian overrides (reasons in debian/*lintian-overrides):"
    echo "$ov"
    if [ "$lst" -eq 0 ]; then
      echo "lintian: PASS ($ne errors, $nw warnings not overridden; $(echo "$ov" | grep -c .) overrides)"
    else
      echo "lintian: FAIL ($ne errors, $nw warnings; exit $lst)"; st=1
    fi
  else
    echo "lintian: not installed (apt-get install lintian)"; st=1
  fi
fi
if [ "$itest" = yes ]; then
  echo "== dpkg -i the packages; debian/tests by hand; dpkg --purge"
  # the library package is named after the soname (libmoeN): debian/control says which
  libpkg=$(sed -n 's/^Package: \(libmoe[0-9][0-9]*\)$/\1/p' "$base/debian/control")
  pkgs="$libpkg libmoe-dev moebench" had=
  for p in $pkgs; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q ' installed$' && had="$had $p"; done
  purge() {
    [ -z "$had" ] || { echo "left installed (they were before):$had"; return 0; }
    dpkg --purge $pkgs >"$work/purge.log" 2>&1 && echo "purged: $pkgs"
  }
  if dpkg -i "$libpkg"_"$dver"_*.deb libmoe-dev_"$dver"_*.deb moebench_"$dver"_*.deb >"$work/dpkg-i.log" 2>&1; then
    echo "installed: $(dpkg-query -W $pkgs | tr '\t\n' '= ')"
    for t in $(sed -n 's/^Tests: *//p' "$base/debian/tests/control" | tr ',' ' '); do
      tdir=$(mktemp -d "${TMPDIR:-/tmp}/autopkgtest.XXXXXX")
      if (cd "$base" && AUTOPKGTEST_TMP=$tdir sh "debian/tests/$t") >"$work/test-$t.log" 2>&1; then
        echo "autopkgtest $t: PASS ($(tail -1 "$work/test-$t.log"))"
      else
        echo "autopkgtest $t: FAIL"; tail -20 "$work/test-$t.log"; st=1
      fi
      rm -rf "$tdir"
    done
  else
    tail -20 "$work/dpkg-i.log"; echo "dpkg -i failed"; st=1
  fi
  purge
fi
echo "== sha256"
sha256sum ./*.deb ./*.dsc ./*.debian.tar.* ./*.orig.tar.gz | sed 's|  \./|  |'
exit $st
