#pragma once
// The LDM denoiser eps_theta: a UNet with ResBlocks, self-attention and spatial transformers
// (Rombach et al. 2022, Sec. 3.3; ldm/modules/diffusionmodules/openaimodel.py, UNetModel). Module and
// parameter names equal the reference state-dict keys (`input_blocks.N...`, `middle_block...`,
// `output_blocks...`, `out...`), so reference checkpoints load by name.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"
#include "latentlab/nn/unet_config.hpp"

namespace latentlab::nn {

class TimestepSequentialImpl;
class GroupNorm32Impl;

// Sinusoidal embedding of t (LDM's timestep_embedding): [cos(t f_i), sin(t f_i)] with
// f_i = max_period^(-i / (dim/2)), zero-padded when dim is odd. t: [B] -> [B, dim] float32
LATENTLAB_API torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim,
                                               double max_period = 10000.0);

class LATENTLAB_API UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(const UNetConfig& config);

  // x:       [B, C, H, W] noisy latents, H and W divisible by config().size_divisor()
  // t:       [B] diffusion steps 1..T (integer or float). The network embeds t - 1, the 0-based index
  //          the reference code uses, so imported checkpoints see the values they were trained on.
  // context: [B, M, context_dim] conditioning tokens; required iff use_spatial_transformer
  // concat:  [B, C', H, W] channels concatenated to x (C + C' = in_channels), or undefined
  // y:       [B] int64 class labels; required iff num_classes > 0
  // returns  [B, out_channels, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context = {},
                        const torch::Tensor& concat = {}, const torch::Tensor& y = {});

  const UNetConfig& config() const { return config_; }
  std::int64_t num_parameters() const;

 private:
  void check_inputs(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                    const torch::Tensor& concat, const torch::Tensor& y) const;

  UNetConfig config_;
  torch::nn::Linear time_embed_0_{nullptr}, time_embed_2_{nullptr};
  torch::nn::Embedding label_emb_{nullptr};
  std::vector<std::shared_ptr<TimestepSequentialImpl>> input_blocks_, output_blocks_;
  std::shared_ptr<TimestepSequentialImpl> middle_block_;
  std::shared_ptr<GroupNorm32Impl> out_norm_;
  torch::nn::Conv2d out_conv_{nullptr};
};
TORCH_MODULE(UNet);

}  // namespace latentlab::nn
