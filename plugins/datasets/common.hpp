#pragma once
// Helpers shared by the built-in datasets: parameter checks, index checks and pixel conversions.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "latentlab/dataset.hpp"
#include "latentlab/params.hpp"

namespace latentlab::datasets {

// The built-in datasets, registered by register.cpp.
ParamSchema fashion_mnist_schema();
std::unique_ptr<Dataset> make_fashion_mnist(const Params& params);
ParamSchema image_folder_schema();
std::unique_ptr<Dataset> make_image_folder(const Params& params);

// The `channels` parameter: 1 (grey) or 3 (RGB). Throws ConfigError for anything else.
std::int64_t checked_channels(std::int64_t channels);

// `indices` as an int64 tensor [B]; throws Error when one is outside [0, size).
torch::Tensor checked_index(const std::vector<std::int64_t>& indices, std::int64_t size);

// uint8 pixels -> float32 in [-1, 1] as x / 127.5 - 1 (exact at 0 -> -1 and 255 -> 1).
torch::Tensor to_signed_unit(const torch::Tensor& pixels);

// Resizes square images to resolution x resolution: area interpolation (a box filter, so it
// antialiases) when shrinking, bilinear (align_corners = false) when enlarging, nothing when equal.
// Both are convex combinations of input pixels, so values stay in the input's range.
// images: [B, C, S, S] float32 -> [B, C, resolution, resolution]
torch::Tensor resize_square(const torch::Tensor& images, std::int64_t resolution);

}  // namespace latentlab::datasets
