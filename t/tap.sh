# SPDX-License-Identifier: GPL-3.0-or-later
# tap.sh — TAP helpers for the shell tests, sourced as `. "$srcdir/t/tap.sh"`
# (the shell counterpart of t/tap.h). `ok STATUS NAME` prints one result;
# a script ends with `echo "1..$n"; [ $failed -eq 0 ]`, so any failing
# check fails the test.
n=0 failed=0
ok() { # ok STATUS NAME
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
