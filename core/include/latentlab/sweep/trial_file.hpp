#pragma once
// One HDF5 file per trial (docs/hdf5-layout.md), written once the trial has ended, from the artefacts
// of its stages, under a temporary name and renamed: a killed run never leaves a half-written one.
// Readable with h5py and pandas without LatentLab.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace latentlab::sweep {

struct TrialFileInput {
  std::string id;
  nlohmann::json values;      // {axis name: value}
  nlohmann::json config;      // the trial's spec, every axis replaced by its value
  std::string status;         // done, failed
  std::string error;          // why it failed ("" when done)
  nlohmann::json provenance;  // root attributes: versions, device, host, command line, times, ...
  nlohmann::json plugins;     // plugin records of every stage

  // The finished artefact folders of the trial's stages (absent: no such stage, or it did not finish).
  std::optional<std::filesystem::path> autoencoder, latent, denoiser, reconstruction;
  struct Eval {
    std::string label;
    nlohmann::json sample_config;  // the sample stage's resolved config
    std::optional<std::filesystem::path> samples, metrics;
  };
  std::vector<Eval> evals;

  // The noise schedule stage 2 used, for /snr: t = 1..T, alpha_t, sigma_t (empty: no /snr).
  std::vector<double> alpha, sigma;
};

void write_trial_file(const std::filesystem::path& path, const TrialFileInput& input);

}  // namespace latentlab::sweep
