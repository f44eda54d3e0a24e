#include "latentlab/stages/autoencoder_stage.hpp"

#include "latentlab/autoencoder.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/train/autoencoder_trainer.hpp"
#include "run_trainer.hpp"

namespace latentlab::stages {

AutoencoderStage::AutoencoderStage(AutoencoderTrainConfig config, const registry::Registry& registry)
    : config_(std::move(config)), registry_(registry) {
  auto& c = config_;
  c.data.params = registry.resolved_params(Dataset::kKind, c.data.name, c.data.params, "data.params");
  registry.resolved_params(Dataset::kKind, c.data.name, c.held_out_params(), "eval.data_params");
  // The image channels and the side attn_resolutions count from default to the data's (the dataset
  // plugin's parameters say them; a dataset without them is built to find out).
  auto& ae_params = c.autoencoder.params;
  const auto& schema = registry.find(Autoencoder::kKind, c.autoencoder.name).info.schema;
  const bool need_channels = !ae_params.contains("in_channels") && schema.find("in_channels");
  const bool need_resolution = !ae_params.contains("resolution") && schema.find("resolution");
  if (need_channels || need_resolution) {
    std::int64_t channels = 0, resolution = 0;
    if (c.data.params.contains("channels") && c.data.params.contains("resolution") &&
        c.data.params["channels"].is_number_integer() && c.data.params["resolution"].is_number_integer()) {
      channels = c.data.params["channels"].get<std::int64_t>();
      resolution = c.data.params["resolution"].get<std::int64_t>();
    } else {
      const auto data = registry.create<Dataset>(c.data.name, c.data.params, "data.params");
      channels = data->channels();
      resolution = data->resolution();
    }
    if (need_channels) ae_params["in_channels"] = channels;
    if (need_resolution) ae_params["resolution"] = resolution;
  }
  ae_params =
      registry.resolved_params(Autoencoder::kKind, c.autoencoder.name, ae_params, "autoencoder.params");
  c.snr_schedule.params = registry.resolved_params(Schedule::kKind, c.snr_schedule.name,
                                                   c.snr_schedule.params, "latents.snr_schedule.params");
  c.resolved["autoencoder"]["params"] = ae_params;
  c.resolved["data"]["params"] = c.data.params;
}

nlohmann::json AutoencoderStage::config() const {
  // The latent statistics measured at the end do not change the weights; in a sweep the latent stage
  // measures them, so autoencoders that differ only there are one training.
  return without_run_settings(config_.resolved, {"latents"});
}

nlohmann::json AutoencoderStage::plugins() const {
  return {plugin_record(registry_, Dataset::kKind, config_.data.name),
          plugin_record(registry_, Autoencoder::kKind, config_.autoencoder.name)};
}

StageOutcome AutoencoderStage::run(const StageContext& context, const std::filesystem::path& dir,
                                   bool resume) const {
  auto config = config_;
  AutoencoderTrainerParts parts;
  parts.train_data = registry_.create<Dataset>(config.data.name, config.data.params, "data.params");
  parts.held_out = registry_.create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
  parts.make_autoencoder = [this, &config] {
    return registry_
        .create<Autoencoder>(config.autoencoder.name, config.autoencoder.params, "autoencoder.params")
        .object;
  };
  parts.snr_schedule = registry_.create<Schedule>(config.snr_schedule.name, config.snr_schedule.params,
                                                  "latents.snr_schedule.params");
  return detail::run_trainer<AutoencoderTrainer>(config, parts, context, dir, resume);
}

}  // namespace latentlab::stages
