#include "latentlab/io/reference_weights.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "latentlab/error.hpp"

namespace latentlab::io {

using nlohmann::json;

// The reference config (the YAML as JSON) or ours, as {name, params} of an autoencoder plugin, and the
// LatentDiffusion scale_factor when the config has one.
ReferenceAutoencoder reference_autoencoder(json config) {
  if (!config.is_object()) throw ConfigError("--config: expected a JSON object");
  if (config.contains("model")) config = config.at("model");
  if (!config.is_object()) throw ConfigError("--config: \"model\" must be a JSON object");
  double scale_factor = 0;
  if (config.contains("target") && config.at("target").is_string()) {
    const auto target = config.at("target").get<std::string>();
    auto params = config.value("params", json::object());
    if (target.find("LatentDiffusion") != std::string::npos) {  // a whole LDM: its first stage
      scale_factor = params.value("scale_factor", 0.0);
      if (!params.contains("first_stage_config"))
        throw ConfigError("--config: the LatentDiffusion config has no first_stage_config");
      if (!params.at("first_stage_config").is_object())
        throw ConfigError("--config: first_stage_config must be a JSON object");
      params = params.at("first_stage_config").value("params", json::object());
      config = {{"target", "first_stage"}, {"params", params}};
      config["target"] = params.contains("n_embed") ? "VQModel" : "AutoencoderKL";
    }
    const bool vq = config.at("target").get<std::string>().find("VQ") != std::string::npos;
    if (!params.contains("ddconfig"))
      throw ConfigError("--config: the reference config has no params.ddconfig");
    const auto& dd = params.at("ddconfig");
    if (!dd.is_object()) throw ConfigError("--config: params.ddconfig must be a JSON object");
    // Variants of the reference networks LatentLab does not build: refuse rather than import wrongly.
    if (dd.contains("attn_type") && dd.at("attn_type") != "vanilla" && dd.at("attn_type") != "none")
      throw ConfigError("--config: ddconfig.attn_type = " + dd.at("attn_type").dump() +
                        " is not supported (LatentLab builds \"vanilla\" and \"none\")");
    const std::vector<std::pair<const char*, json>> unsupported = {
        {"use_linear_attn", false}, {"resamp_with_conv", true}, {"tanh_out", false}, {"give_pre_end", false}};
    for (const auto& [key, supported] : unsupported)
      if (dd.contains(key) && dd.at(key) != supported)
        throw ConfigError("--config: ddconfig." + std::string(key) + " = " + dd.at(key).dump() +
                          " is not supported (LatentLab builds the reference's default, " + supported.dump() +
                          ")");
    if (dd.value("double_z", !vq) == vq)
      throw ConfigError("--config: ddconfig.double_z must be " + std::string(vq ? "false" : "true") +
                        " for a " + (vq ? "VQ" : "KL") + " autoencoder");
    if (dd.contains("out_ch") && dd.contains("in_channels") && dd.at("out_ch") != dd.at("in_channels"))
      throw ConfigError("--config: ddconfig.out_ch must equal in_channels");
    PluginChoice choice{vq ? "vq" : "kl", json::object()};
    for (const char* key : {"ch", "ch_mult", "num_res_blocks", "attn_resolutions", "resolution",
                            "in_channels", "z_channels", "dropout", "norm_groups", "attn_type"})
      if (dd.contains(key)) choice.params[key] = dd.at(key);
    for (const char* key : {"embed_dim", "n_embed"})
      if (params.contains(key)) choice.params[key] = params.at(key);
    // taming's VectorQuantizer2 as the reference uses it (legacy=True): beta on the codebook term.
    if (vq) choice.params["legacy_loss"] = true;
    if (params.contains("lossconfig") && params.at("lossconfig").contains("params")) {
      const auto& loss = params.at("lossconfig").at("params");
      if (!vq && loss.contains("kl_weight")) choice.params["kl_weight"] = loss.at("kl_weight");
      if (vq && loss.contains("codebook_weight"))
        choice.params["codebook_weight"] = loss.at("codebook_weight");
    }
    return {choice, scale_factor};
  }
  if (!config.contains("name") || !config.at("name").is_string())
    throw ConfigError(
        "--config: expected an autoencoder {\"name\": \"kl\"|\"vq\", \"params\": {...}} or a reference "
        "config "
        "({\"target\": \"ldm.models.autoencoder.AutoencoderKL\", \"params\": {\"embed_dim\": ..., "
        "\"ddconfig\": "
        "{...}}}, the YAML converted to JSON)");
  return {PluginChoice{config.at("name").get<std::string>(), config.value("params", json::object())},
          config.value("scale_factor", 0.0)};
}

// The tensors under `prefix` with it removed; "auto" picks the first of the reference prefixes present.
nn::NamedTensors select_prefix(const nn::NamedTensors& all, std::string prefix,
                               const std::vector<std::string>& candidates, std::size_t& dropped) {
  if (prefix == "auto") {
    const auto present = [&](const std::string& candidate) {
      return std::any_of(all.begin(), all.end(),
                         [&](const auto& item) { return item.first.rfind(candidate, 0) == 0; });
    };
    const auto match = std::find_if(candidates.begin(), candidates.end(), present);
    prefix = match == candidates.end() ? std::string() : *match;
  }
  nn::NamedTensors out;
  for (const auto& [key, tensor] : all) {
    if (key.rfind(prefix, 0) != 0) {
      ++dropped;
      continue;
    }
    const auto name = key.substr(prefix.size());
    // Training-only state of the reference first stages (LPIPS, discriminator, logvar).
    if (name.rfind("loss.", 0) == 0) {
      ++dropped;
      continue;
    }
    out.emplace_back(name, tensor);
  }
  if (!prefix.empty()) spdlog::info("importing the keys under '{}'", prefix);
  return out;
}

// LDM's LitEma stores model_ema.<name without dots>; maps them to the model's names.
nn::NamedTensors ema_tensors(const nn::NamedTensors& all, const torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> by_flat_name;
  for (const auto& [key, tensor] : all)
    if (key.rfind("model_ema.", 0) == 0) by_flat_name[key.substr(10)] = tensor;
  if (by_flat_name.empty())
    throw ConfigError("--ema: the checkpoint holds no model_ema.* keys (LDM's EMA weights); leave --ema out");
  nn::NamedTensors out;
  for (const auto& [name, tensor] : nn::state_dict(model)) {
    std::string flat = "diffusion_model" + name;
    flat.erase(std::remove(flat.begin(), flat.end(), '.'), flat.end());
    const auto at = by_flat_name.find(flat);
    if (at != by_flat_name.end()) out.emplace_back(name, at->second);
  }
  return out;
}

}  // namespace latentlab::io
