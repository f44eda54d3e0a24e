#include "net_params.hpp"

#include <cmath>
#include <optional>

#include "latentlab/error.hpp"

namespace latentlab::autoencoders {

namespace {

constexpr const char* kPath = "autoencoder.params";

using Levels = std::vector<std::int64_t>;  // ch_mult

Levels integers(const Params& params, const std::string& name) {
  Levels out;
  for (const double v : params.get_numbers(name)) {
    if (v != std::floor(v)) throw ConfigError(name + ": expected whole numbers, got " + std::to_string(v));
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

std::string list(const Levels& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

// ch_mult for an f given alone, from the reference first-stage configs (docs/autoencoders.md):
// vq-f2-64 [1, 2]; kl-f4, vq-f4 [1, 2, 4]; kl-f8 [1, 2, 4, 4], vq-f8 [1, 2, 2, 4]; kl-f16,
// vq-f16 [1, 1, 2, 2, 4]; kl-f32 [1, 1, 2, 2, 4, 4]. f = 1 has no reference first stage: one level.
// std::nullopt for any other f.
std::optional<Levels> preset_ch_mult(std::int64_t f, Family family) {
  if (f == 8 && family == Family::kVq) return Levels{1, 2, 2, 4};
  switch (f) {
    case 1:
      return Levels{1};
    case 2:
      return Levels{1, 2};
    case 4:
      return Levels{1, 2, 4};
    case 8:
      return Levels{1, 2, 4, 4};
    case 16:
      return Levels{1, 1, 2, 2, 4};
    case 32:
      return Levels{1, 1, 2, 2, 4, 4};
    default:
      return std::nullopt;
  }
}

// f = 0 means "from ch_mult", an empty ch_mult "the preset of f"; neither given is f = 8, the
// default before f was a parameter, so older configs and autoencoder.pt files build the same network.
Levels resolve_ch_mult(Levels ch_mult, std::int64_t f, Family family) {
  if (f == 0 && ch_mult.empty()) return Levels{1, 2, 4, 4};
  const auto preset = preset_ch_mult(f == 0 ? 8 : f, family);
  if (!preset)
    throw ConfigError(std::string(kPath) + ".f: got " + std::to_string(f) +
                      "; f must be 1, 2, 4, 8, 16 or 32 (or 0: derive it from ch_mult)");
  if (ch_mult.empty()) return *preset;
  // More than 6 levels is left to AutoencoderNetConfig::validate, which names the limit.
  if (f != 0 && ch_mult.size() <= 6) {
    const auto levels = static_cast<std::int64_t>(ch_mult.size());
    const std::int64_t implied = std::int64_t{1} << (levels - 1);
    if (implied != f)
      throw ConfigError(std::string(kPath) + ": f = " + std::to_string(f) + " disagrees with ch_mult " +
                        list(ch_mult) + " (" + std::to_string(levels) +
                        " levels give f = " + std::to_string(implied) + "); give only one of them");
  }
  return ch_mult;
}

}  // namespace

ParamSchema& add_net_params(ParamSchema& schema, std::int64_t z_channels, std::int64_t embed_dim) {
  return schema
      .integer("f", 0,
               "downsampling factor: 1, 2, 4, 8, 16 or 32; given alone it picks the reference ch_mult "
               "for that f (0: from ch_mult; neither given: f = 8)",
               Range::at_least(0))
      .integer("ch", 128, "base width of the encoder and decoder", Range::at_least(1))
      .number_list("ch_mult", std::vector<double>{},
                   "width multiplier per resolution level, 1 to 6 levels, f = 2^(length - 1) "
                   "([]: the preset of f; [1, 2, 4, 4] when f is not given either)",
                   Range::at_least(1), 0)
      .integer("num_res_blocks", 2, "ResnetBlocks per level (the decoder has one more)", Range::at_least(1))
      .number_list("attn_resolutions", std::vector<double>{},
                   "feature-map sides (counted from `resolution`) that get self-attention",
                   Range::at_least(1))
      .integer("resolution", 256,
               "the image side attn_resolutions refer to (train-autoencoder sets the data's when not given)",
               Range::at_least(1))
      .integer("in_channels", 3, "image channels (train-autoencoder sets the data's when not given)",
               Range::closed(1, 4))
      .integer("z_channels", z_channels, "channels of the encoder output and decoder input",
               Range::at_least(1))
      .integer("embed_dim", embed_dim, "latent channels c (after quant_conv)", Range::at_least(1))
      .number("dropout", 0.0, "dropout inside the ResnetBlocks", Range{0.0, 1.0, false, true})
      .integer("norm_groups", 32, "GroupNorm groups (the reference: 32); every width must divide by it",
               Range::at_least(1))
      .choice("attn_type", "vanilla", {"vanilla", "none"},
              "the reference's attention type: vanilla (self-attention in the middle block and at "
              "attn_resolutions) or none (no attention anywhere; the middle block's spans every "
              "position of the coarsest grid, all pixels at f = 1)");
}

nn::AutoencoderNetConfig net_config(const Params& params, Family family) {
  const bool double_z = family == Family::kKl;  // the encoder outputs the Gaussian's mean and log-variance
  nn::AutoencoderNetConfig c;
  c.in_channels = c.out_ch = params.get_int("in_channels");
  c.ch = params.get_int("ch");
  c.ch_mult = resolve_ch_mult(integers(params, "ch_mult"), params.get_int("f"), family);
  c.num_res_blocks = params.get_int("num_res_blocks");
  c.attn_resolutions = integers(params, "attn_resolutions");
  c.resolution = params.get_int("resolution");
  c.z_channels = params.get_int("z_channels");
  c.double_z = double_z;
  c.dropout = params.get_float("dropout");
  c.norm_groups = params.get_int("norm_groups");
  c.attn_type = params.get_string("attn_type");
  c.validate(kPath);
  return c;
}

}  // namespace latentlab::autoencoders
