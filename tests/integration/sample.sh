#!/usr/bin/env bash
# `latentlab sample` end to end: trains a tiny pixel-space denoiser on real Fashion-MNIST (8x8) for a
# few steps, samples it with several samplers and guiders, checks the files it writes, that a seed
# reproduces them, sampling beyond the training size, post-hoc guidance, and the errors a user meets.
# Usage: sample.sh HOST WORK_DIR
set -euo pipefail
host="$1"
work="$2"
rm -rf "$work"
mkdir -p "$work"

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi

cat > "$work/config.json" <<'JSON'
{
  "output": "unused",
  "seed": 3,
  "data": {"dataset": "fashion-mnist", "params": {"limit": 128, "resolution": 8, "fit": "resize"}},
  "schedule": {"name": "linear", "params": {"T": 200}},
  "prediction": "v",
  "unet": {"in_channels": 1, "out_channels": 1, "model_channels": 32, "channel_mult": [1, 2],
           "num_res_blocks": 1, "attention_resolutions": [2], "num_head_channels": 32},
  "train": {"steps": 6, "batch_size": 16, "lr": 1e-3, "log_every": 3, "checkpoint_every": 6},
  "eval": {"every": 0, "samples": 16, "strata": 1, "batch_size": 16}
}
JSON
"$host" train-denoiser "$work/config.json" --output "$work/run" --threads 1 2> "$work/train.log"

fail() { echo "FAIL: $*"; exit 1; }
npy_bytes() { stat -c %s "$1"; }

echo "== ddim, 10 steps, 6 samples"
"$host" sample "$work/run" --sampler ddim --steps 10 --count 6 --batch 4 --seed 1 --out "$work/a" --threads 1 \
  2> "$work/a.log" || { cat "$work/a.log"; fail "sample exited non-zero"; }
for f in samples.png samples.npy samples.json; do test -s "$work/a/$f" || fail "missing $f"; done
# .npy: a 128-byte header (64-aligned) and 6 x 1 x 8 x 8 float32.
[ "$(npy_bytes "$work/a/samples.npy")" -eq $((128 + 6 * 64 * 4)) ] || fail "samples.npy has the wrong size"
head -c 128 "$work/a/samples.npy" | grep -q "'shape': (6, 1, 8, 8)" || fail "samples.npy header"
grep -q '"nfe_per_run": 10' "$work/a/samples.json" || fail "samples.json lacks the NFE"
grep -q '"name": "ddim"' "$work/a/samples.json" || fail "samples.json lacks the sampler"
grep -q '"steps": 10' "$work/a/samples.json" || fail "samples.json lacks the steps"

echo "== the same seed gives the same samples; the run folder's default output"
"$host" sample "$work/run/denoiser.pt" --sampler ddim --steps 10 --count 6 --batch 4 --seed 1 --threads 1 2> /dev/null
cmp "$work/a/samples.npy" "$work/run/samples/samples.npy" || fail "same seed, different samples"
# A deterministic sampler gives the same images whatever the batch size, up to float rounding (the
# CPU kernels' summation order depends on the batch's shape).
"$host" sample "$work/run" --sampler ddim --steps 10 --count 6 --batch 6 --seed 1 --out "$work/b" --threads 1 2> /dev/null
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
  /usr/bin/python3 -c "import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); sys.exit(0 if np.abs(a - b).max() < 1e-5 else 1)" \
    "$work/a/samples.npy" "$work/b/samples.npy" || fail "--batch changed deterministic samples"
fi

echo "== every sampler runs; stochastic ones and guided ones too"
for sampler in ddpm plms dpmpp_2m euler heun euler_ancestral; do
  "$host" sample "$work/run" --sampler "$sampler" --steps 4 --count 2 --out "$work/s-$sampler" --threads 1 \
    2> "$work/s-$sampler.log" || { cat "$work/s-$sampler.log"; fail "$sampler"; }
done
"$host" sample "$work/run" --sampler ddim --sampler-set eta=1 --steps 4 --count 2 --out "$work/eta" --threads 1 2> /dev/null
"$host" sample "$work/run" --sampler ddim --steps 4 --count 2 --clip-x0 off --out "$work/noclip" --threads 1 2> /dev/null
grep -q '"clip_x0": false' "$work/noclip/samples.json" || fail "--clip-x0 off not recorded"
grep -q '"clip_x0": true' "$work/a/samples.json" || fail "clip_x0 default not recorded"

echo "== --precision bf16: the UNet under autocast, recorded; the default is fp32"
"$host" sample "$work/run" --sampler ddim --steps 4 --count 2 --precision bf16 --out "$work/bf16" --threads 1 \
  2> "$work/bf16.log" || { cat "$work/bf16.log"; fail "--precision bf16"; }
