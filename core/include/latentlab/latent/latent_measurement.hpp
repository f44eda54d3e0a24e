#pragma once
// Measuring an autoencoder's latents and writing what stage 2 needs (Sec. G, D.1): the statistics over
// training images, the rescaling they give, the SNR_eff table, written with the weights to
// <dir>/autoencoder.pt and as a report to <dir>/latent_stats.json. The autoencoder trainer runs it at
// the end of training; the latent-statistics stage runs it on any autoencoder file.
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/autoencoder.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/export.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

struct LatentMeasurement {
  std::int64_t samples = 2048;  // training images measured (at most the dataset's size)
  std::int64_t batch_size = 64;
  std::string rescale = "std";  // rescaling_modes(), or "keep": the file's own rescaling
  std::string snr_schedule;     // the schedule's name, for the report
  std::uint64_t seed = 0;       // of the KL posterior samples
};

// Measures the latents of `autoencoder` on `data`, sets info.rescaling and info.statistics, writes
// <dir>/autoencoder.pt and <dir>/latent_stats.json (atomically), and returns the report.
LATENTLAB_API nlohmann::json measure_latents(Autoencoder& autoencoder, AutoencoderFileInfo& info,
                                             const Dataset& data, const Schedule& snr_schedule,
                                             const LatentMeasurement& settings, torch::Device device,
                                             const std::filesystem::path& dir);

}  // namespace latentlab
