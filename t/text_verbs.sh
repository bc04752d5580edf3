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

# The LM corpus (SOTU + Brown by document) and the general tokenize path.
check "data lm-corpus --help exits 0 with a usage line" sh -c "'$MOEBENCH' data lm-corpus --help | grep -q '^usage: moebench data lm-corpus'"
check "lm-corpus on the fixtures" status_is 0 "$MOEBENCH" data lm-corpus --data "$D" --vocab 300 --valid 0.12 --test 0.1 --out-dir "$W/lm"
check "  ... 13 documents, 7 SOTU and 6 Brown" grep -q '^corpus: .*: 13 documents (sotu 7, brown 6)' "$W/out"
check "  ... split by sha256 of the name (valid: 2010, 2011, cb02)" sh -c "grep -c '	valid	' '$W/lm/split.tsv' | grep -qx 3 && grep -q '^brown/cb02.txt	valid	257\$' '$W/lm/split.tsv' && grep -q '^sotu/2010_ed_fu_y.txt	valid	10\$' '$W/lm/split.tsv'"
check "  ... test: cc01 only" sh -c "grep '	test	' '$W/lm/split.tsv' | cut -f1 | tr '\n' ' ' | grep -qx 'brown/cc01.txt '"
check "  ... the split agrees with sha256sum (u < 0.12 valid)" sh -c "for d in \$(cut -f1 '$W/lm/split.tsv'); do h=\$(printf %s \$d | sha256sum | cut -c1-8); s=train; [ \$((0x\$h)) -lt 515396075 ] && s=valid || { [ \$((0x\$h)) -lt 944892805 ] && s=test; }; grep -q \"^\$d	\$s	\" '$W/lm/split.tsv' || exit 1; done"
check "  ... writes vocab.bpe and three token files" test -s "$W/lm/vocab.bpe" -a -s "$W/lm/train.tok" -a -s "$W/lm/valid.tok" -a -s "$W/lm/test.tok"
check "  ... counts the validation types" grep -q "^valid: [0-9]* distinct token types of 300; the lm task's router analysis takes the router_types (default 6000) most frequent of the types in the tokens it evaluates" "$W/out"
check "  ... as many as tokinfo counts in valid.tok" sh -c "n=\$(sed -n 's/^valid: \\([0-9]*\\) distinct.*/\\1/p' '$W/out'); '$MOEBENCH' data tokinfo '$W/lm/valid.tok' | grep -qx \"distinct types: \$n (.*)\""
# A type seen 256 times and more is counted once (the seen-flags were
# uint8_t counters that wrapped): the validation text repeats a few words
# a thousand times.
mkdir -p "$W/rep" && cp -r "$D/sotu" "$D/brown" "$W/rep/" && awk 'BEGIN { for (i = 0; i < 1000; i++) printf "the cat sat. " }' >> "$W/rep/sotu/2010_ed_fu_y.txt"
check "lm-corpus with 1000 repeats in valid" status_is 0 "$MOEBENCH" data lm-corpus --data "$W/rep" --vocab 300 --valid 0.12 --test 0.1 --out-dir "$W/lmrep"
check "  ... counts each type once, as tokinfo does" sh -c "n=\$(sed -n 's/^valid: \\([0-9]*\\) distinct.*/\\1/p' '$W/out'); [ -n \"\$n\" ] && '$MOEBENCH' data tokinfo '$W/lmrep/valid.tok' | grep -qx \"distinct types: \$n (.*)\" && grep -qx \"valid distinct types: \$n\" '$W/lmrep/README'"
check "  ... valid.tok decodes to the valid documents joined by newlines" sh -c "'$MOEBENCH' data tokinfo '$W/lm/valid.tok' | grep -q '^vocabulary: 300'"
check "lm-corpus twice gives identical files" sh -c "'$MOEBENCH' data lm-corpus --data '$D' --vocab 300 --valid 0.12 --test 0.1 --out-dir '$W/lm2' >/dev/null && for f in vocab.bpe train.tok valid.tok test.tok split.tsv; do cmp '$W/lm/'\$f '$W/lm2/'\$f || exit 1; done"
mkdir -p "$W/nobrown" && cp -r "$D/sotu" "$W/nobrown/"
check "lm-corpus without DIR/brown -> 1" status_is 1 "$MOEBENCH" data lm-corpus --data "$W/nobrown" --out-dir "$W/lm3"
check "  ... names the directory and the fetch command" grep -q "nobrown/brown: cannot open: .*datasets/fetch.sh --only brown" "$W/err"
check "lm-corpus with an empty valid split -> 1" status_is 1 "$MOEBENCH" data lm-corpus --data "$D" --vocab 300 --valid 0.001 --test 0.1 --out-dir "$W/lm4"
check "  ... says so" grep -q "the valid split is empty" "$W/err"
check "lm-corpus --valid 2 -> 2" status_is 2 "$MOEBENCH" data lm-corpus --data "$D" --valid 2 --out-dir "$W/lm5"

