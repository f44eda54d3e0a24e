#pragma once
// Mapping the reference implementations' checkpoints onto LatentLab modules: the architecture from a
// reference config (the YAML's model section as JSON), the keys under a prefix, and LDM's EMA copies.
#include <cstddef>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/export.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/plugin_choice.hpp"

namespace latentlab::io {

struct ReferenceAutoencoder {
  PluginChoice choice;      // {"kl" | "vq", params}
  double scale_factor = 0;  // a LatentDiffusion config's scale_factor; 0 when it has none
};

// Reads an autoencoder architecture from either LatentLab's {"name", "params"[, "scale_factor"]} or a
// reference config: {"target": "ldm.models.autoencoder.AutoencoderKL" | "...VQModel[Interface]",
// "params": {"embed_dim", "n_embed", "ddconfig": {...}, "lossconfig": {...}}}, a LatentDiffusion config
// (its first_stage_config and scale_factor), optionally wrapped in {"model": ...}. Throws ConfigError
// naming what is missing or inconsistent.
LATENTLAB_API ReferenceAutoencoder reference_autoencoder(nlohmann::json config);

// The tensors whose keys start with `prefix`, with it removed, leaving out the reference first stage's
// training-only `loss.*` keys. prefix "auto": the first of `candidates` that some key starts with, or
// "" when none does. `left_out` counts the keys not returned.
LATENTLAB_API nn::NamedTensors select_prefix(const nn::NamedTensors& all, std::string prefix,
                                             const std::vector<std::string>& candidates,
                                             std::size_t& left_out);

// LDM's LitEma keeps `model_ema.<name without dots>` for model.diffusion_model.<name>: the EMA tensors
// under `module`'s names. Throws ConfigError when the file has no model_ema.* keys.
LATENTLAB_API nn::NamedTensors ema_tensors(const nn::NamedTensors& all, const torch::nn::Module& module);

}  // namespace latentlab::io
