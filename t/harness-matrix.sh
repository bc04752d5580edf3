#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Matrix parsing and expansion: golden expansions, every validation error
# with its exact `file:line:col: message`, id stability under reordering,
# --help/--version on every verb.
: "${MOEBENCH:?}" "${srcdir:=.}"
d="$srcdir/t/data/matrix"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Errors are reported relative to the path given, so run from the data dir.
for f in "$d"/err-*.yaml; do
  b=$(basename "$f" .yaml)
  (cd "$d" && "$MOEBENCH" expand "$b.yaml") > "$tmp/out" 2> "$tmp/err"; rc=$?
  [ $rc = 2 ]; ok $? "$b: exit status 2 (got $rc)"
  if cmp -s "$tmp/err" "$d/$b.err"; then ok 0 "$b: message"; else
    ok 1 "$b: message"; echo "# want: $(cat "$d/$b.err")"; echo "# got:  $(cat "$tmp/err")"; fi
  [ ! -s "$tmp/out" ]; ok $? "$b: no cells printed"
done

for g in good-basic good-include; do
  (cd "$d" && "$MOEBENCH" expand "$g.yaml") > "$tmp/out" 2> "$tmp/err"; rc=$?
  ok $rc "$g: valid"
  cmp -s "$tmp/out" "$d/$g.expand"; ok $? "$g: expansion matches the golden file"
done
grep -q '^good-include.yaml:16:5: warning: this exclude entry matches no cell$' "$tmp/err"
ok $? "an exclude matching nothing is a warning with its position"

"$MOEBENCH" expand --ids "$d/good-basic.yaml" | sort > "$tmp/a"
"$MOEBENCH" expand --ids "$d/good-reordered.yaml" | sort > "$tmp/b"
[ -s "$tmp/a" ] && cmp -s "$tmp/a" "$tmp/b"; ok $? "ids do not depend on key/axis order or value spelling"
[ "$(sort -u "$tmp/a" | wc -l)" = 18 ]; ok $? "18 distinct ids"

# shards partition the cells
"$MOEBENCH" expand --ids --shard 1/3 "$d/good-basic.yaml" > "$tmp/s1"
"$MOEBENCH" expand --ids --shard 2/3 "$d/good-basic.yaml" > "$tmp/s2"
"$MOEBENCH" expand --ids --shard 3/3 "$d/good-basic.yaml" > "$tmp/s3"
cat "$tmp/s1" "$tmp/s2" "$tmp/s3" | sort > "$tmp/s"
cmp -s "$tmp/s" "$tmp/a" && [ "$(wc -l < "$tmp/s1")" = 6 ]; ok $? "shards 1..3 of 3 partition the cells"

"$MOEBENCH" expand --shard 0/3 "$d/good-basic.yaml" > /dev/null 2>&1; [ $? = 2 ]; ok $? "bad --shard is a usage error"
"$MOEBENCH" expand --bogus "$d/good-basic.yaml" > /dev/null 2>&1; [ $? = 2 ]; ok $? "unknown option is a usage error"
"$MOEBENCH" expand "$tmp/nonexistent.yaml" > /dev/null 2>&1; [ $? = 2 ]; ok $? "missing file is exit status 2"

# integers in exponent form: the same for the seed and for parameters
(cd "$d" && "$MOEBENCH" expand good-exponent.yaml) > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc = 0 ] && head -1 "$tmp/out" | grep -q '^# t: 2 cells (task selftest, seed 1500, 1 replications)$' &&
  grep -q ' n=1000 ' "$tmp/out"; ok $? "seed: 1.5e3 and n: 1e3 are both read as integers"

# messages that say what is wrong
"$MOEBENCH" expand "$d" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "^$d: is a directory (expected a matrix file)$" "$tmp/err"; ok $? "expand DIR: is a directory (exit $rc)"
"$MOEBENCH" status "$d/good-basic.yaml" --out "$tmp/nonexistent" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "^moebench status: $tmp/nonexistent: no such directory" "$tmp/err" && [ ! -s "$tmp/out" ]
ok $? "status --out NONEXISTENT: an error, not all cells missing (exit $rc)"
"$MOEBENCH" data > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q '^usage: moebench data SUB-VERB' "$tmp/err" && grep -q '^  tokenize ' "$tmp/err" && ! grep -q 'unknown verb' "$tmp/err"
ok $? "data alone: usage with its sub-verbs (exit $rc)"
"$MOEBENCH" data --help > "$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q '^  bpe-train ' "$tmp/out"; ok $? "data --help: the sub-verbs, exit 0"
"$MOEBENCH" data bogus > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "^moebench data: unknown sub-verb 'bogus'$" "$tmp/err"; ok $? "data bogus: unknown sub-verb (exit $rc)"

# moebench tasks: the user's tasks; the harness's own selftest only on request
"$MOEBENCH" tasks > "$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q '^synthetic: ' "$tmp/out" && grep -q '^toy: ' "$tmp/out" && ! grep -q '^selftest' "$tmp/out" &&
  grep -q 'moebench tasks --all' "$tmp/out"; ok $? "tasks: user tasks only, and says how to see the rest"
