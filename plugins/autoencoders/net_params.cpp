#include "net_params.hpp"

#include <cmath>

#include "latentlab/error.hpp"

namespace latentlab::autoencoders {

namespace {

std::vector<std::int64_t> integers(const Params& params, const std::string& name) {
  std::vector<std::int64_t> out;
  for (const double v : params.get_numbers(name)) {
    if (v != std::floor(v)) throw ConfigError(name + ": expected whole numbers, got " + std::to_string(v));
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

}  // namespace

ParamSchema& add_net_params(ParamSchema& schema, std::int64_t z_channels, std::int64_t embed_dim) {
  return schema.integer("ch", 128, "base width of the encoder and decoder", Range::at_least(1))
      .number_list("ch_mult", std::vector<double>{1, 2, 4, 4},
                   "width multiplier per resolution level; f = 2^(length - 1), 1 to 6 levels (f = 1..32)",
                   Range::at_least(1), 1)
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
               Range::at_least(1));
}

nn::AutoencoderNetConfig net_config(const Params& params, bool double_z) {
  nn::AutoencoderNetConfig c;
  c.in_channels = c.out_ch = params.get_int("in_channels");
  c.ch = params.get_int("ch");
  c.ch_mult = integers(params, "ch_mult");
  c.num_res_blocks = params.get_int("num_res_blocks");
  c.attn_resolutions = integers(params, "attn_resolutions");
  c.resolution = params.get_int("resolution");
  c.z_channels = params.get_int("z_channels");
  c.double_z = double_z;
  c.dropout = params.get_float("dropout");
  c.norm_groups = params.get_int("norm_groups");
  c.validate("autoencoder.params");
  return c;
}

}  // namespace latentlab::autoencoders
