#pragma once
// A sweep's results folder read back (docs/analysis.md): `sweep.json` for the axes and every trial's
// status, and each finished trial's HDF5 file (docs/hdf5-layout.md) for its metrics. Trials that
// have not ended yet are listed with their status and no metrics, so a running sweep reads as what
// has finished so far. Only the documented outputs are read, never the engine's cache.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace latentlab::analysis {

struct AxisInfo {
  std::string name;  // short name: trial ids, tables
  std::string path;  // where it sits in the spec: "denoiser.weighting"
  std::string zip;   // its $zip group ("" for a grid axis)
  std::vector<nlohmann::json> values;

  bool is_seed() const { return path == "seeds"; }
  bool is_eval() const { return path.rfind("eval", 0) == 0; }  // an eval entry's value: "eval[0].steps"
};

// One eval entry of a trial: a sampler run and the metrics of its samples.
struct EvalResult {
  std::string label;                      // "ddim-20"
  std::string sampler;                    // its name
  std::string guider;                     // its name, "" for none
  double steps = 0;                       // sampler steps (NaN when unknown)
  std::map<std::string, double> metrics;  // fid, kid, is, precision, recall, throughput, nfe, ...
};

struct TrialResult {
  std::string id;
  std::string status;                                // done, failed, running, waiting
  std::string error;                                 // why it failed
  nlohmann::json values = nlohmann::json::object();  // axis name -> value
  std::filesystem::path file;                        // its HDF5 file; empty until the trial ends
  std::map<std::string, double> metrics;             // psnr, ssim, psim, rfid, elbo_bpd, latent_std, ...
  std::vector<EvalResult> evals;
  nlohmann::json provenance = nlohmann::json::object();  // the file's root attributes (versions, ...)
};

struct Results {
  std::filesystem::path folder;
  std::string name, description, updated;
  std::vector<AxisInfo> axes;
  std::vector<TrialResult> trials;
};

// Reads RESULTS/<name>/. Throws ConfigError when the folder is not a sweep's results folder, and
// Error (naming the file) when a trial file cannot be read.
Results load_results(const std::filesystem::path& folder);

// The columns of a group of 1-D datasets in a trial file ("denoiser/train", "snr"), by name; empty
// when the group is absent.
std::map<std::string, std::vector<double>> read_columns(const std::filesystem::path& file,
                                                        const std::string& group);

// An eval entry's sample grid (`/eval/<label>/samples`), uint8 [height, width, channels].
struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
};
std::optional<Image> read_sample_grid(const std::filesystem::path& file, const std::string& label);

// A value as tables, figures and filters name it: strings as they are, numbers as JSON writes them,
// a plugin choice {"name", "params"} as `name(key=value, ...)`, anything else as its JSON.
std::string value_text(const nlohmann::json& value);

}  // namespace latentlab::analysis
