#include "latentlab/stages/denoiser_stage.hpp"

#include "latentlab/dataset.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/train/denoiser_trainer.hpp"
#include "latentlab/weighting.hpp"
#include "run_trainer.hpp"

namespace latentlab::stages {

DenoiserStage::DenoiserStage(DenoiserTrainConfig config, const registry::Registry& registry)
    : config_(std::move(config)), registry_(registry) {
  auto& c = config_;
  c.data.params = registry.resolved_params(Dataset::kKind, c.data.name, c.data.params, "data.params");
  registry.resolved_params(Dataset::kKind, c.data.name, c.held_out_params(), "eval.data_params");
  c.schedule.params =
      registry.resolved_params(Schedule::kKind, c.schedule.name, c.schedule.params, "schedule.params");
  c.weighting.params = registry.resolved_params(LossWeighting::kKind, c.weighting.name, c.weighting.params,
                                                "weighting.params");
  c.resolved["data"]["params"] = c.data.params;
  c.resolved["schedule"]["params"] = c.schedule.params;
  c.resolved["weighting"]["params"] = c.weighting.params;
}

nlohmann::json DenoiserStage::config() const {
  return without_run_settings(config_.resolved, {"autoencoder"});  // the autoencoder is an input
}

nlohmann::json DenoiserStage::plugins() const {
  return {plugin_record(registry_, Dataset::kKind, config_.data.name),
          plugin_record(registry_, Schedule::kKind, config_.schedule.name),
          plugin_record(registry_, LossWeighting::kKind, config_.weighting.name)};
}

StageOutcome DenoiserStage::run(const StageContext& context, const std::filesystem::path& dir,
                                bool resume) const {
  auto config = config_;
  DenoiserTrainerParts parts;
  parts.train_data = registry_.create<Dataset>(config.data.name, config.data.params, "data.params");
  parts.held_out = registry_.create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
  parts.schedule =
      registry_.create<Schedule>(config.schedule.name, config.schedule.params, "schedule.params");
  parts.weighting =
      registry_.create<LossWeighting>(config.weighting.name, config.weighting.params, "weighting.params");
  if (!config.autoencoder.empty()) {  // on the CPU here; the trainer moves it to the run's device
    // A resumed run uses the copy in its folder: the latents it started with.
    const auto copy = dir / "autoencoder.pt";
    const bool own = resume && std::filesystem::exists(copy);
    parts.codec = LatentCodec::load(
        own ? copy : std::filesystem::path(config.autoencoder),
        [this](const std::string& name, const nlohmann::json& params) {
          return registry_.create<Autoencoder>(name, params, "autoencoder.params").object;
        },
        torch::kCPU);
  }
  if (config.derive_unet_channels) {
    const auto channels = parts.codec ? parts.codec->latent_channels() : parts.train_data->channels();
    config.unet.in_channels = config.unet.out_channels = channels;
    config.resolved["unet"]["in_channels"] = config.resolved["unet"]["out_channels"] = channels;
  }
  return detail::run_trainer<DenoiserTrainer>(config, parts, context, dir, resume);
}

}  // namespace latentlab::stages
