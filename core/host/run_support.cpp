#include "run_support.hpp"

#include <csignal>
#include <fstream>
#include <iostream>

#include "latentlab/error.hpp"
#include "latentlab/precision.hpp"

namespace latentlab::host {

namespace {

// Set by SIGINT/SIGTERM; a trainer finishes its step, checkpoints and returns.
std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int signal) {
  stop_requested.store(true);
  std::signal(signal, SIG_DFL);  // a second Ctrl-C kills at once
}

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file '" + path + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError("config file '" + path + "' is not valid JSON: " + e.what());
  }
}

StopSignals::StopSignals() {
  stop_requested.store(false);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

const std::atomic<bool>& StopSignals::stop() const {
  return stop_requested;
}

bool parse_training_command(const std::string& name, const Args& args, const std::string& summary,
                            TrainingCommand& command) {
  std::int64_t steps = 0;
  std::string precision;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("resume", po::bool_switch(&command.resume), "continue the run whose checkpoint is in the output folder")
      ("output", po::value(&command.output), "output folder (overrides the config's \"output\")")
      ("steps", po::value(&steps), "total optimiser steps (overrides train.steps)")
      ("precision", po::value(&precision),
       "fp32, bf16, fp16 (CUDA) or auto (bf16 where the device multiplies it natively): the forward passes "
       "under autocast (overrides \"precision\"; docs/precision.md)");
  // clang-format on
  add_common_options(options, command.common);
  Positionals positional;
  positional.add("config", po::value(&command.config_path));
  po::variables_map vm;
  const std::string usage =
      "latentlab " + name + " CONFIG.json [--resume] [--output DIR] [--steps N] [--precision fp32|bf16|auto]";
  if (!parse_command_line(name, args, options, positional, usage, summary, vm)) return false;
  if (command.config_path.empty()) throw ConfigError(name + ": which config? Usage: " + usage);
  apply_logging(command.common);
  command.input = read_json_file(command.config_path);
  if (command.input.is_object() && !command.output.empty()) command.input["output"] = command.output;
  if (command.input.is_object() && vm.count("steps")) {
    if (steps < 1) throw ConfigError("--steps: must be >= 1, got " + std::to_string(steps));
    command.input["train"]["steps"] = steps;
  }
  if (command.input.is_object() && vm.count("precision"))
    // Checked as the flag now; "auto" is resolved with the config's device (parse_run_keys).
    command.input["precision"] =
        precision == "auto" ? precision
                            : to_string(parse_precision_setting(precision, torch::kCPU, "--precision"));
  return true;
}

void check_resume_state(const TrainingCommand& command, const std::string& output) {
  const auto checkpoint = std::filesystem::path(output) / "checkpoint.pt";
  if (!command.resume && std::filesystem::exists(checkpoint))
    throw ConfigError(output + " already holds a checkpoint (" + checkpoint.string() +
                      "); pass --resume to continue that run, or choose another output folder");
  if (command.resume && !std::filesystem::exists(checkpoint))
    throw ConfigError("--resume: there is no checkpoint at " + checkpoint.string() + " to resume from");
}

int run_training(const std::string& name, const TrainingCommand& command, const std::string& output,
                 const std::string& files, const std::function<stages::StageOutcome(const std::atomic<bool>&)>& run) {
  stages::StageOutcome outcome;
  {
    StopSignals signals;
    outcome = run(signals.stop());
  }
  if (outcome.interrupted) {
    std::cerr << name << ": interrupted at step " << outcome.step << "; continue with `latentlab " << name
              << " " << command.config_path << " --resume"
              << (command.output.empty() ? "" : " --output " + command.output) << "`\n";
    return kFailure;
  }
  std::cerr << name << ": done, step " << outcome.step << "; results in " << output << " (" << files << ")\n";
  return kOk;
}

AutoencoderFactory autoencoder_factory(const registry::Registry& registry) {
  return [&registry](const std::string& name, const nlohmann::json& params) {
    return registry.create<Autoencoder>(name, params, "autoencoder.params").object;
  };
}

}  // namespace latentlab::host
