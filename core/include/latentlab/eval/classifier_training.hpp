#pragma once
// Training, storing and caching the `classifier` feature network (nn/feature_classifier.hpp): the
// offline stand-in for Inception v3 when no Inception weights can be had. A trained classifier is
// cached under its content hash (the training images and labels, the network and training config,
// the format), so every machine trains it once, and its held-out accuracy is recorded with it.
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/dataset.hpp"
#include "latentlab/export.hpp"
#include "latentlab/nn/feature_classifier.hpp"

namespace latentlab::eval {

struct LATENTLAB_API ClassifierTrainingConfig {
  std::int64_t steps = 3000;  // Adam steps (~6.4 epochs of Fashion-MNIST at batch 128)
  std::int64_t batch_size = 128;
  double learning_rate = 1e-3;  // cosine-decayed to 0
  std::uint64_t seed = 0;
  std::int64_t width = 32;
  std::int64_t feature_dim = 128;
  nlohmann::json to_json() const;
  // Reads the keys to_json() writes (the `classifier` plugin's resolved parameters hold them); throws
  // Error naming a missing or mistyped key.
  static ClassifierTrainingConfig from_json(const nlohmann::json& json);
};

// What a classifier file says about its network.
struct ClassifierInfo {
  nn::FeatureClassifierConfig network;
  nlohmann::json training;  // ClassifierTrainingConfig and the dataset's description
  std::string data_hash;    // dataset_content_hash of the training split
  double accuracy = 0;      // on the held-out split
  std::int64_t test_images = 0;
};

// SHA-256 over a dataset's pixels (quantised to uint8) and labels, in index order. One pass over it.
LATENTLAB_API std::string dataset_content_hash(const Dataset& data);

// The fraction of `data` the classifier labels correctly.
LATENTLAB_API double classifier_accuracy(nn::FeatureClassifier& network, const Dataset& data,
                                         std::int64_t batch_size, torch::Device device);

// Trains a classifier on `train` (labels required; the network takes its channels and resolution),
// measures its accuracy on `test`, and writes it to `path` atomically. `description` (e.g. the dataset
// plugin and its parameters) is stored in info.training["data"]; `train_hash` (dataset_content_hash of
// `train`), when known, saves a pass over it. Logs progress.
LATENTLAB_API ClassifierInfo train_feature_classifier(const Dataset& train, const Dataset& test,
                                                      const nlohmann::json& description,
                                                      const ClassifierTrainingConfig& config,
                                                      const std::filesystem::path& path, torch::Device device,
                                                      const std::string& train_hash = "");

// Reads a classifier file; `network`, when given, receives the weights. Throws Error naming the file
// when it is missing, corrupt or not a classifier file.
LATENTLAB_API ClassifierInfo read_classifier_file(const std::filesystem::path& path,
                                                  nn::FeatureClassifier* network = nullptr);

// cache_dir/classifiers/<hash>.pt for (train data, test data, config), trained there first when absent
// (or unreadable).
LATENTLAB_API std::filesystem::path cached_feature_classifier(const std::filesystem::path& cache_dir,
                                                              const Dataset& train, const Dataset& test,
                                                              const nlohmann::json& description,
                                                              const ClassifierTrainingConfig& config,
                                                              torch::Device device);

}  // namespace latentlab::eval
