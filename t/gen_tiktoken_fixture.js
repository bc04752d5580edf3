#!/usr/bin/env node
// SPDX-License-Identifier: GPL-3.0-or-later
// gen_tiktoken_fixture.js — reference fixtures for libmoe's r50k tokenizer,
// made by OpenAI's tiktoken (npm `tiktoken`, the Rust core compiled to
// WASM: fancy-regex over the regex crate for the pre-tokenizer). Not run by
// `make check`; t/test_bpe.c reads what it writes. To regenerate:
//
//   d=$(mktemp -d) && (cd "$d" && npm install --no-save tiktoken@1.0.22)
//   NODE_PATH="$d/node_modules" node t/gen_tiktoken_fixture.js t/data/text
//
// It writes into the given directory:
//
// r50k_codepoints.txt.gz — r50k_base ids of every code point U+0000..U+10FFFF
//   except the surrogates, each in three contexts: C1 = X alone, C2 = "a" X,
//   C3 = " " X " ". The ids are hashed per block of 256 code points (the
//   block's code points in order, surrogates left out), one line per block
//   and context: "BLOCK H1 H2 H3", BLOCK = first code point in hex, Hk = 16
//   hex digits, two 32-bit lanes a and b, both updated for each id x and,
//   after each code point's ids, for x = 0xFFFFFFFF:
//     a = (a ^ x) * 0x01000193 mod 2^32                 (a0 = 0x811c9dc5)
//     b = (b ^ x) * 0x5bd1e995 mod 2^32; b ^= b >> 15   (b0 = 0x9747b28c)
//   Hk = a as 8 hex digits, then b as 8 hex digits.
//
// tiktoken_classes.txt — the class that tiktoken's regex gives every code
//   point X, read from tiktoken's own output with a probe vocabulary: the
//   256 bytes plus, as whole tokens, the four strings "a" X, "1" X, "!" X
//   and X "\n" of every X of a plane. tiktoken takes a piece that is itself
//   a token as that one id, so a probe encodes to one id exactly when the
//   regex keeps it in one piece: "a" X when X is \p{L}, "1" X when \p{N},
//   "!" X when [^\s\p{L}\p{N}], X "\n" when \s. Lines "LO HI BITS" (hex
//   code points, inclusive) cover maximal ranges with equal BITS, a 4-bit
//   value: 1 = L, 2 = N, 4 = other, 8 = space (bit set = one piece).
//
// r50k_lines.txt — mixed-script lines: "HEX<TAB>IDS", the line's UTF-8 in
//   hex, then its r50k_base ids separated by spaces.
//
// Options (for debugging, written to stdout): --block HEX prints
// "CP<TAB>ids C1|ids C2|ids C3" for one 256-code-point block; --full FILE
// writes that for every code point.
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { get_encoding, Tiktoken } = require("tiktoken");
const tkdir = path.dirname(require.resolve("tiktoken"));
const tkver = JSON.parse(fs.readFileSync(path.join(tkdir, "package.json"), "utf8")).version;
const pat = JSON.parse(fs.readFileSync(path.join(tkdir, "encoders", "r50k_base.json"), "utf8")).pat_str;

const enc = get_encoding("r50k_base");
const isSurrogate = (cp) => cp >= 0xd800 && cp <= 0xdfff;
const ctx = [(x) => x, (x) => "a" + x, (x) => " " + x + " "];
const ids = (s) => Array.from(enc.encode_ordinary(s));

function cpIds(cp) {
  const x = String.fromCodePoint(cp);
  return ctx.map((f) => ids(f(x)));
}

function dumpLine(cp) {
  return cp.toString(16).toUpperCase().padStart(4, "0") + "\t" + cpIds(cp).map((v) => v.join(" ")).join("|");
}

