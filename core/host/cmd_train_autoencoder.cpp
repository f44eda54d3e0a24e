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
  auto config = AutoencoderTrainConfig::from_json(command.input);
  check_resume_state(command, config.output);
  // Everything is constructed (files opened, parameters validated) before any training starts.
  const auto registry = load_registry(command.common);
  apply_threads(command.common);
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
  parts.make_autoencoder = [&registry, &config] {
    return registry->create<Autoencoder>(config.autoencoder.name, config.autoencoder.params,
                                         "autoencoder.params");
  };
  parts.snr_schedule = registry->create<Schedule>(config.snr_schedule.name, config.snr_schedule.params,
                                                  "latents.snr_schedule.params");
  // Validated here, before anything is built; the trainer builds it once the seed is set.
  config.autoencoder.params =
      registry->resolved_params(Autoencoder::kKind, config.autoencoder.name, ae_params, "autoencoder.params");
  config.resolved["autoencoder"]["params"] = config.autoencoder.params;
  config.resolved["data"]["params"] =
      registry->resolved_params(Dataset::kKind, config.data.name, config.data.params, "data.params");

  CsvMetricSink sink(config.output);
  AutoencoderTrainer trainer(config, parts, sink);
  if (command.resume) trainer.resume();
  write_text_atomically(std::filesystem::path(config.output) / "config.json", config.resolved.dump(2) + "\n");
  return run_training("train-autoencoder", command, config.output,
                      "autoencoder.pt, latent_stats.json, checkpoint.pt, train.csv, eval.csv, config.json",
                      [&](const std::atomic<bool>& stop) { return trainer.run(stop); });
}

}  // namespace latentlab::host
