#pragma once
// The encoder/decoder parameters the `kl` and `vq` autoencoders share (the reference `ddconfig`).
#include "latentlab/nn/autoencoder_net.hpp"
#include "latentlab/params.hpp"

namespace latentlab::autoencoders {

// Adds f, ch, ch_mult, num_res_blocks, attn_resolutions, resolution, in_channels, z_channels, embed_dim,
// dropout and norm_groups (defaults: the reference kl-f8 / vq-f4 first stages' widths).
ParamSchema& add_net_params(ParamSchema& schema, std::int64_t z_channels, std::int64_t embed_dim);

// Which reference configs the presets of f follow (they differ at f = 8), and whether the encoder
// doubles its output (KL: mean and log-variance).
enum class Family { kKl, kVq };

// The network config those parameters describe: ch_mult as given, or the preset of f when only f is
// given (neither: [1, 2, 4, 4], f = 8). Throws ConfigError when f is not a power of two up to 32 or
// disagrees with ch_mult.
nn::AutoencoderNetConfig net_config(const Params& params, Family family);

}  // namespace latentlab::autoencoders
