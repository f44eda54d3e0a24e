// `kl`: the reference AutoencoderKL (ldm/models/autoencoder.py) with a diagonal Gaussian posterior.
#include "kl.hpp"

#include "latentlab/nn/regularizers.hpp"
#include "net_params.hpp"

namespace latentlab::autoencoders {

namespace {

class KLAutoencoder : public Autoencoder {
 public:
  explicit KLAutoencoder(const Params& params)
      : config_(net_config(params, true)),
        embed_dim_(params.get_int("embed_dim")),
        kl_weight_(params.get_float("kl_weight")),
        sample_latent_(params.get_string("latent") == "sample"),
        root_(std::make_shared<torch::nn::Module>()) {
    encoder_ = root_->register_module("encoder", nn::Encoder(config_));
    decoder_ = root_->register_module("decoder", nn::Decoder(config_));
    quant_conv_ = root_->register_module(
        "quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2 * config_.z_channels, 2 * embed_dim_, 1)));
    post_quant_conv_ = root_->register_module(
        "post_quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(embed_dim_, config_.z_channels, 1)));
  }

  std::int64_t downsampling_factor() const override { return config_.downsampling_factor(); }
  std::int64_t latent_channels() const override { return embed_dim_; }
  std::int64_t image_channels() const override { return config_.in_channels; }
  std::string regularizer() const override { return "kl"; }

  torch::Tensor encode(const torch::Tensor& x, at::Generator& generator) override {
    const auto posterior = encode_posterior(x);
    return sample_latent_ ? posterior.sample(generator) : posterior.mean;
  }
  torch::Tensor decode(const torch::Tensor& z) override {
    return decoder_->forward(post_quant_conv_->forward(z));
  }
  torch::Tensor reconstruct(const torch::Tensor& x) override { return decode(encode_posterior(x).mean); }

  AutoencoderOutput forward(const torch::Tensor& x, at::Generator& generator) override {
    const auto posterior = encode_posterior(x);
    const auto kl = posterior.kl();  // [B]
    AutoencoderOutput out;
    out.reconstruction = decode(posterior.sample(generator));
    // The reference's kl_loss = sum(kl) / B, weighted by kl_weight (Eq. 25's L_reg).
    out.regularizer = kl_weight_ * kl.sum() / static_cast<double>(x.size(0));
    out.logs = {{"kl", kl.mean().detach()}};
    return out;
  }

  torch::nn::Module& module() override { return *root_; }
  torch::Tensor last_layer() override { return decoder_->last_layer(); }

 private:
  nn::DiagonalGaussian encode_posterior(const torch::Tensor& x) {
    return nn::DiagonalGaussian(quant_conv_->forward(encoder_->forward(x)));  // moments [B, 2c, H/f, W/f]
  }

  nn::AutoencoderNetConfig config_;
  std::int64_t embed_dim_;
  double kl_weight_;
  bool sample_latent_;
  std::shared_ptr<torch::nn::Module> root_;
  nn::Encoder encoder_{nullptr};
  nn::Decoder decoder_{nullptr};
  torch::nn::Conv2d quant_conv_{nullptr}, post_quant_conv_{nullptr};
};

}  // namespace

ParamSchema kl_schema() {
  ParamSchema schema;
  add_net_params(schema, 4, 4)
      .number("kl_weight", 1e-6, "weight of KL(q(z|x) || N(0, I)) (summed over z, averaged over the batch)",
              Range::at_least(0))
      .choice("latent", "sample", {"sample", "mean"},
              "the latent stage 2 trains on: a posterior sample (the reference) or the posterior mean");
  return schema;
}

std::unique_ptr<Autoencoder> make_kl(const Params& params) {
  return std::make_unique<KLAutoencoder>(params);
}

}  // namespace latentlab::autoencoders
