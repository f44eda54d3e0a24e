#include "latentlab/sweep/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/json_number.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/sweep/trial_file.hpp"
#include "latentlab/threads.hpp"
#include "runner_support.hpp"

extern char** environ;

namespace latentlab::sweep {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace detail;

namespace {

// Whether process `pid` has ended. A zombie has ended too: a worker whose coordinator was killed is
// re-parented, and where the new parent never reaps (a container whose first process is not an init),
// it stays a zombie for good, while kill(pid, 0) still succeeds on it.
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const auto close = text.rfind(')');  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses
  return close != std::string::npos && close + 2 < text.size() &&
         (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

// Removes the temporaries of atomic writes (".NAME.tmp-PID", docs/architecture.md) whose process has
// ended: what a killed run left. A living process's temporary (a concurrent run's) stays.
void remove_stale_temporaries(const fs::path& folder) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    const auto name = entry.path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (name.size() < 2 || name[0] != '.' || at == std::string::npos) continue;
    const auto pid = std::atol(name.c_str() + at + 5);
    if (pid > 0 && process_gone(static_cast<pid_t>(pid))) fs::remove(entry.path(), error);
  }
}

// A worker process: `latentlab stage-run --serve ...`, which loads LibTorch and the plugins once and
// then runs the stages it is sent, one at a time (docs/architecture.md). The coordinator and the
// worker talk over a socket pair (the worker's fd 3): one JSON line per stage one way, one line per
// finished stage ("0 SECONDS") the other. A stage that fails or is interrupted ends the worker with
// the exit status a one-stage worker has (1/2 failed, 3 interrupted), so its next stage starts in a
// fresh process; a crash (a plugin's segfault) ends it with its signal. Its output goes to the log of
// the stage it runs. It dies with this process (PR_SET_PDEATHSIG): no orphan keeps computing.
struct WorkerChannel {
  int fd = -1;          // the coordinator's end of the socket pair
  std::string pending;  // bytes of a result line not yet ended

  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

pid_t spawn_worker(const RunOptions& options, const fs::path& first_log, int threads,
                   WorkerChannel& channel) {
  std::vector<std::string> args = {options.host.string(), "stage-run", "--serve", "--threads",
                                   std::to_string(threads)};
  args.insert(args.end(), options.worker_args.begin(), options.worker_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment, with the plugin probe off (this process probed every library already).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LATENTLAB_PLUGIN_PROBE=", 23) != 0 && std::strncmp(*e, "OMP_NUM_THREADS=", 16) != 0)
      env_strings.emplace_back(*e);
  env_strings.push_back("LATENTLAB_PLUGIN_PROBE=0");
  env_strings.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const auto log = first_log.string();
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
    throw Error(std::string("cannot start a worker process (socketpair): ") + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(ends[0]);
    ::close(ends[1]);
    throw Error(std::string("cannot start a worker process: ") + std::strerror(errno));
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (fd > 2) ::close(fd);
    }
    if (ends[1] == 3)
      ::fcntl(3, F_SETFD, 0);  // keep it open across exec
    else
      ::dup2(ends[1], 3);  // dup2 clears close-on-exec on the copy
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(ends[1]);
  channel.fd = ends[0];
  return pid;
}

// Sends a worker its next stage; false when the worker is gone.
bool send_stage(const WorkerChannel& channel, const RunOptions& options, const StageJob& job, int threads) {
  const auto& paths = options.paths;
  const json command = {{"job", paths.job_file(job).string()},
                        {"dir", paths.work_dir(job).string()},
                        {"final", paths.stage_dir(job).string()},
                        {"log", paths.log_file(job).string()},
                        {"threads", threads}};
  const auto line = command.dump() + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    const auto n = ::send(channel.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads what a worker wrote; returns the finished stages' seconds (one per complete "0 SECONDS" line).
std::vector<double> read_results(WorkerChannel& channel) {
  std::vector<double> finished;
  char buffer[256];
  const auto n = ::recv(channel.fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n <= 0) return finished;  // nothing yet, or the worker ended (reaped by waitpid)
  channel.pending.append(buffer, static_cast<std::size_t>(n));
  std::size_t end;
  while ((end = channel.pending.find('\n')) != std::string::npos) {
    const auto line = channel.pending.substr(0, end);
    channel.pending.erase(0, end + 1);
    if (line.rfind("0 ", 0) == 0) finished.push_back(std::atof(line.c_str() + 2));
  }
  return finished;
}

// What the finished stages of a trial say, for its trial file.
TrialFileInput trial_input(const Plan& plan, const TrialPlan& trial, const RunOptions& options,
                           const std::map<std::size_t, StageState>& states, const std::string& error) {
  const auto& paths = options.paths;
  TrialFileInput in;
  in.id = trial.trial.id;
  in.values = trial.trial.values;
  in.config = trial.trial.config;
  in.error = error;
  in.status = error.empty() ? "done" : "failed";
  in.provenance = options.provenance;
  in.provenance["device"] = options.device;
  in.provenance["seed"] = trial.trial.config.value("seed", 0);
  const auto finished = [&](std::ptrdiff_t index) -> std::optional<fs::path> {
    if (index < 0) return std::nullopt;
    const auto it = states.find(static_cast<std::size_t>(index));
    if (it == states.end() || it->second != StageState::Done) return std::nullopt;
    return paths.stage_dir(plan.stages[static_cast<std::size_t>(index)]);
  };
  in.autoencoder = finished(trial.autoencoder);
  in.latent = finished(trial.latent);
  in.denoiser = finished(trial.denoiser);
  in.reconstruction = finished(trial.reconstruction);
  json plugins = json::array();
  for (const auto index : trial.stages) {
    const auto job_path = paths.job_file(plan.stages[index]);
    const auto job = json::parse(read_text(job_path), nullptr, false);
    if (job.is_object() && job.contains("plugins"))
      for (const auto& record : job["plugins"]) plugins.push_back(record);
  }
  in.plugins = plugins;
  // Wall time of each finished stage (its stage.json), for the report's provenance.
  json stage_times = json::array();
  for (const auto index : trial.stages) {
    const auto& job = plan.stages[index];
    const auto dir = finished(static_cast<std::ptrdiff_t>(index));
    if (!dir) continue;
    const auto record = json::parse(read_text(*dir / "stage.json"), nullptr, false);
    if (!record.is_object() || !record.contains("seconds")) continue;
    json entry = {{"kind", job.kind}, {"key", job.key}, {"seconds", record["seconds"]}};
    if (!job.label.empty()) entry["label"] = job.label;
    stage_times.push_back(entry);
  }
  in.provenance["stages"] = stage_times;
  for (const auto& eval : trial.evals) {
    TrialFileInput::Eval e;
    e.label = eval.label;
    const auto job = json::parse(read_text(paths.job_file(plan.stages[eval.sample])), nullptr, false);
    e.sample_config = job.is_object() ? job.value("resolved", json::object()) : json::object();
    e.samples = finished(static_cast<std::ptrdiff_t>(eval.sample));
    e.metrics = finished(eval.metrics);
    in.evals.push_back(e);
  }
  // The schedule of stage 2, from the denoiser's own record.
  if (in.denoiser) {
    const auto job = json::parse(
        read_text(paths.job_file(plan.stages[static_cast<std::size_t>(trial.denoiser)])), nullptr, false);
    if (job.is_object() && job.contains("snr")) {
      in.alpha = job["snr"].value("alpha", std::vector<double>());
      in.sigma = job["snr"].value("sigma", std::vector<double>());
    }
  }
  return in;
}
}  // namespace

RunSummary run_sweep(const Plan& plan, const RunOptions& options) {
  const auto& paths = options.paths;
  RunSummary summary;
  const int total_threads = std::max(1, options.threads);
  const bool on_gpu = resolve_device(options.device.empty() ? "auto" : options.device, "device").is_cuda();
  const int workers = std::max(1, options.workers);

  // The trials to run and the stages they need.
  std::vector<std::size_t> trials;
  std::set<std::size_t> needed;
  for (std::size_t t = 0; t < plan.trials.size(); ++t) {
    if (!options.only.empty() && plan.trials[t].trial.id != options.only) continue;
    trials.push_back(t);
    needed.insert(plan.trials[t].stages.begin(), plan.trials[t].stages.end());
  }
  summary.trials = trials.size();
  // The order ready stages start in, each kind in plan order: latent statistics (seconds, and a
  // denoiser waits for them); the long ones, so that none is left to run alone at the end: training
  // stages (everything after them waits for them) and reconstructions (the first trains the feature
  // classifier its rFID and every FID need, minutes on a CPU); then sampling, then the metrics.
  std::vector<std::size_t> start_order(needed.begin(), needed.end());
  std::stable_sort(start_order.begin(), start_order.end(), [&](std::size_t a, std::size_t b) {
    const auto rank = [&](std::size_t i) {
      const auto& kind = plan.stages[i].kind;
      if (kind == "latent_stats") return 0;
      if (kind == "autoencoder" || kind == "denoiser" || kind == "reconstruction") return 1;
      return kind == "sample" ? 2 : 3;
    };
    return rank(a) < rank(b);
  });
  std::map<std::size_t, StageState> states;
  std::map<std::size_t, std::string> stage_errors;
  for (const auto index : needed) {
    const bool done = fs::is_directory(paths.stage_dir(plan.stages[index]));
    states[index] = done ? StageState::Done : StageState::Waiting;
    if (done) ++summary.stages_reused;
  }
  remove_stale_temporaries(paths.folder);
  remove_stale_temporaries(paths.folder / "trials");
  std::set<std::string> kinds;  // the job files, .failed files and logs of the stages live here
  for (const auto index : needed) kinds.insert(plan.stages[index].kind);
  for (const auto& kind : kinds) remove_stale_temporaries(paths.cache / kind);
  for (const auto& trial : plan.trials) remove_stale_temporaries(paths.folder / "samples" / trial.trial.id);
  std::vector<std::string> trial_errors(plan.trials.size());
  std::vector<bool> trial_ended(plan.trials.size(), false);
  write_sweep_index(plan, options, trial_errors);

  struct Running {
    std::size_t stage;
    std::unique_ptr<FileLock> lock;
    Clock::time_point started;
    int threads;
    WorkerChannel channel;
  };
  std::map<pid_t, Running> running;
  std::map<pid_t, WorkerChannel> idle;  // workers waiting for their next stage
  // However run_sweep ends (a throw included): the waiting workers end when their socket closes (given
  // ten seconds, then killed); a running one (only after a throw) is killed.
  struct Workers {
    std::map<pid_t, Running>& running;
    std::map<pid_t, WorkerChannel>& idle;
    ~Workers() {
      std::set<pid_t> left;
      for (auto& [pid, r] : running) {
        ::kill(pid, SIGKILL);
        r.channel.close();
        left.insert(pid);
      }
      for (auto& [pid, channel] : idle) {
        channel.close();
        left.insert(pid);
      }
      const auto deadline = Clock::now() + std::chrono::seconds(10);
      while (!left.empty()) {
        for (auto it = left.begin(); it != left.end();)
          it = ::waitpid(*it, nullptr, WNOHANG) != 0 ? left.erase(it) : std::next(it);
        if (left.empty()) break;
        if (Clock::now() > deadline) {
          for (const auto pid : left) ::kill(pid, SIGKILL);
          for (const auto pid : left) ::waitpid(pid, nullptr, 0);
          break;
        }
        ::usleep(10000);
      }
    }
  } workers_guard{running, idle};
  std::set<std::size_t> elsewhere;                          // locked by another process
  std::map<std::string, std::pair<double, int>> durations;  // kind -> (seconds, count) this run
  const auto started = Clock::now();
  auto last_report = Clock::now() - std::chrono::hours(1);
  std::string last_line;
  const bool tty = ::isatty(2);

  std::map<std::string, std::size_t> index_of_key;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) index_of_key[plan.stages[i].key] = i;
  const auto inputs_of = [&](std::size_t index) {
    std::vector<std::size_t> out;
    for (const auto& [role, key] : plan.stages[index].inputs) out.push_back(index_of_key.at(key));
    return out;
  };
  const auto fail = [&](std::size_t index, const std::string& reason) {
    states[index] = StageState::Failed;
    stage_errors[index] = reason;
    ++summary.stages_failed;
    try {
      write_text_atomically(paths.failed_file(plan.stages[index]), reason + "\n");
    } catch (const std::exception&) {
    }
    spdlog::error("{} failed: {}", describe(plan.stages[index]), reason);
  };
  // A stage its worker reported done (after `inside` seconds of its own) in the folder it should be.
  const auto stage_finished = [&](std::size_t index, Clock::time_point since, double inside) {
    const auto& job = plan.stages[index];
    if (!fs::is_directory(paths.stage_dir(job))) {
      fail(index, "its worker reported it done, but " + paths.stage_dir(job).string() + " is missing");
      return;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - since).count();
    states[index] = StageState::Done;
    ++summary.stages_run;
    summary.stage_seconds += inside;
    durations[job.kind].first += seconds;
    durations[job.kind].second += 1;
    spdlog::info("finished {} in {}", describe(job), duration_text(seconds));
  };
  const auto end_trials = [&] {
    bool changed = false;
    for (const auto t : trials) {
      if (trial_ended[t]) continue;
      const auto& trial = plan.trials[t];
      bool all_done = true, any_failed = false;
      std::string reason;
      for (const auto index : trial.stages) {
        all_done = all_done && states[index] == StageState::Done;
        if (states[index] == StageState::Failed) {
          any_failed = true;
          if (reason.empty()) reason = describe(plan.stages[index]) + ": " + stage_errors[index];
        }
      }
      // A failed trial ends once nothing of it is running.
      bool busy = false;
      for (const auto& [pid, r] : running)
        busy = busy || std::find(trial.stages.begin(), trial.stages.end(), r.stage) != trial.stages.end();
      if (!(all_done || (any_failed && !busy))) continue;
      trial_ended[t] = true;
      trial_errors[t] = any_failed ? reason : "";
      (any_failed ? summary.trials_failed : summary.trials_done)++;
      if (any_failed) summary.failures.push_back(trial.trial.id + ": " + reason);
      try {
        const auto input = trial_input(plan, trial, options, states, trial_errors[t]);
        write_trial_file(paths.trial_file(trial.trial.id), input);
        // The sample grids under the trial's name, where a person looks for them.
        const auto copy = [&](const fs::path& from, const std::string& name) {
          if (!fs::exists(from)) return;
          write_atomically(paths.folder / "samples" / trial.trial.id / name, [&](const fs::path& temporary) {
            fs::copy_file(from, temporary, fs::copy_options::overwrite_existing);
          });
        };
        for (const auto& eval : input.evals)
          if (eval.samples) copy(*eval.samples / "samples.png", eval.label + ".png");
        if (input.reconstruction) copy(*input.reconstruction / "reconstructions.png", "reconstructions.png");
      } catch (const std::exception& e) {
        spdlog::error("trial {}: could not write its trial file: {}", trial.trial.id, e.what());
      }
      spdlog::info("trial {} {}: {}", trial.trial.id, any_failed ? "failed" : "done",
                   paths.trial_file(trial.trial.id).string());
      changed = true;
    }
    if (!changed) return;
    write_sweep_index(plan, options, trial_errors);
    if (options.on_trial_end) try {
        options.on_trial_end();
      } catch (const std::exception& e) {
        spdlog::warn("after a trial ended: {}", e.what());
      }
  };
  const auto report = [&](bool force) {
    std::size_t done = 0, failed = 0;
    for (const auto& [index, state] : states) {
      done += state == StageState::Done;
      failed += state == StageState::Failed;
    }
    // ETA: the mean duration of each kind's stages finished in this run, for the ones left.
    double eta = 0;
    bool known = true;
    for (const auto& [index, state] : states) {
      if (state == StageState::Done || state == StageState::Failed) continue;
      const auto it = durations.find(plan.stages[index].kind);
      if (it == durations.end())
        known = false;
      else
        eta += it->second.first / it->second.second / workers;
    }
    std::ostringstream line;
    line << "sweep " << plan.name << ": " << done << "/" << states.size() << " stages done";
    if (failed) line << ", " << failed << " failed";
    line << ", " << running.size() << " running";
    if (!elsewhere.empty()) line << ", " << elsewhere.size() << " elsewhere";
    const auto counts = line.str();
    // A live line on a terminal (every second); otherwise a log line when the counts change, at the
    // end, and every 30 s.
    const bool changed = counts != last_line;
    const bool due = Clock::now() - last_report > std::chrono::seconds(tty ? 1 : 30);
    if (!(force || changed || due)) return;
    line << ", elapsed " << duration_text(std::chrono::duration<double>(Clock::now() - started).count())
         << ", ETA " << (known ? duration_text(eta) : "?");
    for (const auto& [pid, r] : running) {
      const auto progress = progress_line(paths.log_file(plan.stages[r.stage]));
      if (!progress.empty()) line << " | " << plan.stages[r.stage].kind << ": " << progress;
    }
    if (tty) {
      std::fprintf(stderr, "\r\033[K%s%s", line.str().substr(0, 200).c_str(), force ? "\n" : "");
    } else if (!force || changed) {
      spdlog::info("{}", line.str());
    }
    last_line = counts;
    last_report = Clock::now();
  };

  // Each stage's job file: the job, its input folders, the device, what the stage resolved (its
  // parameters, its plugins), and for the denoiser its schedule (/snr of the trial files).
  const auto job_record = [&](std::size_t index) {
    const auto& job = plan.stages[index];
    json record = job.to_json();
    json input_dirs = json::object();
    for (const auto& [role, key] : job.inputs)
      input_dirs[role] = paths.stage_dir(plan.stages[index_of_key.at(key)]).string();
    record["input_dirs"] = input_dirs;
    record["device"] = options.device;
    if (options.registry) {
      const auto stage = make_stage(job, *options.registry);
      record["resolved"] = stage->config();
      record["plugins"] = stage->plugins();
      if (job.kind == "denoiser") {
        const auto& schedule_config = record["resolved"]["schedule"];
        const auto schedule = options.registry->create<Schedule>(
            schedule_config.at("name").get<std::string>(), schedule_config.at("params"), "denoiser.schedule");
        std::vector<double> alpha, sigma;
        for (std::int64_t t = 1; t <= schedule->num_steps(); ++t) {
          alpha.push_back(schedule->alpha(t));
          sigma.push_back(schedule->sigma(t));
        }
        record["snr"] = {{"alpha", alpha}, {"sigma", sigma}};
      }
    }
    return record;
  };
  for (const auto index : needed)
    if (states[index] == StageState::Waiting || !fs::exists(paths.job_file(plan.stages[index])))
      write_text_atomically(paths.job_file(plan.stages[index]), job_record(index).dump(2) + "\n");

  end_trials();
  bool stopping = false;
  while (true) {
    if (options.stop && options.stop->load() && !stopping) {
      stopping = true;
      summary.interrupted = true;
      spdlog::warn("interrupted: asking {} worker(s) to checkpoint and stop", running.size());
      for (const auto& [pid, r] : running) ::kill(pid, SIGTERM);
    }
    // Start what is ready, training stages first.
    if (!stopping)
      for (const auto index : start_order) {
        if (static_cast<int>(running.size()) >= workers) break;
        if (states[index] != StageState::Waiting) continue;
        const auto inputs = inputs_of(index);
        bool ready = true, input_failed = false;
        for (const auto input : inputs) {
          ready = ready && states[input] == StageState::Done;
          input_failed = input_failed || states[input] == StageState::Failed;
        }
        if (input_failed) {
          states[index] = StageState::Failed;
          stage_errors[index] = "an input stage failed";
          continue;
        }
        if (!ready) continue;
        const auto& job = plan.stages[index];
        auto lock = std::make_unique<FileLock>(paths.lock_file(job));
        if (!lock->held()) {
          elsewhere.insert(index);
          continue;
        }
        elsewhere.erase(index);
        if (fs::is_directory(paths.stage_dir(job))) {  // finished by another process meanwhile
          states[index] = StageState::Done;
          ++summary.stages_reused;
          continue;
        }
        // A training stage continues its checkpoint; any other starts afresh.
        const auto work = paths.work_dir(job);
        if (fs::exists(work) && !fs::exists(work / "checkpoint.pt")) fs::remove_all(work);
        fs::create_directories(work);
        remove_stale_temporaries(work);
        fs::remove(paths.failed_file(job));
        write_text_atomically(paths.job_file(job), job_record(index).dump(2) + "\n");
        std::ofstream(paths.log_file(job), std::ios::app)
            << "---- " << now_text() << " " << describe(job) << " (trial " << job.trial << ")\n";
        // The threads not in use, shared between this stage and the others ready to start with it: one
        // stage that runs alone (an autoencoder everything waits for) gets the whole machine.
        int used = 0;
        for (const auto& [other_pid, other] : running) used += other.threads;
        std::size_t startable = 0;
        for (const auto other : needed) {
          if (states[other] != StageState::Waiting || elsewhere.count(other)) continue;
          bool inputs_done = true;
          for (const auto input : inputs_of(other))
            inputs_done = inputs_done && states[input] == StageState::Done;
          startable += inputs_done;
        }
        const auto slots = std::max<std::size_t>(
            1, std::min<std::size_t>(static_cast<std::size_t>(workers) - running.size(), startable));
        const int threads = std::max(1, (total_threads - used) / static_cast<int>(slots));
        // A waiting worker takes it (one that ended meanwhile is reaped below); else a new one starts.
        pid_t pid = -1;
        WorkerChannel channel;
        while (pid < 0 && !idle.empty()) {
          auto waiting = idle.begin();
          pid = waiting->first;
          channel = std::move(waiting->second);
          idle.erase(waiting);
          if (!send_stage(channel, options, job, threads)) {
            channel.close();
            pid = -1;
          }
        }
        const bool fresh = pid < 0;
        if (fresh) {
          pid = spawn_worker(options, paths.log_file(job), threads, channel);
          ++summary.workers_started;
          send_stage(channel, options, job, threads);  // if it died already, waitpid says how
        }
        spdlog::info("started {} ({} worker {}, {} thread{}, log {})", describe(job),
                     fresh ? "new" : "waiting", pid, threads, threads == 1 ? "" : "s",
                     paths.log_file(job).string());
        states[index] = StageState::Running;
        running[pid] = {index, std::move(lock), Clock::now(), threads, std::move(channel)};
      }
    // Stages locked by another process: done when their folder appears, ours to run if the lock frees.
    for (auto it = elsewhere.begin(); it != elsewhere.end();) {
      const auto& job = plan.stages[*it];
      if (fs::is_directory(paths.stage_dir(job))) {
        states[*it] = StageState::Done;
        ++summary.stages_reused;
        it = elsewhere.erase(it);
      } else if (stopping) {
        it = elsewhere.erase(it);
      } else {
        ++it;
      }
    }
    // Wait for a worker to say a stage is done, or to end (its socket closes), or for the next look
    // at the stages locked elsewhere.
    {
      std::vector<pollfd> fds;
      for (const auto& [worker, r] : running) fds.push_back({r.channel.fd, POLLIN, 0});
      ::poll(fds.data(), fds.size(), running.empty() && !elsewhere.empty() ? 500 : 50);
    }
    for (auto it = running.begin(); it != running.end();) {
      const auto results = read_results(it->second.channel);
      if (results.empty()) {
        ++it;
        continue;
      }
      stage_finished(it->second.stage, it->second.started, results.front());
      // The worker waits for its next stage, unless the run is stopping or on a GPU (where an idle
      // worker's CUDA context and cached blocks would hold memory the next stage may need).
      if (stopping || options.fresh_workers || on_gpu)
        it->second.channel.close();
      else
        idle[it->first] = std::move(it->second.channel);
      it = running.erase(it);  // releases the lock
    }
    // Reap workers.
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (const auto waiting = idle.find(pid); waiting != idle.end()) {
        waiting->second.close();
        idle.erase(waiting);
        continue;
      }
      const auto it = running.find(pid);
      if (it == running.end()) continue;
      const auto index = it->second.stage;
      const auto& job = plan.stages[index];
      // A line it wrote just before it ended still counts.
      const auto results = read_results(it->second.channel);
      it->second.channel.close();
      if (!results.empty()) {
        stage_finished(index, it->second.started, results.front());
      } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fail(index, "its worker ended without finishing it; log: " + paths.log_file(job).string());
      } else if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        states[index] = StageState::Waiting;  // interrupted: its checkpoint is in the work folder
        spdlog::warn("{} stopped at its checkpoint; run again to continue", describe(job));
      } else if (WIFSIGNALED(status)) {
        const int signal = WTERMSIG(status);
        fail(index, "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ") in " +
                        job.kind + job_plugins(job) + "; log: " + paths.log_file(job).string());
      } else {
        const auto line = failure_line(paths.log_file(job));
        fail(index, (line.empty() ? "exit status " + std::to_string(WEXITSTATUS(status)) : line) +
                        "; log: " + paths.log_file(job).string());
      }
      running.erase(it);  // releases the lock
    }
    // Propagate failures to the stages that need them.
    for (const auto index : needed) {
      if (states[index] != StageState::Waiting) continue;
      for (const auto input : inputs_of(index))
        if (states[input] == StageState::Failed) {
          states[index] = StageState::Failed;
          stage_errors[index] = "its input " + describe(plan.stages[input]) + " failed";
        }
    }
    end_trials();
    report(false);
    bool more = false;
    for (const auto index : needed) {
      if (states[index] != StageState::Waiting) continue;
      bool blocked = false;
      for (const auto input : inputs_of(index)) blocked = blocked || states[input] == StageState::Failed;
      more = more || !blocked;
    }
    if (running.empty() && (stopping || (!more && elsewhere.empty()))) break;
  }
  report(true);
  write_sweep_index(plan, options, trial_errors);
  return summary;
}
}  // namespace latentlab::sweep
