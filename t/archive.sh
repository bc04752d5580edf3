#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# archive.sh — the results archive (archive/NAME/{matrix.yaml,cells/*.json})
# holds only results recorded from a clean tree, each a cell of its stored
# matrix, readable by the report: what doc/ tables are regenerated from.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/archive.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
found=0
for d in "$srcdir"/archive/*/; do
  [ -f "$d/matrix.yaml" ] || continue
  found=1
  name=$(basename "$d")
  nc=$(ls "$d/cells/" 2>/dev/null | grep -c "[.]json$")
  dirty=$(grep -l '"git_commit": "[^"]*-dirty"' "$d"/cells/*.json 2>/dev/null | wc -l)
  unknown=$(grep -L '"git_commit": "[0-9a-f]\{7,\}"' "$d"/cells/*.json 2>/dev/null | wc -l)
  [ "$dirty" = 0 ] && [ "$unknown" = 0 ]; ok $? "$name: $nc cells, none from a dirty or unknown tree"
  # every cell file is a cell of the stored matrix (its id is listed by expand)
  # a sequential matrix (`moebench run --until-resolved`) may hold cells up to its max_replications
  cp "$d/matrix.yaml" "$tmp/m.yaml"
  # (flow style on the `sequential:` line, or block style on its own line below it)
  mx=$(awk '/^sequential:/ { s = 1 } s && /max_replications:/ { sub(/.*max_replications: */, ""); print $0 + 0; exit }
            s && !/^sequential:/ && /^[^ #]/ { exit }' "$tmp/m.yaml")
  [ -n "$mx" ] && sed -i "s/^replications: .*/replications: $mx/" "$tmp/m.yaml"
  "$MOEBENCH" expand "$tmp/m.yaml" 2>/dev/null | cut -d' ' -f1 | sort >"$tmp/ids"
  stray=0
  for f in "$d"/cells/*.json; do
    [ -e "$f" ] || continue
    id=$(basename "$f" .json)
    grep -qx "$id" "$tmp/ids" || { stray=1; echo "# $f: not a cell of $name/matrix.yaml"; }
  done
  ok $stray "$name: every cell belongs to the stored matrix"
  cp -r "$d" "$tmp/$name"
  "$MOEBENCH" report "$tmp/$name" --format md >"$tmp/log" 2>&1
  ok $? "$name: the report reads every cell"
done
if [ $found = 0 ]; then echo "ok 1 # SKIP no archived matrix"; n=1; fi
echo "1..$n"
[ $failed -eq 0 ]
