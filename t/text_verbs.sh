#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# text_verbs.sh — `moebench data bpe-train | tokenize | tokinfo` end to end on
# the committed fixtures (t/data/text): help, outputs, determinism, errors.
: "${srcdir:=.}" "${MOEBENCH:=./bench/moebench}"
D="$srcdir/t/data/text"
W=text_verbs.tmp
rm -rf "$W" && mkdir -p "$W" || exit 1
n=0 failed=0
check() { # check "name" command...
  name=$1; shift
  n=$((n + 1))
  if "$@" >/dev/null 2>&1; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
status_is() { # status_is WANT command...
  want=$1; shift
  "$@" >"$W/out" 2>"$W/err"; [ $? -eq "$want" ]
}

for v in bpe-train tokenize tokinfo; do
  check "data $v --help exits 0 with a usage line" sh -c "'$MOEBENCH' data $v --help | grep -q '^usage: moebench data $v'"
done

check "bpe-train --text trains" status_is 0 "$MOEBENCH" data bpe-train --text "$D/tiny_corpus.txt" --vocab 300 --out "$W/v.bpe"
check "  ... reports 44 merges" grep -q '^merges: 44 (vocabulary 300)' "$W/out"
check "  ... writes a moe-bpe file" sh -c "head -2 '$W/v.bpe' | tr '\n' ' ' | grep -q '^moe-bpe 1 merges 44 \$'"
tail -n +3 "$W/v.bpe" >"$W/v.body"; head -46 "$D/tiny_merges.bpe" | tail -n 44 >"$W/ref.body"
check "  ... equal to the reference trainer's first 44 merges" cmp "$W/v.body" "$W/ref.body"
check "bpe-train twice gives the same file" sh -c "'$MOEBENCH' data bpe-train --text '$D/tiny_corpus.txt' --vocab 300 --out '$W/v2.bpe' && cmp '$W/v.bpe' '$W/v2.bpe'"
check "bpe-train --data uses the train split (3 files, 1999-2000)" \
  sh -c "'$MOEBENCH' data bpe-train --data '$D' --vocab 280 --out '$W/s.bpe' | grep -q 'train split: 3 files (1999-2000), 42 bytes'"

check "tokenize writes three token files" status_is 0 "$MOEBENCH" data tokenize --vocab "$W/v.bpe" --data "$D" --out-dir "$W/tok"
check "  ... train/valid/test.tok exist" test -s "$W/tok/train.tok" -a -s "$W/tok/valid.tok" -a -s "$W/tok/test.tok"
check "  ... valid has 2 files, 21 bytes" grep -q '^valid:   2 files,        21 bytes' "$W/out"
check "tokinfo reads valid.tok" status_is 0 "$MOEBENCH" data tokinfo "$W/tok/valid.tok" --vocab "$W/v.bpe" --top 3
check "  ... vocabulary 300, width 2" grep -q '^vocabulary: 300 (width 2 bytes)' "$W/out"
check "  ... says the split is too small for the 6000-type analysis" grep -q '^types >= 6000 .*: no' "$W/out"
check "  ... lists 3 tokens with text" sh -c "grep -c '^ *[123] .*\"' '$W/out' | grep -qx 3"
check "tokenize --gzip with a tiktoken vocabulary" status_is 0 "$MOEBENCH" data tokenize --vocab "$D/tiny.tiktoken" --data "$D" --out-dir "$W/tik" --gzip
check "  ... writes gzip files tokinfo reads" sh -c "od -An -tx1 -N2 '$W/tik/test.tok.gz' | grep -q '1f 8b' && '$MOEBENCH' data tokinfo '$W/tik/test.tok.gz' | grep -q '^tokens: '"

check "bpe-train without --out -> 2" status_is 2 "$MOEBENCH" data bpe-train --text "$D/tiny_corpus.txt"
check "bpe-train --vocab 100 -> 2" status_is 2 "$MOEBENCH" data bpe-train --text "$D/tiny_corpus.txt" --vocab 100 --out "$W/x.bpe"
check "tokinfo with an unknown option -> 2" status_is 2 "$MOEBENCH" data tokinfo "$W/tok/valid.tok" --frobnicate
check "tokinfo on a malformed file -> 1" status_is 1 "$MOEBENCH" data tokinfo "$D/bad_magic.tok"
check "  ... message names the file" grep -q 'bad_magic.tok: byte 0: bad magic' "$W/err"
check "tokenize with a missing data dir -> 1" status_is 1 "$MOEBENCH" data tokenize --vocab "$W/v.bpe" --data "$W/nowhere" --out-dir "$W/t2"
check "tokenize with a malformed vocabulary -> 1" status_is 1 "$MOEBENCH" data tokenize --vocab "$D/tiny_corpus.txt" --data "$D" --out-dir "$W/t3"
# A file named r50k_base.tiktoken must be GPT-2's (pinned sha256): a copy of
# another ranks file under that name is refused, naming the file.
mkdir -p "$W/fake" && cp "$D/tiny.tiktoken" "$W/fake/r50k_base.tiktoken"
check "tokenize with a wrong r50k_base.tiktoken -> 1" status_is 1 "$MOEBENCH" data tokenize --vocab "$W/fake/r50k_base.tiktoken" --data "$D" --out-dir "$W/t4"
check "  ... message names the file and the pinned sha256" grep -q "fake/r50k_base.tiktoken: sha256 .* is not the pinned r50k_base sha256 306cd27f" "$W/err"

rm -rf "$W"
echo "1..$n"
[ "$failed" -eq 0 ]
