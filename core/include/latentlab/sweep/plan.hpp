#pragma once
// From trials to stages (docs/spec.md, docs/architecture.md): each trial's blocks become typed stages
// (autoencoder -> latent statistics -> denoiser -> sample -> eval, and reconstruction), each with its
// content key. Stages with the same key are one stage, run once for every trial that needs it.
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/stages/stage.hpp"
#include "latentlab/sweep/spec.hpp"

namespace latentlab::sweep {

// What a worker needs to run one stage, and all the key depends on: written as the stage's job file.
struct StageJob {
  std::string kind;       // autoencoder, latent_stats, denoiser, sample, eval, reconstruction
  std::string key;        // content key
  std::string path;       // where its block sits in the spec, for error messages ("denoiser")
  nlohmann::json config;  // what the stage's from_json reads
  std::map<std::string, std::string> inputs;  // role ("autoencoder", "denoiser", "samples") -> key
  std::string label;                          // eval entries: their label
  std::string trial;                          // the first trial that needs it (for messages)

  nlohmann::json to_json() const;
  static StageJob from_json(const nlohmann::json& json);
};

// One eval entry of a trial: its sample stage and, when metrics are configured, its eval stage.
struct EvalPlan {
  std::string label;
  std::size_t sample = 0;
  std::ptrdiff_t metrics = -1;  // index of the eval stage, -1: none
};

struct TrialPlan {
  Trial trial;
  std::ptrdiff_t autoencoder = -1, latent = -1, denoiser = -1, reconstruction = -1;
  std::vector<EvalPlan> evals;
  std::vector<std::size_t> stages;  // every stage the trial needs, inputs before their consumers
};

struct Plan {
  std::string name;
  std::vector<Axis> axes;
  std::vector<StageJob> stages;  // unique by key, inputs before their consumers
  std::vector<TrialPlan> trials;
  std::string device = "auto";
  int threads = 0;
  // What "precision": "auto" resolved to and why ("bf16 (this CPU has AVX512-BF16)"); empty when no
  // block asked for auto.
  std::string auto_precision;
};

// Builds every trial's stages, validating each block and each plugin's parameters against the
// registry. Every problem in every trial is collected (each once) and thrown together as one
// ConfigError, before anything runs. `device` (auto, cpu, cuda, cuda:N), when given, replaces the
// spec's "device": what `run --device` runs on, and what "precision": "auto" is resolved for.
Plan make_plan(const Expansion& expansion, const registry::Registry& registry,
               const std::string& device = "");

// The stage a job describes, built through the registry. `input_dirs` maps each input role to the
// folder of its finished artefact (what the denoiser reads its autoencoder from, ...).
std::unique_ptr<stages::Stage> make_stage(const StageJob& job, const registry::Registry& registry);

// Runs the job's stage into `dir` (resuming a training stage whose checkpoint is there when
// `resume`). Returns the outcome; a training stage stopped by context.stop is interrupted.
stages::StageOutcome run_job(const StageJob& job, const stages::StageContext& context,
                             const std::map<std::string, std::filesystem::path>& input_dirs,
                             const std::filesystem::path& dir, bool resume);

}  // namespace latentlab::sweep
