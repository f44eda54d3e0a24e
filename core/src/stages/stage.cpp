#include "latentlab/stages/stage.hpp"

#include <algorithm>

#include "latentlab/io/sha256.hpp"

namespace latentlab::stages {

namespace {
// Bumped when what a stage writes changes meaning, so that old cache entries are not reused.
constexpr int kKeyFormat = 1;
}  // namespace

// The key hashes the canonical JSON (nlohmann::json keeps object keys sorted and prints numbers
// round-trip exact) of {"config", "format", "inputs", "kind", "plugins", "seed"}, in that order;
// ContentKeyer writes the same bytes in two parts around "inputs".
ContentKeyer::ContentKeyer(const std::string& kind, const nlohmann::json& config, std::uint64_t seed,
                           const nlohmann::json& plugins) {
  prefix_.update("{\"config\":" + config.dump() + ",\"format\":" + std::to_string(kKeyFormat) +
                 ",\"inputs\":");
  suffix_ = ",\"kind\":" + nlohmann::json(kind).dump() + ",\"plugins\":" + plugins.dump() +
            ",\"seed\":" + nlohmann::json(seed).dump() + "}";
}

std::string ContentKeyer::key(const std::vector<std::string>& input_keys) const {
  auto hasher = prefix_;
  hasher.update(nlohmann::json(input_keys).dump() + suffix_);
  return hasher.hex_digest();
}

std::string content_key(const std::string& kind, const nlohmann::json& config,
                        const std::vector<std::string>& input_keys, std::uint64_t seed,
                        const nlohmann::json& plugins) {
  return ContentKeyer(kind, config, seed, plugins).key(input_keys);
}

nlohmann::json without_run_settings(nlohmann::json resolved, const std::vector<std::string>& also) {
  for (const char* key : {"output", "device"}) resolved.erase(key);
  for (const auto& key : also) resolved.erase(key);
  // fp32 is what every stage computed before the setting existed: its keys stay those of older caches.
  if (resolved.value("precision", std::string("fp32")) == "fp32") resolved.erase("precision");
  for (const char* key : {"log_every", "checkpoint_every"}) resolved["train"].erase(key);
  return resolved;
}

nlohmann::json plugin_record(const registry::Registry& registry, const std::string& kind,
                             const std::string& name) {
  const auto& entry = registry.find(kind, name);
  return {{"kind", kind},
          {"name", name},
          {"library", entry.library.filename().string()},
          {"version", entry.library_version},
          {"sha256", registry.library_sha256(entry.library)}};
}

std::string config_where(const std::string& path, std::string key) {
  if (!path.empty()) return path + "." + key;
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

}  // namespace latentlab::stages
