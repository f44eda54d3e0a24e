// `latentlab train-denoiser CONFIG.json`: stage-2 training of the UNet denoiser, in pixel space or on an
// autoencoder's latents.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/stages/denoiser_stage.hpp"
#include "latentlab/threads.hpp"
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
  const auto config = DenoiserTrainConfig::from_json(command.input);
  check_resume_state(command, config.output);
  // Everything is validated (parameters, files) before any training starts.
  const auto registry = load_registry(command.common);
  apply_threads(command.common);
  const stages::DenoiserStage stage(config, *registry);
  return run_training("train-denoiser", command, config.output,
                      "denoiser.pt, checkpoint.pt, train.csv, eval.csv, config.json",
                      [&](const std::atomic<bool>& stop) {
                        const stages::StageContext context{*registry, resolve_device(config.device), &stop};
                        return stage.run(context, config.output, command.resume);
                      });
}

}  // namespace latentlab::host
