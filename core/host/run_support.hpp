#pragma once
// Pieces the training commands and the commands that read trained models share.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "latentlab/registry/registry.hpp"
#include "latentlab/train/autoencoder_file.hpp"

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

// Builds autoencoder plugins through the registry, validating their parameters ("autoencoder.params").
AutoencoderFactory autoencoder_factory(const registry::Registry& registry);

}  // namespace latentlab::host
