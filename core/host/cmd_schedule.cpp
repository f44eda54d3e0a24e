// `latentlab schedule NAME`: the schedule's t, beta, alpha, sigma and log SNR for t = 1..T.
#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/schedule_checks.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::host {
namespace {

std::string full(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace

int run_schedule(const Args& args) {
  CommonOptions common;
  std::string name, format = "table", params_json;
  std::vector<std::string> sets;
  std::int64_t every = 1;
  bool check = false;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("set", po::value(&sets)->composing(), "parameter override key=value; repeatable (e.g. --set T=500)")
      ("params", po::value(&params_json), "parameters as a JSON object (e.g. '{\"T\": 500}')")
      ("format", po::value(&format)->default_value("table"), "table, csv or json")
      ("every", po::value(&every)->default_value(1), "print every N-th step (and always t = T)")
      ("check", po::bool_switch(&check), "run the schedule conformance checks instead (exit 1 on failure)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("name", po::value(&name));
  po::variables_map vm;
  const std::string usage =
      "latentlab schedule NAME [--set key=value]... [--params JSON] [--format table|csv|json] [--every N]\n"
      "       latentlab schedule NAME --check [--set key=value]... [--format table|json]";
  if (!parse_command_line("schedule", args, options, positional, usage,
                          "Prints, for t = 1..T, the columns t, beta, alpha, sigma and log_snr (natural "
                          "log of alpha^2/sigma^2) of a noise schedule plugin (NAME: see `latentlab plugins "
                          "list`). csv and json carry full "
                          "double precision. With --check, runs the conformance checks every schedule "
                          "must pass (Eq. 4, 6, 7) and reports each.",
                          vm))
    return kOk;
  if (name.empty()) throw ConfigError("schedule: which schedule? Usage: " + usage);
  if (format != "table" && format != "csv" && format != "json")
    throw ConfigError("--format: expected table, csv or json, got '" + format + "'" +
                      did_you_mean(format, {"table", "csv", "json"}));
  if (every < 1) throw ConfigError("--every: must be >= 1, got " + std::to_string(every));

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const nlohmann::json params = parse_parameter_overrides(params_json, sets);
  const std::string path = "schedule." + name;
  const auto schedule = registry->create<Schedule>(name, params, path);
  const nlohmann::json& resolved = schedule.params;

  if (check) {
    if (format == "csv") throw ConfigError("--check: use --format table or json");
    return print_checks(Schedule::kKind, name, resolved, check_schedule(*schedule), format == "json",
                        /*details=*/true);
  }

  const std::int64_t T = schedule->num_steps();
  std::vector<std::int64_t> steps;
  for (std::int64_t t = 1; t <= T; t += every) steps.push_back(t);
  if (steps.back() != T) steps.push_back(T);

  if (format == "json") {
    nlohmann::json out = {{"schedule", name}, {"params", resolved}, {"T", T}};
    for (const char* column : {"t", "beta", "alpha", "sigma", "log_snr"})
      out[column] = nlohmann::json::array();
    for (const auto t : steps) {
      out["t"].push_back(t);
      out["beta"].push_back(schedule->beta(t));
      out["alpha"].push_back(schedule->alpha(t));
      out["sigma"].push_back(schedule->sigma(t));
      out["log_snr"].push_back(schedule->log_snr(t));
    }
    std::cout << out.dump() << "\n";
  } else if (format == "csv") {
    std::cout << "t,beta,alpha,sigma,log_snr\n";
    for (const auto t : steps)
      std::cout << t << "," << full(schedule->beta(t)) << "," << full(schedule->alpha(t)) << ","
                << full(schedule->sigma(t)) << "," << full(schedule->log_snr(t)) << "\n";
  } else {
    std::cout << "# schedule " << name << " " << resolved.dump() << "\n";
    std::printf("%8s %14s %14s %14s %14s\n", "t", "beta", "alpha", "sigma", "log_snr");
    std::fflush(stdout);
    for (const auto t : steps)
      std::printf("%8lld %14.6e %14.8f %14.8f %14.6f\n", static_cast<long long>(t), schedule->beta(t),
                  schedule->alpha(t), schedule->sigma(t), schedule->log_snr(t));
  }
  std::fflush(stdout);
  return kOk;
}

}  // namespace latentlab::host
