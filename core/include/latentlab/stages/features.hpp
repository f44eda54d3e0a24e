#pragma once
// What the eval stage, `latentlab fid` and `latentlab reconstruct --rfid` share: the feature
// extractor settings, building the extractor (training and caching the `classifier` when needed),
// opening image sets by name, and their features through the cache (docs/metrics.md).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/eval/feature_pass.hpp"
#include "latentlab/feature_extractor.hpp"
#include "latentlab/registry/registry.hpp"

namespace latentlab::stages {

struct FeatureSettings {
  std::string name;        // empty: inception-v3-fid when weights are given, else classifier
  std::string weights;     // Inception (or classifier) weights file
  std::string preprocess;  // inception-v3-fid: torch-fidelity or pytorch-fid
  nlohmann::json params = nlohmann::json::object();  // more extractor parameters
  std::string cache;                                 // empty: eval::default_cache_dir()
  bool use_cache = true;  // read and write cached features (a trained classifier is cached anyway)
  std::int64_t batch = 50;

  // Keys: name, weights, preprocess, params, cache, use_cache, batch. Throws ConfigError naming `path`.
  static FeatureSettings from_json(const nlohmann::json& json, const std::string& path);
  nlohmann::json to_json() const;
  // The extractor's name after the defaults.
  std::string extractor_name() const;
  std::filesystem::path cache_dir() const;
};

struct FeatureExtractorChoice {
  std::shared_ptr<FeatureExtractor> extractor;
  std::string name;
  nlohmann::json params;  // resolved, the trained classifier's file filled in
};

// The extractor's parameters validated, without building it (ConfigError naming `path`).
nlohmann::json resolve_feature_params(const registry::Registry& registry, const FeatureSettings& settings,
                                      const std::string& path);

// Builds the extractor on `device`. For `classifier` without weights, trains it on its dataset (or
// finds it in the cache) first.
FeatureExtractorChoice make_feature_extractor(const registry::Registry& registry, const FeatureSettings& settings,
                                              torch::Device device, const std::string& path = "--feature-set");

// An image set named by a string: a folder of images (or a sample output folder, whose samples.npy is
// read), a .npy array, or a dataset plugin with an optional split, "fashion-mnist:test".
std::unique_ptr<eval::ImageSource> open_image_set(const registry::Registry& registry, const std::string& spec);

// Features of `images`, through the cache unless settings.use_cache is false.
eval::FeatureSet features_of(const eval::ImageSource& images, FeatureExtractor& extractor,
                             const FeatureSettings& settings, const eval::FeaturePassOptions& pass);

}  // namespace latentlab::stages
