// `vq`: the reference VQModel (ldm/models/autoencoder.py, taming's VectorQuantizer2) with optional EMA
// codebook updates and dead-code restarts.
#include "vq.hpp"

#include "latentlab/error.hpp"
#include "latentlab/nn/regularizers.hpp"
#include "net_params.hpp"

namespace latentlab::autoencoders {

namespace {

class VQAutoencoder : public Autoencoder {
 public:
  explicit VQAutoencoder(const Params& params)
      : config_(net_config(params, false)),
        quantize_latent_(params.get_bool("quantize_latent")),
        root_(std::make_shared<torch::nn::Module>()) {
    nn::VectorQuantizerOptions q;
    q.n_embed = params.get_int("n_embed");
    q.embed_dim = params.get_int("embed_dim");
    q.beta = params.get_float("beta");
    q.legacy_loss = params.get_bool("legacy_loss");
    q.ema = params.get_bool("ema");
    q.ema_decay = params.get_float("ema_decay");
    q.restart_every = params.get_int("restart_every");
    encoder_ = root_->register_module("encoder", nn::Encoder(config_));
    decoder_ = root_->register_module("decoder", nn::Decoder(config_));
    quantize_ = root_->register_module("quantize", nn::VectorQuantizer(q));
    quant_conv_ = root_->register_module(
        "quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(config_.z_channels, q.embed_dim, 1)));
    post_quant_conv_ = root_->register_module(
        "post_quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(q.embed_dim, config_.z_channels, 1)));
    codebook_weight_ = params.get_float("codebook_weight");
  }

  std::int64_t downsampling_factor() const override { return config_.downsampling_factor(); }
  std::int64_t latent_channels() const override { return quantize_->options().embed_dim; }
  std::int64_t image_channels() const override { return config_.in_channels; }
  std::string regularizer() const override { return "vq"; }
  std::int64_t codebook_size() const override { return quantize_->options().n_embed; }

  torch::Tensor encode(const torch::Tensor& x, at::Generator&) override {
    const auto h = pre_quantization(x);
    return quantize_latent_ ? quantize_->lookup(quantize_->indices(h)) : h;
  }
  torch::Tensor decode(const torch::Tensor& z) override {
    // The reference VQModelInterface.decode: quantise, then decode.
    return decode_quantized(quantize_->lookup(quantize_->indices(z)));
  }
  torch::Tensor reconstruct(const torch::Tensor& x) override { return decode(pre_quantization(x)); }
  torch::Tensor code_indices(const torch::Tensor& x) override {
    return quantize_->indices(pre_quantization(x));
  }

  AutoencoderOutput forward(const torch::Tensor& x, at::Generator& generator) override {
    const auto q = quantize_->forward(pre_quantization(x), generator);
    AutoencoderOutput out;
    out.reconstruction = decode_quantized(q.quantized);
    out.regularizer = codebook_weight_ * q.loss;
    out.logs = {
        {"codebook_loss", q.loss.detach()}, {"perplexity", q.perplexity}, {"codebook_usage", q.usage}};
    return out;
  }

  torch::nn::Module& module() override { return *root_; }
  torch::Tensor last_layer() override { return decoder_->last_layer(); }

 private:
  torch::Tensor pre_quantization(const torch::Tensor& x) {
    return quant_conv_->forward(encoder_->forward(x));  // [B, embed_dim, H/f, W/f]
  }
  torch::Tensor decode_quantized(const torch::Tensor& z_q) {
    return decoder_->forward(post_quant_conv_->forward(z_q));
  }

  nn::AutoencoderNetConfig config_;
  bool quantize_latent_;
  double codebook_weight_ = 1.0;
  std::shared_ptr<torch::nn::Module> root_;
  nn::Encoder encoder_{nullptr};
  nn::Decoder decoder_{nullptr};
  nn::VectorQuantizer quantize_{nullptr};
  torch::nn::Conv2d quant_conv_{nullptr}, post_quant_conv_{nullptr};
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
