#include "latentlab/nn/unet.hpp"

#include <algorithm>
#include <cmath>

#include "blocks.hpp"
#include "latentlab/error.hpp"

namespace latentlab::nn {

namespace {

std::string shape(const torch::Tensor& t) {
  std::string out = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

bool contains(const std::vector<std::int64_t>& values, std::int64_t value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim, double max_period) {
  const auto half = dim / 2;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  const auto freqs =
      torch::exp(-std::log(max_period) * torch::arange(half, options) / static_cast<double>(half));
  const auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [B, half]
  auto embedding = torch::cat({torch::cos(args), torch::sin(args)}, 1);       // [B, 2 half]
  if (dim % 2) embedding = torch::cat({embedding, torch::zeros({t.size(0), 1}, options)}, 1);
  return embedding;  // [B, dim]
}

UNetImpl::UNetImpl(const UNetConfig& config) : config_(config) {
  const auto& c = config_;
  const auto mc = c.model_channels;
  const auto emb_dim = 4 * mc;

  auto time_embed = container(*this, "time_embed");
  time_embed_0_ = time_embed->register_module("0", torch::nn::Linear(mc, emb_dim));
  time_embed_2_ = time_embed->register_module("2", torch::nn::Linear(emb_dim, emb_dim));
  if (c.num_classes > 0)
    label_emb_ = register_module("label_emb", torch::nn::Embedding(c.num_classes, emb_dim));

  auto res_block = [&](std::int64_t in, std::int64_t out, bool up = false, bool down = false) {
    return ResBlock(ResBlockOptions{in, emb_dim, out, c.dropout, c.use_scale_shift_norm, up, down});
  };
  auto add_attention = [&](TimestepSequential& block, std::int64_t channels) {
    const auto [heads, dim_head] = c.heads_for(channels);
    if (c.use_spatial_transformer)
      // No dropout inside transformers: the reference UNet passes `dropout` to ResBlocks only.
      push_block(block,
                 SpatialTransformer(channels, heads, dim_head, c.transformer_depth, 0.0, c.context_dim));
    else
      push_block(block, AttentionBlock(channels, heads, c.use_new_attention_order));
  };

  auto input_blocks = container(*this, "input_blocks");
  auto add_input = [&](TimestepSequential block) {
    input_blocks->register_module(std::to_string(input_blocks_.size()), block.ptr());
    input_blocks_.push_back(block.ptr());
  };
  {
    TimestepSequential first;
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in_channels, mc, 3).padding(1));
    first->push(conv.ptr(), [conv](const torch::Tensor& x, const torch::Tensor&,
                                   const torch::Tensor&) mutable { return conv->forward(x); });
    add_input(first);
  }
  std::vector<std::int64_t> skip_channels = {mc};
  std::int64_t ch = mc, ds = 1;
  for (std::int64_t level = 0; level < c.levels(); ++level) {
    const auto mult = c.channel_mult[static_cast<std::size_t>(level)];
    for (std::int64_t i = 0; i < c.num_res_blocks; ++i) {
      TimestepSequential block;
      push_block(block, res_block(ch, mult * mc));
      ch = mult * mc;
      if (contains(c.attention_resolutions, ds)) add_attention(block, ch);
      add_input(block);
      skip_channels.push_back(ch);
    }
    if (level != c.levels() - 1) {
      TimestepSequential block;
      if (c.resblock_updown)
        push_block(block, res_block(ch, ch, false, true));
      else
        push_block(block, Downsample(ch, c.conv_resample, ch));
      add_input(block);
      skip_channels.push_back(ch);
      ds *= 2;
    }
  }

  TimestepSequential middle;
  push_block(middle, res_block(ch, ch));
  add_attention(middle, ch);
  push_block(middle, res_block(ch, ch));
  register_module("middle_block", middle.ptr());
  middle_block_ = middle.ptr();

  auto output_blocks = container(*this, "output_blocks");
  for (std::int64_t level = c.levels() - 1; level >= 0; --level) {
    const auto mult = c.channel_mult[static_cast<std::size_t>(level)];
    for (std::int64_t i = 0; i <= c.num_res_blocks; ++i) {
      const auto skip = skip_channels.back();
      skip_channels.pop_back();
      TimestepSequential block;
      push_block(block, res_block(ch + skip, mc * mult));
      ch = mc * mult;
      if (contains(c.attention_resolutions, ds)) add_attention(block, ch);
      if (level > 0 && i == c.num_res_blocks) {
        if (c.resblock_updown)
          push_block(block, res_block(ch, ch, true, false));
        else
          push_block(block, Upsample(ch, c.conv_resample, ch));
        ds /= 2;
      }
      output_blocks->register_module(std::to_string(output_blocks_.size()), block.ptr());
      output_blocks_.push_back(block.ptr());
    }
  }

