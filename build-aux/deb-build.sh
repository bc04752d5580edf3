#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# deb-build.sh — build the Debian packages from the release tarball, the
# way a Debian maintainer would: the tarball becomes
# moebench_VERSION.orig.tar.gz, is unpacked, and `dpkg-buildpackage -us -uc`
# runs in it (format 3.0 (quilt); debian/ travels in the tarball). Then
# `lintian --fail-on error,warning` on the result, unless --no-lintian.
#
# usage: deb-build.sh [--tarball FILE] [--workdir DIR] [--no-lintian]
#   --tarball FILE  the release tarball (default: `make dist` in the current
#                   directory, a configured build tree)
#   --workdir DIR   where to unpack and build (default: a new temporary
#                   directory); the .debs, .changes and logs stay there
# Environment: DEB_BUILD_OPTIONS (e.g. "nocheck parallel=2"; parallel=2 is
# added when it names no parallel=). SOURCE_DATE_EPOCH is NOT passed on:
# dpkg-buildpackage takes it from debian/changelog.
# The last lines printed: the lintian verdict and the sha256 of each file.
set -eu
tarball= work= lint=yes
while [ $# -gt 0 ]; do
  case $1 in
  --tarball) tarball=$2; shift 2 ;;
  --workdir) work=$2; shift 2 ;;
  --no-lintian) lint=no; shift ;;
  *) echo "usage: $0 [--tarball FILE] [--workdir DIR] [--no-lintian]" >&2; exit 2 ;;
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
    echo "== lintian --fail-on error,warning --show-overrides $changes"
    lst=0
    lintian --fail-on error,warning --show-overrides --tag-display-limit 0 "$changes" >"$work/lintian.log" 2>&1 || lst=$?
    cat "$work/lintian.log"
    nov=$(grep -c '^O: ' "$work/lintian.log" || true)
    ne=$(grep -c '^E: ' "$work/lintian.log" || true)
    nw=$(grep -c '^W: ' "$work/lintian.log" || true)
    if [ "$lst" -eq 0 ]; then
      echo "lintian: PASS (0 errors, 0 warnings; $nov overridden tags, each with its reason in debian/*lintian-overrides)"
    else
      echo "lintian: FAIL ($ne errors, $nw warnings)"; st=1
    fi
  else
    echo "lintian: not installed (apt-get install lintian)"; st=1
  fi
fi
echo "== sha256"
sha256sum ./*.deb ./*.dsc ./*.debian.tar.* ./*.orig.tar.gz | sed 's|  \./|  |'
exit $st
