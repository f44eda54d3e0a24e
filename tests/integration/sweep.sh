#!/usr/bin/env bash
# `latentlab run` end to end on tiny networks and a Fashion-MNIST subset: trial files with every group
# (read back with h5py), the cache (each autoencoder of a 3 f x 2 weightings sweep trains once; adding
# a sampler runs only its stages; a second sweep shares the cache), SIGKILL at several moments and
# re-runs that end bit-identical to an uninterrupted run, a segfaulting plugin that fails only its
# trials, two `latentlab run` at once computing each stage once, `status`, and spec errors.
# Usage: sweep.sh HOST FIXTURE_PLUGIN_DIR WORK_DIR
set -euo pipefail
host="$1"
fixtures="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi
py=/usr/bin/python3  # Debian's, with python3-h5py (not a pyenv or venv python3 on the PATH)
if ! "$py" -c "import h5py" 2> /dev/null; then
  echo "SKIP: python3-h5py is not installed (tools/setup.sh --tests installs it)"
  exit 0
fi
fail() { echo "FAIL: $*"; exit 1; }

# spec NAME [SAMPLERS] [DENOISER_STEPS] [AE_STEPS]: a 3 f x 2 weightings sweep of tiny networks.
spec() {
  local name=$1 samplers=${2:-'"ddim"'} dsteps=${3:-3} asteps=${4:-3}
  cat <<JSON
{
  "name": "$name",
  "dataset": {"name": "fashion-mnist", "params": {"resolution": 16, "fit": "resize", "limit": 128}},
  "autoencoder": {
    "name": "kl",
    "params": {"ch": 8, "f": {"\$grid": [1, 2, 4]}, "num_res_blocks": 1, "norm_groups": 4,
               "z_channels": 2, "embed_dim": 2},
    "loss": {"disc_start": 100000},
    "train": {"steps": $asteps, "batch_size": 8, "log_every": 1, "checkpoint_every": 1},
    "eval": {"every": 0, "samples": 16, "batch_size": 16}
  },
  "latent": {"samples": 64},
  "denoiser": {
    "unet": {"model_channels": 32, "channel_mult": [1], "num_res_blocks": 1, "attention_resolutions": [],
             "num_head_channels": 32},
    "weighting": {"\$grid": ["unweighted", "elbo"]},
    "train": {"steps": $dsteps, "batch_size": 8, "log_every": 1, "checkpoint_every": 1},
    "eval": {"every": 0, "samples": 16, "strata": 1, "batch_size": 16}
  },
  "eval": [{"sampler": {"\$grid": [$samplers]}, "steps": 3, "count": 8, "batch": 4}],
  "metrics": {"metrics": ["fid", "kid", "pr"], "count": 8,
              "features": {"name": "classifier", "cache": "$work/features", "params": {"steps": 30}}},
  "reconstruction": {"count": 16, "images": 4,
                     "rfid": {"name": "classifier", "cache": "$work/features", "params": {"steps": 30}}}
}
JSON
}
run() { "$host" run "$@" --threads 2 2>> "$work/runs.log"; }

echo "== a 3 f x 2 weightings sweep with 2 workers"
spec tiny > "$work/tiny.json"
run "$work/tiny.json" --results "$work/results" --workers 2 > "$work/tiny.out" || { cat "$work/tiny.out"; tail -50 "$work/runs.log"; fail "run exited non-zero"; }
folder="$work/results/tiny"
[ "$(ls "$folder"/trials/*.h5 | wc -l)" -eq 6 ] || fail "expected 6 trial files"
[ "$(find "$folder/cache/autoencoder" -mindepth 1 -maxdepth 1 -type d ! -name '*.partial' | wc -l)" -eq 3 ] \
  || fail "each of the 3 autoencoders should train exactly once"
[ "$(grep -c '^---- ' "$folder"/cache/autoencoder/*.log | awk -F: '{s += $2} END {print s}')" -eq 3 ] \
  || fail "an autoencoder was started more than once"
