#include "latentlab/nn/unet_config.hpp"

#include <algorithm>
#include <cmath>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::nn {

const ParamSchema& UNetConfig::schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("in_channels", 4, "input channels: latent channels + concatenated conditioning channels",
                   Range::at_least(1))
          .integer("out_channels", 4, "output channels (the latent channels)", Range::at_least(1))
          .integer("model_channels", 64, "base width; every level's width is a multiple of it (x32)",
                   Range::at_least(1))
          .number_list("channel_mult", std::vector<double>{1, 2, 4, 4}, "width multiplier per level",
                       Range::at_least(1), 1)
          .integer("num_res_blocks", 2, "ResBlocks per level", Range::at_least(1))
          .number_list("attention_resolutions", std::vector<double>{4, 2, 1},
                       "downsampling factors (1, 2, 4, ...) whose blocks get attention", Range::at_least(1))
          .integer("num_heads", -1, "attention heads (-1: channels / num_head_channels)", Range::at_least(-1))
          .integer("num_head_channels", 32, "channels per attention head (-1: use num_heads)",
                   Range::at_least(-1))
          .number("dropout", 0.0, "dropout in ResBlocks", Range{0.0, 1.0, false, true})
          .boolean("use_scale_shift_norm", false,
                   "FiLM-like time conditioning: GroupNorm(h) * (1 + scale) + shift")
          .boolean("resblock_updown", false, "down/upsample with ResBlocks instead of (strided) convolutions")
          .boolean("conv_resample", true, "learned 3x3 convolution in Downsample/Upsample")
          .boolean("use_new_attention_order", false, "split qkv before heads (QKVAttention) instead of after")
          .boolean("use_spatial_transformer", false,
                   "spatial transformers (self- and cross-attention, Sec. 3.3) instead of self-attention "
                   "blocks; default: true when context_dim is set")
          .integer("transformer_depth", 1, "transformer blocks per spatial transformer", Range::at_least(1))
          .integer("context_dim", 0, "width of the conditioning tokens (0 or null: none)", Range::at_least(0))
          .integer("num_classes", 0, "class-conditional embedding over this many classes (0: none)",
                   Range::at_least(0))
          .boolean("channels_last", false,
                   "convolutions in channels-last memory format: faster for wide UNets in fp32 on the CPU, "
                   "slower for small ones (docs/unet.md)")
          .integer("image_size", 0, "informational in LDM; LatentLab takes the size from the input",
                   Range::at_least(0))
          .boolean("use_checkpoint", false, "LDM's activation checkpointing; accepted, has no effect here")
          .boolean("use_fp16", false, "LDM's fp16 flag; accepted, has no effect (see devices in DESIGN.md)")
          .boolean("legacy", true,
                   "LDM's head-size rule switch; yields the same heads for every valid config")
          .integer("dims", 2, "spatial dimensions (only 2 is supported)", Range::closed(2, 2));
  return schema;
}

namespace {

std::vector<std::int64_t> integers(const Params& params, const std::string& name, const std::string& path) {
  std::vector<std::int64_t> out;
  for (const double value : params.get_numbers(name)) {
    if (value != std::floor(value))
      throw ConfigError(path + "." + name + ": expected whole numbers, got " + format_number(value));
    out.push_back(static_cast<std::int64_t>(value));
  }
  return out;
}

}  // namespace

