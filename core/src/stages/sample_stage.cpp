#include "latentlab/stages/sample_stage.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "../train/config_json.hpp"
#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/error.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/train/denoiser_file.hpp"

namespace latentlab::stages {

namespace {

using nlohmann::json;

const ParamSchema& sample_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .integer("steps", 50, "sampling steps (the sampler's step budget)", Range::at_least(1))
          .integer("count", 16, "number of samples", Range::at_least(1))
          .integer("batch", 16, "samples per sampler run", Range::at_least(1))
          .integer("seed", 0, "seed of z_T and of the sampler's noise", Range::at_least(0))
          .choice("clip_x0", "auto", {"auto", "on", "off"},
                  "clip every x0 estimate to [-1, 1] (on), or not (off); auto: on in pixel space")
          .integer("class", -1, "class label of a class-conditional model (-1: cycle through all)",
                   Range::at_least(-1))
          .integer("columns", 0, "columns of the PNG grid (0: about sqrt(count))", Range::at_least(0))
          .string("target", "", "post-hoc guidance: the observation y (an image file)")
          .string("mask", "", "post-hoc guidance with transform mask: image whose white pixels are known")
          .string("init_latents", "",
                  "z_T of every sample, a float .npy [count, c, h, w] (diffusers' `latents=`)");
  return schema;
}

// "32", "48x64", 32 or [48, 64] -> {H, W}; throws ConfigError naming `path`.
std::pair<std::int64_t, std::int64_t> parse_size(const json& value, const std::string& path) {
  const auto fail = [&] {
    return ConfigError(path + ": expected SIZE or HxW (e.g. 32, \"48x64\" or [48, 64]), got " + value.dump());
  };
  std::int64_t h = 0, w = 0;
  if (value.is_number_integer()) {
    h = w = value.get<std::int64_t>();
  } else if (value.is_array() && value.size() == 2 && value[0].is_number_integer() &&
             value[1].is_number_integer()) {
    h = value[0].get<std::int64_t>();
    w = value[1].get<std::int64_t>();
  } else if (value.is_string()) {
    const auto text = value.get<std::string>();
    const auto whole = [&](const std::string& part) {
      std::size_t used = 0;
      std::int64_t number = 0;
      try {
        number = std::stoll(part, &used);
      } catch (const std::exception&) {
        throw fail();
      }
      if (used != part.size()) throw fail();
      return number;
    };
    const auto x = text.find('x');
    h = whole(text.substr(0, x));
    w = x == std::string::npos ? h : whole(text.substr(x + 1));
  } else {
    throw fail();
  }
  if (h < 1 || w < 1) throw fail();
  return {h, w};
}

// "[16, 4, 8, 8]"
std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::vector<std::string> parts;
  for (const auto n : shape) parts.push_back(std::to_string(n));
  return "[" + join(parts) + "]";
}

}  // namespace

SampleConfig SampleConfig::from_json(const json& input, const std::string& path) {
  if (!input.is_object()) throw ConfigError(path + ": expected a JSON object, got " + input.dump());
  json rest = input;
  SampleConfig c;
  const auto choice = [&](const char* key, const std::string& default_name) {
    if (!rest.contains(key)) return PluginChoice{default_name, json::object()};
    const json section = {{key, rest.at(key)}};
    rest.erase(key);
    auto picked = detail::plugin_choice(section, key, "name", default_name);
    return picked;
  };
  try {
    c.sampler = choice("sampler", "ddim");
    c.guider = choice("guider", "none");
  } catch (const ConfigError& e) {
    rethrow_prefixed(e, path + ".");
  }
  if (rest.contains("latent_size")) {
    std::tie(c.latent_height, c.latent_width) = parse_size(rest.at("latent_size"), path + ".latent_size");
    rest.erase("latent_size");
  }
  const auto params = sample_schema().validate(rest, path, "the sample stage");
  c.steps = params.get_int("steps");
  c.count = params.get_int("count");
  c.batch = params.get_int("batch");
  c.seed = static_cast<std::uint64_t>(params.get_int("seed"));
  c.clip_x0 = params.get_string("clip_x0");
  c.label = params.get_int("class");
  c.columns = params.get_int("columns");
  c.target = params.get_string("target");
  c.mask = params.get_string("mask");
  c.init_latents = params.get_string("init_latents");
  return c;
}

json SampleConfig::to_json() const {
  json out = {{"sampler", sampler.to_json()},
              {"guider", guider.to_json()},
              {"steps", steps},
              {"count", count},
              {"batch", batch},
              {"seed", seed},
              {"clip_x0", clip_x0},
              {"class", label},
              {"columns", columns},
              {"target", target},
              {"mask", mask},
              {"init_latents", init_latents}};
  if (latent_height > 0) out["latent_size"] = {latent_height, latent_width};
  return out;
}

