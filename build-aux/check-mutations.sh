#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# check-mutations.sh — does the test suite catch deliberate bugs?
#
# Usage: build-aux/check-mutations.sh SRCDIR [LIST] [ID...]
#
# Each record of LIST (default SRCDIR/t/mutations.list) names a source file,
# an exact piece of it, what to put instead, and the tests that must then
# fail.  The script copies the source tree to a scratch directory, builds
# it once, and for each mutation: checks the piece occurs exactly once
# (else the record is STALE: the code moved on and the list must follow),
# applies it, rebuilds (a mutant that does not compile is INVALID: a
# mutation must be a bug the compiler accepts), runs the named tests, and
# restores the file.  A mutant whose tests all pass SURVIVED.
#
# It prints one line per mutation and a score, and exits non-zero if any
# mutation survived, was stale or invalid.  Only the named tests and the
# programs they need are rebuilt, so a mutation costs seconds, not a full
# `make check`.  MAKEFLAGS (e.g. -j2) pass through; CONFIGURE_FLAGS go to
# ./configure.
#
# MUTATION_JOBS=N (default 1) runs the records in N shards at once, each in
# a scratch tree of its own, configured and built on its own (a built tree
# is not copied: libtool's wrapper scripts name the tree they were linked
# in).  The i-th record run goes to shard i mod N; the lines are printed in
# the list's order and the score counts every shard.  A mutation's rebuild
# and tests are mostly serial, so N shards at -j1 keep N cores busier than
# one loop at -jN (12 records on 2 idle cores: 127 s of loop at -j2, 103 s
# in 2 shards; each shard's build 86 s against 54 s at -j2).
#
# Record format (blank lines and lines starting with # between records are
# ignored; `from:` and `to:` take the rest of the line after one space, and
# may be repeated to match several consecutive lines):
#   @ ID  what the bug is
#   file: lib/nn/gate_impl.h
#   tests: t/test_gate t/test_golden
#   from: <exact text>
#   to: <replacement text>
set -u
src=$(cd "${1:?usage: check-mutations.sh SRCDIR [LIST] [ID...]}" && pwd)
list=${2:-$src/t/mutations.list}
[ $# -ge 2 ] && shift 2 || shift $#
only="$*"
[ -r "$list" ] || { echo "check-mutations: cannot read $list" >&2; exit 2; }
command -v perl >/dev/null || { echo "check-mutations: needs perl" >&2; exit 2; }

jobs=${MUTATION_JOBS:-1}
case $jobs in ''|*[!0-9]*|0) echo "check-mutations: MUTATION_JOBS must be a positive integer, not '$jobs'" >&2; exit 2 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/moe-mut.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# The sharded run: N copies of this script (MUT_SHARD=i/N), each writing
# one result line per record to $work/res/NNN, then the lines in order.
if [ "$jobs" -gt 1 ] && [ -z "${MUT_SHARD:-}" ]; then
  t0=$(date +%s)
  mkdir "$work/res"
  echo "check-mutations: $jobs shards, each building its own scratch copy"
  i=0; pids=
  while [ "$i" -lt "$jobs" ]; do
    MUT_SHARD=$i/$jobs MUT_RES=$work/res sh "$0" "$src" "$list" $only >"$work/shard$i.log" 2>&1 &
    pids="$pids $!"; i=$((i + 1))
  done
  rcs=0; i=0
  for pid in $pids; do
    wait "$pid"; rc=$?
    # exit 2 is a shard that could not start (its tree does not build)
    if [ "$rc" -ge 2 ]; then echo "check-mutations: shard $i failed (exit $rc):"; tail -30 "$work/shard$i.log"; rcs=2; fi
    i=$((i + 1))
  done
  for i in $(seq 0 $((jobs - 1))); do sed -n 's/^check-mutations: \(shard\|built\) .*/  &/p' "$work/shard$i.log"; done
  [ "$rcs" -eq 2 ] && exit 2
  killed=0 survived=0 bad=0 total=0
  : >"$work/notkilled"
  for r in "$work"/res/*; do
    [ -e "$r" ] || continue
    cat "$r"
    total=$((total + 1))
    case $(head -1 "$r") in
      killed*) killed=$((killed + 1)) ;;
      SURVIVED*) survived=$((survived + 1)); head -1 "$r" >>"$work/notkilled" ;;
      *) bad=$((bad + 1)); head -1 "$r" >>"$work/notkilled" ;;
    esac
  done
  [ -s "$work/notkilled" ] && { echo "check-mutations: not killed:"; cat "$work/notkilled"; }
  echo "check-mutations: $killed of $total killed, $survived survived, $bad stale/invalid/bad ($(( $(date +%s) - t0 )) s, $jobs shards)"
  [ "$survived" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$total" -gt 0 ]
  exit
fi
shard=${MUT_SHARD:-0/1}
shard_i=${shard%/*} shard_n=${shard#*/}
tree=$work/tree
mkdir -p "$tree"

# The tree as the developer has it (tracked files, working copy), or the
# whole directory outside git (a tarball).
if [ -e "$src/.git" ] && command -v git >/dev/null; then
  (cd "$src" && git ls-files -z | xargs -0 tar cf -) | (cd "$tree" && tar xf -)
