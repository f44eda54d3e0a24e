#include "latentlab/nn/feature_classifier.hpp"

#include <string>
#include <vector>

#include "latentlab/error.hpp"

namespace latentlab::nn {
namespace {

torch::nn::Conv2d conv3x3(std::int64_t in, std::int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false));
}

}  // namespace

nlohmann::json FeatureClassifierConfig::to_json() const {
  return {{"channels", channels},
          {"resolution", resolution},
          {"classes", classes},
          {"width", width},
          {"feature_dim", feature_dim}};
}

FeatureClassifierConfig FeatureClassifierConfig::from_json(const nlohmann::json& json) {
  FeatureClassifierConfig config;
  try {
    config.channels = json.at("channels").get<std::int64_t>();
    config.resolution = json.at("resolution").get<std::int64_t>();
    config.classes = json.at("classes").get<std::int64_t>();
    config.width = json.at("width").get<std::int64_t>();
    config.feature_dim = json.at("feature_dim").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("classifier config is incomplete: ") + e.what());
  }
  if ((config.channels != 1 && config.channels != 3) || config.resolution < 4 || config.classes < 2 ||
      config.width < 1 || config.feature_dim < 1)
    throw Error("classifier config out of range: " + config.to_json().dump());
  return config;
}

FeatureClassifierImpl::FeatureClassifierImpl(const FeatureClassifierConfig& config) : config_(config) {
  const std::int64_t w = config.width;
  body_ = register_module(
      "body", torch::nn::Sequential(conv3x3(config.channels, w), torch::nn::BatchNorm2d(w), torch::nn::ReLU(),
                                    torch::nn::MaxPool2d(2), conv3x3(w, 2 * w), torch::nn::BatchNorm2d(2 * w),
                                    torch::nn::ReLU(), torch::nn::MaxPool2d(2)));
  const std::int64_t side = config.resolution / 4;
  feature_ = register_module("feature", torch::nn::Linear(2 * w * side * side, config.feature_dim));
  head_ = register_module("head", torch::nn::Linear(config.feature_dim, config.classes));
}

ClassifierOutput FeatureClassifierImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != config_.channels)
    throw Error("the classifier takes [B, " + std::to_string(config_.channels) + ", H, W] images");
  if (x.size(2) != config_.resolution || x.size(3) != config_.resolution)
    throw Error("the classifier takes " + std::to_string(config_.resolution) + " x " +
                std::to_string(config_.resolution) + " images; prepare them with classifier_input()");
  const auto h = body_->forward(x).flatten(1);  // [B, 2w (R/4)^2]
  ClassifierOutput out;
  out.features = torch::relu(feature_->forward(h));  // [B, feature_dim]
  out.logits = head_->forward(out.features);         // [B, classes]
  return out;
}

torch::Tensor classifier_input(const torch::Tensor& images, const FeatureClassifierConfig& config) {
  if (images.dim() != 4 || images.scalar_type() != torch::kUInt8 ||
      (images.size(1) != 1 && images.size(1) != 3))
    throw Error("the classifier takes uint8 images [B, 1 or 3, H, W]");
  auto x = images.to(torch::kFloat32) / 127.5 - 1.0;
  if (x.size(1) == 3 && config.channels == 1) {
    const auto luma = torch::tensor({0.299, 0.587, 0.114}, x.options()).view({1, 3, 1, 1});
    x = (x * luma).sum(1, true);
  } else if (x.size(1) == 1 && config.channels == 3) {
    x = x.expand({-1, 3, -1, -1});
  }
  const std::int64_t side = config.resolution;
  if (x.size(2) == side && x.size(3) == side) return x.contiguous();
  namespace F = torch::nn::functional;
  const std::vector<std::int64_t> size{side, side};
  if (x.size(2) >= side && x.size(3) >= side)
    return F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(size));
  return F::interpolate(x,
                        F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false));
}

}  // namespace latentlab::nn
