#pragma once
// The feature-extractor options `latentlab fid` and `latentlab reconstruct --rfid` share, turned into
// the stages' FeatureSettings (latentlab/stages/features.hpp).
#include <memory>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "latentlab/stages/features.hpp"

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

  // What the stages take (the --feature-set pairs merged into the parameters).
  stages::FeatureSettings settings() const;
};
// The feature options; `pass_options` adds --no-cache and --feature-batch (for `fid`'s streamed passes).
void add_feature_options(boost::program_options::options_description& options, FeatureOptions& o,
                         bool pass_options = true);
// The names of the options add_feature_options(..., false) adds.
const std::vector<std::string>& feature_option_names();

}  // namespace latentlab::host
