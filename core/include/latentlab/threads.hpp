#pragma once
// CPU threading for compute: one place that sets LibTorch's intra-op threads and keeps the BLAS
// library from starting a second pool that competes with them.
#include "latentlab/export.hpp"

namespace latentlab {

// Sets LibTorch's intra-op (OpenMP) threads to `threads` and, when the process uses OpenBLAS, limits
// OpenBLAS to the calling thread. LibTorch already parallelises around its BLAS calls; a second
// OpenBLAS pool competes with the OpenMP threads (which spin after each parallel region), and on a
// 2-core machine made the benchmark UNet 3-4x slower (docs/benchmarks.md). Returns the thread count
// LibTorch reports afterwards.
LATENTLAB_API int set_compute_threads(int threads);

// Sets OpenBLAS's own thread pool size; false when the process does not use OpenBLAS.
LATENTLAB_API bool set_openblas_threads(int threads);

// The thread count OpenBLAS uses, or -1 when the process does not use OpenBLAS.
LATENTLAB_API int openblas_threads();

}  // namespace latentlab
