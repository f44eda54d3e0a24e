#include "latentlab/train/autoencoder_config.hpp"

#include <tuple>

#include "config_json.hpp"
#include "latentlab/latent/latent_stats.hpp"
#include "latentlab/params.hpp"
#include "latentlab/problem_list.hpp"

namespace latentlab {

namespace {

using nlohmann::json;

const ParamSchema& train_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("steps", 1000, "optimiser steps (each: one autoencoder and one discriminator update)",
                   Range::at_least(1))
          .integer("batch_size", 16, "images per batch", Range::at_least(1))
          .number("lr", 1e-4, "Adam learning rate of the autoencoder", Range::above(0))
          .number("disc_lr", 0.0, "Adam learning rate of the discriminator (0: lr)", Range::at_least(0))
          .number_list("betas", std::vector<double>{0.5, 0.9},
                       "Adam betas of both optimisers (the reference's)", Range{0.0, 1.0, false, true}, 2)
          .number("grad_clip", 0.0, "max global gradient norm (0: no clipping)", Range::at_least(0))
          .integer("log_every", 50, "steps between progress lines", Range::at_least(1))
          .integer("checkpoint_every", 500, "steps between checkpoints (and on interrupt, and at the end)",
                   Range::at_least(1));
  return schema;
}

const ParamSchema& eval_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("every", 500, "steps between reconstruction evaluations (0: only at the end)",
                   Range::at_least(0))
          .integer("samples", 256, "held-out images for PSNR, SSIM and codebook usage", Range::at_least(1))
          .integer("batch_size", 64, "batch size of the evaluation", Range::at_least(1));
  return schema;
}

const ParamSchema& latents_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("samples", 2048, "training images encoded for the latent statistics", Range::at_least(2))
          .choice("rescale", "std", rescaling_modes(),
                  "stage-2 rescaling: none, std (z / sigma_hat, the reference's scale_by_std) or channel "
                  "(per-channel standardisation)");
  return schema;
}

}  // namespace

AutoencoderTrainConfig AutoencoderTrainConfig::from_json(const json& input) {
  if (!input.is_object())
    throw ConfigError("expected a JSON object (the training config), got " + input.dump());
  // The sections are checked independently: every problem of every section is reported at once.
  ProblemList problems;
  problems.check([&] {
    detail::check_object(
        input, "",
        {"output", "seed", "device", "precision", "data", "autoencoder", "loss", "train", "eval", "latents"},
        {"output", "data", "autoencoder"});
  });
  AutoencoderTrainConfig c;
  problems.check([&] { detail::parse_run_keys(input, c.output, c.seed, c.device, c.precision); });
  problems.check([&] { detail::parse_data_section(input, c.data, c.hflip); });
  problems.check([&] { c.autoencoder = detail::plugin_choice(input, "autoencoder", "name", ""); });
  problems.check([&] { c.loss = Stage1LossConfig::from_json(input.value("loss", json::object())); });
  json train_json, eval_json, latents_json;
  problems.check([&] {
    const auto train = train_schema().validate(input.value("train", json::object()), "train", "train");
    c.steps = train.get_int("steps");
    c.batch_size = train.get_int("batch_size");
    c.lr = train.get_float("lr");
    c.disc_lr = train.get_float("disc_lr");
    std::tie(c.beta1, c.beta2) = detail::betas(train);
    c.grad_clip = train.get_float("grad_clip");
    c.log_every = train.get_int("log_every");
    c.checkpoint_every = train.get_int("checkpoint_every");
    train_json = train.json();
  });
  problems.check([&] {
    const auto eval_input = detail::eval_section(input, c.eval_data_params);
    const auto eval = eval_schema().validate(eval_input, "eval", "eval");
    c.eval_every = eval.get_int("every");
    c.eval_samples = eval.get_int("samples");
    c.eval_batch_size = eval.get_int("batch_size");
    eval_json = eval.json();
  });
  problems.check([&] {
    json latents_input = input.value("latents", json::object());
    if (!latents_input.is_object())
      throw ConfigError("latents: expected a JSON object, got " + latents_input.dump());
    // The SNR_eff table's schedule: a name, or {"name", "params"} (the stage-2 schedule it should match).
    c.snr_schedule = detail::plugin_choice(latents_input, "snr_schedule", "name", "linear");
    latents_input.erase("snr_schedule");
    const auto latents = latents_schema().validate(latents_input, "latents", "latents");
    c.latent_samples = latents.get_int("samples");
    c.rescale = latents.get_string("rescale");
    latents_json = latents.json();
  });
  problems.throw_if_any();

  c.resolved = {{"output", c.output},
                {"seed", c.seed},
                {"device", c.device},
                {"precision", to_string(c.precision)},
                {"data", {{"dataset", c.data.name}, {"params", c.data.params}, {"hflip", c.hflip}}},
                {"autoencoder", {{"name", c.autoencoder.name}, {"params", c.autoencoder.params}}},
                {"loss", c.loss.to_json()},
                {"train", train_json},
                {"eval", eval_json},
                {"latents", latents_json}};
  c.resolved["latents"]["snr_schedule"] = {{"name", c.snr_schedule.name}, {"params", c.snr_schedule.params}};
  c.resolved["eval"]["data_params"] = c.eval_data_params;
  return c;
}

json AutoencoderTrainConfig::held_out_params() const {
  return detail::merged(data.params, eval_data_params);
}

}  // namespace latentlab
