#include "cli.hpp"
#include "latentlab/threads.hpp"

#include <ATen/Parallel.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::host {

void add_common_options(po::options_description& options, CommonOptions& common) {
  // clang-format off
  options.add_options()
      ("plugin-path", po::value(&common.plugin_paths)->composing(),
       "also load plugins from this folder (or .so file); repeatable")
      ("threads", po::value(&common.threads)->default_value(0),
       "intra-op threads (0: OMP_NUM_THREADS if set, else one per CPU this process may use)")
      ("log-level", po::value(&common.log_level)->default_value("info"),
       "trace, debug, info, warn, error or off")
      ("help,h", "show this help");
  // clang-format on
}

bool parse_command_line(const std::string& command, const std::vector<std::string>& args,
                        const po::options_description& options, const Positionals& positionals,
                        const std::string& usage, const std::string& summary, po::variables_map& vm) {
  try {
    po::options_description all;
    all.add(options).add(positionals.options);
    po::store(po::command_line_parser(args).options(all).positional(positionals.order).run(), vm);
    if (vm.count("help")) {
      std::cout << "Usage: " << usage << "\n\n" << summary << "\n\n" << options << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(std::string(e.what()) + "\nUsage: " + usage + "\nRun `latentlab " + command +
                      " --help` for the options.");
  }
  return true;
}

int hardware_threads() {
  // The CPUs this process may run on (taskset, Slurm, cgroup cpusets), not all the machine has.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void apply_logging(const CommonOptions& common) {
  // Logs go to stderr so that stdout carries only the command's output (tables, CSV, JSON).
  auto logger = spdlog::get("latentlab");
  if (!logger) {
    logger = spdlog::stderr_color_mt("latentlab");
    logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  }
  spdlog::set_default_logger(logger);
  const auto level = spdlog::level::from_str(common.log_level);
  if (level == spdlog::level::off && common.log_level != "off")
    throw ConfigError("--log-level: unknown level \"" + common.log_level +
                      "\"; use trace, debug, info, warn, error or off");
  spdlog::set_level(level);
  if (common.threads < 0)
    throw ConfigError("--threads: must be >= 0 (0 picks automatically), got " +
                      std::to_string(common.threads));
}

int apply_threads(const CommonOptions& common) {
  int threads = common.threads;
  if (threads == 0) {
    threads = hardware_threads();
    if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
      const int requested = std::atoi(omp);
      if (requested > 0) threads = requested;
    }
  }
  // LibTorch as packaged by Debian starts with one intra-op thread; use the machine.
  return set_compute_threads(threads);
}

int apply_common_options(const CommonOptions& common) {
  apply_logging(common);
  return apply_threads(common);
}

std::unique_ptr<registry::Registry> load_registry(const CommonOptions& common, bool warn_failures) {
  registry::RegistryOptions options;
  if (const char* probe = std::getenv("LATENTLAB_PLUGIN_PROBE")) options.probe = std::string(probe) != "0";
  auto registry = std::make_unique<registry::Registry>(options);
  std::vector<std::filesystem::path> extra(common.plugin_paths.begin(), common.plugin_paths.end());
  registry::load_standard_locations(*registry, extra);
  if (warn_failures)
    for (const auto& failure : registry->failed())
      spdlog::warn("plugin library {} not loaded: {}", failure.path.string(), failure.reason);
  return registry;
}

namespace {

// A --set value: JSON when it parses (500, 0.1, true, [0.1,0.2], "x"); a number when C would read one
// (.001, 0500, 1e-4); otherwise the bare word as a string (--set mode=posterior).
nlohmann::json parse_value(const std::string& key, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::out_of_range&) {
    throw ConfigError("--set " + key + "=" + text + ": the number is out of the range of a double");
  } catch (const nlohmann::json::exception&) {
  }
  if (!text.empty()) {
    char* end = nullptr;
    errno = 0;
    const long long integer = std::strtoll(text.c_str(), &end, 10);
    if (*end == '\0' && errno == 0) return integer;
    errno = 0;
    const double number = std::strtod(text.c_str(), &end);
    if (*end == '\0' && errno == 0 && text.find_first_of("0123456789") != std::string::npos) return number;
  }
  return text;
}

}  // namespace

nlohmann::json parse_parameter_overrides(const std::string& params_json,
                                         const std::vector<std::string>& sets) {
  nlohmann::json params = nlohmann::json::object();
  if (!params_json.empty()) {
    try {
      params = nlohmann::json::parse(params_json);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError(std::string("--params: not valid JSON (") + e.what() +
                        "); example: --params '{\"T\": 500}'");
    }
    if (!params.is_object())
      throw ConfigError("--params: expected a JSON object such as '{\"T\": 500}', got " + params.dump());
  }
  for (const auto& item : sets) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set \"" + item + "\": expected key=value, e.g. --set T=500");
    const std::string key = item.substr(0, eq), text = item.substr(eq + 1);
    params[key] = parse_value(key, text);
  }
  return params;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find(',', start), text.size());
    if (end > start) items.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

std::vector<std::int64_t> parse_positive_int_list(const std::string& text, const std::string& option) {
  return parse_int_list(text, option, 1);
}

std::vector<std::int64_t> parse_int_list(const std::string& text, const std::string& option,
                                         std::int64_t minimum) {
  std::vector<std::int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    try {
      std::size_t used = 0;
      const auto value = std::stoll(item, &used);
      if (used != item.size() || value < minimum) throw std::invalid_argument(item);
      values.push_back(value);
    } catch (const std::exception&) {
      throw ConfigError(
          option + ": expected " +
          (minimum == 1 ? std::string("positive integers") : "integers >= " + std::to_string(minimum)) +
          " separated by commas (e.g. 10,20,40), got '" + text + "'");
    }
  }
  if (values.empty()) throw ConfigError(option + ": expected at least one value");
  return values;
}

int print_checks(const std::string& kind, const std::string& name, const nlohmann::json& params,
                 const std::vector<CheckResult>& results, bool as_json, bool details) {
  const bool passed = std::all_of(results.begin(), results.end(), [](const auto& r) { return r.passed; });
  if (as_json) {
    nlohmann::json out = {{"kind", kind},
                          {"name", name},
                          {"params", params},
                          {"passed", passed},
                          {"checks", nlohmann::json::array()}};
    for (const auto& r : results)
      out["checks"].push_back({{"name", r.name}, {"passed", r.passed}, {"detail", r.detail}});
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << kind << " " << name << " " << params.dump() << "\n";
    for (const auto& r : results) {
      std::cout << (r.passed ? "[pass] " : "[FAIL] ") << r.name << "\n";
      if (details || !r.passed) std::cout << "       " << r.detail << "\n";
    }
    const auto failed =
        std::count_if(results.begin(), results.end(), [](const auto& r) { return !r.passed; });
    std::cout << "\n" << results.size() - failed << " checks passed, " << failed << " failed\n";
  }
  return passed ? kOk : kFailure;
}

}  // namespace latentlab::host
