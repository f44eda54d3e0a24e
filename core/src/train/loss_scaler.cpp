#include "latentlab/train/loss_scaler.hpp"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

LossScaler::LossScaler(LossScalerOptions options)
    : enabled_(true), options_(options), scale_(options.init_scale) {
  if (!(options.init_scale > 0) || !(options.growth_factor > 1) || !(options.backoff_factor > 0) ||
      !(options.backoff_factor < 1) || options.growth_interval < 1)
    throw ConfigError(
        "loss scaling: expected init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and "
        "growth_interval >= 1");
}

torch::Tensor LossScaler::scaled(const torch::Tensor& loss) const {
  return enabled_ ? loss * scale_ : loss;
}

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  // One reduction per gradient, read once: a float64 sum of absolute values is finite exactly when
  // every element is (an inf or a NaN anywhere makes it inf or NaN).
  std::vector<torch::Tensor> sums;
  for (const auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    g.mul_(inverse);
    sums.push_back(g.abs().sum(torch::kFloat64));
  }
  if (sums.empty()) return true;
  return std::isfinite(torch::stack(sums).sum().item<double>());
}

void LossScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
}

torch::Tensor LossScaler::state() const {
  return torch::tensor({scale_, static_cast<double>(growth_tracker_)}, torch::kFloat64);
}

void LossScaler::load_state(const torch::Tensor& state) {
  const auto values = state.to(torch::kCPU, torch::kFloat64).contiguous();
  if (values.numel() != 2)
    throw Error("loss scaler state: expected [scale, growth_tracker], got " + std::to_string(values.numel()) +
                " values");
  if (!(values[0].item<double>() > 0))
    throw Error("loss scaler state: the scale must be positive, got " +
                format_number(values[0].item<double>()));
  scale_ = values[0].item<double>();
  growth_tracker_ = static_cast<std::int64_t>(values[1].item<double>());
}

}  // namespace latentlab
