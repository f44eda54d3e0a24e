#pragma once
// Reading a trained denoiser back: the weights `train-denoiser` writes (denoiser.pt, the EMA weights)
// or its checkpoint (checkpoint.pt: the EMA weights when the run keeps an EMA), with the training
// configuration saved inside, which says how to rebuild the UNet and which schedule it was trained on.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include <torch/torch.h>

#include "latentlab/conditioning/conditioner_set.hpp"
#include "latentlab/export.hpp"
#include "latentlab/nn/unet.hpp"
#include "latentlab/train/denoiser_config.hpp"

namespace latentlab {

struct LoadedDenoiser {
  std::filesystem::path path;  // the file read
  DenoiserTrainConfig config;  // the run's resolved configuration
  std::int64_t step = 0;       // the training step the weights are from
  nn::UNet model{nullptr};     // in eval mode, on the requested device, parameters frozen
  // The trained conditioners (EMA weights), in eval mode on the device; null when the model has none.
  std::shared_ptr<ConditionerSet> conditioners;
};

// How load_denoiser rebuilds a conditioned model's conditioners: their plugins, and the first stage's
// encoder for those that condition on latents (latent_encoder of the run's autoencoder.pt).
struct DenoiserLoadOptions {
  ConditionerSet::Factory conditioner_factory;
  std::function<torch::Tensor(const torch::Tensor&)> encode;
};

// `path` is a denoiser.pt or checkpoint.pt file, or a run's output folder (then its denoiser.pt, or its
// checkpoint.pt when training has not finished). Throws Error naming the file and what is wrong.
// A conditioned model needs options.conditioner_factory (Error otherwise).
LATENTLAB_API LoadedDenoiser load_denoiser(const std::filesystem::path& path, torch::Device device,
                                           const DenoiserLoadOptions& options = {});

// Writes the weights of `model` as a denoiser.pt with the run's resolved configuration and step
// (atomically), as `train-denoiser` does at the end and `import-weights` does for reference UNets; with
// the conditioners' weights, vocabularies and set-up when there are any.
LATENTLAB_API void write_denoiser_file(const std::filesystem::path& path, const DenoiserTrainConfig& config,
                                       std::int64_t step, nn::UNet& model,
                                       const ConditionerSet* conditioners = nullptr);

}  // namespace latentlab
