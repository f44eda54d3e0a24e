// `latentlab bench features` and `latentlab bench fid`: feature-extraction throughput of both
// extractors, the time FID takes from two 2048-d statistics, and the memory of a streamed pass.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "bench_timing.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/feature_pass.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/nn/feature_classifier.hpp"
#include "latentlab/nn/inception_v3.hpp"

namespace latentlab::host {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double max_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// Random uint8 images in slices, without holding them: the source of the streaming measurement.
class RandomImages final : public eval::ImageSource {
 public:
  RandomImages(std::int64_t count, std::int64_t channels, std::int64_t side)
      : count_(count), channels_(channels), side_(side) {}
  std::int64_t size() const override { return count_; }
  torch::Tensor read(std::int64_t start, std::int64_t count) const override {
    auto generator = at::detail::createCPUGenerator(static_cast<std::uint64_t>(start));
    return torch::randint(0, 256, {count, channels_, side_, side_}, generator, torch::kInt64)
        .to(torch::kUInt8);
  }
  std::string describe() const override { return std::to_string(count_) + " random images"; }
  std::string content_hash() const override { return "random-" + std::to_string(count_); }

 private:
  std::int64_t count_, channels_, side_;
};

// The classifier as the `classifier` plugin runs it, with untrained weights (speed does not depend on
// their values).
class UntrainedClassifier final : public FeatureExtractor {
 public:
  UntrainedClassifier() : net_(nn::FeatureClassifierConfig{}) { net_->eval(); }
  std::int64_t feature_dim() const override { return net_->config().feature_dim; }
  std::int64_t num_logits() const override { return net_->config().classes; }
  std::string fingerprint() const override { return "bench-classifier"; }
  FeatureOutput extract(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    const auto out = net_->forward(nn::classifier_input(images, net_->config()));
    return {out.features, out.logits};
  }
  void to(const torch::Device&) override {}

 private:
  nn::FeatureClassifier net_;
};

// 2048-d features (a fixed random projection of the pixels), so that the streamed pass accumulates
// statistics of Inception's width without Inception's CPU cost.
class WideFeatures final : public FeatureExtractor {
 public:
  WideFeatures() : projection_(torch::randn({1024, 2048}) / 32.0) {}
  std::int64_t feature_dim() const override { return 2048; }
  std::int64_t num_logits() const override { return 0; }
  std::string fingerprint() const override { return "bench-wide"; }
  FeatureOutput extract(const torch::Tensor& images) override {
    return {images.to(torch::kFloat32).flatten(1).narrow(1, 0, 1024).mm(projection_), {}};
  }
  void to(const torch::Device&) override {}

