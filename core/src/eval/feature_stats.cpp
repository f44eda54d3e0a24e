#include "latentlab/eval/feature_stats.hpp"

#include <string>

#include "latentlab/error.hpp"

namespace latentlab::eval {

FeatureStatistics FeatureStatistics::from_moments(const torch::Tensor& mean, const torch::Tensor& covariance,
                                                  std::int64_t count) {
  if (mean.dim() != 1 || covariance.dim() != 2 || covariance.size(0) != mean.size(0) ||
      covariance.size(1) != mean.size(0))
    throw Error("feature statistics need a mean [D] and a covariance [D, D]");
  if (count < 2) throw Error("feature statistics need at least 2 samples, got " + std::to_string(count));
  FeatureStatistics stats;
  stats.count_ = count;
  stats.mean_ = mean.to(torch::kCPU, torch::kFloat64).clone();
  stats.scatter_ = covariance.to(torch::kCPU, torch::kFloat64) * static_cast<double>(count - 1);
  return stats;
}

void FeatureStatistics::add(const torch::Tensor& features) {
  if (features.dim() != 2)
    throw Error("feature statistics take features [B, D], got " + std::to_string(features.dim()) +
                " dimensions");
  if (features.size(0) == 0) return;
  const auto x = features.detach().to(torch::kCPU, torch::kFloat64);
  FeatureStatistics batch;
  batch.count_ = x.size(0);
  batch.mean_ = x.mean(0);
  const auto centred = x - batch.mean_;
  batch.scatter_ = centred.t().mm(centred);
  merge(batch);
}

void FeatureStatistics::merge(const FeatureStatistics& other) {
  if (other.count_ == 0) return;
  if (count_ == 0) {
    count_ = other.count_;
    mean_ = other.mean_.clone();
    scatter_ = other.scatter_.clone();
    return;
  }
  if (other.dim() != dim())
    throw Error("feature statistics of width " + std::to_string(other.dim()) +
                " cannot be merged into statistics of width " + std::to_string(dim()));
  // Chan et al.: M2 = M2_a + M2_b + delta delta^T n_a n_b / n.
  const double n_a = static_cast<double>(count_), n_b = static_cast<double>(other.count_), n = n_a + n_b;
  const auto delta = other.mean_ - mean_;
  mean_ += delta * (n_b / n);
  scatter_ += other.scatter_;
  scatter_.addr_(delta, delta, 1.0, n_a * n_b / n);
  count_ += other.count_;
}

torch::Tensor FeatureStatistics::mean() const {
  if (count_ == 0) throw Error("feature statistics are empty: no features were added");
  return mean_;
}

torch::Tensor FeatureStatistics::covariance() const {
  if (count_ < 2) throw Error("a covariance needs at least 2 samples, got " + std::to_string(count_));
  return scatter_ / static_cast<double>(count_ - 1);
}

}  // namespace latentlab::eval
