#!/usr/bin/env bash
# The quick start: set-up, build, then LatentLab's main job end to end: the sweep of
# experiments/quickstart.json (docs/quickstart.md) through the engine: small KL autoencoders at
# f = 1, 2, 4 on Fashion-MNIST, their latent statistics, latent denoisers with the same compute per f
# (the unweighted loss; at f = 4 also the true ELBO weighting), two samplers each, metrics on
# LatentLab's own classifier features, one HDF5 file per trial, and the sweep's tables and report.
# Re-running it reuses every finished stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
host="${BUILD_DIR:-build}/bin/latentlab"
run() { echo; echo "\$ latentlab $*"; "$host" "$@"; }
run --version
run doctor || echo "(doctor found problems: see the fix lines above)"
run plugins list
run run quickstart --dry-run  # experiments/quickstart.json, built into the host
run run quickstart --workers 2
echo
echo "Sample grids (one per trial and sampler) and reconstructions (original | reconstruction):"
find results/quickstart/samples -name '*.png' | sort | sed 's/^/  /'
run table results/quickstart --rows f,weighting,eval --metrics fid,kid,precision,recall,elbo_bpd
echo
echo "The report, with every table, figure and sample grid: open $(pwd)/results/quickstart/report/index.html"