check "tokenize --input trains a V-token BPE on the files" status_is 0 "$MOEBENCH" data tokenize --input "$D/tiny_corpus.txt" "$D/tiny_ab.txt" --vocab 300 --out "$W/in.tok" --save-vocab "$W/in.bpe"
check "  ... reads both files (4003 bytes with the separator)" grep -q '^input: 2 file(s), 4003 bytes' "$W/out"
check "  ... token file of vocabulary 300" sh -c "'$MOEBENCH' data tokinfo '$W/in.tok' | grep -q '^vocabulary: 300 '"
check "  ... saved vocabulary equals bpe-train's on the same text" sh -c "{ cat '$D/tiny_corpus.txt'; printf '\n'; cat '$D/tiny_ab.txt'; } >'$W/both.txt' && '$MOEBENCH' data bpe-train --text '$W/both.txt' --vocab 300 --out '$W/both.bpe' >/dev/null && cmp '$W/both.bpe' '$W/in.bpe'"
check "tokenize --input with the saved vocabulary gives the same tokens" sh -c "'$MOEBENCH' data tokenize --input '$D/tiny_corpus.txt' '$D/tiny_ab.txt' --vocab '$W/in.bpe' --out '$W/in2.tok' >/dev/null && cmp '$W/in.tok' '$W/in2.tok'"
mkdir -p "$W/r50" && gzip -dc "$D/r50k_base.tiktoken.gz" >"$W/r50/r50k_base.tiktoken"
check "tokenize --input --vocab r50k uses DATA/r50k_base.tiktoken" status_is 0 "$MOEBENCH" data tokenize --input "$D/tiny_corpus.txt" --vocab r50k --data "$W/r50" --out "$W/r.tok.gz" --gzip
check "  ... a gzip token file" sh -c "od -An -tx1 -N2 '$W/r.tok.gz' | grep -q '1f 8b'"
check "tokenize --input --vocab r50k without the file -> 1" status_is 1 "$MOEBENCH" data tokenize --input "$D/tiny_corpus.txt" --vocab r50k --data "$W/nowhere" --out "$W/x.tok"
check "  ... says how to fetch it" grep -q "fetch.sh --only r50k" "$W/err"
check "tokenize --input with a missing file -> 1" status_is 1 "$MOEBENCH" data tokenize --input "$W/missing.txt" --vocab 300 --out "$W/x.tok"
check "  ... names it" grep -q "missing.txt: cannot open" "$W/err"
check "tokenize --input without --out -> 2" status_is 2 "$MOEBENCH" data tokenize --input "$D/tiny_corpus.txt" --vocab 300
check "tokenize --input --vocab 100 -> 1 (too small)" status_is 1 "$MOEBENCH" data tokenize --input "$D/tiny_corpus.txt" --vocab 100 --out "$W/x.tok"

rm -rf "$W"
echo "1..$n"
[ "$failed" -eq 0 ]
