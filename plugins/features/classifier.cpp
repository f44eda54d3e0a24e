// `classifier`: LatentLab's own feature network, a small CNN trained on a labelled dataset.
#include "features.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/classifier_training.hpp"
#include "latentlab/io/sha256.hpp"
#include "latentlab/nn/feature_classifier.hpp"

namespace latentlab::features {
namespace {

class ClassifierFeatures final : public FeatureExtractor {
 public:
  explicit ClassifierFeatures(const Params& params) {
    const std::string weights = params.get_string("weights");
    if (weights.empty())
      throw ConfigError(
          "the classifier feature extractor needs `weights`, a classifier file; `latentlab fid --features "
          "classifier` trains one on `dataset` and caches it when none is given");
    info_ = eval::read_classifier_file(weights, &net_);
    weights_hash_ = io::sha256_file(weights);
  }
  std::int64_t feature_dim() const override { return info_.network.feature_dim; }
  std::int64_t num_logits() const override { return info_.network.classes; }
  std::string fingerprint() const override {
    // v1: the code between pixels and features (classifier_input); bumped when it changes.
    return "classifier/v1/weights-sha256=" + weights_hash_.substr(0, 16);
  }
  FeatureOutput extract(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    const auto out = net_->forward(nn::classifier_input(images, info_.network).to(device_));
    return {out.features.to(torch::kCPU), out.logits.to(torch::kCPU)};
  }
  void to(const torch::Device& device) override {
    device_ = device;
    net_->to(device);
  }

 private:
  eval::ClassifierInfo info_;
  nn::FeatureClassifier net_{nullptr};
  std::string weights_hash_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace

ParamSchema classifier_schema() {
  const eval::ClassifierTrainingConfig defaults;
  return ParamSchema()
      .string("weights", "",
              "a classifier file; empty: the host trains one on `dataset` with the settings below and caches "
              "it by content hash")
      .string(
          "dataset", "fashion-mnist",
          "the labelled dataset plugin to train on (its train split; held-out accuracy on its test split)")
      .integer("steps", defaults.steps, "training steps", Range::at_least(1))
      .integer("batch_size", defaults.batch_size, "training batch size", Range::at_least(1))
      .number("learning_rate", defaults.learning_rate, "Adam learning rate (cosine-decayed)",
              Range::above(0.0))
      .integer("seed", static_cast<std::int64_t>(defaults.seed), "seed of the initial weights and data order",
               Range::at_least(0))
      .integer("width", defaults.width, "channels of the first conv stage", Range::at_least(1))
      .integer("feature_dim", defaults.feature_dim, "width of the feature layer", Range::at_least(1));
}

std::unique_ptr<FeatureExtractor> make_classifier(const Params& params) {
  return std::make_unique<ClassifierFeatures>(params);
}

}  // namespace latentlab::features
