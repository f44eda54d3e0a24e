// `latentlab train-denoiser CONFIG.json`: stage-2 training of the UNet denoiser, in pixel space or on an
// autoencoder's latents.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/train/checkpoint_file.hpp"
#include "latentlab/train/denoiser_trainer.hpp"
#include "run_support.hpp"

namespace latentlab::host {

int run_train_denoiser(const Args& args) {
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
  const std::string usage = "latentlab train-denoiser CONFIG.json [--resume] [--output DIR] [--steps N]";
  if (!parse_command_line(
          "train-denoiser", args, options, positional, usage,
          "Trains the UNet denoiser (stage 2) as CONFIG.json describes (docs/training.md): "
          "checkpoints to OUTPUT/checkpoint.pt every train.checkpoint_every steps and on "
          "Ctrl-C/SIGTERM, logs OUTPUT/train.csv and OUTPUT/eval.csv (loss, loss_simple, ELBO in "
          "bits/dim), and writes the EMA weights to OUTPUT/denoiser.pt at the end. With \"autoencoder\": "
          "PATH in the config it learns that autoencoder's rescaled latents (docs/autoencoders.md).",
          vm))
    return kOk;
  if (config_path.empty()) throw ConfigError("train-denoiser: which config? Usage: " + usage);

  apply_logging(common);
  nlohmann::json input = read_json_file(config_path);
  if (input.is_object() && !output.empty()) input["output"] = output;
  if (input.is_object() && vm.count("steps")) {
    if (steps < 1) throw ConfigError("--steps: must be >= 1, got " + std::to_string(steps));
    input["train"]["steps"] = steps;
  }
  auto config = DenoiserTrainConfig::from_json(input);
  const auto checkpoint = std::filesystem::path(config.output) / "checkpoint.pt";
  if (!resume && std::filesystem::exists(checkpoint))
    throw ConfigError(config.output + " already holds a checkpoint (" + checkpoint.string() +
                      "); pass --resume to continue that run, or choose another output folder");
  if (resume && !std::filesystem::exists(checkpoint))
    throw ConfigError("--resume: there is no checkpoint at " + checkpoint.string() + " to resume from");

  // Everything is constructed (files opened, parameters validated) before any training starts.
  const auto registry = load_registry(common);
  apply_threads(common);
  DenoiserTrainerParts parts;
  const auto data_path = "data.params";
  parts.train_data = registry->create<Dataset>(config.data.name, config.data.params, data_path);
  parts.held_out = registry->create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
  parts.schedule =
      registry->create<Schedule>(config.schedule.name, config.schedule.params, "schedule.params");
  parts.weighting =
      registry->create<LossWeighting>(config.weighting.name, config.weighting.params, "weighting.params");
  if (!config.autoencoder.empty())  // on the CPU here; the trainer moves it to the run's device
    parts.codec = LatentCodec::load(config.autoencoder, autoencoder_factory(*registry), torch::kCPU);
  // Record the plugins' parameters with their defaults filled in.
  config.resolved["data"]["params"] =
      registry->resolved_params(Dataset::kKind, config.data.name, config.data.params, data_path);
  config.resolved["schedule"]["params"] = registry->resolved_params(
      Schedule::kKind, config.schedule.name, config.schedule.params, "schedule.params");
  config.resolved["weighting"]["params"] = registry->resolved_params(
      LossWeighting::kKind, config.weighting.name, config.weighting.params, "weighting.params");

  CsvMetricSink sink(config.output);
  DenoiserTrainer trainer(config, parts, sink);
  if (resume) trainer.resume();
  write_text_atomically(std::filesystem::path(config.output) / "config.json", config.resolved.dump(2) + "\n");

  TrainOutcome outcome;
  {
    StopSignals signals;
    outcome = trainer.run(signals.stop());
  }
  if (outcome.interrupted) {
    std::cerr << "train-denoiser: interrupted at step " << outcome.step
              << "; continue with `latentlab train-denoiser " << config_path << " --resume"
              << (output.empty() ? "" : " --output " + output) << "`\n";
    return kFailure;
  }
  std::cerr << "train-denoiser: done, step " << outcome.step << "; results in " << config.output
            << " (denoiser.pt, checkpoint.pt, train.csv, eval.csv, config.json)\n";
  return kOk;
}

}  // namespace latentlab::host
