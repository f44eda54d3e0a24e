// `latentlab plugins list` and `latentlab plugins show NAME`.
#include <algorithm>
#include <iomanip>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/sampling/sampler_bench.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::host {
namespace {

void print_list(const registry::Registry& registry, bool as_json) {
  auto entries = registry.entries();
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.info.kind, a.info.name) < std::tie(b.info.kind, b.info.name);
  });
  if (as_json) {
    nlohmann::json out = {{"plugins", nlohmann::json::array()}, {"not_loaded", nlohmann::json::array()}};
    for (const auto& e : entries)
      out["plugins"].push_back({{"kind", e.info.kind},
                                {"name", e.info.name},
                                {"description", e.info.description},
                                {"version", e.library_version},
                                {"library", e.library.string()}});
    for (const auto& f : registry.failed())
      out["not_loaded"].push_back({{"library", f.path.string()}, {"reason", f.reason}});
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::size_t kind_w = 4, name_w = 4, version_w = 7;
  for (const auto& e : entries) {
    kind_w = std::max(kind_w, e.info.kind.size());
    name_w = std::max(name_w, e.info.name.size());
    version_w = std::max(version_w, e.library_version.size());
  }
  std::cout << std::left << std::setw(kind_w + 2) << "KIND" << std::setw(name_w + 2) << "NAME"
            << std::setw(version_w + 2) << "VERSION"
            << "LIBRARY\n";
  for (const auto& e : entries)
    std::cout << std::setw(kind_w + 2) << e.info.kind << std::setw(name_w + 2) << e.info.name
              << std::setw(version_w + 2) << e.library_version << e.library.string() << "\n";
  if (entries.empty()) std::cout << "(no plugins loaded)\n";
  if (!registry.failed().empty()) {
    std::cout << "\nnot loaded:\n";
    for (const auto& f : registry.failed())
      std::cout << "  " << f.path.string() << "\n    " << f.reason << "\n";
  }
}

