#include "latentlab/nn/discriminator.hpp"

#include <algorithm>

namespace latentlab::nn {

namespace {

torch::nn::Conv2d conv4(std::int64_t in, std::int64_t out, std::int64_t stride, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 4).stride(stride).padding(1).bias(bias));
}

torch::nn::LeakyReLU leaky() {
  return torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2).inplace(true));
}

}  // namespace

PatchDiscriminatorImpl::PatchDiscriminatorImpl(std::int64_t in_channels, std::int64_t channels,
                                               std::int64_t layers) {
  // Layer indices match the reference Sequential: conv, lrelu, then (conv, bn, lrelu) per layer, conv.
  torch::nn::Sequential seq;
  seq->push_back(conv4(in_channels, channels, 2, true));
  seq->push_back(leaky());
  std::int64_t mult = 1, previous = 1;
  for (std::int64_t n = 1; n < layers; ++n) {
    previous = mult;
    mult = std::min<std::int64_t>(std::int64_t{1} << n, 8);
    seq->push_back(conv4(channels * previous, channels * mult, 2, false));
    seq->push_back(torch::nn::BatchNorm2d(channels * mult));
    seq->push_back(leaky());
  }
  previous = mult;
  mult = std::min<std::int64_t>(std::int64_t{1} << layers, 8);
  seq->push_back(conv4(channels * previous, channels * mult, 1, false));
  seq->push_back(torch::nn::BatchNorm2d(channels * mult));
  seq->push_back(leaky());
  seq->push_back(conv4(channels * mult, 1, 1, true));
  main_ = register_module("main", seq);

  // weights_init: conv weights N(0, 0.02); batch-norm weights N(1, 0.02), biases 0.
  torch::NoGradGuard no_grad;
  for (auto& child : main_->children()) {
    if (auto* conv = child->as<torch::nn::Conv2d>()) {
      conv->weight.normal_(0.0, 0.02);
    } else if (auto* bn = child->as<torch::nn::BatchNorm2d>()) {
      bn->weight.normal_(1.0, 0.02);
      bn->bias.zero_();
    }
  }
}

torch::Tensor PatchDiscriminatorImpl::forward(const torch::Tensor& x) {
  return main_->forward(x);
}

}  // namespace latentlab::nn
