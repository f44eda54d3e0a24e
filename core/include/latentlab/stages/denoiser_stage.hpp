#pragma once
// The denoiser stage (stage 2): trains the UNet eps_theta on images or on an autoencoder's rescaled
// latents (docs/training.md). Writes denoiser.pt (EMA weights), checkpoint.pt, train.csv, eval.csv,
// config.json and, on latents, its own copy of the autoencoder (autoencoder.pt). `latentlab
// train-denoiser` and the sweep engine run it.
#include <cstddef>
#include <filesystem>
#include <string>

#include "latentlab/conditioning/conditioner_set.hpp"

#include "latentlab/stages/stage.hpp"
#include "latentlab/train/denoiser_config.hpp"

namespace latentlab::stages {

class DenoiserStage : public Stage {
 public:
  // Validates the dataset, schedule and weighting parameters (errors name their JSON paths) and fills
  // them, resolved, into the config's record. Nothing is loaded yet.
  DenoiserStage(DenoiserTrainConfig config, const registry::Registry& registry);

  const char* kind() const override { return "denoiser"; }
  // The resolved config without what does not change the weights: the output folder, the device, the
  // autoencoder's path (the engine keys it as an input), and logging/checkpoint intervals.
  nlohmann::json config() const override;
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return config_.seed; }
  const DenoiserTrainConfig& settings() const { return config_; }

  // Trains into `dir`: a new run, or with `resume` the run whose checkpoint.pt is there (it keeps the
  // autoencoder copy it started with). Builds the datasets and the latent codec, derives the UNet's
  // channels when the config leaves them out, checks that data, autoencoder and UNet fit (ConfigError
  // before any training), writes config.json, and trains until done or context.stop.
  StageOutcome run(const StageContext& context, const std::filesystem::path& dir, bool resume) const;

 private:
  DenoiserTrainConfig config_;
  const registry::Registry& registry_;
};

// "conditioner" for one conditioner, "conditioner[i]" for one of a list: where its errors point.
std::string conditioner_path(std::size_t index, std::size_t count);
// Creates conditioners through the registry (the sample stage and `sample` rebuild a trained set).
ConditionerSet::Factory conditioner_factory(const registry::Registry& registry);

}  // namespace latentlab::stages
