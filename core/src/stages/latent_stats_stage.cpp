#include "latentlab/stages/latent_stats_stage.hpp"

#include "../train/config_json.hpp"
#include "latentlab/error.hpp"
#include "latentlab/latent/latent_stats.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::stages {

namespace {

std::vector<std::string> modes() {
  auto out = rescaling_modes();
  out.push_back("keep");
  return out;
}

const ParamSchema& latent_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("samples", 2048, "training images the statistics are measured on", Range::at_least(1))
          .integer("batch_size", 64, "images per encoder batch", Range::at_least(1))
          .choice(
              "rescale", "std", modes(),
              "none, std (one factor, the paper's scale_factor), channel (per-channel shift and scale), or "
              "keep (the autoencoder file's own: an imported checkpoint's scale_factor)");
  return schema;
}

}  // namespace

LatentStatsConfig LatentStatsConfig::from_json(const nlohmann::json& input, const std::string& path) {
  if (!input.is_object()) throw ConfigError(path + ": expected a JSON object, got " + input.dump());
  auto rest = input;
  LatentStatsConfig c;
  if (rest.contains("snr_schedule")) {
    try {
      c.snr_schedule = detail::plugin_choice(nlohmann::json{{"snr_schedule", rest.at("snr_schedule")}},
                                             "snr_schedule", "name", "linear");
    } catch (const ConfigError& e) {
      rethrow_prefixed(e, path + ".");
    }
    rest.erase("snr_schedule");
  }
  const auto values = latent_schema().validate(rest, path, "the latent statistics");
  c.samples = values.get_int("samples");
  c.batch_size = values.get_int("batch_size");
  c.rescale = values.get_string("rescale");
  return c;
}

nlohmann::json LatentStatsConfig::to_json() const {
  return {{"data", data.to_json()},
          {"samples", samples},
          {"batch_size", batch_size},
          {"rescale", rescale},
          {"snr_schedule", snr_schedule.to_json()},
          {"seed", seed}};
}

LatentStatsStage::LatentStatsStage(LatentStatsConfig config, const registry::Registry& registry,
                                   const std::string& path)
    : config_(std::move(config)), registry_(registry), path_(path) {
  config_.data.params =
      registry.resolved_params(Dataset::kKind, config_.data.name, config_.data.params, path + ".data.params");
  config_.snr_schedule.params = registry.resolved_params(
      Schedule::kKind, config_.snr_schedule.name, config_.snr_schedule.params, path + ".snr_schedule.params");
}

nlohmann::json LatentStatsStage::plugins() const {
  return {plugin_record(registry_, Dataset::kKind, config_.data.name),
          plugin_record(registry_, Schedule::kKind, config_.snr_schedule.name)};
}

nlohmann::json LatentStatsStage::run(const StageContext& context, const std::filesystem::path& autoencoder,
                                     const std::filesystem::path& dir) const {
  const auto data = registry_.create<Dataset>(config_.data.name, config_.data.params, path_ + ".data.params");
  const auto schedule = registry_.create<Schedule>(config_.snr_schedule.name, config_.snr_schedule.params,
                                                   path_ + ".snr_schedule.params");
  auto loaded = read_autoencoder_file(
      autoencoder,
      [this](const std::string& name, const nlohmann::json& params) {
        return registry_.create<Autoencoder>(name, params, "autoencoder.params").object;
      },
      context.device);
  if (loaded.autoencoder->image_channels() != data->channels())
    throw ConfigError("latent statistics: the autoencoder takes " +
                      std::to_string(loaded.autoencoder->image_channels()) +
                      "-channel images, the data has " + std::to_string(data->channels()));
  const auto f = loaded.autoencoder->downsampling_factor();
  if (data->resolution() % f)
    throw ConfigError("latent statistics: the autoencoder's f = " + std::to_string(f) +
                      " needs an image side divisible by it, the data is " +
                      std::to_string(data->resolution()));
  LatentMeasurement settings;
  settings.samples = config_.samples;
  settings.batch_size = config_.batch_size;
  settings.rescale = config_.rescale;
  settings.snr_schedule = config_.snr_schedule.name;
  settings.seed = config_.seed;
  return measure_latents(*loaded.autoencoder, loaded.info, *data, *schedule, settings, context.device, dir);
}

}  // namespace latentlab::stages
