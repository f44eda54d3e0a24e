#!/usr/bin/env bash
# `latentlab fid` end to end on real Fashion-MNIST with LatentLab's own classifier features (a small,
# quickly trained one): JSON keys and counts, a set against itself, the feature cache, a sample array,
# the sample-size warning, and the errors a user meets (no Inception weights, unknown metric, bad paths).
# Usage: fid.sh HOST WORK_DIR
set -euo pipefail
host="$1"
work="$2"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi
export LATENTLAB_CACHE="$work/cache"
small=(--feature-set steps=40 --feature-set width=8 --feature-set feature_dim=16 --threads 2)

echo "== fid: test split against train split, JSON"
"$host" fid fashion-mnist:test fashion-mnist:train --count 400 "${small[@]}" --format json \
  > "$work/a.json" 2> "$work/a.log" || { cat "$work/a.log"; fail "fid"; }
for key in fid kid_mean kid_std is_mean is_std precision recall n_a n_b; do
  grep -q "\"$key\":" "$work/a.json" || fail "no $key in the JSON"
done
grep -q '"n_a": 400' "$work/a.json" || fail "n_a is not 400"
grep -q "held-out accuracy" "$work/a.log" || fail "the classifier's accuracy was not reported"
ls "$work"/cache/classifiers/*.pt > /dev/null || fail "the classifier was not cached"

echo "== fid: a set against itself is 0, with precision and recall 1; the second run uses the cache"
"$host" fid fashion-mnist:test fashion-mnist:test --count 400 "${small[@]}" --format json \
  > "$work/b.json" 2> "$work/b.log" || { cat "$work/b.log"; fail "fid self"; }
json_number() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" "$2" | head -1; }
fid=$(json_number fid "$work/b.json")
awk -v f="$fid" 'BEGIN { exit !(f < 1e-6 && f > -1e-6) }' || fail "FID of a set with itself is $fid"
[ "$(json_number precision "$work/b.json")" = "1.0" ] || fail "precision of a set with itself"
grep -q "using cached features" "$work/b.log" || fail "the second run did not use the cache"
grep -q "training the feature classifier" "$work/b.log" && fail "the classifier was trained twice"

echo "== fid: table output, FID only, and the warning for fewer samples than dimensions"
"$host" fid fashion-mnist:test fashion-mnist:train --count 12 --metrics fid "${small[@]}" \
  > "$work/c.out" 2> "$work/c.log" || { cat "$work/c.log"; fail "fid table"; }
grep -q "^FID " "$work/c.out" || fail "no FID line"
grep -q "^KID" "$work/c.out" && fail "KID printed though not asked for"
grep -q "biased" "$work/c.log" || fail "no warning for 12 samples and 16 dimensions"

echo "== fid: a folder of PNG files against a sample folder (samples.npy), made with Python's numpy"
if /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
  /usr/bin/python3 - "$work" <<'PY'
import struct, sys, zlib
import numpy as np
work = sys.argv[1]
rng = np.random.default_rng(0)
def png(path, pixels):  # grey 8-bit PNG, standard library only
    rows = b"".join(b"\x00" + bytes(row) for row in pixels)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
import os
os.makedirs(f"{work}/pngs", exist_ok=True)
os.makedirs(f"{work}/samples", exist_ok=True)
images = rng.integers(0, 256, size=(24, 32, 32), dtype=np.uint8)
for i, image in enumerate(images):
    png(f"{work}/pngs/{i:03d}.png", image)
np.save(f"{work}/samples/samples.npy", (images[:, None].astype(np.float32) / 127.5 - 1.0))
PY
  "$host" fid "$work/samples" "$work/pngs" --metrics fid,pr "${small[@]}" --format json \
    > "$work/d.json" 2> "$work/d.log" || { cat "$work/d.log"; fail "fid on folders"; }
  grep -q '"n_a": 24' "$work/d.json" && grep -q '"n_b": 24' "$work/d.json" || fail "folder counts"
  fid=$(json_number fid "$work/d.json")
  awk -v f="$fid" 'BEGIN { exit !(f < 1e-6 && f > -1e-6) }' || fail "the same images as PNG and as samples.npy: FID $fid"
else
  echo "(numpy missing: folder case skipped)"
fi

echo "== fid: inception-v3-fid with a weights file made by Python's torch (random weights)"
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
  /usr/bin/python3 "$(dirname "$0")/../python/make_inception_fixture.py" "$work/inception" > "$work/inception.log" 2>&1 \
    || { cat "$work/inception.log"; fail "make_inception_fixture.py"; }
  LATENTLAB_INCEPTION_WEIGHTS="$work/inception/inception.pth" "$host" fid "$work/samples" fashion-mnist:test \
    --features inception-v3-fid --count 12 --metrics fid,kid,is --kid-subset-size 6 --is-splits 2 --threads 2 \
    --format json > "$work/e.json" 2> "$work/e.log" || { cat "$work/e.log"; fail "fid with inception"; }
  grep -q '"fingerprint": "inception-v3-fid/v1/weights-sha256=.*/preprocess=torch-fidelity"' "$work/e.json" \
    || fail "no Inception fingerprint"
  grep -q "is_mean" "$work/e.json" || fail "no IS with Inception"
  grep -q "biased" "$work/e.log" || fail "no warning for 12 samples and 2048 dimensions"
else
  echo "(Python's torch missing: Inception case skipped; apt-get install python3-torch)"
fi

echo "== errors: missing Inception weights, unknown metric, bad paths, too many images"
expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"
  shift 2
  set +e
  "$host" fid "$@" > "$work/$name.out" 2> "$work/$name.log"
  local status=$?
  set -e
  [ "$status" -eq 2 ] || { cat "$work/$name.log"; fail "$name: exit status $status, expected 2"; }
  grep -q -- "$pattern" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: no '$pattern' in the error"; }
}
expect_error noweights "pt_inception-2015-12-05-6726825d.pth" fashion-mnist:test fashion-mnist:train \
  --features inception-v3-fid
expect_error badweights "does not exist" fashion-mnist:test fashion-mnist:train --weights "$work/none.pth"
expect_error metric 'did you mean "kid"' fashion-mnist:test fashion-mnist:train --metrics fid,kd
expect_error path "not an image folder" "$work/missing" fashion-mnist:test
expect_error split "split" fashion-mnist:validation fashion-mnist:test "${small[@]}"
expect_error count "fewer images\|more than" fashion-mnist:test fashion-mnist:train --count 20000 "${small[@]}"
expect_error features "classifer\|classifier" fashion-mnist:test fashion-mnist:train --features classifer
expect_error splits "is-splits" fashion-mnist:test fashion-mnist:train --count 5 "${small[@]}"
echo "fid: all checks passed"
