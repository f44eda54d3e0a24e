#include "latentlab/latent/latent_stats.hpp"

#include <algorithm>
#include <cmath>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  const auto cpu = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
}

torch::Tensor channel_view(const std::vector<double>& values, const torch::Tensor& like) {
  return torch::tensor(values, torch::kFloat64).to(like.device(), like.scalar_type()).view({1, -1, 1, 1});
}

}  // namespace

void LatentStatisticsAccumulator::add(const torch::Tensor& z) {
  // z: [B, c, h, w]
  if (z.dim() != 4) throw Error("latent statistics need latents [B, c, h, w]");
  torch::NoGradGuard no_grad;
  const auto values = z.detach().to(torch::kCPU, torch::kFloat64);
  const auto per_channel = values.transpose(0, 1).reshape({values.size(1), -1});  // [c, B h w]
  if (!reference_.defined()) {
    reference_ = per_channel.mean(1);
    sum_ = torch::zeros_like(reference_);
    sum_sq_ = torch::zeros_like(reference_);
    const double m = values.mean().item<double>(), s = values.std().item<double>();
    const double half = 6.0 * (s > 0 ? s : 1.0);
    lo_ = m - half;
    hi_ = m + half;
    counts_ = torch::zeros({bins_}, torch::kFloat64);
    min_ = values.min().item<double>();
    max_ = values.max().item<double>();
  } else if (per_channel.size(0) != reference_.size(0)) {
    throw Error("latent statistics: batches have different channel counts");
  }
  const auto centred = per_channel - reference_.unsqueeze(1);
  sum_ += centred.sum(1);
  sum_sq_ += centred.pow(2).sum(1);
  count_per_channel_ += per_channel.size(1);
  images_ += z.size(0);
  min_ = std::min(min_, values.min().item<double>());
  max_ = std::max(max_, values.max().item<double>());
  counts_ += torch::histc(values.flatten(), bins_, lo_, hi_);
  below_ += (values < lo_).sum().item<std::int64_t>();
  above_ += (values > hi_).sum().item<std::int64_t>();
}

LatentStatistics LatentStatisticsAccumulator::finish() const {
  if (!reference_.defined() || count_per_channel_ < 2) throw Error("latent statistics: no latents seen");
  LatentStatistics s;
  const double n = static_cast<double>(count_per_channel_);
  s.images = images_;
  s.elements = count_per_channel_ * reference_.size(0);
  const auto mean = reference_ + sum_ / n;              // [c]
  const auto second = sum_sq_ / n - (sum_ / n).pow(2);  // centred variance [c]
  const auto variance = second * n / (n - 1);           // unbiased per channel
  s.channel_mean = to_vector(mean);
  s.channel_std = to_vector(variance.clamp_min(0).sqrt());
  // Global moments from the per-channel ones (equal counts per channel).
  const double global_mean = mean.mean().item<double>();
  const double global_second = (second + (mean - global_mean).pow(2)).mean().item<double>();
  const double total = static_cast<double>(s.elements);
  s.mean = global_mean;
  s.std = std::sqrt(std::max(0.0, global_second * total / (total - 1)));
  s.min = min_;
  s.max = max_;
  for (std::int64_t i = 0; i <= bins_; ++i)
    s.histogram_edges.push_back(lo_ + (hi_ - lo_) * static_cast<double>(i) / static_cast<double>(bins_));
  for (const double c : to_vector(counts_)) s.histogram_counts.push_back(static_cast<std::int64_t>(c));
  s.below = below_;
  s.above = above_;
  return s;
}

nlohmann::json LatentStatistics::to_json() const {
  return {{"images", images},
          {"elements", elements},
          {"channel_mean", channel_mean},
          {"channel_std", channel_std},
          {"mean", mean},
          {"std", std},
          {"min", min},
          {"max", max},
          {"histogram",
           {{"edges", histogram_edges}, {"counts", histogram_counts}, {"below", below}, {"above", above}}}};
}

LatentStatistics LatentStatistics::from_json(const nlohmann::json& json) {
  LatentStatistics s;
  s.images = json.at("images").get<std::int64_t>();
  s.elements = json.at("elements").get<std::int64_t>();
  s.channel_mean = json.at("channel_mean").get<std::vector<double>>();
  s.channel_std = json.at("channel_std").get<std::vector<double>>();
  s.mean = json.at("mean").get<double>();
  s.std = json.at("std").get<double>();
  s.min = json.at("min").get<double>();
  s.max = json.at("max").get<double>();
  const auto& h = json.at("histogram");
  s.histogram_edges = h.at("edges").get<std::vector<double>>();
  s.histogram_counts = h.at("counts").get<std::vector<std::int64_t>>();
  s.below = h.at("below").get<std::int64_t>();
  s.above = h.at("above").get<std::int64_t>();
  return s;
}

const std::vector<std::string>& rescaling_modes() {
  static const std::vector<std::string> modes = {"none", "std", "channel"};
  return modes;
}

