#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# vision-task.sh — the vision task end to end on the tiny Fashion-MNIST
# stand-in t/data/vision/fmnist-tiny: the smoke matrix (six variants), the
# metrics each cell reports, a bit-identical rerun, the MoE-everywhere
# placement, the report, and the error paths (missing data, patch side not
# dividing 28, s >= K).
: "${MOEBENCH:?}" "${srcdir:=.}"
. "${srcdir:-.}/t/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vistask.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
smoke="$srcdir/experiments/smoke-vision.yaml"
MOE_DATA_DIR=$srcdir/t/data/vision
export MOE_DATA_DIR MOEBENCH_GNUPLOT=

"$MOEBENCH" run -q "$smoke" --out "$tmp/a" -j 2 2>"$tmp/log"
ok $? "smoke-vision runs (6 cells)"
cells=$tmp/a/smoke-vision/cells
[ "$(grep -l '"status": "ok"' "$cells"/*.json | wc -l)" = 6 ]; ok $? "  all 6 cells ok"
one=$(grep -l '"variant": "ds_v3"' "$cells"/*.json | head -1)
for m in test_acc test_loss valid_acc valid_loss train_loss aux_loss images_per_s peak_rss_mb params \
  active_params saturation_first change_rate jfi_tokens jfi_weight 'valid_acc@4' 'valid_acc@12' \
  'valid_loss@8' 'saturation@4' 'change_rate@8' 'jfi_tokens@12' 'class_acc@0' 'class_acc@9' \
  'saturation_first_class@3' 'change_rate_class@5' 'jfi_tokens_class@7'; do
  grep -q "\"$m\": [0-9]" "$one"; ok $? "  ds_v3 reports $m"
done
grep -q '"saturation@12"' "$one"; [ $? -ne 0 ]; ok $? "  no saturation at the final checkpoint (it is the reference)"
dense=$(grep -l '"variant": "dense"' "$cells"/*.json | head -1)
grep -q '"saturation_first"' "$dense"; [ $? -ne 0 ]; ok $? "  dense: no router metrics"
val() { grep -o "\"$2\": [^,}]*" "$1" | head -1 | cut -d' ' -f2; } # val FILE METRIC
awk -v v="$(val "$one" test_acc)" 'BEGIN { exit !(v >= 0 && v <= 1) }'; ok $? "  test accuracy in [0, 1]"
grep '"metrics"' "$one" | grep -q '"steps": 12[,}]'; ok $? "  12 steps"

# determinism: a rerun gives the same numbers (timings aside)
"$MOEBENCH" run -q "$smoke" --out "$tmp/b" -j 1 2>/dev/null
ok $? "rerun with -j 1"
strip() { grep '"metrics"' "$1" | tr ',' '\n' | grep -v -e images_per_s -e train_seconds -e peak_rss_mb; }
same=0
for f in "$cells"/*.json; do
  strip "$f" >"$tmp/x"; strip "$tmp/b/smoke-vision/cells/${f##*/}" >"$tmp/y"
  cmp -s "$tmp/x" "$tmp/y" || same=1
done
[ $same = 0 ]; ok $? "  bit-identical metrics"

# the second placement, epochs instead of steps, the additive combine
sed -e 's/^name: smoke-vision/name: smoke-vision-all/' -e 's/  steps: 12/  epochs: 1\n  placement: everywhere\n  combine: additive/' \
  -e 's/variant: \[.*\]/variant: [ds_v3_bias, smoe]/' "$smoke" >"$tmp/all.yaml"
"$MOEBENCH" run -q "$tmp/all.yaml" --out "$tmp/c" -j 2 2>"$tmp/log"
ok $? "placement everywhere, 1 epoch, additive combine"
f=$(grep -l '"variant": "smoe"' "$tmp/c/smoke-vision-all/cells"/*.json | head -1)
grep '"metrics"' "$f" | grep -q '"steps": 12[,}]'; ok $? "  1 epoch of 200 training images in batches of 16 = 12 steps"

"$MOEBENCH" report "$tmp/a/smoke-vision" --format md >/dev/null 2>"$tmp/log"
ok $? "report"
grep -q 'test_acc_minus_smoe' "$tmp/a/smoke-vision/report/summary.md"; ok $? "  paired table vs smoe"

# errors
sed 's/  data: fmnist-tiny/  data: no-such-dir/' "$smoke" >"$tmp/nodata.yaml"
"$MOEBENCH" run -q "$tmp/nodata.yaml" --out "$tmp/d" -j 1 2>"$tmp/log"
[ $? -ne 0 ]; ok $? "missing data -> failure"
grep -rq 'no-such-dir' "$tmp/d" "$tmp/log"; ok $? "  the message names the directory"
sed 's/  patch: 7/  patch: 5/' "$smoke" >"$tmp/p5.yaml"
"$MOEBENCH" run -q "$tmp/p5.yaml" --out "$tmp/e" -j 1 2>"$tmp/log"
[ $? -ne 0 ]; ok $? "patch 5 -> rejected"
grep -q 'does not divide' "$tmp/log"; ok $? "  says the patch does not divide the image"
sed 's/  s: 1/  s: 2/' "$smoke" >"$tmp/s2.yaml"
"$MOEBENCH" run -q "$tmp/s2.yaml" --out "$tmp/f" -j 1 2>"$tmp/log"
[ $? -ne 0 ]; ok $? "s = K -> rejected"

echo "1..$n"
[ $failed -eq 0 ]