SampleStage::SampleStage(SampleConfig config, const registry::Registry& registry, const std::string& path)
    : config_(std::move(config)), registry_(registry) {
  // A command's flags name the plugin's parameters sampler.KEY; a spec's JSON path is PATH.sampler.params.
  const auto params_path = [&](const char* plugin) {
    return path.empty() ? std::string(plugin) : path + "." + plugin + ".params";
  };
  // An unknown plugin's error names where it was asked for (its parameters' errors name their path);
  // several problems stay several.
  const auto named = [&](const char* plugin, const ConfigError& e) {
    if (std::string(e.what()).rfind(params_path(plugin), 0) == 0) rethrow_prefixed(e, "");
    rethrow_prefixed(e, (path.empty() ? "--" + std::string(plugin) : path + "." + plugin) + ": ");
  };
  try {
    sampler_ = registry.create<Sampler>(config_.sampler.name, config_.sampler.params, params_path("sampler"));
  } catch (const ConfigError& e) {
    named("sampler", e);
  }
  try {
    guider_ = registry.create<Guider>(config_.guider.name, config_.guider.params, params_path("guider"));
  } catch (const ConfigError& e) {
    named("guider", e);
  }
  const auto where = [&](const std::string& key) { return config_where(path, key); };
  if (!config_.mask.empty() && guider_.params.value("transform", std::string()) != "mask")
    throw ConfigError(where("mask") +
                      ": the mask is used only by a guider with transform 'mask' (guider posthoc with "
                      "transform=mask)");
  if (!config_.target.empty() && !guider_.params.contains("transform"))
    throw ConfigError(where("target") + ": guider '" + config_.guider.name +
                      "' takes no observation y; use --guider posthoc (in a spec: \"guider\": \"posthoc\")");
  for (const auto& [key, file] : {std::pair{"target", config_.target}, std::pair{"mask", config_.mask},
                                  std::pair{"init_latents", config_.init_latents}})
    if (!file.empty() && !std::filesystem::is_regular_file(file))
      throw ConfigError(where(key) + ": there is no " + (key == std::string("init_latents") ? "" : "image ") +
                        "file '" + file + "'");
}

json SampleStage::config() const {
  auto out = config_.to_json();
  out["sampler"]["params"] = sampler_.params;
  out["guider"]["params"] = guider_.params;
  // The files' contents, not their names, decide what is sampled: the key sees their SHA-256.
  for (const std::string key : {"target", "mask", "init_latents"})
    if (const auto file = out[key].get<std::string>(); !file.empty())
      out[key] = "sha256:" + registry_.file_sha256(file);
  return out;
}

json SampleStage::plugins() const {
  return {plugin_record(registry_, Sampler::kKind, config_.sampler.name),
          plugin_record(registry_, Guider::kKind, config_.guider.name)};
}

