#include "latentlab/eval/classifier_training.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/io/sha256.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/train/data_order.hpp"

namespace latentlab::eval {
namespace {

constexpr const char* kKind = "latentlab-feature-classifier";
constexpr std::int64_t kFormat = 1;

nlohmann::json info_json(const ClassifierInfo& info) {
  return {{"network", info.network.to_json()},
          {"training", info.training},
          {"data_hash", info.data_hash},
          {"accuracy", info.accuracy},
          {"test_images", info.test_images}};
}

}  // namespace

nlohmann::json ClassifierTrainingConfig::to_json() const {
  return {{"steps", steps}, {"batch_size", batch_size}, {"learning_rate", learning_rate},
          {"seed", seed},   {"width", width},           {"feature_dim", feature_dim}};
}

ClassifierTrainingConfig ClassifierTrainingConfig::from_json(const nlohmann::json& json) {
  ClassifierTrainingConfig config;
  try {
    config.steps = json.at("steps").get<std::int64_t>();
    config.batch_size = json.at("batch_size").get<std::int64_t>();
    config.learning_rate = json.at("learning_rate").get<double>();
    config.seed = json.at("seed").get<std::uint64_t>();
    config.width = json.at("width").get<std::int64_t>();
    config.feature_dim = json.at("feature_dim").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("classifier training settings are incomplete: ") + e.what());
  }
  return config;
}

std::string dataset_content_hash(const Dataset& data) {
  io::Sha256 hasher;
  hasher.update(std::to_string(data.size()) + "x" + std::to_string(data.channels()) + "x" +
                std::to_string(data.resolution()) + "\n");
  constexpr std::int64_t kChunk = 1024;
  for (std::int64_t start = 0; start < data.size(); start += kChunk) {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(std::min(kChunk, data.size() - start)));
    std::iota(indices.begin(), indices.end(), start);
    const auto batch = data.get_batch(indices);
    const auto pixels = io::to_pixels(batch.images).contiguous();
    hasher.update(pixels.data_ptr(), pixels.nbytes());
    if (batch.labels.defined()) {
      const auto labels = batch.labels.to(torch::kInt64).contiguous();
      hasher.update(labels.data_ptr(), labels.nbytes());
    }
  }
  return hasher.hex_digest();
}

double classifier_accuracy(nn::FeatureClassifier& network, const Dataset& data, std::int64_t batch_size,
                           torch::Device device) {
  torch::NoGradGuard no_grad;
  network->eval();
  std::int64_t correct = 0;
  for (std::int64_t start = 0; start < data.size(); start += batch_size) {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(std::min(batch_size, data.size() - start)));
    std::iota(indices.begin(), indices.end(), start);
    const auto batch = data.get_batch(indices);
    if (!batch.labels.defined()) throw Error("classifier accuracy needs a labelled dataset");
    const auto x = nn::classifier_input(io::to_pixels(batch.images), network->config()).to(device);
    const auto predicted = network->forward(x).logits.argmax(1).cpu();
    correct += predicted.eq(batch.labels).sum().item<std::int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(std::max<std::int64_t>(1, data.size()));
}

ClassifierInfo train_feature_classifier(const Dataset& train, const Dataset& test,
                                        const nlohmann::json& description,
                                        const ClassifierTrainingConfig& config,
                                        const std::filesystem::path& path, torch::Device device,
                                        const std::string& train_hash) {
  if (train.num_classes() < 2 || test.num_classes() != train.num_classes())
    throw ConfigError(
        "the feature classifier trains on a labelled dataset with at least 2 classes and a "
        "held-out split with the same classes; this one has " +
        std::to_string(train.num_classes()) + " and " + std::to_string(test.num_classes()));
  if (config.steps < 1 || config.batch_size < 1 || config.batch_size > train.size() ||
      !(config.learning_rate > 0))
    throw ConfigError("classifier training needs steps >= 1, 1 <= batch_size <= the dataset size (" +
                      std::to_string(train.size()) + ") and learning_rate > 0");
  ClassifierInfo info;
  info.network.channels = train.channels();
  info.network.resolution = train.resolution();
  info.network.classes = train.num_classes();
  info.network.width = config.width;
  info.network.feature_dim = config.feature_dim;
  info.training = config.to_json();
  info.training["data"] = description;
  info.data_hash = train_hash.empty() ? dataset_content_hash(train) : train_hash;

  torch::manual_seed(config.seed);
  nn::FeatureClassifier network(info.network);
  network->to(device);
  network->train();
  torch::optim::Adam optimizer(network->parameters(), torch::optim::AdamOptions(config.learning_rate));
  DataOrder order(train.size(), config.batch_size, config.seed, /*hflip=*/false);
  const auto started = std::chrono::steady_clock::now();
  double running_loss = 0;
  for (std::int64_t step = 1; step <= config.steps; ++step) {
    const double progress = static_cast<double>(step - 1) / static_cast<double>(config.steps);
    const double lr = 0.5 * config.learning_rate * (1.0 + std::cos(M_PI * progress));
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    const auto batch = order.next(train);
    const auto x = nn::classifier_input(io::to_pixels(batch.images), info.network).to(device);
    const auto loss = torch::cross_entropy_loss(network->forward(x).logits, batch.labels.to(device));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    running_loss += loss.item<double>();
    if (step % 250 == 0 || step == config.steps) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      spdlog::info("classifier step {}/{}  loss {:.4f}  {:.1f} steps/s  ETA {:.0f}s", step, config.steps,
                   running_loss / static_cast<double>(step % 250 == 0 ? 250 : step % 250), step / seconds,
                   seconds / step * (config.steps - step));
      running_loss = 0;
    }
  }
  info.accuracy = classifier_accuracy(network, test, 512, device);
  info.test_images = test.size();
  spdlog::info("classifier held-out accuracy {:.2f}% on {} images", 100.0 * info.accuracy, info.test_images);
  network->to(torch::kCPU);
  torch::serialize::OutputArchive archive, weights;
  archive.write("kind", c10::IValue(std::string(kKind)));
  archive.write("format", c10::IValue(kFormat));
  archive.write("info", c10::IValue(info_json(info).dump()));
  network->save(weights);
  archive.write("model", weights);
  std::filesystem::create_directories(path.parent_path().empty() ? "." : path.parent_path());
  save_archive_atomically(archive, path);
  return info;
}

