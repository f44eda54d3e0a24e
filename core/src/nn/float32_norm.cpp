#include "latentlab/nn/float32_norm.hpp"

namespace latentlab::nn {

torch::Tensor group_norm_silu(const torch::Tensor& x, std::int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps, bool silu) {
  // bf16/fp16 (autocast) is normalised in float32, as LDM's GroupNorm32, and its SiLU applied in float32
  // too, before the one conversion back: LibTorch 1.13's bf16 SiLU is several times slower than its
  // float32 one (docs/benchmarks.md#where-the-time-goes).
  const auto type = x.scalar_type();
  const bool reduced = type != torch::kFloat32 && type != torch::kFloat64;
  auto y = torch::nn::functional::group_norm(
      reduced ? x.to(torch::kFloat32) : x,
      torch::nn::functional::GroupNormFuncOptions(groups).weight(weight).bias(bias).eps(eps));
  // In place outside autograd: nothing else holds the norm's output.
  if (silu) y = torch::GradMode::is_enabled() ? torch::silu(y) : torch::silu_(y);
  return reduced ? y.to(type) : y;
}

}  // namespace latentlab::nn
