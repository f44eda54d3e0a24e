// `latentlab reconstruct --autoencoder CKPT INPUT`: what a compression factor f costs. Encodes and decodes
// held-out images, writes the reconstructions as PNG and prints PSNR, SSIM, PSIM and rFID when asked,
// codebook usage and the latent statistics.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "feature_support.hpp"
#include "latentlab/error.hpp"
#include "latentlab/latent/autoencoder_file.hpp"
#include "latentlab/stages/reconstruction_stage.hpp"
#include "latentlab/threads.hpp"
#include "run_support.hpp"

namespace latentlab::host {

namespace {

struct ReconstructOptions {
  std::string autoencoder, input, out, data_params, device = "auto", format = "table", precision = "fp32";
  std::vector<std::string> data_sets, lpips_weights;
  std::int64_t count = 256, batch = 32, resolution = 0, images = 16;
  std::uint64_t seed = 0;
  bool rfid = false;
};

}  // namespace

int run_reconstruct(const Args& args) {
  CommonOptions common;
  ReconstructOptions o;
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("autoencoder", po::value(&o.autoencoder), "autoencoder.pt of `train-autoencoder` or `import-weights` (or its folder)")
      ("out", po::value(&o.out), "output folder (default: the autoencoder's folder/reconstructions)")
      ("count", po::value(&o.count)->default_value(o.count), "images to reconstruct (0: all)")
      ("images", po::value(&o.images)->default_value(o.images), "of those, how many to write as PNG files")
      ("batch", po::value(&o.batch)->default_value(o.batch), "images per batch")
      ("resolution", po::value(&o.resolution), "image side (default: the autoencoder's training size)")
      ("data-set", po::value(&o.data_sets)->composing(), "dataset parameter key=value; repeatable")
      ("data-params", po::value(&o.data_params), "dataset parameters as a JSON object")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of KL posterior samples for the latent statistics")
      ("device", po::value(&o.device)->default_value(o.device), "auto, cpu, cuda or cuda:N")
      ("precision", po::value(&o.precision)->default_value(o.precision),
       "fp32, or bf16 (CPU, CUDA) / fp16 (CUDA): the autoencoder under autocast; auto: bf16 where the "
       "device multiplies it natively, else fp32 (docs/precision.md)")
      ("format", po::value(&o.format)->default_value(o.format), "table or json")
      ("lpips-weights", po::value(&o.lpips_weights)->multitoken()->composing(), "also PSIM (the mean LPIPS distance, the paper's Tab. 8) from these LPIPS weights files: a reference first-stage checkpoint, or torchvision's VGG16 with taming's vgg.pth (docs/autoencoders.md)")
      ("rfid", po::bool_switch(&o.rfid), "also the reconstruction FID (rFID): FID of the reconstructions against the originals, on the features below");
  // clang-format on
  FeatureOptions features;
  po::options_description feature_options("rFID features (with --rfid; see `latentlab fid --help`)");
  add_feature_options(feature_options, features, /*pass_options=*/false);
  options.add(feature_options);
  add_common_options(options, common);
  Positionals positional;
  positional.add("input", po::value(&o.input));
  po::variables_map vm;
  const std::string usage =
      "latentlab reconstruct --autoencoder CKPT INPUT [--out DIR] [--count N] [--data-set k=v]... "
      "[--lpips-weights FILE...] [--rfid]";
  if (!parse_command_line(
          "reconstruct", args, options, positional, usage,
          "Encodes and decodes INPUT (an image folder, or a dataset name such as fashion-mnist, whose test "
          "split is used unless --data-set split=... says otherwise) with the autoencoder (KL: the "
          "posterior mean), writes OUT/reconstructions.png (original | reconstruction pairs), "
          "OUT/images/NNNNN.png and OUT/metrics.json, and prints PSNR, SSIM, L1, codebook usage (VQ), "
          "the latent statistics, with --lpips-weights PSIM (LPIPS) and, with --rfid, the reconstruction "
          "FID.",
          vm))
    return kOk;
  if (o.autoencoder.empty()) throw ConfigError("reconstruct: which autoencoder? Usage: " + usage);
  if (o.input.empty()) throw ConfigError("reconstruct: which images? Usage: " + usage);
  if (!o.rfid)
    for (const auto& name : feature_option_names())
      if (vm.count(name))
        throw ConfigError("--" + name + " sets up the rFID features; add --rfid, or leave it out");
  if (o.count < 0 || o.batch < 1 || o.images < 0)
    throw ConfigError("--count, --images >= 0 and --batch >= 1");
  if (o.format != "table" && o.format != "json")
    throw ConfigError("--format: expected table or json, got '" + o.format + "'");

  stages::ReconstructionConfig config;
  config.input = o.input;
  config.data_params = parse_parameter_overrides(o.data_params, o.data_sets);
  if (o.resolution > 0) config.data_params["resolution"] = o.resolution;
  config.count = o.count;
  config.images = o.images;
  config.batch = o.batch;
  config.seed = o.seed;
  if (o.rfid) config.rfid = features.settings();
  config.lpips_weights = o.lpips_weights;
  config.precision = parse_precision_setting(o.precision, o.device, "--precision");

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const stages::ReconstructionStage stage(config, *registry, "");
  const auto out =
      std::filesystem::path(o.out.empty() ? autoencoder_file(o.autoencoder).parent_path() / "reconstructions"
                                          : std::filesystem::path(o.out));
  const stages::StageContext context{*registry, resolve_device(o.device, "--device")};
  const auto report = stage.run(context, o.autoencoder, out);
  const auto written = report["png_images"].get<std::int64_t>();

  if (o.format == "json") {
    std::cout << report.dump(2) << "\n";
  } else {
    const auto& stats = report["latent_statistics"];
    std::cout << fmt::format("autoencoder  {} (f = {}, {} latent channels)\n",
                             report["name"].get<std::string>(), report["f"].get<std::int64_t>(),
                             report["latent_channels"].get<std::int64_t>())
              << fmt::format("images       {} from {}\n", report["images"].get<std::int64_t>(),
                             report["input"]["dataset"].get<std::string>())
              << fmt::format("PSNR         {:.2f} dB\nSSIM         {:.4f}\nL1           {:.4f}\n",
                             report["psnr"].get<double>(), report["ssim"].get<double>(),
                             report["l1"].get<double>());
    if (report.contains("psim"))
      std::cout << fmt::format("PSIM         {:.4f} (LPIPS)\n",
                               report["psim"].is_number() ? report["psim"].get<double>() : NAN);
    if (report.contains("rfid"))
      std::cout << fmt::format("rFID         {:.4f} ({} features, {} images)\n",
                               report["rfid"].is_number() ? report["rfid"].get<double>() : NAN,
                               report["rfid_features"]["name"].get<std::string>(),
                               report["rfid_images"].get<std::int64_t>());
    if (report.contains("codebook_usage"))
      std::cout << fmt::format("codebook     {:.1f}% of {} codes used, perplexity {:.1f}\n",
                               report["codebook_usage"].get<double>() * 100,
                               report["codebook_size"].get<std::int64_t>(),
                               report["perplexity"].get<double>());
    std::cout << fmt::format("latents      mean {:.4f}, std {:.4f}, range [{:.3f}, {:.3f}] over {} images\n",
                             stats["mean"].get<double>(), stats["std"].get<double>(),
                             stats["min"].get<double>(), stats["max"].get<double>(),
                             stats["images"].get<std::int64_t>())
              << fmt::format("rescaling    {} (Var after: {:.4f})\n",
                             report["rescaling"]["mode"].get<std::string>(),
                             report["variance_rescaled"].get<double>());
  }
  std::cerr << "reconstruct: wrote " << (out / "metrics.json").string();
  if (written > 0)
    std::cerr << ", reconstructions.png and " << written << " images under " << (out / "images").string();
  std::cerr << "\n";
  return kOk;
}

}  // namespace latentlab::host
