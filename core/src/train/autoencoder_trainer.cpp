#include "latentlab/train/autoencoder_trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>

#include "latentlab/eval/image_metrics.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/latent/latent_measurement.hpp"
#include "latentlab/latent/latent_stats.hpp"
#include "latentlab/nn/regularizers.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "latentlab/train/autoencoder_loss.hpp"
#include "latentlab/train/data_order.hpp"
#include "trainer_common.hpp"
#include "training_loop.hpp"

namespace latentlab {

namespace {

constexpr std::int64_t kCheckpointFormat = 1;

std::vector<std::int64_t> first_indices(std::int64_t start, std::int64_t end) {
  std::vector<std::int64_t> indices;
  for (std::int64_t i = start; i < end; ++i) indices.push_back(i);
  return indices;
}

}  // namespace

ReconstructionMetrics evaluate_reconstruction(
    Autoencoder& autoencoder, const Dataset& data, std::int64_t images, std::int64_t batch_size,
    torch::Device device, const std::function<void(const torch::Tensor&, const torch::Tensor&)>& each,
    Precision precision) {
  torch::NoGradGuard no_grad;
  autoencoder.module().eval();
  ReconstructionMetrics m;
  const auto K = autoencoder.codebook_size();
  torch::Tensor code_counts = K > 0 ? torch::zeros({K}, torch::kFloat64) : torch::Tensor();
  for (std::int64_t start = 0; start < images; start += batch_size) {
    const auto x =
        data.get_batch(first_indices(start, std::min(images, start + batch_size))).images.to(device);
    torch::Tensor x_hat;
    {
      const AutocastGuard autocast(device, precision);
      x_hat = full_precision(autoencoder.reconstruct(x)).clamp(-1.0, 1.0);
    }
    m.psnr += eval::psnr(x, x_hat).sum().item<double>();
    m.ssim += eval::ssim(x, x_hat).sum().item<double>();
    m.l1 += (x - x_hat).abs().mean({1, 2, 3}).sum().item<double>();
    if (K > 0)
      code_counts +=
          torch::bincount(autoencoder.code_indices(x).reshape({-1}).cpu(), {}, K).to(torch::kFloat64);
    if (each) each(x, x_hat);
    m.images += x.size(0);
  }
  const double n = static_cast<double>(m.images);
  m.psnr /= n;
  m.ssim /= n;
  m.l1 /= n;
  if (K > 0) {
    m.codebook_usage = (code_counts > 0).to(torch::kFloat64).mean().item<double>();
    m.perplexity = nn::perplexity(code_counts).item<double>();
  }
  return m;
}

struct AutoencoderTrainer::State {
  AutoencoderTrainConfig config;
  AutoencoderTrainerParts parts;
  MetricSink& sink;
  std::shared_ptr<Autoencoder> ae;  // built by parts.make_autoencoder once the seed is set
  Stage1Loss loss{nullptr};
  std::unique_ptr<torch::optim::Adam> ae_optimizer, disc_optimizer;
  std::vector<torch::Tensor> ae_params;
  std::vector<torch::Tensor> trained;  // what ae_optimizer steps: ae_params and the loss's own (logvar)
  LossScaler scaler;                   // fp16's loss scaling; a pass-through otherwise
  std::unique_ptr<DataOrder> order;
  torch::Device device{torch::kCPU};
  at::Generator generator;  // posterior samples, codebook restarts
  detail::LoopState loop;

  State(AutoencoderTrainConfig c, AutoencoderTrainerParts p, MetricSink& s)
      : config(std::move(c)), parts(std::move(p)), sink(s) {}

  std::filesystem::path output(const char* name) const { return std::filesystem::path(config.output) / name; }

