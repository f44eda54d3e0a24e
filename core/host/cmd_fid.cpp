// `latentlab fid A B`: FID, KID, Inception Score and precision/recall of image set A (generated)
// against image set B (reference), on Inception v3 or LatentLab's own classifier features.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "feature_support.hpp"
#include "latentlab/error.hpp"
#include "latentlab/stages/eval_stage.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"  // resolve_device

namespace latentlab::host {

namespace {

struct FidOptions {
  std::string a, b, metrics = "fid,kid,is,pr", device = "auto", format = "table";
  std::int64_t count = 0, kid_subsets = 100, kid_subset_size = 1000, is_splits = 10, pr_k = 3;
  std::string trace_sqrt = "symmetric";
};

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
  stages::EvalConfig config;
  config.metrics = stages::parse_metric_list(o.metrics, "--metrics");
  config.reference = o.b;
  config.count = o.count;
  config.features = features.settings();
  config.kid_subsets = o.kid_subsets;
  config.kid_subset_size = o.kid_subset_size;
  config.is_splits = o.is_splits;
  config.pr_k = o.pr_k;
  config.trace_sqrt = o.trace_sqrt;

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const stages::EvalStage stage(config, *registry, "");
  const stages::StageContext context{*registry, resolve_device(o.device, "--device")};
  const auto report = stage.run(context, o.a, {});

  if (o.format == "json") {
    std::cout << report.dump(2) << "\n";
    return kOk;
  }
  const auto value = [&](const char* key) {
    return report.contains(key) && report[key].is_number() ? report[key].get<double>() : NAN;
  };
  std::cout << fmt::format("A          {}\nB          {}\n", report["a_description"].get<std::string>(),
                           report["b_description"].get<std::string>())
            << fmt::format("features   {} ({})\n", report["features"].get<std::string>(),
                           report["fingerprint"].get<std::string>())
            << fmt::format("samples    n_a = {}, n_b = {}\n", report["n_a"].get<std::int64_t>(),
                           report["n_b"].get<std::int64_t>());
  if (config.wants("fid")) std::cout << fmt::format("FID        {:.4f}\n", value("fid"));
  if (config.wants("kid"))
    std::cout << fmt::format("KID        {:.6f} +- {:.6f} ({} subsets of {})\n", value("kid_mean"),
                             value("kid_std"), o.kid_subsets, report["kid_subset_size"].get<std::int64_t>());
  if (config.wants("is"))
    std::cout << fmt::format("IS (A)     {:.4f} +- {:.4f} ({} splits)\n", value("is_mean"), value("is_std"),
                             o.is_splits);
  if (config.wants("pr"))
    std::cout << fmt::format("precision  {:.4f}\nrecall     {:.4f} (k = {})\n", value("precision"),
                             value("recall"), o.pr_k);
  return kOk;
}

}  // namespace latentlab::host
