#pragma once
// Running a plan (docs/spec.md#running): every stage once, in worker processes that claim stages
// through file locks in the cache, so local workers, a second `latentlab run` on the same folder, or
// a job scheduler's tasks share the work without computing a stage twice. Finished stages live in
// <cache>/<kind>/<key>/ and are reused by every trial and every later sweep that needs them; a stage
// runs in <key>.partial/ and appears under its key by one rename. A worker that dies (a plugin's
// segfault, an out-of-memory kill) fails its stage and the trials that need it; the sweep goes on.
// Trial files, sweep.json and summary.csv are written as trials end.
#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/sweep/plan.hpp"

namespace latentlab::sweep {

// Where a sweep's files are.
struct SweepPaths {
  std::filesystem::path folder;  // results/<name>
  std::filesystem::path cache;   // folder/cache, or a shared --cache

  std::filesystem::path stage_dir(const StageJob& job) const { return cache / job.kind / job.key; }
  std::filesystem::path work_dir(const StageJob& job) const {
    return cache / job.kind / (job.key + ".partial");
  }
  std::filesystem::path lock_file(const StageJob& job) const {
    return cache / job.kind / (job.key + ".lock");
  }
  std::filesystem::path job_file(const StageJob& job) const {
    return cache / job.kind / (job.key + ".job.json");
  }
  std::filesystem::path log_file(const StageJob& job) const { return cache / job.kind / (job.key + ".log"); }
  std::filesystem::path failed_file(const StageJob& job) const {
    return cache / job.kind / (job.key + ".failed");
  }
  std::filesystem::path trial_file(const std::string& id) const { return folder / "trials" / (id + ".h5"); }
};

struct RunOptions {
  SweepPaths paths;
  int workers = 1;
  int threads = 0;                       // all workers together; 0: the cores this process may use
  std::string device;                    // for every stage ("auto", "cpu", "cuda:N")
  std::string only;                      // run only this trial (its id)
  std::filesystem::path host;            // the latentlab executable that workers run
  std::vector<std::string> worker_args;  // passed to every worker (--plugin-path ..., --log-level ...)
  nlohmann::json spec;                   // the spec as given, for sweep.json
  nlohmann::json provenance;  // versions, build commit, host, command line: root attributes of trial files
  const std::atomic<bool>* stop = nullptr;       // Ctrl-C: workers checkpoint and stop, the run ends
  const registry::Registry* registry = nullptr;  // for the resolved configs recorded with each job
  bool fresh_workers = false;  // a new worker process for every stage (else a worker runs stage after stage)
  // Called after a trial's file and sweep.json were written (`latentlab run --watch` refreshes the
  // report); what it throws is logged, never ends the run.
  std::function<void()> on_trial_end;
};

enum class StageState { Done, Failed, Running, Waiting };
const char* to_string(StageState state);

// A stage's state as the files in the cache say (a lock held by another process is Running).
StageState stage_state(const SweepPaths& paths, const StageJob& job);

struct RunSummary {
  std::size_t trials = 0, trials_done = 0, trials_failed = 0;
  std::size_t stages_run = 0, stages_reused = 0, stages_failed = 0;
  std::vector<std::string> failures;  // "trial: reason"
  bool interrupted = false;
  std::size_t workers_started = 0;  // worker processes started
  double stage_seconds = 0;         // the finished stages' own time, as their workers measured it
};

// The trial table and, per stage, cached or to run, with the count of stages to run.
std::string dry_run_report(const Plan& plan, const SweepPaths& paths, const std::string& only);

RunSummary run_sweep(const Plan& plan, const RunOptions& options);

// sweep.json and summary.csv (atomically), from the plan and the cache as they are now.
void write_sweep_index(const Plan& plan, const RunOptions& options, const std::vector<std::string>& errors);

// `latentlab status DIR`: each trial x stage: done, running (its last progress line), failed (reason),
// waiting; from sweep.json and the cache.
std::string status_report(const std::filesystem::path& folder);

}  // namespace latentlab::sweep
