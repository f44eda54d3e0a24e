// `latentlab samplers check`: the analytic test bench (latentlab/sampling/sampler_bench.hpp) on one,
// several or all loaded samplers.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/sampling/sampler_bench.hpp"
#include "latentlab/strings.hpp"
#include "sampler_report.hpp"

namespace latentlab::host {
namespace {

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) names.push_back(item);
  return names;
}

}  // namespace

int run_samplers(const Args& args) {
  CommonOptions common;
  std::string action, format = "table", params_json, steps_text, data_text = "gaussian,mixture";
  std::string schedule_name = "linear", schedule_params_json;
  std::vector<std::string> sampler_names, sets;
  sampling::SamplerBenchOptions options;
  po::options_description description("Options");
  // clang-format off
  description.add_options()
      ("sampler", po::value(&sampler_names)->composing(), "sampler to check (repeatable; default: every loaded sampler)")
      ("set", po::value(&sets)->composing(), "sampler parameter key=value (with one --sampler); repeatable")
      ("params", po::value(&params_json), "sampler parameters as a JSON object (with one --sampler)")
      ("steps", po::value(&steps_text), "comma-separated step budgets (default 10,20,40,80,160,320 and T)")
      ("data", po::value(&data_text)->default_value(data_text), "analytic data: gaussian, mixture or both")
      ("samples", po::value(&options.samples)->default_value(options.samples),
       "samples N per run for stochastic samplers (deterministic ones use the first min(N, 1024))")
      ("seed", po::value(&options.seed)->default_value(options.seed), "seed of z_T and the sampler's generator")
      ("tolerance", po::value(&options.tolerance)->default_value(options.tolerance),
       "deterministic samplers: largest relative error allowed at the largest budget")
      ("z-bound", po::value(&options.z_bound)->default_value(options.z_bound),
       "stochastic samplers: moments must lie within this many standard errors")
      ("schedule", po::value(&schedule_name)->default_value(schedule_name), "noise schedule plugin")
      ("schedule-params", po::value(&schedule_params_json), "its parameters as a JSON object")
      ("format", po::value(&format)->default_value(format), "table or json");
  // clang-format on
  add_common_options(description, common);
  Positionals positional;
  positional.add("action", po::value(&action));
  po::variables_map vm;
  const std::string usage =
      "latentlab samplers check [--sampler NAME]... [--set key=value]... [--steps 10,20,40] "
      "[--data gaussian,mixture] [--plugin-path DIR] [--format table|json]";
  if (!parse_command_line(
          "samplers", args, description, positional, usage,
          "Runs samplers on analytic data whose optimal eps_hat is closed form (docs/samplers.md): a "
          "deterministic sampler's output is compared with the exact probability-flow solution (relative "
          "error, empirical order over step doublings), a stochastic one's sample mean and variance with "
          "the data's (in standard errors). Exit status 1 when a sampler fails.",
          vm))
    return kOk;
  if (action != "check")
    throw ConfigError("samplers: expected the action 'check', got '" + action + "'\nUsage: " + usage);
  if (format != "table" && format != "json")
    throw ConfigError("--format: expected table or json, got '" + format + "'");
  if (!steps_text.empty()) options.steps = parse_positive_int_list(steps_text, "--steps");
  std::vector<std::unique_ptr<sampling::AnalyticData>> data;
  for (const auto& name : split_names(data_text)) data.push_back(sampling::make_analytic_data(name));
  const auto overrides = parse_parameter_overrides(params_json, sets);
  if (!overrides.empty() && sampler_names.size() != 1)
    throw ConfigError("--set/--params apply to one sampler: name it with --sampler NAME");

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const auto schedule = registry->create<Schedule>(
      schedule_name, parse_parameter_overrides(schedule_params_json, {}), "--schedule-params");
  if (sampler_names.empty())
    for (const auto& entry : registry->entries())
      if (entry.info.kind == Sampler::kKind) sampler_names.push_back(entry.info.name);
  if (sampler_names.empty()) throw ConfigError("samplers check: no sampler plugins are loaded");

  // Construct every sampler first, so a bad name or parameter fails before any run.
  std::vector<std::pair<std::shared_ptr<Sampler>, nlohmann::json>> samplers;
  for (const auto& name : sampler_names) {
    const auto path = "sampler." + name;
    auto sampler = registry->create<Sampler>(name, overrides, path);
    samplers.emplace_back(sampler.object, sampler.params);
  }
  std::vector<SamplerReportEntry> reports;
  for (std::size_t i = 0; i < samplers.size(); ++i)
    for (const auto& d : data) {
      reports.push_back(
          {sampling::bench_sampler(*samplers[i].first, sampler_names[i], *schedule, *d, options),
           samplers[i].second});
      if (format == "table") {
        print_sampler_report(std::cout, reports.back());
        std::cout.flush();
      }
    }
  bool passed = true;
  for (const auto& r : reports) passed = passed && r.report.passed();
  if (format == "json") {
    std::cout << sampler_reports_json(reports).dump(2) << "\n";
  } else {
    std::size_t failed = 0;
    for (const auto& r : reports) failed += r.report.passed() ? 0 : 1;
    std::cout << reports.size() - failed << " of " << reports.size() << " sampler/data pairs passed\n";
  }
  return passed ? kOk : kFailure;
}

}  // namespace latentlab::host
