#include "latentlab/stages/eval_stage.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/eval/image_metrics.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/json_number.hpp"
#include "latentlab/params.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::stages {

namespace {

using nlohmann::json;

const std::vector<std::string>& known_metrics() {
  static const std::vector<std::string> known = {"fid", "kid", "is", "pr"};
  return known;
}

const ParamSchema& eval_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .string("reference", std::nullopt, "the reference images: fashion-mnist:test, a folder or a .npy")
          .integer("count", 0, "the first N images of each set (0: all)", Range::at_least(0))
          .integer("kid_subsets", 100, "KID: number of subsets", Range::at_least(1))
          .integer("kid_subset_size", 1000, "KID: subset size (capped at the smaller set)",
                   Range::at_least(2))
          .integer("is_splits", 10, "Inception Score: splits", Range::at_least(1))
          .integer("pr_k", 3, "precision/recall: k of the k-NN radii", Range::at_least(1))
          .choice("trace_sqrt", "symmetric", {"symmetric", "eigenvalues"},
                  "FID's tr sqrt(S1 S2): symmetric (fast) or eigenvalues (as torch-fidelity)");
  return schema;
}

}  // namespace

std::vector<std::string> parse_metric_list(const std::string& text, const std::string& option) {
  std::vector<std::string> chosen;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty()) continue;
    const auto& known = known_metrics();
    if (std::find(known.begin(), known.end(), item) == known.end())
      throw ConfigError(option + ": unknown metric '" + item + "'; choose from " + join(known) +
                        did_you_mean(item, known));
    if (std::find(chosen.begin(), chosen.end(), item) == chosen.end()) chosen.push_back(item);
  }
  if (chosen.empty()) throw ConfigError(option + ": name at least one of " + join(known_metrics()));
  // In the canonical order, so that the same set gives the same key.
  std::vector<std::string> ordered;
  for (const auto& name : known_metrics())
    if (std::find(chosen.begin(), chosen.end(), name) != chosen.end()) ordered.push_back(name);
  return ordered;
}

EvalConfig EvalConfig::from_json(const json& input, const std::string& path) {
  if (!input.is_object()) throw ConfigError(path + ": expected a JSON object, got " + input.dump());
  auto rest = input;
  EvalConfig c;
  if (rest.contains("metrics")) {
    const auto& metrics = rest.at("metrics");
    std::string text;
    if (metrics.is_string()) {
      text = metrics.get<std::string>();
    } else if (metrics.is_array()) {
      for (const auto& item : metrics) {
        if (!item.is_string())
          throw ConfigError(path + ".metrics: expected metric names (strings), got " + metrics.dump());
        text += item.get<std::string>() + ",";
      }
    } else {
      throw ConfigError(path + ".metrics: expected a list such as [\"fid\", \"kid\"], got " + metrics.dump());
    }
    c.metrics = parse_metric_list(text, path + ".metrics");
    rest.erase("metrics");
  }
  if (rest.contains("features")) {
    c.features = FeatureSettings::from_json(rest.at("features"), path + ".features");
    rest.erase("features");
  }
  const auto values = eval_schema().validate(rest, path, "the eval stage");
  c.reference = values.get_string("reference");
  c.count = values.get_int("count");
  c.kid_subsets = values.get_int("kid_subsets");
  c.kid_subset_size = values.get_int("kid_subset_size");
  c.is_splits = values.get_int("is_splits");
  c.pr_k = values.get_int("pr_k");
  c.trace_sqrt = values.get_string("trace_sqrt");
  return c;
}

json EvalConfig::to_json() const {
  return {{"metrics", metrics},
          {"reference", reference},
          {"count", count},
          {"features", features.to_json()},
          {"kid_subsets", kid_subsets},
          {"kid_subset_size", kid_subset_size},
          {"is_splits", is_splits},
          {"pr_k", pr_k},
          {"trace_sqrt", trace_sqrt}};
}

bool EvalConfig::wants(const std::string& metric) const {
  return std::find(metrics.begin(), metrics.end(), metric) != metrics.end();
}

EvalStage::EvalStage(EvalConfig config, const registry::Registry& registry, const std::string& path)
    : config_(std::move(config)), registry_(registry), path_(path) {
  feature_params_ = resolve_feature_params(registry, config_.features, features_path());
}

std::string EvalStage::where(const std::string& key) const {
  return config_where(path_, key);
}

std::string EvalStage::features_path() const {
  return path_.empty() ? "--feature-set" : path_ + ".features.params";
}