UNetConfig UNetConfig::from_json(const nlohmann::json& json, const std::string& path) {
  if (!json.is_null() && !json.is_object())
    throw ConfigError(path + ": expected a JSON object of UNet hyperparameters, got " + json.dump());
  nlohmann::json given = json.is_null() ? nlohmann::json::object() : json;
  if (given.contains("context_dim") && given["context_dim"].is_null()) given.erase("context_dim");
  const Params params = schema().validate(given, path, "the UNet");

  UNetConfig c;
  c.in_channels = params.get_int("in_channels");
  c.out_channels = params.get_int("out_channels");
  c.model_channels = params.get_int("model_channels");
  c.channel_mult = integers(params, "channel_mult", path);
  c.num_res_blocks = params.get_int("num_res_blocks");
  c.attention_resolutions = integers(params, "attention_resolutions", path);
  c.num_heads = params.get_int("num_heads");
  c.num_head_channels = params.get_int("num_head_channels");
  c.dropout = params.get_float("dropout");
  c.use_scale_shift_norm = params.get_bool("use_scale_shift_norm");
  c.resblock_updown = params.get_bool("resblock_updown");
  c.conv_resample = params.get_bool("conv_resample");
  c.use_new_attention_order = params.get_bool("use_new_attention_order");
  // Unlike LDM (where a context_dim without spatial transformers is silently unused), giving
  // context_dim turns them on unless use_spatial_transformer is given.
  c.use_spatial_transformer = given.contains("use_spatial_transformer")
                                  ? params.get_bool("use_spatial_transformer")
                                  : params.get_int("context_dim") > 0;
  c.transformer_depth = params.get_int("transformer_depth");
  c.context_dim = params.get_int("context_dim");
  c.num_classes = params.get_int("num_classes");
  c.channels_last = params.get_bool("channels_last");
  c.image_size = params.get_int("image_size");
  c.use_checkpoint = params.get_bool("use_checkpoint");
  c.use_fp16 = params.get_bool("use_fp16");
  c.legacy = params.get_bool("legacy");

  // GroupNorm(32) everywhere, as in LDM: the base width and every level's width must be multiples of 32.
  if (c.model_channels % 32 != 0)
    throw ConfigError(
        path + ".model_channels: " + std::to_string(c.model_channels) +
        " is not a multiple of 32 (GroupNorm uses 32 groups, and the first block has model_channels "
        "channels); use a multiple of 32");
  for (const auto mult : c.channel_mult)
    if ((c.model_channels * mult) % 32 != 0)
      throw ConfigError(path + ".model_channels: " + std::to_string(c.model_channels) + " x channel_mult " +
                        std::to_string(mult) + " = " + std::to_string(c.model_channels * mult) +
                        " channels is not a multiple of 32 (GroupNorm uses 32 groups); use a multiple of 32");
  if (c.num_heads == -1 && c.num_head_channels == -1)
    throw ConfigError(path + ": set num_heads or num_head_channels (both are -1)");
  if (c.num_heads == 0 || c.num_head_channels == 0)
    throw ConfigError(path + ": num_heads and num_head_channels must be positive or -1");
  if (c.use_spatial_transformer && c.context_dim == 0)
    throw ConfigError(path +
                      ".context_dim: use_spatial_transformer needs the width of the conditioning tokens "
                      "(context_dim), as in LDM");
  if (!c.use_spatial_transformer && c.context_dim > 0)
    throw ConfigError(path + ".context_dim: " + std::to_string(c.context_dim) +
                      " is set but use_spatial_transformer is false, so nothing would attend to the context; "
                      "remove one of them");
  for (const auto ds : c.attention_resolutions)
    if (ds & (ds - 1))
      throw ConfigError(path + ".attention_resolutions: " + std::to_string(ds) +
                        " is not a downsampling factor (1, 2, 4, ...)");
  for (std::int64_t level = 0; level < c.levels(); ++level) {
    const auto channels = c.model_channels * c.channel_mult[static_cast<std::size_t>(level)];
    const auto [heads, head_channels] = c.heads_for(channels);
    if (heads * head_channels != channels)
      throw ConfigError(path + ": " + std::to_string(channels) + " channels at level " +
                        std::to_string(level) + " do not split into heads (num_heads " +
                        std::to_string(c.num_heads) + ", num_head_channels " +
                        std::to_string(c.num_head_channels) + ")");
  }
  return c;
}

std::pair<std::int64_t, std::int64_t> UNetConfig::heads_for(std::int64_t channels) const {
  if (num_head_channels == -1) return {num_heads, channels / num_heads};
  return {channels / num_head_channels, num_head_channels};
}

