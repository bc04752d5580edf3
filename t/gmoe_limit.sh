#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# gmoe_limit.sh — `moebench gmoe-limit`: help, option errors, and a small
# run whose output is a readable moebench-gmoe model with provenance.
echo "1..8"
out=t_gmoe_limit_out.txt
trap 'rm -f "$out"' EXIT
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
check "--help exits 0 and names the verb" '"$MOEBENCH" gmoe-limit --help | grep -q "gmoe-limit EXPERIMENT"'
check "no experiment: usage, exit 2" '"$MOEBENCH" gmoe-limit >/dev/null 2>&1; test $? -eq 2'
check "unknown experiment: exit 2 with message" '"$MOEBENCH" gmoe-limit thm9 2>&1 >/dev/null | grep -q "unknown experiment .thm9."'
check "bad number: exit 2" '"$MOEBENCH" gmoe-limit thm4 --n 12x >/dev/null 2>&1; test $? -eq 2'
"$MOEBENCH" gmoe-limit thm4 --n 3000 --max-iter 30 --restarts 1 > "$out" 2>/dev/null
check "small run writes a model with provenance" 'grep -q "^# produced by: moebench gmoe-limit thm4" "$out" && grep -q "^moebench-gmoe 1" "$out"'
check "one model per branch (2 true routed experts): 6 routed and 4 shared lines" 'test "$(grep -c "^moebench-gmoe 1" "$out")" -eq 2 && test "$(grep -c "^routed " "$out")" -eq 6 && test "$(grep -c "^shared " "$out")" -eq 4'
"$MOEBENCH" gmoe-limit thm4 --n 2000 --max-iter 10 --restarts 1 --branch 1 > "$out" 2>/dev/null
check "--branch 1: a single model, labelled branch 1" 'test "$(grep -c "^moebench-gmoe 1" "$out")" -eq 1 && grep -q "branch 1" "$out"'
check "--branch 2 on a 2-expert truth: exit non-zero with message" '"$MOEBENCH" gmoe-limit thm4 --n 500 --branch 2 >/dev/null 2>"$out"; test $? -ne 0 && grep -q "has 2 routed experts" "$out"'
