#pragma once
// softmax(q k^T * scale) v, the product every attention layer of the UNet, the first stage and the
// conditioners runs (docs/unet.md#attention). Where LibTorch has a fused kernel
// (at::scaled_dot_product_attention, LibTorch >= 2.1) it runs that for float32, bfloat16 and float16;
// otherwise, and in float64, it computes the similarity matrix a block of queries at a time, so that no
// more than `max_bytes` of it exist at once: memory grows with L x S only up to that budget, and large
// inputs (convolutional sampling beyond the training size, a 256x256 first stage's 4096 tokens)
// stay within memory. The softmax is computed in float32 whatever the compute dtype (as LDM does).
#include <cstdint>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

// The similarity matrix's default budget on the blocked path: 8 MiB (2M float32 scores), where a block's
// scores stay in cache between its two products and the softmax (docs/benchmarks.md#attention-in-blocks).
constexpr std::int64_t kAttentionBlockBytes = std::int64_t{8} << 20;

// The budget every attention layer of this process uses (kAttentionBlockBytes until set); 0: the whole
// similarity matrix at once. `bench denoiser --attention-block-mib` compares budgets.
LATENTLAB_API void set_attention_block_bytes(std::int64_t bytes);
LATENTLAB_API std::int64_t attention_block_bytes();

// q: [N, L, d], k, v: [N, S, d] -> [N, L, d]. max_bytes < 0: attention_block_bytes().
LATENTLAB_API torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                         const torch::Tensor& v, double scale,
                                                         std::int64_t max_bytes = -1);

// Whether scaled_dot_product_attention runs LibTorch's fused kernel for tensors of `dtype`.
LATENTLAB_API bool fused_attention_available(torch::ScalarType dtype);

}  // namespace latentlab::nn
