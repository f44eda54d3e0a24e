// LDM's first-stage Encoder and Decoder (ldm/modules/diffusionmodules/model.py), names kept.
#include "latentlab/nn/autoencoder_net.hpp"

#include <algorithm>
#include <cmath>

#include "blocks.hpp"
#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::nn {

namespace F = torch::nn::functional;

void AutoencoderNetConfig::validate(const std::string& path) const {
  const auto key = [&](const char* name) { return path.empty() ? std::string(name) : path + "." + name; };
  if (ch_mult.empty() || ch_mult.size() > 6)
    throw ConfigError(key("ch_mult") + ": expected 1 to 6 width multipliers (f = 2^(length - 1) = 1..32)");
  for (const auto m : ch_mult)
    if (m < 1) throw ConfigError(key("ch_mult") + ": multipliers must be >= 1");
  for (const auto& [name, value] : {std::pair<const char*, std::int64_t>{"ch", ch},
                                    {"z_channels", z_channels},
                                    {"in_channels", in_channels},
                                    {"out_ch", out_ch},
                                    {"num_res_blocks", num_res_blocks},
                                    {"resolution", resolution}})
    if (value < 1) throw ConfigError(key(name) + ": must be >= 1, got " + std::to_string(value));
  if (norm_groups < 1) throw ConfigError(key("norm_groups") + ": must be >= 1");
  for (const auto m : ch_mult)
    if ((ch * m) % norm_groups)
      throw ConfigError(key("ch") + ": every width ch * ch_mult[i] must divide by norm_groups = " +
                        std::to_string(norm_groups) + ", but " + std::to_string(ch) + " * " +
                        std::to_string(m) + " does not; pick ch a multiple of " +
                        std::to_string(norm_groups) + " or lower norm_groups");
  if (dropout < 0 || dropout >= 1) throw ConfigError(key("dropout") + ": must be in [0, 1)");
  if (attn_type != "vanilla" && attn_type != "none")
    throw ConfigError(key("attn_type") + ": got '" + attn_type + "'; expected 'vanilla' or 'none'");
}

namespace {

// Normalize(): GroupNorm with eps 1e-6 (the reference's first-stage value).
GroupNorm32 normalize(std::int64_t channels, std::int64_t groups) {
  return GroupNorm32(torch::nn::GroupNormOptions(groups, channels).eps(1e-6));
}

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1,
                       std::int64_t padding = -1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding < 0 ? kernel / 2 : padding));
}

// ResnetBlock with temb_channels = 0: x + conv2(dropout(swish(norm2(conv1(swish(norm1(x))))))), with a
// 1x1 `nin_shortcut` on x when the width changes.
class ResnetBlockImpl : public torch::nn::Module {
 public:
  ResnetBlockImpl(std::int64_t in, std::int64_t out, double dropout, std::int64_t groups)
      : norm1_(register_module("norm1", normalize(in, groups))),
        conv1_(register_module("conv1", conv(in, out, 3))),
        norm2_(register_module("norm2", normalize(out, groups))),
        dropout_(register_module("dropout", torch::nn::Dropout(dropout))),
        conv2_(register_module("conv2", conv(out, out, 3))) {
    if (in != out) shortcut_ = register_module("nin_shortcut", conv(in, out, 1));
  }
  // x: [B, in, H, W] -> [B, out, H, W]
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = conv1_->forward(norm1_->forward_silu(x));
    h = conv2_->forward(dropout_->forward(norm2_->forward_silu(h)));
    return (shortcut_ ? shortcut_->forward(x) : x) + h;
  }

 private:
  GroupNorm32 norm1_;
  torch::nn::Conv2d conv1_;
  GroupNorm32 norm2_;
  torch::nn::Dropout dropout_;
  torch::nn::Conv2d conv2_;
  torch::nn::Conv2d shortcut_{nullptr};
};
TORCH_MODULE(ResnetBlock);

// AttnBlock: single-head self-attention over the H*W positions with 1x1 q, k, v, proj_out.
class AttnBlockImpl : public torch::nn::Module {
 public:
  AttnBlockImpl(std::int64_t channels, std::int64_t groups)
      : norm_(register_module("norm", normalize(channels, groups))),
        q_(register_module("q", conv(channels, channels, 1))),
        k_(register_module("k", conv(channels, channels, 1))),
        v_(register_module("v", conv(channels, channels, 1))),
        proj_out_(register_module("proj_out", conv(channels, channels, 1))) {}
  // x: [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x) {
    const auto B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    const auto h = norm_->forward(x);
    const auto tokens = [&](torch::nn::Conv2d& layer) {
      return layer->forward(h).reshape({B, C, H * W}).transpose(1, 2);  // [B, HW, C]
    };
    const auto out = scaled_dot_product_attention(tokens(q_), tokens(k_), tokens(v_),
                                                  1.0 / std::sqrt(static_cast<double>(C)));  // [B, HW, C]
    return x + proj_out_->forward(out.transpose(1, 2).reshape({B, C, H, W}));
  }

 private:
  GroupNorm32 norm_;
  torch::nn::Conv2d q_, k_, v_, proj_out_;
};
TORCH_MODULE(AttnBlock);

