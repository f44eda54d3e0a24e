#!/usr/bin/env bash
# Set-up, build, then the whole test suite (GoogleTest under ctest, plus the integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --tests
bash tools/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-2}"
