#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Install moebench's build and run dependencies on Debian 12 (as root or
# with sudo). Optional extras: gnuplot-nox (figures); the datasets step
# (`make fetch-data`) also uses dataset-fashion-mnist, npm and bible-kjv.
set -e
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential autoconf automake libtool pkg-config \
  libgsl-dev libopenblas-dev libyaml-dev zlib1g-dev libsleef-dev libutf8proc-dev \
  gnuplot-nox ca-certificates git "$@"
