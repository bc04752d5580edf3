#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# lm-task.sh — the lm task end to end on a tiny corpus made from the text
# fixtures: the smoke matrix (six variants), the metrics each cell reports,
# a bit-identical rerun, the report (paired tables, reach, metric-family
# plots), and the error paths (missing data, bad parameters).
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmtask.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
smoke="$srcdir/experiments/smoke-lm.yaml"
MOE_DATA_DIR=$tmp/data
export MOE_DATA_DIR MOEBENCH_GNUPLOT=
mkdir -p "$tmp/data"

"$MOEBENCH" data lm-corpus --data "$srcdir/t/data/text" --vocab 300 --valid 0.12 --test 0.1 \
  --out-dir "$tmp/data/lm" >"$tmp/log" 2>&1
ok $? "tiny LM corpus from the fixtures"

"$MOEBENCH" run -q "$smoke" --out "$tmp/a" -j 2 2>"$tmp/log"
ok $? "smoke-lm runs (12 cells)"
cells=$tmp/a/smoke-lm/cells
[ "$(grep -l '"status": "ok"' "$cells"/*.json | wc -l)" = 12 ]; ok $? "  all 12 cells ok"
one=$(grep -l '"variant": "ds_v3"' "$cells"/*.json | head -1)
for m in valid_ppl valid_bpb test_ppl test_bpb tokens_per_s train_flops peak_rss_mb params active_params \
  saturation_first change_rate jfi_tokens jfi_weight router_types 'valid_ppl@5' 'valid_ppl@20' 'saturation@15' \
  'change_rate@10' 'jfi_tokens_layer@1' 'saturation_first_layer@0'; do
  grep -q "\"$m\": [0-9]" "$one"; ok $? "  ds_v3 reports $m"
done
grep -q '"saturation@20"' "$one"; [ $? -ne 0 ]; ok $? "  no saturation at the final checkpoint (it is the reference)"
dense=$(grep -l '"variant": "dense"' "$cells"/*.json | head -1)
grep -q '"saturation_first"' "$dense"; [ $? -ne 0 ]; ok $? "  dense: no router metrics"
grep -q '"valid_ppl": [0-9]' "$dense"; ok $? "  dense: perplexity"
val() { grep -o "\"$2\": [^,}]*" "$1" | head -1 | cut -d' ' -f2; } # val FILE METRIC
# the perplexity is below the vocabulary size (it learned something) and above 1
awk -v v="$(val "$one" valid_ppl)" 'BEGIN { exit !(v > 1 && v < 300) }'; ok $? "  1 < valid ppl < V"
# bits per byte = ce / ln 2 / (bytes per token): the fixtures have ~1.5 bytes per token
awk -v ce="$(val "$one" valid_ce)" -v b="$(val "$one" valid_bpb)" 'BEGIN { bpt = ce / log(2) / b; exit !(bpt > 1.3 && bpt < 1.8) }'
ok $? "  bits per byte consistent with ~1.5 bytes per token"
grep -q '"router_types": 40' "$one"; ok $? "  router analysis on router_types = 40 types"

# determinism: a rerun gives the same numbers (timings aside)
"$MOEBENCH" run -q "$smoke" --out "$tmp/b" -j 1 2>/dev/null
ok $? "rerun with -j 1"
strip() { grep '"metrics"' "$1" | tr ',' '\n' | grep -v -e tokens_per_s -e train_seconds -e eval_cpu -e tokens_per_cpu_s -e train_cpu_seconds -e gain_per_second -e peak_rss_mb; }
same=0
for f in "$cells"/*.json; do
  strip "$f" >"$tmp/x"; strip "$tmp/b/smoke-lm/cells/${f##*/}" >"$tmp/y"
  cmp -s "$tmp/x" "$tmp/y" || same=1
done
ok $same "  bit-identical metrics in every cell"
[ "$(strip "$one" | wc -l)" -gt 30 ]; ok $? "  (the comparison saw the metrics)"
# the model's own threads change no bit (moe_lm_set_threads via --threads)
OMP_WAIT_POLICY=passive "$MOEBENCH" run -q "$smoke" --out "$tmp/t3" -j 1 --threads 3 2>/dev/null
ok $? "rerun with --threads 3"
same=0
for f in "$cells"/*.json; do
  strip "$f" >"$tmp/x"; strip "$tmp/t3/smoke-lm/cells/${f##*/}" >"$tmp/y"
  cmp -s "$tmp/x" "$tmp/y" || same=1
done
ok $same "  bit-identical metrics in every cell with 3 threads"
"$MOEBENCH" run -q "$smoke" --out "$tmp/t0" --threads 0 2>"$tmp/log"
[ $? = 2 ] && grep -q "bad --threads '0'" "$tmp/log"; ok $? "--threads 0: usage error naming the value"

