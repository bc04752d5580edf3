#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# vision-task.sh — the vision task end to end on the tiny Fashion-MNIST
# stand-in t/data/vision/fmnist-tiny: the smoke matrix (six variants), the
# metrics each cell reports and the values of the derived ones (FLOP
# shares against a hand count, CPU shares, throughput), the data
# fingerprint, a bit-identical rerun, training independent of the
# evaluation settings, augmentation, the MoE-everywhere placement, sparse
# upcycling (one dense phase for every variant), the logistic-regression
# baseline, diverged runs, the report, and the error paths (missing data,
# patch side not dividing 28, s >= K, upcycle misuse).
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
strip() { grep '"metrics"' "$1" | tr ',' '\n' | grep -v -e images_per_s -e train_seconds -e peak_rss_mb -e images_per_cpu_s -e train_cpu_seconds -e eval_cpu -e upcycle_cpu; }
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

# derived metrics, by value. smoke: P = 7 (Np = 16, pd = 49), D = 16,
# L = Lh = 1, F = 16, Fm = 8, C = 10; smoe N = 4 top-2 (moe_vision_flops_parts):
# embed 2*16*49*16, attention 2*16*(8*256 + 4*16*16), ffn 2*16*(2*16 + 4*16*16),
# router 16*2*16*4, experts 16*2*4*16*8, classifier 2*16*10
sm=$(grep -l '"variant": "smoe"' "$cells"/*.json | head -1)
awk -v s="$(val "$sm" flops_share_connector)" -v f="$(val "$sm" flops_per_image)" -v t="$(val "$sm" train_flops)" 'BEGIN {
  tot = 2*16*49*16 + 2*16*(8*256 + 4*16*16) + 2*16*(2*16 + 4*16*16) + 16*2*16*4 + 16*2*4*16*8 + 2*16*10
  exit !(s == (16*2*16*4 + 16*2*4*16*8) / tot && f == 3 * tot && t == 3 * tot * 12 * 16) }'
ok $? "  smoe: connector FLOP share, FLOPs per image and training FLOPs by a hand count"
awk -v a="$(val "$sm" images_per_cpu_s)" -v c="$(val "$sm" train_cpu_seconds)" 'BEGIN { x = a * c / (12 * 16) - 1; exit !(c > 0 && x < 1e-9 && x > -1e-9) }'
ok $? "  images per CPU second = 12 steps x 16 images / training CPU seconds"
cpu=$(grep -o '"cpu_s": [0-9.e-]*' "$sm" | cut -d' ' -f2)
awk -v e="$(val "$sm" eval_cpu_seconds)" -v s="$(val "$sm" eval_cpu_share)" -v t="$(val "$sm" train_cpu_seconds)" -v c="$cpu" \
  'BEGIN { d = e / s; exit !(e > 0 && s > 0 && s < 1 && d >= (t + e) * 0.999999 && d <= c * 1.000001) }'
ok $? "  eval CPU share: the cell's CPU time it implies covers training + evaluation and not more than the cell"

# the data fingerprint: sha256 of each IDX file read, and of that list
d=$srcdir/t/data/vision/fmnist-tiny
fp=$(for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
       printf '%s %s\n' $f "$(sha256sum "$d/$f" | cut -c1-64)"; done)
want=$(printf '%s' "$fp" | sha256sum | cut -c1-64)
grep -q "\"data_sha256\": \"$want\"" "$one"; ok $? "data_sha256 = sha256 of the four IDX files' sha256 list"
grep -q '"data_dir": ".*fmnist-tiny"' "$one" && ! grep -q '"data_source"' "$one"; ok $? "  data_dir recorded; no fallback note"

# training does not depend on evaluation settings (common random numbers:
# initial values from the matrix seed and the replication only)
sed -e 's/  eval_every: 4/  eval_every: 5/' -e 's/  eval_images: 0/  eval_images: 17/' -e 's/  router_images: 20/  router_images: 9/' \
  "$smoke" >"$tmp/ev.yaml"
"$MOEBENCH" run -q "$tmp/ev.yaml" --out "$tmp/ev" -j 2 2>/dev/null
ok $? "smoke-vision with other evaluation settings"
same=0 nc=0
for f in "$cells"/*.json; do
  v=$(grep -o '"variant": "[a-z_0-9]*"' "$f")
  g=$(grep -l "$v" "$tmp/ev/smoke-vision/cells/"*.json | head -1)
  for m in train_loss aux_loss test_acc test_loss valid_loss; do
    [ "$(val "$f" $m)" = "$(val "$g" $m)" ] || same=1
  done
  nc=$((nc + 1))
done
[ $nc = 6 ] && [ $same = 0 ]; ok $? "  the same final train/aux loss and test/valid loss, bit for bit ($nc cells)"

# augmentation: deterministic, and it changes training
sed -e 's/^name: smoke-vision/name: smoke-aug/' -e 's/  steps: 12/  steps: 12\n  shift: 2\n  flip: true/' \
  -e 's/variant: \[.*\]/variant: [smoe, ds_v3]/' "$smoke" >"$tmp/aug.yaml"
"$MOEBENCH" run -q "$tmp/aug.yaml" --out "$tmp/g1" -j 2 2>/dev/null && "$MOEBENCH" run -q "$tmp/aug.yaml" --out "$tmp/g2" -j 1 2>/dev/null
ok $? "shift 2 and flip: two runs"
same=0
for f in "$tmp/g1/smoke-aug/cells/"*.json; do
  strip "$f" >"$tmp/x"; strip "$tmp/g2/smoke-aug/cells/${f##*/}" >"$tmp/y"
  cmp -s "$tmp/x" "$tmp/y" || same=1
