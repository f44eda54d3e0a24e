// `latentlab train-autoencoder CONFIG.json`: stage-1 training of a KL- or VQ-regularised autoencoder
// (Eq. 25), then its latent statistics and rescaling.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/train/autoencoder_trainer.hpp"
#include "latentlab/train/checkpoint_file.hpp"
#include "run_support.hpp"

namespace latentlab::host {

int run_train_autoencoder(const Args& args) {
  CommonOptions common;
  std::string config_path, output;
  std::int64_t steps = 0;
  bool resume = false;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("resume", po::bool_switch(&resume), "continue the run whose checkpoint is in the output folder")
      ("output", po::value(&output), "output folder (overrides the config's \"output\")")
      ("steps", po::value(&steps), "total optimiser steps (overrides train.steps)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("config", po::value(&config_path));
  po::variables_map vm;
  const std::string usage = "latentlab train-autoencoder CONFIG.json [--resume] [--output DIR] [--steps N]";
  if (!parse_command_line(
          "train-autoencoder", args, options, positional, usage,
          "Trains an autoencoder (stage 1, Eq. 25) as CONFIG.json describes (docs/autoencoders.md): "
          "checkpoints to OUTPUT/checkpoint.pt every train.checkpoint_every steps and on Ctrl-C/SIGTERM, "
          "logs OUTPUT/train.csv (losses) and OUTPUT/eval.csv (held-out PSNR, SSIM, codebook usage), and "
          "at the end writes OUTPUT/autoencoder.pt (weights, latent statistics, rescaling) and "
          "OUTPUT/latent_stats.json (statistics and the SNR_eff table).",
          vm))
    return kOk;
  if (config_path.empty()) throw ConfigError("train-autoencoder: which config? Usage: " + usage);

  apply_logging(common);
  nlohmann::json input = read_json_file(config_path);
  if (input.is_object() && !output.empty()) input["output"] = output;
  if (input.is_object() && vm.count("steps")) {
    if (steps < 1) throw ConfigError("--steps: must be >= 1, got " + std::to_string(steps));
    input["train"]["steps"] = steps;
  }
  auto config = AutoencoderTrainConfig::from_json(input);
  const auto checkpoint = std::filesystem::path(config.output) / "checkpoint.pt";
  if (!resume && std::filesystem::exists(checkpoint))
    throw ConfigError(config.output + " already holds a checkpoint (" + checkpoint.string() +
                      "); pass --resume to continue that run, or choose another output folder");
  if (resume && !std::filesystem::exists(checkpoint))
    throw ConfigError("--resume: there is no checkpoint at " + checkpoint.string() + " to resume from");

  // Everything is constructed (files opened, parameters validated) before any training starts.
  const auto registry = load_registry(common);
  apply_threads(common);
  AutoencoderTrainerParts parts;
  parts.train_data = registry->create<Dataset>(config.data.name, config.data.params, "data.params");
  parts.held_out = registry->create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
  // The image channels and the side attn_resolutions count from default to the data's.
  auto& ae_params = config.autoencoder.params;
  const auto& schema = registry->find(Autoencoder::kKind, config.autoencoder.name).info.schema;
  if (!ae_params.contains("in_channels") && schema.find("in_channels"))
    ae_params["in_channels"] = parts.train_data->channels();
  if (!ae_params.contains("resolution") && schema.find("resolution"))
    ae_params["resolution"] = parts.train_data->resolution();
  registry->create<Autoencoder>(config.autoencoder.name, ae_params, "autoencoder.params");  // fails early
  parts.make_autoencoder = [&] {
    return registry->create<Autoencoder>(config.autoencoder.name, ae_params, "autoencoder.params");
  };
  parts.snr_schedule =
      registry->create<Schedule>(config.snr_schedule.name, nlohmann::json::object(), "latents.snr_schedule");
  config.autoencoder.params =
      registry->resolved_params(Autoencoder::kKind, config.autoencoder.name, ae_params, "autoencoder.params");
  config.resolved["autoencoder"]["params"] = config.autoencoder.params;
  config.resolved["data"]["params"] =
      registry->resolved_params(Dataset::kKind, config.data.name, config.data.params, "data.params");

  CsvMetricSink sink(config.output);
  AutoencoderTrainer trainer(config, parts, sink);
  if (resume) trainer.resume();
  write_text_atomically(std::filesystem::path(config.output) / "config.json", config.resolved.dump(2) + "\n");
  TrainOutcome outcome;
  {
    StopSignals signals;
    outcome = trainer.run(signals.stop());
  }
  if (outcome.interrupted) {
    std::cerr << "train-autoencoder: interrupted at step " << outcome.step
              << "; continue with `latentlab train-autoencoder " << config_path << " --resume"
              << (output.empty() ? "" : " --output " + output) << "`\n";
    return kFailure;
  }
  std::cerr << "train-autoencoder: done, step " << outcome.step << "; results in " << config.output
            << " (autoencoder.pt, latent_stats.json, checkpoint.pt, train.csv, eval.csv, config.json)\n";
  return kOk;
}

}  // namespace latentlab::host
