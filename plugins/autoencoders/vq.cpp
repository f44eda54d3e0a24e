// `vq`: the reference VQModel (ldm/models/autoencoder.py, taming's VectorQuantizer2) with optional EMA
// codebook updates and dead-code restarts.
#include "vq.hpp"

#include "first_stage.hpp"
#include "latentlab/error.hpp"
#include "latentlab/nn/regularizers.hpp"
#include "net_params.hpp"

namespace latentlab::autoencoders {

namespace {

nn::VectorQuantizerOptions quantizer_options(const Params& params) {
  nn::VectorQuantizerOptions q;
  q.n_embed = params.get_int("n_embed");
  q.embed_dim = params.get_int("embed_dim");
  q.beta = params.get_float("beta");
  q.legacy_loss = params.get_bool("legacy_loss");
  q.ema = params.get_bool("ema");
  q.ema_decay = params.get_float("ema_decay");
  q.restart_every = params.get_int("restart_every");
  return q;
}

class VQAutoencoder : public FirstStage {
 public:
  explicit VQAutoencoder(const Params& params)
      : FirstStage(net_config(params, Family::kVq), params.get_int("z_channels"), params.get_int("embed_dim"),
                   params.get_int("embed_dim")),
        quantize_latent_(params.get_bool("quantize_latent")),
        codebook_weight_(params.get_float("codebook_weight")) {
    quantize_ = root_->register_module("quantize", nn::VectorQuantizer(quantizer_options(params)));
  }

  std::int64_t latent_channels() const override { return quantize_->options().embed_dim; }
  std::string regularizer() const override { return "vq"; }
  std::int64_t codebook_size() const override { return quantize_->options().n_embed; }

  torch::Tensor encode(const torch::Tensor& x, at::Generator&) override {
    const auto h = encoder_output(x);
    return quantize_latent_ ? quantize_->lookup(quantize_->indices(h)) : h;
  }
  torch::Tensor decode(const torch::Tensor& z) override {
    // The reference VQModelInterface.decode: quantise (straight-through, so gradients reach z, as
    // post-hoc guidance needs), then decode.
    const auto z_q = quantize_->lookup(quantize_->indices(z));
    return decoder_output(z + (z_q - z).detach());
  }
  torch::Tensor reconstruct(const torch::Tensor& x) override { return decode(encoder_output(x)); }
  torch::Tensor code_indices(const torch::Tensor& x) override {
    return quantize_->indices(encoder_output(x));
  }

  AutoencoderOutput forward(const torch::Tensor& x, at::Generator& generator) override {
    const auto q = quantize_->forward(encoder_output(x), generator);
    AutoencoderOutput out;
    out.reconstruction = decoder_output(q.quantized);
    out.regularizer = codebook_weight_ * q.loss;
    out.logs = {
        {"codebook_loss", q.loss.detach()}, {"perplexity", q.perplexity}, {"codebook_usage", q.usage}};
    return out;
  }

 private:
  bool quantize_latent_;
  double codebook_weight_;
  nn::VectorQuantizer quantize_{nullptr};
};

}  // namespace

ParamSchema vq_schema() {
  ParamSchema schema;
  add_net_params(schema, 3, 3)
      .integer("n_embed", 8192, "codebook size", Range::at_least(2))
      .number("beta", 0.25, "commitment weight beta", Range::at_least(0))
      .number("codebook_weight", 1.0, "weight of the codebook + commitment loss in Eq. 25",
              Range::at_least(0))
      .boolean("legacy_loss", false,
               "put beta on the codebook term instead (taming's default `legacy` quantiser)")
      .boolean("ema", false, "update the codebook by exponential moving averages instead of its loss")
      .number("ema_decay", 0.99, "decay of the EMA codebook statistics", Range::open(0.0, 1.0))
      .integer("restart_every", 0,
               "every N training steps, move codes no latent used since the last check onto random "
               "latents of the batch (0: never, as the reference)",
               Range::at_least(0))
      .boolean("quantize_latent", false,
               "stage 2 trains on quantised latents (the reference passes the pre-quantisation latent)");
  return schema;
}

std::unique_ptr<Autoencoder> make_vq(const Params& params) {
  return std::make_unique<VQAutoencoder>(params);
}

}  // namespace latentlab::autoencoders
