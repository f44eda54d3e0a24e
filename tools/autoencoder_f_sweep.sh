#!/usr/bin/env bash
# Trains KL and VQ autoencoders for f = 1, 2, 4, 8, 16, 32 on Fashion-MNIST (32x32) with the same
# budget and prints held-out PSNR, SSIM, codebook usage and latent statistics per f: the paper's
# compression trade-off (Sec. 4.1) at laptop scale. An interim script until sweep specs can do it.
#
# Usage: tools/autoencoder_f_sweep.sh [STEPS] [OUT]   (defaults: 400, results/autoencoder-f-sweep)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-400}"
out="${2:-results/autoencoder-f-sweep}"
bin="${LATENTLAB:-build/bin/latentlab}"
mkdir -p "$out"
mults=(1 2 2 4 4 4)
printf '| regulariser | f | latent | held-out PSNR (dB) | SSIM | codes used | latent std | seconds |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
for reg in kl vq; do
  for levels in 1 2 3 4 5 6; do
    f=$((1 << (levels - 1)))
    ch_mult=$(IFS=,; echo "${mults[*]:0:$levels}")
    extra='"embed_dim": 4'
    [ "$reg" = vq ] && extra='"embed_dim": 4, "n_embed": 256, "restart_every": 100'
    run="$out/$reg-f$f"
    cat > "$run.json" <<JSON
{
  "output": "$run",
  "seed": 0,
  "data": {"dataset": "fashion-mnist", "params": {"resolution": 32}},
  "autoencoder": {"name": "$reg", "params": {"ch": 32, "ch_mult": [$ch_mult], "num_res_blocks": 1,
                  "z_channels": 4, "norm_groups": 8, $extra}},
  "loss": {"disc_start": $((steps + 1))},
  "train": {"steps": $steps, "batch_size": 16, "lr": 1e-3, "log_every": 100, "checkpoint_every": $steps},
  "eval": {"every": 0, "samples": 1024, "batch_size": 64},
  "latents": {"samples": 2048}
}
JSON
    rm -rf "$run"
    start=$(date +%s)
    "$bin" train-autoencoder "$run.json" --log-level warn
    seconds=$(( $(date +%s) - start ))
    "$bin" reconstruct --autoencoder "$run" fashion-mnist --count 1024 --format json --log-level warn \
      > "$run/reconstruct.json" 2>/dev/null
    python3 - "$run/reconstruct.json" "$reg" "$f" "$seconds" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
h = 32 // int(sys.argv[3])
usage = (f"{round(r['codebook_usage'] * r['codebook_size'])} of {r['codebook_size']} (perplexity {r['perplexity']:.0f})"
         if "codebook_usage" in r else "-")
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['latent_channels']}x{h}x{h} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
      f"{usage} | {r['latent_statistics']['std']:.3f} | {sys.argv[4]} |")
PY
  done
done
