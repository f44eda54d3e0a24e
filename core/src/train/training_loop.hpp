#pragma once
// The training loop both trainers run (private to the core library): the step counter, the divergence
// guard, the "train" series, progress lines with rate and ETA, evaluations (postponed by an interrupt
// to the resumed run), checkpoints, the stop flag, and the final weights. A trainer supplies what one
// step, an evaluation, a checkpoint and the end are; docs/training.md describes the behaviour.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "latentlab/train/metric_sink.hpp"
#include "latentlab/train/train_outcome.hpp"

namespace latentlab::detail {

// Where a run stands; the trainer's checkpoints save and restore it.
struct LoopState {
  std::int64_t step = 0;              // the last completed step
  std::int64_t last_checkpoint = -1;  // step of the checkpoint on disk, -1: none yet
  double wall_time = 0;               // seconds of training, summed over resumptions
  bool eval_pending = false;          // interrupted at a step due for evaluation: evaluate on resumption
};

struct LoopSettings {
  std::int64_t steps = 0, log_every = 1, checkpoint_every = 1, eval_every = 0;  // eval 0: at the end only
  std::string checkpoint;                                                       // its path, for messages
  std::string progress_name;    // the second number of the progress line ("loss_simple", "L1")
  std::string divergence_hint;  // what to change when the loss stops being finite
};

// One optimiser step, in two halves: `compute` makes the gradients and returns the loss, the
// gradient norm (after clipping's measurement) and the values to log; the loop checks they are finite
// (DivergenceError otherwise, leaving the last checkpoint untouched) and then calls `apply`, which
// steps the optimisers and may add values (a discriminator's update). A skipped step (loss scaling's
// overflow) is not applied; kMaxSkippedSteps of them in a row are a divergence.
constexpr int kMaxSkippedSteps = 32;
struct StepReport {
  double loss = 0;
  double grad_norm = 0;
  // fp16 loss scaling found inf/NaN gradients: the step is counted and logged but not applied (no
  // optimiser step, no EMA update); the gradient norm is not checked (docs/precision.md).
  bool skipped = false;
  double progress_value = 0;  // the progress line's second number
  MetricValues values;        // logged to the "train" series, with wall_time added
};

struct LoopBody {
  std::function<StepReport(std::int64_t next)> compute;
  std::function<void(std::int64_t next, StepReport& report)> apply;
  std::function<void()> evaluate;
  std::function<void()> checkpoint;  // saves everything, LoopState included
  std::function<void()> finish;      // the final weights, when training advanced or they are missing
  std::function<bool()> finished;    // whether the final weights exist
};

// The intervals every trainer config has (steps, log_every, checkpoint_every, eval_every).
template <class Config>
LoopSettings loop_settings(const Config& c, std::string checkpoint, std::string progress_name,
                           std::string divergence_hint) {
  LoopSettings settings;
  settings.steps = c.steps;
  settings.log_every = c.log_every;
  settings.checkpoint_every = c.checkpoint_every;
  settings.eval_every = c.eval_every;
  settings.checkpoint = std::move(checkpoint);
  settings.progress_name = std::move(progress_name);
  settings.divergence_hint = std::move(divergence_hint);
  return settings;
}

// Runs until settings.steps or the stop flag. `state` is the trainer's own (checkpoint() saves it).
TrainOutcome run_training_loop(LoopState& state, const LoopSettings& settings, MetricSink& sink,
                               const LoopBody& body, const std::atomic<bool>& stop);

}  // namespace latentlab::detail
