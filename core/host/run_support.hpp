#pragma once
// Pieces the training commands and the commands that read trained models share.
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/registry/registry.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/stages/stage.hpp"

namespace latentlab::host {

// Parses a JSON config file; ConfigError naming the file when it is missing or not JSON.
nlohmann::json read_json_file(const std::string& path);

// While alive, SIGINT and SIGTERM set stop() instead of killing the process (a second one kills).
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  const std::atomic<bool>& stop() const;
};

// The command line `train-denoiser` and `train-autoencoder` share: CONFIG.json [--resume]
// [--output DIR] [--steps N] and the common options.
struct TrainingCommand {
  CommonOptions common;
  std::string config_path, output;
  bool resume = false;
  nlohmann::json input;  // the config file with --output, --steps and --precision applied
};

// Parses it (`summary` for --help) and reads the config file; false when --help was printed. Applies
// --log-level. Throws ConfigError.
bool parse_training_command(const std::string& name, const Args& args, const std::string& summary,
                            TrainingCommand& command);

// The output folder must hold a checkpoint exactly when --resume is given (ConfigError otherwise).
void check_resume_state(const TrainingCommand& command, const std::string& output);

// Runs `run` with Ctrl-C/SIGTERM turned into a stop request, prints how it ended (and how to continue
// an interrupted run) and returns the exit status.
int run_training(const std::string& name, const TrainingCommand& command, const std::string& output,
                 const std::string& files, const std::function<stages::StageOutcome(const std::atomic<bool>&)>& run);

// Builds autoencoder plugins through the registry, validating their parameters ("autoencoder.params").
AutoencoderFactory autoencoder_factory(const registry::Registry& registry);

}  // namespace latentlab::host
