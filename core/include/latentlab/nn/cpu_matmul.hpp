#pragma once
// Matrix products for the UNet that use both cores on the CPU.
//
// LatentLab runs OpenBLAS on the calling thread (latentlab/threads.hpp), and LibTorch 1.13's CPU bmm
// loops over its matrices on one thread with a dispatch per matrix: attention and linear layers then
// used one core and took most of the benchmark UNet's time (docs/benchmarks.md). These functions
// split the work over LibTorch's threads and call BLAS sgemm directly. They are differentiable, and
// fall back to LibTorch's own products off the CPU, for other dtypes, under autocast
// (latentlab/precision.hpp), or without cblas_sgemm.
#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

// c[n] = alpha * op(a[n]) op(b[n]), op = identity or transpose.
// a: [N, r_a, c_a], b: [N, r_b, c_b] -> [N, rows of op(a), columns of op(b)]
LATENTLAB_API torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b,
                                           bool transpose_a = false, bool transpose_b = false,
                                           double alpha = 1.0);

// F::linear: x [..., in] -> [..., out] with weight [out, in] (any trailing 1x1 kernel dims are
// flattened, so a Conv1d/Conv2d 1x1 weight works) and bias [out] or undefined.
LATENTLAB_API torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias);

}  // namespace latentlab::nn
