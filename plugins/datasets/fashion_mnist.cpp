// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70000 grey 28 x 28 images of clothing in 10 classes,
// read from the gzip IDX files that Debian's `dataset-fashion-mnist` installs.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "idx_file.hpp"
#include "latentlab/conditioning/captions.hpp"
#include "latentlab/error.hpp"

namespace latentlab::datasets {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultRoot = "/usr/share/datasets/fashion-mnist";
constexpr std::int64_t kSide = 28;  // every image is 28 x 28
constexpr const char* kReinstall =
    "reinstall the data (`apt-get install --reinstall dataset-fashion-mnist`) or point `root` at a "
    "complete copy";

const std::vector<std::string>& fashion_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::string install_hint() {
  return "install the data with `apt-get install dataset-fashion-mnist` (it puts the files in " +
         std::string(kDefaultRoot) + "), or set `root` to a folder that holds them";
}

// root/stem.gz, or root/stem when only an uncompressed copy is there (zlib reads both).
fs::path find_file(const fs::path& root, const std::string& stem) {
  const fs::path compressed = root / (stem + ".gz"), plain = root / stem;
  if (fs::is_regular_file(compressed)) return compressed;
  if (fs::is_regular_file(plain)) return plain;
  throw ConfigError("Fashion-MNIST file " + compressed.string() +
                    " is missing (nor is there an uncompressed " + stem + "); " + install_hint());
}

class FashionMnist final : public Dataset {
 public:
  explicit FashionMnist(const Params& params)
      : resolution_(params.get_int("resolution")),
        channels_(checked_channels(params.get_int("channels"))),
        pad_(params.get_string("fit") == "pad"),
        captions_(params.get_string("captions") == "templates") {
    if (pad_ && resolution_ < kSide)
      throw ConfigError("resolution " + std::to_string(resolution_) +
                        " is smaller than the 28 x 28 images, " +
                        "so fit \"pad\" cannot hold them; set `fit` to \"resize\" to shrink them, or " +
                        "use a resolution of at least 28");
    const fs::path root = params.get_string("root");
    if (!fs::is_directory(root))
      throw ConfigError("root " + root.string() +
                        (fs::exists(root) ? " is not a folder" : " does not exist") + "; " + install_hint());
    const std::string prefix = params.get_string("split") == "train" ? "train" : "t10k";
    const fs::path images_file = find_file(root, prefix + "-images-idx3-ubyte");
    const fs::path labels_file = find_file(root, prefix + "-labels-idx1-ubyte");

    torch::Tensor images = read_idx_ubyte(images_file, 3, kReinstall);  // [N, 28, 28] uint8
    torch::Tensor labels = read_idx_ubyte(labels_file, 1, kReinstall);  // [N] uint8
    if (images.size(1) != kSide || images.size(2) != kSide)
      throw Error(images_file.string() + " holds " + std::to_string(images.size(1)) + " x " +
                  std::to_string(images.size(2)) + " images, expected 28 x 28; " + kReinstall);
    if (images.size(0) != labels.size(0))
      throw Error(images_file.string() + " holds " + std::to_string(images.size(0)) + " images but " +
                  labels_file.string() + " holds " + std::to_string(labels.size(0)) +
                  " labels; the two files must come from the same copy: " + kReinstall);
    if (images.size(0) == 0) throw Error(images_file.string() + " holds no images; " + kReinstall);
    if (const auto bad = labels.ge(kNumClasses).nonzero(); bad.size(0) > 0) {
      const std::int64_t at = bad[0][0].item<std::int64_t>();
      throw Error(labels_file.string() + " has label " + std::to_string(labels[at].item<int>()) +
                  " at index " + std::to_string(at) + "; labels must be in [0, 10); " + kReinstall);
    }

    if (const std::int64_t limit = params.get_int("limit"); limit > 0 && limit < images.size(0)) {
      images = images.narrow(0, 0, limit).clone();  // clone: release the rest
      labels = labels.narrow(0, 0, limit).clone();
    }
    images_ = images.unsqueeze(1);  // [N, 1, 28, 28]
    labels_ = labels;
  }

  std::int64_t size() const override { return images_.size(0); }
  std::int64_t channels() const override { return channels_; }
  std::int64_t resolution() const override { return resolution_; }
  std::int64_t num_classes() const override { return kNumClasses; }
  std::vector<std::string> class_names() const override { return fashion_class_names(); }
  bool has_captions() const override { return captions_; }
  // Captioned Fashion-MNIST (docs/conditioning.md): a training template naming the class, chosen by
  // the example's index.
  std::string caption(std::int64_t index) const override {
    if (!captions_) return Dataset::caption(index);
    if (index < 0 || index >= size())
      throw Error("example " + std::to_string(index) + " is outside [0, " + std::to_string(size()) + ")");
    return example_caption(index, fashion_class_names()[labels_[index].item<std::int64_t>()]);
  }

  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    const torch::Tensor index = checked_index(indices, size());             // [B]
    torch::Tensor images = to_signed_unit(images_.index_select(0, index));  // [B, 1, 28, 28]
    if (pad_ && resolution_ > kSide) {
      // Centre with the background (-1); an odd margin puts the extra pixel right and bottom.
      const std::int64_t before = (resolution_ - kSide) / 2, after = resolution_ - kSide - before;
      images = torch::constant_pad_nd(images, {before, after, before, after}, -1.0);  // [B, 1, R, R]
    } else {
      images = resize_square(images, resolution_);  // [B, 1, R, R]
    }
    if (channels_ == 3) images = images.expand({-1, 3, -1, -1}).contiguous();  // [B, 3, R, R]
    Batch batch{images, labels_.index_select(0, index).to(torch::kInt64), {}};
    if (captions_)
      for (const auto i : indices) batch.captions.push_back(caption(i));
    return batch;
  }

 private:
  static constexpr std::int64_t kNumClasses = 10;

  torch::Tensor images_;  // [N, 1, 28, 28] uint8
  torch::Tensor labels_;  // [N] uint8 in [0, 10)
  std::int64_t resolution_;
  std::int64_t channels_;
  bool pad_;       // centre-pad (else interpolate)
  bool captions_;  // captions from the class names
};

}  // namespace

ParamSchema fashion_mnist_schema() {
  return ParamSchema()
      .string("root", std::string(kDefaultRoot), "folder with the (gzip) IDX files")
      .choice("split", "train", {"train", "test"}, "train: 60000 images, test: 10000")
      .integer("resolution", 32, "side of the square images produced", Range::at_least(1))
      .choice("fit", "pad", {"pad", "resize"},
              "pad: centre the 28 x 28 image on a -1 background (resolution >= 28); resize: interpolate "
              "(area when shrinking, bilinear when enlarging)")
      .integer("channels", 1, "1 (grey) or 3 (the grey channel repeated as RGB)", Range::closed(1, 3))
      .integer("limit", 0, "use only the first N examples (0: all)", Range::at_least(0))
      .choice("captions", "none", {"none", "templates"},
              "templates: caption every example with one of ten templates naming its class (\"a photo of "
              "a coat\"), for text-to-image offline");
}

std::unique_ptr<Dataset> make_fashion_mnist(const Params& params) {
  return std::make_unique<FashionMnist>(params);
}

}  // namespace latentlab::datasets
