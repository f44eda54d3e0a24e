#!/usr/bin/env bash
# The quick start: set-up, build, then LatentLab's main job end to end: the sweep of
# experiments/quickstart.json (docs/spec.md) through the engine: a small f = 4 KL autoencoder on
# Fashion-MNIST, its latent statistics, a latent denoiser trained with the unweighted loss and with
# the true ELBO weighting, two samplers each, metrics on LatentLab's own classifier features, one
# HDF5 file per trial, and the summary table. Re-running it reuses every finished stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
host="${BUILD_DIR:-build}/bin/latentlab"
run() { echo; echo "\$ latentlab $*"; "$host" "$@"; }
run --version
run doctor || echo "(doctor found problems: see the fix lines above)"
run plugins list
run run experiments/quickstart.json --dry-run
run run experiments/quickstart.json --workers 2
run status results/quickstart
echo
echo "Sample grids (one per trial and sampler) and reconstructions (original | reconstruction):"
find results/quickstart/samples -name '*.png' | sort | sed 's/^/  /'
