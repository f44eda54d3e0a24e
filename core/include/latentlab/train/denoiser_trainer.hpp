#pragma once
// Stage 2: trains the denoiser eps_theta on z_0 (images, or rescaled latents z = E(x) of an autoencoder) with
// a weighted eps loss (Eq. 2 and reweightings), AdamW, EMA, gradient clipping and accumulation; logs the
// yardsticks (loss_simple and the ELBO of held-out latents); checkpoints atomically and resumes exactly.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include <torch/torch.h>

#include "latentlab/conditioning/conditioner_set.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/export.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/nn/unet.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/train/denoiser_config.hpp"
#include "latentlab/train/metric_sink.hpp"
#include "latentlab/train/train_outcome.hpp"
#include "latentlab/weighting.hpp"

namespace latentlab {

// The plugins a run uses, already constructed by the host.
struct DenoiserTrainerParts {
  std::shared_ptr<Dataset> train_data;
  std::shared_ptr<Dataset> held_out;
  std::shared_ptr<Schedule> schedule;
  std::shared_ptr<LossWeighting> weighting;
  // Stage 2 on latents: the autoencoder of config.autoencoder (null: pixel space). The trainer moves it
  // to the run's device.
  std::shared_ptr<LatentCodec> codec;
  // The conditioners of config.conditioners, set up for the data (null: unconditional, or class labels
  // through unet.num_classes). The trainer moves them to the run's device and trains them with the UNet
  // unless frozen; they are saved in the checkpoint and in denoiser.pt.
  std::shared_ptr<ConditionerSet> conditioners;
};

// Sets the UNet's context_dim (and so its cross-attention) from the token conditioner and, when the
// config leaves the UNet's channels to the stage, adds the map conditioner's channels to in_channels;
// in the config and its resolved record. Throws ConfigError when the UNet given contradicts them.
LATENTLAB_API void derive_conditioned_unet(DenoiserTrainConfig& config, const ConditionerSet& conditioners);

// The first stage's deterministic encoder as stage 2 sees it, x -> rescaled mode of E(x), without
// gradients (LatentCodec::encode_mode); the identity when `codec` is null (pixel space). What
// conditioners that encode images get (ConditionerSetup::encode): it draws nothing, so training resumes
// exactly and the EMA's conditioners see the same latents.
LATENTLAB_API std::function<torch::Tensor(const torch::Tensor&)> latent_encoder(
    std::shared_ptr<LatentCodec> codec);

class LATENTLAB_API DenoiserTrainer {
 public:
  // Checks that data, UNet and config fit together (ConfigError otherwise); allocates the model.
  DenoiserTrainer(DenoiserTrainConfig config, DenoiserTrainerParts parts, MetricSink& sink);
  ~DenoiserTrainer();

  // <output>/checkpoint.pt
  std::filesystem::path checkpoint_path() const;
  // Restores everything from the checkpoint; returns its step. Throws Error when it is missing,
  // unreadable, or was written by a run with a different configuration (steps may differ).
  std::int64_t resume();

  // Trains up to `steps`. When `stop` becomes true, finishes the current step, writes a checkpoint and
  // returns with interrupted = true. Throws DivergenceError on a non-finite loss (the last checkpoint
  // is left untouched).
  TrainOutcome run(const std::atomic<bool>& stop);

  nn::UNet model() const;
  nn::UNet ema_model() const;  // the model itself when ema_decay is 0
  // The conditioners being trained and their EMA (the same object when ema_decay is 0); null without.
  ConditionerSet* conditioners() const;
  ConditionerSet* ema_conditioners() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace latentlab
