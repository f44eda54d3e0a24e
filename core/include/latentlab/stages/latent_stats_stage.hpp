#pragma once
// The latent-statistics stage (Sec. G, D.1): measures an autoencoder's latents over training images,
// chooses the rescaling stage 2 applies (none, std, channel) and tabulates the effective SNR before
// and after it. Writes autoencoder.pt (the weights with the rescaling) and latent_stats.json. A sweep
// over rescalings retrains nothing: each rescaling is its own small stage on the same autoencoder.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "latentlab/latent/latent_measurement.hpp"
#include "latentlab/plugin_choice.hpp"
#include "latentlab/stages/stage.hpp"

namespace latentlab::stages {

struct LatentStatsConfig {
  PluginChoice data;  // the training images (a Dataset plugin)
  std::int64_t samples = 2048;
  std::int64_t batch_size = 64;
  std::string rescale = "std";
  PluginChoice snr_schedule{"linear", nlohmann::json::object()};
  std::uint64_t seed = 0;

  // Keys: samples, batch_size, rescale, snr_schedule (name or {name, params}). `data` and `seed` come
  // from the trial. Throws ConfigError naming `path`.KEY.
  static LatentStatsConfig from_json(const nlohmann::json& json, const std::string& path);
  nlohmann::json to_json() const;
};

class LatentStatsStage : public Stage {
 public:
  LatentStatsStage(LatentStatsConfig config, const registry::Registry& registry,
                   const std::string& path = "latent");

  const char* kind() const override { return "latent_stats"; }
  nlohmann::json config() const override { return config_.to_json(); }
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return config_.seed; }

  // Reads the autoencoder file (or folder) `autoencoder`, measures its latents and writes `dir`.
  // Returns the report of latent_stats.json.
  nlohmann::json run(const StageContext& context, const std::filesystem::path& autoencoder,
                     const std::filesystem::path& dir) const;

 private:
  LatentStatsConfig config_;
  const registry::Registry& registry_;
  std::string path_;
};

}  // namespace latentlab::stages