void print_show(const registry::Entry& entry, bool as_json) {
  if (as_json) {
    nlohmann::json out = {{"kind", entry.info.kind},
                          {"name", entry.info.name},
                          {"description", entry.info.description},
                          {"library", entry.library.string()},
                          {"version", entry.library_version},
                          {"parameters", entry.info.schema.to_json()}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << entry.info.kind << " '" << entry.info.name << "': " << entry.info.description << "\n"
            << "library: " << entry.library.string() << " (version " << entry.library_version << ")\n\n";
  if (entry.info.schema.specs().empty()) {
    std::cout << "parameters: none\n";
    return;
  }
  std::cout << "parameters:\n";
  for (const auto& spec : entry.info.schema.specs()) {
    std::cout << "  " << spec.name << " (" << to_string(spec.type) << ", "
              << (spec.required() ? std::string("required") : "default " + spec.default_value.dump())
              << ")\n      " << spec.doc << "\n      allowed: " << spec.allowed() << "\n";
  }
}

// A sampler's conformance checks are the analytic bench's (`samplers check` shows its tables), on LDM's
// linear schedule and both data sets.
std::vector<CheckResult> bench_checks(const registry::Registry& registry, const Sampler& sampler,
                                      const std::string& name) {
  const auto schedule = registry.create<Schedule>("linear", nlohmann::json::object(), "schedule");
  std::vector<CheckResult> results;
  for (const auto& data_name : sampling::analytic_data_names()) {
    const auto report =
        sampling::bench_sampler(sampler, name, *schedule, *sampling::make_analytic_data(data_name));
    for (auto check : report.checks) {
      check.name = "[" + data_name + "] " + check.name;
      results.push_back(std::move(check));
    }
  }
  return results;
}

// `plugins check`: the conformance checks of the plugin's kind, with the given parameters.
int run_checks(const registry::Registry& registry, const registry::Entry& entry, const nlohmann::json& params,
               bool as_json) {
  const auto& [kind, name] = std::tie(entry.info.kind, entry.info.name);
  const auto path = kind + "." + name;
  std::vector<CheckResult> results;
  nlohmann::json resolved;  // the parameters the checked object was created with
  const auto checked = [&](auto instance) {
    resolved = instance.params;
    return instance.object;
  };
  if (kind == Schedule::kKind)
    results = check_schedule(*checked(registry.create<Schedule>(name, params, path)));
  else if (kind == LossWeighting::kKind)
    results = check_weighting(*checked(registry.create<LossWeighting>(name, params, path)));
  else if (kind == Dataset::kKind)
    results = check_dataset(*checked(registry.create<Dataset>(name, params, path)));
  else if (kind == Guider::kKind)
    results = check_guider(*checked(registry.create<Guider>(name, params, path)));
  else if (kind == Autoencoder::kKind)
    results = check_autoencoder([&] { return checked(registry.create<Autoencoder>(name, params, path)); });
  else if (kind == FeatureExtractor::kKind)
    results = check_feature_extractor(*checked(registry.create<FeatureExtractor>(name, params, path)));
  else if (kind == Conditioner::kKind)
    results = check_conditioner([&] { return checked(registry.create<Conditioner>(name, params, path)); });
  else if (kind == Sampler::kKind)
    results = bench_checks(registry, *checked(registry.create<Sampler>(name, params, path)), name);
  else
    throw ConfigError("plugins check: no conformance checks for kind '" + kind + "' yet");
  return print_checks(kind, name, resolved, results, as_json, /*details=*/false);
}

}  // namespace

int run_plugins(const Args& args) {
  CommonOptions common;
  std::string action, name, kind, format = "table", params_json;
  std::vector<std::string> sets;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("kind", po::value(&kind), "plugin kind, when a name exists in several kinds")
      ("format", po::value(&format)->default_value("table"), "table or json")
      ("set", po::value(&sets)->composing(), "check: parameter override key=value; repeatable")
      ("params", po::value(&params_json), "check: parameters as a JSON object");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("action", po::value(&action)).add("name", po::value(&name));
  po::variables_map vm;
  const std::string usage =
      "latentlab plugins [list] [--format table|json] [--plugin-path DIR]...\n"
      "       latentlab plugins show NAME [--kind KIND] [--format table|json]\n"
      "       latentlab plugins check NAME [--kind KIND] [--set key=value]... [--params JSON] [--format "
      "table|json]";
  if (!parse_command_line("plugins", args, options, positional, usage,
                          "Lists every loaded plugin (kind, name, version, library) and then the "
                          "libraries that were not loaded, with the reason; or shows one plugin's "
                          "description and parameter schema; or runs the conformance checks of one "
                          "plugin's kind on it (exit 1 when one fails).",
                          vm))
    return kOk;
  if (action.empty()) action = "list";
  if (action != "list" && action != "show" && action != "check")
    throw ConfigError("plugins: expected 'list', 'show' or 'check', got '" + action + "'" +
                      did_you_mean(action, {"list", "show", "check"}) + "\nUsage: " + usage);
  if (format != "table" && format != "json")
    throw ConfigError("--format: expected table or json, got '" + format + "'");
  if (!kind.empty()) {
    const auto& kinds = plugin_kinds();
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
      throw ConfigError("--kind: unknown kind '" + kind + "'" + did_you_mean(kind, kinds) +
                        "; kinds: " + join(kinds));
  }
  apply_logging(common);
  const auto registry = load_registry(common, /*warn_failures=*/false);
  apply_threads(common);

  if (action == "list") {
    if (!name.empty())
      throw ConfigError("plugins list takes no name (got '" + name +
                        "'); did you mean `latentlab plugins show " + name + "`?");
    print_list(*registry, format == "json");
    return kOk;
  }
  if (name.empty()) throw ConfigError("plugins " + action + ": which plugin? Usage: " + usage);
  std::vector<const registry::Entry*> matches;
  for (const auto& e : registry->entries())
    if (e.info.name == name && (kind.empty() || e.info.kind == kind)) matches.push_back(&e);
  if (matches.empty()) {
    if (!kind.empty()) registry->find(kind, name);  // throws with suggestions and failed libraries
    std::vector<std::string> all;
    for (const auto& e : registry->entries()) all.push_back(e.info.name);
    const std::string notes = registry->failed_notes("", name);
    throw ConfigError("no plugin named '" + name + "'" + did_you_mean(name, all) +
                      "; run `latentlab plugins list` to see them all" +
                      (notes.empty() ? std::string() : ". Plugin libraries that failed to load:\n" + notes));
  }
  if (matches.size() > 1) {
    std::vector<std::string> kinds;
    for (const auto* m : matches) kinds.push_back(m->info.kind);
    throw ConfigError("'" + name + "' names plugins of several kinds (" + join(kinds) + "); add --kind KIND");
  }
  if (action == "check")
    return run_checks(*registry, *matches.front(), parse_parameter_overrides(params_json, sets),
                      format == "json");
  print_show(*matches.front(), format == "json");
  return kOk;
}

}  // namespace latentlab::host