# report: paired differences, reach, families
"$MOEBENCH" report "$tmp/a/smoke-lm" --format md,csv --plot 2>"$tmp/log"
ok $? "report"
rep=$tmp/a/smoke-lm/report
grep -q '^| smoe | 0 | \[0, 0\] | 2 | 0 | n/a | n/a | n/a | n/a |$' "$rep/vs_smoe.md"; ok $? "  paired: smoe minus itself is 0 over 2 pairs (no test)"
grep -q '^| ds_v3 | -\{0,1\}[0-9.e-]* | \[.*\] | 2 | [0-9.e-]* | [0-9.e+-]* | [0-9.e-]* | [0-9.e-]* | [a-z -]* |$' "$rep/vs_smoe.md"
ok $? "  paired: ds_v3 row over 2 pairs, with sd, mde80, p, p_holm, holm"
grep -q 'minus valid_ppl.s value at variant=smoe (paired by replication)' "$rep/summary.md"; ok $? "  summary says what is paired"
csvmean() { awk -F, -v r="$2" '$1 == r { print $4 }' "$1"; } # csvmean FILE ROW
awk -v a="$(csvmean "$rep/ppl.csv" ds_v3)" -v b="$(csvmean "$rep/ppl.csv" smoe)" -v d="$(csvmean "$rep/vs_smoe.csv" ds_v3)" \
  'BEGIN { x = a - b - d; exit !(d != 0 && x < 1e-9 * a && x > -1e-9 * a) }'
ok $? "  paired mean = difference of the means (equal n)"
grep -q '^| smoe | 1 | 2 |$' "$rep/to_smoe.md"; ok $? "  reach: smoe reaches its own final value at the end (1)"
# NAME@X: the family at one index, from the cells' own valid_ppl@10
want=$(for f in "$cells"/*.json; do
  grep -q '"variant": "ds_v2"' "$f" && sed -n 's/.*"valid_ppl@10": \([^,}]*\).*/\1/p' "$f"
done | awk '{ s += $1; n++ } END { if (n == 2) printf "%.6g", s / n }')
got=$(awk -F, '$1 == "ds_v2" && $2 == "valid_ppl@10" && $3 == 2 { printf "%.6g", $4 }' "$rep/ppl_at_10.csv")
[ -n "$want" ] && [ "$want" = "$got" ]; ok $? "  valid_ppl@10: the mean of the cells' step-10 values ($want, report $got)"
[ "$(grep -c '^[0-9]' "$rep/curve.dat")" = 24 ]; ok $? "  family plot: 4 checkpoints x 6 variants"
grep -q '^5 [0-9.e+]* [0-9.e+]* [0-9.e+]* 2$' "$rep/curve.dat"; ok $? "  family plot: step 5 over 2 replications"
[ "$(grep -c '^[0-9]' "$rep/jfi_layer.dat")" = 10 ]; ok $? "  per-layer plot: 2 layers x 5 routed variants"

# error paths
MOE_DATA_DIR=$tmp/nowhere "$MOEBENCH" run -q "$smoke" --out "$tmp/c" -j 2 2>"$tmp/log"
[ $? -ne 0 ]; ok $? "missing data: the run fails"
f=$(ls "$tmp/c/smoke-lm/cells/"*.json | head -1)
grep -q 'nowhere/lm/train.tok.*data directory .*nowhere/lm: make it with .make lm-data' "$f"; ok $? "  the cell's error names the file, the directory and make lm-data"
cp "$smoke" "$tmp/bad.yaml"
sed -i 's/^  H: 2$/  H: 3/' "$tmp/bad.yaml"
"$MOEBENCH" expand "$tmp/bad.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 'H=3 must divide D=16' "$tmp/log"; ok $? "H not dividing D is refused before running"
sed -i 's/^  H: 3$/  H: 2/; s/^  s: 1$/  s: 2/' "$tmp/bad.yaml"
"$MOEBENCH" expand "$tmp/bad.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 's=2 shared experts must be fewer than K=2' "$tmp/log"; ok $? "s >= K for the DeepSeek variants is refused"
sed -i 's/^  s: 2$/  s: 1/; s/^  eval_every: 5$/  eval_every: 3/' "$tmp/bad.yaml"
"$MOEBENCH" expand "$tmp/bad.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 'steps=20 must be a multiple of eval_every=3' "$tmp/log"; ok $? "steps not a multiple of eval_every is refused"
sed -i 's/^  eval_every: 3$/  eval_every: 5/; s/^  K: 2$/  K: 5/' "$tmp/bad.yaml"
"$MOEBENCH" expand "$tmp/bad.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 'K=5 must not exceed N=4' "$tmp/log"; ok $? "K > N is refused"
for m in valid_ppl@ten valid_ppl@10x nosuch@10; do
  sed "s/metric: valid_ppl@10\$/metric: $m/" "$smoke" >"$tmp/bad.yaml"
  "$MOEBENCH" expand "$tmp/bad.yaml" >/dev/null 2>"$tmp/log"
  [ $? -eq 2 ] && grep -q "unknown metric '$m'" "$tmp/log"; ok $? "table metric $m is refused"
