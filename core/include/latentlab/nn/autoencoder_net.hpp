#pragma once
// The first-stage encoder E and decoder D of the reference LDM (ldm/modules/diffusionmodules/model.py,
// Encoder and Decoder): ResnetBlocks without a time embedding, single-head self-attention at chosen
// resolutions, strided-conv downsampling and nearest+conv upsampling. f = 2^(len(ch_mult) - 1).
// Module and parameter names equal the reference state-dict keys (`conv_in`, `down.0.block.1.norm1`,
// `down.0.downsample.conv`, `mid.attn_1.q`, `up.2.upsample.conv`, `norm_out`, `conv_out`).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

// The reference `ddconfig`.
struct LATENTLAB_API AutoencoderNetConfig {
  std::int64_t in_channels = 3;  // image channels C
  std::int64_t out_ch = 3;       // decoder output channels (C)
  std::int64_t ch = 128;         // base width
  std::vector<std::int64_t> ch_mult{1, 2, 4, 4};
  std::int64_t num_res_blocks = 2;
  std::vector<std::int64_t> attn_resolutions;  // feature-map sides (relative to `resolution`) with attention
  std::int64_t resolution = 256;               // the image side attn_resolutions refer to
  std::int64_t z_channels = 4;
  bool double_z = true;  // the encoder outputs 2 z_channels (mean and log-variance)
  double dropout = 0.0;
  std::int64_t norm_groups = 32;  // GroupNorm groups (the reference: 32); every width must divide by it
  // The reference's make_attn types: "vanilla" (single-head self-attention in the middle block and at
  // attn_resolutions) or "none" (no attention anywhere: at f = 1 the middle block's attention would
  // run over every pixel).
  std::string attn_type = "vanilla";

  std::int64_t levels() const { return static_cast<std::int64_t>(ch_mult.size()); }
  std::int64_t downsampling_factor() const { return std::int64_t{1} << (levels() - 1); }
  // Throws ConfigError naming `path`.key when the widths do not divide by norm_groups, a list is empty, ...
  void validate(const std::string& path) const;
};

class LATENTLAB_API EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const AutoencoderNetConfig& config);
  // x: [B, in_channels, H, W] -> [B, (double_z ? 2 : 1) * z_channels, H/f, W/f]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  struct Parts;
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(Encoder);

class LATENTLAB_API DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const AutoencoderNetConfig& config);
  // z: [B, z_channels, h, w] -> [B, out_ch, h f, w f]
  torch::Tensor forward(const torch::Tensor& z);
  // conv_out.weight: the last layer, for the adaptive GAN weight (Eq. 25).
  torch::Tensor last_layer() const;

 private:
  struct Parts;
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(Decoder);

}  // namespace latentlab::nn