[ "$(find "$folder/cache/denoiser" -mindepth 1 -maxdepth 1 -type d ! -name '*.partial' | wc -l)" -eq 6 ] || fail "6 denoisers"
[ "$(wc -l < "$folder/summary.csv")" -eq 7 ] || fail "summary.csv: a header and 6 rows"
grep -q "6 of 6 trials done" "$work/tiny.out" || fail "the summary does not say 6 of 6 trials done"
"$py" - "$folder" <<'PY' || fail "trial files"
import glob, json, math, sys
import h5py
folder = sys.argv[1]
for path in sorted(glob.glob(folder + "/trials/*.h5")):
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["status"] == "done", (path, a["status"], a["error"])
        assert json.loads(a["axis_values"])["f"] in (1, 2, 4), path
        assert json.loads(a["config"])["denoiser"]["weighting"] in ("unweighted", "elbo")
        assert len(a["config_sha256"]) == 64 and a["latentlab_version"] and a["libtorch_version"]
        assert "build_commit" in a and "host" in a and "command_line" in a
        plugins = json.loads(a["plugins"])
        assert any(p["name"] == "kl" and len(p["sha256"]) == 64 for p in plugins), plugins
        for group in ("autoencoder/train", "autoencoder/reconstruction", "latent_stats", "snr", "denoiser/train",
                      "denoiser/eval", "eval/ddim-3"):
            assert group in f, (path, group)
        assert len(f["denoiser/train/loss"]) == 3 and len(f["autoencoder/train/loss"]) == 3
        assert len(f["snr/log_snr"]) == 1000 and len(f["snr/log_snr_eff_rescaled"]) == 1000
        assert len(f["latent_stats/channel_std"]) == 2 and f["latent_stats"].attrs["rescaling"] == "std"
        assert math.isfinite(f["denoiser/eval/elbo_bpd"][-1])
        r = f["autoencoder/reconstruction"].attrs
        assert math.isfinite(r["psnr"]) and math.isfinite(r["rfid"]) and -1 <= r["ssim"] <= 1
        e = f["eval/ddim-3"]
        assert math.isfinite(e.attrs["fid"]) and e.attrs["fid"] > 0 and e.attrs["nfe"] == 3
        assert 0 <= e.attrs["precision"] <= 1 and json.loads(e.attrs["sampler"])["name"] == "ddim"
        grid = e["samples"]
        assert grid.dtype == "uint8" and grid.shape == (48, 48), grid.shape  # 8 samples: 3 x 3 of 16 x 16
        assert grid.attrs["CLASS"] in (b"IMAGE", "IMAGE")
print("trial files ok")
PY
"$py" -c "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); assert all(r['status']=='done' and float(r['ddim-3/fid'])>0 for r in rows), rows" \
  "$folder/summary.csv" || fail "summary.csv metrics"

echo "== re-running a finished sweep runs nothing; --dry-run says so"
run "$work/tiny.json" --results "$work/results" > "$work/again.out" || fail "re-run"
grep -q "stages: 0 run" "$work/again.out" || { cat "$work/again.out"; fail "a finished sweep ran stages again"; }
"$host" run "$work/tiny.json" --results "$work/results" --dry-run > "$work/dry.out"
grep -q "^0 of 27 stages to run" "$work/dry.out" || { cat "$work/dry.out"; fail "dry run of a finished sweep"; }

echo "== adding a sampler runs only the new sample and eval stages"
spec tiny '"ddim", "dpmpp_2m"' > "$work/tiny2.json"
"$host" run "$work/tiny2.json" --results "$work/results" --dry-run > "$work/dry2.out"
grep -q "^12 of 39 stages to run (autoencoder 0/3, denoiser 0/6, eval 6/12, latent_stats 0/3, reconstruction 0/3, sample 6/12)" \
  "$work/dry2.out" || { tail -3 "$work/dry2.out"; fail "dry run after adding a sampler"; }
run "$work/tiny2.json" --results "$work/results" --workers 2 > "$work/tiny2.out" || fail "run with a second sampler"
grep -q "stages: 12 run (2 worker processes)" "$work/tiny2.out" || { cat "$work/tiny2.out"; fail "expected 12 new stages in 2 workers"; }

echo "== tables, a figure and the report of the finished sweep (docs/analysis.md)"
grep -q "^| f | weighting | sampler | FID" "$work/tiny2.out" || { cat "$work/tiny2.out"; fail "run did not print the table"; }
grep -q "^report: .*/results/tiny/report/index.html" "$work/tiny2.out" || fail "run did not write the report"
"$host" table "$folder" --rows f,weighting --cols sampler --metrics fid,precision --format tex > "$work/table.tex" \
  || fail "table --format tex"
grep -q '\\toprule' "$work/table.tex" && grep -q '\\multicolumn{2}{c}{FID $\\downarrow$}' "$work/table.tex" \
  || { cat "$work/table.tex"; fail "LaTeX table"; }
