#pragma once
// Helpers the stage-1 and stage-2 trainers share (private to the core library).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/error.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/train/data_order.hpp"
#include "latentlab/train/loss_scaler.hpp"

namespace latentlab::detail {

// The run's loss scaler: on with `loss_scale` as its initial scale, or under fp16 (2^16) when that is
// 0; off (a pass-through) otherwise (docs/precision.md#fp16-and-loss-scaling).
inline LossScaler make_loss_scaler(double loss_scale, Precision precision) {
  if (loss_scale <= 0 && precision != Precision::fp16) return {};
  LossScalerOptions options;
  if (loss_scale > 0) options.init_scale = loss_scale;
  return LossScaler(options);
}

// After the backward passes of a step: unscales the gradients of `trained` and returns the norm of
// `clipped`'s, measured before clipping them to `max_norm`; or, when loss scaling found them
// overflowing, backs the scale off and returns nothing: the step is skipped (no optimiser step, no
// EMA update). Without loss scaling it always returns the norm, finite or not (the divergence guard's).
inline std::optional<double> unscale_and_clip(LossScaler& scaler, const std::vector<torch::Tensor>& trained,
                                              const std::vector<torch::Tensor>& clipped, double max_norm) {
  if (scaler.unscale(trained)) return torch::nn::utils::clip_grad_norm_(clipped, max_norm);
  scaler.update(false);
  return std::nullopt;
}

// Offsets that give each random stream of a run its own seed.
constexpr std::uint64_t kDropoutStream = 0x9e3779b97f4a7c15ULL;  // initial weights, then dropout
constexpr std::uint64_t kLatentStream = 0x94d049bb133111ebULL;   // autoencoder posterior samples

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
  // ... and in another precision: checkpoints hold float32 weights and optimiser state whatever the
  // precision (docs/precision.md#resuming).
  config.erase("precision");
  config.erase("latents");  // stage 1: the statistics at the end, not the training
  // Settings added by later versions, at the value that means what older checkpoints did: a checkpoint
  // written before them still resumes (docs/conditioning.md).
  if (config.contains("train") && config["train"].value("p_uncond", 0.0) == 0.0)
    config["train"].erase("p_uncond");
  if (config.contains("data") && config["data"].contains("params")) {
    auto& params = config["data"]["params"];
    if (params.value("captions", std::string()) == "none" ||
        params.value("captions", std::string("x")).empty())
      params.erase("captions");
  }
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

// Where a run stands, as every checkpoint records it.
struct Progress {
  std::int64_t step = 0;
  DataPosition position;
  double wall_time = 0;       // seconds of training, summed over resumptions
  bool eval_pending = false;  // interrupted at a step due for evaluation
};

// Writes the header every checkpoint starts with: format, the resolved config, the progress.
inline void write_checkpoint_header(torch::serialize::OutputArchive& archive, std::int64_t format,
                                    const nlohmann::json& resolved, const Progress& progress) {
  archive.write("format", c10::IValue(format));
  archive.write("config", c10::IValue(resolved.dump()));
  archive.write("step", c10::IValue(progress.step));
  archive.write("data_epoch", c10::IValue(progress.position.epoch));
  archive.write("data_offset", c10::IValue(progress.position.offset));
  archive.write("wall_time", c10::IValue(progress.wall_time));
  archive.write("eval_pending", c10::IValue(progress.eval_pending));
}

// Loads `path` (mapped to `device`) for resumption: checks its format and that it was written with the
// same configuration up to what may change (resumable_identity); returns its progress. Throws Error for
// a missing or unreadable file, ConfigError for another configuration.
inline Progress open_checkpoint(torch::serialize::InputArchive& archive, const std::filesystem::path& path,
                                torch::Device device, std::int64_t format, const nlohmann::json& resolved,
                                const std::string& output) {
  if (!std::filesystem::exists(path)) throw Error("no checkpoint to resume from at " + path.string());
  try {
    archive.load_from(path.string(), device);
  } catch (const std::exception& e) {
    throw Error("cannot read checkpoint " + path.string() +
                " (corrupt or not a LatentLab checkpoint): " + first_line(e.what()));
  }
  c10::IValue value;
  if (!archive.try_read("format", value) || !value.isInt() || value.toInt() != format)
    throw Error("checkpoint " + path.string() + " has another format than this build reads (" +
                std::to_string(format) + ")");
  archive.read("config", value);
  const auto saved = resumable_identity(nlohmann::json::parse(value.toStringRef()));
  const auto current = resumable_identity(resolved);
  if (saved != current)
    throw ConfigError("the checkpoint in " + output + " was written with a different configuration (" +
                      differences(saved, current) +
                      " differ; only train.steps, train.log_every, train.checkpoint_every and eval.every "
                      "may change); use another output folder or restore the config");
  Progress progress;
  progress.step = read_int(archive, "step");
  progress.position = {read_int(archive, "data_epoch"), read_int(archive, "data_offset")};
  archive.read("wall_time", value);
  progress.wall_time = value.toDouble();
  archive.read("eval_pending", value);
  progress.eval_pending = value.toBool();
  return progress;
}

}  // namespace latentlab::detail
