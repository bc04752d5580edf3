#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# make check in an ASan+UBSan build, apart from the normal one:
#   sh build-aux/sanitize.sh [SCRATCH_DIR]
# The sources are copied with `make distdir` (an in-tree configured source
# directory cannot host a VPATH build) into SCRATCH_DIR (default: a fresh
# temporary directory), configured there out of tree with
#   gcc -fsanitize=address,undefined -fno-omit-frame-pointer
# and checked. Any sanitizer report fails the test that triggered it:
# UBSan halts on the first error, LeakSanitizer is on.
# Run from a configured build directory (CI: the source tree after ./configure).
set -eu
scratch=${1:-$(mktemp -d "${TMPDIR:-/tmp}/moe-san.XXXXXX")}
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
rm -rf "$scratch/src" "$scratch/build"
make -s distdir distdir="$scratch/src" >/dev/null
mkdir "$scratch/build"
cd "$scratch/build"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
../src/configure -q CC="${CC:-gcc}" CFLAGS="-O1 -g $san" LDFLAGS="$san"
# allocator_may_return_null: the huge-size tests (t/test_contracts) expect
# malloc to fail with NULL, as it does without ASan.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS
make -s -j"${JOBS:-2}" >/dev/null
status=0
make -s -j"${JOBS:-2}" check || status=$?
# a sanitizer report in any test log, even from a test that tolerated it
if grep -l -E '^(==[0-9]+==ERROR: |SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error:' \
     $(find t examples -name '*.log' 2>/dev/null) /dev/null; then
  echo "sanitizer reports in the logs above"; status=1
fi
grep -h '^# \(TOTAL\|PASS\|SKIP\|FAIL\|ERROR\)' test-suite.log || true
[ "$status" -eq 0 ] && echo "sanitized make check: ok ($scratch)"
exit "$status"
