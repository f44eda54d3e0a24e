#include "feature_support.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "cli.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/classifier_training.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::host {

namespace fs = std::filesystem;

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

fs::path feature_cache_dir(const FeatureOptions& o) {
  return o.cache.empty() ? eval::default_cache_dir() : fs::path(o.cache);
}

FeatureExtractorChoice make_feature_extractor(const registry::Registry& registry, const FeatureOptions& o,
                                              torch::Device device) {
  FeatureExtractorChoice choice;
  choice.name = !o.features.empty() ? o.features : (o.weights.empty() ? "classifier" : "inception-v3-fid");
  registry.find(FeatureExtractor::kKind, choice.name);  // unknown names fail here, with suggestions
  auto params = parse_parameter_overrides(o.params, o.sets);
  if (!o.weights.empty()) params["weights"] = o.weights;
  if (!o.preprocess.empty()) {
    if (choice.name != "inception-v3-fid")
      throw ConfigError("--preprocess applies to inception-v3-fid, not to '" + choice.name + "'");
    params["preprocess"] = o.preprocess;
  }
  params = registry.resolved_params(FeatureExtractor::kKind, choice.name, params, "--feature-set");
  if (choice.name == "classifier" && params.at("weights").get<std::string>().empty()) {
    // LatentLab's own feature network: trained on the dataset's train split once, then cached.
    const auto dataset = params.at("dataset").get<std::string>();
    const auto& schema = registry.find(Dataset::kKind, dataset).info.schema;
    if (!schema.find("split"))
      throw ConfigError(
          "the classifier trains on a dataset's train split and reports its accuracy on the test "
          "split, and dataset '" +
          dataset +
          "' has no `split` parameter; use a dataset with "
          "splits (e.g. fashion-mnist) or pass a classifier file with --feature-set weights=FILE");
    const nlohmann::json train_params = {{"split", "train"}}, test_params = {{"split", "test"}};
    const auto train = registry.create<Dataset>(dataset, train_params, "classifier dataset");
    const auto test = registry.create<Dataset>(dataset, test_params, "classifier dataset");
    const auto config = eval::ClassifierTrainingConfig::from_json(params);
    const nlohmann::json description = {
        {"dataset", dataset},
        {"train", registry.resolved_params(Dataset::kKind, dataset, train_params, "classifier dataset")},
        {"test", registry.resolved_params(Dataset::kKind, dataset, test_params, "classifier dataset")}};
    params["weights"] =
        eval::cached_feature_classifier(feature_cache_dir(o), *train, *test, description, config, device)
            .string();
  }
  choice.extractor = registry.create<FeatureExtractor>(choice.name, params, "--features");
  choice.extractor->to(device);
  choice.params = params;
  return choice;
}

std::unique_ptr<eval::ImageSource> open_image_set(const registry::Registry& registry,
                                                  const std::string& spec) {
  const fs::path path(spec);
  if (fs::is_directory(path)) {
    // A `latentlab sample` output folder: its array rather than its PNG grid.
    if (fs::is_regular_file(path / "samples.npy")) return eval::array_images(path / "samples.npy");
    return eval::folder_images(path);
  }
  if (path.extension() == ".npy") {
    if (!fs::exists(path)) throw ConfigError("image array " + spec + " does not exist");
    return eval::array_images(path);
  }
  if (spec.find('/') != std::string::npos && !fs::exists(path))
    throw ConfigError("no file or folder " + spec +
                      " exists, so it is not an image folder, a `latentlab sample` "
                      "output folder or a .npy array; a dataset is named like fashion-mnist:test");
  const auto colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const auto datasets = registry.names(Dataset::kKind);
  if (std::find(datasets.begin(), datasets.end(), name) == datasets.end())
    throw ConfigError("'" + spec + "' is not an image folder, a .npy array or a dataset; datasets: " +
                      join(datasets) + " (write NAME:SPLIT, e.g. fashion-mnist:test)" +
                      (fs::exists(path) ? "" : "; no file or folder of that name exists either"));
  nlohmann::json params = nlohmann::json::object();
  const auto& schema = registry.find(Dataset::kKind, name).info.schema;
  if (colon != std::string::npos) {
    if (!schema.find("split"))
      throw ConfigError("dataset '" + name + "' has no splits; write just '" + name + "'");
    params["split"] = spec.substr(colon + 1);
  }
  auto data = registry.create<Dataset>(name, params, "dataset " + spec);
  const auto resolved = registry.resolved_params(Dataset::kKind, name, params, "dataset " + spec);
  std::string description = "dataset " + name;
  if (resolved.contains("split")) description += ":" + resolved.at("split").get<std::string>();
  return eval::dataset_images(std::move(data), description);
}

eval::FeatureSet features_of(const eval::ImageSource& images, FeatureExtractor& extractor,
                             const FeatureOptions& o, const eval::FeaturePassOptions& pass) {
  if (o.no_cache) return eval::extract_features(images, extractor, pass);
  return eval::cached_features(feature_cache_dir(o), images, extractor, pass);
}

}  // namespace latentlab::host
