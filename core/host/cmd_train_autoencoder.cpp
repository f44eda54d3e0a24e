// `latentlab train-autoencoder CONFIG.json`: stage-1 training of a KL- or VQ-regularised autoencoder
// (Eq. 25), then its latent statistics and rescaling.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/stages/autoencoder_stage.hpp"
#include "latentlab/threads.hpp"
#include "run_support.hpp"

namespace latentlab::host {

int run_train_autoencoder(const Args& args) {
  TrainingCommand command;
  if (!parse_training_command(
          "train-autoencoder", args,
          "Trains an autoencoder (stage 1, Eq. 25) as CONFIG.json describes (docs/autoencoders.md): "
          "checkpoints to OUTPUT/checkpoint.pt every train.checkpoint_every steps and on Ctrl-C/SIGTERM, "
          "logs OUTPUT/train.csv (losses) and OUTPUT/eval.csv (held-out PSNR, SSIM, codebook usage), and "
          "at the end writes OUTPUT/autoencoder.pt (weights, latent statistics, rescaling) and "
          "OUTPUT/latent_stats.json (statistics and the SNR_eff table).",
          command))
    return kOk;
  const auto config = AutoencoderTrainConfig::from_json(command.input);
  check_resume_state(command, config.output);
  // Everything is validated (parameters, files) before any training starts.
  const auto registry = load_registry(command.common);
  apply_threads(command.common);
  const stages::AutoencoderStage stage(config, *registry);
  return run_training("train-autoencoder", command, config.output,
                      "autoencoder.pt, latent_stats.json, checkpoint.pt, train.csv, eval.csv, config.json",
                      [&](const std::atomic<bool>& stop) {
                        const stages::StageContext context{*registry, resolve_device(config.device), &stop};
                        return stage.run(context, config.output, command.resume);
                      });
}

}  // namespace latentlab::host
