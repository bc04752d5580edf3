#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# pkg-install.sh — libmoe as a distribution installs it and a C programmer
# uses it: `make install DESTDIR=tmp`, then the installed tree (headers
# under include/moe/, libmoe.so.N, the pkg-config module, the manuals, the
# moebench program), every installed header compiled on its own (C and
# C++), and examples/layer-demo.c (the EXAMPLE of libmoe(3)) built against
# the DESTDIR copy with the flags of `pkg-config libmoe` and run.
# Works in `make distcheck` too: only the build and temporary directories
# are written. Environment from mk/t.mk (MOE_MAKE, MOE_LIBDIR, ...).
set -u
top=${top_srcdir:-.}
build=${top_builddir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pkg-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"
diag() { sed 's/^/# /' "$@"; }
has() { grep -F -q -- "$2" "$1"; } # has FILE TEXT

for v in MOE_MAKE MOE_CC MOE_PKG_CONFIG MOE_BINDIR MOE_LIBDIR MOE_INCLUDEDIR \
  MOE_PKGCONFIGDIR MOE_MANDIR MOE_HEADERS MOE_MANS; do
  eval "set_=\${$v+x}"
  if [ -z "$set_" ]; then echo "1..0 # SKIP $v not set (run through make check)"; exit 0; fi
done
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$build/config.h")

# ---- install -----------------------------------------------------------
# The test runs under make: drop the parent's MAKEFLAGS (its jobserver is
# not ours) and install quietly into the temporary root.
dest=$tmp/root
(unset MAKEFLAGS MFLAGS MAKELEVEL
 $MOE_MAKE -s -C "$build" install DESTDIR="$dest") >"$tmp/install.log" 2>&1
rc=$?
ok $rc "make install DESTDIR=... succeeds"
[ $rc -eq 0 ] || { tail -30 "$tmp/install.log" | diag; echo "1..$n"; exit 1; }
lib=$dest$MOE_LIBDIR
inc=$dest$MOE_INCLUDEDIR

# ---- headers -----------------------------------------------------------
miss=
for h in $MOE_HEADERS; do
  [ -f "$inc/$(basename "$h")" ] || miss="$miss $h"
done
[ -z "$miss" ]; ok $? "every moeinclude_HEADERS file is installed under include/moe/${miss:+ (missing:$miss)}"
unlisted=
for h in "$top"/lib/moe/*.h; do
  case " $MOE_HEADERS " in *" lib/moe/$(basename "$h") "*) ;; *) unlisted="$unlisted $(basename "$h")" ;; esac
done
[ -z "$unlisted" ]; ok $? "every lib/moe/*.h is in moeinclude_HEADERS${unlisted:+ (not listed:$unlisted)}"
[ ! -e "$inc/internal.h" ] && [ -z "$(ls "$dest$MOE_INCLUDEDIR/.." | grep -v '^moe$')" ]
ok $? "nothing but moe/ is installed in includedir"

# Each header alone, so a program may include just the one it needs.
bad=
for h in "$inc"/*.h; do
  b=$(basename "$h")
  printf '#include <moe/%s>\nint main(void) { return 0; }\n' "$b" >"$tmp/h.c"
  $MOE_CC -std=c11 -Wall -Wextra -pedantic -Werror -c -I"$inc/.." "$tmp/h.c" -o "$tmp/h.o" \
    >>"$tmp/hdr.log" 2>&1 || bad="$bad $b"
done
[ -z "$bad" ]; ok $? "each installed header compiles alone as C11 with -pedantic${bad:+ (failed:$bad)}"
[ -z "$bad" ] || diag "$tmp/hdr.log"
if command -v c++ >/dev/null 2>&1; then
  bad=
  for h in "$inc"/*.h; do
    b=$(basename "$h")
    printf '#include <moe/%s>\nint main() { return 0; }\n' "$b" >"$tmp/h.cc"
    c++ -Wall -Wextra -Werror -c -I"$inc/.." "$tmp/h.cc" -o "$tmp/h.o" >>"$tmp/hdrxx.log" 2>&1 ||
      bad="$bad $b"
  done
  [ -z "$bad" ]; ok $? "each installed header compiles alone as C++${bad:+ (failed:$bad)}"
  [ -z "$bad" ] || diag "$tmp/hdrxx.log"
else
  n=$((n + 1)); echo "ok $n # SKIP no C++ compiler"
fi

# ---- the library ---------------------------------------------------------
# soname libmoe.so.(C - A) for -version-info C:R:A (configure.ac)
IFS=: read -r lt_c lt_r lt_a <<LT
${MOE_LT_VERSION:-1:0:0}
LT
so=libmoe.so.$((lt_c - lt_a))
[ -f "$lib/$so" ] && [ -f "$lib/libmoe.so" ]
ok $? "libmoe.so and $so are installed in libdir"
if command -v readelf >/dev/null 2>&1; then
  readelf -d "$lib/libmoe.so" >"$tmp/dyn" 2>&1
  has "$tmp/dyn" "Library soname: [$so]"; ok $? "installed soname is $so"
  ! grep -q 'NEEDED.*libyaml' "$tmp/dyn"
  ok $? "$so does not link libyaml (only the harness reads YAML)"
  ! grep -E -q '\((RPATH|RUNPATH)\)' "$tmp/dyn"; ok $? "installed libmoe.so carries no RPATH/RUNPATH"
else
  n=$((n + 1)); echo "ok $n # SKIP no readelf"
  n=$((n + 1)); echo "ok $n # SKIP no readelf"
fi

# ---- pkg-config ----------------------------------------------------------
pcdir=$dest$MOE_PKGCONFIGDIR
[ -f "$pcdir/libmoe.pc" ]; ok $? "libmoe.pc is installed in pkgconfigdir"
pc() { PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest $MOE_PKG_CONFIG "$@"; }
[ "$(pc --modversion libmoe 2>&1)" = "$version" ]
ok $? "pkg-config --modversion libmoe is $version"
pc --cflags libmoe >"$tmp/cflags" 2>&1 && has "$tmp/cflags" "-I$dest$(dirname "$MOE_INCLUDEDIR")"
ok $? "pkg-config --cflags points at the installed includedir"
pc --libs libmoe >"$tmp/libs" 2>&1 && has "$tmp/libs" "-L$lib " && has "$tmp/libs" "-lmoe" &&
  has "$tmp/libs" "-lgsl"
ok $? "pkg-config --libs gives -L libdir -lmoe and GSL (gsl_rng is in the API)"
# What libmoe.so loads by itself stays out of its users' flags: the BLAS
# and the rest are private (--static), no dependency's -D reaches them, and
# libyaml is no dependency at all.
! grep -E -q -- '-lopenblas|-lblas|-lcblas|-lgslcblas|-lsleef|-lutf8proc|-lz( |$)' "$tmp/libs"
ok $? "pkg-config --libs names no private dependency: $(cat "$tmp/libs")"
pc --cflags libmoe >"$tmp/cflags" 2>&1 && ! grep -q -- ' -D\|^-D' "$tmp/cflags"
ok $? "pkg-config --cflags defines no macro: $(cat "$tmp/cflags")"
pc --static --libs libmoe >"$tmp/slibs" 2>&1 && ! grep -q yaml "$tmp/slibs" "$pcdir/libmoe.pc" &&
  has "$tmp/slibs" "-lsleef" && has "$tmp/slibs" "-lutf8proc" && has "$tmp/slibs" "-lz"
ok $? "pkg-config --static --libs has libmoe's own dependencies and no libyaml"
if grep -q '^#define HAVE_OPENBLAS 1' "$build/config.h"; then
  awk '{ for (i = 1; i <= NF; i++) { if ($i == "-lopenblas" && !b) b = i; if ($i == "-lgslcblas" && !g) g = i } }
       END { exit !(b && (!g || b < g)) }' "$tmp/slibs"
  ok $? "pkg-config --static --libs lists OpenBLAS before GSL's reference CBLAS"
fi

# ---- manuals and the program ----------------------------------------------
miss=
for m in $MOE_MANS; do
  b=$(basename "$m"); sec=${b##*.}
  [ -f "$dest$MOE_MANDIR/man$sec/$b" ] || miss="$miss $b"
done
[ -z "$miss" ]; ok $? "every manual is installed in mandir/manN${miss:+ (missing:$miss)}"
[ -f "$dest$MOE_MANDIR/man3/libmoe.3" ]; ok $? "libmoe.3 is in man3"
LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$dest$MOE_BINDIR/moebench" --version \
  >"$tmp/v" 2>&1
[ $? -eq 0 ] && [ "$(cat "$tmp/v")" = "moebench $version (libmoe $version)" ]
ok $? "installed moebench --version: $(cat "$tmp/v")"

# ---- the example, against the installed library ----------------------------
# Explicit -I/-L for the DESTDIR copy first; the module's own flags (without
# the sysroot, so GSL and the BLAS are found where they really are) after.
flags=$($MOE_PKG_CONFIG --cflags --libs "$pcdir/libmoe.pc" 2>"$tmp/pcerr")
rc=$?
[ $rc -eq 0 ] || diag "$tmp/pcerr"
# A sanitized build (build-aux/sanitize.sh) installs a libmoe.so that needs
# the sanitizer runtimes: a program linking it must be built with the same
# -fsanitize flags, as a user of such a build would.
san=
for f in ${MOE_BUILD_CFLAGS:-}; do
  case $f in -fsanitize=*|-fno-sanitize-recover=*) san="$san $f" ;; esac
done
$MOE_CC -std=c11 -Wall -Wextra $san -I"$inc/.." -L"$lib" "$top/examples/layer-demo.c" $flags \
  -o "$tmp/demo" >"$tmp/cc.log" 2>&1
[ $? -eq 0 ] && [ ! -s "$tmp/cc.log" ]
ok $? "layer-demo.c builds against the install without warnings: cc ... \$(pkg-config --cflags --libs libmoe)"
diag "$tmp/cc.log"
run() { LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"; }
if command -v ldd >/dev/null 2>&1; then
  run ldd "$tmp/demo" >"$tmp/ldd" 2>&1
  grep -q -F "$so => $lib/$so" "$tmp/ldd"
  ok $? "the example loads the DESTDIR $so"
else
  n=$((n + 1)); echo "ok $n # SKIP no ldd"
fi
run "$tmp/demo" >"$tmp/out" 2>"$tmp/err"
ok $? "the example runs"
diag "$tmp/err"
[ "$(sed -n 1p "$tmp/out")" = "libmoe $version" ]; ok $? "it reports moe_version() = $version"
has "$tmp/out" "K = E + 1: invalid argument: gate: K=5 outside [1, E=4]"
ok $? "an invalid configuration is refused with a message"
# mse: step 0 A, step 29 B: training must at least halve the loss.
awk '/^mse:/ { a = $4 + 0; b = $7 + 0; found = 1 }
     END { exit !(found && a > 0 && b < a / 2) }' "$tmp/out"
ok $? "AdamW lowers the MSE: $(grep '^mse:' "$tmp/out")"
# Routing record: K = 2 distinct experts in [0, 4) per token, weights
# positive and summing to the route scale 2.5 (normalized sigmoid x 2.5),
# the load equal to the count of each expert over the 8 tokens, and Jain's
# index (sum l)^2 / (E sum l^2) of that load.
awk -v E=4 -v K=2 -v T=8 '
  /^token / {
    nt++; s = 0
    for (k = 0; k < K; k++) {
      e = $(4 + 4 * k); w = $(6 + 4 * k)
      if (e < 0 || e >= E || w <= 0) bad = "expert or weight out of range: " $0
      if (k > 0 && e == prev) bad = "repeated expert: " $0
      prev = e; cnt[e]++; s += w
    }
    if (s < 2.5 - 2e-4 || s > 2.5 + 2e-4) bad = "weights do not sum to 2.5: " $0
  }
  /^load:/ { for (e = 0; e < E; e++) { l[e] = $(2 + e); sl += l[e]; sq += l[e] * l[e] } hl = 1 }
  /^Jain fairness/ { j = $3 + 0; hj = 1 }
  END {
    if (nt != T) bad = "tokens: " nt
    if (!hl || !hj) bad = "no load or Jain line"
    for (e = 0; e < E; e++) if (l[e] != cnt[e] + 0) bad = "load of expert " e " is " l[e] ", counted " cnt[e] + 0
    if (sl != T * K) bad = "load sums to " sl
    if (hl && hj) { jj = sl * sl / (E * sq); if (j < jj - 1e-4 || j > jj + 1e-4) bad = "Jain " j " != " jj }
    if (bad != "") { print bad; exit 1 }
  }' "$tmp/out" >"$tmp/why"
ok $? "routing record: 2 distinct experts per token, weights sum to 2.5, load and Jain agree"
diag "$tmp/why"
run "$tmp/demo" >"$tmp/out2" 2>&1 && cmp -s "$tmp/out" "$tmp/out2"
ok $? "a second run prints the same bits"
if [ -x "$build/examples/layer-demo" ]; then
  "$build/examples/layer-demo" >"$tmp/out3" 2>&1 && cmp -s "$tmp/out" "$tmp/out3"
  ok $? "the installed build prints exactly what the in-tree build prints"
  cmp -s "$tmp/out" "$tmp/out3" || diff "$tmp/out3" "$tmp/out" | diag
else
  n=$((n + 1)); echo "not ok $n - the in-tree examples/layer-demo was not built"; failed=$((failed + 1))
fi

# Which CBLAS serves libmoe's GEMMs in a pkg-config-linked program. It is
# decided by the order of libmoe's own NEEDED entries (mk/lib.mk's
# lib_libmoe_la_LIBADD): whichever CBLAS the dynamic linker meets first
# wins, and GSL brings its slow reference one.
if grep -q '^#define HAVE_OPENBLAS 1' "$build/config.h"; then
  LD_DEBUG=bindings run "$tmp/demo" >/dev/null 2>"$tmp/bind"
  b=$(grep 'libmoe\.so\.0.*cblas_sgemm' "$tmp/bind" | head -1 | sed -n 's/.* to \([^ ]*\) .*/\1/p')
  n=$((n + 1))
  case $b in
  *openblas*) echo "ok $n - libmoe's cblas_sgemm binds to OpenBLAS ($b)" ;;
  "") echo "ok $n # SKIP LD_DEBUG gave no binding for cblas_sgemm" ;;
  *) echo "not ok $n - libmoe's cblas_sgemm binds to $b, not OpenBLAS (list \$(BLAS_LIBS) before \$(GSL_LIBS))"; failed=$((failed + 1)) ;;
  esac
fi

echo "1..$n"
[ $failed -eq 0 ]
