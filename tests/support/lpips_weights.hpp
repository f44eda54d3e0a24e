#pragma once
// LPIPS weights files for tests, in the layouts researchers have (nn::Lpips::load): torchvision's
// VGG16 (`features.N.*`, with a classifier layer LPIPS ignores), taming's vgg.pth (`linK.model.1.weight`),
// and a reference first-stage checkpoint holding both (`loss.perceptual_loss.*`). The same random
// weights (He-scaled, so the features neither vanish nor explode) in all three.
#include <ATen/CPUGeneratorImpl.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/torch_save.hpp"

namespace latentlab::testing {

struct LpipsWeightFiles {
  std::filesystem::path vgg16, lin, checkpoint;  // vgg16.pth, vgg.pth, model.ckpt
};

inline LpipsWeightFiles write_lpips_weights(const std::filesystem::path& dir, std::uint64_t seed) {
  std::filesystem::create_directories(dir);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  // (VGG16 feature index, in, out) of its 13 convolutions
  const std::vector<std::array<std::int64_t, 3>> convs = {
      {0, 3, 64},     {2, 64, 64},    {5, 64, 128},   {7, 128, 128},  {10, 128, 256},
      {12, 256, 256}, {14, 256, 256}, {17, 256, 512}, {19, 512, 512}, {21, 512, 512},
      {24, 512, 512}, {26, 512, 512}, {28, 512, 512}};
  std::vector<std::pair<std::string, torch::Tensor>> vgg, lin, reference;
  for (const auto& [index, in, out] : convs) {
    const auto w = at::randn({out, in, 3, 3}, generator) * std::sqrt(2.0 / (9.0 * static_cast<double>(in)));
    const auto b = at::randn({out}, generator) * 0.01;
    vgg.emplace_back("features." + std::to_string(index) + ".weight", w);
    vgg.emplace_back("features." + std::to_string(index) + ".bias", b);
    const int slice = index < 4 ? 1 : index < 9 ? 2 : index < 16 ? 3 : index < 23 ? 4 : 5;
    const auto name = "loss.perceptual_loss.net.slice" + std::to_string(slice) + "." + std::to_string(index);
    reference.emplace_back(name + ".weight", w);
    reference.emplace_back(name + ".bias", b);
  }
  vgg.emplace_back("classifier.0.weight", torch::zeros({2, 2}));  // a full torchvision file: ignored
  const std::vector<std::int64_t> taps = {64, 128, 256, 512, 512};
  for (std::size_t k = 0; k < taps.size(); ++k) {
    const auto w = at::rand({1, taps[k], 1, 1}, generator);
    lin.emplace_back("lin" + std::to_string(k) + ".model.1.weight", w);
    reference.emplace_back("loss.perceptual_loss.lin" + std::to_string(k) + ".model.1.weight", w);
  }
  const LpipsWeightFiles files{dir / "vgg16.pth", dir / "vgg.pth", dir / "model.ckpt"};
  write_state_dict_file(files.vgg16, vgg);
  write_state_dict_file(files.lin, lin);
  write_state_dict_file(files.checkpoint, reference);
  return files;
}

}  // namespace latentlab::testing