LatentRescaling LatentRescaling::from_statistics(const std::string& mode, const LatentStatistics& stats) {
  LatentRescaling r;
  r.mode = mode;
  const auto c = stats.channel_mean.size();
  if (mode == "none") return r;
  if (mode == "std") {
    if (!(stats.std > 0)) throw Error("latent rescaling 'std': the latents' standard deviation is 0");
    r.shift.assign(c, 0.0);
    r.scale.assign(c, stats.std);
    return r;
  }
  if (mode == "channel") {
    for (const double s : stats.channel_std)
      if (!(s > 0)) throw Error("latent rescaling 'channel': a latent channel has standard deviation 0");
    r.shift = stats.channel_mean;
    r.scale = stats.channel_std;
    return r;
  }
  throw ConfigError("latent rescaling '" + mode + "': unknown" + did_you_mean(mode, rescaling_modes()) +
                    "; allowed: " + join(rescaling_modes()));
}

LatentRescaling LatentRescaling::from_scale_factor(double scale_factor, std::int64_t channels) {
  if (!(scale_factor > 0) || !std::isfinite(scale_factor))
    throw ConfigError("scale factor: expected a positive number, got " + format_number(scale_factor));
  LatentRescaling r;
  r.mode = "std";
  r.shift.assign(static_cast<std::size_t>(channels), 0.0);
  r.scale.assign(static_cast<std::size_t>(channels), 1.0 / scale_factor);
  return r;
}

torch::Tensor LatentRescaling::apply(const torch::Tensor& z) const {
  if (mode == "none") return z;
  return (z - channel_view(shift, z)) / channel_view(scale, z);
}

torch::Tensor LatentRescaling::invert(const torch::Tensor& z) const {
  if (mode == "none") return z;
  return z * channel_view(scale, z) + channel_view(shift, z);
}

nlohmann::json LatentRescaling::to_json() const {
  return {{"mode", mode}, {"shift", shift}, {"scale", scale}};
}

LatentRescaling LatentRescaling::from_json(const nlohmann::json& json) {
  LatentRescaling r;
  r.mode = json.at("mode").get<std::string>();
  r.shift = json.at("shift").get<std::vector<double>>();
  r.scale = json.at("scale").get<std::vector<double>>();
  return r;
}

double rescaled_variance(const LatentStatistics& stats, const LatentRescaling& rescaling) {
  const auto c = stats.channel_mean.size();
  if (rescaling.mode == "none" || c == 0) return stats.std * stats.std;
  // One scale and no shift for every channel (`std`): the global variance, rescaled.
  const bool uniform =
      std::all_of(rescaling.scale.begin(), rescaling.scale.end(),
                  [&](double s) { return s == rescaling.scale.front(); }) &&
      std::all_of(rescaling.shift.begin(), rescaling.shift.end(), [](double s) { return s == 0.0; });
  if (uniform) return std::pow(stats.std / rescaling.scale.front(), 2);
  // Per-channel moments after z' = (z - shift) / scale, pooled over channels.
  std::vector<double> means(c);
  double pooled_mean = 0;
  for (std::size_t i = 0; i < c; ++i) {
    means[i] = (stats.channel_mean[i] - rescaling.shift[i]) / rescaling.scale[i];
    pooled_mean += means[i] / static_cast<double>(c);
  }
  double variance = 0;
  for (std::size_t i = 0; i < c; ++i) {
    const double v = std::pow(stats.channel_std[i] / rescaling.scale[i], 2);
    variance += (v + std::pow(means[i] - pooled_mean, 2)) / static_cast<double>(c);
  }
  return variance;
}

nlohmann::json effective_snr_table(const Schedule& schedule, const LatentStatistics& stats,
                                   const LatentRescaling& rescaling, const std::vector<std::int64_t>& steps) {
  const double raw = stats.std * stats.std, rescaled = rescaled_variance(stats, rescaling);
  auto rows = nlohmann::json::array();
  for (const auto t : steps) {
    const double snr = schedule.snr(t);  // alpha_t^2 / sigma_t^2 for unit-variance data
    rows.push_back(
        {{"t", t}, {"snr_data_unit", snr}, {"snr_eff_raw", snr * raw}, {"snr_eff_rescaled", snr * rescaled}});
  }
  return rows;
}

LatentStatistics compute_latent_statistics(Autoencoder& autoencoder, const Dataset& data, std::int64_t images,
                                           std::int64_t batch_size, torch::Device device,
                                           at::Generator& generator) {
  if (images < 1) throw ConfigError("latent statistics: the number of images must be >= 1");
  if (images > data.size())
    throw ConfigError("latent statistics: " + std::to_string(images) + " images asked for, the dataset has " +
                      std::to_string(data.size()));
  torch::NoGradGuard no_grad;
  autoencoder.module().eval();
  LatentStatisticsAccumulator accumulator;
  for (std::int64_t start = 0; start < images; start += batch_size) {
    std::vector<std::int64_t> indices;
    for (std::int64_t i = start; i < std::min(images, start + batch_size); ++i) indices.push_back(i);
    accumulator.add(autoencoder.encode(data.get_batch(indices).images.to(device), generator));
  }
  return accumulator.finish();
}

}  // namespace latentlab
