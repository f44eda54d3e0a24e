#pragma once
// Image and array files: what `latentlab sample` writes and what guidance targets are read from.
#include <cstdint>
#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::io {

// Reads a PNG/JPEG/BMP/... file as [1, channels, H, W] float32 in [-1, 1] (channels 1 or 3: converted
// as stb_image does). Throws Error naming the file when it is missing or cannot be decoded.
LATENTLAB_API torch::Tensor read_image(const std::filesystem::path& path, std::int64_t channels);

// Reads an image file as uint8 [channels, H, W] (channels 1 or 3, converted as stb_image does).
LATENTLAB_API torch::Tensor read_image_u8(const std::filesystem::path& path, std::int64_t channels);
// What an image file's header says, without decoding it: channels 1 (grey, grey + alpha) or 3 (RGB,
// RGBA), and its size. Throws Error naming the file when it is not an image.
struct ImageFileInfo {
  std::int64_t channels = 0, height = 0, width = 0;
};
LATENTLAB_API ImageFileInfo image_file_info(const std::filesystem::path& path);

// Images in [-1, 1] (any float dtype, device) -> uint8 levels floor((x + 1) 127.5) clamped to
// [0, 255], on the CPU: truncation, as ADM's and LDM's sampling scripts write images (and so as the
// standard FIDs were computed), with a 1e-3 tolerance so that pixels that came from uint8
// (p / 127.5 - 1 in float32) come back exactly. Every image file LatentLab writes uses it.
LATENTLAB_API torch::Tensor to_pixels(const torch::Tensor& images);

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

// A .npy file read a few rows (slices along the first axis) at a time, for arrays too large to hold.
class LATENTLAB_API NpyReader {
 public:
  // Reads the header; throws Error naming the file and the problem when it is not an array LatentLab
  // reads (float32, float64, int64, uint8; C order).
  explicit NpyReader(const std::filesystem::path& path);
  const std::vector<std::int64_t>& shape() const { return shape_; }
  torch::ScalarType dtype() const { return dtype_; }
  // Rows [start, start + count) as a tensor [count, shape[1:]...].
  torch::Tensor read_rows(std::int64_t start, std::int64_t count) const;
  // The whole array.
  torch::Tensor read_all() const;

 private:
  std::filesystem::path path_;
  std::vector<std::int64_t> shape_;
  torch::ScalarType dtype_;
  std::int64_t data_offset_ = 0;
};

}  // namespace latentlab::io