// Downsample with conv: pad right and bottom by one, then a 3x3 stride-2 convolution with no padding.
class DownsampleConvImpl : public torch::nn::Module {
 public:
  explicit DownsampleConvImpl(std::int64_t channels)
      : conv_(register_module("conv", conv(channels, channels, 3, 2, 0))) {}
  // [B, C, H, W] -> [B, C, H/2, W/2]
  torch::Tensor forward(const torch::Tensor& x) {
    return conv_->forward(F::pad(x, F::PadFuncOptions({0, 1, 0, 1})));
  }

 private:
  torch::nn::Conv2d conv_;
};
TORCH_MODULE(DownsampleConv);

// Upsample with conv: nearest-neighbour 2x, then a 3x3 convolution.
class UpsampleConvImpl : public torch::nn::Module {
 public:
  explicit UpsampleConvImpl(std::int64_t channels)
      : conv_(register_module("conv", conv(channels, channels, 3))) {}
  // [B, C, H, W] -> [B, C, 2H, 2W]
  torch::Tensor forward(const torch::Tensor& x) {
    return conv_->forward(F::interpolate(
        x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
  }

 private:
  torch::nn::Conv2d conv_;
};
TORCH_MODULE(UpsampleConv);

// One resolution level: `block.N`, `attn.N` and the resampler.
struct Level {
  std::vector<ResnetBlock> blocks;
  std::vector<AttnBlock> attns;  // empty, or one per block
  DownsampleConv downsample{nullptr};
  UpsampleConv upsample{nullptr};
  std::shared_ptr<torch::nn::Module> module;  // `down.N` / `up.N`

  torch::Tensor blocks_forward(torch::Tensor h, std::size_t i) {
    h = blocks[i]->forward(h);
    return attns.empty() ? h : attns[i]->forward(h);
  }
};

struct Middle {
  ResnetBlock block_1{nullptr}, block_2{nullptr};
  AttnBlock attn_1{nullptr};  // none with attn_type "none"

  Middle(torch::nn::Module& parent, std::int64_t width, const AutoencoderNetConfig& c) {
    auto mid = container(parent, "mid");
    block_1 = mid->register_module("block_1", ResnetBlock(width, width, c.dropout, c.norm_groups));
    if (c.attn_type == "vanilla") attn_1 = mid->register_module("attn_1", AttnBlock(width, c.norm_groups));
    block_2 = mid->register_module("block_2", ResnetBlock(width, width, c.dropout, c.norm_groups));
  }
  torch::Tensor forward(const torch::Tensor& h) {
    const auto mid = block_1->forward(h);
    return block_2->forward(attn_1 ? attn_1->forward(mid) : mid);
  }
};

bool has_attention(const AutoencoderNetConfig& c, std::int64_t resolution) {
  return c.attn_type == "vanilla" && std::find(c.attn_resolutions.begin(), c.attn_resolutions.end(),
                                               resolution) != c.attn_resolutions.end();
}

// Registers level `index` under `list` ("down" or "up") with `count` blocks from width in to out.
Level make_level(torch::nn::Module& list, std::int64_t index, std::int64_t count, std::int64_t in,
                 std::int64_t out, bool attention, const AutoencoderNetConfig& c) {
  Level level;
  level.module = container(list, std::to_string(index));
  auto blocks = container(*level.module, "block");
  auto attns = container(*level.module, "attn");
  for (std::int64_t i = 0; i < count; ++i) {
    level.blocks.push_back(blocks->register_module(
        std::to_string(i), ResnetBlock(i == 0 ? in : out, out, c.dropout, c.norm_groups)));
    if (attention)
      level.attns.push_back(attns->register_module(std::to_string(i), AttnBlock(out, c.norm_groups)));
  }
  return level;
}

}  // namespace

struct EncoderImpl::Parts {
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  std::vector<Level> down;
  std::unique_ptr<Middle> mid;
  GroupNorm32 norm_out{nullptr};
};

EncoderImpl::EncoderImpl(const AutoencoderNetConfig& c) : parts_(std::make_shared<Parts>()) {
  c.validate("");
  auto& p = *parts_;
  p.conv_in = register_module("conv_in", conv(c.in_channels, c.ch, 3));
  auto down = container(*this, "down");
  std::int64_t resolution = c.resolution, width = c.ch;
  for (std::int64_t i = 0; i < c.levels(); ++i) {
    const auto out = c.ch * c.ch_mult[static_cast<std::size_t>(i)];
    p.down.push_back(make_level(*down, i, c.num_res_blocks, width, out, has_attention(c, resolution), c));
    width = out;
    if (i != c.levels() - 1) {
      p.down.back().downsample = p.down.back().module->register_module("downsample", DownsampleConv(width));
      resolution /= 2;
    }
  }
  p.mid = std::make_unique<Middle>(*this, width, c);
  p.norm_out = register_module("norm_out", normalize(width, c.norm_groups));
  p.conv_out = register_module("conv_out", conv(width, (c.double_z ? 2 : 1) * c.z_channels, 3));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x) {
  auto& p = *parts_;
  auto h = p.conv_in->forward(x);  // [B, ch, H, W]
  for (auto& level : p.down) {
    for (std::size_t i = 0; i < level.blocks.size(); ++i) h = level.blocks_forward(h, i);
    if (level.downsample) h = level.downsample->forward(h);  // halves H, W
  }
  h = p.mid->forward(h);                                    // [B, ch * ch_mult[-1], H/f, W/f]
  return p.conv_out->forward(p.norm_out->forward_silu(h));  // [B, (1|2) z_channels, H/f, W/f]
}

struct DecoderImpl::Parts {
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  std::vector<Level> up;  // by level index; run from the last (coarsest) to 0
  std::unique_ptr<Middle> mid;
  GroupNorm32 norm_out{nullptr};
};

DecoderImpl::DecoderImpl(const AutoencoderNetConfig& c) : parts_(std::make_shared<Parts>()) {
  c.validate("");
  auto& p = *parts_;
  const auto levels = c.levels();
  std::int64_t width = c.ch * c.ch_mult.back();
  std::int64_t resolution = c.resolution / c.downsampling_factor();
  p.conv_in = register_module("conv_in", conv(c.z_channels, width, 3));
  p.mid = std::make_unique<Middle>(*this, width, c);
  // The reference builds `up` from the coarsest level and inserts each at the front, so up.0 is the
  // finest. Registering in index order gives the same names; widths come from the coarser level.
  std::vector<std::int64_t> in_width(static_cast<std::size_t>(levels));
  std::vector<std::int64_t> level_resolution(static_cast<std::size_t>(levels));
  for (std::int64_t i = levels - 1; i >= 0; --i) {
    in_width[static_cast<std::size_t>(i)] = width;
    level_resolution[static_cast<std::size_t>(i)] = resolution;
    width = c.ch * c.ch_mult[static_cast<std::size_t>(i)];
    if (i != 0) resolution *= 2;
  }
  auto up = container(*this, "up");
  for (std::int64_t i = 0; i < levels; ++i) {
    const auto out = c.ch * c.ch_mult[static_cast<std::size_t>(i)];
    p.up.push_back(make_level(*up, i, c.num_res_blocks + 1, in_width[static_cast<std::size_t>(i)], out,
                              has_attention(c, level_resolution[static_cast<std::size_t>(i)]), c));
    if (i != 0) p.up.back().upsample = p.up.back().module->register_module("upsample", UpsampleConv(out));
  }
  p.norm_out = register_module("norm_out", normalize(c.ch * c.ch_mult.front(), c.norm_groups));
  p.conv_out = register_module("conv_out", conv(c.ch * c.ch_mult.front(), c.out_ch, 3));
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& z) {
  auto& p = *parts_;
  auto h = p.mid->forward(p.conv_in->forward(z));  // [B, ch * ch_mult[-1], h, w]
  for (auto level = p.up.rbegin(); level != p.up.rend(); ++level) {
    for (std::size_t i = 0; i < level->blocks.size(); ++i) h = level->blocks_forward(h, i);
    if (level->upsample) h = level->upsample->forward(h);  // doubles h, w
  }
  return p.conv_out->forward(p.norm_out->forward_silu(h));  // [B, out_ch, h f, w f]
}

torch::Tensor DecoderImpl::last_layer() const {
  return parts_->conv_out->weight;
}

}  // namespace latentlab::nn
