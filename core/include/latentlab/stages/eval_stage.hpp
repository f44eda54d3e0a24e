#pragma once
// The eval stage: FID, KID, the Inception Score and precision/recall of generated images against a
// reference set, on Inception v3 or LatentLab's own classifier features (docs/metrics.md). Writes
// metrics.json. `latentlab fid` and the sweep engine's eval entries run it.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/stages/features.hpp"
#include "latentlab/stages/stage.hpp"

namespace latentlab::stages {

struct EvalConfig {
  std::vector<std::string> metrics = {"fid", "kid", "is", "pr"};
  std::string reference;   // an image set (open_image_set): "fashion-mnist:test", a folder, a .npy
  std::int64_t count = 0;  // the first N images of each set; 0: all
  FeatureSettings features;
  std::int64_t kid_subsets = 100, kid_subset_size = 1000, is_splits = 10, pr_k = 3;
  std::string trace_sqrt = "symmetric";  // FID's tr sqrt(S1 S2): symmetric or eigenvalues

  // Keys: metrics (list or "fid,kid"), reference, count, features {...}, kid_subsets,
  // kid_subset_size, is_splits, pr_k, trace_sqrt. Throws ConfigError naming `path`.KEY.
  static EvalConfig from_json(const nlohmann::json& json, const std::string& path);
  nlohmann::json to_json() const;
  bool wants(const std::string& metric) const;
};

// "fid,kid" -> {"fid", "kid"}; ConfigError naming `option` for unknown names, with the closest one.
std::vector<std::string> parse_metric_list(const std::string& text, const std::string& option);

class EvalStage : public Stage {
 public:
  // Validates the feature extractor's parameters. Errors name `path`.KEY, or the flags of `latentlab
  // fid` (--is-splits, --feature-set) when `path` is empty.
  EvalStage(EvalConfig config, const registry::Registry& registry, const std::string& path = "eval");

  const char* kind() const override { return "eval"; }
  nlohmann::json config() const override;
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return 0; }  // KID and IS draw with torch-fidelity's fixed seeds
  const EvalConfig& settings() const { return config_; }

  // Compares the image set `samples` (a sample stage's folder, ...) with the reference. Everything
  // the inputs can get wrong (missing sets, too few images for the splits or k) fails before any
  // features are computed. Returns the report: the metrics (null where not finite), the sample counts
  // n_a and n_b, the feature extractor and its fingerprint, the sets' provenance and warnings; and
  // writes it to `out`/metrics.json unless `out` is empty.
  nlohmann::json run(const StageContext& context, const std::string& samples,
                     const std::filesystem::path& out) const;

 private:
  std::string where(const std::string& key) const;
  std::string features_path() const;

  EvalConfig config_;
  const registry::Registry& registry_;
  std::string path_;
  nlohmann::json feature_params_;  // resolved
};

}  // namespace latentlab::stages
