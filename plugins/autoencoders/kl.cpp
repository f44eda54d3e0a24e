// `kl`: the reference AutoencoderKL (ldm/models/autoencoder.py) with a diagonal Gaussian posterior.
#include "kl.hpp"

#include "first_stage.hpp"
#include "latentlab/nn/regularizers.hpp"
#include "net_params.hpp"

namespace latentlab::autoencoders {

namespace {

class KLAutoencoder : public FirstStage {
 public:
  explicit KLAutoencoder(const Params& params)
      : FirstStage(net_config(params, Family::kKl), 2 * params.get_int("z_channels"),
                   2 * params.get_int("embed_dim"), params.get_int("embed_dim")),
        embed_dim_(params.get_int("embed_dim")),
        kl_weight_(params.get_float("kl_weight")),
        sample_latent_(params.get_string("latent") == "sample") {}

  std::int64_t latent_channels() const override { return embed_dim_; }
  std::string regularizer() const override { return "kl"; }

  torch::Tensor encode(const torch::Tensor& x, at::Generator& generator) override {
    const auto posterior = encode_posterior(x);
    return sample_latent_ ? posterior.sample(generator) : posterior.mean;
  }
  torch::Tensor encode_mode(const torch::Tensor& x) override { return encode_posterior(x).mean; }
  torch::Tensor decode(const torch::Tensor& z) override { return decoder_output(z); }
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

 private:
  nn::DiagonalGaussian encode_posterior(const torch::Tensor& x) {
    return nn::DiagonalGaussian(encoder_output(x));  // moments [B, 2c, H/f, W/f]
  }

  std::int64_t embed_dim_;
  double kl_weight_;
  bool sample_latent_;
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
