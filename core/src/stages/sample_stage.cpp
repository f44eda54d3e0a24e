#include "latentlab/stages/sample_stage.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "../train/config_json.hpp"
#include "latentlab/conditioning/captions.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/error.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/stages/denoiser_stage.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/train/denoiser_file.hpp"
#include "latentlab/train/denoiser_trainer.hpp"

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
                  "z_T of every sample, a float .npy [count, c, h, w] (diffusers' `latents=`)")
          .choice("precision", "fp32", {"fp32", "bf16", "fp16"},
                  "autocast precision of the networks (docs/precision.md); fp16 needs CUDA");
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

// The stream of the conditioners' own draws at sampling time (inpainting masks): sample i's from a
// generator of its own, so a mask does not depend on the batch.
constexpr std::uint64_t kMaskStream = 0x14057b7ef767814fULL;

// What one batch of samples is conditioned on.
struct BatchConditions {
  Conditioning cond, uncond;
  torch::Tensor labels;               // [b] int64 on the CPU: the class asked for (or named), if any
  std::vector<std::string> captions;  // the captions, if any
  torch::Tensor masks;                // [b, 1, H, W] on the CPU (inpainting)
};

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
  if (rest.contains("prompts")) {
    const auto& prompts = rest.at("prompts");
    const auto list = prompts.is_string() ? json::array({prompts}) : prompts;
    const bool ok = list.is_array() && !list.empty() &&
                    std::all_of(list.begin(), list.end(), [](const json& p) { return p.is_string(); });
    if (!ok)
      throw ConfigError(path + ".prompts: expected a caption or a non-empty list of captions, got " +
                        prompts.dump());
    c.prompts = list.get<std::vector<std::string>>();
    rest.erase("prompts");
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
  c.precision = parse_precision(params.get_string("precision"), config_where(path, "precision"));
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
  if (!prompts.empty()) out["prompts"] = prompts;
  if (precision != Precision::fp32) out["precision"] = to_string(precision);
  return out;
}

