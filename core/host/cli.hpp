#pragma once
// Pieces shared by the host's subcommands: common options, the registry, exit codes.
#include <memory>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "latentlab/json_number.hpp"
#include "latentlab/registry/registry.hpp"
#include "latentlab/schedule_checks.hpp"

namespace latentlab::host {

namespace po = boost::program_options;

// Exit status of every command (documented in docs/cli.md).
enum ExitCode : int { kOk = 0, kFailure = 1, kUsage = 2 };

extern const char* const kGitCommit;
extern const char* const kLatentLabVersion;

// Options every subcommand accepts.
struct CommonOptions {
  std::vector<std::string> plugin_paths;
  int threads = 0;  // 0: OMP_NUM_THREADS if set, else the number of cores
  std::string log_level = "info";
};

void add_common_options(po::options_description& options, CommonOptions& common);

// A command's positional arguments (NAME, ...): parsed like options, left out of --help, where the
// usage line names them.
struct Positionals {
  po::options_description options;
  po::positional_options_description order;
  Positionals& add(const char* name, const po::value_semantic* value) {
    options.add_options()(name, value);
    order.add(name, 1);
    return *this;
  }
};

// Parses `args` for a subcommand. Returns false when --help was given (help already printed).
// Throws ConfigError on bad arguments, naming the command and pointing to --help.
bool parse_command_line(const std::string& command, const std::vector<std::string>& args,
                        const po::options_description& options, const Positionals& positionals,
                        const std::string& usage, const std::string& summary, po::variables_map& vm);

// Applies --log-level and checks --threads (a ConfigError when negative).
void apply_logging(const CommonOptions& common);
// Applies --threads. Commands that load plugins call it after load_registry: the registry's probe
// forks, which is cleanest before LibTorch starts its thread pools. Returns the intra-op thread count.
int apply_threads(const CommonOptions& common);
// Both, for commands without plugins.
int apply_common_options(const CommonOptions& common);

// A registry with the built-in folder, LATENTLAB_PLUGIN_PATH and --plugin-path loaded. Libraries that
// failed are logged as warnings unless the command reports them itself. LATENTLAB_PLUGIN_PROBE=0
// turns off the probe process (for debugging a plugin in gdb).
std::unique_ptr<registry::Registry> load_registry(const CommonOptions& common, bool warn_failures = true);

// Merges --params JSON and --set key=value pairs into one JSON object. A value is read as JSON when
// it parses (500, 0.1, true, [0.1,0.2], "x"), otherwise as a string.
nlohmann::json parse_parameter_overrides(const std::string& params_json,
                                         const std::vector<std::string>& sets);

// "f,weighting" -> {"f", "weighting"} (empty items dropped).
std::vector<std::string> split_list(const std::string& text);

// "10,20,40" -> {10, 20, 40}; throws ConfigError naming `option` unless every item is an integer >= 1.
std::vector<std::int64_t> parse_positive_int_list(const std::string& text, const std::string& option);
// The same with the smallest allowed value `minimum`.
std::vector<std::int64_t> parse_int_list(const std::string& text, const std::string& option,
                                         std::int64_t minimum);

// Prints conformance check results (`schedule --check`, `plugins check`): a header line with the
// plugin and its resolved parameters, one line per check (the detail under each failure, or under
// every check when `details`), and a count; or, as JSON, {kind, name, params, passed, checks}.
// Returns kOk when every check passed, else kFailure.
int print_checks(const std::string& kind, const std::string& name, const nlohmann::json& params,
                 const std::vector<CheckResult>& results, bool as_json, bool details);

// Number of hardware threads (at least 1).
int hardware_threads();

}  // namespace latentlab::host
