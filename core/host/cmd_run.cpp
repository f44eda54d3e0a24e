// `latentlab run SPEC.json`: the sweep engine (docs/spec.md). Expands the spec into trials, validates
// every trial's stages before anything runs, and runs the stages that are not in the cache in worker
// processes; `latentlab status DIR` reports a sweep; `latentlab stage-run` is the worker.
#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "builtin_specs.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/analysis/report.hpp"
#include "latentlab/analysis/results.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/sweep/plan.hpp"
#include "latentlab/sweep/runner.hpp"
#include "latentlab/threads.hpp"
#include "run_support.hpp"

namespace latentlab::host {

namespace fs = std::filesystem;

namespace {

// The built-in spec called `name` (also matched as NAME.json), or nullptr.
const BuiltinSpec* find_builtin_spec(const std::string& name) {
  for (const auto& spec : builtin_specs())
    if (name == spec.name || name == std::string(spec.name) + ".json") return &spec;
  return nullptr;
}

// The spec's text: the file `path`, or where no such file exists, the built-in spec of that name.
struct SpecSource {
  std::string text;
  std::string origin;  // for provenance: the file's absolute path, or "built-in NAME (FILE)"
};

SpecSource read_spec_source(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (const auto* builtin = find_builtin_spec(path))
      return {builtin->text, std::string("built-in ") + builtin->name + " (" + builtin->source + ")"};
    std::vector<std::string> names;
    for (const auto& spec : builtin_specs()) names.emplace_back(spec.name);
    throw ConfigError("no spec file '" + path + "'" + did_you_mean(path, names) +
                      " (nor a built-in spec of that name; built in: " + join(names) +
                      ", e.g. `latentlab run quickstart`)");
  }
  if (fs::is_directory(path, ec))
    throw ConfigError("spec '" + path + "' is a folder; give the spec's .json file");
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open spec file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return {text.str(), fs::absolute(path).lexically_normal().string()};
}

sweep::SpecJson parse_spec(const SpecSource& source, const std::string& path) {
  try {
    return sweep::SpecJson::parse(source.text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError("spec file '" + path + "' is not valid JSON: " + e.what());
  }
}

// A summary.csv cell for the screen: numbers with 4 significant digits (the file keeps them all).
std::string short_cell(const std::string& cell) {
  if (cell.find_first_of(".e") == std::string::npos) return cell;
  char* end = nullptr;
  const double value = std::strtod(cell.c_str(), &end);
  if (end == cell.c_str() || *end != '\0') return cell;
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

// summary.csv as an aligned table.
void print_summary(const fs::path& csv) {
  std::ifstream in(csv);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (const char c : line) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted) {
        cells.push_back(cell);
        cell.clear();
      } else
        cell += c;
    }
    cells.push_back(cell);
    for (auto& c : cells) c = short_cell(c);
    rows.push_back(cells);
  }
  std::vector<std::size_t> widths;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i)
      std::cout << std::left << std::setw(static_cast<int>(widths[i]) + 2) << (row[i].empty() ? "-" : row[i]);
    std::cout << "\n";
  }
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string command_line(const std::string& command, const Args& args) {
  std::string out = "latentlab " + command;
  for (const auto& arg : args) out += " " + arg;
  return out;
}

}  // namespace

