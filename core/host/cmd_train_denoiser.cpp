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
  TrainingCommand command;
  if (!parse_training_command(
          "train-denoiser", args,
          "Trains the UNet denoiser (stage 2) as CONFIG.json describes (docs/training.md): "
          "checkpoints to OUTPUT/checkpoint.pt every train.checkpoint_every steps and on "
          "Ctrl-C/SIGTERM, logs OUTPUT/train.csv and OUTPUT/eval.csv (loss, loss_simple, ELBO in "
          "bits/dim), and writes the EMA weights to OUTPUT/denoiser.pt at the end. With \"autoencoder\": "
          "PATH in the config it learns that autoencoder's rescaled latents (docs/autoencoders.md).",
          command))
    return kOk;
  auto config = DenoiserTrainConfig::from_json(command.input);
  check_resume_state(command, config.output);
  // Everything is constructed (files opened, parameters validated) before any training starts.
  const auto registry = load_registry(command.common);
  apply_threads(command.common);
  DenoiserTrainerParts parts;
  const auto data_path = "data.params";
  parts.train_data = registry->create<Dataset>(config.data.name, config.data.params, data_path);
  parts.held_out = registry->create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
  parts.schedule =
      registry->create<Schedule>(config.schedule.name, config.schedule.params, "schedule.params");
  parts.weighting =
      registry->create<LossWeighting>(config.weighting.name, config.weighting.params, "weighting.params");
  if (!config.autoencoder.empty()) {  // on the CPU here; the trainer moves it to the run's device
    // A resumed run uses the copy in its folder: the latents it started with.
    const auto copy = std::filesystem::path(config.output) / "autoencoder.pt";
    const bool own = command.resume && std::filesystem::exists(copy);
    parts.codec = LatentCodec::load(own ? copy : std::filesystem::path(config.autoencoder),
                                    autoencoder_factory(*registry), torch::kCPU);
  }
  // Record the plugins' parameters with their defaults filled in.
  config.resolved["data"]["params"] =
      registry->resolved_params(Dataset::kKind, config.data.name, config.data.params, data_path);
  config.resolved["schedule"]["params"] = registry->resolved_params(
      Schedule::kKind, config.schedule.name, config.schedule.params, "schedule.params");
  config.resolved["weighting"]["params"] = registry->resolved_params(
      LossWeighting::kKind, config.weighting.name, config.weighting.params, "weighting.params");

  CsvMetricSink sink(config.output);
  DenoiserTrainer trainer(config, parts, sink);
  if (command.resume) trainer.resume();
  write_text_atomically(std::filesystem::path(config.output) / "config.json", config.resolved.dump(2) + "\n");

  return run_training("train-denoiser", command, config.output,
                      "denoiser.pt, checkpoint.pt, train.csv, eval.csv, config.json",
                      [&](const std::atomic<bool>& stop) { return trainer.run(stop); });
}

}  // namespace latentlab::host