"$MOEBENCH" tasks --all > "$tmp/out" 2>&1 && grep -q '^selftest: ' "$tmp/out" && grep -q '^toy: ' "$tmp/out"; ok $? "tasks --all: selftest too"
"$MOEBENCH" tasks selftest > "$tmp/out" 2>&1 && grep -q '^selftest: ' "$tmp/out" && ! grep -q '^toy' "$tmp/out"; ok $? "tasks selftest: shown when named"
"$MOEBENCH" tasks selftets > "$tmp/out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "unknown task 'selftets' (did you mean 'selftest'?)" "$tmp/out"; ok $? "tasks NAME: unknown task is an error (exit $rc)"

# Memory: a matrix too big for the limits is refused up front with the
# numbers; running out anyway is a message and exit status 1, never a
# silent SIGABRT. (OpenBLAS's thread pool can spin at start under a tight
# limit, so one BLAS thread; a build that cannot start under the limit at
# all, such as a sanitizer build, skips.)
big() { printf 'name: big\ntask: selftest\nseed: 1\naxes:\n  n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  x: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  k: [1, 2, 3, 4]\nreplications: %s\n' "$1"; }
big 25000 > "$tmp/huge.yaml"
big 250 > "$tmp/big.yaml"
to=; command -v timeout > /dev/null 2>&1 && to="timeout 120"
if (ulimit -v 400000 && OPENBLAS_NUM_THREADS=1 $to "$MOEBENCH" tasks) > /dev/null 2>&1; then
  (ulimit -v 400000; cd "$tmp" && OPENBLAS_NUM_THREADS=1 $to "$MOEBENCH" expand --ids huge.yaml) > "$tmp/out" 2> "$tmp/err"; rc=$?
  [ $rc = 2 ] && [ ! -s "$tmp/out" ]; ok $? "10^7 cells under ulimit -v 400000: exit status 2 (got $rc)"
  grep -q '^huge.yaml:2:7: the matrix expands to 10000000 cells, which need about [0-9]* MB to expand, more than the [0-9]* MB left (the address-space limit, ulimit -v): split it into smaller matrices$' "$tmp/err"
  ok $? "...refused up front with the numbers"; sed 's/^/# /' "$tmp/err"
else
  n=$((n + 1)); echo "ok $n # SKIP moebench does not start under ulimit -v 400000"
fi
if (ulimit -d 40000 && OPENBLAS_NUM_THREADS=1 $to "$MOEBENCH" tasks) > /dev/null 2>&1; then
  (ulimit -d 40000; OPENBLAS_NUM_THREADS=1 $to "$MOEBENCH" expand --ids "$tmp/big.yaml") > /dev/null 2> "$tmp/err"; rc=$?
  [ $rc = 1 ]; ok $? "out of memory (10^5 cells under ulimit -d 40000): exit status 1 (got $rc), not a signal"
  grep -q '^moebench: out of memory (allocating [0-9]* bytes); see ulimit -v and free memory$' "$tmp/err"; ok $? "...with a message"
else
  n=$((n + 1)); echo "ok $n # SKIP moebench does not start under ulimit -d 40000"
fi

# Size: duplicate detection on one axis is not pairwise (200k values took
# minutes), and nesting is capped before libyaml builds a document (80k
# levels took 46 s); both bounds are ~100x the time they take.
awk 'BEGIN { printf "name: wide\ntask: selftest\nseed: 1\naxes:\n  n: ["; for (i = 1; i <= 200000; i++) printf "%s%d", (i > 1 ? ", " : ""), i; print "]" }' > "$tmp/wide.yaml"
t0=$(date +%s)
"$MOEBENCH" expand --ids "$tmp/wide.yaml" > "$tmp/out" 2> "$tmp/err"; rc=$?
t1=$(date +%s)
[ $rc = 0 ] && [ "$(wc -l < "$tmp/out")" = 200000 ] && [ $((t1 - t0)) -lt 60 ]
ok $? "200000 values on one axis expand in $((t1 - t0)) s (< 60)"
sed 's/, 17, /, 17, 2, /' "$tmp/wide.yaml" > "$tmp/wide2.yaml"
"$MOEBENCH" expand --ids "$tmp/wide2.yaml" > /dev/null 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "duplicate value '2' for 'n' (first at line 5)" "$tmp/err"; ok $? "...and a repeat among them is found"
awk 'BEGIN { printf "name: deep\ntask: selftest\nseed: 1\nbase:\n  x: "; for (i = 0; i < 80000; i++) printf "["; for (i = 0; i < 80000; i++) printf "]"; print "" }' > "$tmp/deep.yaml"
t0=$(date +%s)
"$MOEBENCH" expand "$tmp/deep.yaml" > /dev/null 2> "$tmp/err"; rc=$?
t1=$(date +%s)
[ $rc = 2 ] && grep -q 'deep.yaml:5:68: nesting deeper than 64 levels' "$tmp/err" && [ $((t1 - t0)) -lt 10 ]
ok $? "80000 levels of nesting: refused at level 65 in $((t1 - t0)) s (rc $rc)"

for v in tasks expand run status report merge slurm; do
  "$MOEBENCH" $v --help > "$tmp/h" 2>&1 && grep -q "usage: moebench $v" "$tmp/h"; ok $? "$v --help"
  "$MOEBENCH" $v --version > "$tmp/h" 2>&1 && grep -q '^moebench .*[0-9]\.[0-9]' "$tmp/h"; ok $? "$v --version"
done

echo "1..$n"
[ $failed = 0 ]
