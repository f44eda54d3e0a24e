#pragma once
// What `kl` and `vq` share: the reference encoder and decoder, the 1x1 `quant_conv` (encoder output ->
// moments or latent) and `post_quant_conv` (latent -> decoder input), under one root module whose
// children carry the reference state-dict names.
#include <memory>

#include "latentlab/autoencoder.hpp"
#include "latentlab/nn/autoencoder_net.hpp"
#include "latentlab/precision.hpp"

namespace latentlab::autoencoders {

class FirstStage : public Autoencoder {
 public:
  // quant_in/quant_out: quant_conv's channels; latent: the latent channels post_quant_conv takes.
  FirstStage(const nn::AutoencoderNetConfig& config, std::int64_t quant_in, std::int64_t quant_out,
             std::int64_t latent)
      : config_(config), root_(std::make_shared<torch::nn::Module>()) {
    encoder_ = root_->register_module("encoder", nn::Encoder(config_));
    decoder_ = root_->register_module("decoder", nn::Decoder(config_));
    quant_conv_ = root_->register_module("quant_conv",
                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(quant_in, quant_out, 1)));
    post_quant_conv_ = root_->register_module(
        "post_quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(latent, config_.z_channels, 1)));
  }

  std::int64_t downsampling_factor() const override { return config_.downsampling_factor(); }
  std::int64_t image_channels() const override { return config_.in_channels; }
  torch::nn::Module& module() override { return *root_; }
  torch::Tensor last_layer() override { return decoder_->last_layer(); }

 protected:
  // x: [B, C, H, W] -> quant_conv(E(x)): [B, quant_out, H/f, W/f]
  // In float32 under autocast: the posterior's moments and the quantiser's distances need it
  // (docs/precision.md).
  torch::Tensor encoder_output(const torch::Tensor& x) {
    return full_precision(quant_conv_->forward(encoder_->forward(x)));
  }
  // z: [B, latent, h, w] -> D(post_quant_conv(z)): [B, C, h f, w f]
  torch::Tensor decoder_output(const torch::Tensor& z) {
    return decoder_->forward(post_quant_conv_->forward(z));
  }

  nn::AutoencoderNetConfig config_;
  std::shared_ptr<torch::nn::Module> root_;  // children: encoder, decoder, quant_conv, post_quant_conv, ...

 private:
  nn::Encoder encoder_{nullptr};
  nn::Decoder decoder_{nullptr};
  torch::nn::Conv2d quant_conv_{nullptr}, post_quant_conv_{nullptr};
};

}  // namespace latentlab::autoencoders
