#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# lm-metrics.sh — the lm task's derived metrics recomputed from what the
# cells record, by formulas written out here (not by moebench): final
# perplexity = exp(mean CE) (not 2^CE), steps to a target perplexity = the
# first checkpoint of the recorded curve at or below it, FLOPs per token
# by a hand count of the smoke model, training FLOPs = 3 x forward x
# tokens, gain per TFLOP from its definition.
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmmetrics.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
MOE_DATA_DIR=$tmp/data
export MOE_DATA_DIR MOEBENCH_GNUPLOT=
mkdir -p "$tmp/data"
"$MOEBENCH" data lm-corpus --data "$srcdir/t/data/text" --vocab 300 --valid 0.12 --test 0.1 \
  --out-dir "$tmp/data/lm" >"$tmp/log" 2>&1
ok $? "tiny LM corpus from the fixtures"
cp "$srcdir/experiments/smoke-lm.yaml" "$tmp/m.yaml"
sed -i 's/^replications: 2$/replications: 1/' "$tmp/m.yaml"
"$MOEBENCH" run -q "$tmp/m.yaml" --out "$tmp/a" -j 2 2>/dev/null
ok $? "smoke-lm, one replication"
val() { grep -o "\"$2\": [^,}]*" "$1" | head -1 | cut -d' ' -f2; } # val FILE METRIC
cells=$tmp/a/smoke-lm/cells
bad=0 nc=0
for f in "$cells"/*.json; do
  awk -v p="$(val "$f" valid_ppl)" -v c="$(val "$f" valid_ce)" -v tp="$(val "$f" test_ppl)" -v tc="$(val "$f" test_ce)" \
    'BEGIN { e = exp(c); f = exp(tc); exit !(p > 1 && (p - e) ^ 2 <= (1e-12 * e) ^ 2 && (tp - f) ^ 2 <= (1e-12 * f) ^ 2) }' || bad=1
  nc=$((nc + 1))
done
[ $nc = 6 ] && [ $bad = 0 ]; ok $? "valid_ppl = exp(valid_ce), test_ppl = exp(test_ce) in all $nc cells"
# FLOPs per token by hand for the smoke model: D 16, L 2, T 8, V 300,
# N 4, K 2, s 1, F 8; forward = L (8 D^2 + 4 T D + 2 D E + (K_r + S) 4 D F) + 2 V D
hand() { awk -v E="$1" -v KS="$2" -v F="$3" 'BEGIN { D = 16; L = 2; T = 8; V = 300;
  printf "%.17g", 3 * (L * (8 * D * D + 4 * T * D + 2 * D * E + KS * 4 * D * F) + 2 * V * D) }'; }
for v in smoe:4:2:8 smoe_sg:4:2:8 ds_v2:3:2:8 ds_v3:3:2:8 dense:1:1:16; do
  name=${v%%:*}; rest=${v#*:}
  f=$(grep -l "\"variant\": \"$name\"" "$cells"/*.json)
  want=$(hand $(echo "$rest" | tr ':' ' '))
  [ "$(val "$f" flops_per_token)" = "$want" ]; ok $? "$name: flops_per_token $(val "$f" flops_per_token) = 3 x the hand count $want"
done
f=$(grep -l '"variant": "ds_v3"' "$cells"/*.json)
awk -v fl="$(val "$f" train_flops)" -v pt="$(val "$f" flops_per_token)" -v n="$(val "$f" train_tokens)" \
  -v g="$(val "$f" gain_per_tflop)" -v c="$(val "$f" valid_ce)" \
  'BEGIN { want = (log(300) - c) / (fl / 1e12); exit !(n == 20 * 4 * 8 && fl == pt * n && (g - want) ^ 2 <= (1e-12 * want) ^ 2) }'
ok $? "ds_v3: train_tokens = steps x batch x T, train_flops = flops_per_token x tokens, gain_per_tflop = (ln V - CE) / TFLOP"
# steps to a target: the target set between the curve's values at steps 5
# and 10 of a first run; training does not depend on target_ppl, so the
# curve is the same and the answer is the first checkpoint at or below it
f=$(grep -l '"variant": "smoe"' "$cells"/*.json)
p5=$(val "$f" 'valid_ppl@5') p10=$(val "$f" 'valid_ppl@10')
target=$(awk -v a="$p5" -v b="$p10" 'BEGIN { printf "%.6f", b + (a - b) / 1000 }')
want=$(grep -o '"valid_ppl@[0-9]*": [^,}]*' "$f" | tr -d '"' | sed 's/valid_ppl@//; s/://' | sort -n |
  awk -v t="$target" '$2 <= t { print $1; exit }')
sed -i "s/^  router_types: 40\$/  router_types: 40\\n  target_ppl: $target/" "$tmp/m.yaml"
"$MOEBENCH" run -q "$tmp/m.yaml" --out "$tmp/b" -j 2 2>/dev/null
g=$(grep -l '"variant": "smoe"' "$tmp/b/smoke-lm/cells/"*.json)
[ -n "$want" ] && [ "$(val "$g" steps_to_target)" = "$want" ]
ok $? "steps_to_target = $(val "$g" steps_to_target): the first checkpoint of the curve at or below $target ($want)"
[ "$(val "$g" 'valid_ppl@5')" = "$p5" ]; ok $? "  (target_ppl does not change training: the same curve)"
echo "1..$n"
[ $failed -eq 0 ]
