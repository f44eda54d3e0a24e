#include "training_loop.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "latentlab/strings.hpp"
#include "trainer_common.hpp"

namespace latentlab::detail {

TrainOutcome run_training_loop(LoopState& state, const LoopSettings& settings, MetricSink& sink,
                               const LoopBody& body, const std::atomic<bool>& stop) {
  const std::int64_t first_step = state.step;
  if (state.eval_pending) {  // the evaluation an interruption postponed, with the weights of its step
    body.evaluate();
    state.eval_pending = false;
  }
  auto interval_start = Clock::now();
  int skipped_in_a_row = 0;
  std::int64_t interval_steps = 0;
  double interval_loss = 0, interval_progress = 0;
  while (state.step < settings.steps) {
    const auto step_start = Clock::now();
    const std::int64_t next = state.step + 1;
    auto report = body.compute(next);
    skipped_in_a_row = report.skipped ? skipped_in_a_row + 1 : 0;
    if (!std::isfinite(report.loss) || (!report.skipped && !std::isfinite(report.grad_norm)) ||
        skipped_in_a_row >= kMaxSkippedSteps) {
      const auto kept = state.last_checkpoint >= 0
                            ? "the last good checkpoint (step " + std::to_string(state.last_checkpoint) +
                                  ") is kept in " + settings.checkpoint
                            : std::string("no checkpoint had been written yet");
      const auto skipped = skipped_in_a_row >= kMaxSkippedSteps
                               ? " (" + std::to_string(skipped_in_a_row) +
                                     " steps in a row skipped by loss scaling: the gradients overflow at "
                                     "every scale)"
                               : std::string();
      throw DivergenceError("training diverged at step " + std::to_string(next) + ": loss " +
                            format_number(report.loss) + ", gradient norm " +
                            format_number(report.grad_norm) + skipped + "; " + kept + ". " +
                            settings.divergence_hint);
    }
    if (report.skipped)
      spdlog::debug("step {}: the gradients overflowed at this loss scale; the step is skipped", next);
    else
      body.apply(next, report);
    state.step = next;
    state.wall_time += std::chrono::duration<double>(Clock::now() - step_start).count();
    report.values.emplace_back("wall_time", state.wall_time);
    sink.write("train", state.step, report.values);

    ++interval_steps;
    interval_loss += report.loss;
    interval_progress += report.progress_value;
    if (state.step % settings.log_every == 0 || state.step == settings.steps) {
      const double seconds = std::chrono::duration<double>(Clock::now() - interval_start).count();
      const double rate = static_cast<double>(interval_steps) / seconds;
      const double n = static_cast<double>(interval_steps);
      spdlog::info("step {}/{}  loss {:.5f}  {} {:.5f}  {:.2f} steps/s  ETA {}", state.step, settings.steps,
                   interval_loss / n, settings.progress_name, interval_progress / n, rate,
                   duration_text(static_cast<double>(settings.steps - state.step) / rate));
      interval_start = Clock::now();
      interval_steps = 0;
      interval_loss = interval_progress = 0;
      sink.flush();
    }
    // An interrupt postpones a due evaluation to the resumed run (the checkpoint records it) and
    // checkpoints at once.
    const bool stopping = stop.load() && state.step < settings.steps;
    const bool eval_due =
        (settings.eval_every > 0 && state.step % settings.eval_every == 0) || state.step == settings.steps;
    if (eval_due && stopping) state.eval_pending = true;
    if (eval_due && !stopping) body.evaluate();
    if (state.step % settings.checkpoint_every == 0 || state.step == settings.steps || stopping) {
      sink.flush();  // every row up to the checkpoint's step is on disk before the checkpoint is
      body.checkpoint();
      state.last_checkpoint = state.step;
    }
    if (stopping) {
      spdlog::warn("interrupted: checkpoint at step {} written to {}", state.step, settings.checkpoint);
      return {state.step, true};
    }
  }
  if (state.step > first_step || !body.finished()) body.finish();
  sink.flush();
  return {state.step, false};
}

}  // namespace latentlab::detail