json EvalStage::config() const {
  auto out = config_.to_json();
  out["features"]["name"] = config_.features.extractor_name();
  out["features"]["params"] = feature_params_;
  // Where the cache is and whether it is used do not change the numbers; a weights file counts by its
  // content (a trained classifier's by its recipe, which its parameters hold).
  for (const char* key : {"cache", "use_cache", "batch", "weights", "preprocess"}) out["features"].erase(key);
  auto& params = out["features"]["params"];
  if (params.contains("weights") && params["weights"].is_string() &&
      !params["weights"].get<std::string>().empty())
    params["weights"] = "sha256:" + registry_.file_sha256(params["weights"].get<std::string>());
  return out;
}

json EvalStage::plugins() const {
  return {plugin_record(registry_, FeatureExtractor::kKind, config_.features.extractor_name())};
}

namespace {

// Samples in [-1, 1] as the 8-bit images metrics are defined on: round((x + 1) 127.5).
torch::Tensor to_uint8(const torch::Tensor& images) {
  return ((images.to(torch::kFloat32) + 1.0) * 127.5).round().clamp(0.0, 255.0).to(torch::kUInt8);
}

// The task metrics of a conditioned model's samples (docs/conditioning.md), from what the sample
// stage recorded beside them: the classifier's accuracy on the class asked for (class- and
// text-conditional models), and PSNR/SSIM against the reference images (super-resolution: the
// high-resolution image; inpainting: within the mask). Adds them to `report`.
void task_metrics(const std::filesystem::path& folder, std::int64_t count, FeatureExtractor& extractor,
                  const std::string& extractor_name, std::int64_t batch, json& report,
                  std::vector<std::string>& warnings) {
  const auto conditions_file = folder / "conditions.json";
  if (!std::filesystem::is_regular_file(conditions_file)) return;
  std::ifstream in(conditions_file);
  const auto conditions = json::parse(in, nullptr, false);
  if (!conditions.is_object()) throw Error(conditions_file.string() + " is not valid JSON");
  report["task"] = conditions.value("task", std::string());
  auto samples = io::read_npy(folder / "samples.npy");
  const auto n = count > 0 ? std::min(count, samples.size(0)) : samples.size(0);
  samples = samples.slice(0, 0, n);
  if (std::filesystem::is_regular_file(folder / "labels.npy")) {
    const auto labels = io::read_npy(folder / "labels.npy").slice(0, 0, n).to(torch::kInt64);
    const auto classes = conditions.value("num_classes", std::int64_t{0});
    if (extractor.num_logits() == 0 || (classes > 0 && extractor.num_logits() != classes)) {
      warnings.push_back("no accuracy: the feature extractor '" + extractor_name + "' has " +
                         std::to_string(extractor.num_logits()) + " class logits, the model " +
                         std::to_string(classes) + " classes; use the `classifier` features of its dataset");
    } else {
      std::int64_t correct = 0;
      for (std::int64_t start = 0; start < n; start += batch) {
        const auto end = std::min(n, start + batch);
        const auto logits = extractor.extract(to_uint8(samples.slice(0, start, end))).logits;
        correct += logits.argmax(1).eq(labels.slice(0, start, end)).sum().item<std::int64_t>();
      }
      report["accuracy"] = static_cast<double>(correct) / static_cast<double>(n);
      report["accuracy_chance"] = classes > 0 ? json(1.0 / static_cast<double>(classes)) : json();
    }
  }
  if (std::filesystem::is_regular_file(folder / "reference.npy")) {
    const auto reference = io::read_npy(folder / "reference.npy").slice(0, 0, n).to(torch::kFloat32);
    if (reference.sizes() != samples.sizes())
      throw Error(folder.string() + ": reference.npy and samples.npy differ in shape");
    torch::Tensor psnr, ssim;
    if (std::filesystem::is_regular_file(folder / "masks.npy")) {
      const auto masks = io::read_npy(folder / "masks.npy").slice(0, 0, n).to(torch::kFloat32);
      psnr = eval::masked_psnr(samples, reference, masks);
      if (samples.size(2) >= 11 && samples.size(3) >= 11) ssim = eval::masked_ssim(samples, reference, masks);
    } else {
      psnr = eval::psnr(samples, reference);
      ssim =
          samples.size(2) >= 11 && samples.size(3) >= 11 ? eval::ssim(samples, reference) : torch::Tensor();
    }
    // Averaged over the samples whose value is finite (equal images have infinite PSNR; a mask within
    // the border has no SSIM).
    const auto mean_finite = [](const torch::Tensor& values) -> json {
      const auto finite = values.isfinite();
      if (!finite.any().item<bool>()) return json();
      return values.masked_select(finite).mean().item<double>();
    };
    report["ref_psnr"] = mean_finite(psnr);
    if (ssim.defined()) report["ref_ssim"] = mean_finite(ssim);
  }
}

}  // namespace

