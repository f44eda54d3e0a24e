#pragma once
// What `latentlab fid` and `latentlab reconstruct --rfid` share: choosing and building a feature
// extractor (training and caching the `classifier` when needed), opening image sets by name, and
// their features through the cache.
#include <memory>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "latentlab/eval/feature_pass.hpp"
#include "latentlab/feature_extractor.hpp"
#include "latentlab/registry/registry.hpp"

namespace latentlab::host {

struct FeatureOptions {
  std::string features;    // empty: inception-v3-fid when --weights is given, else classifier
  std::string weights;     // Inception (or classifier) weights file
  std::string preprocess;  // inception-v3-fid: torch-fidelity or pytorch-fid
  std::string params;      // JSON object of extractor parameters
  std::vector<std::string> sets;
  std::string cache;  // empty: eval::default_cache_dir()
  bool no_cache = false;
  std::int64_t batch = 50;
};
// The feature options; `pass_options` adds --no-cache and --feature-batch (for `fid`'s streamed passes).
void add_feature_options(boost::program_options::options_description& options, FeatureOptions& o,
                         bool pass_options = true);
// The names of the options add_feature_options(..., false) adds.
const std::vector<std::string>& feature_option_names();

struct FeatureExtractorChoice {
  std::shared_ptr<FeatureExtractor> extractor;
  std::string name;
  nlohmann::json params;  // resolved, the trained classifier's file filled in
};
// Builds the extractor on `device`. For `classifier` without weights, trains it on its dataset (or
// finds it in the cache) first.
FeatureExtractorChoice make_feature_extractor(const registry::Registry& registry, const FeatureOptions& o,
                                              torch::Device device);

// An image set named on the command line: a folder of images (or a `latentlab sample` output folder,
// whose samples.npy is read), a .npy array, or a dataset plugin with an optional split,
// "fashion-mnist:test".
std::unique_ptr<eval::ImageSource> open_image_set(const registry::Registry& registry,
                                                  const std::string& spec);

// The cache folder of `o`.
std::filesystem::path feature_cache_dir(const FeatureOptions& o);

// Features of `images`, through the cache unless --no-cache.
eval::FeatureSet features_of(const eval::ImageSource& images, FeatureExtractor& extractor,
                             const FeatureOptions& o, const eval::FeaturePassOptions& pass);

}  // namespace latentlab::host
