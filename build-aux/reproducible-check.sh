#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# reproducible-check.sh — the release artefacts do not depend on when or
# where they were built: two release tarballs made from the same commit
# in two different directories (each a fresh `git archive`, autoreconf,
# configure, make dist, with SOURCE_DATE_EPOCH = the commit's date) are
# byte-identical, and so are two builds of the Debian packages from them
# (build-aux/deb-build.sh in two different directories; dpkg-buildpackage
# takes SOURCE_DATE_EPOCH from debian/changelog). Prints the sha256 of
# every artefact, and what differs when something does. (t/reproducible.sh,
# part of make check, checks the sources and flags behind this: no build
# dates, no machine-specific flags.)
#
# usage: build-aux/reproducible-check.sh [--deb-first DIR] [COMMIT]
#   run from the top of a git checkout; COMMIT defaults to HEAD.
#   --deb-first DIR  a deb-build.sh work directory already built from this
#                    commit (CI's debian stage, with the tests): it is the
#                    first package build, and only the second is made here
#                    (with DEB_BUILD_OPTIONS=nocheck; the tests do not
#                    change what is installed).
# Without --deb-first both package builds are made, nocheck.
set -eu
first=
while [ $# -gt 0 ]; do
  case $1 in
  --deb-first) first=$(cd "$2" && pwd); shift 2 ;;
  -*) echo "usage: $0 [--deb-first DIR] [COMMIT]" >&2; exit 2 ;;
  *) break ;;
  esac
done
top=$(git rev-parse --show-toplevel)
commit=$(git -C "$top" rev-parse "${1:-HEAD}")
epoch=$(git -C "$top" log -1 --format=%ct "$commit")
work=$(mktemp -d "${TMPDIR:-/tmp}/repro.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/log
echo "commit $commit, SOURCE_DATE_EPOCH=$epoch ($(date -u -d "@$epoch" '+%Y-%m-%d %H:%M:%S UTC'))"
st=0

# ---- the release tarball, twice -----------------------------------------------
# Different directory names (and depths), so a path cannot leak unnoticed.
for k in 1 2; do
  src=$work/t$k/$( [ $k = 1 ] && echo a || echo bb/ccc)/src
  mkdir -p "$src" "$work/tar$k"
  # as a checkout would be (git archive records group-writable modes)
  git -C "$top" archive --format=tar "$commit" | tar -x --no-same-permissions -C "$src"
  (cd "$src" && autoreconf -fi && ./configure -q && SOURCE_DATE_EPOCH=$epoch make -s dist) \
    >"$log.dist$k" 2>&1 || { tail -30 "$log.dist$k"; echo "make dist $k failed"; exit 1; }
  mv "$src"/moebench-*.tar.gz "$work/tar$k/"
done
tar1=$(ls "$work"/tar1/moebench-*.tar.gz)
name=$(basename "$tar1")
if cmp -s "$tar1" "$work/tar2/$name"; then
  echo "tarball: two builds identical"
else
  echo "tarball: the two builds DIFFER"; st=1
  mkdir -p "$work/x1" "$work/x2"
  tar -xzf "$tar1" -C "$work/x1"; tar -xzf "$work/tar2/$name" -C "$work/x2"
  diff -r "$work/x1" "$work/x2" | head -20 || true
  tar -tvzf "$tar1" >"$work/l1"; tar -tvzf "$work/tar2/$name" >"$work/l2"
  diff "$work/l1" "$work/l2" | head -20 || true
fi

# ---- the Debian packages, twice -------------------------------------------------
if command -v dpkg-buildpackage >/dev/null 2>&1; then
  if [ -n "$first" ]; then
    d1=$first
    if cmp -s "$tar1" "$(ls "$d1"/moebench_*.orig.tar.gz)"; then
      echo "tarball: the packages' first build had the same tarball"
    else
      echo "tarball: the packages' first build (from the checkout's make dist) had a DIFFERENT tarball"; st=1
    fi
  else
    d1=$work/deb1/x
    DEB_BUILD_OPTIONS="nocheck parallel=2" sh "$top/build-aux/deb-build.sh" --no-lintian \
      --tarball "$tar1" --workdir "$d1" >"$log.deb1" 2>&1 ||
      { tail -30 "$log.deb1"; echo "package build 1 failed"; exit 1; }
  fi
  d2=$work/deb2/yy/zzz
  DEB_BUILD_OPTIONS="nocheck parallel=2" sh "$top/build-aux/deb-build.sh" --no-lintian \
    --tarball "$work/tar2/$name" --workdir "$d2" >"$log.deb2" 2>&1 ||
    { tail -30 "$log.deb2"; echo "package build 2 failed"; exit 1; }
  n=0
  for f in "$d1"/*.deb "$d1"/*.dsc "$d1"/*.debian.tar.*; do
    b=$(basename "$f"); n=$((n + 1))
    if [ ! -f "$d2/$b" ]; then
      echo "$b: missing from the second build"; st=1
    elif ! cmp -s "$f" "$d2/$b"; then
      echo "$b: the two builds DIFFER"; st=1
      case $b in
      *.deb)
        mkdir -p "$work/d1/$b" "$work/d2/$b"
        dpkg-deb -R "$f" "$work/d1/$b"; dpkg-deb -R "$d2/$b" "$work/d2/$b"
        diff -r "$work/d1/$b" "$work/d2/$b" 2>&1 | head -10 || true ;;
      esac
    fi
  done
  [ $st -ne 0 ] || echo "packages: two builds identical ($n files: .debs, .dsc, debian.tar)"
else
  echo "packages: SKIP (dpkg-buildpackage not installed: apt-get install dpkg-dev debhelper)"
fi

echo "sha256 (first build):"
(cd "$work/tar1" && sha256sum ./*.tar.gz) | sed 's|  \./|  |'
if [ -n "${d1:-}" ]; then
  (cd "$d1" && sha256sum ./*.deb ./*.dsc ./*.debian.tar.*) | sed 's|  \./|  |'
fi
if [ $st -eq 0 ]; then echo "reproducible: yes"; else echo "reproducible: NO"; fi
exit $st
