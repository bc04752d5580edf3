#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# chroot-test.sh — the Debian packages as a clean Debian 12 sees them. The
# host's own build (deb-build.sh) passes whenever the host has what
# install-deps.sh installs; this one starts from nothing:
#   1. a minbase bookworm chroot (Essential packages and apt) made with
#      mmdebstrap from the Debian archive that apt on this machine is
#      configured with (its sources of Origin "Debian"), kept as a tarball;
#   2. unpacked afresh, `apt-get build-dep` installs build-essential and the
#      Build-Depends of debian/control and nothing else, and
#      `dpkg-buildpackage -us -uc` runs as an unprivileged user with the
#      package's tests (make check), as a buildd would;
#   3. a second fresh chroot: apt installs the built .debs (and what they
#      Depend on, without Recommends), and autopkgtest runs debian/tests
#      against the installed packages (each test's Depends installed by it).
# A missing Build-Depends fails step 2; a missing Depends of a package or
# of a test fails step 3. Other architectures than the host's are not tried.
#
# usage: chroot-test.sh [--tarball FILE] [--workdir DIR] [--cache DIR]
#   --tarball FILE  the release tarball (default: `make dist` here)
#   --workdir DIR   the two chroots, the built packages and the logs
#                   (default: a new temporary directory; the chroots are
#                   removed at the end, the rest stays)
#   --cache DIR     the base tarball and apt's downloaded .debs (default
#                   /var/cache/moebench-chroot, created on first use; remove
#                   base-*.tar there to make a new base)
# Needs root, mmdebstrap, unshare and chroot. Environment: DEB_BUILD_OPTIONS
# (parallel=2 added when it names no parallel=).
set -eu
tarball= work= cache=/var/cache/moebench-chroot suite=bookworm
while [ $# -gt 0 ]; do
  case $1 in
  --tarball) tarball=$2; shift 2 ;;
  --workdir) work=$2; shift 2 ;;
  --cache) cache=$2; shift 2 ;;
  *) echo "usage: $0 [--tarball FILE] [--workdir DIR] [--cache DIR]" >&2; exit 2 ;;
  esac
