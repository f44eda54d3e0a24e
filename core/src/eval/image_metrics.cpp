#include "latentlab/eval/image_metrics.hpp"

#include <cmath>

#include "latentlab/error.hpp"

namespace latentlab::eval {

namespace {

torch::Tensor unit_range(const torch::Tensor& x) {
  return ((x.detach().to(torch::kFloat64).clamp(-1.0, 1.0) + 1.0) / 2.0);
}

void check_pair(const torch::Tensor& x, const torch::Tensor& y, const char* metric) {
  if (x.dim() != 4 || x.sizes() != y.sizes())
    throw Error(std::string(metric) + ": expected two image batches [B, C, H, W] of one shape");
}

}  // namespace

torch::Tensor psnr(const torch::Tensor& x, const torch::Tensor& y) {
  check_pair(x, y, "PSNR");
  const auto mse = (unit_range(x) - unit_range(y)).pow(2).mean({1, 2, 3});  // [B]
  return -10.0 * torch::log10(mse);
}

namespace {

// SSIM's map over the valid region: [B, C, H - 10, W - 10].
torch::Tensor ssim_map(const torch::Tensor& x, const torch::Tensor& y) {
  constexpr std::int64_t kSize = 11;
  constexpr double kSigma = 1.5, kC1 = 0.01 * 0.01, kC2 = 0.03 * 0.03;
  if (x.size(2) < kSize || x.size(3) < kSize)
    throw Error("SSIM needs images of at least 11x11 pixels, got " + std::to_string(x.size(2)) + "x" +
                std::to_string(x.size(3)));
  const auto a = unit_range(x), b = unit_range(y);
  const auto C = a.size(1);
  auto g = torch::arange(kSize, torch::TensorOptions().dtype(torch::kFloat64).device(a.device())) -
           (kSize - 1) / 2.0;
  g = torch::exp(-g.pow(2) / (2 * kSigma * kSigma));
  g = g / g.sum();
  // A separable window, applied per channel (groups = C): [C, 1, 11, 1] then [C, 1, 1, 11].
  const auto vertical = g.view({1, 1, kSize, 1}).expand({C, 1, kSize, 1}).contiguous();
  const auto horizontal = g.view({1, 1, 1, kSize}).expand({C, 1, 1, kSize}).contiguous();
  const auto blur = [&](const torch::Tensor& t) {
    const torch::Tensor no_bias;
    const std::vector<std::int64_t> one{1, 1}, zero{0, 0};
    return torch::conv2d(torch::conv2d(t, vertical, no_bias, one, zero, one, C), horizontal, no_bias, one,
                         zero, one, C);
  };
  const auto mu_a = blur(a);
  const auto mu_b = blur(b);
  const auto var_a = blur(a * a) - mu_a.pow(2);
  const auto var_b = blur(b * b) - mu_b.pow(2);
  const auto cov = blur(a * b) - mu_a * mu_b;
  const auto map = ((2 * mu_a * mu_b + kC1) * (2 * cov + kC2)) /
                   ((mu_a.pow(2) + mu_b.pow(2) + kC1) * (var_a + var_b + kC2));  // [B, C, H-10, W-10]
  return map;
}

// The mask as float64 [B, 1, H, W] weights on x's device; Error unless it fits x and covers a pixel
// of every image.
torch::Tensor checked_mask(const torch::Tensor& x, const torch::Tensor& mask, const char* metric) {
  if (mask.dim() != 4 || mask.size(0) != x.size(0) || mask.size(1) != 1 || mask.size(2) != x.size(2) ||
      mask.size(3) != x.size(3))
    throw Error(std::string(metric) + ": the mask must be [B, 1, H, W] for images [B, C, H, W]");
  const auto weights = mask.detach().to(x.device(), torch::kFloat64).clamp(0.0, 1.0);
  if (weights.sum({1, 2, 3}).eq(0).any().item<bool>())
    throw Error(std::string(metric) + ": a mask covers no pixel");
  return weights;
}

}  // namespace

torch::Tensor ssim(const torch::Tensor& x, const torch::Tensor& y) {
  check_pair(x, y, "SSIM");
  return ssim_map(x, y).mean({1, 2, 3});
}

torch::Tensor masked_psnr(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& mask) {
  check_pair(x, y, "masked PSNR");
  const auto weights = checked_mask(x, mask, "masked PSNR");
  const auto squared = (unit_range(x) - unit_range(y)).pow(2) * weights;  // [B, C, H, W]
  const auto mse = squared.sum({1, 2, 3}) / (weights.sum({1, 2, 3}) * static_cast<double>(x.size(1)));
  return -10.0 * torch::log10(mse);
}

torch::Tensor masked_ssim(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& mask) {
  check_pair(x, y, "masked SSIM");
  auto weights = checked_mask(x, mask, "masked SSIM");
  const auto map = ssim_map(x, y);  // [B, C, H - 10, W - 10]: window centres 5 .. H - 6
  weights = weights.slice(2, 5, 5 + map.size(2)).slice(3, 5, 5 + map.size(3));
  const auto total = weights.sum({1, 2, 3});
  // A mask entirely within 5 pixels of the border has no window centred on it: its SSIM is undefined.
  const auto value = (map.mean(1, true) * weights).sum({1, 2, 3}) / total.clamp_min(1e-12);
  return torch::where(total.gt(0), value, torch::full_like(value, std::nan("")));
}

}  // namespace latentlab::eval
