#include "latentlab/train/denoiser_trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "latentlab/diffusion/elbo.hpp"
#include "latentlab/diffusion/objective.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "latentlab/train/data_order.hpp"
#include "latentlab/train/denoiser_file.hpp"
#include "trainer_common.hpp"
#include "training_loop.hpp"

namespace latentlab {

namespace {

constexpr std::int64_t kCheckpointFormat = 1;
constexpr std::uint64_t kEvalStream = 0xbf58476d1ce4e5b9ULL;
constexpr std::uint64_t kConditionStream = 0xda942042e4dd58b5ULL;  // dropout and mask draws
constexpr std::uint64_t kHeldOutMaskStream = 0xd6e8feb86659fd93ULL;

// The conditioners' prefixes in checkpoint.pt (denoiser.pt keeps the EMA weights under the first).
constexpr const char* kConditionerPrefix = "conditioner_";
constexpr const char* kEmaConditionerPrefix = "ema_conditioner_";

}  // namespace

struct DenoiserTrainer::State {
  DenoiserTrainConfig config;
  DenoiserTrainerParts parts;
  MetricSink& sink;
  nn::UNet model{nullptr}, ema{nullptr};
  std::vector<torch::Tensor> params, ema_params;  // the two models' parameters, in the same order
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<DenoisingObjective> objective;
  std::unique_ptr<DataOrder> order;
  torch::Device device{torch::kCPU};
  at::Generator generator;         // t and eps draws (on the CPU, whatever the device)
  at::Generator latent_generator;  // the autoencoder's posterior samples
  detail::LoopState loop;
  LossScaler scaler;  // fp16's loss scaling; a pass-through otherwise
  torch::Tensor held_out_z0, held_out_labels;
  std::shared_ptr<ConditionerSet> conditioners, ema_conditioners;  // null without conditioners
  at::Generator condition_generator;  // condition dropout and the conditioners' own draws (masks)
  ConditionInputs held_out_inputs;    // what the held-out examples are conditioned on (masks drawn once)

  State(DenoiserTrainConfig c, DenoiserTrainerParts p, MetricSink& s)
      : config(std::move(c)), parts(std::move(p)), sink(s) {}

  bool conditional() const { return config.unet.num_classes > 0; }

  // z_0 of a batch of images [B, C, H, W]: rescaled latents E(x) [B, c, H/f, W/f] (Sec. 3.1), or the
  // images themselves in pixel space.
  torch::Tensor latents(const torch::Tensor& images) {
    const auto x = images.to(device);
    return parts.codec ? full_precision(parts.codec->encode(x, latent_generator)) : x;
  }

  // What a batch is conditioned on, as the conditioners read it (on the run's device).
  ConditionInputs inputs_of(const Batch& batch) const {
    ConditionInputs inputs;
    if (!conditioners) return inputs;
    if (conditioners->needs(ConditionSource::Labels)) {
      if (!batch.labels.defined()) throw Error("the conditioner needs class labels; the batch has none");
      inputs.labels = batch.labels.to(device);
    }
    if (conditioners->needs(ConditionSource::Captions)) inputs.captions = batch.captions;
    if (conditioners->needs(ConditionSource::Images)) inputs.images = batch.images.to(device);
    return inputs;
  }

  DenoiserFn denoiser(nn::UNet& net, const torch::Tensor& labels, const Conditioning& cond = {}) {
    // In float32 whatever the precision: the objective and the ELBO compute in float32 or float64.
    return [net, labels, cond](const torch::Tensor& z_t, const torch::Tensor& t) mutable {
      return full_precision(net->forward(z_t, t, cond.context, cond.concat, labels));
    };
  }

  double lr_at(std::int64_t s) const {
    if (config.warmup_steps == 0 || s >= config.warmup_steps) return config.lr;
    return config.lr * static_cast<double>(s) / static_cast<double>(config.warmup_steps);
  }