done
[ $same = 0 ]; ok $? "  bit-identical metrics"
ga=$(grep -l '"variant": "smoe"' "$tmp/g1/smoke-aug/cells/"*.json)
[ "$(val "$ga" train_loss)" != "$(val "$sm" train_loss)" ]; ok $? "  training differs from the unaugmented run"

# sparse upcycling: one dense phase for every variant, then fine-tuning
sed -e 's/^name: smoke-vision/name: smoke-up/' -e 's/  steps: 12/  steps: 12\n  init: upcycle\n  upcycle_steps: 8/' "$smoke" >"$tmp/up.yaml"
"$MOEBENCH" run -q "$tmp/up.yaml" --out "$tmp/u" -j 2 2>"$tmp/log"
ok $? "init upcycle (6 variants)"
ucells=$tmp/u/smoke-up/cells
[ "$(grep -l '"status": "ok"' "$ucells"/*.json | wc -l)" = 6 ]; ok $? "  all 6 cells ok"
[ "$(for f in "$ucells"/*.json; do echo "$(val "$f" upcycle_train_loss) $(val "$f" upcycle_valid_loss) $(val "$f" upcycle_valid_acc)"; done | sort -u | wc -l)" = 1 ]
ok $? "  the dense phase is the same for every variant (its train loss, valid loss and accuracy, bit for bit)"
u=$(grep -l '"variant": "smoe"' "$ucells"/*.json)
grep '"metrics"' "$u" | grep -q '"upcycle_steps": 8[,}]'; ok $? "  8 dense-phase steps"
[ "$(val "$u" train_loss)" != "$(val "$sm" train_loss)" ]; ok $? "  fine-tuning starts elsewhere than scratch"
# the dense phase's cache: written once, read back; the same bits either way
mkdir -p "$tmp/cache"
MOEBENCH_VISION_CACHE=$tmp/cache "$MOEBENCH" run -q "$tmp/up.yaml" --out "$tmp/uc1" -j 1 2>/dev/null &&
  MOEBENCH_VISION_CACHE=$tmp/cache "$MOEBENCH" run -q "$tmp/up.yaml" --out "$tmp/uc2" -j 2 2>/dev/null
ok $? "init upcycle with MOEBENCH_VISION_CACHE, twice"
[ "$(ls "$tmp/cache" | grep -c '^dense-[0-9a-f]\{64\}\.bin$')" = 1 ] && [ "$(ls "$tmp/cache" | wc -l)" = 1 ]
ok $? "  one cache file for the one dense phase"
[ "$(grep -l '"upcycle_cache": "written"' "$tmp/uc1/smoke-up/cells/"*.json | wc -l)" = 1 ] &&
  [ "$(grep -l '"upcycle_cache": "read"' "$tmp/uc1/smoke-up/cells/"*.json "$tmp/uc2/smoke-up/cells/"*.json | wc -l)" = 11 ]
ok $? "  written by the first cell, read by the other 11"
same=0
for f in "$ucells"/*.json; do
  strip "$f" >"$tmp/x"
  for g in "$tmp/uc1/smoke-up/cells/${f##*/}" "$tmp/uc2/smoke-up/cells/${f##*/}"; do
    strip "$g" >"$tmp/y"; cmp -s "$tmp/x" "$tmp/y" || same=1
  done
done
[ $same = 0 ]; ok $? "  cached or not: bit-identical metrics in every cell"
c=$(ls "$tmp/cache/"*.bin)
printf 'x' | dd of="$c" bs=1 seek=100 conv=notrunc 2>/dev/null
MOEBENCH_VISION_CACHE=$tmp/cache "$MOEBENCH" run -q "$tmp/up.yaml" --out "$tmp/uc3" -j 1 2>/dev/null
g=$(grep -l '"variant": "smoe"' "$tmp/uc3/smoke-up/cells/"*.json)
[ "$(grep -l '"upcycle_cache": "written"' "$tmp/uc3/smoke-up/cells/"*.json | wc -l)" = 1 ] && strip "$g" >"$tmp/y" && strip "$u" >"$tmp/x" && cmp -s "$tmp/x" "$tmp/y"
ok $? "  a damaged cache file is recomputed and replaced, with the same result"
sed 's/  upcycle_steps: 8/  upcycle_steps: 0/' "$tmp/up.yaml" >"$tmp/up0.yaml"
"$MOEBENCH" expand "$tmp/up0.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 'init upcycle needs a dense phase' "$tmp/log"; ok $? "upcycle without a dense phase is refused"
sed 's/  upcycle_steps: 8/  upcycle_steps: 8\n  placement: everywhere/' "$tmp/up.yaml" >"$tmp/upe.yaml"
"$MOEBENCH" expand "$tmp/upe.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 'needs placement connector' "$tmp/log"; ok $? "upcycle with MoE everywhere is refused"
sed 's/  upcycle_steps: 8/  upcycle_steps: 8\n  model: logreg/' "$tmp/up.yaml" >"$tmp/upl.yaml"
"$MOEBENCH" expand "$tmp/upl.yaml" >/dev/null 2>"$tmp/log"
[ $? -eq 2 ] && grep -q 'needs model transformer' "$tmp/log"; ok $? "upcycle of the logistic regression is refused"

# the logistic-regression baseline
sed -e 's/^name: smoke-vision/name: smoke-lr/' -e 's/  steps: 12/  steps: 12\n  model: logreg/' \
  -e 's/variant: \[.*\]/variant: [smoe]/' "$smoke" >"$tmp/lr.yaml"
"$MOEBENCH" run -q "$tmp/lr.yaml" --out "$tmp/l" -j 1 2>"$tmp/log"
ok $? "model logreg"
f=$(ls "$tmp/l/smoke-lr/cells/"*.json)
grep -q '"status": "ok"' "$f" && grep '"metrics"' "$f" | grep -q '"params": 7850[,}]'; ok $? "  ok, 784 x 10 + 10 parameters"
awk -v f="$(val "$f" flops_per_image)" 'BEGIN { exit !(f == 3 * 2 * 784 * 10) }'; ok $? "  3 x 2 x 784 x 10 FLOPs per image"
! grep -q '"saturation_first"' "$f"; ok $? "  no router metrics"

# a diverging run is recorded as diverged, never ok
sed -e 's/^name: smoke-vision/name: smoke-div/' -e 's/  steps: 12/  steps: 12\n  lr: 10\n  clip: 0/' "$smoke" >"$tmp/div.yaml"
"$MOEBENCH" run -q "$tmp/div.yaml" --out "$tmp/dv" -j 2 2>"$tmp/log"
ok $? "lr 10, clip 0: the run records its cells (exit 0)"
dcells=$tmp/dv/smoke-div/cells
nd=$(grep -l '"status": "diverged"' "$dcells"/*.json | wc -l)
nok=$(grep -l '"status": "ok"' "$dcells"/*.json | wc -l)
[ "$nd" -ge 4 ]; ok $? "  $nd of 6 cells diverged"
okbad=0
for f in $(grep -l '"status": "ok"' "$dcells"/*.json); do
  awk -v l="$(val "$f" train_loss)" 'BEGIN { exit !(l == l && l < 2 * log(10)) }' || okbad=1
done
ok $okbad "  no cell recorded ok has a training loss above 2 ln 10 ($nok ok)"
grep -q '"error": "training step [0-9]*: training diverged: cross-entropy [0-9.e+]* nats above 2 ln 10 = 4.605' "$dcells"/*.json
ok $? "  a cause names the step and the bound 2 ln 10"
"$MOEBENCH" status "$tmp/div.yaml" --out "$tmp/dv" >"$tmp/st" 2>&1
grep -q "smoke-div: 6 cells: $nok ok, $nd diverged, 0 failed, 0 missing" "$tmp/st"; ok $? "  status counts them"

echo "1..$n"
[ $failed -eq 0 ]
