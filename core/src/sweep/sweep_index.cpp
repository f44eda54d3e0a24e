#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "latentlab/io/atomic_file.hpp"
#include "latentlab/stages/sample_stage.hpp"
#include "latentlab/sweep/runner.hpp"
#include "runner_support.hpp"

// The sweep's reports: stage states from the cache, the dry run, sweep.json and summary.csv, and
// `latentlab status`.
namespace latentlab::sweep {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace detail;

const char* to_string(StageState state) {
  switch (state) {
    case StageState::Done:
      return "done";
    case StageState::Failed:
      return "failed";
    case StageState::Running:
      return "running";
    case StageState::Waiting:
      return "waiting";
  }
  return "?";
}

StageState stage_state(const SweepPaths& paths, const StageJob& job) {
  if (fs::is_directory(paths.stage_dir(job))) return StageState::Done;
  if (fs::exists(paths.lock_file(job))) {
    const FileLock probe(paths.lock_file(job));
    if (!probe.held()) return StageState::Running;
  }
  if (fs::exists(paths.failed_file(job))) return StageState::Failed;
  return StageState::Waiting;
}
std::string dry_run_report(const Plan& plan, const SweepPaths& paths, const std::string& only) {
  std::ostringstream out;
  std::vector<std::string> header = {"trial"};
  for (const auto& axis : plan.axes) header.push_back(axis.name);
  out << "sweep " << plan.name << ": " << plan.trials.size() << " trials, " << plan.stages.size()
      << " distinct stages; results in " << paths.folder.string() << "\n";
  if (!plan.auto_precision.empty()) out << "precision auto: " << plan.auto_precision << "\n";
  out << "\n";
  out << join(header, "  ") << "\n";
  std::set<std::size_t> needed;
  for (const auto& trial : plan.trials) {
    if (!only.empty() && trial.trial.id != only) continue;
    std::vector<std::string> row = {trial.trial.id};
    for (const auto& axis : plan.axes) row.push_back(value_text(trial.trial.values.value(axis.name, json())));
    out << join(row, "  ") << "\n";
    needed.insert(trial.stages.begin(), trial.stages.end());
  }
  out << "\nstages:\n";
  std::map<std::string, std::pair<std::size_t, std::size_t>> per_kind;  // kind -> (cached, to run)
  std::size_t to_run = 0;
  for (const auto index : needed) {
    const auto& job = plan.stages[index];
    const auto state = stage_state(paths, job);
    const bool cached = state == StageState::Done;
    out << "  " << (cached ? "cached " : "to run ") << job.kind << " " << job.key.substr(0, 12) << "  "
        << job.path << (job.label.empty() ? "" : " '" + job.label + "'") << job_plugins(job)
        << (state == StageState::Running  ? " (running elsewhere)"
            : state == StageState::Failed ? " (failed before)"
                                          : "")
        << "\n";
    (cached ? per_kind[job.kind].first : per_kind[job.kind].second)++;
    if (!cached) ++to_run;
  }
  out << "\n" << to_run << " of " << needed.size() << " stages to run";
  std::vector<std::string> kinds;
  for (const auto& [kind, counts] : per_kind)
    kinds.push_back(kind + " " + std::to_string(counts.second) + "/" +
                    std::to_string(counts.first + counts.second));
  out << " (" << join(kinds) << ")\n";
  return out.str();
}
void write_sweep_index(const Plan& plan, const RunOptions& options, const std::vector<std::string>& errors) {
  const auto& paths = options.paths;
  json trials = json::array();
  json stages = json::object();
  for (const auto& job : plan.stages) {
    const auto state = stage_state(paths, job);
    json entry = {{"kind", job.kind},
                  {"path", job.path},
                  {"status", to_string(state)},
                  {"folder", paths.stage_dir(job).string()}};
    if (!job.label.empty()) entry["label"] = job.label;
    if (state == StageState::Failed) entry["error"] = read_text(paths.failed_file(job));
    stages[job.key] = entry;
  }
  // summary.csv: one row per trial, axis values and final metrics.
  std::vector<std::string> metric_columns;
  std::vector<std::map<std::string, std::string>> rows;
  const auto cell = [](const json& value) {
    if (value.is_null()) return std::string();
    if (value.is_number_float()) return format_number(value.get<double>());
    return value_text(value);
  };
  for (std::size_t t = 0; t < plan.trials.size(); ++t) {
    const auto& trial = plan.trials[t];
    std::string status = "done";
    std::string error = t < errors.size() ? errors[t] : "";
    json keys = json::object();
    for (const auto index : trial.stages) {
      const auto& job = plan.stages[index];
      const auto state = stage_state(paths, job);
      keys[job.kind + (job.label.empty() ? "" : ":" + job.label)] = job.key;
      if (state == StageState::Failed) status = "failed";
      if (state != StageState::Done && status != "failed")
        status = state == StageState::Running ? "running" : "waiting";
    }
    if (!error.empty()) status = "failed";
    // Each eval entry's sampler, steps and guider as the stage resolves them (defaults filled in), so
    // that tables can place a trial before it ends.
    json evals = json::array();
    for (const auto& eval : trial.evals) {
      const auto& job = plan.stages[eval.sample];
      json entry = {{"label", eval.label}};
      try {
        const auto config = stages::SampleConfig::from_json(job.config, job.path);
        entry["sampler"] = config.sampler.name;
        entry["guider"] = config.guider.name;
        entry["steps"] = config.steps;
      } catch (const ConfigError&) {
        // Validated when the plan was made; nothing to add.
      }
      evals.push_back(entry);
    }
    json entry = {
        {"id", trial.trial.id},
        {"values", trial.trial.values},
        {"status", status},
        {"evals", evals},
        {"stages", keys},
        {"file",
         fs::exists(paths.trial_file(trial.trial.id)) ? paths.trial_file(trial.trial.id).string() : ""}};
    if (!error.empty()) entry["error"] = error;
    trials.push_back(entry);

    std::map<std::string, std::string> row = {{"trial", trial.trial.id}, {"status", status}};
    for (const auto& axis : plan.axes) row[axis.name] = cell(trial.trial.values.value(axis.name, json()));
    const auto add = [&](const std::string& column, const json& value) {
      if (std::find(metric_columns.begin(), metric_columns.end(), column) == metric_columns.end())
        metric_columns.push_back(column);
      row[column] = cell(value);
    };
    const auto metrics_of = [&](std::ptrdiff_t index, const char* file) {
      if (index < 0) return json();
      const auto& job = plan.stages[static_cast<std::size_t>(index)];
      if (stage_state(paths, job) != StageState::Done) return json();
      return json::parse(read_text(paths.stage_dir(job) / file), nullptr, false);
    };
    if (const auto rec = metrics_of(trial.reconstruction, "metrics.json"); rec.is_object())
      for (const char* key : {"psnr", "ssim", "psim", "rfid"})
        if (rec.contains(key)) add("reconstruction/" + std::string(key), rec.at(key));
    for (const auto& eval : trial.evals) {
      if (const auto m = metrics_of(eval.metrics, "metrics.json"); m.is_object())
        for (const char* key : {"fid", "kid_mean", "kid_std", "is_mean", "precision", "recall", "accuracy",
                                "ref_psnr", "ref_ssim"})
          if (m.contains(key)) add(eval.label + "/" + key, m.at(key));
      if (const auto s = metrics_of(static_cast<std::ptrdiff_t>(eval.sample), "samples.json"); s.is_object())
        if (s.contains("samples_per_second"))
          add(eval.label + "/samples_per_second", s.at("samples_per_second"));
    }
    if (trial.denoiser >= 0) {
      const auto& job = plan.stages[static_cast<std::size_t>(trial.denoiser)];
      if (stage_state(paths, job) == StageState::Done) {
        std::ifstream in(paths.stage_dir(job) / "eval.csv");
        std::string header, line, last;
        std::getline(in, header);
        while (std::getline(in, line))
          if (!line.empty()) last = line;
        std::stringstream h(header), v(last);
        for (std::string name, value; std::getline(h, name, ',') && std::getline(v, value, ',');)
          if (name == "elbo_bpd" || name == "loss_simple") add("denoiser/" + name, json(value));
      }
    }
    rows.push_back(row);
  }
  std::vector<std::string> columns = {"trial", "status"};
  for (const auto& axis : plan.axes) columns.push_back(axis.name);
  columns.insert(columns.end(), metric_columns.begin(), metric_columns.end());
  std::ostringstream csv;
  const auto quoted = [](const std::string& text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string out = "\"";
    for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  for (std::size_t i = 0; i < columns.size(); ++i) csv << (i ? "," : "") << quoted(columns[i]);
  csv << "\n";
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const auto it = row.find(columns[i]);
      csv << (i ? "," : "") << quoted(it == row.end() ? "" : it->second);
    }
    csv << "\n";
  }
  json axes = json::array();
  for (const auto& axis : plan.axes)
    axes.push_back({{"name", axis.name}, {"path", axis.path}, {"zip", axis.zip}, {"values", axis.values}});
  const json index = {
      {"name", plan.name},
      {"description", options.spec.is_object() && options.spec.value("description", json()).is_string()
                          ? options.spec["description"]
                          : json("")},
      {"spec", options.spec},
      {"axes", axes},
      {"trials", trials},
      {"stages", stages},
      {"cache", paths.cache.string()},
      {"updated", now_text()}};
  fs::create_directories(paths.folder);
  write_text_atomically(paths.folder / "sweep.json", index.dump(2) + "\n");
  write_text_atomically(paths.folder / "summary.csv", csv.str());
}
std::string status_report(const fs::path& folder) {
  const auto index_file = folder / "sweep.json";
  if (!fs::exists(index_file))
    throw ConfigError(folder.string() +
                      " holds no sweep.json; give a sweep's results folder (results/NAME), "
                      "written by `latentlab run SPEC`");
  const auto index = json::parse(read_text(index_file), nullptr, false);
  if (!index.is_object()) throw Error(index_file.string() + " is not valid JSON");
  SweepPaths paths{folder, index.value("cache", (folder / "cache").string())};
  std::ostringstream out;
  std::map<std::string, std::size_t> counts;
  const auto& stages = index.at("stages");
  out << "sweep " << index.value("name", std::string("?")) << " (" << index.at("trials").size()
      << " trials)\n";
  for (const auto& trial : index.at("trials")) {
    std::vector<std::string> parts;
    std::string trial_status = "done";
    for (const auto& [role, key_json] : trial.at("stages").items()) {
      const auto key = key_json.get<std::string>();
      const auto& stage = stages.at(key);
      StageJob job;
      job.kind = stage.at("kind").get<std::string>();
      job.key = key;
      const auto state = stage_state(paths, job);
      std::string text = role + " " + to_string(state);
      if (state == StageState::Running) {
        const auto progress = progress_line(paths.log_file(job));
        if (!progress.empty()) text += " (" + progress + ")";
        if (trial_status != "failed") trial_status = "running";
      } else if (state == StageState::Failed) {
        auto reason = read_text(paths.failed_file(job));
        while (!reason.empty() && reason.back() == '\n') reason.pop_back();
        text += " (" + reason + ")";
        trial_status = "failed";
      } else if (state == StageState::Waiting && trial_status == "done") {
        trial_status = "waiting";
      }
      parts.push_back(text);
    }
    ++counts[trial_status];
    out << trial.at("id").get<std::string>() << ": " << trial_status << "\n";
    for (const auto& part : parts) out << "    " << part << "\n";
  }
  std::vector<std::string> totals;
  for (const auto& [status, n] : counts) totals.push_back(std::to_string(n) + " " + status);
  out << join(totals) << "\n";
  return out.str();
}
}  // namespace latentlab::sweep