json EvalStage::run(const StageContext& context, const std::string& samples,
                    const std::filesystem::path& out) const {
  const auto& o = config_;
  // Everything that can be wrong with the input fails here, before any features are computed.
  const auto set_a = open_image_set(registry_, samples);
  const auto set_b = open_image_set(registry_, o.reference);
  for (const auto* set : {set_a.get(), set_b.get()})
    if (o.count > set->size())
      throw ConfigError(where("count") + " " + std::to_string(o.count) + " is more than the " +
                        std::to_string(set->size()) + " images of " + set->describe());
  const std::int64_t n_a = o.count > 0 ? o.count : set_a->size(), n_b = o.count > 0 ? o.count : set_b->size();
  if (std::min(n_a, n_b) < 2)
    throw ConfigError("metrics need at least 2 images in each set; A has " + std::to_string(n_a) + ", B " +
                      std::to_string(n_b));
  if (o.wants("is") && n_a < o.is_splits)
    throw ConfigError(where("is_splits") + " " + std::to_string(o.is_splits) + " is more than the " +
                      std::to_string(n_a) + " images of A; use fewer splits or more images");
  if (o.wants("pr") && std::min(n_a, n_b) <= o.pr_k)
    throw ConfigError("precision/recall with " + where("pr_k") + " " + std::to_string(o.pr_k) +
                      " needs more than " + std::to_string(o.pr_k) + " images in each set");
  const auto choice = make_feature_extractor(registry_, o.features, context.device, features_path());
  auto& extractor = *choice.extractor;
  if (o.wants("is") && extractor.num_logits() == 0)
    throw ConfigError("the Inception Score needs class logits, and '" + choice.name +
                      "' has none; drop `is` from the metrics");

  eval::FeaturePassOptions pass;
  pass.batch_size = o.features.batch;
  pass.limit = o.count;
  pass.keep_features = o.wants("kid") || o.wants("pr");
  pass.keep_logits = o.wants("is");
  spdlog::info("features of A: {}", set_a->describe());
  const auto a = features_of(*set_a, extractor, o.features, pass);
  pass.keep_logits = false;  // the Inception Score is of A only
  spdlog::info("features of B: {}", set_b->describe());
  const auto b = features_of(*set_b, extractor, o.features, pass);

  json report = {{"a", a.provenance},
                 {"b", b.provenance},
                 {"a_description", set_a->describe()},
                 {"b_description", set_b->describe()},
                 {"features", choice.name},
                 {"feature_params", choice.params},
                 {"fingerprint", extractor.fingerprint()},
                 {"n_a", a.count},
                 {"n_b", b.count}};
  std::vector<std::string> warnings;
  if (o.wants("fid")) {
    const auto started = std::chrono::steady_clock::now();
    const auto fid = eval::fid(a.statistics, b.statistics,
                               o.trace_sqrt == "symmetric" ? eval::TraceSqrtMethod::kSymmetric
                                                           : eval::TraceSqrtMethod::kEigenvalues);
    report["fid"] = number_or_null(fid.fid);
    report["fid_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    warnings.insert(warnings.end(), fid.warnings.begin(), fid.warnings.end());
  }
  if (o.wants("kid")) {
    eval::KidOptions kid_options;
    kid_options.subsets = o.kid_subsets;
    kid_options.subset_size = o.kid_subset_size;
    const auto kid = eval::kid(a.features, b.features, kid_options);
    report["kid_mean"] = number_or_null(kid.mean);
    report["kid_std"] = number_or_null(kid.std);
    report["kid_subset_size"] = kid.subset_size;
    report["kid_subsets"] = kid.subsets;
    if (kid.subset_size < o.kid_subset_size)
      warnings.push_back("KID used subsets of " + std::to_string(kid.subset_size) +
                         " (the smaller set), not " + std::to_string(o.kid_subset_size) +
                         ": its values are not comparable with the standard subsets of 1000");
  }
  if (o.wants("is")) {
    eval::InceptionScoreOptions is_options;
    is_options.splits = o.is_splits;
    const auto is = eval::inception_score(a.logits, is_options);
    report["is_mean"] = number_or_null(is.mean);
    report["is_std"] = number_or_null(is.std);
    report["is_splits"] = is.splits;
  }
  if (o.wants("pr")) {
    const auto pr = eval::precision_recall(b.features, a.features, o.pr_k);
    report["precision"] = number_or_null(pr.precision);
    report["recall"] = number_or_null(pr.recall);
    report["pr_k"] = pr.k;
  }
  if (std::filesystem::is_directory(samples))
    task_metrics(samples, n_a, extractor, choice.name, o.features.batch, report, warnings);
  report["warnings"] = warnings;
  for (const auto& warning : warnings) spdlog::warn("{}", warning);
  if (!out.empty()) {
    std::filesystem::create_directories(out);
    write_text_atomically(out / "metrics.json", report.dump(2) + "\n");
  }
  return report;
}

}  // namespace latentlab::stages
