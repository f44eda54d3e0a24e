#pragma once
// Normalisation layers computed in float32 whatever their input's dtype (LDM's GroupNorm32), so that a
// network runs under bf16/fp16 autocast (docs/precision.md): LibTorch 1.13's CPU GroupNorm and
// LayerNorm take no bf16 input with float32 weights, and a norm's mean and variance in bf16 lose the
// precision the rest of the layer needs. The output has the input's dtype. Parameters `weight`, `bias`,
// as the library's own layers, so state dicts are unchanged. Plugins use them too (the `tokens`
// conditioner).
#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

// group_norm(x) with `groups` groups, per-channel `weight` and `bias` and `eps`, then SiLU when `silu`:
// what precedes most of the UNet's and the first stage's convolutions. float32 and float64 inputs go
// through LibTorch's GroupNorm (and an in-place SiLU outside autograd). A bf16/fp16 input (autocast)
// is normalised in float32, as LDM's GroupNorm32 does, and the SiLU is applied in float32 too, before
// the one conversion back to the input's dtype: LibTorch 1.13's bf16 SiLU runs several times slower
// than its float32 one (docs/benchmarks.md#where-the-time-goes). The output keeps x's memory format.
// Differentiable.
LATENTLAB_API torch::Tensor group_norm_silu(const torch::Tensor& x, std::int64_t groups,
                                            const torch::Tensor& weight, const torch::Tensor& bias,
                                            double eps, bool silu = true);

class GroupNorm32Impl : public torch::nn::GroupNormImpl {
 public:
  using torch::nn::GroupNormImpl::GroupNormImpl;
  torch::Tensor forward(const torch::Tensor& x) {
    return group_norm_silu(x, options.num_groups(), weight, bias, options.eps(), false);
  }
  // silu(forward(x)), the SiLU in float32 under autocast (group_norm_silu).
  torch::Tensor forward_silu(const torch::Tensor& x) {
    return group_norm_silu(x, options.num_groups(), weight, bias, options.eps(), true);
  }
};
TORCH_MODULE(GroupNorm32);

class LayerNorm32Impl : public torch::nn::LayerNormImpl {
 public:
  using torch::nn::LayerNormImpl::LayerNormImpl;
  torch::Tensor forward(const torch::Tensor& x) {
    if (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64)
      return LayerNormImpl::forward(x);
    return LayerNormImpl::forward(x.to(torch::kFloat32)).to(x.scalar_type());
  }
};
TORCH_MODULE(LayerNorm32);

}  // namespace latentlab::nn