ClassifierInfo read_classifier_file(const std::filesystem::path& path, nn::FeatureClassifier* network) {
  if (!std::filesystem::is_regular_file(path))
    throw ConfigError("classifier file " + path.string() +
                      " does not exist; leave `weights` empty to train (and cache) the default classifier");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const std::exception& e) {
    throw Error("cannot read classifier file " + path.string() +
                " (corrupt or not a LatentLab file): " + first_line(e.what()));
  }
  c10::IValue value;
  if (!archive.try_read("kind", value) || !value.isString() || value.toStringRef() != kKind)
    throw Error(path.string() + " is not a LatentLab feature classifier file");
  if (!archive.try_read("format", value) || !value.isInt() || value.toInt() != kFormat)
    throw Error(path.string() + " has a classifier file format this build does not read (it reads " +
                std::to_string(kFormat) + ")");
  ClassifierInfo info;
  try {
    archive.read("info", value);
    const auto json = nlohmann::json::parse(value.toStringRef());
    info.network = nn::FeatureClassifierConfig::from_json(json.at("network"));
    info.training = json.at("training");
    info.data_hash = json.at("data_hash").get<std::string>();
    info.accuracy = json.at("accuracy").get<double>();
    info.test_images = json.at("test_images").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + " has an unreadable description: " + e.what());
  }
  if (network) {
    *network = nn::FeatureClassifier(info.network);
    torch::serialize::InputArchive weights;
    if (!archive.try_read("model", weights)) throw Error(path.string() + " holds no weights");
    (*network)->load(weights);
    (*network)->eval();
  }
  return info;
}

std::filesystem::path cached_feature_classifier(const std::filesystem::path& cache_dir, const Dataset& train,
                                                const Dataset& test, const nlohmann::json& description,
                                                const ClassifierTrainingConfig& config,
                                                torch::Device device) {
  io::Sha256 key;
  key.update(std::string(kKind) + "/" + std::to_string(kFormat) + "\n" + config.to_json().dump() + "\n");
  const auto train_hash = dataset_content_hash(train);
  key.update(train_hash + "\n" + dataset_content_hash(test));
  const auto path = cache_dir / "classifiers" / (key.hex_digest().substr(0, 16) + ".pt");
  // One process trains a classifier; another that needs it meanwhile (a sweep's FID and rFID stages
  // side by side) waits and reads it.
  std::filesystem::create_directories(path.parent_path());
  struct Lock {
    int fd;
    ~Lock() {
      if (fd >= 0) ::close(fd);
    }
  } lock{::open((path.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (lock.fd >= 0 && ::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
    spdlog::info("another process is training the feature classifier {}; waiting for it", path.string());
    ::flock(lock.fd, LOCK_EX);
  }
  if (std::filesystem::exists(path)) {
    try {
      const auto info = read_classifier_file(path);
      spdlog::info("feature classifier {} (held-out accuracy {:.2f}%)", path.string(), 100.0 * info.accuracy);
      return path;
    } catch (const Error& e) {
      spdlog::warn("the cached classifier {} is unreadable ({}); training it again", path.string(),
                   first_line(e.what()));
    }
  }
  spdlog::info("training the feature classifier on {} ({} images, {} steps); cached as {}",
               description.dump(), train.size(), config.steps, path.string());
  train_feature_classifier(train, test, description, config, path, device, train_hash);
  return path;
}

}  // namespace latentlab::eval