  void save_checkpoint() {
    torch::serialize::OutputArchive archive, model, loss_archive, ae_opt, disc_opt;
    detail::write_checkpoint_header(archive, kCheckpointFormat, config.resolved,
                                    {loop.step, order->position(), loop.wall_time, loop.eval_pending});
    ae->module().save(model);
    archive.write("model", model);
    loss->save(loss_archive);
    archive.write("loss", loss_archive);
    ae_optimizer->save(ae_opt);
    archive.write("ae_optimizer", ae_opt);
    disc_optimizer->save(disc_opt);
    archive.write("disc_optimizer", disc_opt);
    archive.write("rng_generator", generator.get_state());
    archive.write("rng_default", detail::default_generator_state());
    if (scaler.enabled()) archive.write("loss_scaler", scaler.state());
    save_archive_atomically(archive, output("checkpoint.pt"));
  }

  void evaluate() {
    const auto m = evaluate_reconstruction(*ae, *parts.held_out, config.eval_samples, config.eval_batch_size,
                                           device, nullptr, config.precision);
    ae->module().train();
    MetricValues values = {{"psnr", m.psnr}, {"ssim", m.ssim}, {"l1", m.l1}};
    std::string vq;
    if (m.codebook_usage >= 0) {
      values.emplace_back("codebook_usage", m.codebook_usage);
      values.emplace_back("perplexity", m.perplexity);
      vq = fmt::format(", codebook usage {:.3f}, perplexity {:.1f}", m.codebook_usage, m.perplexity);
    }
    values.emplace_back("wall_time", loop.wall_time);
    spdlog::info("eval step {}: held-out PSNR {:.2f} dB, SSIM {:.4f}, L1 {:.4f} ({} images){}", loop.step,
                 m.psnr, m.ssim, m.l1, m.images, vq);
    sink.write("eval", loop.step, values);
    sink.flush();
  }

