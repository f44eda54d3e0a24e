#!/usr/bin/env bash
# Installs every Debian 12 package LatentLab needs to build, test and run.
# Idempotent: packages already installed are skipped; nothing runs when all are present.
# Usage: tools/setup.sh            (as root, or with sudo available)
#        tools/setup.sh --tests    also what only the tests use: Python's torch, with which they make
#                                  reference outputs to compare LatentLab's networks against, h5py,
#                                  with which they read trial files as a user would, headless
#                                  Chromium, which opens the sweep report, and a TeX install with
#                                  booktabs and siunitx, which compiles the LaTeX tables
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev                      # LibTorch 1.13 (CPU)
  libopenblas0-pthread              # without it LibTorch uses reference BLAS (~15x slower GEMM)
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libhdf5-dev                       # HDF5 C and C++ APIs
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libstb-dev                        # PNG/JPEG decoding and encoding
  zlib1g-dev                        # gzip-compressed IDX files (Fashion-MNIST)
  dataset-fashion-mnist             # real data for the quick start and tests
  libplplot-dev plplot-driver-cairo # figures: PLplot's C++ binding, cairo drivers for SVG, PDF, PNG
)

if [ "${1:-}" = "--tests" ]; then
  PACKAGES+=(python3-torch python3-numpy python3-h5py chromium
             texlive-latex-base texlive-latex-recommended texlive-science)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
