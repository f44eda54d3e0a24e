#include "run_support.hpp"

#include <csignal>
#include <fstream>

#include "latentlab/error.hpp"

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

AutoencoderFactory autoencoder_factory(const registry::Registry& registry) {
  return [&registry](const std::string& name, const nlohmann::json& params) {
    return registry.create<Autoencoder>(name, params, "autoencoder.params");
  };
}

}  // namespace latentlab::host
