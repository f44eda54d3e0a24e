#include "latentlab/train/denoiser_config.hpp"

#include "latentlab/error.hpp"
#include "latentlab/params.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

namespace {

using nlohmann::json;

// Checks that `object` at `path` is an object with only `allowed` keys (and the `required` ones).
void check_object(const json& object, const std::string& path, const std::vector<std::string>& allowed,
                  const std::vector<std::string>& required = {}) {
  const std::string where = path.empty() ? "the config" : path;
  if (!object.is_object()) throw ConfigError(where + ": expected a JSON object, got " + object.dump());
  for (const auto& item : object.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      throw ConfigError((path.empty() ? "" : path + ".") + item.key() + ": unknown key" +
                        did_you_mean(item.key(), allowed) + "; allowed: " + join(allowed));
  for (const auto& key : required)
    if (!object.contains(key)) throw ConfigError(where + ": missing required key '" + key + "'");
}

PluginChoice plugin_choice(const json& config, const std::string& key, const std::string& name_key,
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

const ParamSchema& train_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("steps", 1000, "optimiser steps", Range::at_least(1))
          .integer("batch_size", 64, "examples per batch", Range::at_least(1))
          .integer("accumulate", 1, "batches per optimiser step (gradient accumulation)", Range::at_least(1))
          .number("lr", 1e-4, "AdamW learning rate", Range::above(0))
          .number_list("betas", std::vector<double>{0.9, 0.999}, "AdamW betas", Range{0.0, 1.0, false, true},
                       2)
          .number("weight_decay", 0.01,
                  "AdamW decoupled weight decay (0.01: torch.optim.AdamW's default, as LDM uses)",
                  Range::at_least(0))
          .integer("warmup_steps", 0, "linear learning-rate warm-up steps", Range::at_least(0))
          .number("grad_clip", 0.0, "max global gradient norm (0: no clipping, as LDM)", Range::at_least(0))
          .number("ema_decay", 0.9999, "EMA decay of the weights (0: no EMA)", Range{0.0, 1.0, false, true})
          .integer("log_every", 50, "steps between progress lines", Range::at_least(1))
          .integer("checkpoint_every", 500, "steps between checkpoints (and on interrupt, and at the end)",
                   Range::at_least(1));
  return schema;
}

const ParamSchema& eval_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("every", 500, "steps between evaluations of the yardsticks (0: only at the end)",
                   Range::at_least(0))
          .integer("samples", 256, "held-out examples for the ELBO and loss_simple", Range::at_least(1))
          .integer("strata", 4, "t draws per example for the ELBO's sum over t (stratified)",
                   Range::at_least(1))
          .integer("batch_size", 128, "batch size of the evaluation", Range::at_least(1));
  return schema;
}

}  // namespace

DenoiserTrainConfig DenoiserTrainConfig::from_json(const json& input) {
  check_object(
      input, "",
      {"output", "seed", "device", "data", "schedule", "weighting", "prediction", "unet", "train", "eval"},
      {"output", "data"});
  DenoiserTrainConfig c;
  if (!input.at("output").is_string() || input.at("output").get<std::string>().empty())
    throw ConfigError("output: expected a folder name (string), got " + input.at("output").dump());
  c.output = input.at("output").get<std::string>();
  if (input.contains("seed")) {
    if (!input.at("seed").is_number_integer() || input.at("seed").get<std::int64_t>() < 0)
      throw ConfigError("seed: expected a non-negative integer, got " + input.at("seed").dump());
    c.seed = input.at("seed").get<std::uint64_t>();
  }

  if (input.contains("device")) {
    // The name is checked (and a GPU looked for) by resolve_device when the trainer is built.
    if (!input.at("device").is_string())
      throw ConfigError("device: expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got " +
                        input.at("device").dump());
    c.device = input.at("device").get<std::string>();
  }

  const auto& data = input.at("data");
  check_object(data, "data", {"dataset", "params", "hflip"}, {"dataset"});
  if (!data.at("dataset").is_string())
    throw ConfigError("data.dataset: expected a dataset plugin name, got " + data.at("dataset").dump());
  c.data.name = data.at("dataset").get<std::string>();
  if (data.contains("params")) {
    if (!data.at("params").is_object())
      throw ConfigError("data.params: expected a JSON object, got " + data.at("params").dump());
    c.data.params = data.at("params");
  }
  if (data.contains("hflip")) {
    if (!data.at("hflip").is_boolean()) throw ConfigError("data.hflip: expected true or false");
    c.hflip = data.at("hflip").get<bool>();
  }

  c.schedule = plugin_choice(input, "schedule", "name", "linear");
  c.weighting = plugin_choice(input, "weighting", "name", "unweighted");
  if (input.contains("prediction")) {
    if (!input.at("prediction").is_string())
      throw ConfigError("prediction: expected \"eps\", \"x0\" or \"v\"");
    c.prediction = prediction_from_string(input.at("prediction").get<std::string>());
  }
  c.unet = nn::UNetConfig::from_json(input.value("unet", json::object()), "unet");

  const auto train = train_schema().validate(input.value("train", json::object()), "train", "train");
  c.steps = train.get_int("steps");
  c.batch_size = train.get_int("batch_size");
  c.accumulate = train.get_int("accumulate");
  c.lr = train.get_float("lr");
  const auto betas = train.get_numbers("betas");
  if (betas.size() != 2) throw ConfigError("train.betas: expected two numbers [beta1, beta2]");
  c.beta1 = betas[0];
  c.beta2 = betas[1];
  c.weight_decay = train.get_float("weight_decay");
  c.warmup_steps = train.get_int("warmup_steps");
  c.grad_clip = train.get_float("grad_clip");
  c.ema_decay = train.get_float("ema_decay");
  c.log_every = train.get_int("log_every");
  c.checkpoint_every = train.get_int("checkpoint_every");

  json eval_input = input.value("eval", json::object());
  if (!eval_input.is_object()) throw ConfigError("eval: expected a JSON object, got " + eval_input.dump());
  c.eval_data_params = json{{"split", "test"}};
  if (eval_input.contains("data_params")) {
    if (!eval_input.at("data_params").is_object())
      throw ConfigError(
          "eval.data_params: expected a JSON object of dataset parameters (e.g. {\"split\": \"test\"})");
    c.eval_data_params = eval_input.at("data_params");
    eval_input.erase("data_params");
  }
  const auto eval = eval_schema().validate(eval_input, "eval", "eval");
  c.eval_every = eval.get_int("every");
  c.eval_samples = eval.get_int("samples");
  c.eval_strata = eval.get_int("strata");
  c.eval_batch_size = eval.get_int("batch_size");

  c.resolved = {{"output", c.output},
                {"seed", c.seed},
                {"device", c.device},
                {"data", {{"dataset", c.data.name}, {"params", c.data.params}, {"hflip", c.hflip}}},
                {"schedule", {{"name", c.schedule.name}, {"params", c.schedule.params}}},
                {"weighting", {{"name", c.weighting.name}, {"params", c.weighting.params}}},
                {"prediction", to_string(c.prediction)},
                {"unet", c.unet.to_json()},
                {"train", train.json()},
                {"eval", eval.json()}};
  c.resolved["eval"]["data_params"] = c.eval_data_params;
  return c;
}

json DenoiserTrainConfig::held_out_params() const {
  json params = data.params;
  for (const auto& item : eval_data_params.items()) params[item.key()] = item.value();
  return params;
}

}  // namespace latentlab
