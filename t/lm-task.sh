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
strip() { grep '"metrics"' "$1" | tr ',' '\n' | grep -v -e tokens_per_s -e train_seconds -e tokens_per_cpu_s -e train_cpu_seconds -e gain_per_second -e peak_rss_mb; }
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
grep -q '^| smoe | 0 | \[0, 0\] | 2 |$' "$rep/vs_smoe.md"; ok $? "  paired: smoe minus itself is 0 over 2 pairs"
grep -q '^| ds_v3 | -\{0,1\}[0-9.e-]* | \[.*\] | 2 |$' "$rep/vs_smoe.md"; ok $? "  paired: ds_v3 row over 2 pairs"
grep -q 'minus valid_ppl.s value at variant=smoe (paired by replication)' "$rep/summary.md"; ok $? "  summary says what is paired"
csvmean() { awk -F, -v r="$2" '$1 == r { print $4 }' "$1"; } # csvmean FILE ROW
awk -v a="$(csvmean "$rep/ppl.csv" ds_v3)" -v b="$(csvmean "$rep/ppl.csv" smoe)" -v d="$(csvmean "$rep/vs_smoe.csv" ds_v3)" \
  'BEGIN { x = a - b - d; exit !(d != 0 && x < 1e-9 * a && x > -1e-9 * a) }'
ok $? "  paired mean = difference of the means (equal n)"
grep -q '^| smoe | 1 | 2 |$' "$rep/to_smoe.md"; ok $? "  reach: smoe reaches its own final value at the end (1)"
[ "$(grep -c '^[0-9]' "$rep/curve.dat")" = 24 ]; ok $? "  family plot: 4 checkpoints x 6 variants"
grep -q '^5 [0-9.e+]* [0-9.e+]* [0-9.e+]* 2$' "$rep/curve.dat"; ok $? "  family plot: step 5 over 2 replications"
[ "$(grep -c '^[0-9]' "$rep/jfi_layer.dat")" = 10 ]; ok $? "  per-layer plot: 2 layers x 5 routed variants"

# error paths
MOE_DATA_DIR=$tmp/nowhere "$MOEBENCH" run -q "$smoke" --out "$tmp/c" -j 2 2>"$tmp/log"
[ $? -ne 0 ]; ok $? "missing data: the run fails"
f=$(ls "$tmp/c/smoke-lm/cells/"*.json | head -1)
grep -q 'nowhere/lm/train.tok.*make lm-data' "$f"; ok $? "  the cell's error names the file and make lm-data"
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
# a token file of another vocabulary
mkdir -p "$tmp/data2/lm" && cp "$tmp/data/lm/"* "$tmp/data2/lm/"
"$MOEBENCH" data tokenize --input "$srcdir/t/data/text/tiny_ab.txt" --vocab 280 --out "$tmp/data2/lm/valid.tok" >/dev/null 2>&1
MOE_DATA_DIR=$tmp/data2 "$MOEBENCH" run -q "$smoke" --out "$tmp/d" -j 2 2>/dev/null
f=$(ls "$tmp/d/smoke-lm/cells/"*.json | head -1)
grep -q 'valid.tok: vocabulary 280, but the vocabulary file has 300 tokens' "$f"; ok $? "a token file of another vocabulary is an error"

echo "1..$n"
[ $failed -eq 0 ]
