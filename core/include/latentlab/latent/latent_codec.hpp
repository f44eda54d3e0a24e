#pragma once
// The latent space stage 2 works in: z' = rescale(E(x)) of a trained autoencoder (Sec. 3.1, Sec. G),
// and its decoder D(unrescale(z')). Read by the denoiser trainer, the sample stage and the guiders'
// decode function.
#include <filesystem>
#include <memory>

#include <torch/torch.h>

#include "latentlab/autoencoder.hpp"
#include "latentlab/export.hpp"
#include "latentlab/latent/autoencoder_file.hpp"

namespace latentlab {

// The latent interface stage 2 sees: z' = rescale(E(x)) and D(unrescale(z')), in eval mode, frozen.
class LATENTLAB_API LatentCodec {
 public:
  LatentCodec(std::shared_ptr<Autoencoder> autoencoder, AutoencoderFileInfo info);
  // Loads `path` with `factory`, on `device`.
  static std::shared_ptr<LatentCodec> load(const std::filesystem::path& path,
                                           const AutoencoderFactory& factory, torch::Device device);

  // x: [B, C, H, W] -> z': [B, c, H/f, W/f] (no gradients)
  torch::Tensor encode(const torch::Tensor& x, at::Generator& generator);
  // rescale(the autoencoder's deterministic latent, Autoencoder::encode_mode), without gradients.
  torch::Tensor encode_mode(const torch::Tensor& x);
  // z': [B, c, h, w] -> x: [B, C, h f, w f] (differentiable in z', for post-hoc guidance)
  torch::Tensor decode(const torch::Tensor& z);

  std::int64_t downsampling_factor() const { return autoencoder_->downsampling_factor(); }
  std::int64_t latent_channels() const { return autoencoder_->latent_channels(); }
  std::int64_t image_channels() const { return autoencoder_->image_channels(); }
  Autoencoder& autoencoder() { return *autoencoder_; }
  const AutoencoderFileInfo& info() const { return info_; }

 private:
  std::shared_ptr<Autoencoder> autoencoder_;
  AutoencoderFileInfo info_;
};

}  // namespace latentlab
