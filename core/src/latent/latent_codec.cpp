#include "latentlab/latent/latent_codec.hpp"

#include "latentlab/error.hpp"

namespace latentlab {

LatentCodec::LatentCodec(std::shared_ptr<Autoencoder> autoencoder, AutoencoderFileInfo info)
    : autoencoder_(std::move(autoencoder)), info_(std::move(info)) {
  const auto c = static_cast<std::size_t>(autoencoder_->latent_channels());
  if (info_.rescaling.mode != "none" &&
      (info_.rescaling.shift.size() != c || info_.rescaling.scale.size() != c))
    throw Error("the autoencoder's latent rescaling has " + std::to_string(info_.rescaling.scale.size()) +
                " channels, its latents " + std::to_string(c));
}

std::shared_ptr<LatentCodec> LatentCodec::load(const std::filesystem::path& path,
                                               const AutoencoderFactory& factory, torch::Device device) {
  auto loaded = read_autoencoder_file(path, factory, device);
  return std::make_shared<LatentCodec>(std::move(loaded.autoencoder), std::move(loaded.info));
}

torch::Tensor LatentCodec::encode(const torch::Tensor& x, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  return info_.rescaling.apply(autoencoder_->encode(x, generator));
}

torch::Tensor LatentCodec::encode_mode(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return info_.rescaling.apply(autoencoder_->encode_mode(x));
}

torch::Tensor LatentCodec::decode(const torch::Tensor& z) {
  return autoencoder_->decode(info_.rescaling.invert(z));
}

}  // namespace latentlab
