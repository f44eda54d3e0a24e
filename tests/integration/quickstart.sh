#!/usr/bin/env bash
# The quick start (experiments/quickstart.json) end to end in a reduced form: the same axes, blocks,
# samplers and metrics, on a Fashion-MNIST subset with a few training steps and a few samples. It
# must end as the real one does: the sweep's tables printed, the report written (every image in it
# present), and the ready-made specs of experiments/ must all pass `latentlab run --dry-run`.
# Usage: quickstart.sh HOST SOURCE_DIR WORK_DIR
set -euo pipefail
host="$1"
source="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3  # Debian's (not a pyenv or venv python3 on the PATH)

echo "== every spec in experiments/ passes --dry-run (from the repository root: relative paths)"
for spec in "$source"/experiments/*.json; do
  # Sweeps have a name and a dataset block; the single-run configs beside them (train-denoiser's) do not.
  "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if "name" in d and "dataset" in d else 1)' \
    "$spec" || continue
  (cd "$source" && "$host" run "$spec" --results "$work/dry" --dry-run > "$work/dry.out" 2>&1) \
    || { cat "$work/dry.out"; fail "$spec does not pass --dry-run"; }
  grep -q "stages to run" "$work/dry.out" || { cat "$work/dry.out"; fail "$spec: no stage count"; }
done

echo "== the quick start is built in: the same spec from any folder"
(cd "$work" && "$host" run quickstart --print-spec > "$work/builtin.json")
cmp "$work/builtin.json" "$source/experiments/quickstart.json" || fail "the built-in quickstart differs from experiments/quickstart.json"
(cd "$work" && "$host" run quickstart --results "$work/dry" --dry-run > "$work/builtin-dry.out" 2>&1) \
  || { cat "$work/builtin-dry.out"; fail "latentlab run quickstart --dry-run"; }
(cd "$source" && "$host" run experiments/quickstart.json --results "$work/dry" --dry-run > "$work/file-dry.out" 2>&1)
diff "$work/builtin-dry.out" "$work/file-dry.out" || fail "the built-in and the file's dry runs differ"
# The quick start runs in "precision": "auto": the dry run says what that is on this machine.
grep -qE '^precision auto: (bf16|fp32) \(this CPU ' "$work/builtin-dry.out" \
  || { cat "$work/builtin-dry.out"; fail "the dry run does not say what precision auto chose"; }
status=0
(cd "$work" && "$host" run quickstrat --dry-run > "$work/typo.out" 2>&1) || status=$?
[ "$status" = 2 ] || fail "an unknown spec name: exit $status, not 2"
grep -q "no spec file 'quickstrat'.*built in: quickstart" "$work/typo.out" || { cat "$work/typo.out"; fail "the unknown name's message"; }

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi

echo "== the quick start, reduced"
"$py" - "$source/experiments/quickstart.json" "$work" > "$work/quickstart.json" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
work = sys.argv[2]
spec["dataset"]["params"]["limit"] = 256
ae = spec["autoencoder"]
ae["train"].update(steps=3, log_every=1, checkpoint_every=3)
ae["eval"].update(every=0, samples=16, batch_size=16)
spec["latent"]["samples"] = 64
den = spec["denoiser"]
den["train"].update(steps=3, log_every=1, checkpoint_every=3, warmup_steps=1)
den["eval"].update(every=0, samples=16, strata=1, batch_size=16)
for entry in spec["eval"]:
    entry.update(count=8, batch=8)
    if isinstance(entry["steps"], int):
        entry["steps"] = min(entry["steps"], 3)
for block in (spec["metrics"]["features"], spec["reconstruction"]["rfid"]):
    block["cache"] = work + "/features"
    block["params"]["steps"] = 30
spec["metrics"]["count"] = 8
spec["reconstruction"].update(count=16, images=4)
print(json.dumps(spec, indent=1))
PY
"$host" run "$work/quickstart.json" --results "$work/results" --workers 2 --threads 2 > "$work/run.out" 2> "$work/run.log" \
  || { cat "$work/run.out"; tail -40 "$work/run.log"; fail "the reduced quick start failed"; }
cat "$work/run.out"
grep -q "^| f | weighting | eval | FID" "$work/run.out" || fail "the quick start did not print its sample-quality table"
grep -q "^| f | weighting | rFID" "$work/run.out" || fail "the quick start did not print its autoencoder table"
grep -q "^report: .*/results/quickstart/report/index.html" "$work/run.out" || fail "no report"
"$py" - "$work/results/quickstart" <<'PY' || fail "report"
import os, re, sys
folder = sys.argv[1]
page = open(folder + "/report/index.html").read()
images = re.findall(r'src="([^"]+)"', page)
missing = [i for i in images if not os.path.exists(os.path.join(folder, "report", i))]
assert not missing, missing
grids = [i for i in images if i.startswith("samples/")]
assert len(grids) == 8, grids  # (f = 2, 4, 8 unweighted; f = 4 elbo) x 2 samplers
assert page.count('<table class="ablation">') == 2
assert os.path.exists(folder + "/report/index.md") and os.path.exists(folder + "/report/tables/samples.tex")
print("report ok:", len(images), "images")
PY