grep -q '"precision": "bf16"' "$work/bf16/samples.json" || fail "precision bf16 not recorded"
grep -q '"precision": "fp32"' "$work/a/samples.json" || fail "precision fp32 not recorded"
echo "== --precision auto: bf16 where this CPU multiplies it natively, else fp32; recorded as what ran"
"$host" sample "$work/run" --sampler ddim --steps 4 --count 2 --precision auto --device cpu --out "$work/auto" \
  --threads 1 2> "$work/auto.log" || { cat "$work/auto.log"; fail "--precision auto"; }
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then expected=bf16; else expected=fp32; fi
grep -q "\"precision\": \"$expected\"" "$work/auto/samples.json" || fail "precision auto did not run $expected"

echo "== z_T given (--init-latents): the same noise gives the same deterministic samples, whatever the seed"
# Any float array of the right shape is noise to start from; the first run's samples will do.
cp "$work/a/samples.npy" "$work/z_T.npy"
"$host" sample "$work/run" --sampler ddim --steps 10 --count 6 --batch 6 --seed 1 --init-latents "$work/z_T.npy" \
  --out "$work/init1" --threads 1 2> "$work/init1.log" || { cat "$work/init1.log"; fail "--init-latents"; }
"$host" sample "$work/run" --sampler ddim --steps 10 --count 6 --batch 6 --seed 9 --init-latents "$work/z_T.npy" \
  --out "$work/init2" --threads 1 2> /dev/null
cmp "$work/init1/samples.npy" "$work/init2/samples.npy" || fail "the same z_T gave different ddim samples"
cmp -s "$work/init1/samples.npy" "$work/a/samples.npy" && fail "--init-latents was ignored"
grep -q '"init_latents": ".*z_T.npy"' "$work/init1/samples.json" || fail "init_latents not recorded"

echo "== beyond the training size (convolutional sampling), with post-hoc guidance towards a 4x4 image"
# A binary PGM (stb_image reads it): a 4x4 gradient.
printf 'P5\n4 4\n255\n' > "$work/low.pgm"
printf '\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0' >> "$work/low.pgm"
"$host" sample "$work/run" --sampler ddim --steps 6 --count 2 --latent-size 16 --guider posthoc \
  --guider-set factor=4 --scale 1 --target "$work/low.pgm" --out "$work/big" --threads 1 2> "$work/big.log" \
  || { cat "$work/big.log"; fail "posthoc at 16x16"; }
head -c 128 "$work/big/samples.npy" | grep -q "'shape': (2, 1, 16, 16)" || fail "16x16 samples"
grep -q '"transform": "downsample"' "$work/big/samples.json" || fail "guider params not recorded"

echo "== errors name the problem and the fix (exit 2), before sampling"
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  local status=0
  "$host" sample "$@" --threads 1 > "$work/err.out" 2>&1 || status=$?
  [ "$status" -eq 2 ] || { cat "$work/err.out"; fail "expected exit 2 for: $*"; }
  grep -q -e "$pattern" "$work/err.out" || { cat "$work/err.out"; fail "expected '$pattern' for: $*"; }
}
expect_error "ddim" "$work/run" --sampler dddim
expect_error "use at most 200" "$work/run" --steps 500
expect_error "conditional model" "$work/run" --guider cfg --count 1
expect_error "needs the observation y" "$work/run" --guider posthoc --count 1
expect_error "divisible by 2" "$work/run" --latent-size 9
expect_error "fp16 runs on CUDA only" "$work/run" --precision fp16 --device cpu
expect_error "did you mean \"bf16\"" "$work/run" --precision bf61
expect_error "has no scale" "$work/run" --scale 3
expect_error "eta" "$work/run" --sampler-set eta=2
expect_error "expected auto, on or off" "$work/run" --clip-x0 maybe
expect_error "sampler.eta" "$work/run" --sampler-set eta=2
expect_error "--target: there is no image file" "$work/run" --guider posthoc --target "$work/missing.png"
expect_error "shape \[6, 1, 8, 8\].*\[4, 1, 8, 8\]" "$work/run" --count 4 --init-latents "$work/z_T.npy"
expect_error "--init-latents: there is no file" "$work/run" --init-latents "$work/missing.npy"
expect_error "transform=mask" "$work/run" --guider posthoc --target "$work/low.pgm" --mask "$work/low.pgm"
expect_error "use --guider posthoc" "$work/run" --target "$work/low.pgm"
status=0
"$host" sample "$work/nowhere" > "$work/err.out" 2>&1 || status=$?
[ "$status" -eq 1 ] && grep -q "no denoiser at" "$work/err.out" || { cat "$work/err.out"; fail "missing checkpoint"; }
echo "sample: OK"
