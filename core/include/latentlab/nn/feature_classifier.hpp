#pragma once
// A small CNN classifier whose penultimate layer serves as the feature space of FID/KID/precision-
// recall and whose logits serve the Inception Score, when no Inception weights are at hand. Trained by
// LatentLab on a labelled dataset (eval/classifier_training.hpp); on Fashion-MNIST it reaches 92%
// held-out accuracy (docs/metrics.md).
#include <cstdint>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/export.hpp"

namespace latentlab::nn {

struct LATENTLAB_API FeatureClassifierConfig {
  std::int64_t channels = 1;       // image channels the network takes
  std::int64_t resolution = 28;    // side it takes (other sizes are resized by classifier_input)
  std::int64_t classes = 10;       // logits
  std::int64_t width = 32;         // channels of the first conv stage (the second has 2x)
  std::int64_t feature_dim = 128;  // the penultimate layer: the features

  nlohmann::json to_json() const;
  // Throws Error naming a missing or invalid key.
  static FeatureClassifierConfig from_json(const nlohmann::json& json);
};

struct ClassifierOutput {
  torch::Tensor features;  // [B, feature_dim], after the ReLU
  torch::Tensor logits;    // [B, classes]
};

// conv3x3(w) BN ReLU, maxpool 2 -> conv3x3(2w) BN ReLU, maxpool 2 -> flatten -> linear(feature_dim)
// ReLU (the features) -> linear(classes) (the logits).
class LATENTLAB_API FeatureClassifierImpl : public torch::nn::Module {
 public:
  explicit FeatureClassifierImpl(const FeatureClassifierConfig& config);
  // x: [B, channels, resolution, resolution] float in [-1, 1] -> features and logits.
  ClassifierOutput forward(const torch::Tensor& x);
  const FeatureClassifierConfig& config() const { return config_; }

 private:
  FeatureClassifierConfig config_;
  torch::nn::Sequential body_{nullptr};
  torch::nn::Linear feature_{nullptr}, head_{nullptr};
};
TORCH_MODULE(FeatureClassifier);

// uint8 images [B, C, H, W] (C = 1 or 3) -> the network's input [B, channels, resolution, resolution]
// in [-1, 1]: RGB to grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), grey to RGB by
// repetition; other sizes by area averaging when shrinking and bilinear interpolation when enlarging.
LATENTLAB_API torch::Tensor classifier_input(const torch::Tensor& images,
                                             const FeatureClassifierConfig& config);

}  // namespace latentlab::nn