  // After the optimiser step that makes `step`.
  void update_ema(std::int64_t step) {
    if (config.ema_decay == 0) return;
    torch::NoGradGuard no_grad;
    // LDM's LitEma: the decay ramps up as (1 + n) / (10 + n) early on.
    const double n = static_cast<double>(step);
    const double decay = std::min(config.ema_decay, (1.0 + n) / (10.0 + n));
    for (std::size_t i = 0; i < params.size(); ++i) ema_params[i].lerp_(params[i], 1.0 - decay);
    if (conditioners && ema_conditioners != conditioners) {  // buffers are copied, not averaged
      const auto from = conditioners->buffers();
      auto to = ema_conditioners->buffers();
      for (std::size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
    }
  }

  void save_checkpoint() {
    torch::serialize::OutputArchive archive;
    detail::write_checkpoint_header(archive, kCheckpointFormat, config.resolved,
                                    {loop.step, order->position(), loop.wall_time, loop.eval_pending});
    torch::serialize::OutputArchive model_archive, ema_archive, optimizer_archive;
    model->save(model_archive);
    archive.write("model", model_archive);
    if (config.ema_decay > 0) {
      ema->save(ema_archive);
      archive.write("ema", ema_archive);
    }
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    if (conditioners) {
      conditioners->save(archive, kConditionerPrefix);
      if (config.ema_decay > 0) ema_conditioners->save(archive, kEmaConditionerPrefix);
      archive.write("conditioning_setup", c10::IValue(setup_to_json(conditioners->setup()).dump()));
      archive.write("rng_condition", condition_generator.get_state());
    }
    archive.write("rng_generator", generator.get_state());
    archive.write("rng_latent", latent_generator.get_state());
    archive.write("rng_default", detail::default_generator_state());
    const auto sampler_state = objective->sampler().state();
    archive.write("t_sampler_mean_square", sampler_state[0]);
    archive.write("t_sampler_counts", sampler_state[1]);
    if (scaler.enabled()) archive.write("loss_scaler", scaler.state());
    save_archive_atomically(archive, std::filesystem::path(config.output) / "checkpoint.pt");
  }

  void save_final_weights() {
    write_denoiser_file(std::filesystem::path(config.output) / "denoiser.pt", config, loop.step, ema,
                        ema_conditioners.get());
  }

  void evaluate() {
    torch::NoGradGuard no_grad;
    const AutocastGuard autocast(device, config.precision);  // the networks; the ELBO's sums stay float64
    // Same draws at every evaluation (common random numbers): estimates differ only by the model.
    auto eval_generator = at::make_generator<at::CPUGeneratorImpl>(config.seed ^ kEvalStream);
    ema->eval();
    if (ema_conditioners) ema_conditioners->train(false);
    const auto N = held_out_z0.size(0);
    ElboEstimate sum;
    sum.samples = N;
    for (std::int64_t start = 0; start < N; start += config.eval_batch_size) {
      const auto end = std::min(N, start + config.eval_batch_size);
      const auto labels = conditional() ? held_out_labels.slice(0, start, end) : torch::Tensor();
      const auto cond =
          ema_conditioners ? ema_conditioners->encode(held_out_inputs.slice(start, end)) : Conditioning{};
      const auto part =
          estimate_elbo(denoiser(ema, labels, cond), objective->process(), config.prediction,
                        held_out_z0.slice(0, start, end), config.eval_strata, end - start, eval_generator);
      const double share = static_cast<double>(end - start) / static_cast<double>(N);
      sum.prior_bpd += share * part.prior_bpd;
      sum.diffusion_bpd += share * part.diffusion_bpd;
      sum.decoder_bpd += share * part.decoder_bpd;
      sum.total_bpd += share * part.total_bpd;
      sum.loss_simple += share * part.loss_simple;
    }
    if (config.ema_decay == 0) {
      model->train();
      if (conditioners) conditioners->train(true);
    }
    spdlog::info(
        "eval step {}: ELBO {:.4f} bits/dim (prior {:.4f}, diffusion {:.4f}, decoder {:.4f}); "
        "held-out loss_simple {:.5f}",
        loop.step, sum.total_bpd, sum.prior_bpd, sum.diffusion_bpd, sum.decoder_bpd, sum.loss_simple);
    sink.write("eval", loop.step,
               {{"elbo_bpd", sum.total_bpd},
                {"prior_bpd", sum.prior_bpd},
                {"diffusion_bpd", sum.diffusion_bpd},
                {"decoder_bpd", sum.decoder_bpd},
                {"loss_simple", sum.loss_simple},
                {"wall_time", loop.wall_time}});
    sink.flush();
  }
};

DenoiserTrainer::DenoiserTrainer(DenoiserTrainConfig config, DenoiserTrainerParts parts, MetricSink& sink)
    : state_(std::make_unique<State>(std::move(config), std::move(parts), sink)) {
  auto& s = *state_;
  const auto& c = s.config;
  const auto& data = *s.parts.train_data;
  const auto& unet = c.unet;
  const auto& conditioners = s.parts.conditioners;
  if (!c.conditioners.empty() && !conditioners)
    throw ConfigError("conditioner: the host built no conditioners for this config");
  const auto context_dim = conditioners ? conditioners->context_dim() : 0;
  const auto concat_channels = conditioners ? conditioners->concat_channels() : 0;
  if (unet.use_spatial_transformer && context_dim == 0)
    throw ConfigError(
        "unet.context_dim: the UNet's cross-attention needs tokens to attend to; add a token conditioner "
        "(\"conditioner\": {\"name\": \"class\"} or \"tokens\") or remove context_dim");
  if (context_dim > 0 && (!unet.use_spatial_transformer || unet.context_dim != context_dim))
    throw ConfigError(
        "unet.context_dim: the conditioner makes tokens of width " + std::to_string(context_dim) +
        ", the UNet's cross-attention takes " + std::to_string(unet.context_dim) +
        "; leave context_dim out (the stage derives it) or set it to " + std::to_string(context_dim));
  const auto f = s.parts.codec ? s.parts.codec->downsampling_factor() : 1;
  const auto channels = s.parts.codec ? s.parts.codec->latent_channels() : data.channels();
  const std::string space =
      s.parts.codec ? "latents of autoencoder " + c.autoencoder : "images (pixel space)";
  if (s.parts.codec && s.parts.codec->image_channels() != data.channels())
    throw ConfigError("autoencoder: " + c.autoencoder + " encodes " +
                      std::to_string(s.parts.codec->image_channels()) + "-channel images, the data has " +
                      std::to_string(data.channels()) +
                      " channels; set data.params.channels or use another autoencoder");
  if (data.resolution() % f)
    throw ConfigError("data.params.resolution: the autoencoder's f = " + std::to_string(f) +
                      " needs an image side divisible by " + std::to_string(f) + ", the data is " +
                      std::to_string(data.resolution()));
  const auto latent_size = data.resolution() / f;
  if (unet.in_channels != channels + concat_channels || unet.out_channels != channels)
    throw ConfigError(
        "unet.in_channels/out_channels: the " + space + " have " + std::to_string(channels) + " channels" +
        (concat_channels ? " and the conditioner concatenates " + std::to_string(concat_channels)
                         : std::string()) +
        ", but the UNet takes " + std::to_string(unet.in_channels) + " and returns " +
        std::to_string(unet.out_channels) + "; set in_channels to " +
        std::to_string(channels + concat_channels) + " and out_channels to " + std::to_string(channels) +
        ", or leave both out");
  if (latent_size % unet.size_divisor())
    throw ConfigError("unet.channel_mult: " + std::to_string(unet.levels()) +
                      " levels need a size divisible by " + std::to_string(unet.size_divisor()) +
                      ", but the " + space + " are " + std::to_string(latent_size) + "x" +
                      std::to_string(latent_size));
  if (s.conditional() && data.num_classes() == 0)
    throw ConfigError("unet.num_classes: the UNet is class-conditional but the dataset has no labels");
  if (s.conditional() && data.num_classes() > unet.num_classes)
    throw ConfigError("unet.num_classes: the dataset has " + std::to_string(data.num_classes()) +
                      " classes, more than num_classes = " + std::to_string(unet.num_classes));
  const auto& held_out = *s.parts.held_out;
  if (held_out.channels() != data.channels() || held_out.resolution() != data.resolution())
    throw ConfigError(
        "eval.data_params: the held-out data must have the training data's channels and resolution");
  if (held_out.size() < c.eval_samples)
    throw ConfigError("eval.samples: " + std::to_string(c.eval_samples) +
                      " held-out examples asked for, the "
                      "held-out dataset has " +
                      std::to_string(held_out.size()));

  s.device = resolve_device(c.device);
  check_precision(c.precision, s.device);
  s.scaler = detail::make_loss_scaler(c.loss_scale, c.precision);
  torch::manual_seed(c.seed ^ detail::kDropoutStream);  // dropout draws from the default generator
  s.model = nn::UNet(unet);
  s.model->to(s.device);
  s.params = s.model->parameters();
  std::vector<torch::Tensor> trainable = s.params;
  if (conditioners) {
    s.conditioners = conditioners;
    s.conditioners->to(s.device);
    for (auto& p : s.conditioners->parameters()) s.params.push_back(p);
    const auto learned = s.conditioners->trainable_parameters();
    for (auto& p : s.conditioners->parameters())
      if (std::find_if(learned.begin(), learned.end(),
                       [&](const torch::Tensor& q) { return q.is_same(p); }) == learned.end())
        p.requires_grad_(false);  // frozen
    trainable.insert(trainable.end(), learned.begin(), learned.end());
  }
  if (c.ema_decay == 0) {
    s.ema = s.model;  // evaluation uses the raw weights
    s.ema_conditioners = s.conditioners;
  } else {
    s.ema = nn::UNet(unet);  // a copy of the model that only update_ema changes
    s.ema->to(s.device);
    if (s.conditioners) {
      s.ema_conditioners = s.conditioners->replicate();
      s.ema_conditioners->to(s.device);
    }
    torch::NoGradGuard no_grad;
    auto ema_params = s.ema->parameters();  // same architecture: same order
    if (s.ema_conditioners)
      for (auto& p : s.ema_conditioners->parameters()) ema_params.push_back(p);
    for (std::size_t i = 0; i < ema_params.size(); ++i)
      ema_params[i].copy_(s.params[i]).requires_grad_(false);
  }
  s.ema_params = s.ema->parameters();
  if (s.ema_conditioners && s.ema_conditioners != s.conditioners)
    for (auto& p : s.ema_conditioners->parameters()) s.ema_params.push_back(p);
  s.optimizer = std::make_unique<torch::optim::AdamW>(
      trainable,
      torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).weight_decay(c.weight_decay).eps(1e-8));
  s.objective = std::make_unique<DenoisingObjective>(*s.parts.schedule, *s.parts.weighting, c.prediction);
  s.order = std::make_unique<DataOrder>(data.size(), c.batch_size, c.seed, c.hflip);
  s.generator = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  s.latent_generator = at::make_generator<at::CPUGeneratorImpl>(c.seed ^ detail::kLatentStream);
  s.condition_generator = at::make_generator<at::CPUGeneratorImpl>(c.seed ^ kConditionStream);
  if (s.parts.codec) {
    auto& module = s.parts.codec->autoencoder().module();
    module.to(s.device);
    module.eval();
  }