done
die() { echo "chroot-test.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (chroot, mounts)"
for t in mmdebstrap unshare chroot flock apt-get; do
  command -v $t >/dev/null 2>&1 || die "$t not found (apt-get install mmdebstrap)"
done
if [ -z "$tarball" ]; then
  make -s dist >/dev/null
  tarball=$(ls -t moebench-*.tar.gz | head -1)
fi
[ -f "$tarball" ] || die "$tarball: no such file"
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
base=$(basename "$tarball" .tar.gz)
version=${base#moebench-}
# the library package is named after the soname (libmoeN): debian/control says which
libpkg=$(tar -xzOf "$tarball" "$base/debian/control" | sed -n 's/^Package: \(libmoe[0-9][0-9]*\)$/\1/p')
[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/chroot-test.XXXXXX")
mkdir -p "$work" "$cache/archives/partial"
work=$(cd "$work" && pwd)
arch=$(dpkg --print-architecture)
basetar=$cache/base-$suite-minbase-$arch.tar
t_all=$(date +%s)
# The chroots go, whatever happens: their mounts lived in private mount
# namespaces (inroot), so here they are plain directories.
trap 'rm -rf "$work/build-root" "$work/test-root"' EXIT
since() { echo "$(( $(date +%s) - $1 )) s"; }

# ---- 1. the base --------------------------------------------------------
# Debian's own sources from apt's configuration, as one-line entries.
sources=$(apt-get indextargets --format '$(ORIGIN)|$(REPO_URI)|$(RELEASE)|$(COMPONENT)' \
  'Created-By: Packages' "Architecture: $arch" 2>/dev/null |
  awk -F'|' -v s="$suite" '$1 == "Debian" && ($3 == s || index($3, s "-") == 1) {
    print "deb " $2 " " $3 " " $4 }' | sort -u)
[ -n "$sources" ] || die "apt has no Debian $suite source configured (see /etc/apt/sources.list*)"
(
  flock 9
  if [ ! -s "$basetar" ]; then
    t0=$(date +%s)
    echo "== mmdebstrap --variant=minbase $suite (no cached base in $cache)"
    echo "$sources" | sed 's/^/  /'
    # shellcheck disable=SC2086
    IFS='
'
    mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
      --aptopt='Acquire::Retries "3"' "$suite" "$basetar.new" $sources \
      >"$work/mmdebstrap.log" 2>&1 || { tail -30 "$work/mmdebstrap.log"; rm -f "$basetar.new"; exit 1; }
    mv "$basetar.new" "$basetar"
    echo "base made: $(du -h "$basetar" | cut -f1) in $(since "$t0")"
  else
    echo "== base: $basetar ($(du -h "$basetar" | cut -f1), made $(date -r "$basetar" +%F))"
  fi
) 9>"$cache/lock"

# fresh DIR: a new root unpacked from the base, its apt fed from the cache
fresh() {
  rm -rf "$1"; mkdir -p "$1"
  tar -xf "$basetar" -C "$1"
  cp /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
  printf '%s\n' "$sources" >"$1/etc/apt/sources.list"
  printf 'APT::Install-Recommends "false";\nAcquire::Retries "3";\nDPkg::Lock::Timeout "600";\n' \
    >"$1/etc/apt/apt.conf.d/90moebench"
  # the debs are kept between runs: the cache is bind-mounted over
  # /var/cache/apt/archives, so nothing may clean it
  rm -f "$1/etc/apt/apt.conf.d/docker-clean"
  echo 'builder:x:1000:1000:builder:/build:/bin/sh' >>"$1/etc/passwd"
  echo 'builder:x:1000:' >>"$1/etc/group"
  mkdir -p "$1/build"
}
# in ROOT CMD...: CMD in the chroot, with /dev, /proc and the apt cache
# mounted in a private mount namespace (gone when CMD ends)
inroot() {
  r=$1; shift
  unshare --mount --propagation private -- sh -c '
    r=$1; c=$2; shift 2
    mount --rbind /dev "$r/dev" && mount -t proc proc "$r/proc" &&
    mount --bind "$c/archives" "$r/var/cache/apt/archives" &&
    exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/build "$@"' sh "$r" "$cache" "$@"
}
as_builder() { r=$1; shift; inroot "$r" setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }

# ---- 2. build with only Build-Depends -----------------------------------
t0=$(date +%s)
broot=$work/build-root
fresh "$broot"
cp "$tarball" "$broot/build/moebench_$version.orig.tar.gz"
tar -xzf "$tarball" -C "$broot/build"
chown -R 1000:1000 "$broot/build"
echo "== build chroot: apt-get build-dep (build-essential + Build-Depends)"
{ inroot "$broot" apt-get update -q && inroot "$broot" apt-get build-dep -y -q "/build/$base"; } \
  >"$work/build-dep.log" 2>&1 || { tail -30 "$work/build-dep.log"; die "apt-get build-dep failed"; }
echo "installed: $(inroot "$broot" dpkg-query -W -f '${Status}\n' | grep -c ' installed$') packages ($(since "$t0"));" \
  "Build-Depends: $(inroot "$broot" sh -c "cd /build/$base && dpkg-checkbuilddeps" >/dev/null 2>&1 && echo satisfied)"
opts=${DEB_BUILD_OPTIONS:-}
case " $opts " in *" parallel="*) ;; *) opts="${opts:+$opts }parallel=2" ;; esac
echo "== dpkg-buildpackage -us -uc as builder (DEB_BUILD_OPTIONS='$opts')"
as_builder "$broot" sh -c "cd /build/$base && DEB_BUILD_OPTIONS='$opts' dpkg-buildpackage -us -uc" \
  >"$work/build.log" 2>&1 || { tail -60 "$work/build.log"; die "dpkg-buildpackage failed in the clean chroot (log: $work/build.log)"; }
grep -E '^# (PASS|FAIL|SKIP|ERROR|TOTAL)' "$work/build.log" || true
mkdir -p "$work/debs"
cp "$broot"/build/*.deb "$broot"/build/*.dsc "$broot"/build/*.changes "$broot"/build/*.buildinfo \
  "$broot"/build/*.debian.tar.* "$broot"/build/*.orig.tar.* "$work/debs/"
echo "built: $(cd "$work/debs" && ls ./*.deb | sed 's|^\./||' | tr '\n' ' ')($(since "$t0"))"
rm -rf "$broot"

# ---- 3. install in a second clean chroot, autopkgtest --------------------
t0=$(date +%s)
troot=$work/test-root
fresh "$troot"
mkdir -p "$troot/debs"
cp "$work"/debs/*.deb "$troot/debs/"
tar -xzf "$tarball" -C "$troot/build"
echo "== test chroot: apt-get install the built packages (no Recommends), autopkgtest"
{ inroot "$troot" apt-get update -q &&
  inroot "$troot" sh -c "apt-get install -y -q /debs/${libpkg}_*.deb /debs/libmoe-dev_*.deb /debs/moebench_*.deb"
} >"$work/install.log" 2>&1 || { tail -30 "$work/install.log"; die "installing the built packages failed"; }
echo "installed: $(inroot "$troot" dpkg-query -W "$libpkg" libmoe-dev moebench | tr '\t\n' '= ')"
# autopkgtest itself (python3 and apt tools; no compiler): the tests' own
# Depends are what it installs next.
inroot "$troot" apt-get install -y -q autopkgtest >>"$work/install.log" 2>&1 ||
  { tail -30 "$work/install.log"; die "installing autopkgtest failed"; }
st=0
inroot "$troot" autopkgtest --no-built-binaries --output-dir /build/autopkgtest-out \
  "/build/$base" -- null >"$work/autopkgtest.log" 2>&1 || st=$?
cp -r "$troot/build/autopkgtest-out" "$work/" 2>/dev/null || true
sed -n '/^@@@@@@@@* summary/,$p' "$work/autopkgtest.log"
echo "autopkgtest: exit $st ($(since "$t0"); log: $work/autopkgtest.log)"
rm -rf "$troot"
echo "== clean-chroot build and tests: $( [ $st -eq 0 ] && echo PASS || echo FAIL) in $(since "$t_all")"
exit $st
