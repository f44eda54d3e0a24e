// A folder of image files (PNG, JPEG, BMP, GIF, TGA; whatever stb_image decodes), found recursively,
// optionally labelled by their first-level sub-folder. Decoded on demand in get_batch.
#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common.hpp"
#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::datasets {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = {".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tga"};
  return extensions;
}

bool has_image_extension(const fs::path& file) {
  std::string extension = file.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto& known = image_extensions();
  return std::find(known.begin(), known.end(), extension) != known.end();
}

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown reason";
}

// Every image file under `root`, recursively (following folder links, each real folder once), sorted
// by path so the order does not depend on the file system.
std::vector<fs::path> find_images_unchecked(const fs::path& root) {
  std::vector<fs::path> files;
  std::set<fs::path> seen_folders = {fs::canonical(root)};
  fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink), end;
  for (; it != end; ++it) {
    if (it->is_directory()) {
      if (!seen_folders.insert(fs::canonical(it->path())).second) it.disable_recursion_pending();
    } else if (it->is_regular_file() && has_image_extension(it->path())) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<fs::path> find_images(const fs::path& root) {
  try {
    return find_images_unchecked(root);
  } catch (const fs::filesystem_error& e) {
    throw ConfigError("cannot list the images under " + root.string() + ": " + e.what() +
                      "; check that every folder under it is readable");
  }
}

class ImageFolder final : public Dataset {
 public:
  explicit ImageFolder(const Params& params)
      : resolution_(params.get_int("resolution")), channels_(checked_channels(params.get_int("channels"))) {
    const fs::path root = params.get_string("root");
    if (!fs::is_directory(root))
      throw ConfigError("root " + root.string() +
                        (fs::exists(root) ? " is not a folder" : " does not exist") +
                        "; set `root` to the folder that holds the images");
    files_ = find_images(root);
    if (files_.empty())
      throw ConfigError("no images under " + root.string() + " (looked recursively for " +
                        join(image_extensions()) + ", in any letter case); put images there or set `root` " +
                        "to the folder that holds them");
    // Cheap header checks now, so that a stray file fails before training rather than mid-run.
    for (const auto& file : files_) {
      int width = 0, height = 0, file_channels = 0;
      if (!stbi_info(file.c_str(), &width, &height, &file_channels))
        throw Error(file.string() + " is not a readable image (stb_image: " + stb_reason() +
                    "); remove or replace it");
    }
    if (params.get_bool("labels")) assign_labels(root);
    if (const auto captions = params.get_string("captions"); !captions.empty()) read_captions(root, captions);
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  std::int64_t channels() const override { return channels_; }
  std::int64_t resolution() const override { return resolution_; }
  std::int64_t num_classes() const override { return static_cast<std::int64_t>(classes_.size()); }
  std::vector<std::string> class_names() const override { return classes_; }
  bool has_captions() const override { return !captions_.empty(); }
  std::string caption(std::int64_t index) const override {
    if (captions_.empty()) return Dataset::caption(index);
    if (index < 0 || index >= size())
      throw Error("example " + std::to_string(index) + " is outside [0, " + std::to_string(size()) + ")");
    return captions_[static_cast<std::size_t>(index)];
  }

  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    const torch::Tensor index = checked_index(indices, size());  // [B]
    std::vector<torch::Tensor> images;
    images.reserve(indices.size());
    for (const std::int64_t i : indices) images.push_back(load(files_[static_cast<std::size_t>(i)]));
    Batch batch;
    batch.images = images.empty() ? torch::empty({0, channels_, resolution_, resolution_})
                                  : torch::cat(images);                    // [B, C, R, R]
    if (!classes_.empty()) batch.labels = labels_.index_select(0, index);  // [B]
    if (!captions_.empty())
      for (const std::int64_t i : indices) batch.captions.push_back(captions_[static_cast<std::size_t>(i)]);
    return batch;
  }

 private:
  // Labels from the first-level sub-folder under root; classes sorted by name.
  void assign_labels(const fs::path& root) {
    std::vector<std::string> folder_of;
    for (const auto& file : files_) {
      const fs::path relative = file.lexically_relative(root);
      if (std::distance(relative.begin(), relative.end()) < 2)
        throw ConfigError(
            "labels is true, so every image must sit in a class sub-folder (root/<class>/...), "
            "but " +
            file.string() + " is directly under root; move it into a sub-folder, " +
            "or set `labels` to false");
      folder_of.push_back(relative.begin()->string());
    }
    std::map<std::string, std::int64_t> class_index;
    for (const auto& name : folder_of) class_index.emplace(name, 0);
    for (auto& [name, label] : class_index) {
      label = static_cast<std::int64_t>(classes_.size());
      classes_.push_back(name);
    }
    std::vector<std::int64_t> labels;
    for (const auto& name : folder_of) labels.push_back(class_index.at(name));
    labels_ = torch::tensor(labels, torch::kInt64);  // [N]
  }

  // The captions file: one `path<TAB>caption` line per image, the path relative to root with '/'
  // between folders; empty lines and lines starting with '#' are skipped. Every image needs a caption.
  void read_captions(const fs::path& root, const fs::path& name) {
    const fs::path file = name.is_absolute() ? name : root / name;
    std::ifstream in(file);
    if (!in)
      throw ConfigError(
          "captions file " + file.string() + " cannot be read" +
          (fs::exists(file) ? "" : " (it does not exist)") +
          "; give a file of `path<TAB>caption` lines (a relative name is looked up under root)");
    std::map<std::string, std::string> by_path;
    std::string line;
    for (std::int64_t number = 1; std::getline(in, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.front() == '#') continue;
      const auto tab = line.find('\t');
      if (tab == std::string::npos || tab == 0)
        throw ConfigError(file.string() + ":" + std::to_string(number) +
                          ": expected `path<TAB>caption`, got \"" + line + "\"");
      const auto path = fs::path(line.substr(0, tab)).lexically_normal().generic_string();
      if (!by_path.emplace(path, line.substr(tab + 1)).second)
        throw ConfigError(file.string() + ":" + std::to_string(number) + ": a second caption for " + path);
    }
    captions_.reserve(files_.size());
    for (const auto& image : files_) {
      const auto relative = image.lexically_relative(root).generic_string();
      const auto it = by_path.find(relative);
      if (it == by_path.end())
        throw ConfigError("captions file " + file.string() + " has no caption for " + relative +
                          "; add a line `" + relative + "<TAB>caption`, or remove the image");
      captions_.push_back(it->second);
      by_path.erase(it);
    }
    if (!by_path.empty())
      throw ConfigError("captions file " + file.string() + " names " + by_path.begin()->first +
                        ", which is not an image under " + root.string() +
                        "; fix the path or remove the line");
  }

  // One image: decoded with `channels_` channels, centre-cropped to a square, resized.
  // -> [1, C, R, R] float32 in [-1, 1]
  torch::Tensor load(const fs::path& file) const {
    int width = 0, height = 0, file_channels = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
        stbi_load(file.c_str(), &width, &height, &file_channels, static_cast<int>(channels_)),
        stbi_image_free);
    if (!pixels)
      throw Error(file.string() + " could not be decoded (stb_image: " + stb_reason() +
                  "); remove or replace the file");
    const std::int64_t side = std::min(width, height);
    const torch::Tensor hwc = torch::from_blob(pixels.get(), {height, width, channels_}, torch::kUInt8);
    const torch::Tensor square = hwc.narrow(0, (height - side) / 2, side)
                                     .narrow(1, (width - side) / 2, side)
                                     .permute({2, 0, 1});       // [C, S, S] view of stb's buffer
    torch::Tensor image = to_signed_unit(square).unsqueeze(0);  // [1, C, S, S], a copy
    return resize_square(image, resolution_);                   // [1, C, R, R]
  }

  std::vector<fs::path> files_;        // sorted
  std::vector<std::string> classes_;   // sorted; empty without labels
  torch::Tensor labels_;               // [N] int64, undefined without labels
  std::vector<std::string> captions_;  // in the order of files_; empty without captions
  std::int64_t resolution_;
  std::int64_t channels_;
};

}  // namespace

ParamSchema image_folder_schema() {
  return ParamSchema()
      .string("root", std::nullopt, "folder searched recursively for images")
      .integer("resolution", 64, "side of the square images produced (centre crop, then resize)",
               Range::at_least(1))
      .integer("channels", 3, "1: grey (stb's luma); 3: RGB (alpha dropped)", Range::closed(1, 3))
      .boolean("labels", false, "label each image by its first-level sub-folder (classes sorted by name)")
      .string("captions", std::string(),
              "a file of `path<TAB>caption` lines, one per image (a relative name is looked up under root); "
              "empty: no captions");
}

std::unique_ptr<Dataset> make_image_folder(const Params& params) {
  return std::make_unique<ImageFolder>(params);
}

}  // namespace latentlab::datasets