int run_run(const Args& args) {
  CommonOptions common;
  std::string spec_path, results = "results", cache, only, device;
  int workers = 1;
  bool dry_run = false, fresh_workers = false, watch = false, print_spec = false;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("results", po::value(&results)->default_value(results), "results root: the sweep writes RESULTS/<name>/")
      ("cache", po::value(&cache), "stage cache folder (default: RESULTS/<name>/cache); sweeps may share one")
      ("workers", po::value(&workers)->default_value(workers), "stages run at once, each in its own process; threads are split between them")
      ("fresh-workers", po::bool_switch(&fresh_workers), "a new worker process for every stage (by default a worker runs stage after stage)")
      ("only", po::value(&only), "run only this trial (its id, as --dry-run lists them)")
      ("dry-run", po::bool_switch(&dry_run), "print the trials and, per stage, cached or to run; run nothing")
      ("print-spec", po::bool_switch(&print_spec), "print the spec's JSON and exit (`latentlab run quickstart --print-spec > my.json` starts a spec of your own)")
      ("watch", po::bool_switch(&watch), "rewrite the report (RESULTS/<name>/report/index.html) whenever a trial ends, not only when the sweep ends")
      ("device", po::value(&device), "auto, cpu, cuda or cuda:N (default: the spec's \"device\", else auto)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("spec", po::value(&spec_path));
  po::variables_map vm;
  const std::string usage =
      "latentlab run SPEC.json|quickstart [--results DIR] [--cache DIR] [--workers N] [--only TRIAL] "
      "[--dry-run] [--print-spec] [--device D] [--fresh-workers] [--watch]";
  if (!parse_command_line(
          "run", args, options, positional, usage,
          "Runs a sweep (docs/spec.md): expands SPEC.json's axes into trials, validates every trial before "
          "anything runs (all problems at once), and runs each stage (autoencoder, latent statistics, "
          "denoiser, sample, eval, reconstruction) once, reusing finished stages from the cache. Writes "
          "RESULTS/<name>/trials/<trial>.h5 (docs/hdf5-layout.md), sweep.json and summary.csv; when it "
          "ends, it prints the sweep's tables and writes its report (RESULTS/<name>/report/index.html, "
          "docs/analysis.md). Re-running continues where a run stopped; `latentlab status RESULTS/<name>` "
          "shows where it stands. SPEC may also name a built-in spec: `quickstart` is "
          "experiments/quickstart.json, built into the host.",
          vm))
    return kOk;
  if (spec_path.empty()) throw ConfigError("run: which spec? Usage: " + usage);
  if (workers < 1) throw ConfigError("--workers: must be >= 1, got " + std::to_string(workers));
  apply_logging(common);
  const auto source = read_spec_source(spec_path);
  if (print_spec) {
    std::cout << source.text;
    return kOk;
  }
  const auto spec = parse_spec(source, spec_path);
  const auto expansion = sweep::expand(spec);
  const auto registry = load_registry(common);
  const int threads = apply_threads(common);
  const auto plan = sweep::make_plan(expansion, *registry, device);
  if (!only.empty()) {
    std::vector<std::string> ids;
    for (const auto& trial : plan.trials) ids.push_back(trial.trial.id);
    if (std::find(ids.begin(), ids.end(), only) == ids.end())
      throw ConfigError("--only: no trial '" + only + "'" + did_you_mean(only, ids) +
                        "; `latentlab run SPEC --dry-run` lists them");
  }
  sweep::RunOptions run;
  run.paths.folder = fs::path(results) / plan.name;
  run.paths.cache = cache.empty() ? run.paths.folder / "cache" : fs::path(cache);
  if (dry_run) {
    std::cout << sweep::dry_run_report(plan, run.paths, only);
    return kOk;
  }
  run.workers = workers;
  run.fresh_workers = fresh_workers;
  run.threads = threads;
  run.device = plan.device;                // --device, else the spec's
  resolve_device(run.device, "--device");  // a bad name or a missing GPU fails here
  run.only = only;
  run.host = fs::canonical("/proc/self/exe");
  for (const auto& path : common.plugin_paths) {
    run.worker_args.push_back("--plugin-path");
    run.worker_args.push_back(fs::absolute(path).string());
  }
  run.worker_args.push_back("--log-level");
  run.worker_args.push_back(common.log_level);
  run.spec = nlohmann::json::parse(spec.dump());
  const std::string commit = kGitCommit;
  run.provenance = {{"latentlab_version", kLatentLabVersion},
                    {"build_commit", commit},
                    {"build_dirty", commit.find("-dirty") != std::string::npos},
                    {"libtorch_version", TORCH_VERSION},
                    {"host", host_name()},
                    {"command_line", command_line("run", args)},
                    {"spec_file", source.origin}};
  run.registry = registry.get();
  if (watch)  // at most every 30 s (a report of a large sweep takes a while); the last one at the end
    run.on_trial_end = [folder = run.paths.folder, last = std::chrono::steady_clock::time_point()]() mutable {
      if (std::chrono::steady_clock::now() - last < std::chrono::seconds(30)) return;
      analysis::write_report(analysis::load_results(folder));
      last = std::chrono::steady_clock::now();
    };
  StopSignals signals;
  run.stop = &signals.stop();
  spdlog::info(
      "sweep {}: {} trials, {} distinct stages, up to {} worker(s) sharing {} thread(s), device {}; results "
      "in {}",
      plan.name, plan.trials.size(), plan.stages.size(), workers, threads, run.device,
      run.paths.folder.string());
  if (!plan.auto_precision.empty()) spdlog::info("precision auto: {}", plan.auto_precision);
  const auto summary = sweep::run_sweep(plan, run);
  std::cout << "\n";
  // The sweep's tables and its report, from the results folder as a user would read it.
  std::string report_line;
  try {
    const auto results = analysis::load_results(run.paths.folder);
    std::cout << analysis::summary_table(results);
    const auto files = analysis::write_report(results);
    report_line = "report: " + fs::absolute(files.html).lexically_normal().string() +
                  " (open it in a browser; " + std::to_string(files.tables) + " tables, " +
                  std::to_string(files.figures) + " figures, " + std::to_string(files.sample_grids) +
                  " sample grids; also index.md)\n";
  } catch (const std::exception& e) {
    print_summary(run.paths.folder / "summary.csv");
    report_line = "report: not written (" + std::string(e.what()) + "); `latentlab report " +
                  run.paths.folder.string() + "` tries again\n";
  }
  std::cout << "\nsweep " << plan.name << ": " << summary.trials_done << " of " << summary.trials
            << " trials done";
  if (summary.trials_failed) std::cout << ", " << summary.trials_failed << " failed";
  std::cout << "; stages: " << summary.stages_run << " run (" << summary.workers_started << " worker process"
            << (summary.workers_started == 1 ? "" : "es") << "), " << summary.stages_reused
            << " reused from the cache";
  if (summary.stages_failed) std::cout << ", " << summary.stages_failed << " failed";
  std::cout << "\nresults: " << run.paths.folder.string() << " (summary.csv, sweep.json, trials/*.h5)\n"
            << report_line;
  for (const auto& failure : summary.failures) std::cout << "failed: " << failure << "\n";
  if (summary.interrupted) {
    std::cout << "interrupted; run the same command again to continue\n";
    return kFailure;
  }
  return summary.trials_failed > 0 || summary.trials_done < summary.trials ? kFailure : kOk;
}

int run_status(const Args& args) {
  CommonOptions common;
  std::string folder;
  po::options_description options("Options");
  add_common_options(options, common);
  Positionals positional;
  positional.add("folder", po::value(&folder));
  po::variables_map vm;
  const std::string usage = "latentlab status RESULTS/NAME";
  if (!parse_command_line("status", args, options, positional, usage,
                          "Shows a sweep's trials and, for each of their stages, done, running (with its "
                          "progress), failed (with the reason) or waiting.",
                          vm))
    return kOk;
  if (folder.empty()) throw ConfigError("status: which sweep folder? Usage: " + usage);
  apply_logging(common);
  std::cout << sweep::status_report(folder);
  return kOk;
}

namespace {

// Runs the stage of the job file `job_path` in `dir` and renames `dir` to `final_dir` when it is done.
// Returns 0, or 3 when the stop flag interrupted it at a checkpoint; a failure throws.
int run_one_stage(const std::string& job_path, const fs::path& dir, const fs::path& final_dir,
                  const registry::Registry& registry, const std::atomic<bool>& stop) {
  std::ifstream in(job_path);
  if (!in) throw Error("stage-run: cannot read the job file " + job_path);
  const auto record = nlohmann::json::parse(in);
  const auto job = sweep::StageJob::from_json(record);
  std::map<std::string, fs::path> input_dirs;
  const auto inputs = record.value("input_dirs", nlohmann::json::object());
  for (const auto& [role, path] : inputs.items()) input_dirs[role] = path.get<std::string>();
  const stages::StageContext context{registry, resolve_device(record.value("device", std::string("auto"))),
                                     &stop};
  const bool resume = fs::exists(dir / "checkpoint.pt");
  const auto started = std::chrono::steady_clock::now();
  const auto outcome = sweep::run_job(job, context, input_dirs, dir, resume);
  if (outcome.interrupted) return 3;  // the coordinator reads this as "stopped at a checkpoint"
  // Its wall time (of the run that finished it), for the trial files' provenance.
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  write_text_atomically(
      dir / "stage.json",
      nlohmann::json{{"seconds", seconds}, {"resumed", resume}, {"device", context.device.str()}}.dump() +
          "\n");
  // The finished folder appears at once, by one rename.
  fs::rename(dir, final_dir);
  return kOk;
}

// `stage-run --serve`: the stages the coordinator sends over fd 3 (docs/architecture.md), one after
// another in this process, each with its output in its own log and as a fresh process would run it.
int serve_stages(const registry::Registry& registry) {
  StopSignals signals;
  std::FILE* channel = ::fdopen(3, "r");  // commands in; replies are written to fd 3 directly
  if (!channel) throw Error("stage-run --serve: no channel on fd 3 (workers are started by `latentlab run`)");
  ::fcntl(3, F_SETFD, FD_CLOEXEC);  // not for processes a stage may start
  char* line = nullptr;
  std::size_t capacity = 0;
  while (::getline(&line, &capacity, channel) > 0) {
    const auto command = nlohmann::json::parse(line);
    // This stage's output goes to its log.
    std::cout.flush();
    std::fflush(stdout);
    std::fflush(stderr);
    const auto log = command.at("log").get<std::string>();
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) throw Error("stage-run: cannot open the log " + log);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
    set_compute_threads(command.at("threads").get<int>());
    // The global generator as a new process has it: a stage's results do not depend on the stages
    // this worker ran before.
    torch::manual_seed(c10::default_rng_seed_val);
    // Asked to stop while it waited (a signal to this process alone): as if interrupted at once.
    if (signals.stop().load()) return 3;
    const auto started = std::chrono::steady_clock::now();
    const int status =
        run_one_stage(command.at("job").get<std::string>(), command.at("dir").get<std::string>(),
                      command.at("final").get<std::string>(), registry, signals.stop());
    if (status != kOk) return status;  // interrupted: this worker ends, as a one-stage worker does
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto reply = "0 " + std::to_string(seconds) + "\n";
    if (::send(3, reply.data(), reply.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reply.size()))
      break;           // the coordinator is gone
    ::malloc_trim(0);  // the stage's freed host memory back to the system while this worker waits
  }
  std::free(line);
  return kOk;
}

}  // namespace

int run_stage_worker(const Args& args) {
  CommonOptions common;
  std::string job_path, dir, final_dir;
  bool serve = false;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("dir", po::value(&dir), "work folder")
      ("final", po::value(&final_dir), "finished folder")
      ("serve", po::bool_switch(&serve), "run the stages sent on fd 3, one line of JSON each (what `latentlab run` starts)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("job", po::value(&job_path));
  po::variables_map vm;
  if (!parse_command_line(
          "stage-run", args, options, positional,
          "latentlab stage-run JOB.json --dir D --final F | latentlab stage-run --serve",
          "Runs one stage of a sweep, or serves the stages `latentlab run` sends its workers.", vm))
    return kOk;
  if (!serve && (job_path.empty() || dir.empty() || final_dir.empty()))
    throw ConfigError(
        "stage-run: give JOB.json, --dir and --final, or --serve (workers are started by `latentlab run`)");
  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  if (serve) return serve_stages(*registry);
  StopSignals signals;
  return run_one_stage(job_path, dir, final_dir, *registry, signals.stop());
}

}  // namespace latentlab::host
