#pragma once
// Streaming first and second moments of feature vectors, the sufficient statistics of FID.
//
// Accumulated in float64 with the pairwise update of Chan, Golub & LeVeque (1979): each batch's own
// mean and centred scatter matrix are merged into the running ones, so no sum of squares of
// uncentred features (which loses digits to cancellation) is ever formed.
#include <cstdint>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::eval {

class LATENTLAB_API FeatureStatistics {
 public:
  FeatureStatistics() = default;
  // Statistics read back from a file: mean [D], covariance [D, D] (unbiased, divided by n - 1), n.
  static FeatureStatistics from_moments(const torch::Tensor& mean, const torch::Tensor& covariance,
                                        std::int64_t count);

  // features: [B, D], any floating dtype, any device (moved to the CPU in float64). D is fixed by the
  // first batch; a later batch of another width is an Error.
  void add(const torch::Tensor& features);
  // Adds another accumulator's samples (same D).
  void merge(const FeatureStatistics& other);

  std::int64_t count() const { return count_; }
  std::int64_t dim() const { return mean_.defined() ? mean_.size(0) : 0; }
  // [D] float64.
  torch::Tensor mean() const;
  // [D, D] float64, divided by n - 1 (numpy.cov's default, as pytorch-fid and torch-fidelity use).
  // Needs at least 2 samples.
  torch::Tensor covariance() const;

 private:
  std::int64_t count_ = 0;
  torch::Tensor mean_;     // [D] float64
  torch::Tensor scatter_;  // [D, D] float64: sum of (x - mean)(x - mean)^T
};

}  // namespace latentlab::eval
