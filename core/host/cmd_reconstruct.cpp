// `latentlab reconstruct --autoencoder CKPT INPUT`: what a compression factor f costs. Encodes and decodes
// held-out images, writes the reconstructions as PNG and prints PSNR, SSIM, codebook usage and the
// latent statistics.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli.hpp"
#include "commands.hpp"
#include "feature_support.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/threads.hpp"
#include "latentlab/train/autoencoder_trainer.hpp"
#include "latentlab/train/checkpoint_file.hpp"
#include "run_support.hpp"

namespace latentlab::host {

namespace {

struct ReconstructOptions {
  std::string autoencoder, input, out, data_params, device = "auto", format = "table";
  std::vector<std::string> data_sets;
  std::int64_t count = 256, batch = 32, resolution = 0, images = 16;
  std::uint64_t seed = 0;
  bool rfid = false;
};

// INPUT as a dataset: a folder of images (the `image-folder` plugin), or a dataset plugin's name.
std::shared_ptr<Dataset> open_input(const registry::Registry& registry, const ReconstructOptions& o,
                                    const LatentCodec& codec, nlohmann::json& params, std::string& dataset) {
  params = parse_parameter_overrides(o.data_params, o.data_sets);
  const bool folder = std::filesystem::is_directory(o.input);
  dataset = folder ? "image-folder" : o.input;
  const auto datasets = registry.names(Dataset::kKind);
  if (!folder && std::find(datasets.begin(), datasets.end(), dataset) == datasets.end())
    throw ConfigError("reconstruct: INPUT '" + o.input +
                      "' is neither an image folder nor a dataset plugin; datasets: " + join(datasets) +
                      (std::filesystem::exists(o.input) ? "" : " (no such folder either)"));
  const auto& schema = registry.find(Dataset::kKind, dataset).info.schema;
  if (folder) params["root"] = o.input;
  if (!params.contains("channels") && schema.find("channels")) params["channels"] = codec.image_channels();
  if (!params.contains("split") && schema.find("split")) params["split"] = "test";  // held-out images
  if (o.resolution > 0) params["resolution"] = o.resolution;
  if (!params.contains("resolution") && schema.find("resolution")) {
    // The size the autoencoder was trained at, when its parameters record it.
    const auto& ae = codec.info().params;
    if (ae.contains("resolution") && ae.at("resolution").is_number_integer())
      params["resolution"] = ae.at("resolution");
  }
  auto data = registry.create<Dataset>(dataset, params, "--data-set");
  params = registry.resolved_params(Dataset::kKind, dataset, params, "--data-set");
  if (data->channels() != codec.image_channels())
    throw ConfigError("reconstruct: the images have " + std::to_string(data->channels()) +
                      " channels, the autoencoder takes " + std::to_string(codec.image_channels()) +
                      "; pass --data-set channels=" + std::to_string(codec.image_channels()));
  if (data->resolution() % codec.downsampling_factor())
    throw ConfigError("reconstruct: f = " + std::to_string(codec.downsampling_factor()) +
                      " needs an image side divisible by it, the images are " +
                      std::to_string(data->resolution()) + "; pass --resolution");
  return data;
}

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
      ("format", po::value(&o.format)->default_value(o.format), "table or json")
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
      "latentlab reconstruct --autoencoder CKPT INPUT [--out DIR] [--count N] [--data-set k=v]... [--rfid]";
  if (!parse_command_line(
          "reconstruct", args, options, positional, usage,
          "Encodes and decodes INPUT (an image folder, or a dataset name such as fashion-mnist, whose test "
          "split is used unless --data-set split=... says otherwise) with the autoencoder (KL: the "
          "posterior mean), writes OUT/reconstructions.png (original | reconstruction pairs), "
          "OUT/images/NNNNN.png and OUT/metrics.json, and prints PSNR, SSIM, L1, codebook usage (VQ), "
          "the latent statistics and, with --rfid, the reconstruction FID.",
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

  apply_logging(common);
  const auto registry = load_registry(common);
  apply_threads(common);
  const auto device = resolve_device(o.device, "--device");
  const auto codec = LatentCodec::load(o.autoencoder, autoencoder_factory(*registry), device);
  nlohmann::json data_params;
  std::string dataset;
  const auto data = open_input(*registry, o, *codec, data_params, dataset);
  const auto count = o.count == 0 ? data->size() : std::min(o.count, data->size());
  const auto out =
      std::filesystem::path(o.out.empty() ? autoencoder_file(o.autoencoder).parent_path() / "reconstructions"
                                          : std::filesystem::path(o.out));
  std::filesystem::create_directories(out / "images");

  auto& ae = codec->autoencoder();
  spdlog::info("reconstructing {} images of {}x{}x{} with autoencoder '{}' (f = {}, latents {}x{}x{})", count,
               data->channels(), data->resolution(), data->resolution(), codec->info().name,
               codec->downsampling_factor(), codec->latent_channels(),
               data->resolution() / codec->downsampling_factor(),
               data->resolution() / codec->downsampling_factor());
  // rFID (the paper's Tab. 8 column): FID of reconstructions against their originals, both streamed.
  std::optional<FeatureExtractorChoice> rfid_features;
  if (o.rfid) rfid_features = make_feature_extractor(*registry, features, device);
  eval::FeatureStatistics original_stats, reconstruction_stats;
  std::vector<torch::Tensor> pairs;
  std::int64_t written = 0;
  const auto metrics = evaluate_reconstruction(
      ae, *data, count, o.batch, device, [&](const torch::Tensor& x, const torch::Tensor& x_hat) {
        if (rfid_features) {
          auto& extractor = *rfid_features->extractor;
          original_stats.add(extractor.extract(io::to_pixels(x)).features);
          reconstruction_stats.add(extractor.extract(io::to_pixels(x_hat)).features);
        }
        for (std::int64_t i = 0; i < x.size(0) && written < o.images; ++i, ++written) {
          char name[32];
          std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(written));
          io::write_png_grid(out / "images" / name, x_hat[i].unsqueeze(0).cpu(), 1, 0);
          pairs.push_back(x[i].cpu());
          pairs.push_back(x_hat[i].cpu());
        }
      });
  if (!pairs.empty()) io::write_png_grid(out / "reconstructions.png", torch::stack(pairs), 8);

  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const auto stats = compute_latent_statistics(ae, *data, count, o.batch, device, generator);
  const auto& rescaling = codec->info().rescaling;
  nlohmann::json report = {{"autoencoder", autoencoder_file(o.autoencoder).string()},
                           {"name", codec->info().name},
                           {"f", codec->downsampling_factor()},
                           {"latent_channels", codec->latent_channels()},
                           {"input", {{"dataset", dataset}, {"params", data_params}}},
                           {"images", metrics.images},
                           {"psnr", metrics.psnr},
                           {"ssim", metrics.ssim},
                           {"l1", metrics.l1},
                           {"latent_statistics", stats.to_json()},
                           {"rescaling", rescaling.to_json()},
                           {"variance_rescaled", rescaled_variance(stats, rescaling)}};
  std::optional<eval::FidResult> rfid;
  if (rfid_features) {
    rfid = eval::fid(reconstruction_stats, original_stats);
    for (const auto& warning : rfid->warnings) spdlog::warn("rFID: {}", warning);
    report["rfid"] = number_or_null(rfid->fid);
    report["rfid_features"] = {{"name", rfid_features->name},
                               {"params", rfid_features->params},
                               {"fingerprint", rfid_features->extractor->fingerprint()}};
  }
  if (metrics.codebook_usage >= 0) {
    report["codebook_usage"] = metrics.codebook_usage;
    report["perplexity"] = metrics.perplexity;
    report["codebook_size"] = ae.codebook_size();
  }
  write_text_atomically(out / "metrics.json", report.dump(2) + "\n");
  if (o.format == "json") {
    std::cout << report.dump(2) << "\n";
  } else {
    std::cout << fmt::format("autoencoder  {} (f = {}, {} latent channels)\n", codec->info().name,
                             codec->downsampling_factor(), codec->latent_channels())
              << fmt::format("images       {} from {}\n", metrics.images, dataset)
              << fmt::format("PSNR         {:.2f} dB\nSSIM         {:.4f}\nL1           {:.4f}\n",
                             metrics.psnr, metrics.ssim, metrics.l1);
    if (rfid)
      std::cout << fmt::format("rFID         {:.4f} ({} features, {} images)\n", rfid->fid,
                               rfid_features->name, rfid->n_a);
    if (metrics.codebook_usage >= 0)
      std::cout << fmt::format("codebook     {:.1f}% of {} codes used, perplexity {:.1f}\n",
                               metrics.codebook_usage * 100, ae.codebook_size(), metrics.perplexity);
    std::cout << fmt::format("latents      mean {:.4f}, std {:.4f}, range [{:.3f}, {:.3f}] over {} images\n",
                             stats.mean, stats.std, stats.min, stats.max, stats.images)
              << fmt::format("rescaling    {} (Var after: {:.4f})\n", rescaling.mode,
                             rescaled_variance(stats, rescaling));
  }
  std::cerr << "reconstruct: wrote " << (out / "metrics.json").string();
  if (written > 0)
    std::cerr << ", reconstructions.png and " << written << " images under " << (out / "images").string();
  std::cerr << "\n";
  return kOk;
}

}  // namespace latentlab::host