  void finish() {
    AutoencoderFileInfo info;
    info.name = config.autoencoder.name;
    info.params = config.autoencoder.params;
    info.step = loop.step;
    info.source = "train-autoencoder";
    LatentMeasurement settings;
    settings.samples = config.latent_samples;
    settings.batch_size = config.eval_batch_size;
    settings.rescale = config.rescale;
    settings.snr_schedule = config.snr_schedule.name;
    settings.seed = config.seed ^ detail::kLatentStream;
    measure_latents(*ae, info, *parts.train_data, *parts.snr_schedule, settings, device, config.output);
  }
};

AutoencoderTrainer::AutoencoderTrainer(AutoencoderTrainConfig config, AutoencoderTrainerParts parts,
                                       MetricSink& sink)
    : state_(std::make_unique<State>(std::move(config), std::move(parts), sink)) {
  auto& s = *state_;
  const auto& c = s.config;
  const auto& data = *s.parts.train_data;
  s.device = resolve_device(c.device);
  check_precision(c.precision, s.device);
  s.scaler = detail::make_loss_scaler(c.loss_scale, c.precision);
  torch::manual_seed(c.seed ^ detail::kDropoutStream);  // the initial weights, then dropout draws
  s.ae = s.parts.make_autoencoder();
  auto& ae = *s.ae;
  if (ae.module().parameters().empty())
    throw ConfigError("autoencoder '" + c.autoencoder.name +
                      "' has nothing to train; use it directly in stage 2 (train-denoiser without an "
                      "autoencoder trains in pixel space)");
  if (ae.image_channels() != data.channels())
    throw ConfigError("autoencoder.params.in_channels: the data has " + std::to_string(data.channels()) +
                      " channels, the autoencoder takes " + std::to_string(ae.image_channels()));
  const auto f = ae.downsampling_factor();
  if (data.resolution() % f)
    throw ConfigError("autoencoder.params.f: f = " + std::to_string(f) +
                      " needs an image side divisible by " + std::to_string(f) + ", the data is " +
                      std::to_string(data.resolution()) +
                      "; change data.params.resolution, or f (or ch_mult)");
  if (s.parts.held_out->channels() != data.channels() || s.parts.held_out->resolution() != data.resolution())
    throw ConfigError(
        "eval.data_params: the held-out data must have the training data's channels and resolution");
  if (s.parts.held_out->size() < c.eval_samples)
    throw ConfigError("eval.samples: " + std::to_string(c.eval_samples) + " held-out images asked for, the " +
                      "held-out dataset has " + std::to_string(s.parts.held_out->size()));
  // The patch discriminator halves the side `disc_layers` times, then two 4x4 convolutions take 2 more.
  if (c.loss.disc_factor > 0 && c.loss.disc_start < c.steps &&
      (data.resolution() >> c.loss.disc_layers) - 2 < 1)
    throw ConfigError("loss.disc_layers: " + std::to_string(c.loss.disc_layers) +
                      " layers leave no patches of " + std::to_string(data.resolution()) + "x" +
                      std::to_string(data.resolution()) +
                      " images; lower disc_layers (the side must be at least 3 * 2^disc_layers)");
  if (c.eval_samples > 0 && data.resolution() < 11)
    throw ConfigError("data.params.resolution: SSIM needs images of at least 11x11 pixels");

  s.loss = Stage1Loss(c.loss, ae.regularizer(), ae.image_channels());
  ae.module().to(s.device);
  s.loss->move_to(s.device);
  for (auto& p : ae.module().parameters())
    if (p.requires_grad()) s.ae_params.push_back(p);
  s.trained = s.ae_params;
  for (auto& p : s.loss->generator_parameters()) s.trained.push_back(p);
  const auto adam = [&](double lr) { return torch::optim::AdamOptions(lr).betas({c.beta1, c.beta2}); };
  s.ae_optimizer = std::make_unique<torch::optim::Adam>(s.trained, adam(c.lr));
  s.disc_optimizer = std::make_unique<torch::optim::Adam>(s.loss->discriminator()->parameters(),
                                                          adam(c.disc_lr > 0 ? c.disc_lr : c.lr));
  s.order = std::make_unique<DataOrder>(data.size(), c.batch_size, c.seed, c.hflip);
  s.generator = at::make_generator<at::CPUGeneratorImpl>(c.seed);
}

AutoencoderTrainer::~AutoencoderTrainer() = default;

Autoencoder& AutoencoderTrainer::autoencoder() {
  return *state_->ae;
}

std::filesystem::path AutoencoderTrainer::checkpoint_path() const {
  return state_->output("checkpoint.pt");
}

std::int64_t AutoencoderTrainer::resume() {
  auto& s = *state_;
  const auto path = checkpoint_path();
  torch::serialize::InputArchive archive;
  const auto progress =
      detail::open_checkpoint(archive, path, s.device, kCheckpointFormat, s.config.resolved, s.config.output);
  s.loop.step = progress.step;
  s.order->set_position(progress.position);
  s.loop.wall_time = progress.wall_time;
  s.loop.eval_pending = progress.eval_pending;
  torch::serialize::InputArchive model, loss_archive, ae_opt, disc_opt;
  archive.read("model", model);
  s.ae->module().load(model);
  archive.read("loss", loss_archive);
  s.loss->load(loss_archive);
  archive.read("ae_optimizer", ae_opt);
  s.ae_optimizer->load(ae_opt);
  archive.read("disc_optimizer", disc_opt);
  s.disc_optimizer->load(disc_opt);
  torch::Tensor generator_state, default_state;
  archive.read("rng_generator", generator_state);
  s.generator.set_state(generator_state.to(torch::kCPU));
  archive.read("rng_default", default_state);
  detail::set_default_generator_state(default_state);
  // A run resumed in fp16 continues at the scale it reached; one that was not scaled starts afresh.
  if (torch::Tensor scaler_state; s.scaler.enabled() && archive.try_read("loss_scaler", scaler_state))
    s.scaler.load_state(scaler_state);
  s.loop.last_checkpoint = s.loop.step;
  s.sink.truncate_after(s.loop.step);
  spdlog::info("resumed from {} at step {}", path.string(), s.loop.step);
  return s.loop.step;
}

TrainOutcome AutoencoderTrainer::run(const std::atomic<bool>& stop) {
  auto& s = *state_;
  const auto& c = s.config;
  std::filesystem::create_directories(c.output);
  s.ae->module().train();
  s.loss->train();
  const double max_norm = c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity();
  std::int64_t parameters = 0;
  for (const auto& p : s.ae_params) parameters += p.numel();
  spdlog::info(
      "training autoencoder '{}' (f = {}, {} latent channels, {} parameters) for {} steps from step {}, "
      "batch {}, GAN from step {}, {}, {}",
      c.autoencoder.name, s.ae->downsampling_factor(), s.ae->latent_channels(), parameters, c.steps,
      s.loop.step, c.batch_size, c.loss.disc_start, s.device.str(), to_string(c.precision));
  torch::Tensor x;
  AutoencoderOutput out;
  detail::LoopBody body;
  body.compute = [&](std::int64_t next) {
    x = s.order->next(*s.parts.train_data).images.to(s.device);
    // The autoencoder's update (optimizer_idx 0 in the reference).
    s.ae_optimizer->zero_grad();
    Stage1Terms g;
    {  // the forward passes under autocast, the backward pass outside it (docs/precision.md)
      const AutocastGuard autocast(s.device, c.precision);
      out = s.ae->forward(x, s.generator);
      out.reconstruction = full_precision(out.reconstruction);
      g = s.loss->generator_loss(x, out, next, s.ae->last_layer());
    }
    s.scaler.scaled(g.loss).backward();
    detail::StepReport report;
    const auto norm = detail::unscale_and_clip(s.scaler, s.trained, s.ae_params, max_norm);
    report.skipped = !norm;  // fp16 overflow: neither update this step
    report.grad_norm = norm.value_or(std::nan(""));
    report.loss = g.loss.item<double>();
    report.values = {{"loss", report.loss}, {"grad_norm", report.grad_norm}};
    for (const auto& [name, value] : g.logs) report.values.emplace_back(name, value.item<double>());
    for (const auto& [name, value] : out.logs) report.values.emplace_back(name, value.item<double>());
    for (const auto& [name, value] : report.values)
      if (name == "rec_loss") report.progress_value = value;
    return report;
  };
  body.apply = [&](std::int64_t next, detail::StepReport& report) {
    s.ae_optimizer->step();
    // The discriminator's update (optimizer_idx 1), once the GAN terms are on.
    if (s.loss->gan_active(next)) {
      s.disc_optimizer->zero_grad();
      Stage1Terms d;
      {
        const AutocastGuard autocast(s.device, c.precision);
        d = s.loss->discriminator_loss(x, out.reconstruction, next);
      }
      s.scaler.scaled(d.loss).backward();
      // One scaler for both losses: the discriminator's overflow backs it off too (and skips its step).
      const bool finite = s.scaler.unscale(s.loss->discriminator()->parameters());
      if (finite) s.disc_optimizer->step();
      s.scaler.update(finite);
      for (const auto& [name, value] : d.logs) report.values.emplace_back(name, value.item<double>());
    } else {
      s.scaler.update(true);
      for (const char* name : {"d_loss", "logits_real", "logits_fake"})
        report.values.emplace_back(name, std::nan(""));
    }
  };
  body.evaluate = [&] { s.evaluate(); };
  body.checkpoint = [&] { s.save_checkpoint(); };
  body.finish = [&] { s.finish(); };
  body.finished = [&] { return std::filesystem::exists(s.output("autoencoder.pt")); };
  const auto settings =
      detail::loop_settings(c, checkpoint_path().string(), "L1", "Lower train.lr or set train.grad_clip");
  return detail::run_training_loop(s.loop, settings, s.sink, body, stop);
}

}  // namespace latentlab
