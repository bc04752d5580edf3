#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# flake-check.sh [RUNS] [MAKE-ARGS...]: run `make check` RUNS times (default
# 10) in the current build tree while two busy loops load the CPU, and count
# the failing runs. A test that fails here only sometimes is a flaky test:
# a red `make check` must mean a real failure. Exit 0 iff no run failed.
# Run it from the top of a configured build tree, e.g. `nice -n 10 sh
# build-aux/flake-check.sh 10 -j2`. The logs of failing runs are kept.
set -u
runs=${1:-10}
[ $# -gt 0 ] && shift
case $runs in ''|*[!0-9]*) echo "usage: $0 [RUNS] [MAKE-ARGS...]" >&2; exit 2 ;; esac
[ -f Makefile ] || { echo "$0: no Makefile here: run it in a configured build tree" >&2; exit 2; }
logdir=$(mktemp -d "${TMPDIR:-/tmp}/flake-check.XXXXXX") || exit 1

load_pids=
stop_load() { for p in $load_pids; do kill "$p" 2> /dev/null; done; load_pids=; }
trap 'stop_load' EXIT
trap 'stop_load; exit 130' INT TERM
for i in 1 2; do
  ( trap - INT TERM; while :; do :; done ) &
  load_pids="$load_pids $!"
done

fails=0
i=1
while [ "$i" -le "$runs" ]; do
  t0=$(date +%s)
  if make check "$@" > "$logdir/run$i.log" 2>&1; then
    res=pass
    rm -f "$logdir/run$i.log"
  else
    res=FAIL
    fails=$((fails + 1))
    grep -h '^not ok\|^ERROR:\|^FAIL:' $(find . -name '*.log' -newer "$logdir" 2> /dev/null) 2> /dev/null |
      sed "s/^/  run $i: /" | head -20
  fi
  echo "run $i/$runs: $res ($(( $(date +%s) - t0 )) s)"
  i=$((i + 1))
done
stop_load
if [ "$fails" = 0 ]; then
  rmdir "$logdir" 2> /dev/null
  echo "flake-check: 0 of $runs make check runs failed under load (2 busy loops)"
  exit 0
fi
echo "flake-check: $fails of $runs make check runs failed under load (2 busy loops); logs in $logdir"
exit 1
