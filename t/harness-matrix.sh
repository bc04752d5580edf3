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

for v in tasks expand run status report merge slurm; do
  "$MOEBENCH" $v --help > "$tmp/h" 2>&1 && grep -q "usage: moebench $v" "$tmp/h"; ok $? "$v --help"
  "$MOEBENCH" $v --version > "$tmp/h" 2>&1 && grep -q '^moebench .*[0-9]\.[0-9]' "$tmp/h"; ok $? "$v --version"
done

echo "1..$n"
[ $failed = 0 ]
