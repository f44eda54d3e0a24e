#include "latentlab/train/denoiser_config.hpp"

#include <tuple>

#include "latentlab/error.hpp"
#include "latentlab/params.hpp"
#include "latentlab/problem_list.hpp"
#include "latentlab/strings.hpp"

#include "config_json.hpp"

namespace latentlab {

namespace {

using detail::check_object;
using detail::plugin_choice;
using nlohmann::json;

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
                   Range::at_least(1))
          .number("p_uncond", 0.0,
                  "condition dropout: each example's condition is replaced by the unconditional value with "
                  "this probability (classifier-free guidance needs > 0; 0.1-0.2 is usual)",
                  Range::closed(0.0, 1.0));
  return schema;
}

// "conditioner": {"name", "params", "frozen"} (or a plugin name), or a list of two such.
std::vector<ConditionerChoice> conditioner_choices(const json& input) {
  std::vector<ConditionerChoice> choices;
  if (!input.contains("conditioner") || input.at("conditioner").is_null()) return choices;
  const auto& section = input.at("conditioner");
  const auto list = section.is_array() ? section : json::array({section});
  if (list.empty() || list.size() > 2)
    throw ConfigError(
        "conditioner: expected one conditioner, or a list of two (one making tokens, one making "
        "maps: hybrid), got " +
        std::to_string(list.size()));
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto path =
        section.is_array() ? "conditioner[" + std::to_string(i) + "]" : std::string("conditioner");
    const auto& item = list[i];
    ConditionerChoice choice;
    if (item.is_string()) {
      choice.plugin.name = item.get<std::string>();
    } else {
      check_object(item, path, {"name", "params", "frozen"}, {"name"});
      if (!item.at("name").is_string())
        throw ConfigError(path + ".name: expected a conditioner plugin's name, got " +
                          item.at("name").dump());
      choice.plugin.name = item.at("name").get<std::string>();
      if (item.contains("params")) {
        if (!item.at("params").is_object())
          throw ConfigError(path + ".params: expected a JSON object, got " + item.at("params").dump());
        choice.plugin.params = item.at("params");
      }
      if (item.contains("frozen")) {
        if (!item.at("frozen").is_boolean())
          throw ConfigError(path + ".frozen: expected true or false, got " + item.at("frozen").dump());
        choice.frozen = item.at("frozen").get<bool>();
      }
    }
    choices.push_back(std::move(choice));
  }
  return choices;
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
  if (!input.is_object())
    throw ConfigError("expected a JSON object (the training config), got " + input.dump());
  // The sections are checked independently: every problem of every section is reported at once.
  ProblemList problems;
  problems.check([&] {
    check_object(input, "",
                 {"output", "seed", "device", "precision", "data", "autoencoder", "schedule", "weighting",
                  "prediction", "unet", "conditioner", "train", "eval"},
                 {"output", "data"});
  });
  DenoiserTrainConfig c;
  problems.check([&] { detail::parse_run_keys(input, c.output, c.seed, c.device, c.precision); });
  problems.check([&] { detail::parse_data_section(input, c.data, c.hflip); });
  problems.check([&] {
    if (!input.contains("autoencoder")) return;
    const auto& ae = input.at("autoencoder");
    if (!ae.is_null() && (!ae.is_string() || ae.get<std::string>().empty()))
      throw ConfigError("autoencoder: expected the path of an autoencoder.pt (or its run folder), got " +
                        ae.dump() + "; leave it out to train in pixel space");
    if (ae.is_string()) c.autoencoder = ae.get<std::string>();
  });
  problems.check([&] { c.schedule = plugin_choice(input, "schedule", "name", "linear"); });
  problems.check([&] { c.weighting = plugin_choice(input, "weighting", "name", "unweighted"); });
  problems.check([&] {
    if (!input.contains("prediction")) return;
    if (!input.at("prediction").is_string())
      throw ConfigError("prediction: expected \"eps\", \"x0\" or \"v\"");
    c.prediction = prediction_from_string(input.at("prediction").get<std::string>());
  });
  problems.check([&] {
    c.unet = nn::UNetConfig::from_json(input.value("unet", json::object()), "unet");
    const auto unet_input = input.value("unet", json::object());
    c.derive_unet_channels = !unet_input.contains("in_channels") && !unet_input.contains("out_channels");
  });
  problems.check([&] { c.conditioners = conditioner_choices(input); });
  json train_json, eval_json;
  problems.check([&] {
    const auto train = train_schema().validate(input.value("train", json::object()), "train", "train");
    c.steps = train.get_int("steps");
    c.batch_size = train.get_int("batch_size");
    c.accumulate = train.get_int("accumulate");
    c.lr = train.get_float("lr");
    std::tie(c.beta1, c.beta2) = detail::betas(train);
    c.weight_decay = train.get_float("weight_decay");
    c.warmup_steps = train.get_int("warmup_steps");
    c.grad_clip = train.get_float("grad_clip");
    c.ema_decay = train.get_float("ema_decay");
    c.log_every = train.get_int("log_every");
    c.checkpoint_every = train.get_int("checkpoint_every");
    c.p_uncond = train.get_float("p_uncond");
    train_json = train.json();
  });
  problems.check([&] {
    const auto eval_input = detail::eval_section(input, c.eval_data_params);
    const auto eval = eval_schema().validate(eval_input, "eval", "eval");
    c.eval_every = eval.get_int("every");
    c.eval_samples = eval.get_int("samples");
    c.eval_strata = eval.get_int("strata");
    c.eval_batch_size = eval.get_int("batch_size");
    eval_json = eval.json();
  });
  problems.throw_if_any();

  c.resolved = {{"output", c.output},
                {"seed", c.seed},
                {"device", c.device},
                {"precision", to_string(c.precision)},
                {"data", {{"dataset", c.data.name}, {"params", c.data.params}, {"hflip", c.hflip}}},
                {"schedule", {{"name", c.schedule.name}, {"params", c.schedule.params}}},
                {"weighting", {{"name", c.weighting.name}, {"params", c.weighting.params}}},
                {"prediction", to_string(c.prediction)},
                {"unet", c.unet.to_json()},
                {"train", train_json},
                {"eval", eval_json}};
  c.resolved["eval"]["data_params"] = c.eval_data_params;
  if (!c.autoencoder.empty()) c.resolved["autoencoder"] = c.autoencoder;
  if (!c.conditioners.empty()) {
    c.resolved["conditioner"] = json::array();
    for (const auto& choice : c.conditioners) c.resolved["conditioner"].push_back(choice.to_json());
  }
  if (c.unet.num_classes > 0 && !c.conditioners.empty())
    throw ConfigError(
        "unet.num_classes: class labels through the UNet's label embedding cannot be dropped, so "
        "beside a conditioner they would leave classifier-free guidance's unconditional half "
        "conditioned; use the \"class\" conditioner instead (or in a hybrid with an image one)");
  if (c.p_uncond > 0 && c.conditioners.empty())
    throw ConfigError(
        "train.p_uncond: condition dropout needs a conditioner (\"conditioner\": {\"name\": "
        "\"class\"}, ...); with unet.num_classes the labels have no unconditional value");
  return c;
}

json DenoiserTrainConfig::held_out_params() const {
  return detail::merged(data.params, eval_data_params);
}

}  // namespace latentlab
