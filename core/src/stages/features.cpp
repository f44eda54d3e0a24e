#include "latentlab/stages/features.hpp"

#include <algorithm>
#include <filesystem>

#include "../train/config_json.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/classifier_training.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::stages {

namespace fs = std::filesystem;

namespace {

const ParamSchema& settings_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .string("name", "",
                  "feature extractor (empty: inception-v3-fid when weights are given, else classifier)")
          .string("weights", "", "Inception (or classifier) weights file")
          .string("preprocess", "", "inception-v3-fid: torch-fidelity (default) or pytorch-fid")
          .string("cache", "", "cache folder of trained classifiers and features (empty: the default)")
          .boolean("use_cache", true, "read and write cached features")
          .integer("batch", 50, "images per feature-extractor batch", Range::at_least(1));
  return schema;
}

}  // namespace

FeatureSettings FeatureSettings::from_json(const nlohmann::json& json, const std::string& path) {
  if (!json.is_object()) throw ConfigError(path + ": expected a JSON object, got " + json.dump());
  auto rest = json;
  FeatureSettings s;
  if (rest.contains("params")) {
    if (!rest.at("params").is_object())
      throw ConfigError(path + ".params: expected a JSON object of extractor parameters, got " +
                        rest.at("params").dump());
    s.params = rest.at("params");
    rest.erase("params");
  }
  const auto values = settings_schema().validate(rest, path, "the feature settings");
  s.name = values.get_string("name");
  s.weights = values.get_string("weights");
  s.preprocess = values.get_string("preprocess");
  s.cache = values.get_string("cache");
  s.use_cache = values.get_bool("use_cache");
  s.batch = values.get_int("batch");
  return s;
}

nlohmann::json FeatureSettings::to_json() const {
  return {{"name", name},     {"weights", weights}, {"preprocess", preprocess},
          {"params", params}, {"cache", cache},     {"use_cache", use_cache},
          {"batch", batch}};
}

std::string FeatureSettings::extractor_name() const {
  return !name.empty() ? name : (weights.empty() ? "classifier" : "inception-v3-fid");
}

fs::path FeatureSettings::cache_dir() const {
  return cache.empty() ? eval::default_cache_dir() : fs::path(cache);
}

nlohmann::json resolve_feature_params(const registry::Registry& registry, const FeatureSettings& o,
                                      const std::string& path) {
  const auto name = o.extractor_name();
  registry.find(FeatureExtractor::kKind, name);  // unknown names fail here, with suggestions
  auto params = o.params;
  if (!o.weights.empty()) params["weights"] = o.weights;
  if (!o.preprocess.empty()) {
    if (name != "inception-v3-fid")
      throw ConfigError("preprocess applies to inception-v3-fid, not to '" + name + "'");
    params["preprocess"] = o.preprocess;
  }
  return registry.resolved_params(FeatureExtractor::kKind, name, params, path);
}

FeatureExtractorChoice make_feature_extractor(const registry::Registry& registry, const FeatureSettings& o,
                                              torch::Device device, const std::string& path) {
  FeatureExtractorChoice choice;
  choice.name = o.extractor_name();
  auto params = resolve_feature_params(registry, o, path);
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
    const nlohmann::json description = {{"dataset", dataset}, {"train", train.params}, {"test", test.params}};
    params["weights"] =
        eval::cached_feature_classifier(o.cache_dir(), *train, *test, description, config, device).string();
  }
  auto extractor = registry.create<FeatureExtractor>(choice.name, params, path);
  choice.extractor = extractor.object;
  choice.extractor->to(device);
  choice.params = extractor.params;
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
  const auto& resolved = data.params;
  std::string description = "dataset " + name;
  if (resolved.contains("split")) description += ":" + resolved.at("split").get<std::string>();
  return eval::dataset_images(std::move(data.object), description);
}

eval::FeatureSet features_of(const eval::ImageSource& images, FeatureExtractor& extractor,
                             const FeatureSettings& o, const eval::FeaturePassOptions& pass) {
  if (!o.use_cache) return eval::extract_features(images, extractor, pass);
  return eval::cached_features(o.cache_dir(), images, extractor, pass);
}

}  // namespace latentlab::stages
