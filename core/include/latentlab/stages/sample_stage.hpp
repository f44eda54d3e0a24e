#pragma once
// The sample stage: draws samples from a trained denoiser with a sampler and a guider plugin, decodes
// latents with the run's autoencoder, and writes samples.npy (float32 [N, C, H, W] in [-1, 1]),
// latents.npy (latent models), samples.png (a grid) and samples.json (how they were made). A
// conditioned model's samples are conditioned on requested classes, captions, or the held-out images
// (super-resolution, inpainting), which it records for the task metrics: conditions.json, labels.npy,
// reference.npy and masks.npy (docs/conditioning.md).
// `latentlab sample` and the sweep engine's eval entries run it (docs/samplers.md).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/guider.hpp"
#include "latentlab/plugin_choice.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/stages/stage.hpp"

namespace latentlab::stages {

struct SampleConfig {
  PluginChoice sampler{"ddim", nlohmann::json::object()};
  PluginChoice guider{"none", nlohmann::json::object()};
  std::int64_t steps = 50;  // the sampler's step budget
  std::int64_t count = 16;
  std::int64_t batch = 16;       // samples per sampler run
  std::uint64_t seed = 0;        // z_T of sample i from its own seed (seed, i); the samplers' noise from seed
  std::string clip_x0 = "auto";  // on, off, auto: on in pixel space
  std::int64_t label = -1;       // class of a class-conditional model; -1: cycle through the classes
  // Captions of a text-conditional model, cycled through; empty: captions naming the classes with
  // templates no training caption used (docs/conditioning.md).
  std::vector<std::string> prompts;
  std::int64_t latent_height = 0, latent_width = 0;  // 0: the training size
  std::int64_t columns = 0;                          // of the PNG grid; 0: about sqrt(count)
  // Files: post-hoc guidance's observation y and mask, and z_T given by the user ([count, c, h, w]
  // float .npy, as diffusers' `latents=`), for interpolation, image-to-image and reproducing another
  // framework's samples.
  std::string target, mask, init_latents;
  // Autocast precision of the UNet, the conditioners and the decoder (docs/precision.md); the sampler's
  // arithmetic stays float64/float32.
  Precision precision = Precision::fp32;

  // Keys: sampler {name, params}, guider {name, params}, steps, count, batch, seed, clip_x0, class,
  // prompts (a caption or a list), latent_size (SIZE or [H, W]), columns, target, mask, init_latents,
  // precision ("fp32", "bf16", "fp16"; to_json leaves fp32 out, so older keys stay valid). Throws
  // ConfigError naming `path`.KEY for unknown keys, wrong types and bad values.
  static SampleConfig from_json(const nlohmann::json& json, const std::string& path);
  nlohmann::json to_json() const;
};

// What a run of the stage measured (also in samples.json).
struct SampleResult {
  std::int64_t count = 0;
  std::int64_t nfe = 0;           // network evaluations per sampler run
  double seconds = 0;             // sampling and decoding
  std::filesystem::path samples;  // samples.npy
};

class SampleStage : public Stage {
 public:
  // Validates the sampler's and guider's parameters (errors name `path`.sampler.params.KEY, or
  // sampler.KEY when `path` is empty, as the flags of `latentlab sample` do) and the files named.
  SampleStage(SampleConfig config, const registry::Registry& registry, const std::string& path = "sample");

  const char* kind() const override { return "sample"; }
  nlohmann::json config() const override;
  nlohmann::json plugins() const override;
  std::uint64_t seed() const override { return config_.seed; }
  const SampleConfig& settings() const { return config_; }

  // Samples the denoiser in `denoiser` (a denoiser.pt or checkpoint.pt, or a `train-denoiser` folder)
  // into `out`. Everything (the model, the step budget, sizes, files, the guider's inputs) is checked
  // before sampling starts: ConfigError naming the problem.
  SampleResult run(const StageContext& context, const std::filesystem::path& denoiser,
                   const std::filesystem::path& out) const;

 private:
  SampleConfig config_;
  const registry::Registry& registry_;
  std::string path_;  // where errors point: a spec's JSON path, or "" for the flags of `latentlab sample`
  registry::Instance<Sampler> sampler_;
  registry::Instance<Guider> guider_;
};

}  // namespace latentlab::stages