done
# a token file of another vocabulary
mkdir -p "$tmp/data2/lm" && cp "$tmp/data/lm/"* "$tmp/data2/lm/"
"$MOEBENCH" data tokenize --input "$srcdir/t/data/text/tiny_ab.txt" --vocab 280 --out "$tmp/data2/lm/valid.tok" >/dev/null 2>&1
MOE_DATA_DIR=$tmp/data2 "$MOEBENCH" run -q "$smoke" --out "$tmp/d" -j 2 2>/dev/null
f=$(ls "$tmp/d/smoke-lm/cells/"*.json | head -1)
grep -q 'valid.tok: vocabulary 280, but the vocabulary file has 300 tokens' "$f"; ok $? "a token file of another vocabulary is an error"

# the data fingerprint: sha256 of each file read, and of that list
fp=$(for f in train.tok valid.tok test.tok vocab.bpe; do
       printf '%s %s\n' $f "$(sha256sum "$tmp/data/lm/$f" | cut -c1-64)"; done)
want=$(printf '%s' "$fp" | sha256sum | cut -c1-64)
grep -q "\"data_sha256\": \"$want\"" "$one"; ok $? "data_sha256 = sha256 of the files' sha256 list (sha256sum)"
grep -q "\"data_files\": \"train.tok $(sha256sum "$tmp/data/lm/train.tok" | cut -c1-64)\\\\nvalid.tok" "$one"
ok $? "  data_files lists each file's sha256"
cp "$smoke" "$tmp/v.yaml"
sed -i 's/^  data: lm$/  data: lm\n  vocab: 301/' "$tmp/v.yaml"
"$MOEBENCH" run -q "$tmp/v.yaml" --out "$tmp/v" -j 2 2>/dev/null
f=$(ls "$tmp/v/smoke-lm/cells/"*.json | head -1)
grep -q 'vocabulary of 300 tokens, but the cell asks for vocab = 301' "$f"; ok $? "vocab: a corpus of another size is refused"

