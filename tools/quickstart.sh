#!/usr/bin/env bash
# The quick start: set-up, build, then the most complete end-to-end run LatentLab has today:
# check the environment, list the plugins, and print the paper's default noise schedule.
# (The sweep engine will replace this with `latentlab sweep experiments/quickstart.json`.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
host="${BUILD_DIR:-build}/bin/latentlab"
run() { echo; echo "\$ latentlab $*"; "$host" "$@"; }
run --version
run doctor || echo "(doctor found problems: see the fix lines above)"
run plugins list
run plugins show linear
run schedule linear --every 100
run schedule cosine --every 100
run schedule cosine --check
