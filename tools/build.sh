#!/usr/bin/env bash
# Installs missing system packages, then configures and builds LatentLab into build/ (Release, -j2).
# Environment: BUILD_DIR (default build), BUILD_TYPE (default Release), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}"
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
