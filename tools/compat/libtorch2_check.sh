#!/usr/bin/env bash
# Compiles LatentLab's core library and built-in plugins against the LibTorch of a Python environment
# (PyTorch 2.x wheels ship its headers and libraries), links the core library, and runs
# tools/compat/cuda_smoke.cpp with it: the UNet on the GPU against the CPU, the ELBO, a training run
# that is resumed, and the GPU throughput. Checks that the code still builds and runs on LibTorch 2.x
# (with CUDA where there is a GPU) while the main build uses Debian's LibTorch 1.13.
#
# Usage: tools/compat/libtorch2_check.sh [HEADERS]
#   HEADERS: a folder holding nlohmann/, spdlog/, fmt/, stb/ and zlib.h when the machine lacks them
#            (copy them from /usr/include of a Debian 12 machine with LatentLab's packages).
# Environment: PYTHON (default python3), OUT_DIR (default /tmp/latentlab-compat).
set -euo pipefail
cd "$(dirname "$0")/../.."
headers="${1:-/usr/include}"
py="${PYTHON:-python3}"
out="${OUT_DIR:-/tmp/latentlab-compat}"
torch_dir="$($py -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
abi="$($py -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')"
echo "LibTorch $($py -c 'import torch; print(torch.__version__)') from $torch_dir (C++11 ABI $abi), $(g++ --version | head -1)"

rm -rf "$out"
mkdir -p "$out/generated/latentlab" "$out/obj"
sed -e 's/@PROJECT_VERSION@/0.1.0/; s/@PROJECT_VERSION_MAJOR@/0/; s/@PROJECT_VERSION_MINOR@/1/; s/@PROJECT_VERSION_PATCH@/0/' \
  core/include/latentlab/sdk_version.hpp.in > "$out/generated/latentlab/sdk_version.hpp"
flags=(-std=c++17 -O2 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra
       -D_GLIBCXX_USE_CXX11_ABI="$abi" -DFMT_HEADER_ONLY -Icore/include -I"$out/generated"
       -isystem "$headers" -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include")
export out
sources=(core/src/*.cpp core/src/*/*.cpp plugins/*/*.cpp)
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'g++ "$@" -c "{}" -o "$out/obj/$(echo "{}" | tr / _).o" 2>&1 | sed "s|^|{}: |"' _ "${flags[@]}"
for s in "${sources[@]}"; do
  [ -f "$out/obj/$(echo "$s" | tr / _).o" ] || { echo "FAIL: $s did not compile against this LibTorch"; exit 1; }
done
echo "compiled ${#sources[@]} files"

libs=(-L"$torch_dir/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10)
[ -e "$torch_dir/lib/libtorch_cuda.so" ] && libs+=(-ltorch_cuda -lc10_cuda)
# Debian links libstb; elsewhere the stb implementations are compiled in from the headers folder.
printf '#define STB_IMAGE_IMPLEMENTATION\n#include <stb/stb_image.h>\n#define STB_IMAGE_WRITE_IMPLEMENTATION\n#include <stb/stb_image_write.h>\n' > "$out/stb.c"
gcc -O2 -fPIC -isystem "$headers" -c "$out/stb.c" -o "$out/stb.o"
g++ -shared -o "$out/liblatentlab_core.so" "$out"/obj/core_src_*.o "$out/stb.o" "${libs[@]}"
g++ "${flags[@]}" tools/compat/cuda_smoke.cpp -o "$out/cuda_smoke" -L"$out" -llatentlab_core "${libs[@]}" \
  -Wl,-rpath,"$out:$torch_dir/lib"
"$out/cuda_smoke"
