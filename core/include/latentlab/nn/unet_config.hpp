#pragma once
// Hyperparameters of the LDM UNet (ldm/modules/diffusionmodules/openaimodel.py, UNetModel), with the
// reference names and meanings, so the `unet_config.params` of the paper's configs (Tables 12-15)
// port directly.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/export.hpp"
#include "latentlab/params.hpp"

namespace latentlab::nn {

struct LATENTLAB_API UNetConfig {
  std::int64_t in_channels = 4;  // latent channels plus any concatenated conditioning channels
  std::int64_t out_channels = 4;
  std::int64_t model_channels = 64;
  std::vector<std::int64_t> channel_mult = {1, 2, 4, 4};
  std::int64_t num_res_blocks = 2;
  // Downsampling factors ds (1 at the input resolution, 2 after one downsample, ...) at which blocks
  // get attention, as in LDM.
  std::vector<std::int64_t> attention_resolutions = {4, 2, 1};
  std::int64_t num_heads = -1;          // -1: derived from num_head_channels
  std::int64_t num_head_channels = 32;  // -1: use num_heads
  double dropout = 0.0;
  bool use_scale_shift_norm = false;
  bool resblock_updown = false;
  bool conv_resample = true;
  bool use_new_attention_order = false;
  bool use_spatial_transformer = false;  // cross-attention blocks (Sec. 3.3) instead of self-attention
  std::int64_t transformer_depth = 1;
  std::int64_t context_dim = 0;  // 0: no cross-attention context
  std::int64_t num_classes = 0;  // 0: no class embedding
  // Convolution weights and activations in channels-last memory format (NHWC): the same arithmetic,
  // faster for wide UNets in fp32 on the CPU, slower for small ones (docs/unet.md#memory-format).
  // LatentLab's own setting, not LDM's; left out of to_json when false.
  bool channels_last = false;
  // Accepted for config compatibility; see docs/unet.md for what each does here.
  std::int64_t image_size = 0;
  bool use_checkpoint = false;
  bool use_fp16 = false;
  bool legacy = true;

  // Parses a JSON object with the reference key names. Unknown keys, wrong types and inconsistent
  // values are ConfigErrors naming `path`. `context_dim: null` is read as 0.
  static UNetConfig from_json(const nlohmann::json& json, const std::string& path);
  nlohmann::json to_json() const;
  static const ParamSchema& schema();

  std::int64_t levels() const { return static_cast<std::int64_t>(channel_mult.size()); }
  // Spatial sizes must be divisible by this: 2^(levels - 1).
  std::int64_t size_divisor() const { return std::int64_t{1} << (levels() - 1); }
  // (heads, channels per head) for attention over `channels` channels (LDM's rule).
  std::pair<std::int64_t, std::int64_t> heads_for(std::int64_t channels) const;

  // Floating-point operations of one forward pass for one sample of H x W latents with M context
  // tokens (docs/benchmarks.md, "FLOPs"): 2 per multiply-add of every convolution, linear layer and
  // attention product (QK^T and AV); norms, activations, the time embedding's sinusoid and
  // elementwise sums are left out (under 1% of the total for the UNets in docs/benchmarks.md).
  double forward_flops(std::int64_t H, std::int64_t W, std::int64_t context_tokens = 1) const;
};

}  // namespace latentlab::nn
