#pragma once
// CPU threading for compute: one place that sets LibTorch's intra-op threads and keeps the BLAS
// library from starting a second pool that competes with them.
#include <string>

#include <torch/types.h>

#include "latentlab/export.hpp"

namespace latentlab {

// Sets LibTorch's intra-op (OpenMP) threads to `threads` and, when the process uses OpenBLAS, limits
// OpenBLAS to the calling thread. LibTorch already parallelises around its BLAS calls; a second
// OpenBLAS pool competes with the OpenMP threads (which spin after each parallel region), and on a
// 2-core machine made the benchmark UNet 3-4x slower (docs/benchmarks.md). Returns the thread count
// LibTorch reports afterwards.
// `blas_threads` other than 1 restores an OpenBLAS pool (only to measure what it costs).
LATENTLAB_API int set_compute_threads(int threads, int blas_threads = 1);

// The device a "device" setting names: "cpu", "cuda", "cuda:N", or "auto" (CUDA when this LibTorch
// has a GPU, else the CPU). Throws ConfigError naming `what` for anything else, or for CUDA without a
// GPU.
LATENTLAB_API torch::Device resolve_device(const std::string& name, const std::string& what = "device");

// Sets OpenBLAS's own thread pool size; false when the process does not use OpenBLAS.
LATENTLAB_API bool set_openblas_threads(int threads);

// The thread count OpenBLAS uses, or -1 when the process does not use OpenBLAS.
LATENTLAB_API int openblas_threads();

}  // namespace latentlab
