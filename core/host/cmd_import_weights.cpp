// `latentlab import-weights CHECKPOINT --config ARCH.json --out FILE`: turns a reference PyTorch state dict
// or Lightning checkpoint (the LDM first stages kl-f4..f32 and vq-f4..f16, the LDM UNet) into a
// LatentLab autoencoder.pt or denoiser.pt, reporting missing, unexpected and mis-shaped keys.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/reference_weights.hpp"
#include "latentlab/io/torch_file.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/stages/import_stage.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/train/denoiser_file.hpp"
#include "run_support.hpp"

namespace latentlab::host {

namespace {

using nlohmann::json;

struct ImportOptions {
  std::string checkpoint, config, out, kind = "autoencoder", prefix = "auto";
  double scale_factor = 0;
  bool ema = false, allow_missing = false;
};

void check_report(const nn::StateDictReport& report, const ImportOptions& o, std::size_t dropped) {
  spdlog::info("loaded {} tensors; {} other keys of the file left out", report.loaded, dropped);
  if (!report.mismatched.empty() || (!report.missing.empty() && !o.allow_missing))
    throw Error(
        "cannot import " + o.checkpoint + " with the architecture of " + o.config + ":\n" + report.summary() +
        "\nCheck that --config describes the checkpoint's model (widths, ch_mult, z_channels, "
        "embed_dim, n_embed)" +
        (report.mismatched.empty() ? "; --allow-missing keeps the model's own values for missing keys" : ""));
  if (!report.unexpected.empty() || !report.missing.empty())
    spdlog::warn(
        "keys that did not match (unexpected ones are ignored, missing ones keep their initial "
        "values):\n{}",
        report.summary());
}

std::int64_t global_step(const io::PickleValue& file) {
  const auto* step = file.find("global_step");
  return step != nullptr && step->kind == io::PickleValue::Kind::Int ? step->integer : 0;
}

}  // namespace

int run_import_weights(const Args& args) {
  CommonOptions common;
  ImportOptions o;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("config", po::value(&o.config), "the architecture: a reference config (YAML converted to JSON) or "
       "{\"name\", \"params\"} (autoencoder); a train-denoiser config (unet)")
      ("out", po::value(&o.out), "the LatentLab file to write (autoencoder.pt or denoiser.pt)")
      ("kind", po::value(&o.kind)->default_value(o.kind), "autoencoder or unet")
      ("prefix", po::value(&o.prefix)->default_value(o.prefix),
       "import the keys under this prefix (auto: first_stage_model. or model.diffusion_model. when present)")
      ("scale-factor", po::value(&o.scale_factor),
       "autoencoder: the reference's latent scale_factor (e.g. 0.18215 for kl-f8) as the stage-2 rescaling")
      ("ema", po::bool_switch(&o.ema), "unet: import LDM's EMA weights (model_ema.*)")
      ("allow-missing", po::bool_switch(&o.allow_missing), "write the file even when keys are missing");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("checkpoint", po::value(&o.checkpoint));
  po::variables_map vm;
  const std::string usage =
      "latentlab import-weights CHECKPOINT --config ARCH.json --out FILE [--kind autoencoder|unet] "
      "[--scale-factor X] [--ema]";
  if (!parse_command_line(
          "import-weights", args, options, positional, usage,
          "Reads a PyTorch state dict or Lightning checkpoint (torch.save files; no Python needed) of the "
          "reference implementations and writes a LatentLab autoencoder.pt (for reconstruct, train-denoiser "
          "and sample) or denoiser.pt (for sample). Names the missing, unexpected and mis-shaped keys "
          "(docs/autoencoders.md).",
          vm))
    return kOk;
  if (o.checkpoint.empty() || o.config.empty() || o.out.empty())
    throw ConfigError("import-weights: CHECKPOINT, --config and --out are all needed. Usage: " + usage);
  if (o.kind != "autoencoder" && o.kind != "unet")
    throw ConfigError("--kind: expected autoencoder or unet, got '" + o.kind + "'");
  if (vm.count("scale-factor") && o.kind != "autoencoder")
    throw ConfigError("--scale-factor: only with --kind autoencoder");
  if (o.ema && o.kind != "unet") throw ConfigError("--ema: only with --kind unet");

  apply_logging(common);
  const auto config = read_json_file(o.config);
  const auto registry = load_registry(common);
  apply_threads(common);
  if (!std::filesystem::exists(o.checkpoint))
    throw ConfigError("import-weights: there is no file '" + o.checkpoint + "'");
  const auto file = io::read_torch_file(o.checkpoint);
  const auto all = io::collect_tensors(file.find("state_dict") ? *file.find("state_dict") : file);
  if (all.empty()) throw Error(o.checkpoint + " holds no tensors under string keys; is it a state dict?");
  std::size_t dropped = 0;

  if (o.kind == "unet") {
    auto denoiser_config = DenoiserTrainConfig::from_json(config);
    nn::UNet model(denoiser_config.unet);
    const auto tensors =
        o.ema ? io::ema_tensors(all, *model)
              : io::select_prefix(all, o.prefix, {"model.diffusion_model.", "diffusion_model."}, dropped);
    if (o.ema) dropped = all.size() - tensors.size();
    check_report(nn::load_state_dict(*model, tensors), o, dropped);
    std::filesystem::create_directories(std::filesystem::absolute(o.out).parent_path());
    write_denoiser_file(o.out, denoiser_config, global_step(file), model);
    std::cerr << "import-weights: wrote " << o.out << " (UNet, " << model->num_parameters()
              << " parameters)\n";
    return kOk;
  }

  // An autoencoder: the import stage, the code a sweep's {"autoencoder": {"import": ...}} runs.
  nlohmann::json spec = {
      {"import", o.checkpoint}, {"config", config}, {"prefix", o.prefix}, {"allow_missing", o.allow_missing}};
  if (vm.count("scale-factor")) spec["scale_factor"] = o.scale_factor;
  const stages::ImportStage stage(stages::ImportConfig::from_json(spec, "import-weights"), *registry, "");
  const auto report = stage.run(stages::StageContext{*registry}, o.out);
  std::cerr << "import-weights: wrote " << o.out << " (autoencoder '" << report["name"].get<std::string>()
            << "', f = " << report["f"].get<std::int64_t>() << ", "
            << report["latent_channels"].get<std::int64_t>() << " latent channels, rescaling "
            << report["rescaling"]["mode"].get<std::string>() << ")\n";
  return kOk;
}

}  // namespace latentlab::host
