#pragma once
// The patch discriminator of the stage-1 objective (Eq. 25): pix2pix's NLayerDiscriminator as the
// reference uses it (taming/modules/discriminator/model.py), with BatchNorm, LeakyReLU(0.2) and the
// reference's N(0, 0.02) initialisation. Parameters are named `main.N.*` like the reference.
#include <cstdint>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

class LATENTLAB_API PatchDiscriminatorImpl : public torch::nn::Module {
 public:
  // in_channels: image channels; channels: width of the first layer (ndf); layers: strided layers (3).
  PatchDiscriminatorImpl(std::int64_t in_channels, std::int64_t channels = 64, std::int64_t layers = 3);
  // x: [B, C, H, W] -> logits [B, 1, H', W'], one per overlapping patch
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential main_{nullptr};
};
TORCH_MODULE(PatchDiscriminator);

}  // namespace latentlab::nn
