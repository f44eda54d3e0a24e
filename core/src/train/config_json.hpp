#pragma once
// JSON helpers shared by the training configs (private to the core library).
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/error.hpp"
#include "latentlab/params.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/problem_list.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "latentlab/train/denoiser_config.hpp"

namespace latentlab::detail {

using nlohmann::json;

// The error for a required key `key` missing from the object at `path` ("" for the config's root).
inline ConfigError missing_key(const std::string& path, const std::string& key) {
  return ConfigError((path.empty() ? std::string("the config") : path) + ": missing required key '" + key +
                     "'");
}

// Checks that `object` at `path` is an object with only `allowed` keys (and the `required` ones).
inline void check_object(const json& object, const std::string& path, const std::vector<std::string>& allowed,
                         const std::vector<std::string>& required = {}) {
  const std::string where = path.empty() ? "the config" : path;
  if (!object.is_object()) throw ConfigError(where + ": expected a JSON object, got " + object.dump());
  ProblemList problems;  // every unknown and missing key at once
  for (const auto& item : object.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      problems.check([&] {
        throw ConfigError((path.empty() ? "" : path + ".") + item.key() + ": unknown key" +
                          did_you_mean(item.key(), allowed) + "; allowed: " + join(allowed));
      });
  for (const auto& key : required)
    if (!object.contains(key)) problems.check([&] { throw missing_key(path, key); });
  problems.throw_if_any();
}

inline PluginChoice plugin_choice(const json& config, const std::string& key, const std::string& name_key,
                                  const std::string& default_name) {
  PluginChoice choice{default_name, json::object()};
  if (!config.contains(key)) return choice;
  const auto& section = config.at(key);
  if (section.is_string()) {  // "schedule": "cosine" is short for {"name": "cosine"}
    choice.name = section.get<std::string>();
    return choice;
  }
  check_object(section, key, {name_key, "params"},
               default_name.empty() ? std::vector<std::string>{name_key} : std::vector<std::string>{});
  if (section.contains(name_key)) {
    if (!section.at(name_key).is_string())
      throw ConfigError(key + "." + name_key + ": expected a plugin name (string), got " +
                        section.at(name_key).dump());
    choice.name = section.at(name_key).get<std::string>();
  }
  if (section.contains("params")) {
    if (!section.at("params").is_object())
      throw ConfigError(key + ".params: expected a JSON object, got " + section.at("params").dump());
    choice.params = section.at("params");
  }
  return choice;
}

// A list of files given as one name or a list of names ("perceptual_weights", "lpips_weights").
// Throws ConfigError naming `where` for anything else.
inline std::vector<std::string> file_names(const json& value, const std::string& where) {
  const auto list = value.is_string() ? json::array({value}) : value;
  const auto bad = [&] {
    return ConfigError(where + ": expected a file name or a list of file names, got " + value.dump());
  };
  if (!list.is_array()) throw bad();
  std::vector<std::string> names;
  for (const auto& name : list) {
    if (!name.is_string()) throw bad();
    names.push_back(name.get<std::string>());
  }
  return names;
}

// The "data" section: {"dataset": NAME, "params": {...}, "hflip": bool}.
inline void parse_data_section(const json& input, PluginChoice& data, bool& hflip) {
  if (!input.contains("data")) throw missing_key("", "data");
  const auto& section = input.at("data");
  check_object(section, "data", {"dataset", "params", "hflip"}, {"dataset"});
  if (!section.at("dataset").is_string())
    throw ConfigError("data.dataset: expected a dataset plugin name, got " + section.at("dataset").dump());
  data.name = section.at("dataset").get<std::string>();
  if (section.contains("params")) {
    if (!section.at("params").is_object())
      throw ConfigError("data.params: expected a JSON object, got " + section.at("params").dump());
    data.params = section.at("params");
  }
  if (section.contains("hflip")) {
    if (!section.at("hflip").is_boolean()) throw ConfigError("data.hflip: expected true or false");
    hflip = section.at("hflip").get<bool>();
  }
}

// "output" (required, a non-empty string), "seed" (non-negative integer), "device" (string).
inline void parse_run_keys(const json& input, std::string& output, std::uint64_t& seed, std::string& device,
                           Precision& precision) {
  if (!input.contains("output")) throw missing_key("", "output");
  if (!input.at("output").is_string() || input.at("output").get<std::string>().empty())
    throw ConfigError("output: expected a folder name (string), got " + input.at("output").dump());
  output = input.at("output").get<std::string>();
  if (input.contains("seed")) {
    if (!input.at("seed").is_number_integer() || input.at("seed").get<std::int64_t>() < 0)
      throw ConfigError("seed: expected a non-negative integer, got " + input.at("seed").dump());
    seed = input.at("seed").get<std::uint64_t>();
  }
  if (input.contains("device")) {
    // The name is checked (and a GPU looked for) by resolve_device when the trainer is built.
    if (!input.at("device").is_string())
      throw ConfigError("device: expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got " +
                        input.at("device").dump());
    device = input.at("device").get<std::string>();
  }
  if (input.contains("precision")) {
    // Checked against the device (fp16 needs CUDA) by the trainer, once the device is resolved; "auto"
    // is resolved for that device now.
    if (!input.at("precision").is_string())
      throw ConfigError("precision: expected \"auto\", \"fp32\", \"bf16\" or \"fp16\", got " +
                        input.at("precision").dump());
    const auto text = input.at("precision").get<std::string>();
    precision = parse_precision_setting(text, device, "precision");
  }
}

// `params` with the keys of `overrides` replaced (the held-out dataset's parameters).
inline json merged(json params, const json& overrides) {
  for (const auto& item : overrides.items()) params[item.key()] = item.value();
  return params;
}

// The "eval" section without its "data_params" (which go to `data_params`; default {"split": "test"}),
// ready for the eval schema.
inline json eval_section(const json& input, json& data_params) {
  json eval = input.value("eval", json::object());
  if (!eval.is_object()) throw ConfigError("eval: expected a JSON object, got " + eval.dump());
  data_params = json{{"split", "test"}};
  if (eval.contains("data_params")) {
    if (!eval.at("data_params").is_object())
      throw ConfigError(
          "eval.data_params: expected a JSON object of dataset parameters (e.g. {\"split\": \"test\"})");
    data_params = eval.at("data_params");
    eval.erase("data_params");
  }
  return eval;
}

// train.betas as [beta1, beta2].
inline std::pair<double, double> betas(const Params& train) {
  const auto values = train.get_numbers("betas");
  if (values.size() != 2) throw ConfigError("train.betas: expected two numbers [beta1, beta2]");
  return {values[0], values[1]};
}

}  // namespace latentlab::detail
