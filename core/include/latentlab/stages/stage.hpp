#pragma once
// The stage layer (docs/architecture.md): the typed pieces of the pipeline that both the single-run
// commands and the sweep engine run. A stage is built once from JSON (errors name the JSON path),
// resolves its plugins once through the registry (parameters validated, defaults filled in), has a
// content key, and runs into a folder of its own.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/io/sha256.hpp"
#include "latentlab/registry/registry.hpp"

namespace latentlab::stages {

// What a stage runs with: the registry its plugins come from, the device, and the stop flag that
// Ctrl-C/SIGTERM set (a training stage finishes its step, checkpoints and returns interrupted).
struct StageContext {
  const registry::Registry& registry;
  torch::Device device{torch::kCPU};
  const std::atomic<bool>* stop = nullptr;

  bool stop_requested() const { return stop && stop->load(); }
};

// How a stage run ended.
struct StageOutcome {
  bool interrupted = false;  // stopped by the stop flag; run again (resuming) to finish
  std::int64_t step = 0;     // training stages: the last completed step
};

// The content key of a stage: the SHA-256 (hex) of its kind, its resolved config, the keys of the
// stages it reads, its seed and the plugins it uses (name, version and the SHA-256 of the library
// file, so a rebuilt plugin is a new key). Objects are hashed with sorted keys: the same config gives
// the same key whatever order it was written in.
std::string content_key(const std::string& kind, const nlohmann::json& config,
                        const std::vector<std::string>& input_keys, std::uint64_t seed,
                        const nlohmann::json& plugins);

// content_key in two steps, for many stages that differ only in their inputs (a sweep's block shared
// by thousands of trials): everything but the inputs is serialised and hashed once, and each key()
// hashes only the rest. Gives exactly content_key's keys.
class ContentKeyer {
 public:
  ContentKeyer() = default;
  ContentKeyer(const std::string& kind, const nlohmann::json& config, std::uint64_t seed,
               const nlohmann::json& plugins);
  std::string key(const std::vector<std::string>& input_keys) const;

 private:
  io::Sha256 prefix_;   // has hashed the canonical JSON up to the inputs
  std::string suffix_;  // the canonical JSON after them
};

// A trainer's resolved config without what does not change its weights: the output folder, the device,
// the logging and checkpoint intervals, and `also` (keys of the top level). A precision of fp32 is left
// out too (keys from before the setting), any other stays: bf16 is another stage (docs/precision.md).
nlohmann::json without_run_settings(nlohmann::json resolved, const std::vector<std::string>& also = {});

// Records a plugin a stage uses, for content_key and for result files: {kind, name, library, version
// (the library's), sha256 (of the library file)}. Throws ConfigError (via the registry) when kind/name is not
// registered.
nlohmann::json plugin_record(const registry::Registry& registry, const std::string& kind,
                             const std::string& name);

// Where a stage's config value came from, for error messages: `path`.`key` (the spec's JSON path), or
// the single-run command's flag `--key` (underscores as dashes) when the stage was built with path "".
std::string config_where(const std::string& path, std::string key);

// The pieces every stage has.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* kind() const = 0;
  // The resolved configuration: what the key hashes and what results record.
  virtual nlohmann::json config() const = 0;
  // The plugins it uses (plugin_record of each).
  virtual nlohmann::json plugins() const = 0;
  virtual std::uint64_t seed() const = 0;

  // Keys of the stages whose artefacts it reads (set by whoever wires stages together).
  void set_input_keys(std::vector<std::string> keys) { input_keys_ = std::move(keys); }
  const std::vector<std::string>& input_keys() const { return input_keys_; }

  std::string key() const { return content_key(kind(), config(), input_keys_, seed(), plugins()); }

 private:
  std::vector<std::string> input_keys_;
};

}  // namespace latentlab::stages
