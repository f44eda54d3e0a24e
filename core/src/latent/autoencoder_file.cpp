#include "latentlab/latent/autoencoder_file.hpp"

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/io/atomic_file.hpp"

namespace latentlab {

namespace {

constexpr std::int64_t kFormat = 1;
const char* const kKind = "latentlab-autoencoder";

nlohmann::json info_json(const AutoencoderFileInfo& info) {
  return {{"name", info.name},
          {"params", info.params},
          {"step", info.step},
          {"source", info.source},
          {"rescaling", info.rescaling.to_json()},
          {"statistics", info.statistics}};
}

// Opens the archive and checks its header; returns the info.
AutoencoderFileInfo open(const std::filesystem::path& file, torch::serialize::InputArchive& archive) {
  try {
    archive.load_from(file.string(), torch::kCPU);
  } catch (const std::exception& e) {
    throw Error("cannot read " + file.string() +
                " (corrupt, or not a LatentLab autoencoder file): " + first_line(e.what()));
  }
  c10::IValue value;
  if (!archive.try_read("kind", value) || !value.isString() || value.toStringRef() != kKind)
    throw Error(file.string() +
                " is not a LatentLab autoencoder file; give the autoencoder.pt that `latentlab "
                "train-autoencoder` or `latentlab import-weights` writes (a reference PyTorch checkpoint "
                "must go through `latentlab import-weights` first)");
  if (!archive.try_read("format", value) || !value.isInt() || value.toInt() != kFormat)
    throw Error(file.string() + " has an autoencoder file format this build does not read (it reads " +
                std::to_string(kFormat) + ")");
  if (!archive.try_read("info", value) || !value.isString())
    throw Error(file.string() + " has no info record");
  try {
    const auto json = nlohmann::json::parse(value.toStringRef());
    AutoencoderFileInfo info;
    info.name = json.at("name").get<std::string>();
    info.params = json.at("params");
    info.step = json.at("step").get<std::int64_t>();
    info.source = json.at("source").get<std::string>();
    info.rescaling = LatentRescaling::from_json(json.at("rescaling"));
    info.statistics = json.at("statistics");
    return info;
  } catch (const std::exception& e) {
    throw Error(file.string() + ": its info record does not parse: " + first_line(e.what()));
  }
}

}  // namespace

std::filesystem::path autoencoder_file(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) {
    if (std::filesystem::exists(path / "autoencoder.pt")) return path / "autoencoder.pt";
    throw ConfigError(
        path.string() +
        " holds no autoencoder.pt; is it a `train-autoencoder` output folder that has finished? "
        "(an interrupted run resumes with `latentlab train-autoencoder CONFIG --resume`)");
  }
  if (!std::filesystem::exists(path))
    throw ConfigError("no autoencoder at " + path.string() +
                      ": give the autoencoder.pt written by `latentlab train-autoencoder` or `latentlab "
                      "import-weights`, or its folder");
  return path;
}

void write_autoencoder_file(const std::filesystem::path& path, const AutoencoderFileInfo& info,
                            Autoencoder& autoencoder) {
  torch::serialize::OutputArchive archive, weights;
  archive.write("kind", c10::IValue(std::string(kKind)));
  archive.write("format", c10::IValue(kFormat));
  archive.write("info", c10::IValue(info_json(info).dump()));
  autoencoder.module().save(weights);
  archive.write("model", weights);
  save_archive_atomically(archive, path);
}

AutoencoderFileInfo read_autoencoder_info(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  return open(autoencoder_file(path), archive);
}

LoadedAutoencoder read_autoencoder_file(const std::filesystem::path& path, const AutoencoderFactory& factory,
                                        torch::Device device) {
  const auto file = autoencoder_file(path);
  torch::serialize::InputArchive archive;
  auto info = open(file, archive);
  auto autoencoder = factory(info.name, info.params);
  torch::serialize::InputArchive weights;
  if (!archive.try_read("model", weights)) throw Error(file.string() + " holds no weights");
  try {
    autoencoder->module().load(weights);
  } catch (const std::exception& e) {
    throw Error(file.string() + ": the weights do not fit autoencoder '" + info.name +
                "' with the parameters saved beside them: " + first_line(e.what()));
  }
  autoencoder->module().to(device);
  autoencoder->module().eval();
  for (auto& p : autoencoder->module().parameters()) p.set_requires_grad(false);
  return {std::move(info), std::move(autoencoder)};
}

}  // namespace latentlab
