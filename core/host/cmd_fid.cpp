// `latentlab fid A B`: FID, KID, Inception Score and precision/recall of image set A (generated)
// against image set B (reference), on Inception v3 or LatentLab's own classifier features.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <set>
#include <sstream>

#include "cli.hpp"
#include "commands.hpp"
#include "feature_support.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"  // resolve_device

namespace latentlab::host {

namespace {

struct FidOptions {
  std::string a, b, metrics = "fid,kid,is,pr", device = "auto", format = "table";
  std::int64_t count = 0, kid_subsets = 100, kid_subset_size = 1000, is_splits = 10, pr_k = 3;
  std::string trace_sqrt = "symmetric";
};

std::set<std::string> parse_metrics(const std::string& text) {
  static const std::vector<std::string> known = {"fid", "kid", "is", "pr"};
  std::set<std::string> chosen;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty()) continue;
    if (std::find(known.begin(), known.end(), item) == known.end())
      throw ConfigError("--metrics: unknown metric '" + item + "'; choose from " + join(known) +
                        did_you_mean(item, known));
    chosen.insert(item);
  }
  if (chosen.empty()) throw ConfigError("--metrics: name at least one of " + join(known));
  return chosen;
}

}  // namespace

int run_fid(const Args& args) {
  CommonOptions common;
  FeatureOptions features;
  FidOptions o;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("metrics", po::value(&o.metrics)->default_value(o.metrics), "comma-separated: fid, kid, is (of A), pr")
      ("count", po::value(&o.count)->default_value(o.count), "use the first N images of each set (0: all)")
      ("kid-subsets", po::value(&o.kid_subsets)->default_value(o.kid_subsets), "KID: number of subsets")
      ("kid-subset-size", po::value(&o.kid_subset_size)->default_value(o.kid_subset_size), "KID: subset size (capped at the smaller set)")
      ("is-splits", po::value(&o.is_splits)->default_value(o.is_splits), "Inception Score: splits")
      ("pr-k", po::value(&o.pr_k)->default_value(o.pr_k), "precision/recall: k of the k-NN radii")
      ("trace-sqrt", po::value(&o.trace_sqrt)->default_value(o.trace_sqrt), "FID's tr sqrt(S1 S2): symmetric (fast) or eigenvalues (general eigensolver, as torch-fidelity)")
      ("device", po::value(&o.device)->default_value(o.device), "auto, cpu, cuda or cuda:N")
      ("format", po::value(&o.format)->default_value(o.format), "table or json");
  // clang-format on
  add_feature_options(options, features);
  add_common_options(options, common);
  Positionals positional;
  positional.add("a", po::value(&o.a)).add("b", po::value(&o.b));
  po::variables_map vm;
  const std::string usage =
      "latentlab fid A B [--metrics fid,kid,is,pr] [--features NAME] [--weights FILE] "
      "[--preprocess torch-fidelity|pytorch-fid] [--format table|json]";
  if (!parse_command_line(
          "fid", args, options, positional, usage,
          "Compares image set A (generated samples) with image set B (reference images). A set is a folder "
          "of PNG/JPEG images, a `latentlab sample` output folder or its samples.npy, a .npy array, or a "
          "dataset with a split (fashion-mnist:test). Prints FID, KID (mean, std), the Inception Score of A "
          "and precision/recall (of A against B), with the sample counts; docs/metrics.md explains each. "
          "Features are cached by content hash, so a reference set is processed once.",
          vm))
    return kOk;
  if (o.a.empty() || o.b.empty()) throw ConfigError("fid: which two image sets? Usage: " + usage);
  if (o.format != "table" && o.format != "json")
    throw ConfigError("--format: expected table or json, got '" + o.format + "'");
  if (o.trace_sqrt != "symmetric" && o.trace_sqrt != "eigenvalues")
    throw ConfigError("--trace-sqrt: expected symmetric or eigenvalues, got '" + o.trace_sqrt + "'");
  if (o.count < 0 || o.kid_subsets < 1 || o.kid_subset_size < 2 || o.is_splits < 1 || o.pr_k < 1 ||
      features.batch < 1)
    throw ConfigError(
        "--count >= 0, --kid-subsets >= 1, --kid-subset-size >= 2, --is-splits >= 1, --pr-k >= 1 "
        "and --feature-batch >= 1");
  const auto metrics = parse_metrics(o.metrics);

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const auto device = resolve_device(o.device, "--device");
  // Everything that can be wrong with the input fails here, before any features are computed.
  const auto set_a = open_image_set(*registry, o.a);
  const auto set_b = open_image_set(*registry, o.b);
  for (const auto* set : {set_a.get(), set_b.get()})
    if (o.count > set->size())
      throw ConfigError("--count " + std::to_string(o.count) + " is more than the " +
                        std::to_string(set->size()) + " images of " + set->describe());
  const std::int64_t n_a = o.count > 0 ? o.count : set_a->size(), n_b = o.count > 0 ? o.count : set_b->size();
  if (std::min(n_a, n_b) < 2)
    throw ConfigError("metrics need at least 2 images in each set; A has " + std::to_string(n_a) + ", B " +
                      std::to_string(n_b));
  if (metrics.count("is") && n_a < o.is_splits)
    throw ConfigError("--is-splits " + std::to_string(o.is_splits) + " is more than the " +
                      std::to_string(n_a) + " images of A; use fewer splits or more images");
  if (metrics.count("pr") && std::min(n_a, n_b) <= o.pr_k)
    throw ConfigError("precision/recall with --pr-k " + std::to_string(o.pr_k) + " needs more than " +
                      std::to_string(o.pr_k) + " images in each set");
  const auto choice = make_feature_extractor(*registry, features, device);
  auto& extractor = *choice.extractor;
  if (metrics.count("is") && extractor.num_logits() == 0)
    throw ConfigError("the Inception Score needs class logits, and '" + choice.name +
                      "' has none; drop `is` from --metrics");

  eval::FeaturePassOptions pass;
  pass.batch_size = features.batch;
  pass.limit = o.count;
  pass.keep_features = metrics.count("kid") || metrics.count("pr");
  pass.keep_logits = metrics.count("is") > 0;
  spdlog::info("features of A: {}", set_a->describe());
  const auto a = features_of(*set_a, extractor, features, pass);
  pass.keep_logits = false;  // the Inception Score is of A only
  spdlog::info("features of B: {}", set_b->describe());
  const auto b = features_of(*set_b, extractor, features, pass);

  nlohmann::json report = {{"a", a.provenance},
                           {"b", b.provenance},
                           {"features", choice.name},
                           {"feature_params", choice.params},
                           {"fingerprint", extractor.fingerprint()},
                           {"n_a", a.count},
                           {"n_b", b.count}};
  std::vector<std::string> warnings;
  if (metrics.count("fid")) {
    const auto started = std::chrono::steady_clock::now();
    const auto fid = eval::fid(a.statistics, b.statistics,
                               o.trace_sqrt == "symmetric" ? eval::TraceSqrtMethod::kSymmetric
                                                           : eval::TraceSqrtMethod::kEigenvalues);
    report["fid"] = number_or_null(fid.fid);
    report["fid_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    warnings.insert(warnings.end(), fid.warnings.begin(), fid.warnings.end());
  }
  if (metrics.count("kid")) {
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
                         ": its values are not comparable with the standard "
                         "subsets of 1000");
  }
  if (metrics.count("is")) {
    eval::InceptionScoreOptions is_options;
    is_options.splits = o.is_splits;
    const auto is = eval::inception_score(a.logits, is_options);
    report["is_mean"] = number_or_null(is.mean);
    report["is_std"] = number_or_null(is.std);
    report["is_splits"] = is.splits;
  }
  if (metrics.count("pr")) {
    const auto pr = eval::precision_recall(b.features, a.features, o.pr_k);
    report["precision"] = number_or_null(pr.precision);
    report["recall"] = number_or_null(pr.recall);
    report["pr_k"] = pr.k;
  }
  report["warnings"] = warnings;
  for (const auto& warning : warnings) spdlog::warn("{}", warning);

  if (o.format == "json") {
    std::cout << report.dump(2) << "\n";
    return kOk;
  }
  const auto value = [&](const char* key) {
    return report.contains(key) && report[key].is_number() ? report[key].get<double>() : NAN;
  };
  std::cout << fmt::format("A          {}\nB          {}\n", set_a->describe(), set_b->describe())
            << fmt::format("features   {} ({})\n", choice.name, extractor.fingerprint())
            << fmt::format("samples    n_a = {}, n_b = {}\n", a.count, b.count);
  if (metrics.count("fid")) std::cout << fmt::format("FID        {:.4f}\n", value("fid"));
  if (metrics.count("kid"))
    std::cout << fmt::format("KID        {:.6f} +- {:.6f} ({} subsets of {})\n", value("kid_mean"),
                             value("kid_std"), o.kid_subsets, report["kid_subset_size"].get<std::int64_t>());
  if (metrics.count("is"))
    std::cout << fmt::format("IS (A)     {:.4f} +- {:.4f} ({} splits)\n", value("is_mean"), value("is_std"),
                             o.is_splits);
  if (metrics.count("pr"))
    std::cout << fmt::format("precision  {:.4f}\nrecall     {:.4f} (k = {})\n", value("precision"),
                             value("recall"), o.pr_k);
  return kOk;
}

}  // namespace latentlab::host
