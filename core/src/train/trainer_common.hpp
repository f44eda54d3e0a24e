#pragma once
// Helpers the stage-1 and stage-2 trainers share (private to the core library).
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/strings.hpp"

namespace latentlab::detail {

using Clock = std::chrono::steady_clock;

inline std::string duration_text(double seconds) {
  if (!std::isfinite(seconds)) return "?";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  if (s >= 3600) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

// The parts of a resolved config that may change between an interrupted run and its resumption.
inline nlohmann::json resumable_identity(nlohmann::json config) {
  for (const char* key : {"steps", "log_every", "checkpoint_every"}) config["train"].erase(key);
  config["eval"].erase("every");
  config.erase("output");  // a run folder may be moved or named differently
  config.erase("device");  // a run may continue on another device
  return config;
}

// The first differences between two configs, as JSON paths ("/train/lr").
inline std::string differences(const nlohmann::json& a, const nlohmann::json& b) {
  std::vector<std::string> paths;
  for (const auto& op : nlohmann::json::diff(a, b)) paths.push_back(op.at("path").get<std::string>());
  if (paths.size() > 8) paths.resize(8);
  return join(paths);
}

inline std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  archive.read(key, value);
  return value.toInt();
}

// The default CPU generator's state (dropout draws), saved with checkpoints.
inline torch::Tensor default_generator_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

inline void set_default_generator_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state.to(torch::kCPU));
}

}  // namespace latentlab::detail
