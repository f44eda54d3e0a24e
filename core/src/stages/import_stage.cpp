#include "latentlab/stages/import_stage.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>

#include "latentlab/autoencoder.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/reference_weights.hpp"
#include "latentlab/io/torch_file.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/params.hpp"

namespace latentlab::stages {

namespace {

using nlohmann::json;

const ParamSchema& import_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .string("import", std::nullopt,
                  "the reference checkpoint (a torch.save state dict or Lightning file)")
          .string("prefix", "auto",
                  "import the keys under this prefix (auto: first_stage_model. when present)")
          .number("scale_factor", 0.0,
                  "the latent scale factor (> 0 overrides the checkpoint's and config's)", Range::at_least(0))
          .boolean("allow_missing", false, "write the file even when keys are missing");
  return schema;
}

json read_architecture(const json& value, const std::string& where) {
  if (value.is_object()) return value;
  if (!value.is_string())
    throw ConfigError(where +
                      ": expected the architecture ({\"name\", \"params\"} or a reference config) or "
                      "the path of a JSON file holding it, got " +
                      value.dump());
  std::ifstream in(value.get<std::string>());
  if (!in) throw ConfigError(where + ": cannot open '" + value.get<std::string>() + "'");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw ConfigError(where + ": '" + value.get<std::string>() + "' is not valid JSON: " + e.what());
  }
}

std::int64_t global_step(const io::PickleValue& file) {
  const auto* step = file.find("global_step");
  return step != nullptr && step->kind == io::PickleValue::Kind::Int ? step->integer : 0;
}

}  // namespace

ImportConfig ImportConfig::from_json(const json& input, const std::string& path) {
  if (!input.is_object()) throw ConfigError(path + ": expected a JSON object, got " + input.dump());
  auto rest = input;
  ImportConfig c;
  if (!rest.contains("config"))
    throw ConfigError(path +
                      ".config: missing; give the checkpoint's architecture (a reference config as JSON, "
                      "or {\"name\": \"kl\", \"params\": {...}}), inline or as a file");
  c.architecture = read_architecture(rest.at("config"), path + ".config");
  rest.erase("config");
  const auto values = import_schema().validate(rest, path, "the import stage");
  c.checkpoint = values.get_string("import");
  c.prefix = values.get_string("prefix");
  c.scale_factor = values.get_float("scale_factor");
  c.allow_missing = values.get_bool("allow_missing");
  return c;
}

ImportStage::ImportStage(ImportConfig config, const registry::Registry& registry, const std::string& path)
    : config_(std::move(config)), registry_(registry), path_(path) {
  const auto reference = io::reference_autoencoder(config_.architecture);
  name_ = reference.choice.name;
  params_ =
      registry.resolved_params(Autoencoder::kKind, name_, reference.choice.params, path + ".config params");
  scale_factor_ = reference.scale_factor;
  if (!std::filesystem::is_regular_file(config_.checkpoint))
    throw ConfigError((path.empty() ? std::string("import-weights") : path + ".import") +
                      ": there is no file '" + config_.checkpoint + "'");
  checkpoint_sha256_ = registry.file_sha256(config_.checkpoint);
}

json ImportStage::config() const {
  // The checkpoint counts by its content.
  return {{"import", "sha256:" + checkpoint_sha256_},
          {"name", name_},
          {"params", params_},
          {"prefix", config_.prefix},
          {"scale_factor", config_.scale_factor},
          {"config_scale_factor", scale_factor_}};
}

json ImportStage::plugins() const {
  return {plugin_record(registry_, Autoencoder::kKind, name_)};
}

json ImportStage::run(const StageContext&, const std::filesystem::path& file_path) const {
  const auto file = io::read_torch_file(config_.checkpoint);
  const auto all = io::collect_tensors(file.find("state_dict") ? *file.find("state_dict") : file);
  if (all.empty())
    throw Error(config_.checkpoint + " holds no tensors under string keys; is it a state dict?");
  const auto autoencoder = registry_.create<Autoencoder>(name_, params_, path_ + ".config params");
  std::size_t dropped = 0;
  const auto tensors = io::select_prefix(all, config_.prefix, {"first_stage_model."}, dropped);
  const auto report = nn::load_state_dict(autoencoder->module(), tensors);
  spdlog::info("loaded {} tensors; {} other keys of the file left out", report.loaded, dropped);
  if (!report.mismatched.empty() || (!report.missing.empty() && !config_.allow_missing))
    throw Error(
        "cannot import " + config_.checkpoint + " with the architecture given:\n" + report.summary() +
        "\nCheck that the config describes the checkpoint's model (widths, ch_mult, z_channels, "
        "embed_dim, n_embed)" +
        (report.mismatched.empty() ? "; allow_missing keeps the model's own values for missing keys" : ""));
  if (!report.unexpected.empty() || !report.missing.empty())
    spdlog::warn(
        "keys that did not match (unexpected ones are ignored, missing ones keep their initial values):\n{}",
        report.summary());
  AutoencoderFileInfo info;
  info.name = name_;
  info.params = params_;
  info.step = global_step(file);
  info.source = "import-weights: " + config_.checkpoint;
  // The factor LDM used: the option, else the `scale_factor` buffer a LatentDiffusion checkpoint holds
  // (scale_by_std recomputes it at the start of training), else the config's value.
  double scale = scale_factor_;
  const auto saved =
      std::find_if(all.begin(), all.end(), [](const auto& item) { return item.first == "scale_factor"; });
  if (saved != all.end() && saved->second.numel() == 1) scale = saved->second.item<double>();
  if (config_.scale_factor > 0) scale = config_.scale_factor;
  if (scale > 0)
    info.rescaling = LatentRescaling::from_scale_factor(scale, autoencoder->latent_channels());
  else
    spdlog::warn(
        "no latent scale factor: stage 2 would see unscaled latents; give scale_factor (the reference LDM "
        "configs use 0.18215 for kl-f8), or let a latent stage measure it");
  std::filesystem::create_directories(std::filesystem::absolute(file_path).parent_path());
  write_autoencoder_file(file_path, info, *autoencoder);
  return {{"checkpoint", config_.checkpoint},
          {"sha256", checkpoint_sha256_},
          {"name", name_},
          {"f", autoencoder->downsampling_factor()},
          {"latent_channels", autoencoder->latent_channels()},
          {"loaded", report.loaded},
          {"left_out", dropped},
          {"missing", report.missing},
          {"unexpected", report.unexpected},
          {"rescaling", info.rescaling.to_json()},
          {"step", info.step}};
}

}  // namespace latentlab::stages
