#pragma once
// The typed configuration of a stage-1 (autoencoder) training run, parsed once from JSON.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "latentlab/export.hpp"
#include "latentlab/train/autoencoder_loss.hpp"
#include "latentlab/train/denoiser_config.hpp"

namespace latentlab {

struct LATENTLAB_API AutoencoderTrainConfig {
  std::string output;
  std::uint64_t seed = 0;
  std::string device = "auto";
  // Autocast precision of the networks (docs/precision.md); weights, optimiser state, EMA, the loss
  // reduction and the yardsticks stay float32.
  Precision precision = Precision::fp32;
  // Dynamic loss scaling (docs/precision.md#fp16-and-loss-scaling): its initial scale; 0 (the default):
  // 2^16 under fp16, none otherwise. Not a config key; set in code (the tests scale fp32 runs).
  double loss_scale = 0;

  PluginChoice data;  // a Dataset plugin
  bool hflip = false;
  PluginChoice autoencoder{"kl", nlohmann::json::object()};  // params validated by the registry
  Stage1LossConfig loss;

  // "train"
  std::int64_t steps = 1000;
  std::int64_t batch_size = 16;
  double lr = 1e-4;                 // the autoencoder's Adam
  double disc_lr = 0;               // the discriminator's; 0: lr
  double beta1 = 0.5, beta2 = 0.9;  // the reference's Adam betas for both
  double grad_clip = 0;
  std::int64_t log_every = 50;
  std::int64_t checkpoint_every = 500;

  // "eval": reconstruction metrics on held-out images
  std::int64_t eval_every = 500;  // 0: only at the end
  std::int64_t eval_samples = 256;
  std::int64_t eval_batch_size = 64;
  nlohmann::json eval_data_params;  // data.params with these keys replaced (default {"split": "test"})

  // "latents": statistics over training images at the end, and the rescaling stage 2 applies
  std::int64_t latent_samples = 2048;
  std::string rescale = "std";
  PluginChoice snr_schedule{"linear", nlohmann::json::object()};  // for the SNR_eff table

  nlohmann::json resolved;

  // Throws ConfigError naming the JSON path of the first problem.
  static AutoencoderTrainConfig from_json(const nlohmann::json& json);
  nlohmann::json held_out_params() const;
};

}  // namespace latentlab
