#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# symbols.sh — the ABI libmoe.so exports: exactly the functions the
# installed headers declare (libtool's -export-symbols lib/libmoe.sym, a
# list mk/lib.mk makes from those headers), all named moe_; not the double
# twins and kernels of lib/nn/private.h nor the moei_ helpers; a few key
# entry points; and the soname that MOE_LT_VERSION (configure.ac) implies.
set -u
build=${top_builddir:-.}
top=${top_srcdir:-.}
so=$build/lib/.libs/libmoe.so
tmp=$(mktemp -d "${TMPDIR:-/tmp}/symbols.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"
if ! command -v nm >/dev/null 2>&1; then echo "1..0 # SKIP nm (binutils) not found"; exit 0; fi
if [ ! -f "$so" ]; then echo "1..0 # SKIP no shared library at $so"; exit 0; fi

# Defined dynamic symbols: "ADDRESS TYPE NAME"; lower-case types other
# than w/v/i would be local and are not in the dynamic table anyway.
nm -D --defined-only "$so" >"$tmp/nm" 2>&1
ok $? "nm -D --defined-only $so"
awk 'NF == 3 { print $3 }' "$tmp/nm" | sort -u >"$tmp/exported"
count=$(wc -l <"$tmp/exported")
[ "$count" -ge 100 ]; ok $? "libmoe.so exports $count symbols"
grep -v '^moe_' "$tmp/exported" >"$tmp/foreign"
[ ! -s "$tmp/foreign" ]; ok $? "every exported symbol starts with moe_"
sed 's/^/# not moe_: /' "$tmp/foreign"
awk 'NF == 3 && $2 !~ /^[TDBRVWi]$/' "$tmp/nm" >"$tmp/odd"
[ ! -s "$tmp/odd" ]; ok $? "exported symbols are functions and data (types T D B R V W i)"
sed 's/^/# /' "$tmp/odd"

for s in moe_layer_forward moe_layer_backward moe_gate_preset \
  moe_idx_read moe_metrics_jain moe_seed_derive moe_rng_alloc moe_last_error moe_version; do
  grep -q "^[0-9a-f]* T $s\$" "$tmp/nm"; ok $? "$s is an exported function"
done

# What is in the library but not its API stays hidden: a moei_ helper, a
# double twin and a raw kernel (lib/nn/private.h).
nm --defined-only "$so" 2>/dev/null >"$tmp/all"
for s in moei_expert_fwd moe_layer_forward_f64 moe_attention_forward; do
  grep -q " $s\$" "$tmp/all" && ! grep -q "^$s\$" "$tmp/exported"
  ok $? "the internal $s is defined but not exported"
done
grep -q '_f64$' "$tmp/exported" && ! grep -v '^moe_rng_' "$tmp/exported" | grep -q '_f64$'
ok $? "no double twin is exported (only moe_rng_*_f64, which are not twins)"

# Every function declared in an installed header is exported (comments
# stripped; a declaration is an identifier followed by '(').
cat "$top"/lib/moe/*.h | tr '\n' ' ' | sed -E 's:/\*([^*]|\*+[^*/])*\*+/: :g' |
  grep -oE 'moe_[A-Za-z0-9_]* *\(' | sed 's/ *($//' | sort -u >"$tmp/declared"
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
[ -s "$tmp/declared" ] && [ ! -s "$tmp/missing" ]
ok $? "all $(wc -l <"$tmp/declared") functions declared in lib/moe/*.h are exported"
sed 's/^/# declared, not exported: /' "$tmp/missing"
# Exported but declared in no installed header: ABI nobody can use.
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/undeclared"
[ ! -s "$tmp/undeclared" ]
ok $? "every exported symbol is declared in lib/moe/*.h"
sed 's/^/# exported but in no public header: /' "$tmp/undeclared"

# soname = libmoe.so.(C - A) for MOE_LT_VERSION = C:R:A; file libmoe.so.(C-A).A.R
if [ -n "${MOE_LT_VERSION:-}" ] && command -v readelf >/dev/null 2>&1; then
  IFS=: read -r c r a <<LT
$MOE_LT_VERSION
LT
  major=$((c - a))
  readelf -d "$so" >"$tmp/dyn" 2>&1
  grep -qF "Library soname: [libmoe.so.$major]" "$tmp/dyn"
  ok $? "soname is libmoe.so.$major for -version-info $MOE_LT_VERSION"
  [ -f "$build/lib/.libs/libmoe.so.$major.$a.$r" ]
  ok $? "the library file is libmoe.so.$major.$a.$r"
  # BLAS order: the CBLAS that comes first in libmoe's NEEDED list serves
  # its cblas_* calls; GSL's reference CBLAS must not come first.
  grep NEEDED "$tmp/dyn" | sed -n 's/.*\[\(.*\)\]/\1/p' | tr '\n' ' ' >"$tmp/needed"
  echo "# NEEDED: $(cat "$tmp/needed")"
  case " $(cat "$tmp/needed")" in
  *" libgslcblas"*"blas"*) false ;;
  *) true ;;
  esac
  ok $? "no reference CBLAS (libgslcblas) ahead of the optimized BLAS in NEEDED"
else
  n=$((n + 1)); echo "ok $n # SKIP no MOE_LT_VERSION or readelf"
  n=$((n + 1)); echo "ok $n # SKIP no MOE_LT_VERSION or readelf"
fi

echo "1..$n"
[ $failed -eq 0 ]
