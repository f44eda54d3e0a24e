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

LoadedDenoiser load_denoiser(const std::filesystem::path& given, torch::Device device,
                             const DenoiserLoadOptions& options) {
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
  const auto& choices = loaded.config.conditioners;
  if (!choices.empty()) {
    if (!options.conditioner_factory)
      throw Error(file + " is a conditioned model (conditioner '" + choices.front().plugin.name +
                  "'), and this caller cannot build conditioners");
    try {
      if (!archive.try_read("conditioning_setup", value) || !value.isString())
        throw Error("no record of the conditioners' set-up");
      auto setup = setup_from_json(nlohmann::json::parse(value.toStringRef()));
      setup.encode = options.encode;
      // checkpoint.pt keeps the EMA's conditioners apart (when the run keeps an EMA); denoiser.pt has
      // only them.
      const bool ema = archive.try_read("ema_conditioner_0_state", value);
      const std::string prefix = ema ? "ema_conditioner_" : "conditioner_";
      const auto states = ConditionerSet::read_states(archive, prefix, choices.size());
      loaded.conditioners =
          std::make_shared<ConditionerSet>(choices, options.conditioner_factory, std::move(setup), states);
      loaded.conditioners->load(archive, prefix);
    } catch (const nlohmann::json::exception& e) {
      throw Error(file + ": its record of the conditioners' set-up does not parse: " + first_line(e.what()));
    } catch (const ConfigError& e) {
      throw Error(file + ": its conditioners cannot be rebuilt: " + first_line(e.what()));
    } catch (const Error& e) {
      throw Error(file + ": " + first_line(e.what()));
    }
    loaded.conditioners->to(device);
    loaded.conditioners->train(false);
    for (auto& parameter : loaded.conditioners->parameters()) parameter.set_requires_grad(false);
  }
  return loaded;
}

void write_denoiser_file(const std::filesystem::path& path, const DenoiserTrainConfig& config,
                         std::int64_t step, nn::UNet& model, const ConditionerSet* conditioners) {
  torch::serialize::OutputArchive archive, weights;
  archive.write("format", c10::IValue(kCheckpointFormat));
  archive.write("config", c10::IValue(config.resolved.dump()));
  archive.write("step", c10::IValue(step));
  model->save(weights);
  archive.write("model", weights);
  if (conditioners) {
    conditioners->save(archive, "conditioner_");
    archive.write("conditioning_setup", c10::IValue(setup_to_json(conditioners->setup()).dump()));
  }
  save_archive_atomically(archive, path);
}

}  // namespace latentlab