  auto out = container(*this, "out");
  auto out_norm = normalization(ch);
  out->register_module("0", out_norm);
  out_norm_ = out_norm.ptr();
  out_conv_ = out->register_module(
      "2", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, c.out_channels, 3).padding(1)));
  zero_parameters(*out_conv_);
  if (c.channels_last)  // the 4-D weights (convolutions); a later .to(device) keeps the layout
    for (auto& p : parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

void UNetImpl::check_inputs(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                            const torch::Tensor& concat, const torch::Tensor& y) const {
  const auto& c = config_;
  if (x.dim() != 4) throw Error("UNet: x must be [B, C, H, W], got " + shape(x));
  const auto B = x.size(0), H = x.size(2), W = x.size(3);
  const auto channels = x.size(1) + (concat.defined() ? concat.size(1) : 0);
  if (concat.defined() &&
      (concat.dim() != 4 || concat.size(0) != B || concat.size(2) != H || concat.size(3) != W))
    throw Error("UNet: concat must be [B, C', H, W] matching x " + shape(x) + ", got " + shape(concat));
  if (channels != c.in_channels)
    throw Error("UNet: in_channels is " + std::to_string(c.in_channels) + " but x " + shape(x) +
                (concat.defined() ? " and concat " + shape(concat) : std::string()) + " give " +
                std::to_string(channels) + " channels");
  const auto divisor = c.size_divisor();
  if (H % divisor || W % divisor)
    throw Error("UNet: spatial size " + std::to_string(H) + "x" + std::to_string(W) +
                " is not divisible by " + std::to_string(divisor) + " (2^(levels-1) for " +
                std::to_string(c.levels()) + " levels); pad or resize the latents");
  if (t.dim() != 1 || t.size(0) != B)
    throw Error("UNet: t must be [B] with B = " + std::to_string(B) + ", got " + shape(t));
  if (c.use_spatial_transformer) {
    if (!context.defined())
      throw Error("UNet: this UNet cross-attends to conditioning tokens [B, M, " +
                  std::to_string(c.context_dim) + "]; pass a context");
    if (context.dim() != 3 || context.size(0) != B || context.size(2) != c.context_dim)
      throw Error("UNet: context must be [B, M, context_dim] = [" + std::to_string(B) + ", M, " +
                  std::to_string(c.context_dim) + "], got " + shape(context));
  }
  if (c.num_classes > 0 && !y.defined())
    throw Error("UNet: num_classes is " + std::to_string(c.num_classes) + ": pass class labels y [B]");
  if (c.num_classes == 0 && y.defined()) throw Error("UNet: class labels given but num_classes is 0");
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                                const torch::Tensor& concat, const torch::Tensor& y) {
  check_inputs(x, t, context, concat, y);
  // t: [B] -> [B, mc] -> [B, 4 mc]
  // The sinusoid in float32 (docs/precision.md), then the weights' dtype (float64 in some tests).
  const auto sinusoid = timestep_embedding(t.to(torch::kFloat32) - 1.0, config_.model_channels)
                            .to(time_embed_0_->weight.scalar_type());
  auto emb = time_embed_2_->forward(torch::silu(time_embed_0_->forward(sinusoid)));
  if (label_emb_) emb = emb + label_emb_->forward(y);

  auto h = concat.defined() ? torch::cat({x, concat}, 1) : x;  // [B, in_channels, H, W]
  if (config_.channels_last) h = h.contiguous(torch::MemoryFormat::ChannelsLast);
  std::vector<torch::Tensor> skips;
  skips.reserve(input_blocks_.size());
  for (auto& block : input_blocks_) {
    h = block->forward(h, emb, context);  // down to [B, ch, H / 2^(levels-1), W / 2^(levels-1)]
    skips.push_back(h);
  }
  h = middle_block_->forward(h, emb, context);
  for (auto& block : output_blocks_) {
    h = torch::cat({h, skips.back()}, 1);  // [B, ch + skip, h, w]
    skips.pop_back();
    h = block->forward(h, emb, context);  // up to [B, mc, H, W]
  }
  return out_conv_->forward(out_norm_->forward_silu(h));  // [B, out_channels, H, W]
}

std::int64_t UNetImpl::num_parameters() const {
  std::int64_t count = 0;
  for (const auto& p : parameters()) count += p.numel();
  return count;
}

}  // namespace latentlab::nn
