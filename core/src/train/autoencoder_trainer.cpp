#include "latentlab/train/autoencoder_trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <limits>

#include "latentlab/eval/image_metrics.hpp"
#include "latentlab/nn/regularizers.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "latentlab/train/autoencoder_file.hpp"
#include "latentlab/train/autoencoder_loss.hpp"
#include "latentlab/train/checkpoint_file.hpp"
#include "latentlab/train/data_order.hpp"
#include "latentlab/train/latent_stats.hpp"
#include "trainer_common.hpp"

namespace latentlab {

namespace {

constexpr std::int64_t kCheckpointFormat = 1;
using detail::Clock;

std::vector<std::int64_t> first_indices(std::int64_t start, std::int64_t end) {
  std::vector<std::int64_t> indices;
  for (std::int64_t i = start; i < end; ++i) indices.push_back(i);
  return indices;
}

// The SNR_eff table's steps: 1, 10, 50, then every T/10, and T.
std::vector<std::int64_t> snr_steps(std::int64_t T) {
  std::vector<std::int64_t> steps;
  for (const std::int64_t t : {std::int64_t{1}, std::int64_t{10}, std::int64_t{50}})
    if (t < T) steps.push_back(t);
  for (std::int64_t k = 1; k <= 10; ++k)
    if (k * T / 10 >= 1 && (steps.empty() || k * T / 10 > steps.back())) steps.push_back(k * T / 10);
  return steps;
}

}  // namespace

ReconstructionMetrics evaluate_reconstruction(
    Autoencoder& autoencoder, const Dataset& data, std::int64_t images, std::int64_t batch_size,
    torch::Device device, const std::function<void(const torch::Tensor&, const torch::Tensor&)>& each) {
  torch::NoGradGuard no_grad;
  autoencoder.module().eval();
  ReconstructionMetrics m;
  const auto K = autoencoder.codebook_size();
  torch::Tensor code_counts = K > 0 ? torch::zeros({K}, torch::kFloat64) : torch::Tensor();
  for (std::int64_t start = 0; start < images; start += batch_size) {
    const auto x =
        data.get_batch(first_indices(start, std::min(images, start + batch_size))).images.to(device);
    const auto x_hat = autoencoder.reconstruct(x).clamp(-1.0, 1.0);
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
  std::unique_ptr<DataOrder> order;
  torch::Device device{torch::kCPU};
  at::Generator generator;  // posterior samples, codebook restarts
  std::int64_t step = 0, last_checkpoint = -1;
  bool eval_pending = false;
  double wall_time = 0;

  State(AutoencoderTrainConfig c, AutoencoderTrainerParts p, MetricSink& s)
      : config(std::move(c)), parts(std::move(p)), sink(s) {}

  std::filesystem::path output(const char* name) const { return std::filesystem::path(config.output) / name; }

  void save_checkpoint() {
    torch::serialize::OutputArchive archive, model, loss_archive, ae_opt, disc_opt;
    detail::write_checkpoint_header(archive, kCheckpointFormat, config.resolved,
                                    {step, order->position(), wall_time, eval_pending});
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
    save_archive_atomically(archive, output("checkpoint.pt"));
    last_checkpoint = step;
  }

  void evaluate() {
    const auto m =
        evaluate_reconstruction(*ae, *parts.held_out, config.eval_samples, config.eval_batch_size, device);
    ae->module().train();
    MetricValues values = {{"psnr", m.psnr}, {"ssim", m.ssim}, {"l1", m.l1}};
    std::string vq;
    if (m.codebook_usage >= 0) {
      values.emplace_back("codebook_usage", m.codebook_usage);
      values.emplace_back("perplexity", m.perplexity);
      vq = fmt::format(", codebook usage {:.3f}, perplexity {:.1f}", m.codebook_usage, m.perplexity);
    }
    values.emplace_back("wall_time", wall_time);
    spdlog::info("eval step {}: held-out PSNR {:.2f} dB, SSIM {:.4f}, L1 {:.4f} ({} images){}", step, m.psnr,
                 m.ssim, m.l1, m.images, vq);
    sink.write("eval", step, values);
    sink.flush();
  }

  void finish() {
    // Latent statistics over training images, the rescaling, and the SNR_eff table (Sec. G, D.1).
    auto latent_generator = at::make_generator<at::CPUGeneratorImpl>(config.seed ^ detail::kLatentStream);
    const auto images = std::min(config.latent_samples, parts.train_data->size());
    const auto stats = compute_latent_statistics(*ae, *parts.train_data, images, config.eval_batch_size,
                                                 device, latent_generator);
    ae->module().train();
    const auto rescaling = LatentRescaling::from_statistics(config.rescale, stats);
    const auto table = effective_snr_table(*parts.snr_schedule, stats, rescaling,
                                           snr_steps(parts.snr_schedule->num_steps()));
    spdlog::info("latent statistics over {} images: mean {:.4f}, std {:.4f}; rescaling '{}' gives Var {:.4f}",
                 stats.images, stats.mean, stats.std, rescaling.mode, rescaled_variance(stats, rescaling));
    AutoencoderFileInfo info;
    info.name = config.autoencoder.name;
    info.params = config.autoencoder.params;
    info.step = step;
    info.source = "train-autoencoder";
    info.rescaling = rescaling;
    info.statistics = stats.to_json();
    write_autoencoder_file(output("autoencoder.pt"), info, *ae);
    const nlohmann::json report = {{"statistics", info.statistics},
                                   {"rescaling", rescaling.to_json()},
                                   {"variance_raw", stats.std * stats.std},
                                   {"variance_rescaled", rescaled_variance(stats, rescaling)},
                                   {"snr_schedule", config.snr_schedule.name},
                                   {"snr_eff", table}};
    write_text_atomically(output("latent_stats.json"), report.dump(2) + "\n");
  }
};

AutoencoderTrainer::AutoencoderTrainer(AutoencoderTrainConfig config, AutoencoderTrainerParts parts,
                                       MetricSink& sink)
    : state_(std::make_unique<State>(std::move(config), std::move(parts), sink)) {
  auto& s = *state_;
  const auto& c = s.config;
  const auto& data = *s.parts.train_data;
  s.device = resolve_device(c.device);
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
    throw ConfigError("autoencoder.params.ch_mult: f = " + std::to_string(f) +
                      " needs an image side divisible by " + std::to_string(f) + ", the data is " +
                      std::to_string(data.resolution()) + "; change data.params.resolution or ch_mult");
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
  auto trained = s.ae_params;
  for (auto& p : s.loss->generator_parameters()) trained.push_back(p);
  const auto adam = [&](double lr) { return torch::optim::AdamOptions(lr).betas({c.beta1, c.beta2}); };
  s.ae_optimizer = std::make_unique<torch::optim::Adam>(trained, adam(c.lr));
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
  s.step = progress.step;
  s.order->set_position(progress.position);
  s.wall_time = progress.wall_time;
  s.eval_pending = progress.eval_pending;
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
  s.last_checkpoint = s.step;
  s.sink.truncate_after(s.step);
  spdlog::info("resumed from {} at step {}", path.string(), s.step);
  return s.step;
}

TrainOutcome AutoencoderTrainer::run(const std::atomic<bool>& stop) {
  auto& s = *state_;
  const auto& c = s.config;
  std::filesystem::create_directories(c.output);
  s.ae->module().train();
  s.loss->train();
  const double max_norm = c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity();
  const std::int64_t first_step = s.step;
  if (s.eval_pending) {
    s.evaluate();
    s.eval_pending = false;
  }
  std::int64_t parameters = 0;
  for (const auto& p : s.ae_params) parameters += p.numel();
  spdlog::info(
      "training autoencoder '{}' (f = {}, {} latent channels, {} parameters) for {} steps from step {}, "
      "batch {}, GAN from step {}, {}",
      c.autoencoder.name, s.ae->downsampling_factor(), s.ae->latent_channels(), parameters, c.steps, s.step,
      c.batch_size, c.loss.disc_start, s.device.str());
  auto interval_start = Clock::now();
  std::int64_t interval_steps = 0;
  double interval_loss = 0, interval_rec = 0;
  while (s.step < c.steps) {
    const auto step_start = Clock::now();
    const std::int64_t next = s.step + 1;
    const auto x = s.order->next(*s.parts.train_data).images.to(s.device);
    // The autoencoder's update (optimizer_idx 0 in the reference).
    s.ae_optimizer->zero_grad();
    const auto out = s.ae->forward(x, s.generator);
    const auto g = s.loss->generator_loss(x, out, next, s.ae->last_layer());
    g.loss.backward();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(s.ae_params, max_norm);
    const double loss = g.loss.item<double>();
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      const auto kept = s.last_checkpoint >= 0
                            ? "the last good checkpoint (step " + std::to_string(s.last_checkpoint) +
                                  ") is kept in " + checkpoint_path().string()
                            : std::string("no checkpoint had been written yet");
      throw DivergenceError("training diverged at step " + std::to_string(next) + ": loss " +
                            format_number(loss) + ", gradient norm " + format_number(grad_norm) + "; " +
                            kept + ". Lower train.lr or set train.grad_clip");
    }
    s.ae_optimizer->step();
    MetricValues values = {{"loss", loss}, {"grad_norm", grad_norm}};
    for (const auto& [name, value] : g.logs) values.emplace_back(name, value.item<double>());
    for (const auto& [name, value] : out.logs) values.emplace_back(name, value.item<double>());
    // The discriminator's update (optimizer_idx 1), once the GAN terms are on.
    if (s.loss->gan_active(next)) {
      s.disc_optimizer->zero_grad();
      const auto d = s.loss->discriminator_loss(x, out.reconstruction, next);
      d.loss.backward();
      s.disc_optimizer->step();
      for (const auto& [name, value] : d.logs) values.emplace_back(name, value.item<double>());
    } else {
      for (const char* name : {"d_loss", "logits_real", "logits_fake"})
        values.emplace_back(name, std::nan(""));
    }
    s.step = next;
    s.wall_time += std::chrono::duration<double>(Clock::now() - step_start).count();
    values.emplace_back("wall_time", s.wall_time);
    s.sink.write("train", s.step, values);
    ++interval_steps;
    interval_loss += loss;
    for (const auto& [name, value] : values)
      if (name == "rec_loss") interval_rec += value;
    if (s.step % c.log_every == 0 || s.step == c.steps) {
      const double rate = static_cast<double>(interval_steps) /
                          std::chrono::duration<double>(Clock::now() - interval_start).count();
      spdlog::info("step {}/{}  loss {:.5f}  L1 {:.5f}  {:.2f} steps/s  ETA {}", s.step, c.steps,
                   interval_loss / static_cast<double>(interval_steps),
                   interval_rec / static_cast<double>(interval_steps), rate,
                   detail::duration_text(static_cast<double>(c.steps - s.step) / rate));
      interval_start = Clock::now();
      interval_steps = 0;
      interval_loss = interval_rec = 0;
      s.sink.flush();
    }
    const bool stopping = stop.load() && s.step < c.steps;
    const bool eval_due = (c.eval_every > 0 && s.step % c.eval_every == 0) || s.step == c.steps;
    if (eval_due && stopping) s.eval_pending = true;
    if (eval_due && !stopping) s.evaluate();
    if (s.step % c.checkpoint_every == 0 || s.step == c.steps || stopping) {
      s.sink.flush();
      s.save_checkpoint();
    }
    if (stopping) {
      spdlog::warn("interrupted: checkpoint at step {} written to {}", s.step, checkpoint_path().string());
      return {s.step, true};
    }
  }
  if (s.step > first_step || !std::filesystem::exists(s.output("autoencoder.pt"))) s.finish();
  s.sink.flush();
  return {s.step, false};
}

}  // namespace latentlab
