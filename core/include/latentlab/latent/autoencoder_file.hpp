#pragma once
// A trained (or imported) autoencoder on disk: `autoencoder.pt`, written by `train-autoencoder` and
// `import-weights`, read by `reconstruct`, `train-denoiser` and `sample`. It holds the plugin's name
// and resolved parameters (enough to rebuild it), the weights, the latent statistics and the rescaling
// stage 2 applies.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/autoencoder.hpp"
#include "latentlab/export.hpp"
#include "latentlab/latent/latent_stats.hpp"

namespace latentlab {

struct LATENTLAB_API AutoencoderFileInfo {
  std::string name;                                  // the plugin ("kl", "vq", "identity", ...)
  nlohmann::json params = nlohmann::json::object();  // its resolved parameters
  std::int64_t step = 0;                             // training steps behind the weights
  std::string source;                                // "train-autoencoder", "import-weights: FILE", ...
  LatentRescaling rescaling;
  nlohmann::json statistics;  // LatentStatistics::to_json(), or null when none were computed
};

// Builds an autoencoder plugin from its name and parameters (the host passes the registry's).
using AutoencoderFactory =
    std::function<std::shared_ptr<Autoencoder>(const std::string& name, const nlohmann::json& params)>;

// Writes `info` and the autoencoder's weights to `path` atomically.
LATENTLAB_API void write_autoencoder_file(const std::filesystem::path& path, const AutoencoderFileInfo& info,
                                          Autoencoder& autoencoder);

// Reads `info` without building the network. `path` may be a run folder (its autoencoder.pt).
// Throws Error naming the file when it is missing, corrupt or not an autoencoder file.
LATENTLAB_API AutoencoderFileInfo read_autoencoder_info(const std::filesystem::path& path);

// An autoencoder file read back: its info, and the network built by `factory` with the weights loaded,
// on `device`, in eval mode with gradients off. Throws Error naming the file when the weights do not fit.
struct LoadedAutoencoder {
  AutoencoderFileInfo info;
  std::shared_ptr<Autoencoder> autoencoder;
};
LATENTLAB_API LoadedAutoencoder read_autoencoder_file(const std::filesystem::path& path,
                                                      const AutoencoderFactory& factory, torch::Device device);

// The file an autoencoder path names: the path itself, or <folder>/autoencoder.pt.
LATENTLAB_API std::filesystem::path autoencoder_file(const std::filesystem::path& path);

}  // namespace latentlab
