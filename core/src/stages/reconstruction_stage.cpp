#include "latentlab/stages/reconstruction_stage.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "../train/config_json.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/json_number.hpp"
#include "latentlab/latent/latent_codec.hpp"
#include "latentlab/latent/latent_stats.hpp"
#include "latentlab/params.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/train/autoencoder_trainer.hpp"

namespace latentlab::stages {

namespace {

using nlohmann::json;

const ParamSchema& reconstruction_schema() {
  static const ParamSchema schema =
      ParamSchema()
          .string("input", std::nullopt, "an image folder, or a dataset plugin's name (its test split)")
          .integer("count", 256, "images to reconstruct (0: all)", Range::at_least(0))
          .integer("images", 16, "of those, how many to write as PNG files", Range::at_least(0))
          .integer("batch", 32, "images per batch", Range::at_least(1))
          .integer("seed", 0, "seed of KL posterior samples for the latent statistics", Range::at_least(0))
          .choice("precision", "fp32", {"fp32", "bf16", "fp16"},
                  "autocast precision of the autoencoder (docs/precision.md); fp16 needs CUDA");
  return schema;
}

void check_files(const std::vector<std::string>& files, const std::string& where) {
  for (const auto& file : files)
    if (!std::filesystem::is_regular_file(file))
      throw ConfigError(where + ": there is no file '" + file + "' (LPIPS weights, docs/autoencoders.md)");
}

}  // namespace

nn::Lpips load_lpips(const std::vector<std::string>& files, const std::string& where) {
  check_files(files, where);
  nn::Lpips lpips;
  try {
    lpips->load(std::vector<std::filesystem::path>(files.begin(), files.end()));
  } catch (const Error& e) {
    throw ConfigError(where + ": " + e.what());
  }
  lpips->eval();
  return lpips;
}

ReconstructionConfig ReconstructionConfig::from_json(const json& input, const std::string& path) {
  if (!input.is_object()) throw ConfigError(path + ": expected a JSON object, got " + input.dump());
  auto rest = input;
  ReconstructionConfig c;
  if (rest.contains("data_params")) {
    if (!rest.at("data_params").is_object())
      throw ConfigError(path + ".data_params: expected a JSON object of dataset parameters, got " +
                        rest.at("data_params").dump());
    c.data_params = rest.at("data_params");
    rest.erase("data_params");
  }
  if (rest.contains("lpips_weights")) {
    c.lpips_weights = latentlab::detail::file_names(rest.at("lpips_weights"), path + ".lpips_weights");
    rest.erase("lpips_weights");
  }
  if (rest.contains("rfid")) {
    const auto& rfid = rest.at("rfid");
    if (rfid.is_boolean()) {
      if (rfid.get<bool>()) c.rfid = FeatureSettings{};
    } else {
      c.rfid = FeatureSettings::from_json(rfid, path + ".rfid");
    }
    rest.erase("rfid");
  }
  const auto values = reconstruction_schema().validate(rest, path, "the reconstruction stage");
  c.input = values.get_string("input");
  c.count = values.get_int("count");
  c.images = values.get_int("images");
  c.batch = values.get_int("batch");
  c.seed = static_cast<std::uint64_t>(values.get_int("seed"));
  c.precision = parse_precision(values.get_string("precision"), config_where(path, "precision"));
  return c;
}

json ReconstructionConfig::to_json() const {
  json out = {{"input", input},
              {"data_params", data_params},
              {"count", count},
              {"images", images},
              {"batch", batch},
              {"seed", seed},
              {"rfid", rfid ? rfid->to_json() : json(false)},
              {"lpips_weights", lpips_weights}};
  if (precision != Precision::fp32) out["precision"] = to_string(precision);
  return out;
}

ReconstructionStage::ReconstructionStage(ReconstructionConfig config, const registry::Registry& registry,
                                         const std::string& path)
    : config_(std::move(config)), registry_(registry), path_(path) {
  if (config_.rfid)
    feature_params_ = resolve_feature_params(registry, *config_.rfid,
                                             path.empty() ? "--feature-set" : path + ".rfid.params");
  check_files(config_.lpips_weights, config_where(path, "lpips_weights"));
}

json ReconstructionStage::config() const {
  auto out = config_.to_json();
  if (config_.rfid) {
    out["rfid"] = {{"name", config_.rfid->extractor_name()}, {"params", feature_params_}};
  }
  // The weights' contents, not their file names, decide PSIM: the key sees their SHA-256. Without
  // them the key is what it was before PSIM existed (caches stay valid).
  if (config_.lpips_weights.empty()) {
    out.erase("lpips_weights");
  } else {
    for (auto& file : out["lpips_weights"]) file = "sha256:" + registry_.file_sha256(file.get<std::string>());
  }
  return out;
}

json ReconstructionStage::plugins() const {
  json out = json::array();
  if (!std::filesystem::is_directory(config_.input) && !config_.input.empty())
    out.push_back(plugin_record(registry_, Dataset::kKind, config_.input));
  if (config_.rfid)
    out.push_back(plugin_record(registry_, FeatureExtractor::kKind, config_.rfid->extractor_name()));
  return out;
}

json ReconstructionStage::run(const StageContext& context, const std::filesystem::path& autoencoder,
                              const std::filesystem::path& out) const {
  const auto& o = config_;
  const auto device = context.device;
  check_precision(o.precision, device, config_where(path_, "precision"));
  const auto codec = LatentCodec::load(
      autoencoder,
      [this](const std::string& name, const json& params) {
        return registry_.create<Autoencoder>(name, params, "autoencoder.params").object;
      },
      device);

  // The images: a folder of images (the `image-folder` plugin), or a dataset plugin's name.
  auto params = o.data_params;
  const bool folder = std::filesystem::is_directory(o.input);
  const std::string dataset = folder ? "image-folder" : o.input;
  const auto datasets = registry_.names(Dataset::kKind);
  if (!folder && std::find(datasets.begin(), datasets.end(), dataset) == datasets.end())
    throw ConfigError("reconstruct: INPUT '" + o.input +
                      "' is neither an image folder nor a dataset plugin; datasets: " + join(datasets) +
                      (std::filesystem::exists(o.input) ? "" : " (no such folder either)"));
  const auto& schema = registry_.find(Dataset::kKind, dataset).info.schema;
  if (folder) params["root"] = o.input;
  if (!params.contains("channels") && schema.find("channels")) params["channels"] = codec->image_channels();
  if (!params.contains("split") && schema.find("split")) params["split"] = "test";  // held-out images
  if (!params.contains("resolution") && schema.find("resolution")) {
    // The size the autoencoder was trained at, when its parameters record it.
    const auto& ae = codec->info().params;
    if (ae.contains("resolution") && ae.at("resolution").is_number_integer())
      params["resolution"] = ae.at("resolution");
  }
  const auto data =
      registry_.create<Dataset>(dataset, params, path_.empty() ? "--data-set" : path_ + ".data_params");
  if (data->channels() != codec->image_channels())
    throw ConfigError("reconstruct: the images have " + std::to_string(data->channels()) +
                      " channels, the autoencoder takes " + std::to_string(codec->image_channels()) +
                      "; pass --data-set channels=" + std::to_string(codec->image_channels()));
  if (data->resolution() % codec->downsampling_factor())
    throw ConfigError("reconstruct: f = " + std::to_string(codec->downsampling_factor()) +
                      " needs an image side divisible by it, the images are " +
                      std::to_string(data->resolution()) + "; pass --resolution");
  const auto count = o.count == 0 ? data->size() : std::min(o.count, data->size());
  std::optional<FeatureExtractorChoice> features;
  if (o.rfid)
    features = make_feature_extractor(registry_, *o.rfid, device,
                                      path_.empty() ? "--feature-set" : path_ + ".rfid.params");
  nn::Lpips lpips{nullptr};  // PSIM's network, loaded before any image is encoded
  if (!o.lpips_weights.empty()) {
    if (data->channels() != 1 && data->channels() != 3)
      throw ConfigError(config_where(path_, "lpips_weights") +
                        ": LPIPS (PSIM) takes 1- or 3-channel images, " + "these have " +
                        std::to_string(data->channels()) + "; leave lpips_weights out");
    lpips = load_lpips(o.lpips_weights, config_where(path_, "lpips_weights"));
    lpips->to(device);
  }
  std::filesystem::create_directories(out / "images");

  auto& ae = codec->autoencoder();
  const auto latent_side = data->resolution() / codec->downsampling_factor();
  spdlog::info("reconstructing {} images of {}x{}x{} with autoencoder '{}' (f = {}, latents {}x{}x{})", count,
               data->channels(), data->resolution(), data->resolution(), codec->info().name,
               codec->downsampling_factor(), codec->latent_channels(), latent_side, latent_side);
  // rFID (the paper's Tab. 8 column): FID of reconstructions against their originals, both streamed.
  eval::FeatureStatistics original_stats, reconstruction_stats;
  std::vector<torch::Tensor> pairs;
  std::int64_t written = 0;
  double lpips_sum = 0.0;
  const auto metrics = evaluate_reconstruction(
      ae, *data, count, o.batch, device,
      [&](const torch::Tensor& x, const torch::Tensor& x_hat) {
        if (features) {
          auto& extractor = *features->extractor;
          original_stats.add(extractor.extract(io::to_pixels(x)).features);
          reconstruction_stats.add(extractor.extract(io::to_pixels(x_hat)).features);
        }
        if (lpips) {  // PSIM: LPIPS between the image and its reconstruction, both in [-1, 1]
          torch::NoGradGuard no_grad;
          lpips_sum += lpips->forward(x, x_hat).sum().item<double>();
        }
        for (std::int64_t i = 0; i < x.size(0) && written < o.images; ++i, ++written) {
          char name[32];
          std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(written));
          io::write_png_grid(out / "images" / name, x_hat[i].unsqueeze(0).cpu(), 1, 0);
          pairs.push_back(x[i].cpu());
          pairs.push_back(x_hat[i].cpu());
        }
      },
      o.precision);
  if (!pairs.empty()) io::write_png_grid(out / "reconstructions.png", torch::stack(pairs), 8);

  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const auto stats = compute_latent_statistics(ae, *data, count, o.batch, device, generator);
  const auto& rescaling = codec->info().rescaling;
  json report = {{"autoencoder", autoencoder_file(autoencoder).string()},
                 {"name", codec->info().name},
                 {"f", codec->downsampling_factor()},
                 {"latent_channels", codec->latent_channels()},
                 {"input", {{"dataset", dataset}, {"params", data.params}}},
                 {"images", metrics.images},
                 {"psnr", metrics.psnr},
                 {"ssim", metrics.ssim},
                 {"l1", metrics.l1},
                 {"latent_statistics", stats.to_json()},
                 {"rescaling", rescaling.to_json()},
                 {"variance_rescaled", rescaled_variance(stats, rescaling)},
                 {"png_images", written},
                 {"precision", to_string(o.precision)}};
  if (features) {
    const auto rfid = eval::fid(reconstruction_stats, original_stats);
    for (const auto& warning : rfid.warnings) spdlog::warn("rFID: {}", warning);
    report["rfid"] = number_or_null(rfid.fid);
    report["rfid_images"] = rfid.n_a;
    report["rfid_features"] = {{"name", features->name},
                               {"params", features->params},
                               {"fingerprint", features->extractor->fingerprint()}};
  }
  if (lpips) {
    report["psim"] =
        number_or_null(lpips_sum / static_cast<double>(std::max<std::int64_t>(metrics.images, 1)));
    report["psim_weights"] = config_.lpips_weights;
  }
  if (metrics.codebook_usage >= 0) {
    report["codebook_usage"] = metrics.codebook_usage;
    report["perplexity"] = metrics.perplexity;
    report["codebook_size"] = ae.codebook_size();
  }
  write_text_atomically(out / "metrics.json", report.dump(2) + "\n");
  return report;
}

}  // namespace latentlab::stages
