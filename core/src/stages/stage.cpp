#include "latentlab/stages/stage.hpp"

#include <algorithm>

#include "latentlab/io/sha256.hpp"

namespace latentlab::stages {

namespace {
// Bumped when what a stage writes changes meaning, so that old cache entries are not reused.
constexpr int kKeyFormat = 1;
}  // namespace

std::string content_key(const std::string& kind, const nlohmann::json& config,
                        const std::vector<std::string>& input_keys, std::uint64_t seed,
                        const nlohmann::json& plugins) {
  // nlohmann::json keeps object keys sorted, so dump() is canonical; numbers print round-trip exact.
  const nlohmann::json identity = {{"format", kKeyFormat}, {"kind", kind}, {"config", config},
                                   {"inputs", input_keys}, {"seed", seed}, {"plugins", plugins}};
  io::Sha256 hasher;
  hasher.update(identity.dump());
  return hasher.hex_digest();
}

nlohmann::json without_run_settings(nlohmann::json resolved, const std::vector<std::string>& also) {
  for (const char* key : {"output", "device"}) resolved.erase(key);
  for (const auto& key : also) resolved.erase(key);
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
