#include "latentlab/train/denoiser_file.hpp"

#include <nlohmann/json.hpp>

#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {
namespace {

constexpr std::int64_t kCheckpointFormat = 1;  // as written by DenoiserTrainer

std::filesystem::path resolve(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path))
    throw Error(
        "no denoiser at " + path.string() +
        ": give a denoiser.pt or checkpoint.pt written by `latentlab train-denoiser`, or its output folder");
  if (!std::filesystem::is_directory(path)) return path;
  for (const char* name : {"denoiser.pt", "checkpoint.pt"})
    if (std::filesystem::exists(path / name)) return path / name;
  throw Error(path.string() +
              " holds neither denoiser.pt nor checkpoint.pt; is it a `train-denoiser` output folder?");
}

}  // namespace

LoadedDenoiser load_denoiser(const std::filesystem::path& given, torch::Device device) {
  LoadedDenoiser loaded;
  loaded.path = resolve(given);
  const auto file = loaded.path.string();
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file, torch::kCPU);
  } catch (const std::exception& e) {
    throw Error("cannot read " + file +
                " (corrupt, or not a LatentLab denoiser file): " + first_line(e.what()));
  }
  c10::IValue value;
  if (!archive.try_read("format", value) || !value.isInt())
    throw Error(file + " is not a LatentLab denoiser file (no format record)");
  if (value.toInt() != kCheckpointFormat)
    throw Error(file + " has format " + std::to_string(value.toInt()) + ", this build reads " +
                std::to_string(kCheckpointFormat));
  if (!archive.try_read("config", value) || !value.isString())
    throw Error(file + " has no training configuration");
  try {
    loaded.config = DenoiserTrainConfig::from_json(nlohmann::json::parse(value.toStringRef()));
  } catch (const std::exception& e) {
    throw Error(file + ": its saved configuration does not parse: " + e.what());
  }
  if (archive.try_read("step", value) && value.isInt()) loaded.step = value.toInt();
  torch::serialize::InputArchive weights;
  // checkpoint.pt holds "ema" (when the run keeps one) and "model"; denoiser.pt holds the EMA as "model".
  if (!archive.try_read("ema", weights) && !archive.try_read("model", weights))
    throw Error(file + " holds no model weights");
  loaded.model = nn::UNet(loaded.config.unet);
  try {
    loaded.model->load(weights);
  } catch (const std::exception& e) {
    throw Error(file +
                ": the weights do not fit the UNet its configuration describes: " + first_line(e.what()));
  }
  loaded.model->to(device);
  loaded.model->eval();
  for (auto& parameter : loaded.model->parameters()) parameter.set_requires_grad(false);
  return loaded;
}

void write_denoiser_file(const std::filesystem::path& path, const DenoiserTrainConfig& config,
                         std::int64_t step, nn::UNet& model) {
  torch::serialize::OutputArchive archive, weights;
  archive.write("format", c10::IValue(kCheckpointFormat));
  archive.write("config", c10::IValue(config.resolved.dump()));
  archive.write("step", c10::IValue(step));
  model->save(weights);
  archive.write("model", weights);
  save_archive_atomically(archive, path);
}

}  // namespace latentlab