SampleResult SampleStage::run(const StageContext& context, const std::filesystem::path& denoiser_path,
                              const std::filesystem::path& out) const {
  const auto& o = config_;
  const auto device = context.device;
  const auto& sampler = sampler_;
  const auto& guider = guider_;

  const auto denoiser = load_denoiser(denoiser_path, device);
  const auto& config = denoiser.config;
  const auto schedule =
      registry_.create<Schedule>(config.schedule.name, config.schedule.params, "schedule.params");
  // The step budget fits T and the sampler's own discretisation (when it has the standard parameter).
  discretize(schedule->num_steps(), o.steps,
             sampler.params.contains("discretization") && sampler.params["discretization"].is_string()
                 ? discretization_from_string(sampler.params["discretization"].get<std::string>())
                 : Discretization::Linspace);

  // A latent model: its autoencoder (the run folder's copy, else the path in its config).
  std::shared_ptr<LatentCodec> codec;
  std::filesystem::path autoencoder_path;
  if (!config.autoencoder.empty()) {
    const auto copy = denoiser.path.parent_path() / "autoencoder.pt";
    autoencoder_path = std::filesystem::exists(copy) ? copy : autoencoder_file(config.autoencoder);
    codec = LatentCodec::load(
        autoencoder_path,
        [this](const std::string& name, const json& params) {
          return registry_.create<Autoencoder>(name, params, "autoencoder.params").object;
        },
        device);
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
        "clip_x0 on: clipping x0 to [-1, 1] is for pixel-space models; this model samples latents, which "
        "have no fixed range (use auto or off)");
  const bool clip = o.clip_x0 == "on" || (o.clip_x0 == "auto" && !codec);
  std::int64_t height = o.latent_height, width = o.latent_width;
  if (height == 0) {
    if (!config.data.params.contains("resolution") || !config.data.params["resolution"].is_number_integer())
      throw ConfigError("sample: the checkpoint does not record its training resolution; give latent_size");
    height = width =
        config.data.params["resolution"].get<std::int64_t>() / (codec ? codec->downsampling_factor() : 1);
  }
  const auto divisor = config.unet.size_divisor();
  if (height % divisor != 0 || width % divisor != 0)
    throw ConfigError("latent_size " + std::to_string(height) + "x" + std::to_string(width) +
                      ": the UNet needs sizes divisible by " + std::to_string(divisor) + " (2^(levels - 1))");
  if (config.unet.context_dim > 0)
    throw ConfigError(
        "sample: this model takes a cross-attention context; conditioners are not available yet");
  if (o.label >= 0 && config.unet.num_classes == 0)
    throw ConfigError("class: this model is not class-conditional");
  if (o.label >= config.unet.num_classes && config.unet.num_classes > 0)
    throw ConfigError("class: expected 0.." + std::to_string(config.unet.num_classes - 1) + ", got " +
                      std::to_string(o.label));
  torch::Tensor init_latents;
  if (!o.init_latents.empty()) {
    init_latents = io::read_npy(o.init_latents).to(torch::kFloat32);
    const std::vector<std::int64_t> expected = {o.count, channels, height, width};
    if (init_latents.sizes().vec() != expected)
      throw ConfigError("init_latents: " + o.init_latents + " holds an array of shape " +
                        shape_text(init_latents.sizes().vec()) + ", this run needs z_T of shape " +
                        shape_text(expected) + " [count, channels, height, width]" +
                        (codec ? " of latents" : ""));
    if (!torch::isfinite(init_latents).all().item<bool>())
      throw ConfigError("init_latents: " + o.init_latents + " holds NaN or infinite values");
  }

  GuidanceInputs inputs;
  inputs.schedule = schedule.object.get();
  if (codec)
    inputs.decode = [codec](const torch::Tensor& z) { return codec->decode(z); };
  else
    inputs.decode = [](const torch::Tensor& z) { return z; };  // pixel space: D is the identity
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

  // Class labels of the samples in [first, first + b): the configured class, or cycling through them.
  const auto labels_for = [&](std::int64_t first, std::int64_t b) {
    if (config.unet.num_classes == 0) return torch::Tensor();
    const auto y = o.label >= 0
                       ? torch::full({b}, o.label, torch::kInt64)
                       : torch::arange(first, first + b, torch::kInt64).remainder(config.unet.num_classes);
    return y.to(device);
  };
  inputs.cond.y = labels_for(0, std::min(o.batch, o.count));
  guider->guide(inputs);  // the guider checks its inputs (target, conditioning) before any sampling

  std::filesystem::create_directories(out);
  spdlog::info("sampling {} {} of {}x{}x{} with {} ({} steps), guider {}, from {} (step {})", o.count,
               codec ? "latents" : "images", channels, height, width, o.sampler.name, o.steps, o.guider.name,
               denoiser.path.string(), denoiser.step);
  torch::NoGradGuard no_grad;  // the posthoc guider turns gradients back on for its own path
  // Sample i starts from z_T drawn with its own seed (or given), so a deterministic sampler gives the
  // same image i whatever the batch is (up to float rounding); the samplers' own noise comes from one
  // generator seeded with the seed.
  const auto starts = [&](std::int64_t first, std::int64_t b) {
    if (init_latents.defined()) return init_latents.slice(0, first, first + b).to(device);
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
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  for (std::int64_t done = 0; done < o.count;) {
    if (context.stop_requested())
      throw Error("sample: interrupted after " + std::to_string(done) + " samples");
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
          "(a small budget on the 'uniform' grid); the sampler parameter discretization=trailing starts at T",
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
    spdlog::info("{}/{} samples, {} NFE per run, {:.1f} s", done, o.count, nfe, elapsed());
  }
  const auto images = torch::cat(samples);
  const double seconds = elapsed();
  io::write_npy(out / "samples.npy", images);  // the array first: it is what metrics read
  if (codec) io::write_npy(out / "latents.npy", torch::cat(latents));
  io::write_png_grid(out / "samples.png", images, o.columns);
  json record = config_.to_json();
  record["sampler"]["params"] = sampler.params;
  record["guider"]["params"] = guider.params;
  record.update(json{{"checkpoint", denoiser.path.string()},
                     {"checkpoint_step", denoiser.step},
                     {"clip_x0", clip},
                     {"autoencoder", codec ? json{{"file", autoencoder_path.string()},
                                                  {"name", codec->info().name},
                                                  {"f", codec->downsampling_factor()},
                                                  {"source", codec->info().source},
                                                  {"rescaling", codec->info().rescaling.mode}}
                                           : json()},
                     {"nfe_per_run", nfe},
                     {"start_t", start_t},
                     {"end_t", end_t},
                     {"shape", {o.count, image_channels, images.size(2), images.size(3)}},
                     {"latent_shape", {o.count, channels, height, width}},
                     {"device", device.str()},
                     {"seconds", seconds},
                     {"samples_per_second", static_cast<double>(o.count) / seconds},
                     {"schedule", {{"name", config.schedule.name}, {"params", config.schedule.params}}},
                     {"prediction", to_string(prediction)}});
  write_text_atomically(out / "samples.json", record.dump(2) + "\n");
  return {o.count, nfe, seconds, out / "samples.npy"};
}

}  // namespace latentlab::stages
