#pragma once
// Image and array files: what `latentlab sample` writes and what guidance targets are read from.
#include <cstdint>
#include <filesystem>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::io {

// Reads a PNG/JPEG/BMP/... file as [1, channels, H, W] float32 in [-1, 1] (channels 1 or 3: converted
// as stb_image does). Throws Error naming the file when it is missing or cannot be decoded.
LATENTLAB_API torch::Tensor read_image(const std::filesystem::path& path, std::int64_t channels);

// Writes images [N, C, H, W] (C = 1 or 3, values in [-1, 1], clamped) as one PNG grid with `columns`
// columns (0: about sqrt(N)) and a `border`-pixel black border. Atomic (temporary file, then rename).
// One image with columns 1 and border 0 is a plain PNG of that image.
LATENTLAB_API void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images,
                                  std::int64_t columns = 0, std::int64_t border = 2);

// Writes a tensor as a NumPy .npy file (format 1.0, little-endian, C order; float32, float64, int64 or
// uint8), readable with numpy.load. Atomic.
LATENTLAB_API void write_npy(const std::filesystem::path& path, const torch::Tensor& array);
// Reads a .npy file written by write_npy (or NumPy: those dtypes, C order) as a CPU tensor. Throws Error
// naming the file and the problem when it is not one.
LATENTLAB_API torch::Tensor read_npy(const std::filesystem::path& path);

}  // namespace latentlab::io
