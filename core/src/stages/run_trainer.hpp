#pragma once
// How the training stages (AutoencoderStage, DenoiserStage) run their trainer into a folder: the
// folder and the device go into the config (and its resolved record, which config.json keeps), the
// metrics into the folder's CSV series, a resumed run continues its checkpoint, and the stop flag
// (docs/architecture.md) ends it at a checkpoint.
#include <atomic>
#include <filesystem>

#include "latentlab/io/atomic_file.hpp"
#include "latentlab/stages/stage.hpp"
#include "latentlab/train/metric_sink.hpp"

namespace latentlab::stages::detail {

template <class Trainer, class Config, class Parts>
StageOutcome run_trainer(Config& config, Parts& parts, const StageContext& context,
                         const std::filesystem::path& dir, bool resume) {
  config.output = dir.string();
  config.resolved["output"] = config.output;
  config.device = context.device.str();
  config.resolved["device"] = config.device;
  CsvMetricSink sink(dir);
  Trainer trainer(config, parts, sink);
  if (resume) trainer.resume();
  write_text_atomically(dir / "config.json", config.resolved.dump(2) + "\n");
  static const std::atomic<bool> never{false};
  const auto outcome = trainer.run(context.stop ? *context.stop : never);
  return {outcome.interrupted, outcome.step};
}

}  // namespace latentlab::stages::detail
