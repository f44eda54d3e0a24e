// `latentlab sample CHECKPOINT`: draws samples from a trained denoiser with a sampler and a guider
// plugin, and writes them as a PNG grid, a NumPy array and a JSON record of how they were made.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/error.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "latentlab/train/checkpoint_file.hpp"
#include "latentlab/train/denoiser_file.hpp"
#include "run_support.hpp"

namespace latentlab::host {
namespace {

// "32" or "48x64" -> {H, W}.
std::pair<std::int64_t, std::int64_t> parse_size(const std::string& text) {
  const auto x = text.find('x');
  try {
    const auto whole = [](const std::string& part) {
      std::size_t used = 0;
      const auto value = std::stoll(part, &used);
      if (used != part.size()) throw std::invalid_argument(part);
      return value;
    };
    const auto h = whole(text.substr(0, x));
    const auto w = x == std::string::npos ? h : whole(text.substr(x + 1));
    if (h >= 1 && w >= 1) return {h, w};
  } catch (const std::exception&) {
  }
  throw ConfigError("--latent-size: expected SIZE or HxW (e.g. 32 or 48x64), got '" + text + "'");
}

struct SampleOptions {
  std::string checkpoint, out, device = "auto";
  std::string sampler = "ddim", sampler_params, guider = "none", guider_params, latent_size, target, mask;
  std::vector<std::string> sampler_sets, guider_sets;
  std::string clip_x0 = "auto";
  std::int64_t steps = 50, count = 16, batch = 16, label = -1, columns = 0;
  double scale = 0;
  std::uint64_t seed = 0;
};

}  // namespace

int run_sample(const Args& args) {
  CommonOptions common;
  SampleOptions o;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("sampler", po::value(&o.sampler)->default_value(o.sampler), "sampler plugin (`latentlab plugins list`)")
      ("sampler-set", po::value(&o.sampler_sets)->composing(), "sampler parameter key=value; repeatable")
      ("sampler-params", po::value(&o.sampler_params), "sampler parameters as a JSON object")
      ("steps", po::value(&o.steps)->default_value(o.steps), "sampling steps (the sampler's step budget)")
      ("guider", po::value(&o.guider)->default_value(o.guider), "guider plugin: none, cfg, posthoc, ...")
      ("guider-set", po::value(&o.guider_sets)->composing(), "guider parameter key=value; repeatable")
      ("guider-params", po::value(&o.guider_params), "guider parameters as a JSON object")
      ("scale", po::value(&o.scale), "guidance scale (sets the guider's `scale`)")
      ("target", po::value(&o.target), "posthoc: the observation y as an image file (low-resolution image, known pixels)")
      ("mask", po::value(&o.mask), "posthoc with transform mask: image whose white pixels are known")
      ("clip-x0", po::value(&o.clip_x0)->default_value(o.clip_x0),
       "on: clip every x0 estimate to the data range [-1, 1] (DDPM's clip_denoised; pixel-space models), "
       "off: do not; auto: on in pixel space, off for latent models (latents have no fixed range)")
      ("count", po::value(&o.count)->default_value(o.count), "number of samples")
      ("batch", po::value(&o.batch)->default_value(o.batch), "samples per sampler run")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of z_T and of the sampler's noise")
      ("latent-size", po::value(&o.latent_size),
       "SIZE or HxW of the latents; larger than trained is allowed (convolutional sampling, Sec. 4.3.2)")
      ("class", po::value(&o.label), "class label for a class-conditional model (default: cycle through all)")
      ("columns", po::value(&o.columns)->default_value(0), "columns of the PNG grid (0: about sqrt(count))")
      ("device", po::value(&o.device)->default_value(o.device), "auto, cpu, cuda or cuda:N")
      ("out", po::value(&o.out), "output folder (default: the run's folder/samples)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("checkpoint", po::value(&o.checkpoint));
  po::variables_map vm;
  const std::string usage =
      "latentlab sample CHECKPOINT [--sampler NAME] [--sampler-set k=v]... [--steps N] [--guider NAME] "
      "[--scale S] [--count N] [--seed S] [--latent-size HxW] [--out DIR]";
  if (!parse_command_line(
          "sample", args, options, positional, usage,
          "Samples a trained denoiser (a denoiser.pt or checkpoint.pt of `train-denoiser`, or its output "
          "folder) "
          "with a sampler and a guider plugin (docs/samplers.md), and writes OUT/samples.png (a grid), "
          "OUT/samples.npy (float32 [N, C, H, W] in [-1, 1]) and OUT/samples.json (how they were made). "
          "A model trained on an autoencoder's latents samples latents (OUT/latents.npy) and decodes them "
          "once at the end.",
          vm))
    return kOk;
  if (o.checkpoint.empty()) throw ConfigError("sample: which checkpoint? Usage: " + usage);
  if (o.count < 1 || o.batch < 1) throw ConfigError("--count and --batch must be >= 1");
  if (o.clip_x0 != "on" && o.clip_x0 != "off" && o.clip_x0 != "auto")
    throw ConfigError("--clip-x0: expected auto, on or off, got '" + o.clip_x0 + "'");

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);

  // Everything is checked before sampling starts: plugins, parameters, checkpoint, sizes, files.
  auto sampler_params = parse_parameter_overrides(o.sampler_params, o.sampler_sets);
  auto guider_params = parse_parameter_overrides(o.guider_params, o.guider_sets);
  if (vm.count("scale")) {
    if (!registry->find(Guider::kKind, o.guider).info.schema.find("scale"))
      throw ConfigError("--scale: guider '" + o.guider +
                        "' has no scale; use --guider cfg or --guider posthoc");
    guider_params["scale"] = o.scale;
  }
  const auto sampler = registry->create<Sampler>(o.sampler, sampler_params, "sampler");
  const auto guider = registry->create<Guider>(o.guider, guider_params, "guider");
  const auto resolved_sampler =
      registry->resolved_params(Sampler::kKind, o.sampler, sampler_params, "sampler");
  const auto resolved_guider = registry->resolved_params(Guider::kKind, o.guider, guider_params, "guider");

  const auto device = resolve_device(o.device, "--device");
  const auto denoiser = load_denoiser(o.checkpoint, device);
  const auto& config = denoiser.config;
  const auto schedule =
      registry->create<Schedule>(config.schedule.name, config.schedule.params, "schedule.params");
  // The step budget fits T and the sampler's own discretisation (when it has the standard parameter).
  discretize(schedule->num_steps(), o.steps,
             resolved_sampler.contains("discretization") && resolved_sampler["discretization"].is_string()
                 ? discretization_from_string(resolved_sampler["discretization"].get<std::string>())
                 : Discretization::Linspace);

  // A latent model: its autoencoder (the run folder's copy, else the path in its config).
  std::shared_ptr<LatentCodec> codec;
  std::filesystem::path autoencoder_path;
  if (!config.autoencoder.empty()) {
    const auto copy = denoiser.path.parent_path() / "autoencoder.pt";
    autoencoder_path = std::filesystem::exists(copy) ? copy : autoencoder_file(config.autoencoder);
    codec = LatentCodec::load(autoencoder_path, autoencoder_factory(*registry), device);
  }
  const auto channels = config.unet.out_channels;  // of z (latents, or pixels)
  if (config.unet.in_channels != channels)
    throw ConfigError("sample: this model concatenates " +
                      std::to_string(config.unet.in_channels - channels) +
                      " conditioning channels to its input; conditioners are not available yet");
  if (codec && codec->latent_channels() != channels)
    throw ConfigError("sample: the autoencoder makes " + std::to_string(codec->latent_channels()) +
                      "-channel latents, the denoiser " + std::to_string(channels) +
                      "; the run's autoencoder.pt is not the one it was trained on");
  const auto image_channels = codec ? codec->image_channels() : channels;
  if (image_channels != 1 && image_channels != 3)
    throw ConfigError("sample: this model makes " + std::to_string(image_channels) +
                      "-channel images; sample writes 1- or 3-channel images");
  if (codec && o.clip_x0 == "on")
    throw ConfigError(
        "--clip-x0 on: clipping x0 to [-1, 1] is for pixel-space models; this model samples "
        "latents, which have no fixed range (use auto or off)");
  const bool clip = o.clip_x0 == "on" || (o.clip_x0 == "auto" && !codec);
  std::int64_t height = 0, width = 0;
  if (!o.latent_size.empty()) {
    std::tie(height, width) = parse_size(o.latent_size);
  } else if (config.data.params.contains("resolution") &&
             config.data.params["resolution"].is_number_integer()) {
    height = width =
        config.data.params["resolution"].get<std::int64_t>() / (codec ? codec->downsampling_factor() : 1);
  } else {
    throw ConfigError("sample: the checkpoint does not record its training resolution; give --latent-size");
  }
  const auto divisor = config.unet.size_divisor();
  if (height % divisor != 0 || width % divisor != 0)
    throw ConfigError("--latent-size " + std::to_string(height) + "x" + std::to_string(width) +
                      ": the UNet needs sizes divisible by " + std::to_string(divisor) + " (2^(levels - 1))");
  if (config.unet.context_dim > 0)
    throw ConfigError(
        "sample: this model takes a cross-attention context; conditioners are not available yet");
  if (o.label >= 0 && config.unet.num_classes == 0)
    throw ConfigError("--class: this model is not class-conditional");
  if (o.label >= config.unet.num_classes && config.unet.num_classes > 0)
    throw ConfigError("--class: expected 0.." + std::to_string(config.unet.num_classes - 1) + ", got " +
                      std::to_string(o.label));

  if (!o.mask.empty() && resolved_guider.value("transform", std::string()) != "mask")
    throw ConfigError(
        "--mask is used only by a guider with transform 'mask': add --guider posthoc "
        "--guider-set transform=mask");
  if (!o.target.empty() && !resolved_guider.contains("transform"))
    throw ConfigError("--target: guider '" + o.guider + "' takes no observation; use --guider posthoc");

  GuidanceInputs inputs;
  inputs.schedule = schedule.get();
  if (codec)
    inputs.decode = [codec](const torch::Tensor& z) { return codec->decode(z); };
  else
    inputs.decode = [](const torch::Tensor& z) { return z; };  // pixel space: D is the identity
  for (const auto& [option, file] : {std::pair{"--target", o.target}, std::pair{"--mask", o.mask}})
    if (!file.empty() && !std::filesystem::is_regular_file(file))
      throw ConfigError(std::string(option) + ": there is no image file '" + file + "'");
  if (!o.target.empty()) inputs.target = io::read_image(o.target, image_channels).to(device);
  if (!o.mask.empty()) inputs.mask = io::read_image(o.mask, 1).gt(0.0).to(torch::kFloat32).to(device);
  auto model = denoiser.model;
  const auto prediction = config.prediction;
  const auto& s = *schedule;
  inputs.model = [model, prediction, &s, device](const torch::Tensor& z_t, std::int64_t t,
                                                 const Conditioning& cond) mutable {
    const auto steps =
        torch::full({z_t.size(0)}, t, torch::TensorOptions().dtype(torch::kInt64).device(device));
    const auto output = model->forward(z_t, steps, cond.context, cond.concat, cond.y);
    const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(device);
    return eps_from_prediction(prediction, output, z_t, torch::full({1, 1, 1, 1}, s.alpha(t), options),
                               torch::full({1, 1, 1, 1}, s.sigma(t), options));
  };

  // Class labels of the samples in [first, first + b): --class, or cycling through the classes.
  const auto labels_for = [&](std::int64_t first, std::int64_t b) {
    if (config.unet.num_classes == 0) return torch::Tensor();
    const auto y = o.label >= 0
                       ? torch::full({b}, o.label, torch::kInt64)
                       : torch::arange(first, first + b, torch::kInt64).remainder(config.unet.num_classes);
    return y.to(device);
  };
  inputs.cond.y = labels_for(0, std::min(o.batch, o.count));
  guider->guide(inputs);  // the guider checks its inputs (target, conditioning) before any sampling

  const auto out = std::filesystem::path(o.out.empty() ? (std::filesystem::is_directory(o.checkpoint)
                                                              ? std::filesystem::path(o.checkpoint)
                                                              : denoiser.path.parent_path()) /
                                                             "samples"
                                                       : std::filesystem::path(o.out));
  std::filesystem::create_directories(out);

  spdlog::info("sampling {} {} of {}x{}x{} with {} ({} steps), guider {}, from {} (step {})", o.count,
               codec ? "latents" : "images", channels, height, width, o.sampler, o.steps, o.guider,
               denoiser.path.string(), denoiser.step);
  torch::NoGradGuard no_grad;  // the posthoc guider turns gradients back on for its own path
  // Sample i starts from z_T drawn with its own seed, so a deterministic sampler gives the same image i
  // whatever --batch is; the samplers' own noise comes from one generator seeded with --seed.
  const auto starts = [&](std::int64_t first, std::int64_t b) {
    std::vector<torch::Tensor> z;
    for (std::int64_t i = first; i < first + b; ++i) {
      auto own = at::make_generator<at::CPUGeneratorImpl>(o.seed * 0x9E3779B97F4A7C15ULL +
                                                          static_cast<std::uint64_t>(i) + 1);
      z.push_back(standard_normal(torch::empty({1, channels, height, width}), own));
    }
    return torch::cat(z).to(device);
  };
  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::vector<torch::Tensor> samples, latents;
  std::int64_t nfe = 0, start_t = 0, end_t = 0;
  const auto started = std::chrono::steady_clock::now();
  for (std::int64_t done = 0; done < o.count;) {
    const auto b = std::min(o.batch, o.count - done);
    inputs.cond.y = labels_for(done, b);
    const auto guided = guider->guide(inputs);
    // Clipping x0_hat to the data range and returning the eps that gives the clipped x0_hat makes every
    // sampler use the clipped estimate (guided-diffusion's clip_denoised, also in its DDIM).
    const EpsFn eps = !clip ? guided : [&guided, &s](const torch::Tensor& z_t, std::int64_t t) {
      const auto x0_hat = x0_estimate(s, z_t, guided(z_t, t), t).clamp(-1.0, 1.0);
      return (z_t - s.alpha(t) * x0_hat) / s.sigma(t);
    };
    const auto z_T = starts(done, b);
    const auto result = sampler->sample(SamplerInput{eps, s, o.steps, z_T, generator});
    if (done == 0 && s.alpha(result.start_t) * s.alpha(result.start_t) > 1e-3)
      spdlog::warn(
          "the sampler started at t = {}, where alpha_t^2 = {:.3g}: z_T ~ N(0, I) is not pure noise there "
          "(a small budget on the 'uniform' grid); --sampler-set discretization=trailing starts at T",
          result.start_t, s.alpha(result.start_t) * s.alpha(result.start_t));
    nfe = result.nfe;
    start_t = result.start_t;
    end_t = result.end_t;
    if (codec) {  // decoded once, at the end of the sampler's run
      latents.push_back(result.z0.to(torch::kCPU, torch::kFloat32));
      samples.push_back(codec->decode(result.z0).to(torch::kCPU, torch::kFloat32).clamp(-1.0, 1.0));
    } else {
      samples.push_back(result.z0.to(torch::kCPU, torch::kFloat32).clamp(-1.0, 1.0));
    }
    done += b;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    spdlog::info("{}/{} samples, {} NFE per run, {:.1f} s", done, o.count, nfe, seconds);
  }
  const auto images = torch::cat(samples);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  io::write_npy(out / "samples.npy", images);  // the array first: it is what metrics read
  if (codec) io::write_npy(out / "latents.npy", torch::cat(latents));
  io::write_png_grid(out / "samples.png", images, o.columns);
  const nlohmann::json record = {
      {"checkpoint", denoiser.path.string()},
      {"checkpoint_step", denoiser.step},
      {"sampler", {{"name", o.sampler}, {"params", resolved_sampler}}},
      {"guider", {{"name", o.guider}, {"params", resolved_guider}}},
      {"steps", o.steps},
      {"clip_x0", clip},
      {"autoencoder", codec ? nlohmann::json{{"file", autoencoder_path.string()},
                                             {"name", codec->info().name},
                                             {"f", codec->downsampling_factor()},
                                             {"source", codec->info().source},
                                             {"rescaling", codec->info().rescaling.mode}}
                            : nlohmann::json()},
      {"nfe_per_run", nfe},
      {"start_t", start_t},
      {"end_t", end_t},
      {"count", o.count},
      {"batch", o.batch},
      {"seed", o.seed},
      {"shape", {o.count, image_channels, images.size(2), images.size(3)}},
      {"latent_shape", {o.count, channels, height, width}},
      {"target", o.target},
      {"mask", o.mask},
      {"class", o.label},
      {"device", device.str()},
      {"seconds", seconds},
      {"schedule", {{"name", config.schedule.name}, {"params", config.schedule.params}}},
      {"prediction", to_string(prediction)}};
  write_text_atomically(out / "samples.json", record.dump(2) + "\n");
  std::cerr << "sample: " << o.count << " samples in " << format_number(std::round(seconds * 100) / 100)
            << " s; wrote " << (out / "samples.png").string() << ", samples.npy and samples.json\n";
  return kOk;
}

}  // namespace latentlab::host
