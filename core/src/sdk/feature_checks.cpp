// Conformance checks of feature extractors (plugin_checks.hpp).
#include <string>

#include "check_util.hpp"
#include "latentlab/plugin_checks.hpp"

namespace latentlab {

using detail::check;

std::vector<CheckResult> check_feature_extractor(FeatureExtractor& extractor) {
  std::vector<CheckResult> results;
  const std::int64_t D = extractor.feature_dim(), K = extractor.num_logits();
  results.push_back(check("feature_dim >= 1, num_logits >= 0, a fingerprint", [&]() -> std::string {
    if (D < 1) return "feature_dim() is " + std::to_string(D);
    if (K < 0) return "num_logits() is " + std::to_string(K);
    if (extractor.fingerprint().empty()) return "fingerprint() is empty";
    return "";
  }));
  if (!results.back().passed) return results;
  auto generator = at::detail::createCPUGenerator(7);
  const auto images = torch::randint(0, 256, {4, 3, 32, 32}, generator, torch::kInt64).to(torch::kUInt8);
  const auto untouched = images.clone();
  FeatureOutput first;
  results.push_back(
      check("features [B, D] float32 and logits [B, K] on the CPU, finite", [&]() -> std::string {
        first = extractor.extract(images);
        const auto& f = first.features;
        if (!f.defined() || f.sizes() != torch::IntArrayRef({4, D}) || f.scalar_type() != torch::kFloat32 ||
            !f.device().is_cpu())
          return "features must be [4, " + std::to_string(D) + "] float32 on the CPU";
        if (!torch::isfinite(f).all().item<bool>()) return "features have inf or nan";
        const auto& l = first.logits;
        if (K == 0 && l.defined()) return "logits given though num_logits() is 0";
        if (K > 0 && (!l.defined() || l.sizes() != torch::IntArrayRef({4, K}) ||
                      l.scalar_type() != torch::kFloat32 || !l.device().is_cpu()))
          return "logits must be [4, " + std::to_string(K) + "] float32 on the CPU";
        if (K > 0 && !torch::isfinite(l).all().item<bool>()) return "logits have inf or nan";
        return torch::equal(images, untouched) ? "" : "the input images were modified";
      }));
  if (!results.back().passed) return results;
  results.push_back(
      check("deterministic, and an image's features do not depend on its batch", [&]() -> std::string {
        const auto again = extractor.extract(images);
        if (!torch::equal(again.features, first.features)) return "the same images gave other features";
        const auto alone = extractor.extract(images.narrow(0, 2, 1)).features;
        if (!torch::allclose(alone, first.features.narrow(0, 2, 1), 1e-4, 1e-5))
          return "image 2 alone gives other features than in a batch of 4 (batch statistics in eval mode?)";
        return "";
      }));
  results.push_back(check("takes grey and RGB images of other sizes", [&]() -> std::string {
    const auto grey = extractor.extract(images.narrow(1, 0, 1).contiguous()).features;
    const auto other =
        extractor.extract(torch::randint(0, 256, {2, 3, 40, 56}, generator, torch::kInt64).to(torch::kUInt8))
            .features;
    if (grey.sizes() != torch::IntArrayRef({4, D}) || other.sizes() != torch::IntArrayRef({2, D}))
      return "wrong feature shapes for [4, 1, 32, 32] or [2, 3, 40, 56] images";
    return "";
  }));
  return results;
}

}  // namespace latentlab
