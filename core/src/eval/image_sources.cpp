// The image sources metrics read: folders, sample arrays and datasets.
#include <algorithm>
#include <cctype>
#include <numeric>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/eval/classifier_training.hpp"
#include "latentlab/eval/feature_pass.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/io/sha256.hpp"

namespace latentlab::eval {

ImageSource::~ImageSource() = default;

namespace {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& path) {
  auto ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga"})
    if (ext == known) return true;
  return false;
}

class FolderImages final : public ImageSource {
 public:
  explicit FolderImages(const fs::path& folder) : folder_(folder) {
    if (!fs::is_directory(folder))
      throw ConfigError("image folder " + folder.string() +
                        (fs::exists(folder) ? " is not a folder" : " does not exist"));
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file() && is_image_file(entry.path())) files_.push_back(entry.path());
    std::sort(files_.begin(), files_.end());
    if (files_.empty())
      throw ConfigError("image folder " + folder.string() +
                        " holds no PNG, JPEG, BMP, GIF or TGA files (sub-folders are not searched)");
    // Headers only: a file of another size fails here, before any features are computed.
    const auto first = io::image_file_info(files_.front());
    height_ = first.height;
    width_ = first.width;
    for (const auto& file : files_) {
      const auto info = io::image_file_info(file);
      if (info.height != height_ || info.width != width_)
        throw ConfigError(file.string() + " is " + std::to_string(info.width) + "x" +
                          std::to_string(info.height) + " but " + files_.front().string() + " is " +
                          std::to_string(width_) + "x" + std::to_string(height_) +
                          "; metrics need images of one size (resize them first)");
      channels_ = std::max(channels_, info.channels);
    }
  }
  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  torch::Tensor read(std::int64_t start, std::int64_t count) const override {
    std::vector<torch::Tensor> images;
    for (std::int64_t i = start; i < start + count; ++i) {
      auto image = io::read_image_u8(files_.at(static_cast<std::size_t>(i)), channels_);
      if (image.size(1) != height_ || image.size(2) != width_)
        throw Error(files_[static_cast<std::size_t>(i)].string() + " changed size while it was being read");
      images.push_back(std::move(image));
    }
    return torch::stack(images);
  }
  std::string describe() const override {
    return "folder " + folder_.string() + " (" + std::to_string(files_.size()) + " images, " +
           std::to_string(width_) + "x" + std::to_string(height_) + ")";
  }
  std::string content_hash() const override {
    io::Sha256 hasher;
    for (const auto& file : files_)
      hasher.update(file.filename().string() + ":" + io::sha256_file(file) + "\n");
    return hasher.hex_digest();
  }

 private:
  fs::path folder_;
  std::vector<fs::path> files_;
  std::int64_t channels_ = 1, height_ = 0, width_ = 0;
};

class ArrayImages final : public ImageSource {
 public:
  explicit ArrayImages(const fs::path& file) : file_(file), reader_(file) {
    const auto& shape = reader_.shape();
    const auto fail = [&](const std::string& why) {
      return ConfigError(
          file.string() + " is not an image array: " + why +
          "; metrics read float [N, C, H, W] in [-1, 1] (as `latentlab sample` writes) or uint8 "
          "[N, C, H, W] / [N, H, W, C] with C = 1 or 3");
    };
    if (shape.size() != 4) throw fail("it has " + std::to_string(shape.size()) + " dimensions");
    const bool is_float = reader_.dtype() == torch::kFloat32 || reader_.dtype() == torch::kFloat64;
    if (!is_float && reader_.dtype() != torch::kUInt8) throw fail("its dtype is neither float nor uint8");
    if (shape[1] == 1 || shape[1] == 3)
      channels_last_ = false;
    else if (!is_float && (shape[3] == 1 || shape[3] == 3))
      channels_last_ = true;
    else
      throw fail("no axis of 1 or 3 channels where expected");
    quantize_ = is_float;
    if (shape[0] == 0) throw fail("it holds no images");
  }
  std::int64_t size() const override { return reader_.shape()[0]; }
  torch::Tensor read(std::int64_t start, std::int64_t count) const override {
    auto rows = reader_.read_rows(start, count);
    if (quantize_) return io::to_pixels(rows);
    return channels_last_ ? rows.permute({0, 3, 1, 2}).contiguous() : rows;
  }
  std::string describe() const override {
    const auto& s = reader_.shape();
    return "array " + file_.string() + " (" + std::to_string(s[0]) + " images)";
  }
  std::string content_hash() const override { return io::sha256_file(file_); }

 private:
  fs::path file_;
  io::NpyReader reader_;
  bool channels_last_ = false, quantize_ = false;
};

class DatasetImages final : public ImageSource {
 public:
  DatasetImages(std::shared_ptr<Dataset> data, std::string description)
      : data_(std::move(data)), description_(std::move(description)) {
    if (data_->size() == 0) throw ConfigError(description_ + " holds no images");
  }
  std::int64_t size() const override { return data_->size(); }
  torch::Tensor read(std::int64_t start, std::int64_t count) const override {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
    std::iota(indices.begin(), indices.end(), start);
    return io::to_pixels(data_->get_batch(indices).images);
  }
  std::string describe() const override {
    return description_ + " (" + std::to_string(data_->size()) + " images)";
  }
  std::string content_hash() const override { return dataset_content_hash(*data_); }

 private:
  std::shared_ptr<Dataset> data_;
  std::string description_;
};

}  // namespace

std::unique_ptr<ImageSource> folder_images(const std::filesystem::path& folder) {
  return std::make_unique<FolderImages>(folder);
}
std::unique_ptr<ImageSource> array_images(const std::filesystem::path& file) {
  return std::make_unique<ArrayImages>(file);
}
std::unique_ptr<ImageSource> dataset_images(std::shared_ptr<Dataset> data, std::string description) {
  return std::make_unique<DatasetImages>(std::move(data), std::move(description));
}

}  // namespace latentlab::eval
