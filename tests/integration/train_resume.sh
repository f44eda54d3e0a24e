#!/usr/bin/env bash
# `latentlab train-denoiser` end to end on real Fashion-MNIST (a few hundred images, 8x8): a run that
# is interrupted with SIGINT and resumed writes the same losses and yardsticks as one that is not;
# an existing checkpoint without --resume, a bad config and a diverging run are clear errors.
# Usage: train_resume.sh HOST WORK_DIR
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
  "seed": 5,
  "data": {"dataset": "fashion-mnist", "params": {"limit": 256, "resolution": 8, "fit": "resize"}, "hflip": true},
  "schedule": {"name": "cosine", "params": {"T": 100}},
  "weighting": {"name": "elbo", "params": {"t_sampling": "loss_history"}},
  "prediction": "v",
  "unet": {"in_channels": 1, "out_channels": 1, "model_channels": 32, "channel_mult": [1, 1],
           "num_res_blocks": 1, "attention_resolutions": [2], "num_head_channels": 32, "dropout": 0.1,
           "num_classes": 10},
  "train": {"steps": 40, "batch_size": 16, "lr": 1e-3, "warmup_steps": 5, "checkpoint_every": 10,
            "log_every": 10, "ema_decay": 0.99},
  "eval": {"every": 15, "samples": 64, "strata": 2, "batch_size": 32, "data_params": {"split": "test"}}
}
JSON

"$host" train-denoiser "$work/config.json" --output "$work/full" --threads 1 2> "$work/full.log"

# Interrupt the second run once it has written a dozen steps, then resume it.
"$host" train-denoiser "$work/config.json" --output "$work/split" --threads 1 2> "$work/split.log" &
pid=$!
for _ in $(seq 1 600); do
  if [ -f "$work/split/train.csv" ] && [ "$(wc -l < "$work/split/train.csv")" -gt 12 ]; then break; fi
  sleep 0.1
done
kill -INT "$pid"
status=0
wait "$pid" || status=$?
if [ "$status" -ne 1 ]; then echo "FAIL: interrupted run exited $status, expected 1"; cat "$work/split.log"; exit 1; fi
grep -q "interrupted at step" "$work/split.log" || { echo "FAIL: no interruption message"; cat "$work/split.log"; exit 1; }

status=0
"$host" train-denoiser "$work/config.json" --output "$work/split" --threads 1 2> "$work/again.log" || status=$?
if [ "$status" -ne 2 ] || ! grep -q "pass --resume" "$work/again.log"; then
  echo "FAIL: a second run into a folder with a checkpoint must refuse (exit 2), got $status"; cat "$work/again.log"; exit 1
fi

"$host" train-denoiser "$work/config.json" --output "$work/split" --threads 1 --resume 2> "$work/resume.log"
grep -q "resumed from" "$work/resume.log" || { echo "FAIL: no resume message"; cat "$work/resume.log"; exit 1; }

# Same numbers, apart from wall-clock time (the last column).
for series in train eval; do
  if ! diff <(cut -d, -f1-5 "$work/full/$series.csv") <(cut -d, -f1-5 "$work/split/$series.csv") > "$work/$series.diff"; then
    echo "FAIL: $series.csv differs between the uninterrupted and the resumed run:"; head -20 "$work/$series.diff"; exit 1
  fi
done
[ "$(wc -l < "$work/full/train.csv")" -eq 41 ] || { echo "FAIL: expected 40 training rows"; exit 1; }

# A bad config is a usage error naming the key.
status=0
echo '{"output": "x", "data": {"dataset": "fashion-mnist"}, "trian": {}}' > "$work/bad.json"
"$host" train-denoiser "$work/bad.json" 2> "$work/bad.log" || status=$?
if [ "$status" -ne 2 ] || ! grep -q 'did you mean "train"' "$work/bad.log"; then
  echo "FAIL: bad config: exit $status"; cat "$work/bad.log"; exit 1
fi

# A diverging run stops with exit 1 and says so.
sed 's/"lr": 1e-3/"lr": 1e30/; s/"steps": 40/"steps": 20/' "$work/config.json" > "$work/nan.json"
sed -i 's/"checkpoint_every": 10/"checkpoint_every": 1, "grad_clip": 0/' "$work/nan.json"
status=0
"$host" train-denoiser "$work/nan.json" --output "$work/nan" --threads 1 2> "$work/nan.log" || status=$?
if [ "$status" -ne 1 ] || ! grep -q "diverged at step" "$work/nan.log"; then
  echo "FAIL: diverging run: exit $status"; cat "$work/nan.log"; exit 1
fi
echo "PASS"
