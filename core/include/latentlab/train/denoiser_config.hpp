#pragma once
// The typed configuration of a stage-2 (denoiser) training run, parsed once from JSON. Plugin
// parameters stay JSON here; the registry validates them against each plugin's schema.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "latentlab/conditioning/conditioner_set.hpp"
#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/export.hpp"
#include "latentlab/nn/unet_config.hpp"
#include "latentlab/plugin_choice.hpp"
#include "latentlab/precision.hpp"

namespace latentlab {

struct LATENTLAB_API DenoiserTrainConfig {
  std::string output;  // folder for the checkpoint, metrics and final weights
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
  // Stage 2 on latents: the autoencoder.pt (or run folder) whose rescaled latents the denoiser learns;
  // empty: pixel space. The trainer keeps a copy as <output>/autoencoder.pt.
  std::string autoencoder;
  PluginChoice schedule{"linear", nlohmann::json::object()};
  PluginChoice weighting{"unweighted", nlohmann::json::object()};
  Prediction prediction = Prediction::Eps;
  nn::UNetConfig unet;
  // unet.in_channels and out_channels were not given: the denoiser stage sets both to the channels of
  // what it learns (the autoencoder's latent channels, or the images'), so a spec never repeats them.
  bool derive_unet_channels = false;
  // "conditioner": one, or a list of two (a token and a map conditioner: hybrid), docs/conditioning.md.
  // The denoiser stage derives the UNet's context_dim and input channels from them.
  std::vector<ConditionerChoice> conditioners;

  // "train"
  std::int64_t steps = 1000;
  std::int64_t batch_size = 64;
  std::int64_t accumulate = 1;  // gradient accumulation: batches per optimiser step
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.999;
  double weight_decay = 0.01;     // torch.optim.AdamW's default, which LDM uses
  std::int64_t warmup_steps = 0;  // linear learning-rate warm-up
  double grad_clip = 0.0;         // max global gradient norm; 0: no clipping (LDM clips nothing)
  double ema_decay = 0.9999;      // 0: no EMA (evaluation uses the raw weights)
  std::int64_t log_every = 50;
  std::int64_t checkpoint_every = 500;
  double p_uncond = 0.0;  // condition dropout: the probability that an example trains unconditionally

  // "eval": the yardsticks on held-out data
  std::int64_t eval_every = 500;  // 0: only at the end
  std::int64_t eval_samples = 256;
  std::int64_t eval_strata = 4;  // t draws per sample for the ELBO's sum over t
  std::int64_t eval_batch_size = 128;
  nlohmann::json eval_data_params;  // data.params with these keys replaced (default {"split": "test"})

  // The input as given with every default filled in (written next to the results).
  nlohmann::json resolved;

  // Throws ConfigError naming the JSON path of the first problem.
  static DenoiserTrainConfig from_json(const nlohmann::json& json);
  // The held-out dataset's parameters: data.params overridden by eval.data_params.
  nlohmann::json held_out_params() const;
};

}  // namespace latentlab