SampleStage::SampleStage(SampleConfig config, const registry::Registry& registry, const std::string& path)
    : config_(std::move(config)), registry_(registry), path_(path) {
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
  check_precision(o.precision, device, config_where(path_, "precision"));
  const auto precision = o.precision;
  const auto& sampler = sampler_;
  const auto& guider = guider_;

  // A conditioner that encodes with the first stage (inpainting) reads it from this slot: the
  // autoencoder is loaded after the denoiser, whose config names it.
  auto codec_slot = std::make_shared<std::shared_ptr<LatentCodec>>();
  DenoiserLoadOptions load_options;
  load_options.conditioner_factory = conditioner_factory(registry_);
  load_options.encode = [codec_slot](const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    return *codec_slot ? (*codec_slot)->encode_mode(x) : x;
  };
  const auto denoiser = load_denoiser(denoiser_path, device, load_options);
  const auto& config = denoiser.config;
  const auto conditioners = denoiser.conditioners;
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
    *codec_slot = codec;
  }
  const auto channels = config.unet.out_channels;  // of z (latents, or pixels)
  const auto concat_channels = conditioners ? conditioners->concat_channels() : 0;
  if (config.unet.in_channels != channels + concat_channels)
    throw Error(
        "sample: " + denoiser.path.string() + "'s UNet takes " + std::to_string(config.unet.in_channels) +
        " input channels for " + std::to_string(channels) + "-channel latents" +
        (concat_channels ? " and its conditioner's " + std::to_string(concat_channels) + " channels"
                         : std::string(", but its config names no map conditioner for the other ") +
                               std::to_string(config.unet.in_channels - channels) +
                               " (a super-resolution or inpainting UNet samples with its conditioner)") +
        "; the file and its config disagree");
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
  if (config.unet.context_dim > 0 && (!conditioners || conditioners->context_dim() == 0))
    throw Error("sample: " + denoiser.path.string() +
                " takes a cross-attention context, but its config names no token conditioner");
  const bool labelled =
      config.unet.num_classes > 0 || (conditioners && conditioners->needs(ConditionSource::Labels));
  const bool captioned = conditioners && conditioners->needs(ConditionSource::Captions);
  const bool imaged = conditioners && conditioners->needs(ConditionSource::Images);
  // The classes asked for: of the label embedding or the class conditioner, or those the default
  // captions name.
  const std::int64_t classes = config.unet.num_classes > 0 ? config.unet.num_classes
                               : conditioners              ? conditioners->setup().num_classes
                                                           : 0;
  const auto class_names = conditioners ? conditioners->setup().class_names : std::vector<std::string>{};
  const bool asks_classes = labelled || (captioned && o.prompts.empty());
  const std::string prompts_where = path_.empty() ? "--prompt" : path_ + ".prompts";
  if (o.label >= 0 && !asks_classes)
    throw ConfigError(config_where(path_, "class") + ": this model is not class-conditional" +
                      (captioned ? " (it takes captions: give prompts)" : ""));
  if (asks_classes && classes == 0)
    throw ConfigError(prompts_where +
                      ": this text-conditional model's data had no classes to name; give prompts");
  if (o.label >= classes && classes > 0)
    throw ConfigError(config_where(path_, "class") + ": expected 0.." + std::to_string(classes - 1) +
                      ", got " + std::to_string(o.label));
  if (!o.prompts.empty() && !captioned)
    throw ConfigError(prompts_where + ": this model does not take captions");
  if (imaged && (height != conditioners->setup().latent_size || width != height))
    throw ConfigError(config_where(path_, "latent_size") +
                      ": this model is conditioned on images of its training size; sample it at that size");
  // Image-conditioned models (super-resolution, inpainting): sample i is conditioned on held-out image i.
  torch::Tensor condition_images;  // [count, C, H, W] on the CPU
  torch::Tensor condition_labels;  // [count] their labels, when the data has them
  if (imaged) {
    const auto held_out =
        registry_.create<Dataset>(config.data.name, config.held_out_params(), "eval.data_params");
    if (held_out->size() < o.count)
      throw ConfigError(config_where(path_, "count") + ": " + std::to_string(o.count) +
                        " samples conditioned on held-out images, but the held-out data has " +
                        std::to_string(held_out->size()));
    std::vector<std::int64_t> indices(static_cast<std::size_t>(o.count));
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
    const auto held = held_out->get_batch(indices);
    condition_images = held.images;
    condition_labels = held.labels;
  }
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
    inputs.decode = [codec, device, precision](const torch::Tensor& z) {
      const AutocastGuard autocast(device, precision);
      return full_precision(codec->decode(z));
    };
  else
    inputs.decode = [](const torch::Tensor& z) { return z; };  // pixel space: D is the identity
  if (!o.target.empty()) inputs.target = io::read_image(o.target, image_channels).to(device);
  if (!o.mask.empty()) inputs.mask = io::read_image(o.mask, 1).gt(0.0).to(torch::kFloat32).to(device);
  auto model = denoiser.model;
  const auto prediction = config.prediction;
  const auto& s = *schedule;
  inputs.model = [model, prediction, &s, device, precision](const torch::Tensor& z_t, std::int64_t t,
                                                            const Conditioning& cond) mutable {
    const auto steps =
        torch::full({z_t.size(0)}, t, torch::TensorOptions().dtype(torch::kInt64).device(device));
    torch::Tensor output;
    {  // the UNet under autocast; the sampler's arithmetic after it in float32/float64
      const AutocastGuard autocast(device, precision);
      output = full_precision(model->forward(z_t, steps, cond.context, cond.concat, cond.y));
    }
    const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(device);
    return eps_from_prediction(prediction, output, z_t, torch::full({1, 1, 1, 1}, s.alpha(t), options),
                               torch::full({1, 1, 1, 1}, s.sigma(t), options));
  };

  // What the samples in [first, first + b) are conditioned on: the configured class, or the classes in
  // turn; the prompts in turn, or captions naming those classes with templates no training caption used;
  // held-out images (and sample i's mask from a generator of its own, whatever the batch).
  const auto conditions_for = [&](std::int64_t first, std::int64_t b) {
    torch::NoGradGuard no_grad;
    const AutocastGuard autocast(device, precision);  // the conditioners' networks
    BatchConditions batch;
    // Beside a held-out image (hybrid), the class is that image's own unless one is asked for.
    if (asks_classes)
      batch.labels = o.label >= 0 ? torch::full({b}, o.label, torch::kInt64)
                     : condition_labels.defined()
                         ? condition_labels.slice(0, first, first + b).to(torch::kInt64)
                         : torch::arange(first, first + b, torch::kInt64).remainder(classes);
    // Labels through unet.num_classes have no unconditional value: uncond stays empty, and cfg refuses.
    if (config.unet.num_classes > 0) batch.cond.y = batch.labels.to(device);
    if (!conditioners) return batch;
    ConditionInputs in;
    if (conditioners->needs(ConditionSource::Labels)) in.labels = batch.labels.to(device);
    if (captioned) {
      const auto& templates = held_out_caption_templates();
      for (std::int64_t i = first; i < first + b; ++i) {
        if (!o.prompts.empty()) {
          in.captions.push_back(o.prompts[static_cast<std::size_t>(i) % o.prompts.size()]);
          continue;
        }
        const auto c = batch.labels[i - first].item<std::int64_t>();
        const auto name = c < static_cast<std::int64_t>(class_names.size())
                              ? class_names[static_cast<std::size_t>(c)]
                              : "class " + std::to_string(c);
        in.captions.push_back(
            fill_caption(templates[static_cast<std::size_t>(i / classes) % templates.size()], name));
      }
      batch.captions = in.captions;
    }
    if (imaged) in.images = condition_images.slice(0, first, first + b).to(device);
    std::vector<torch::Tensor> drawn;
    for (std::int64_t i = first; i < first + b; ++i) {
      auto one = in.slice(i - first, i - first + 1);
      auto own = at::make_generator<at::CPUGeneratorImpl>((o.seed ^ kMaskStream) * 0x9E3779B97F4A7C15ULL +
                                                          static_cast<std::uint64_t>(i) + 1);
      conditioners->complete(one, own);
      if (one.masks.defined()) drawn.push_back(one.masks);
    }
    if (!drawn.empty()) {
      in.masks = torch::cat(drawn);
      batch.masks = in.masks.to(torch::kCPU, torch::kFloat32);
    }
    const auto cond = conditioners->encode(in);
    batch.cond.context = cond.context;
    batch.cond.concat = cond.concat;
    // Only a model trained with condition dropout has learned its unconditional value; without one,
    // classifier-free guidance refuses (the guider names the fix).
    if (config.p_uncond > 0) {
      const auto uncond = conditioners->unconditional(in);
      batch.uncond.context = uncond.context;
      batch.uncond.concat = uncond.concat;
      batch.uncond.y = batch.cond.y;  // labels beside a conditioner are not dropped
    } else {
      batch.uncond = Conditioning{};
    }
    return batch;
  };
  {
    // The guider checks its inputs (target, conditioning) before any sampling.
    const auto first = conditions_for(0, std::min(o.batch, o.count));
    inputs.cond = first.cond;
    inputs.uncond = first.uncond;
    guider->guide(inputs);
  }

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
  std::vector<torch::Tensor> samples, latents, labels, masks;
  std::vector<std::string> captions;
  std::int64_t nfe = 0, start_t = 0, end_t = 0;
  const auto started = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  for (std::int64_t done = 0; done < o.count;) {
    if (context.stop_requested())
      throw Error("sample: interrupted after " + std::to_string(done) + " samples");
    const auto b = std::min(o.batch, o.count - done);
    const auto batch_conditions = conditions_for(done, b);
    inputs.cond = batch_conditions.cond;
    inputs.uncond = batch_conditions.uncond;
    if (batch_conditions.labels.defined()) labels.push_back(batch_conditions.labels);
    captions.insert(captions.end(), batch_conditions.captions.begin(), batch_conditions.captions.end());
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
    torch::Tensor images;
    if (codec) {  // decoded once, at the end of the sampler's run
      latents.push_back(result.z0.to(torch::kCPU, torch::kFloat32));
      const AutocastGuard autocast(device, precision);
      images = codec->decode(result.z0).to(torch::kCPU, torch::kFloat32).clamp(-1.0, 1.0);
    } else {
      images = result.z0.to(torch::kCPU, torch::kFloat32).clamp(-1.0, 1.0);
    }
    if (batch_conditions.masks.defined()) {
      // Inpainting keeps the known pixels: the sample is the image outside the mask and the model's
      // pixels inside it.
      const auto& m = batch_conditions.masks;
      images = condition_images.slice(0, done, done + b) * (1.0 - m) + images * m;
      masks.push_back(m);
    }
    samples.push_back(images);
    done += b;
    spdlog::info("{}/{} samples, {} NFE per run, {:.1f} s", done, o.count, nfe, elapsed());
  }
  const auto images = torch::cat(samples);
  const double seconds = elapsed();
  io::write_npy(out / "samples.npy", images);  // the array first: it is what metrics read
  if (codec) io::write_npy(out / "latents.npy", torch::cat(latents));
  io::write_png_grid(out / "samples.png", images, o.columns);
  // What the task metrics compare with (docs/conditioning.md).
  json conditions;
  if (!labels.empty() || conditioners) {
    conditions = {{"task", conditioners ? conditioners->task() : std::string("class")},
                  {"mode", conditioners ? conditioners->mode() : std::string("class_embedding")},
                  {"conditioners", config.resolved.value("conditioner", json::array())},
                  {"captions", captions},
                  {"num_classes", classes},
                  {"class_names", class_names}};
    if (!labels.empty()) io::write_npy(out / "labels.npy", torch::cat(labels));
    if (imaged) io::write_npy(out / "reference.npy", condition_images);
    if (!masks.empty()) io::write_npy(out / "masks.npy", torch::cat(masks));
    write_text_atomically(out / "conditions.json", conditions.dump(2) + "\n");
  }
  json record = config_.to_json();
  record["sampler"]["params"] = sampler.params;
  record["guider"]["params"] = guider.params;
  record.update(json{
      {"checkpoint", denoiser.path.string()},
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
      {"precision", to_string(precision)},
      {"seconds", seconds},
      {"samples_per_second", static_cast<double>(o.count) / seconds},
      {"schedule", {{"name", config.schedule.name}, {"params", config.schedule.params}}},
      {"prediction", to_string(prediction)},
      {"conditioning",
       conditions.is_null() ? json() : json{{"task", conditions["task"]}, {"mode", conditions["mode"]}}}});
  write_text_atomically(out / "samples.json", record.dump(2) + "\n");
  return {o.count, nfe, seconds, out / "samples.npy"};
}

}  // namespace latentlab::stages