# training does not depend on evaluation settings: other checkpoints, fewer
# evaluation tokens and another router_types train the same model
cp "$smoke" "$tmp/e.yaml"
sed -i 's/^  eval_every: 5$/  eval_every: 10/; s/^  eval_tokens: 0$/  eval_tokens: 64/; s/^  router_types: 40$/  router_types: 7/' "$tmp/e.yaml"
"$MOEBENCH" run -q "$tmp/e.yaml" --out "$tmp/e" -j 2 2>/dev/null
ok $? "smoke-lm with other evaluation settings"
same=0 nc=0
for f in "$cells"/*.json; do
  v=$(grep -o '"variant": "[a-z_0-9]*"' "$f"); r=$(grep -o '"rep": [0-9]*' "$f")
  g=$(grep -l "$v" "$tmp/e/smoke-lm/cells/"*.json | xargs grep -l "$r," | head -1)
  for m in train_loss aux_loss valid_ppl test_ppl; do
    [ "$(val "$f" $m)" = "$(val "$g" $m)" ] || same=1
  done
  nc=$((nc + 1))
done
[ $nc = 12 ]; ok $? "  (12 cells compared)"
ok $same "  the same final train/aux loss and valid/test perplexity, bit for bit"
# common random numbers: smoe and smoe_sg of one replication start from the
# same values (same shapes), so their step-5 losses are close but not equal
# (different gates); a different replication starts elsewhere
a0=$(grep -l '"variant": "smoe"' "$cells"/*.json | xargs grep -l '"rep": 0,')
a1=$(grep -l '"variant": "smoe"' "$cells"/*.json | xargs grep -l '"rep": 1,')
[ "$(val "$a0" 'valid_ppl@5')" != "$(val "$a1" 'valid_ppl@5')" ]; ok $? "  replications start from different values"

# save: the trained model, scored again by lm-eval on the validation split
cp "$smoke" "$tmp/s.yaml"
sed -i "s/^replications: 2\$/replications: 1/" "$tmp/s.yaml"
"$MOEBENCH" run -q "$tmp/s.yaml" --out "$tmp/s" -j 2 --save-models "$tmp/ck" 2>/dev/null
ok $? "run --save-models: a run that saves its models"
f=$(grep -l '"variant": "ds_v3"' "$tmp/s/smoke-lm/cells/"*.json)
ck=$(grep -o '"checkpoint": "[^"]*"' "$f" | cut -d'"' -f4)
[ -f "$ck" ] && [ "$(ls "$tmp/ck" | wc -l)" = 6 ]; ok $? "  one checkpoint per cell, named in the result ($ck)"
"$MOEBENCH" lm-eval --checkpoint "$ck" --tokens "$tmp/data/lm/valid.tok" --vocab "$tmp/data/lm/vocab.bpe" >"$tmp/ev" 2>&1
ok $? "lm-eval scores it"
awk -v a="$(awk '$1 == "mean_ce" { print $2 }' "$tmp/ev")" -v b="$(val "$f" valid_ce)" \
  'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * b) }'
ok $? "  its mean CE is the cell's final valid_ce (to rounding: other batch composition)"
awk -v a="$(awk '$1 == "bpb" { print $2 }' "$tmp/ev")" -v b="$(val "$f" valid_bpb)" \
  'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * b) }'
ok $? "  and bits per byte the cell's valid_bpb"
"$MOEBENCH" lm-eval --checkpoint "$ck" --tokens "$tmp/data2/lm/valid.tok" >"$tmp/ev" 2>&1
[ $? -eq 1 ] && grep -q 'vocabulary 280, but the model in .* has 300 tokens' "$tmp/ev"; ok $? "lm-eval: a token file of another vocabulary (exit 1)"
"$MOEBENCH" lm-eval --tokens x.tok >/dev/null 2>&1; [ $? -eq 2 ]; ok $? "lm-eval: no checkpoint is a usage error"

# cells of one `data` that read different bytes are not combined
cp -r "$tmp/a/smoke-lm" "$tmp/mixed"
f=$(ls "$tmp/mixed/cells/"*.json | tail -1)
sed -i "s/\"data_sha256\": \"[0-9a-f]*\"/\"data_sha256\": \"$(printf 0%.0s $(seq 64))\"/" "$f"
"$MOEBENCH" report "$tmp/mixed" --format md 2>"$tmp/log"
[ $? -eq 1 ] && grep -q "both read data 'lm' but of different content" "$tmp/log" && grep -q 'nothing written' "$tmp/log"
ok $? "report refuses cells of one data with different fingerprints (exit 1, named)"
"$MOEBENCH" report "$tmp/mixed" --format md --allow-mixed-data 2>"$tmp/log"
[ $? -eq 0 ] && grep -q 'combined anyway' "$tmp/log"; ok $? "  --allow-mixed-data combines them, saying so"

# a diverging run is recorded as diverged, never ok; report and status count it
cp "$smoke" "$tmp/div.yaml"
sed -i 's/^  lr: 0.01$/  lr: 10\n  clip: 0/; s/^replications: 2$/replications: 1/' "$tmp/div.yaml"
"$MOEBENCH" run -q "$tmp/div.yaml" --out "$tmp/div" -j 2 2>"$tmp/log"
ok $? "lr 10, clip 0: the run records its cells (exit 0)"
nd=$(grep -l '"status": "diverged"' "$tmp/div/smoke-lm/cells/"*.json | wc -l)
nok=$(grep -l '"status": "ok"' "$tmp/div/smoke-lm/cells/"*.json | wc -l)
[ "$nd" -ge 5 ]; ok $? "  $nd of 6 cells diverged"
# an ok cell must have a sane loss: below 2 ln V
okbad=0
for f in $(grep -l '"status": "ok"' "$tmp/div/smoke-lm/cells/"*.json); do
  awk -v l="$(val "$f" train_loss)" 'BEGIN { exit !(l == l && l < 2 * log(300)) }' || okbad=1
done
ok $okbad "  no cell recorded ok has a training loss above 2 ln V ($nok ok)"
f=$(grep -l '"status": "diverged"' "$tmp/div/smoke-lm/cells/"*.json | head -1)
grep -q '"error": "step [0-9]*: training diverged: ' "$f"; ok $? "  the cause names the step"
"$MOEBENCH" status "$tmp/div.yaml" --out "$tmp/div" >"$tmp/st" 2>&1
grep -q "smoke-lm: 6 cells: $nok ok, $nd diverged, 0 failed, 0 missing" "$tmp/st"; ok $? "  status counts them"
"$MOEBENCH" run -q "$tmp/div.yaml" --out "$tmp/div" -j 2 2>"$tmp/log"
grep -q "0 ran ok, 0 diverged, 0 failed, 6 skipped" "$tmp/log" || "$MOEBENCH" run "$tmp/div.yaml" --out "$tmp/div" 2>&1 | grep -q "6 already done, 0 to run"
ok $? "  a rerun does not recompute them"
"$MOEBENCH" report "$tmp/div/smoke-lm" --format md 2>"$tmp/log"
grep -q "$nd diverged" "$tmp/log"; ok $? "  report counts them"

echo "1..$n"
[ $failed -eq 0 ]
