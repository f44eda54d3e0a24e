// `latentlab bench sweep`: the sweep engine's own costs (docs/benchmarks.md): expanding, validating and
// keying a 10,000-trial spec (what `run --dry-run` does), and what each stage costs beyond its own
// work: starting a worker process that loads the plugins, writing a trial file, and the whole engine's
// overhead per stage in a real sweep of tiny stages (workers reused, and fresh for every stage).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "bench_timing.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/sweep/plan.hpp"
#include "latentlab/sweep/runner.hpp"
#include "latentlab/sweep/spec.hpp"
#include "latentlab/sweep/trial_file.hpp"
#include "run_support.hpp"

namespace latentlab::host {

namespace fs = std::filesystem;

namespace {

// A pixel-space sweep of 4 weightings x 4 samplers x 25 step budgets x `seeds` seeds (10,000 trials
// with 25 seeds): expanding and planning it is timed, nothing trains.
sweep::SpecJson bench_spec(int seeds) {
  auto spec = sweep::SpecJson::parse(R"({
    "name": "bench",
    "dataset": {"name": "fashion-mnist", "params": {"resolution": 32}},
    "denoiser": {"unet": {"model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": 1},
                 "weighting": {"$grid": ["unweighted", "elbo", "min_snr", "x0"]},
                 "train": {"steps": 1000}},
    "eval": [{"sampler": {"$grid": ["ddim", "dpmpp_2m", "euler", "heun"]}, "count": 1000}],
    "metrics": {"metrics": ["fid", "kid"]}
  })");
  sweep::SpecJson budgets = sweep::SpecJson::array();
  for (int steps = 4; steps < 4 + 25 * 2; steps += 2) budgets.push_back(steps);
  spec["eval"][0]["steps"] = {{"$grid", budgets}};
  sweep::SpecJson list = sweep::SpecJson::array();
  for (int s = 0; s < seeds; ++s) list.push_back(s);
  spec["seeds"] = list;
  return spec;
}

// Seconds from fork to exit of `latentlab plugins list` with the probe off: a worker's start-up.
double worker_start_seconds() {
  const auto host = fs::canonical("/proc/self/exe").string();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("LATENTLAB_PLUGIN_PROBE", "0", 1);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(host.c_str(), host.c_str(), "plugins", "list", "--threads", "1", nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A sweep of `stages` tiny stages, for the engine's overhead per stage: a pixel-space denoiser trained
// for one step on 16x16 Fashion-MNIST, sampled with one DDIM step in `stages` - 1 trials (a grid of
// sample seeds; one sample stage and one trial file each). Its stages take milliseconds, so what the
// run takes beyond its stages' own time is the engine's.
sweep::SpecJson overhead_spec(int stages) {
  auto spec = sweep::SpecJson::parse(R"({
    "name": "overhead",
    "dataset": {"name": "fashion-mnist", "params": {"resolution": 16, "fit": "resize", "limit": 64}},
    "denoiser": {"unet": {"model_channels": 32, "channel_mult": [1], "num_res_blocks": 1,
                          "attention_resolutions": []},
                 "train": {"steps": 1, "batch_size": 2},
                 "eval": {"every": 0, "samples": 2, "strata": 1, "batch_size": 2}},
    "eval": [{"sampler": "ddim", "steps": 1, "count": 1, "batch": 1}]
  })");
  sweep::SpecJson seeds = sweep::SpecJson::array();
  for (int s = 0; s < stages - 1; ++s) seeds.push_back(s);
  spec["eval"][0]["seed"] = {{"$grid", seeds}, {"$name", "sample_seed"}};
  return spec;
}

struct Overhead {
  double wall = 0, inside = 0;
  std::size_t stages = 0, workers = 0;
  double per_stage() const { return (wall - inside) / static_cast<double>(stages); }
};

// Runs the overhead sweep in a new folder, its workers fresh or reused; the wall time of run_sweep and
// the stages' own time as their workers measured it.
Overhead measure_overhead(const sweep::Plan& plan, const registry::Registry& registry,
                          const CommonOptions& common, const fs::path& folder, bool fresh) {
  sweep::RunOptions run;
  run.paths.folder = folder;
  run.paths.cache = folder / "cache";
  run.workers = 1;
  run.threads = 1;
  run.device = "cpu";
  run.host = fs::canonical("/proc/self/exe");
  for (const auto& path : common.plugin_paths) {
    run.worker_args.push_back("--plugin-path");
    run.worker_args.push_back(fs::absolute(path).string());
  }
  run.worker_args.push_back("--log-level");
  run.worker_args.push_back("warn");
  run.registry = &registry;
  run.fresh_workers = fresh;
  const auto start = std::chrono::steady_clock::now();
  const auto summary = sweep::run_sweep(plan, run);
  Overhead out;
  out.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.inside = summary.stage_seconds;
  out.stages = summary.stages_run;
  out.workers = summary.workers_started;
  if (summary.trials_done != summary.trials)
    throw Error("bench sweep: the overhead sweep failed (" +
                (summary.failures.empty() ? std::string("?") : summary.failures.front()) + "); logs under " +
                folder.string());
  return out;
}

}  // namespace

int run_bench_sweep(const Args& args) {
  CommonOptions common;
  int seeds = 25, repeats = 5, overhead_stages = 30;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("seeds", po::value(&seeds)->default_value(seeds), "seeds of the benchmark spec (trials = 400 x seeds)")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed repeats; the median is reported")
      ("overhead-stages", po::value(&overhead_stages)->default_value(overhead_stages), "stages of the sweep that measures the engine's overhead per stage (0: skip it)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  std::string what;
  positional.add("what", po::value(&what));
  po::variables_map vm;
  if (!parse_command_line(
          "bench", args, options, positional,
          "latentlab bench sweep [--seeds N] [--repeats R] [--overhead-stages K]",
          "Times the sweep engine on a 400 x N-trial spec (default 10,000 trials): expansion, "
          "validation and keys (a dry run), a worker's start-up, a trial file's writing, and the engine's "
          "overhead per stage in a real sweep of K tiny stages, with workers reused and fresh.",
          vm))
    return kOk;
  if (seeds < 1 || repeats < 1) throw ConfigError("--seeds and --repeats must be >= 1");
  if (overhead_stages != 0 && overhead_stages < 2) throw ConfigError("--overhead-stages: 0, or at least 2");
  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const auto spec = bench_spec(seeds);
  std::size_t trials = 0, stages = 0;
  const double expand_seconds =
      median_seconds_per_call([&] { trials = sweep::expand(spec).trials.size(); }, repeats, 0);
  const auto expansion = sweep::expand(spec);
  const double plan_seconds = median_seconds_per_call(
      [&] { stages = sweep::make_plan(expansion, *registry).stages.size(); }, repeats, 0);
  const double start_seconds = median_seconds_per_call([] { worker_start_seconds(); }, repeats, 0);
  // A trial file of a finished pixel-space trial (no artefacts on disk: root attributes and /snr).
  const auto folder = fs::temp_directory_path() / ("latentlab_bench_sweep_" + std::to_string(::getpid()));
  sweep::TrialFileInput input;
  input.id = expansion.trials.front().id;
  input.values = expansion.trials.front().values;
  input.config = expansion.trials.front().config;
  input.status = "done";
  input.alpha.assign(1000, 0.5);
  input.sigma.assign(1000, 0.5);
  const double file_seconds =
      median_seconds_per_call([&] { sweep::write_trial_file(folder / "trial.h5", input); }, repeats, 0);
  // The engine's overhead per stage, workers reused (the default) and fresh, in the same run.
  nlohmann::json overhead = nullptr;
  if (overhead_stages > 0) {
    const auto plan = sweep::make_plan(sweep::expand(overhead_spec(overhead_stages)), *registry);
    const auto level = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);
    const auto reused = measure_overhead(plan, *registry, common, folder / "reused", false);
    const auto fresh = measure_overhead(plan, *registry, common, folder / "fresh", true);
    spdlog::set_level(level);
    const auto record = [](const Overhead& o) {
      return nlohmann::json{{"stages", o.stages},
                            {"worker_processes", o.workers},
                            {"wall_seconds", o.wall},
                            {"stage_seconds", o.inside},
                            {"overhead_seconds_per_stage", o.per_stage()},
                            {"overhead_of_a_minute_stage_percent", o.per_stage() / 60.0 * 100.0}};
    };
    overhead = {{"reused_workers", record(reused)},
                {"fresh_workers", record(fresh)},
                {"fresh_over_reused", fresh.per_stage() / reused.per_stage()}};
  }
  fs::remove_all(folder);
  const nlohmann::json result = {{"trials", trials},
                                 {"distinct_stages", stages},
                                 {"expand_seconds", expand_seconds},
                                 {"plan_seconds", plan_seconds},
                                 {"dry_run_seconds", expand_seconds + plan_seconds},
                                 {"worker_start_seconds", start_seconds},
                                 {"trial_file_seconds", file_seconds},
                                 {"engine_overhead_per_stage", overhead},
                                 {"repeats", repeats}};
  std::cout << result.dump(2) << "\n";
  return kOk;
}

}  // namespace latentlab::host