 private:
  torch::Tensor projection_;
};

int bench_features(std::int64_t batch, int repeats, std::int64_t stream_images) {
  nlohmann::json report = nlohmann::json::array();
  torch::NoGradGuard no_grad;
  UntrainedClassifier classifier;
  // First, before Inception's activations raise the process's peak: the memory of a streamed pass,
  // the peak after a tenth of the images and after all of them.
  WideFeatures wide;
  eval::FeaturePassOptions pass;
  pass.batch_size = batch;
  for (auto* extractor : std::initializer_list<FeatureExtractor*>{&classifier, &wide}) {
    const auto rss_before = max_rss_mib();
    eval::extract_features(RandomImages(stream_images / 10, 1, 32), *extractor, pass);
    const auto rss_tenth = max_rss_mib();
    const auto start = Clock::now();
    const auto set = eval::extract_features(RandomImages(stream_images, 1, 32), *extractor, pass);
    report.push_back({{"stream", set.count},
                      {"extractor", extractor == &wide ? "2048-d projection" : "classifier"},
                      {"feature_dim", extractor->feature_dim()},
                      {"seconds", seconds_since(start)},
                      {"max_rss_mib_before", rss_before},
                      {"max_rss_mib_after_tenth", rss_tenth},
                      {"max_rss_mib_after_all", max_rss_mib()}});
  }
  {
    nn::FidInceptionV3 inception;
    inception->eval();
    for (const std::int64_t side : {32, 256}) {
      const auto images = RandomImages(batch, 3, side).read(0, batch);
      for (const auto mode :
           {nn::InceptionPreprocess::kTorchFidelity, nn::InceptionPreprocess::kPytorchFid}) {
        inception->forward(nn::inception_input(images.narrow(0, 0, 1), mode));  // warm-up
        const double seconds = median_seconds_per_call(
            [&] { inception->forward(nn::inception_input(images, mode)); }, repeats, 0.0);
        report.push_back({{"extractor", "inception-v3-fid"},
                          {"preprocess", nn::to_string(mode)},
                          {"input", "3x" + std::to_string(side) + "x" + std::to_string(side)},
                          {"batch", batch},
                          {"images_per_s", static_cast<double>(batch) / seconds}});
        spdlog::info("inception-v3-fid {} {}x{}: {:.2f} images/s", nn::to_string(mode), side, side,
                     static_cast<double>(batch) / seconds);
      }
    }
  }
  for (const std::int64_t side : {28, 32}) {
    const auto images = RandomImages(batch, 1, side).read(0, batch);
    classifier.extract(images);
    const double seconds = median_seconds_per_call([&] { classifier.extract(images); }, repeats, 0.0);
    report.push_back({{"extractor", "classifier"},
                      {"input", "1x" + std::to_string(side) + "x" + std::to_string(side)},
                      {"batch", batch},
                      {"images_per_s", static_cast<double>(batch) / seconds}});
  }
  std::cout << report.dump(2) << "\n";
  return kOk;
}

int bench_fid(std::int64_t dim, std::int64_t samples, int repeats) {
  // Two correlated feature sets with full-rank covariances, as Inception pool3 statistics are.
  auto generator = at::detail::createCPUGenerator(0);
  const auto mixing =
      torch::randn({dim, dim}, generator, torch::kFloat64) / std::sqrt(static_cast<double>(dim));
  eval::FeatureStatistics a, b;
  for (std::int64_t start = 0; start < samples; start += 1000) {
    const auto z =
        torch::randn({std::min<std::int64_t>(1000, samples - start), dim}, generator, torch::kFloat64);
    const auto mixed = z.mm(mixing);
    a.add(mixed);
    b.add(mixed.tanh() + 0.1);
  }
  nlohmann::json report = nlohmann::json::array();
  for (const auto method : {eval::TraceSqrtMethod::kSymmetric, eval::TraceSqrtMethod::kEigenvalues}) {
    double value = 0;
    const double seconds =
        median_seconds_per_call([&] { value = eval::fid(a, b, method).fid; }, repeats, 0.0);
    const char* name = method == eval::TraceSqrtMethod::kSymmetric ? "symmetric" : "eigenvalues";
    report.push_back(
        {{"trace_sqrt", name}, {"dim", dim}, {"samples", samples}, {"seconds", seconds}, {"fid", value}});
    spdlog::info("FID from {}-d statistics, {}: {:.3f} s (FID {:.6f})", dim, name, seconds, value);
  }
  std::cout << report.dump(2) << "\n";
  return kOk;
}

}  // namespace

int run_bench_metrics(const Args& args) {
  CommonOptions common;
  std::string what;
  std::int64_t batch = 50, stream = 50000, dim = 2048, samples = 10000;
  int repeats = 5;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("batch", po::value(&batch)->default_value(batch), "features: images per batch")
      ("stream", po::value(&stream)->default_value(stream), "features: images streamed through the classifier for the memory measurement")
      ("dim", po::value(&dim)->default_value(dim), "fid: feature dimension")
      ("samples", po::value(&samples)->default_value(samples), "fid: samples behind each statistic")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed rounds; the median is reported");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("what", po::value(&what));
  po::variables_map vm;
  const std::string usage =
      "latentlab bench features [--batch N] [--stream N] [--repeats R] | latentlab bench fid [--dim D] "
      "[--samples N] "
      "[--repeats R]";
  if (!parse_command_line(
          "bench", args, options, positional, usage,
          "features: images/s of inception-v3-fid (both preprocessings) and of the classifier "
          "on the CPU (untrained weights: speed does not depend on them), and the peak memory "
          "of a streamed pass (the classifier, and a 2048-d projection). fid: seconds for FID from two "
          "D-dimensional statistics with "
          "each trace-sqrt method. Prints JSON.",
          vm))
    return kOk;
  if (batch < 1 || stream < 10 || dim < 2 || samples < 2 || repeats < 1)
    throw ConfigError("--batch >= 1, --stream >= 10, --dim >= 2, --samples >= 2, --repeats >= 1");
  apply_common_options(common);
  if (what == "features") return bench_features(batch, repeats, stream);
  return bench_fid(dim, samples, repeats);
}

}  // namespace latentlab::host
