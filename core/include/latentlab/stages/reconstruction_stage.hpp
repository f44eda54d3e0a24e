#pragma once
// The reconstruction stage: what a compression factor f costs (the paper's Tab. 8). Encodes and
// decodes held-out images with an autoencoder and measures PSNR, SSIM, L1, codebook usage and
// perplexity (VQ), the latent statistics and, when asked, PSIM (the mean LPIPS distance between each
// image and its reconstruction, from the LPIPS weights the user has) and rFID (FID of the
// reconstructions against their originals). Writes metrics.json, reconstructions.png (original |
// reconstruction pairs) and images/NNNNN.png. `latentlab reconstruct` and the sweep engine run it.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/nn/lpips.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/stages/features.hpp"
#include "latentlab/stages/stage.hpp"

namespace latentlab::stages {

struct ReconstructionConfig {
  // The images: a folder (the `image-folder` dataset) or a dataset plugin's name, with parameters. The
  // split defaults to test, channels and resolution to the autoencoder's.
  std::string input;
  nlohmann::json data_params = nlohmann::json::object();
  std::int64_t count = 256;  // images to reconstruct; 0: all
  std::int64_t images = 16;  // of those, how many to write as PNG files
  std::int64_t batch = 32;
  std::uint64_t seed = 0;               // KL posterior samples of the latent statistics
  std::optional<FeatureSettings> rfid;  // rFID on these features; none: no rFID
  // PSIM: LPIPS weights files (nn::Lpips::load's layouts); none: no PSIM.
  std::vector<std::string> lpips_weights;
  // Autocast precision of the autoencoder (docs/precision.md); rFID's and PSIM's networks stay float32.
  Precision precision = Precision::fp32;

  // Keys: input, data_params, count, images, batch, seed, rfid (true, or the feature settings),
  // lpips_weights (a file name or a list of them), precision (to_json leaves fp32 out).
  static ReconstructionConfig from_json(const nlohmann::json& json, const std::string& path);
  nlohmann::json to_json() const;
};

// LPIPS (PSIM's network) from the weights files `files`, in eval mode. Throws ConfigError naming
// `where` (a JSON path or a flag) when a file is missing or lacks the weights.
nn::Lpips load_lpips(const std::vector<std::string>& files, const std::string& where);

class ReconstructionStage : public Stage {
 public:
  // Validates the feature extractor's parameters (errors name `path`.rfid.params, or --feature-set)
  // and that the LPIPS weights files exist (`path`.lpips_weights, or --lpips-weights); run() loads
  // them before any image is encoded, and a sweep loads each list once before anything runs
  // (load_lpips), so a file without the weights is reported first too.
  ReconstructionStage(ReconstructionConfig config, const registry::Registry& registry,
                      const std::string& path = "reconstruction");

  const char* kind() const override { return "reconstruction"; }
  nlohmann::json config() const override;
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return config_.seed; }

  // Reconstructs with the autoencoder file (or folder) `autoencoder` into `out`; returns the report
  // written to metrics.json. The images are checked against the autoencoder (channels, a side
  // divisible by f) before any work.
  nlohmann::json run(const StageContext& context, const std::filesystem::path& autoencoder,
                     const std::filesystem::path& out) const;

 private:
  ReconstructionConfig config_;
  const registry::Registry& registry_;
  std::string path_;
  nlohmann::json feature_params_;  // resolved, when rFID is asked for
};

}  // namespace latentlab::stages
