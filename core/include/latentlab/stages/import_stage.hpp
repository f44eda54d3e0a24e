#pragma once
// The import stage: stage 1 from a reference checkpoint instead of training (the LDM first stages
// kl-f4..f32 and vq-f4..f16, read without Python, docs/autoencoders.md). Writes an autoencoder.pt with
// the reference's latent scale factor as its rescaling. `latentlab import-weights` (autoencoders) and a
// sweep's {"autoencoder": {"import": FILE, "config": ARCH}} run it.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "latentlab/stages/stage.hpp"

namespace latentlab::stages {

struct ImportConfig {
  std::string checkpoint;  // a torch.save state dict or Lightning checkpoint
  // The architecture: LatentLab's {"name", "params"} or a reference config (YAML as JSON), inline; or
  // the path of a JSON file holding it.
  nlohmann::json architecture;
  std::string prefix = "auto";  // keys under this prefix (auto: first_stage_model. when present)
  double scale_factor = 0;      // > 0: overrides the checkpoint's and the config's
  bool allow_missing = false;   // write the file even when keys are missing

  // Keys: import (the checkpoint), config (the architecture, or its file), prefix, scale_factor,
  // allow_missing. Throws ConfigError naming `path`.KEY.
  static ImportConfig from_json(const nlohmann::json& json, const std::string& path);
};

class ImportStage : public Stage {
 public:
  // Reads the architecture and validates the autoencoder plugin's parameters; the checkpoint must
  // exist (its content is part of the key).
  ImportStage(ImportConfig config, const registry::Registry& registry,
              const std::string& path = "autoencoder");

  const char* kind() const override { return "autoencoder"; }
  nlohmann::json config() const override;
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return 0; }

  // Imports into the autoencoder file `file` (a sweep's: <dir>/autoencoder.pt); Error naming the
  // mis-shaped or missing keys when the checkpoint does not fit the architecture. Returns what was
  // imported (keys loaded, missing, unexpected, the rescaling), which a sweep keeps as import.json.
  nlohmann::json run(const StageContext& context, const std::filesystem::path& file) const;

 private:
  ImportConfig config_;
  const registry::Registry& registry_;
  std::string path_;
  std::string name_;       // the autoencoder plugin
  nlohmann::json params_;  // its resolved parameters
  double scale_factor_ = 0;
  std::string checkpoint_sha256_;
};

}  // namespace latentlab::stages
