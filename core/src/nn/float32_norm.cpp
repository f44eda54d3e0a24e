#include "latentlab/nn/float32_norm.hpp"

namespace latentlab::nn {

torch::Tensor group_norm_silu(const torch::Tensor& x, std::int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps, bool silu) {
  const bool grad = torch::GradMode::is_enabled();
  const auto type = x.scalar_type();
  if (type == torch::kFloat32 || type == torch::kFloat64) {
    auto y = torch::nn::functional::group_norm(
        x, torch::nn::functional::GroupNormFuncOptions(groups).weight(weight).bias(bias).eps(eps));
    if (!silu) return y;
    return grad ? torch::silu(y) : torch::silu_(y);  // in place: nothing keeps the norm's output
  }
  // bf16/fp16 (autocast): LibTorch's GroupNorm on a float32 copy (float32 statistics, as LDM's
  // GroupNorm32), and SiLU in float32 before the one conversion back: LibTorch 1.13's bf16 SiLU is
  // several times slower than its float32 one (docs/benchmarks.md#where-the-time-goes).
  auto y = torch::nn::functional::group_norm(
      x.to(torch::kFloat32),
      torch::nn::functional::GroupNormFuncOptions(groups).weight(weight).bias(bias).eps(eps));
  if (silu) y = grad ? torch::silu(y) : torch::silu_(y);
  return y.to(type);
}

}  // namespace latentlab::nn
