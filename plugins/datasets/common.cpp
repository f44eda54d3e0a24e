#include "common.hpp"

#include <string>

#include "latentlab/error.hpp"

namespace latentlab::datasets {

std::int64_t checked_channels(std::int64_t channels) {
  if (channels != 1 && channels != 3)
    throw ConfigError("channels is " + std::to_string(channels) +
                      "; allowed: 1 (grey) or 3 (RGB); set `channels` to 1 or 3");
  return channels;
}

torch::Tensor checked_index(const std::vector<std::int64_t>& indices, std::int64_t size) {
  for (std::size_t i = 0; i < indices.size(); ++i)
    if (indices[i] < 0 || indices[i] >= size)
      throw Error("index " + std::to_string(indices[i]) + " (position " + std::to_string(i) +
                  " of the batch) is out of range: the dataset holds " + std::to_string(size) +
                  " examples, indices 0.." + std::to_string(size - 1));
  return torch::tensor(indices, torch::kInt64);  // [B]
}

torch::Tensor to_signed_unit(const torch::Tensor& pixels) {
  return pixels.to(torch::kFloat32).div_(127.5).sub_(1.0);
}

torch::Tensor resize_square(const torch::Tensor& images, std::int64_t resolution) {
  namespace F = torch::nn::functional;
  const std::int64_t side = images.size(-1);
  if (side == resolution) return images;
  auto options = F::InterpolateFuncOptions().size(std::vector<std::int64_t>{resolution, resolution});
  if (side > resolution) return F::interpolate(images, options.mode(torch::kArea));
  return F::interpolate(images, options.mode(torch::kBilinear).align_corners(false));
}

}  // namespace latentlab::datasets
