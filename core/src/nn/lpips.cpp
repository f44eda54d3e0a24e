#include "latentlab/nn/lpips.hpp"

#include "latentlab/error.hpp"
#include "latentlab/io/torch_file.hpp"
#include "latentlab/nn/state_dict.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::nn {

namespace {

// VGG16 `features`: the convolutions' indices and widths; ReLUs follow each, max pooling sits at
// 4, 9, 16, 23. The LPIPS taps are the ReLUs at 3, 8, 15, 22 and 29 (the ends of slice1..slice5).
struct VggConv {
  std::int64_t index, in, out;
};
const std::vector<VggConv>& vgg_convs() {
  static const std::vector<VggConv> convs = {{0, 3, 64},     {2, 64, 64},    {5, 64, 128},   {7, 128, 128},
                                             {10, 128, 256}, {12, 256, 256}, {14, 256, 256}, {17, 256, 512},
                                             {19, 512, 512}, {21, 512, 512}, {24, 512, 512}, {26, 512, 512},
                                             {28, 512, 512}};
  return convs;
}
const std::vector<std::int64_t> kTapChannels = {64, 128, 256, 512, 512};

int slice_of(std::int64_t index) {
  return index < 4 ? 1 : index < 9 ? 2 : index < 16 ? 3 : index < 23 ? 4 : 5;
}

// A key in one of the accepted layouts, renamed to ours; empty when it is not an LPIPS/VGG key.
std::string normalise_key(std::string key) {
  for (const std::string prefix : {"loss.perceptual_loss.", "perceptual_loss.", "module."})
    if (key.rfind(prefix, 0) == 0) key = key.substr(prefix.size());
  if (key.rfind("features.", 0) == 0) {  // torchvision vgg16: features.I.weight
    const auto rest = key.substr(9);
    const auto dot = rest.find('.');
    if (dot == std::string::npos) return {};
    const auto digits = rest.substr(0, dot);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return {};
    const auto index = std::stoll(digits);
    return "net.slice" + std::to_string(slice_of(index)) + "." + rest;
  }
  if (key.rfind("net.slice", 0) == 0 || key.rfind("lin", 0) == 0) return key;
  return {};
}

}  // namespace

LpipsImpl::LpipsImpl(bool use_lin) : use_lin_(use_lin) {
  auto net = register_module("net", std::make_shared<torch::nn::Module>());
  std::map<int, std::shared_ptr<torch::nn::Module>> slices;
  for (int s = 1; s <= 5; ++s)
    slices[s] = net->register_module("slice" + std::to_string(s), std::make_shared<torch::nn::Module>());
  for (const auto& c : vgg_convs())
    convs_.emplace_back(c.index, slices[slice_of(c.index)]->register_module(
                                     std::to_string(c.index),
                                     torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in, c.out, 3).padding(1))));
  if (use_lin) {
    for (std::size_t k = 0; k < kTapChannels.size(); ++k) {
      auto lin = register_module("lin" + std::to_string(k), std::make_shared<torch::nn::Module>());
      auto model = lin->register_module("model", std::make_shared<torch::nn::Module>());
      lins_.push_back(model->register_module(
          "1", torch::nn::Conv2d(torch::nn::Conv2dOptions(kTapChannels[k], 1, 1).bias(false))));
    }
  }
  auto scaling = register_module("scaling_layer", std::make_shared<torch::nn::Module>());
  shift_ = scaling->register_buffer("shift", torch::tensor({-.030, -.088, -.188}).view({1, 3, 1, 1}));
  scale_ = scaling->register_buffer("scale", torch::tensor({.458, .448, .450}).view({1, 3, 1, 1}));
  for (auto& p : parameters()) p.requires_grad_(false);
}

std::vector<std::string> LpipsImpl::required_keys() const {
  std::vector<std::string> keys;
  for (const auto& item : named_parameters()) keys.push_back(item.key());
  return keys;
}

void LpipsImpl::load(const std::vector<std::filesystem::path>& files) {
  static const std::string kWhere =
      "LPIPS needs VGG16 and its lin-layer weights: pass a reference first-stage checkpoint (its "
      "loss.perceptual_loss.* keys), or torchvision's vgg16-397923af.pth together with taming's vgg.pth "
      "(https://github.com/CompVis/taming-transformers, taming/modules/autoencoder/lpips/vgg.pth)";
  if (files.empty()) throw ConfigError("no LPIPS weights file given; " + kWhere);
  std::string names;
  NamedTensors found;
  for (const auto& file : files) {
    names += (names.empty() ? "" : ", ") + file.string();
    for (auto& [key, tensor] : io::read_torch_state_dict(file)) {
      const auto name = normalise_key(key);
      if (!name.empty() && name.find("scaling_layer") == std::string::npos) found.emplace_back(name, tensor);
    }
  }
  auto report = load_state_dict(*this, found);
  report.unexpected.clear();  // e.g. lin layers when use_lin is off, classifier layers of a full VGG16
  std::vector<std::string> missing;
  for (const auto& key : report.missing)
    if (key.find("scaling_layer") == std::string::npos) missing.push_back(key);
  report.missing = missing;
  if (!report.complete())
    throw Error("cannot load LPIPS from " + names + ":\n" + report.summary() + "\n" + kWhere);
  for (auto& p : parameters()) p.requires_grad_(false);
}

std::vector<torch::Tensor> LpipsImpl::features(const torch::Tensor& x) {
  std::vector<torch::Tensor> taps;
  auto h = x;
  std::int64_t previous = -1;
  for (auto& [index, conv] : convs_) {
    if (index - previous == 3) {  // a max-pool sat between: the previous ReLU closed a slice
      taps.push_back(h);
      h = torch::max_pool2d(h, 2, 2);
    }
    h = torch::relu(conv->forward(h));
    previous = index;
  }
  taps.push_back(h);
  return taps;  // 5 tensors [B, 64|128|256|512|512, H/2^k, W/2^k]
}

torch::Tensor LpipsImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  const auto rgb = [&](const torch::Tensor& t) {
    const auto three = t.size(1) == 1 ? t.expand({-1, 3, -1, -1}) : t;
    return (three - shift_) / scale_;
  };
  const auto fx = features(rgb(x)), fy = features(rgb(y));
  torch::Tensor total;
  for (std::size_t k = 0; k < fx.size(); ++k) {
    const auto unit = [](const torch::Tensor& f) { return f / (f.pow(2).sum(1, true).sqrt() + 1e-10); };
    const auto diff = (unit(fx[k]) - unit(fy[k])).pow(2);
    const auto weighted = use_lin_ ? lins_[k]->forward(diff) : diff.sum(1, true);  // [B, 1, h, w]
    const auto layer = weighted.mean({2, 3}, true);                                // [B, 1, 1, 1]
    total = k == 0 ? layer : total + layer;
  }
  return total;
}

}  // namespace latentlab::nn
