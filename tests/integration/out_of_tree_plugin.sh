#!/usr/bin/env bash
# Installs LatentLab to a temporary prefix, builds docs/examples/schedule-plugin against the installed
# package (find_package(LatentLab)), and loads it into the installed host with --plugin-path.
# Usage: out_of_tree_plugin.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src=$1 build=$2 work=$3
rm -rf "$work"
mkdir -p "$work"

echo "== install to $work/prefix"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
host="$work/prefix/bin/latentlab"
test -x "$host"

echo "== build the example plugin out of tree"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$src/docs/examples/schedule-plugin" -B "$work/example" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/example" > "$work/build.log"
test -f "$work/example/logsnr_schedule.so"

echo "== plugins list with --plugin-path"
list=$("$host" plugins list --plugin-path "$work/example")
echo "$list"
grep -q "schedule *logsnr_linear *1.0.0 *$work/example/logsnr_schedule.so" <<< "$list"
# The installed host finds its built-in plugins in the prefix, not in the build tree.
grep -q "schedule *linear .*$work/prefix/.*/latentlab/plugins/latentlab_schedules.so" <<< "$list"
if grep -q "not loaded" <<< "$list"; then echo "unexpected load failures"; exit 1; fi

echo "== the same through LATENTLAB_PLUGIN_PATH, and the plugin runs"
csv=$(LATENTLAB_PLUGIN_PATH="$work/example" "$host" schedule logsnr_linear --set T=3 --format csv)
echo "$csv"
# t = 1: log SNR = lambda_max = 10; t = 3: lambda_min = -10.
grep -q "^1,.*,10$\|^1,.*,9.99999999999" <<< "$csv"
grep -q "^3,.*,-10$\|^3,.*,-9.99999999999\|^3,.*,-10.0000000000" <<< "$csv"
echo "== the example passes the schedule conformance checks"
"$host" schedule logsnr_linear --check --plugin-path "$work/example"
"$host" schedule logsnr_linear --check --set T=1 --plugin-path "$work/example" > /dev/null

echo "== the docs' sampler example builds out of tree and passes the analytic bench"
cmake -S "$src/docs/examples/sampler-plugin" -B "$work/sampler" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/sampler-configure.log"
cmake --build "$work/sampler" > "$work/sampler-build.log"
"$host" plugins list --plugin-path "$work/sampler" | grep -q "sampler *rk2 *1.0.0"
"$host" samplers check --sampler rk2 --plugin-path "$work/sampler" --steps 10,20,40 --samples 512 \
    --tolerance 0.01 --data gaussian > "$work/rk2.txt"
cat "$work/rk2.txt"
# Second order: the empirical order of the last doubling (the 6th column of the 40-step row) is near 2.
order=$(awk '$1 == 40 && $2 == 79 {print $6}' "$work/rk2.txt")
awk -v o="$order" 'BEGIN {exit !(o > 1.7 && o < 2.6)}' || { echo "rk2: order '$order' is not near 2"; exit 1; }

echo "== the docs' conditioner example builds out of tree and passes the conditioner checks"
cmake -S "$src/docs/examples/conditioner-plugin" -B "$work/conditioner" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/conditioner-configure.log"
cmake --build "$work/conditioner" > "$work/conditioner-build.log"
"$host" plugins list --plugin-path "$work/conditioner" | grep -q "conditioner *edges *1.0.0"
"$host" plugins check edges --plugin-path "$work/conditioner"

echo "== a stripped install (cmake --install --strip) still loads"
cmake --install "$build" --prefix "$work/stripped" --strip > /dev/null
"$work/stripped/bin/latentlab" plugins list | grep -q "schedule *cosine"
if "$work/stripped/bin/latentlab" plugins list | grep -q "not loaded"; then echo "stripped plugins failed"; exit 1; fi
echo "out-of-tree plugin: OK"