const args = process.argv.slice(2);
if (args[0] === "--block") {
  const lo = parseInt(args[1], 16) & ~0xff;
  for (let cp = lo; cp < lo + 256; cp++) if (!isSurrogate(cp)) console.log(dumpLine(cp));
  process.exit(0);
}
if (args[0] === "--full") {
  const fd = fs.openSync(args[1], "w");
  for (let cp = 0; cp <= 0x10ffff; cp++) if (!isSurrogate(cp)) fs.writeSync(fd, dumpLine(cp) + "\n");
  fs.closeSync(fd);
  process.exit(0);
}
if (args.length !== 1) {
  console.error("usage: gen_tiktoken_fixture.js OUTDIR | --block HEX | --full FILE");
  process.exit(2);
}
const out = args[0];
const only = process.env.ONLY; // "codepoints", "classes" or "lines": one output
const hex8 = (v) => (v >>> 0).toString(16).padStart(8, "0");

// 1. r50k ids of every code point, hashed per block.
if (!only || only === "codepoints") {
  const lines = [
    "# r50k_base ids of every code point (surrogates excluded) in three contexts,",
    "# C1 = X, C2 = \"a\" X, C3 = \" \" X \" \", hashed per 256-code-point block:",
    "# BLOCK H1 H2 H3 (see t/gen_tiktoken_fixture.js). tiktoken " + tkver + " (npm, WASM).",
  ];
  for (let lo = 0; lo <= 0x10ffff; lo += 256) {
    if (isSurrogate(lo)) continue;
    const a = [0x811c9dc5, 0x811c9dc5, 0x811c9dc5], b = [0x9747b28c, 0x9747b28c, 0x9747b28c];
    const mix = (k, x) => {
      a[k] = Math.imul(a[k] ^ x, 0x01000193) >>> 0;
      let t = Math.imul(b[k] ^ x, 0x5bd1e995) >>> 0;
      b[k] = (t ^ (t >>> 15)) >>> 0;
    };
    for (let cp = lo; cp < lo + 256; cp++) {
      const v = cpIds(cp);
      for (let k = 0; k < 3; k++) {
        for (const x of v[k]) mix(k, x);
        mix(k, 0xffffffff);
      }
    }
    lines.push(lo.toString(16).toUpperCase() + " " + [0, 1, 2].map((k) => hex8(a[k]) + hex8(b[k])).join(" "));
  }
  fs.writeFileSync(path.join(out, "r50k_codepoints.txt.gz"),
                   zlib.gzipSync(lines.join("\n") + "\n", { level: 9 }));
}

// 2. The class of every code point, from tiktoken's output on probe tokens.
if (!only || only === "classes") {
  const probes = [(x) => "a" + x, (x) => "1" + x, (x) => "!" + x, (x) => x + "\n"];
  const bits = new Uint8Array(0x110000);
  for (let plane = 0; plane < 17; plane++) {
    const lo = plane << 16, hi = lo + 0xffff;
    const seen = new Set(), vocab = [];
    for (let b = 0; b < 256; b++) {
      seen.add(Buffer.from([b]).toString("base64"));
      vocab.push(Buffer.from([b]).toString("base64") + " " + b);
    }
    for (let cp = lo; cp <= hi; cp++) {
      if (isSurrogate(cp)) continue;
      const x = String.fromCodePoint(cp);
      for (const p of probes) {
        const b64 = Buffer.from(p(x), "utf8").toString("base64");
        if (seen.has(b64)) continue;
        seen.add(b64);
        vocab.push(b64 + " " + vocab.length);
      }
    }
    const t = new Tiktoken(vocab.join("\n") + "\n", {}, pat);
    for (let cp = lo; cp <= hi; cp++) {
      if (isSurrogate(cp)) continue;
      const x = String.fromCodePoint(cp);
      let v = 0;
      probes.forEach((p, k) => { if (t.encode_ordinary(p(x)).length === 1) v |= 1 << k; });
      if (v !== 1 && v !== 2 && v !== 4 && v !== 8)
        console.error("note: U+" + cp.toString(16).toUpperCase() + " has class bits " + v);
      bits[cp] = v;
    }
    t.free();
  }
  const lines = [
    "# The pre-tokenizer class of every code point as tiktoken " + tkver + " (npm, WASM) splits",
    "# GPT-2's pattern: \"LO HI BITS\", hex, inclusive; 1 = \\p{L}, 2 = \\p{N},",
    "# 4 = [^\\s\\p{L}\\p{N}], 8 = \\s (see t/gen_tiktoken_fixture.js). Surrogates are left out.",
  ];
  let start = 0;
  const flush = (s, e) => lines.push(s.toString(16).toUpperCase() + " " + e.toString(16).toUpperCase() + " " + bits[s]);
  for (let cp = 1; cp <= 0x110000; cp++) {
    if (cp === 0xd800) { flush(start, cp - 1); cp = 0xe000; start = cp; continue; }
    if (cp === 0x110000 || bits[cp] !== bits[start]) { flush(start, cp - 1); start = cp; }
  }
  fs.writeFileSync(path.join(out, "tiktoken_classes.txt"), lines.join("\n") + "\n");
}