  std::vector<std::int64_t> indices(static_cast<std::size_t>(c.eval_samples));
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
  const auto batch = held_out.get_batch(indices);
  s.held_out_z0 = s.latents(batch.images);
  s.held_out_labels = batch.labels.defined() ? batch.labels.to(s.device) : batch.labels;
  if (s.conditioners) {
    s.held_out_inputs = s.inputs_of(batch);
    auto mask_generator = at::make_generator<at::CPUGeneratorImpl>(c.seed ^ kHeldOutMaskStream);
    s.conditioners->complete(s.held_out_inputs, mask_generator);
  }
}

DenoiserTrainer::~DenoiserTrainer() = default;

std::filesystem::path DenoiserTrainer::checkpoint_path() const {
  return std::filesystem::path(state_->config.output) / "checkpoint.pt";
}

std::int64_t DenoiserTrainer::resume() {
  auto& s = *state_;
  const auto path = checkpoint_path();
  torch::serialize::InputArchive archive;
  const auto progress =
      detail::open_checkpoint(archive, path, s.device, kCheckpointFormat, s.config.resolved, s.config.output);
  s.loop.step = progress.step;
  s.order->set_position(progress.position);
  s.loop.wall_time = progress.wall_time;
  s.loop.eval_pending = progress.eval_pending;
  torch::serialize::InputArchive model_archive, ema_archive, optimizer_archive;
  archive.read("model", model_archive);
  s.model->load(model_archive);
  if (s.config.ema_decay > 0) {
    archive.read("ema", ema_archive);
    s.ema->load(ema_archive);
  }
  archive.read("optimizer", optimizer_archive);
  s.optimizer->load(optimizer_archive);
  if (s.conditioners) {
    s.conditioners->load(archive, kConditionerPrefix);
    if (s.config.ema_decay > 0) s.ema_conditioners->load(archive, kEmaConditionerPrefix);
  }
  torch::Tensor generator_state, default_state, mean_square, counts;
  archive.read("rng_generator", generator_state);
  s.generator.set_state(generator_state.to(torch::kCPU));  // the archive was mapped to the device
  if (archive.try_read("rng_latent", generator_state))
    s.latent_generator.set_state(generator_state.to(torch::kCPU));
  if (s.conditioners && archive.try_read("rng_condition", generator_state))
    s.condition_generator.set_state(generator_state.to(torch::kCPU));
  archive.read("rng_default", default_state);
  detail::set_default_generator_state(default_state);
  archive.read("t_sampler_mean_square", mean_square);
  archive.read("t_sampler_counts", counts);
  s.objective->sampler().load_state({mean_square.to(torch::kCPU), counts.to(torch::kCPU)});
  // A run resumed in fp16 continues at the scale it reached; one that was not scaled starts afresh.
  if (torch::Tensor scaler_state; s.scaler.enabled() && archive.try_read("loss_scaler", scaler_state))
    s.scaler.load_state(scaler_state);
  s.loop.last_checkpoint = s.loop.step;
  s.sink.truncate_after(s.loop.step);
  spdlog::info("resumed from {} at step {}", path.string(), s.loop.step);
  return s.loop.step;
}

TrainOutcome DenoiserTrainer::run(const std::atomic<bool>& stop) {
  auto& s = *state_;
  const auto& c = s.config;
  std::filesystem::create_directories(c.output);
  // The run folder keeps its autoencoder, so `sample` and resumption need nothing else. A new run copies
  // it (atomically); a resumed one keeps the copy it started with, whatever became of the original.
  const auto copy = std::filesystem::path(c.output) / "autoencoder.pt";
  if (s.parts.codec && (s.loop.step == 0 || !std::filesystem::exists(copy))) {
    const auto source = autoencoder_file(c.autoencoder);
    if (!std::filesystem::exists(copy) || !std::filesystem::equivalent(source, copy))
      write_atomically(copy, [&](const std::filesystem::path& temporary) {
        std::filesystem::copy_file(source, temporary, std::filesystem::copy_options::overwrite_existing);
      });
  }
  s.model->train();
  if (s.conditioners) s.conditioners->train(true);
  const double max_norm = c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity();
  spdlog::info(
      "training {} steps from step {} ({} parameters, batch {} x {}, {} prediction, weighting '{}', {}, {})",
      c.steps, s.loop.step, s.model->num_parameters(), c.batch_size, c.accumulate, to_string(c.prediction),
      c.weighting.name, s.device.str(), to_string(c.precision));
  detail::LoopBody body;
  body.compute = [&](std::int64_t next) {
    const double lr = s.lr_at(next);
    for (auto& group : s.optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    s.optimizer->zero_grad();
    // Summed on the device and read once per step (one device-to-host copy).
    torch::Tensor loss_sum, simple_sum;
    for (std::int64_t micro = 0; micro < c.accumulate; ++micro) {
      const auto batch = s.order->next(*s.parts.train_data);
      const auto labels = s.conditional() ? batch.labels.to(s.device) : torch::Tensor();
      Conditioning cond;
      ObjectiveTerms terms;
      {  // the forward passes under autocast, the backward pass outside it (docs/precision.md)
        const AutocastGuard autocast(s.device, c.precision);
        if (s.conditioners) {
          auto inputs = s.inputs_of(batch);
          if (c.p_uncond > 0)  // condition dropout: these examples train the unconditional value
            inputs.drop = condition_dropout(batch.images.size(0), c.p_uncond, s.condition_generator);
          s.conditioners->complete(inputs, s.condition_generator);
          cond = s.conditioners->encode(inputs);
        }
        terms = s.objective->compute(s.denoiser(s.model, labels, cond), s.latents(batch.images), s.generator);
      }
      s.scaler.scaled(terms.loss / static_cast<double>(c.accumulate)).backward();
      s.objective->observe(terms);
      loss_sum = micro == 0 ? terms.loss.detach() : loss_sum + terms.loss.detach();
      simple_sum = micro == 0 ? terms.loss_simple : simple_sum + terms.loss_simple;
    }
    const auto means = (torch::stack({loss_sum, simple_sum}) / static_cast<double>(c.accumulate))
                           .to(torch::kCPU, torch::kFloat64);
    detail::StepReport report;
    report.loss = means[0].item<double>();
    report.progress_value = means[1].item<double>();
    const auto norm = detail::unscale_and_clip(s.scaler, s.params, s.params, max_norm);
    report.skipped = !norm;  // fp16 overflow: no step this time
    report.grad_norm = norm.value_or(std::nan(""));
    report.values = {{"loss", report.loss},
                     {"loss_simple", report.progress_value},
                     {"grad_norm", report.grad_norm},
                     {"lr", lr}};
    return report;
  };
  body.apply = [&](std::int64_t next, detail::StepReport&) {
    s.optimizer->step();
    s.scaler.update(true);
    s.update_ema(next);
  };
  body.evaluate = [&] { s.evaluate(); };
  body.checkpoint = [&] { s.save_checkpoint(); };
  body.finish = [&] { s.save_final_weights(); };
  body.finished = [&] { return std::filesystem::exists(std::filesystem::path(c.output) / "denoiser.pt"); };
  const auto settings =
      detail::loop_settings(c, checkpoint_path().string(), "loss_simple",
                            "Lower train.lr, set train.grad_clip, or add train.warmup_steps");
  return detail::run_training_loop(s.loop, settings, s.sink, body, stop);
}

nn::UNet DenoiserTrainer::model() const {
  return state_->model;
}
nn::UNet DenoiserTrainer::ema_model() const {
  return state_->ema;
}
ConditionerSet* DenoiserTrainer::conditioners() const {
  return state_->conditioners.get();
}
ConditionerSet* DenoiserTrainer::ema_conditioners() const {
  return state_->ema_conditioners.get();
}

void derive_conditioned_unet(DenoiserTrainConfig& config, const ConditionerSet& conditioners) {
  auto& unet = config.unet;
  auto& record = config.resolved["unet"];
  if (const auto width = conditioners.context_dim(); width > 0) {
    if (unet.context_dim > 0 && unet.context_dim != width)
      throw ConfigError("unet.context_dim: " + std::to_string(unet.context_dim) + ", but the conditioner '" +
                        config.conditioners.front().plugin.name + "' makes tokens of width " +
                        std::to_string(width) + "; leave context_dim out (it is derived) or set it to " +
                        std::to_string(width));
    unet.context_dim = width;
    unet.use_spatial_transformer = true;
    record["context_dim"] = width;
    record["use_spatial_transformer"] = true;
  }
  if (const auto extra = conditioners.concat_channels(); extra > 0 && config.derive_unet_channels) {
    unet.in_channels += extra;
    record["in_channels"] = unet.in_channels;
  }
}

std::function<torch::Tensor(const torch::Tensor&)> latent_encoder(std::shared_ptr<LatentCodec> codec) {
  return [codec = std::move(codec)](const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    return codec ? codec->encode_mode(x) : x;
  };
}

}  // namespace latentlab
