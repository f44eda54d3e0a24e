#include "latentlab/latent/latent_measurement.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "latentlab/io/atomic_file.hpp"
#include "latentlab/latent/latent_stats.hpp"

namespace latentlab {

namespace {

// The SNR_eff table's steps: 1, 10, 50, then every T/10, and T.
std::vector<std::int64_t> snr_steps(std::int64_t T) {
  std::vector<std::int64_t> steps;
  for (const std::int64_t t : {std::int64_t{1}, std::int64_t{10}, std::int64_t{50}})
    if (t < T) steps.push_back(t);
  for (std::int64_t k = 1; k <= 10; ++k)
    if (k * T / 10 >= 1 && (steps.empty() || k * T / 10 > steps.back())) steps.push_back(k * T / 10);
  return steps;
}

}  // namespace

nlohmann::json measure_latents(Autoencoder& autoencoder, AutoencoderFileInfo& info, const Dataset& data,
                               const Schedule& snr_schedule, const LatentMeasurement& settings,
                               torch::Device device, const std::filesystem::path& dir) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(settings.seed);
  const auto images = std::min(settings.samples, data.size());
  const bool training = autoencoder.module().is_training();
  const auto stats =
      compute_latent_statistics(autoencoder, data, images, settings.batch_size, device, generator);
  if (training) autoencoder.module().train();
  // "keep": the file's own rescaling (an imported checkpoint's scale_factor), measured but not changed.
  const auto rescaling =
      settings.rescale == "keep" ? info.rescaling : LatentRescaling::from_statistics(settings.rescale, stats);
  const auto table = effective_snr_table(snr_schedule, stats, rescaling, snr_steps(snr_schedule.num_steps()));
  spdlog::info("latent statistics over {} images: mean {:.4f}, std {:.4f}; rescaling '{}' gives Var {:.4f}",
               stats.images, stats.mean, stats.std, rescaling.mode, rescaled_variance(stats, rescaling));
  info.rescaling = rescaling;
  info.statistics = stats.to_json();
  std::filesystem::create_directories(dir);
  write_autoencoder_file(dir / "autoencoder.pt", info, autoencoder);
  const nlohmann::json report = nlohmann::json{
      {"statistics", info.statistics},         {"rescaling", rescaling.to_json()},
      {"variance_raw", stats.std * stats.std}, {"variance_rescaled", rescaled_variance(stats, rescaling)},
      {"snr_schedule", settings.snr_schedule}, {"snr_eff", table}};
  write_text_atomically(dir / "latent_stats.json", report.dump(2) + "\n");
  return report;
}

}  // namespace latentlab