// 3. Mixed-script lines.
if (!only || only === "lines") {
  const text = [
    "مرحبا، كيف",
    "مرحبا، كيف حالك؟ أنا بخير، شكراً جزيلاً! ١٢٣ و456.",
    "السَّلَامُ عَلَيْكُمْ — «اقتباس» ؛ ٪٥٠",
    "שָׁלוֹם עוֹלָם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं? ०१२३",
    "வணக்கம் உலகம் ௧௨௩ ௰",
    "สวัสดีชาวโลก ๑๒๓ ฿100",
    "你好，世界！这是一个测试。「引号」『书名』〜",
    "こんにちは、世界。カタカナ・ひらがな ｶﾀｶﾅ ＡＢＣ１２３！",
    "안녕하세요 세계 ㈜ ㉠ ①②③",
    "Привет, мир! Ёлка — «ёж»; № 5",
    "Γειά σου Κόσμε· ερώτηση; ΑΒΓ",
    "Ünïcödé naïve café résumé e\u0301 a\u0308 n\u0303",
    "x\u00a0y\u2009z\u3000w\u202fv\u2028u\u2029t\u0085s\u1680r",
    "∀x∈ℝ: x² ≥ 0 ∧ ∑ᵢ aᵢ ≤ ∞ ⇒ ∮ ⊕ ⊗ ½ ¾ ⅓ Ⅻ ⅻ",
    "emoji 👋🏽 👨‍👩‍👧‍👦 🇩🇪 ❤️ ☕ ✓ ★ ©®™",
    "tabs\tand\nnewlines\r\n  indented   spaces  ",
    "math 𝐀𝐁𝐂 𝟘𝟙𝟚 𝔄𝔅 and cuneiform 𒀀𒀁 and 𐍈",
    "Ethiopic ሰላም ፩፪፫ ። Armenian Բարեւ ։ Georgian გამარჯობა",
    "Tibetan བཀྲ་ཤིས་ ༡༢༣ Myanmar မင်္ဂလာပါ ၁၂၃",
    "Devanagari with marks: क्षत्रिय, ज़्यादा, ॐ; Bengali ১২৩ টাকা ৳",
    "it's we'll they're I'd — don’t ’s ‘quoted’ “double”",
    "ZWJ\u200dZWNJ\u200cLRM\u200eBOM\ufeffSHY\u00adend",
    "private use \ue000\uf8ff \u{f0000} noncharacter \ufffe\uffff \u{10ffff} replacement \ufffd",
    "tag \u{e0041}\u{e0042} variation \ufe0f\ufe0e combining enclosing a\u20dd",
    // Runs of one character: pairs of equal rank side by side, where the
    // leftmost-first tie rule of BPE decides the ids.
    "aaaaaaa bbbbbbb zzzzzzz xxxxxxx qqqqqqq",
    "!!!!!!! ??????? ....... ------- ======= ******* ####### ~~~~~~~",
    "0000000 1111111 9999999 ééééééé ççççççç ñññññññ",
    "ااااااا ححححح ممممم ккккккк ЖЖЖЖЖЖЖ ααααααα",
    "日日日日日 ののののの 😀😀😀😀😀 ✓✓✓✓✓ ★★★★★",
    "abababab cdcdcdcd xyxyxyxy aabbaabb",
  ];
  const lines = text.map((s) => Buffer.from(s, "utf8").toString("hex") + "\t" + ids(s).join(" "));
  fs.writeFileSync(path.join(out, "r50k_lines.txt"), lines.join("\n") + "\n");
}
