#pragma once
// The stage-1 objective (Eq. 25), as the reference trains its first stages
// (taming/ldm LPIPSWithDiscriminator, VQLPIPSWithDiscriminator):
//   L = L_rec(x, D(E(x))) + L_reg + lambda * disc_factor * L_G,    L_D = disc_factor * L_hinge(D_psi)
// with L_rec = |x - x_hat|_1 + w_p * LPIPS(x, x_hat) (KL: divided by exp(logvar) plus logvar, a fixed
// scalar unless learn_logvar, and summed over pixels / B; VQ: averaged), L_G = -mean D_psi(x_hat), the hinge
// loss 1/2 (mean relu(1 - D(x)) + mean relu(1 + D(x_hat))), and the adaptive weight lambda = disc_weight *
// ||grad_last L_rec|| / (||grad_last L_G|| + 1e-4), clamped to [0, 1e4], where `last` is the decoder's last
// layer. disc_factor is 0 for the first disc_start steps.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/autoencoder.hpp"
#include "latentlab/export.hpp"
#include "latentlab/nn/discriminator.hpp"
#include "latentlab/nn/lpips.hpp"

namespace latentlab {

struct LATENTLAB_API Stage1LossConfig {
  std::string perceptual = "none";  // "lpips", "vgg" (LPIPS without lin layers) or "none"
  double perceptual_weight = 1.0;
  std::vector<std::string> perceptual_weights;  // PyTorch files with the VGG16 (+ lin) weights
  std::int64_t disc_start = 50001;              // first step with the GAN terms
  double disc_weight = 0.5;                     // multiplies the adaptive weight
  double disc_factor = 1.0;
  std::int64_t disc_layers = 3;
  std::int64_t disc_channels = 64;
  std::string disc_loss = "hinge";    // "hinge" or "vanilla" (softplus)
  std::string reduction = "auto";     // "sum" (over pixels, / B), "mean", or "auto": sum for KL
  std::string learn_logvar = "auto";  // "on", "off", or "auto": on for KL
  double logvar_init = 0.0;

  // Parses the config file's "loss" section; throws ConfigError naming loss.KEY.
  static Stage1LossConfig from_json(const nlohmann::json& json);
  nlohmann::json to_json() const;
};

// Adaptive weight of Eq. 25 from the two losses' gradients at the decoder's last layer.
LATENTLAB_API torch::Tensor adaptive_gan_weight(const torch::Tensor& rec_loss, const torch::Tensor& gan_loss,
                                                const torch::Tensor& last_layer, double disc_weight);
// 1/2 (mean relu(1 - real) + mean relu(1 + fake))
LATENTLAB_API torch::Tensor hinge_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake);
// 1/2 (mean softplus(-real) + mean softplus(fake))
LATENTLAB_API torch::Tensor vanilla_d_loss(const torch::Tensor& logits_real,
                                           const torch::Tensor& logits_fake);

struct Stage1Terms {
  torch::Tensor loss;                                       // scalar to minimise
  std::vector<std::pair<std::string, torch::Tensor>> logs;  // detached scalars
};

// The loss module (`loss.*` in the reference state dicts): discriminator, perceptual network, logvar.
class LATENTLAB_API Stage1LossImpl : public torch::nn::Module {
 public:
  // regularizer: the autoencoder's ("kl", "vq", "none"), which resolves "auto"; image_channels: C.
  Stage1LossImpl(const Stage1LossConfig& config, const std::string& regularizer, std::int64_t image_channels);

  // The autoencoder's loss at `step` (1-based). x: [B, C, H, W]; out: the autoencoder's training pass.
  Stage1Terms generator_loss(const torch::Tensor& x, const AutoencoderOutput& out, std::int64_t step,
                             const torch::Tensor& last_layer);
  // The discriminator's loss at `step`; x_hat is detached here.
  Stage1Terms discriminator_loss(const torch::Tensor& x, const torch::Tensor& x_hat, std::int64_t step);

  // `step` counts from 1; the reference's 0-based global_step = step - 1 must be >= disc_start.
  bool gan_active(std::int64_t step) const { return step > config_.disc_start && config_.disc_factor > 0; }
  nn::PatchDiscriminator discriminator() const { return discriminator_; }
  // Parameters the autoencoder's optimiser also trains (the learned logvar, when on).
  std::vector<torch::Tensor> generator_parameters() const;
  const Stage1LossConfig& config() const { return config_; }
  // to(device) for the module and the (unregistered) perceptual network.
  void move_to(torch::Device device);

 private:
  Stage1LossConfig config_;
  bool sum_reduction_ = false;
  nn::PatchDiscriminator discriminator_{nullptr};
  nn::Lpips perceptual_{nullptr};
  torch::Tensor logvar_;
};
TORCH_MODULE(Stage1Loss);

}  // namespace latentlab
