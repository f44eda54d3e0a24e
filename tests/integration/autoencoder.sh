#!/usr/bin/env bash
# Stage 1 and latent diffusion end to end, through the command line: train-autoencoder (KL and VQ, with
# the GAN from its disc_start) on real Fashion-MNIST, an interrupted run resumed, reconstruct on a
# dataset and on an image folder, train-denoiser on the latents and sample them, import-weights of a
# checkpoint PyTorch wrote in the reference layout, plugins check, and the errors a user meets.
# Usage: autoencoder.sh HOST SOURCE_DIR WORK_DIR
set -euo pipefail
host="$1"
source_dir="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi

config() {  # config NAME EXTRA_PARAMS STEPS
  cat > "$work/$1.json" <<JSON
{
  "output": "$work/$1",
  "seed": 1,
  "data": {"dataset": "fashion-mnist", "params": {"limit": 256, "resolution": 16, "fit": "resize"}},
  "autoencoder": {"name": "$1", "params": {"ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "norm_groups": 4,
                  "z_channels": 2, "embed_dim": 2 $2}},
  "loss": {"disc_start": 4, "disc_layers": 2, "disc_channels": 8},
  "train": {"steps": $3, "batch_size": 8, "lr": 1e-3, "log_every": 4, "checkpoint_every": 4},
  "eval": {"every": 4, "samples": 16, "batch_size": 16, "data_params": {"split": "test"}},
  "latents": {"samples": 64, "rescale": "std"}
}
JSON
}

echo "== train-autoencoder: kl (interrupted by --steps, then resumed), vq"
config kl "" 8
"$host" train-autoencoder "$work/kl.json" --steps 4 --threads 1 2> "$work/kl1.log" || { cat "$work/kl1.log"; fail "kl"; }
sed -i 's/"steps": 8/"steps": 10/' "$work/kl.json"
"$host" train-autoencoder "$work/kl.json" --resume --threads 1 2> "$work/kl2.log" || { cat "$work/kl2.log"; fail "resume"; }
grep -q "resumed from" "$work/kl2.log" || fail "no resumption"
for f in autoencoder.pt latent_stats.json checkpoint.pt train.csv eval.csv config.json; do
  test -s "$work/kl/$f" || fail "kl: missing $f"
done
tail -1 "$work/kl/train.csv" | grep -qv nan || fail "the GAN terms never started (nan in the last row)"
head -2 "$work/kl/train.csv" | tail -1 | grep -q nan || fail "GAN columns before disc_start should be nan"
grep -q '"snr_eff"' "$work/kl/latent_stats.json" || fail "no SNR_eff table"
config vq ', "n_embed": 32, "restart_every": 4' 6
"$host" train-autoencoder "$work/vq.json" --threads 1 2> "$work/vq.log" || { cat "$work/vq.log"; fail "vq"; }
grep -q "codebook_usage" "$work/vq/eval.csv" || fail "vq: no codebook usage in eval.csv"

echo "== reconstruct: a dataset (with rFID on a small classifier), an image folder"
"$host" reconstruct --autoencoder "$work/vq" fashion-mnist --count 32 --data-set fit=resize --threads 1 \
  --rfid --cache "$work/cache" --feature-set steps=20 --feature-set width=8 --feature-set feature_dim=16 \
  > "$work/rec.out" 2> "$work/rec.log" || { cat "$work/rec.log"; fail "reconstruct"; }
grep -q "PSNR" "$work/rec.out" && grep -q "codebook" "$work/rec.out" || { cat "$work/rec.out"; fail "metrics"; }
grep -q "^rFID .*classifier features, 32 images" "$work/rec.out" || { cat "$work/rec.out"; fail "no rFID"; }
grep -q '"rfid":' "$work/vq/reconstructions/metrics.json" || fail "no rfid in metrics.json"
test -s "$work/vq/reconstructions/reconstructions.png" || fail "no reconstructions.png"
mkdir -p "$work/folder/shirts"
cp "$work/vq/reconstructions/images/00000.png" "$work/vq/reconstructions/images/00001.png" "$work/folder/shirts/"
"$host" reconstruct --autoencoder "$work/kl/autoencoder.pt" "$work/folder" --out "$work/rec2" --format json \
  --threads 1 > "$work/rec2.json" 2> "$work/rec2.log" || { cat "$work/rec2.log"; fail "reconstruct folder"; }
grep -q '"images": 2' "$work/rec2.json" || { cat "$work/rec2.json"; fail "folder: expected 2 images"; }

