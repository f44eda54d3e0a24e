#include "feature_support.hpp"

#include "cli.hpp"

namespace latentlab::host {

const std::vector<std::string>& feature_option_names() {
  static const std::vector<std::string> names = {"features",    "weights",        "preprocess",
                                                 "feature-set", "feature-params", "cache"};
  return names;
}

void add_feature_options(boost::program_options::options_description& options, FeatureOptions& o,
                         bool pass_options) {
  namespace po = boost::program_options;
  // clang-format off
  options.add_options()
      ("features", po::value(&o.features), "feature extractor: classifier (default; trained offline and cached) or inception-v3-fid (default when --weights is given)")
      ("weights", po::value(&o.weights), "Inception weights (pt_inception-2015-12-05-6726825d.pth or weights-inception-2015-12-05-6726825d.pth); else $LATENTLAB_INCEPTION_WEIGHTS")
      ("preprocess", po::value(&o.preprocess), "Inception preprocessing: torch-fidelity (default) or pytorch-fid")
      ("feature-set", po::value(&o.sets)->composing(), "feature extractor parameter key=value; repeatable")
      ("feature-params", po::value(&o.params), "feature extractor parameters as a JSON object")
      ("cache", po::value(&o.cache), "cache folder for trained classifiers and features (default: $LATENTLAB_CACHE, else ~/.cache/latentlab)");
  if (pass_options)
    options.add_options()
      ("no-cache", po::bool_switch(&o.no_cache), "neither read nor write cached features (a trained classifier is still cached)")
      ("feature-batch", po::value(&o.batch)->default_value(o.batch), "images per feature-extractor batch");
  // clang-format on
}

stages::FeatureSettings FeatureOptions::settings() const {
  stages::FeatureSettings s;
  s.name = features;
  s.weights = weights;
  s.preprocess = preprocess;
  s.params = parse_parameter_overrides(params, sets);
  s.cache = cache;
  s.use_cache = !no_cache;
  s.batch = batch;
  return s;
}

}  // namespace latentlab::host
