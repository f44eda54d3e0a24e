#pragma once
// The autoencoder stage (stage 1): trains a KL- or VQ-regularised autoencoder with the objective of
// Eq. 25, then measures its latents and stores the rescaling stage 2 applies (docs/autoencoders.md).
// Writes autoencoder.pt, latent_stats.json, checkpoint.pt, train.csv, eval.csv and config.json.
// `latentlab train-autoencoder` and the sweep engine run it.
#include <filesystem>

#include "latentlab/stages/stage.hpp"
#include "latentlab/train/autoencoder_config.hpp"

namespace latentlab::stages {

class AutoencoderStage : public Stage {
 public:
  // Validates the dataset, autoencoder and SNR schedule parameters (errors name their JSON paths). The
  // autoencoder's in_channels and resolution default to the dataset's (from its resolved parameters).
  AutoencoderStage(AutoencoderTrainConfig config, const registry::Registry& registry);

  const char* kind() const override { return "autoencoder"; }
  // The resolved config without the output folder, the device, logging/checkpoint intervals and the
  // latent statistics of the end ("latents": the latent stage's business in a sweep).
  nlohmann::json config() const override;
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return config_.seed; }
  const AutoencoderTrainConfig& settings() const { return config_; }

  // Trains into `dir` (with `resume`: continues the checkpoint there); checks data and autoencoder
  // fit before any training; writes config.json.
  StageOutcome run(const StageContext& context, const std::filesystem::path& dir, bool resume) const;

 private:
  AutoencoderTrainConfig config_;
  const registry::Registry& registry_;
};

}  // namespace latentlab::stages
