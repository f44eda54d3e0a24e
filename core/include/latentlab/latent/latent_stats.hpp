#pragma once
// Latent statistics and rescaling (Sec. G, Appendix D.1). The variance of z = E(x) sets the SNR the
// denoiser sees: SNR_eff(t) = alpha_t^2 Var(z) / sigma_t^2. The reference rescales z by 1 / sigma_hat
// (`scale_by_std`) so that Var(z) is about 1, like pixels in [-1, 1] after the data's own scaling.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/autoencoder.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/export.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

struct LATENTLAB_API LatentStatistics {
  std::int64_t images = 0;    // images encoded
  std::int64_t elements = 0;  // latent values seen
  std::vector<double> channel_mean, channel_std;
  double mean = 0, std = 0;  // over all channels and positions
  double min = 0, max = 0;
  // Histogram of all values: counts of bins between consecutive edges, plus values outside the edges.
  std::vector<double> histogram_edges;
  std::vector<std::int64_t> histogram_counts;
  std::int64_t below = 0, above = 0;

  nlohmann::json to_json() const;
  static LatentStatistics from_json(const nlohmann::json& json);
};

// Streams latents [B, c, h, w] into the statistics: float64 sums around a reference point taken from the
// first batch (stable), and a histogram whose range is fixed by the first batch (mean +- 6 std).
class LATENTLAB_API LatentStatisticsAccumulator {
 public:
  explicit LatentStatisticsAccumulator(std::int64_t bins = 60) : bins_(bins) {}
  void add(const torch::Tensor& z);
  LatentStatistics finish() const;

 private:
  std::int64_t bins_;
  std::int64_t images_ = 0, count_per_channel_ = 0;
  torch::Tensor reference_, sum_, sum_sq_, counts_;  // [c] float64; counts_ [bins]
  double lo_ = 0, hi_ = 0, min_ = 0, max_ = 0;
  std::int64_t below_ = 0, above_ = 0;
};

// How stage 2 rescales latents: z' = (z - shift) / scale per channel.
//   none:    shift 0, scale 1
//   std:     shift 0, scale sigma_hat (the global std; the reference's scale_by_std, scale_factor =
//   1/sigma_hat) channel: shift and scale the per-channel mean and std
struct LATENTLAB_API LatentRescaling {
  std::string mode = "none";
  std::vector<double> shift, scale;  // [c], empty for none

  static LatentRescaling from_statistics(const std::string& mode, const LatentStatistics& stats);
  // The reference's scale_factor (z' = scale_factor z): one scale for every channel, no shift.
  static LatentRescaling from_scale_factor(double scale_factor, std::int64_t channels);
  torch::Tensor apply(const torch::Tensor& z) const;   // z -> z'
  torch::Tensor invert(const torch::Tensor& z) const;  // z' -> z
  nlohmann::json to_json() const;
  static LatentRescaling from_json(const nlohmann::json& json);
};

LATENTLAB_API const std::vector<std::string>& rescaling_modes();

// Var(z') for statistics of z: the mean over channels of the rescaled per-channel second moments
// around the rescaled mean (the global variance for `none`).
LATENTLAB_API double rescaled_variance(const LatentStatistics& stats, const LatentRescaling& rescaling);

// SNR_eff(t) = alpha_t^2 Var(z) / sigma_t^2 at the given steps, before and after rescaling, as rows
// {"t", "snr_data_unit", "snr_eff_raw", "snr_eff_rescaled"}.
LATENTLAB_API nlohmann::json effective_snr_table(const Schedule& schedule, const LatentStatistics& stats,
                                                 const LatentRescaling& rescaling,
                                                 const std::vector<std::int64_t>& steps);

// Encodes the first `images` examples of `data` (in batches on `device`) and accumulates the
// statistics of E(x) (before rescaling). `generator` feeds KL posterior samples.
LATENTLAB_API LatentStatistics compute_latent_statistics(Autoencoder& autoencoder, const Dataset& data,
                                                         std::int64_t images, std::int64_t batch_size,
                                                         torch::Device device, at::Generator& generator);

}  // namespace latentlab