[ "$(grep -c '\\\\$' "$work/table.tex")" -eq 8 ] || { cat "$work/table.tex"; fail "LaTeX: 2 header rows and 6 rows"; }
"$host" table "$folder" --rows autoencoder.params.f,denoiser.weighting,sampler --metrics fid --format csv > "$work/table.csv"
[ "$(wc -l < "$work/table.csv")" -eq 13 ] || { cat "$work/table.csv"; fail "csv: a header and 12 rows"; }
"$host" plot "$folder" --x f --y fid --series weighting,sampler --log-x --out "$work/fid.svg" > "$work/plot.out" \
  || fail "plot"
"$py" - "$work/fid.json" <<'PY' || fail "plot data"
import json, sys
data = json.load(open(sys.argv[1]))
assert len(data["series"]) == 4 and all(len(s["x"]) == 3 for s in data["series"]), data["series"]
PY
grep -q "</svg>" "$work/fid.svg" || fail "fid.svg is not a complete SVG"
status=0
"$host" table "$folder" --rows f --metrics fid > "$work/varies.out" 2>&1 || status=$?
[ "$status" -eq 2 ] && grep -q "'weighting' takes several values" "$work/varies.out" \
  || { cat "$work/varies.out"; fail "a dimension varying within a cell: exit 2 naming it"; }
"$py" - "$folder" <<'PY' || fail "report"
import json, os, re, sys
import h5py
folder = sys.argv[1]
page = open(folder + "/report/index.html").read()
images = re.findall(r'src="([^"]+)"', page)
assert len(images) >= 12 + 5, images  # 6 trials x 2 samplers, and figures
assert all(os.path.exists(folder + "/report/" + i) for i in images), [i for i in images if not os.path.exists(folder + "/report/" + i)]
assert page.count('<table class="ablation">') == 2
for name in ("fid-vs-f", "log-snr", "denoiser-train-loss"):
    assert os.path.exists(folder + "/report/figures/" + name + ".pdf"), name
with h5py.File(folder + "/trials/f=4,weighting=elbo,sampler=ddim.h5", "r") as f:
    stages = json.loads(f.attrs["stages"])
    assert {s["kind"] for s in stages} >= {"autoencoder", "denoiser", "sample"} and all(s["seconds"] > 0 for s in stages), stages
print("report ok")
PY

echo "== a segfaulting sampler fails its trials, names the signal; the others finish (shared cache)"
spec crash '"ddim", "fixture_segfault"' > "$work/crash.json"
status=0
"$host" run "$work/crash.json" --results "$work/results" --cache "$folder/cache" --workers 2 --plugin-path "$fixtures" \
  --threads 2 > "$work/crash.out" 2>> "$work/runs.log" || status=$?
[ "$status" -eq 1 ] || { cat "$work/crash.out"; fail "expected exit 1 with failed trials, got $status"; }
grep -q "6 of 12 trials done, 6 failed" "$work/crash.out" || { cat "$work/crash.out"; fail "crash summary"; }
grep -q "killed by signal 11 (Segmentation fault) in sample (sampler 'fixture_segfault'" "$work/crash.out" \
  || { cat "$work/crash.out"; fail "the failure does not name the signal and the sampler"; }
"$host" status "$work/results/crash" > "$work/status.out"
grep -q "signal 11" "$work/status.out" && grep -q "6 done" "$work/status.out" || { cat "$work/status.out"; fail "status"; }
"$host" table "$work/results/crash" --rows f,weighting,sampler --metrics fid > "$work/crash-table.md" || fail "table of a sweep with failures"
[ "$(grep -c '| failed |' "$work/crash-table.md")" -eq 6 ] || { cat "$work/crash-table.md"; fail "6 failed cells"; }
"$py" - "$work/results/crash" <<'PY' || fail "failed trial files"
import glob, sys, h5py
failed = [p for p in glob.glob(sys.argv[1] + "/trials/*.h5") if h5py.File(p, "r").attrs["status"] == "failed"]
assert len(failed) == 6 and all("signal 11" in h5py.File(p, "r").attrs["error"] for p in failed), failed
PY

echo "== SIGKILL at several moments, then re-runs: the same numbers as an uninterrupted run"
spec kill '"ddim"' 40 40 | "$py" -c "import json,sys; s=json.load(sys.stdin); s['autoencoder']['params']['f']=2; s['denoiser']['weighting']='elbo'; print(json.dumps(s))" > "$work/kill.json"
# The reference runs every stage in a new process; the killed runs reuse their workers: the numbers
# must not depend on what a worker ran before.
"$host" run "$work/kill.json" --results "$work/reference" --threads 1 --fresh-workers > "$work/reference.out" \
  2>> "$work/runs.log" || fail "reference run"
