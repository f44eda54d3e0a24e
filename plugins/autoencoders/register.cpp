// Built-in autoencoders: `kl`, `vq` and `identity` (f = 1, pixel space).
#include <memory>

#include "kl.hpp"
#include "latentlab/plugin.hpp"
#include "vq.hpp"

namespace latentlab::autoencoders {

namespace {

// f = 1: z = x, so pixel-space diffusion is one point of an f sweep. Nothing to train.
class IdentityAutoencoder : public Autoencoder {
 public:
  explicit IdentityAutoencoder(const Params& params) : channels_(params.get_int("in_channels")) {}
  std::int64_t downsampling_factor() const override { return 1; }
  std::int64_t latent_channels() const override { return channels_; }
  std::int64_t image_channels() const override { return channels_; }
  std::string regularizer() const override { return "none"; }
  torch::Tensor encode(const torch::Tensor& x, at::Generator&) override { return x; }
  torch::Tensor decode(const torch::Tensor& z) override { return z; }
  torch::Tensor reconstruct(const torch::Tensor& x) override { return x; }
  AutoencoderOutput forward(const torch::Tensor& x, at::Generator&) override {
    return {x, torch::zeros({}, x.options()), {}};
  }
  torch::nn::Module& module() override { return module_; }
  torch::Tensor last_layer() override { return {}; }

 private:
  std::int64_t channels_;
  torch::nn::Module module_;
};

void register_factories(Registrar& registrar) {
  registrar.add<Autoencoder>(
      "kl",
      "KL-regularised autoencoder (the reference AutoencoderKL): diagonal Gaussian posterior; "
      "downsampling factor f in {1, 2, 4, 8, 16, 32}: set f for the reference ch_mult of that f, or "
      "ch_mult for f = 2^(len(ch_mult) - 1) (neither: f = 8)",
      kl_schema(), make_kl);
  registrar.add<Autoencoder>(
      "vq",
      "VQ-regularised autoencoder (the reference VQModel): vector quantiser with straight-through "
      "gradients, optional EMA codebook and dead-code restarts; f and ch_mult as for `kl`",
      vq_schema(), make_vq);
  registrar.add<Autoencoder>(
      "identity", "f = 1 pixel space: z = x (pixel-space diffusion as one point of an f sweep)",
      ParamSchema().integer("in_channels", 3, "image channels (set from the data when not given)",
                            Range::closed(1, 4)),
      [](const Params& params) { return std::make_unique<IdentityAutoencoder>(params); });
}

}  // namespace

}  // namespace latentlab::autoencoders

LATENTLAB_PLUGIN("latentlab-autoencoders", LATENTLAB_VERSION_STRING,
                 latentlab::autoencoders::register_factories)