else
  (cd "$src" && tar cf - --exclude=autom4te.cache .) | (cd "$tree" && tar xf -)
fi

t0=$(date +%s)
echo "check-mutations: building a scratch copy"
if ! (cd "$tree" && { [ -x configure ] || autoreconf -fi; } && ./configure -q ${CONFIGURE_FLAGS:-} &&
      make -s all) >"$work/build.log" 2>&1; then
  tail -30 "$work/build.log"; echo "check-mutations: the unmutated tree does not build" >&2; exit 2
fi
echo "check-mutations: built in $(( $(date +%s) - t0 )) s"

# Split the list into one file per record: $work/m/NNN with key: value lines.
mkdir "$work/m"
awk -v dir="$work/m" '
  /^@ / { n++; f = sprintf("%s/%03d", dir, n); sub(/^@ +/, ""); print "id: " $0 > f; next }
  /^#/ || /^[ \t]*$/ { next }
  n { print > f }
' "$list"

field() { sed -n "s/^$1: //p" "$2"; }

# One result line per record (and the lines under it), to stdout and, in a
# shard, to $MUT_RES/NNN.
report() {
  if [ -n "${MUT_RES:-}" ]; then printf '%s\n' "$1" | tee -a "$MUT_RES/$recn"; else printf '%s\n' "$1"; fi
}

killed=0 survived=0 bad=0 total=0 recno=0
for rec in "$work"/m/*; do
  recn=$(basename "$rec")
  id=$(field id "$rec" | awk '{print $1}')
  what=$(field id "$rec" | sed 's/^[^ ]* *//')
  if [ -n "$only" ]; then case " $only " in *" $id "*) ;; *) continue ;; esac; fi
  recno=$((recno + 1))
  [ $((recno % shard_n)) -eq "$shard_i" ] || continue
  file=$(field file "$rec"); tests=$(field tests "$rec")
  field from "$rec" >"$work/from"; field to "$rec" >"$work/to"
  total=$((total + 1))
  if [ -z "$file" ] || [ -z "$tests" ] || [ ! -s "$work/from" ] || [ ! -f "$tree/$file" ]; then
    report "BAD      $id: incomplete record or no such file '$file'" | tee -a "$work/notkilled"; bad=$((bad + 1)); continue
  fi
  cp "$tree/$file" "$work/orig"
  count=$(FROM="$work/from" TO="$work/to" perl -0777 -e '
    local $/; open F, $ENV{FROM}; my $f = <F>; chomp $f; open T, $ENV{TO}; my $t = <T>; chomp $t;
    my $s = <STDIN>; my $n = () = $s =~ /\Q$f\E/g; print STDERR $n;
    $s =~ s/\Q$f\E/$t/ if $n == 1; print $s;' <"$work/orig" 2>&1 >"$work/mutant")
  if [ "$count" != 1 ]; then
    report "STALE    $id ($file): the piece occurs $count times; update t/mutations.list" | tee -a "$work/notkilled"
    bad=$((bad + 1)); continue
  fi
  cp "$work/mutant" "$tree/$file"; touch "$tree/$file"
  progs=$(for t in $tests; do case $t in *.sh) ;; *) printf '%s ' "$t" ;; esac; done)
  # `all` and the test programs in two runs: `all` recurses (BUILT_SOURCES),
  # and under -j a recursive `all` next to the programs' own rules would
  # compile the same objects twice at once.
  if ! (cd "$tree" && make -s all && { [ -z "$progs" ] || make -s $progs; }) >"$work/mbuild.log" 2>&1; then
    report "INVALID  $id ($file): the mutant does not compile" | tee -a "$work/notkilled"
    tail -5 "$work/mbuild.log" | while IFS= read -r l; do report "    $l"; done
    bad=$((bad + 1))
  elif (cd "$tree" && make -s check TESTS="$tests" check_PROGRAMS="$progs") >"$work/mtest.log" 2>&1; then
    report "SURVIVED $id ($file): $what [tests: $tests]" | tee -a "$work/notkilled"; survived=$((survived + 1))
  else
    report "killed   $id ($file): $what"; killed=$((killed + 1))
  fi
  cp "$work/orig" "$tree/$file"; touch "$tree/$file"
done
# Leave the scratch tree consistent (not needed, but a rerun of one id
# after a restore must not link a stale mutant).
(cd "$tree" && make -s all) >/dev/null 2>&1

# the ones to act on again, last (CI shows the tail of the output)
[ -s "$work/notkilled" ] && { echo "check-mutations: not killed:"; cat "$work/notkilled"; }
if [ "$shard_n" -gt 1 ]; then
  echo "check-mutations: shard $shard: $killed of $total killed ($(( $(date +%s) - t0 )) s)"
  [ "$survived" -eq 0 ] && [ "$bad" -eq 0 ]; exit
fi
echo "check-mutations: $killed of $total killed, $survived survived, $bad stale/invalid/bad ($(( $(date +%s) - t0 )) s)"
[ "$survived" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$total" -gt 0 ]
