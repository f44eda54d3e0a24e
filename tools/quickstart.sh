#!/usr/bin/env bash
# The quick start: set-up, build, then the most complete end-to-end run LatentLab has today:
# check the environment, list the plugins, print the paper's default noise schedule, and train a
# small pixel-space denoiser on Fashion-MNIST for a minute, logging both yardsticks, sample it and
# measure the samples (FID, KID, IS, precision/recall), and train a small f = 4 KL autoencoder and
# measure its reconstructions (PSNR, SSIM, rFID).
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
run bench denoiser --batch 1,64 --repeats 3 --min-seconds 0.5
rm -rf results/quickstart-denoiser  # a fresh run each time (a folder with a checkpoint needs --resume)
run train-denoiser experiments/quickstart-denoiser.json
echo
echo "\$ cat results/quickstart-denoiser/eval.csv"
cat results/quickstart-denoiser/eval.csv
run samplers check --sampler ddim --sampler dpmpp_2m --data gaussian
run sample results/quickstart-denoiser --sampler dpmpp_2m --steps 20 --count 256
# Metrics on LatentLab's own classifier features (no Inception weights here); a short recipe so that
# the quick start trains it in under a minute (the default recipe reaches 92%, docs/metrics.md).
classifier=(--cache results/cache --feature-set steps=500)
run fid results/quickstart-denoiser/samples fashion-mnist:test --count 256 "${classifier[@]}"
rm -rf results/quickstart-autoencoder
run train-autoencoder experiments/quickstart-autoencoder.json
run reconstruct --autoencoder results/quickstart-autoencoder fashion-mnist --count 256 --rfid "${classifier[@]}"
