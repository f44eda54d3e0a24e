#pragma once
// Dynamic loss scaling for fp16 training (docs/precision.md#fp16-and-loss-scaling): float16 keeps
// 5 exponent bits, so small gradients underflow to zero in its backward pass. The loss is multiplied
// by a scale S before backward(), the float32 gradients are divided by S before clipping and the
// optimiser step, and a step whose gradients overflowed (inf or NaN) is skipped. S halves after every
// overflow and doubles after `growth_interval` finite steps in a row, so it settles just below the
// largest value the gradients tolerate. bf16 has float32's range and needs none of this.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "latentlab/export.hpp"

namespace latentlab {

struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16; powers of two scale and unscale without rounding
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;
};

class LATENTLAB_API LossScaler {
 public:
  // A disabled scaler (the default: fp32 and bf16) passes losses and gradients through unchanged and
  // never skips.
  LossScaler() = default;
  explicit LossScaler(LossScalerOptions options);

  bool enabled() const { return enabled_; }
  // The current scale (1 when disabled).
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // loss * scale(), for backward().
  torch::Tensor scaled(const torch::Tensor& loss) const;
  // Divides the gradients of `params` by scale() in place; returns whether every one is finite. Call
  // once per optimiser step, after the last backward() and before clipping.
  bool unscale(const std::vector<torch::Tensor>& params) const;
  // After a step: backs off on an overflow (finite false), grows after growth_interval finite steps.
  void update(bool finite);
  // Finite steps since the last overflow or growth.
  std::int64_t growth_tracker() const { return growth_tracker_; }

  // [scale, growth_tracker] as float64, for checkpoints; load_state restores it.
  torch::Tensor state() const;
  void load_state(const torch::Tensor& state);

 private:
  bool enabled_ = false;
  LossScalerOptions options_;
  double scale_ = 1.0;
  std::int64_t growth_tracker_ = 0;
};

}  // namespace latentlab
