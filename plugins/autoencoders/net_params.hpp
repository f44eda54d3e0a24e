#pragma once
// The encoder/decoder parameters the `kl` and `vq` autoencoders share (the reference `ddconfig`).
#include "latentlab/nn/autoencoder_net.hpp"
#include "latentlab/params.hpp"

namespace latentlab::autoencoders {

// Adds ch, ch_mult, num_res_blocks, attn_resolutions, resolution, in_channels, z_channels, embed_dim,
// dropout and norm_groups (defaults: the reference kl-f8 / vq-f4 first stages' widths).
ParamSchema& add_net_params(ParamSchema& schema, std::int64_t z_channels, std::int64_t embed_dim);

// The network config those parameters describe.
nn::AutoencoderNetConfig net_config(const Params& params, bool double_z);

}  // namespace latentlab::autoencoders
