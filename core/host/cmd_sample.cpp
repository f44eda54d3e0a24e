// `latentlab sample CHECKPOINT`: flags -> the sample stage (latentlab/stages/sample_stage.hpp), which
// draws samples from a trained denoiser with a sampler and a guider plugin and writes them as a PNG
// grid, a NumPy array and a JSON record of how they were made.
#include <cmath>
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "latentlab/error.hpp"
#include "latentlab/stages/sample_stage.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "run_support.hpp"

namespace latentlab::host {

namespace {

struct SampleOptions {
  std::string checkpoint, out, device = "auto";
  std::string sampler = "ddim", sampler_params, guider = "none", guider_params, latent_size, target, mask;
  std::string init_latents;
  std::vector<std::string> sampler_sets, guider_sets, prompts;
  std::string clip_x0 = "auto", precision = "fp32";
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
      ("init-latents", po::value(&o.init_latents),
       "z_T of every sample from a float .npy [count, c, h, w] (diffusers' `latents=`): interpolation, "
       "image-to-image, reproducing another framework's samples")
      ("clip-x0", po::value(&o.clip_x0)->default_value(o.clip_x0),
       "on: clip every x0 estimate to the data range [-1, 1] (DDPM's clip_denoised; pixel-space models), "
       "off: do not; auto: on in pixel space, off for latent models (latents have no fixed range)")
      ("count", po::value(&o.count)->default_value(o.count), "number of samples")
      ("batch", po::value(&o.batch)->default_value(o.batch), "samples per sampler run")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of z_T and of the sampler's noise")
      ("latent-size", po::value(&o.latent_size),
       "SIZE or HxW of the latents; larger than trained is allowed (convolutional sampling, Sec. 4.3.2)")
      ("class", po::value(&o.label), "class label for a class-conditional model (default: cycle through all)")
      ("prompt", po::value(&o.prompts)->composing(),
       "caption for a text-conditional model; repeatable, cycled through (default: captions naming each "
       "class with templates the model never saw)")
      ("columns", po::value(&o.columns)->default_value(0), "columns of the PNG grid (0: about sqrt(count))")
      ("device", po::value(&o.device)->default_value(o.device), "auto, cpu, cuda or cuda:N")
      ("precision", po::value(&o.precision)->default_value(o.precision),
       "fp32, or bf16 (CPU, CUDA) / fp16 (CUDA): the UNet and decoder under autocast; auto: bf16 where the "
       "device multiplies it natively, else fp32 (docs/precision.md)")
      ("out", po::value(&o.out), "output folder (default: the run's folder/samples)");
  // clang-format on
  add_common_options(options, common);
  Positionals positional;
  positional.add("checkpoint", po::value(&o.checkpoint));
  po::variables_map vm;
  const std::string usage =
      "latentlab sample CHECKPOINT [--sampler NAME] [--sampler-set k=v]... [--steps N] [--guider NAME] "
      "[--scale S] [--count N] [--seed S] [--latent-size HxW] [--init-latents FILE.npy] [--out DIR]";
  if (!parse_command_line(
          "sample", args, options, positional, usage,
          "Samples a trained denoiser (a denoiser.pt or checkpoint.pt of `train-denoiser`, or its output "
          "folder) with a sampler and a guider plugin (docs/samplers.md), and writes OUT/samples.png (a "
          "grid), OUT/samples.npy (float32 [N, C, H, W] in [-1, 1]) and OUT/samples.json (how they were "
          "made). A model trained on an autoencoder's latents samples latents (OUT/latents.npy) and decodes "
          "them once at the end.",
          vm))
    return kOk;
  if (o.checkpoint.empty()) throw ConfigError("sample: which checkpoint? Usage: " + usage);
  if (o.count < 1 || o.batch < 1) throw ConfigError("--count and --batch must be >= 1");
  // Named as the flag, before anything loads; "auto" is resolved for the device the networks run on.
  const auto precision = to_string(parse_precision_setting(o.precision, o.device, "--precision"));
  if (o.clip_x0 != "on" && o.clip_x0 != "off" && o.clip_x0 != "auto")
    throw ConfigError("--clip-x0: expected auto, on or off, got '" + o.clip_x0 + "'");

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);

  nlohmann::json spec = {
      {"sampler",
       {{"name", o.sampler}, {"params", parse_parameter_overrides(o.sampler_params, o.sampler_sets)}}},
      {"guider", {{"name", o.guider}, {"params", parse_parameter_overrides(o.guider_params, o.guider_sets)}}},
      {"steps", o.steps},
      {"count", o.count},
      {"batch", o.batch},
      {"seed", o.seed},
      {"clip_x0", o.clip_x0},
      {"class", o.label},
      {"columns", o.columns},
      {"target", o.target},
      {"mask", o.mask},
      {"init_latents", o.init_latents},
      {"precision", precision}};
  if (!o.latent_size.empty()) spec["latent_size"] = o.latent_size;
  if (!o.prompts.empty()) spec["prompts"] = o.prompts;
  if (vm.count("scale")) {
    if (!registry->find(Guider::kKind, o.guider).info.schema.find("scale"))
      throw ConfigError("--scale: guider '" + o.guider +
                        "' has no scale; use --guider cfg or --guider posthoc");
    spec["guider"]["params"]["scale"] = o.scale;
  }
  auto config = stages::SampleConfig::from_json(spec, "sample");
  const stages::SampleStage stage(std::move(config), *registry, "");

  const auto device = resolve_device(o.device, "--device");
  const std::filesystem::path checkpoint(o.checkpoint);
  const auto out = !o.out.empty()                              ? std::filesystem::path(o.out)
                   : std::filesystem::is_directory(checkpoint) ? checkpoint / "samples"
                                                               : checkpoint.parent_path() / "samples";
  const stages::StageContext context{*registry, device};
  const auto result = stage.run(context, o.checkpoint, out);
  std::cerr << "sample: " << result.count << " samples in "
            << format_number(std::round(result.seconds * 100) / 100) << " s; wrote "
            << (out / "samples.png").string() << ", samples.npy and samples.json\n";
  return kOk;
}

}  // namespace latentlab::host