double UNetConfig::forward_flops(std::int64_t H, std::int64_t W, std::int64_t context_tokens) const {
  // Walks the blocks in the order UNetImpl's constructor builds them (core/src/nn/unet.cpp).
  const double M = static_cast<double>(context_tokens);
  const double mc = static_cast<double>(model_channels), emb = 4 * mc;
  auto conv = [](double in, double out, double k, double positions) {
    return 2 * in * out * k * k * positions;
  };
  auto linear = [](double in, double out, double tokens) { return 2 * in * out * tokens; };
  double flops = linear(mc, emb, 1) + linear(emb, emb, 1);  // time_embed
  // ResBlock at h x w input positions; `scale` is the output's positions over the input's (4, 1/4, 1).
  auto res_block = [&](double in, double out, double positions, double scale) {
    const double p = positions * scale;
    double f =
        conv(in, out, 3, p) + conv(out, out, 3, p) + linear(emb, use_scale_shift_norm ? 2 * out : out, 1);
    if (in != out) f += conv(in, out, 1, p);
    return f;
  };
  auto attention = [&](double channels, double T) {
    if (!use_spatial_transformer)  // qkv, QK^T and AV over all heads, proj_out
      return linear(channels, 3 * channels, T) + 2 * (2 * T * T * channels) + linear(channels, channels, T);
    const double inner = channels;                                       // heads * dim_head (heads_for)
    double f = linear(channels, inner, T) + linear(inner, channels, T);  // proj_in, proj_out
    const double cd = static_cast<double>(context_dim);
    for (std::int64_t i = 0; i < transformer_depth; ++i) {
      f += 4 * linear(inner, inner, T) + 2 * (2 * T * T * inner);                             // attn1
      f += 2 * linear(inner, inner, T) + 2 * linear(cd, inner, M) + 2 * (2 * T * M * inner);  // attn2
      f += linear(inner, 8 * inner, T) + linear(4 * inner, inner, T);                         // GEGLU ff
    }
    return f;
  };
  auto has_attention = [&](std::int64_t ds) {
    return std::find(attention_resolutions.begin(), attention_resolutions.end(), ds) !=
           attention_resolutions.end();
  };
  double positions = static_cast<double>(H) * static_cast<double>(W);
  flops += conv(static_cast<double>(in_channels), mc, 3, positions);
  std::vector<double> skips = {mc};
  double ch = mc;
  std::int64_t ds = 1;
  for (std::int64_t level = 0; level < levels(); ++level) {
    const double out = mc * static_cast<double>(channel_mult[static_cast<std::size_t>(level)]);
    for (std::int64_t i = 0; i < num_res_blocks; ++i) {
      flops += res_block(ch, out, positions, 1);
      ch = out;
      if (has_attention(ds)) flops += attention(ch, positions);
      skips.push_back(ch);
    }
    if (level != levels() - 1) {
      if (resblock_updown)
        flops += res_block(ch, ch, positions, 0.25);
      else if (conv_resample)
        flops += conv(ch, ch, 3, positions / 4);
      positions /= 4;
      skips.push_back(ch);
      ds *= 2;
    }
  }
  flops += 2 * res_block(ch, ch, positions, 1) + attention(ch, positions);  // middle block
  for (std::int64_t level = levels() - 1; level >= 0; --level) {
    const double out = mc * static_cast<double>(channel_mult[static_cast<std::size_t>(level)]);
    for (std::int64_t i = 0; i <= num_res_blocks; ++i) {
      const double skip = skips.back();
      skips.pop_back();
      flops += res_block(ch + skip, out, positions, 1);
      ch = out;
      if (has_attention(ds)) flops += attention(ch, positions);
      if (level > 0 && i == num_res_blocks) {
        if (resblock_updown)
          flops += res_block(ch, ch, positions, 4);
        else if (conv_resample)
          flops += conv(ch, ch, 3, positions * 4);
        positions *= 4;
        ds /= 2;
      }
    }
  }
  return flops + conv(ch, static_cast<double>(out_channels), 3, positions);  // out
}

nlohmann::json UNetConfig::to_json() const {
  nlohmann::json json = {{"in_channels", in_channels},
                         {"out_channels", out_channels},
                         {"model_channels", model_channels},
                         {"channel_mult", channel_mult},
                         {"num_res_blocks", num_res_blocks},
                         {"attention_resolutions", attention_resolutions},
                         {"num_heads", num_heads},
                         {"num_head_channels", num_head_channels},
                         {"dropout", dropout},
                         {"use_scale_shift_norm", use_scale_shift_norm},
                         {"resblock_updown", resblock_updown},
                         {"conv_resample", conv_resample},
                         {"use_new_attention_order", use_new_attention_order},
                         {"use_spatial_transformer", use_spatial_transformer},
                         {"transformer_depth", transformer_depth},
                         {"context_dim", context_dim},
                         {"num_classes", num_classes},
                         {"image_size", image_size},
                         {"use_checkpoint", use_checkpoint},
                         {"use_fp16", use_fp16},
                         {"legacy", legacy},
                         {"dims", 2}};
  // Only when set: a contiguous UNet keeps the content keys and weight files it had before.
  if (channels_last) json["channels_last"] = true;
  return json;
}

}  // namespace latentlab::nn