grep -q "stages: 6 run (6 worker processes)" "$work/reference.out" || { cat "$work/reference.out"; fail "--fresh-workers"; }
kill_when() {  # kill_when GLOB: start a run, SIGKILL it when GLOB matches a file, report whether it did
  "$host" run "$work/kill.json" --results "$work/killed" --threads 1 > /dev/null 2>> "$work/runs.log" &
  local pid=$! waited=0
  while kill -0 "$pid" 2> /dev/null; do
    if compgen -G "$1" > /dev/null; then kill -9 "$pid"; wait "$pid" 2> /dev/null || true; echo "killed at $1"; return 0; fi
    sleep 0.05; waited=$((waited + 1))
  done
  wait "$pid" || true
  echo "finished before $1"
}
cache="$work/killed/kill/cache"
kill_when "$cache/autoencoder/*.partial/checkpoint.pt"
sleep 0.5
# A live worker writes to a stage log in the cache (a zombie has no files open).
for fd in /proc/[0-9]*/fd/1; do readlink "$fd" 2> /dev/null; done | grep -q "^$cache/" \
  && fail "a worker outlived its killed parent"
kill_when "$cache/denoiser/*.partial/checkpoint.pt"
kill_when "$cache/sample/*.partial"
kill_when "$work/killed/kill/trials/.*.tmp-*"
"$host" run "$work/kill.json" --results "$work/killed" --threads 1 > "$work/killed.out" 2>> "$work/runs.log" || fail "final re-run"
grep -q "1 of 1 trials done" "$work/killed.out" || fail "the killed sweep did not finish"
left=$(find "$work/killed" -name '*.tmp-*' -o -name '*.partial')
[ -z "$left" ] || fail "left behind: $left"
"$py" - "$work/reference/kill/trials" "$work/killed/kill/trials" <<'PY' || fail "killed and resumed run differs from the uninterrupted one"
import glob, os, sys, h5py, numpy as np
a_path, = glob.glob(sys.argv[1] + "/*.h5"); b_path, = glob.glob(sys.argv[2] + "/*.h5")
a, b = h5py.File(a_path, "r"), h5py.File(b_path, "r")
for name in ("autoencoder/train/loss", "denoiser/train/loss", "denoiser/eval/elbo_bpd", "latent_stats/channel_std",
             "eval/ddim-3/samples"):
    assert np.array_equal(a[name][()], b[name][()]), name
for key in ("fid", "kid_mean", "precision", "recall"):
    assert a["eval/ddim-3"].attrs[key] == b["eval/ddim-3"].attrs[key], key
assert a["autoencoder/reconstruction"].attrs["psnr"] == b["autoencoder/reconstruction"].attrs["psnr"]
print("bit-identical")
PY

echo "== two runs at once on one results folder compute each stage once"
spec twice '"ddim"' | "$py" -c "import json,sys; s=json.load(sys.stdin); s['autoencoder']['params']['f']=2; print(json.dumps(s))" > "$work/twice.json"
run "$work/twice.json" --results "$work/shared" > "$work/t1.out" &
p1=$!
run "$work/twice.json" --results "$work/shared" > "$work/t2.out" &
p2=$!
wait "$p1" || fail "first concurrent run"
wait "$p2" || fail "second concurrent run"
for log in "$work"/shared/twice/cache/*/*.log; do
  [ "$(grep -c '^---- ' "$log")" -eq 1 ] || fail "$log: the stage was started more than once"
done
grep -q "2 of 2 trials done" "$work/t1.out" && grep -q "2 of 2 trials done" "$work/t2.out" || fail "concurrent summaries"

echo "== a spec with several problems: all of them, before anything runs (exit 2)"
cat > "$work/bad.json" <<'JSON'
{"name": "bad", "dataset": "fashion-mnist", "denoiser": {"train": {"stepz": 3}},
 "eval": [{"sampler": {"$grid": ["ddim", "dddim"]}}, {"sampler": "ddim", "stpes": 3}]}
JSON
status=0
"$host" run "$work/bad.json" --results "$work/results" > "$work/bad.out" 2>&1 || status=$?
[ "$status" -eq 2 ] || { cat "$work/bad.out"; fail "expected exit 2"; }
for problem in "3 problems" "denoiser.train.stepz" "dddim" "eval\[1\].stpes"; do
  grep -q -- "$problem" "$work/bad.out" || { cat "$work/bad.out"; fail "'$problem' not reported"; }
done
[ ! -d "$work/results/bad" ] || fail "a bad spec created its results folder"
echo "sweep: all checks passed"