echo "== stage 2 on the latents: train-denoiser, sample"
cat > "$work/latent.json" <<JSON
{
  "output": "$work/latent",
  "seed": 2,
  "data": {"dataset": "fashion-mnist", "params": {"limit": 64, "resolution": 16, "fit": "resize"}},
  "autoencoder": "$work/kl",
  "schedule": {"name": "linear", "params": {"T": 100}},
  "unet": {"in_channels": 2, "out_channels": 2, "model_channels": 32, "channel_mult": [1, 2],
           "num_res_blocks": 1, "attention_resolutions": [2], "num_head_channels": 32},
  "train": {"steps": 3, "batch_size": 8, "log_every": 3},
  "eval": {"every": 0, "samples": 8, "strata": 1, "batch_size": 8}
}
JSON
"$host" train-denoiser "$work/latent.json" --threads 1 2> "$work/latent.log" || { cat "$work/latent.log"; fail "latent"; }
test -s "$work/latent/autoencoder.pt" || fail "the denoiser's folder lacks its autoencoder"
rm -rf "$work/kl"  # the run folder's copy is enough from now on
"$host" sample "$work/latent" --steps 5 --count 3 --threads 1 2> "$work/sample.log" || { cat "$work/sample.log"; fail "sample"; }
for f in samples.png samples.npy latents.npy samples.json; do test -s "$work/latent/samples/$f" || fail "missing $f"; done
# images decoded to 1 x 16 x 16 (f = 2 from 2 x 8 x 8 latents): 128-byte header + 3 x 256 floats
[ "$(stat -c %s "$work/latent/samples/samples.npy")" -eq $((128 + 3 * 256 * 4)) ] || fail "samples.npy size"
[ "$(stat -c %s "$work/latent/samples/latents.npy")" -eq $((128 + 3 * 128 * 4)) ] || fail "latents.npy size"

echo "== import-weights: a first stage PyTorch saved in the reference layout"
fixtures="$source_dir/tests/fixtures/reference"
"$host" import-weights "$fixtures/kl_tiny.ckpt" --config "$fixtures/kl_tiny.json" --out "$work/imported/autoencoder.pt" \
  --scale-factor 0.5 --threads 1 2> "$work/import.log" || { cat "$work/import.log"; fail "import"; }
grep -q "2 other keys of the file left out" "$work/import.log" || { cat "$work/import.log"; fail "import report"; }
"$host" reconstruct --autoencoder "$work/imported" fashion-mnist --count 8 --resolution 16 --data-set fit=resize \
  --threads 1 > "$work/rec3.out" 2> "$work/rec3.log" || { cat "$work/rec3.log"; fail "reconstruct imported"; }
grep -q "rescaling    std" "$work/rec3.out" || { cat "$work/rec3.out"; fail "imported rescaling"; }

echo "== plugins check"
"$host" plugins check vq --set ch=8 --set norm_groups=4 --set n_embed=16 --set 'ch_mult=[1,2,2]' --threads 1 \
  > "$work/check.out" 2>&1 || { cat "$work/check.out"; fail "plugins check vq"; }

echo "== errors name the problem and the fix, before any compute"
expect_status() {  # expect_status STATUS PATTERN ARGS...
  local want=$1 pattern=$2; shift 2
  local status=0
  "$host" "$@" --threads 1 > "$work/err.out" 2>&1 || status=$?
  [ "$status" -eq "$want" ] || { cat "$work/err.out"; fail "expected exit $want for: $*"; }
  grep -q -e "$pattern" "$work/err.out" || { cat "$work/err.out"; fail "expected '$pattern' for: $*"; }
}
sed 's/"ch": 8,/"ch": 8, "ch_mlt": [1],/' "$work/vq.json" > "$work/bad.json"
expect_status 2 'did you mean "ch_mult"' train-autoencoder "$work/bad.json" --output "$work/bad"
sed 's/"ch": 8/"ch": 6/' "$work/vq.json" > "$work/bad.json"
expect_status 2 "norm_groups" train-autoencoder "$work/bad.json" --output "$work/bad"
expect_status 2 "already holds a checkpoint" train-autoencoder "$work/vq.json"
sed 's/"ch": 4/"ch": 8/' "$fixtures/kl_tiny.json" > "$work/wrong.json"
expect_status 1 "encoder.conv_in.weight: \[4, 1, 3, 3\] in the file, \[8, 1, 3, 3\] in the model" \
  import-weights "$fixtures/kl_tiny.ckpt" --config "$work/wrong.json" --out "$work/wrong.pt"
test ! -e "$work/wrong.pt" || fail "a failed import wrote its output"
echo "not a checkpoint" > "$work/text.ckpt"
expect_status 1 "not a PyTorch file" import-weights "$work/text.ckpt" --config "$fixtures/kl_tiny.json" --out "$work/x.pt"
expect_status 1 "not a LatentLab autoencoder file" reconstruct --autoencoder "$fixtures/kl_tiny.ckpt" fashion-mnist
expect_status 2 "neither an image folder nor a dataset" reconstruct --autoencoder "$work/vq" no-such-thing
expect_status 2 "add --rfid" reconstruct --autoencoder "$work/vq" fashion-mnist --weights "$work/none.pth"
echo "all autoencoder checks passed"
