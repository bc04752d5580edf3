#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# threads-cores.sh — t/test_threads (1, 2, 3 and 7 threads give the bits of
# one thread: layer, LM, vision) on every OpenBLAS kernel this CPU can run:
# Prescott, Sandybridge (AVX), Haswell (AVX2 + FMA), SkylakeX (AVX-512).
# The kernels differ in how a product's result depends on its shape
# (SkylakeX's direct and small-matrix paths are chosen by the call's size),
# so a partition of products that holds on one kernel can fail on another:
# it did, on SkylakeX, before par_gemm's blocks stopped depending on the
# thread count. OPENBLAS_CORETYPE from the environment is overridden here.
: "${srcdir:=.}"
. "$srcdir/t/tap.sh"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
cores=Prescott
has avx && cores="$cores Sandybridge"
has avx2 && has fma && cores="$cores Haswell"
has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd && cores="$cores SkylakeX"
for c in $cores; do
  OPENBLAS_CORETYPE=$c ./t/test_threads >"t/threads-cores.$c.out" 2>&1
  rc=$?
  nf=$(grep -c '^not ok' "t/threads-cores.$c.out")
  [ $rc = 0 ] && [ "$nf" = 0 ] && grep -q '^1\.\.' "t/threads-cores.$c.out"
  ok $? "test_threads on OpenBLAS's $c kernels (rc $rc, $nf not ok)"
  [ "$nf" = 0 ] || grep '^not ok' "t/threads-cores.$c.out" | head -5 | sed 's/^/# /'
  rm -f "t/threads-cores.$c.out"
done
echo "1..$n"
[ $failed -eq 0 ]
