#pragma once
// Running a feature extractor over a set of images: the sources metrics read (image folders, sample
// arrays, datasets), the streaming pass that accumulates FID statistics (and keeps features and logits
// only when KID, precision/recall or IS need them), and the cache of reference statistics.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "latentlab/dataset.hpp"
#include "latentlab/eval/feature_stats.hpp"
#include "latentlab/export.hpp"
#include "latentlab/feature_extractor.hpp"

namespace latentlab::eval {

// A set of images read in slices, as uint8.
class LATENTLAB_API ImageSource {
 public:
  virtual ~ImageSource();
  virtual std::int64_t size() const = 0;
  // Images [start, start + count) as uint8 [count, C, H, W].
  virtual torch::Tensor read(std::int64_t start, std::int64_t count) const = 0;
  // For people: "folder samples/ (512 images)".
  virtual std::string describe() const = 0;
  // SHA-256 of what the images are (file bytes or pixels), for cache keys. May take a pass over them.
  virtual std::string content_hash() const = 0;
};

// PNG/JPEG/BMP/GIF/TGA files directly in `folder`, in file-name order; all of one size (Error naming
// the first that differs). Grey files give 1 channel unless another file is colour.
LATENTLAB_API std::unique_ptr<ImageSource> folder_images(const std::filesystem::path& folder);
// A .npy array: float32/float64 [N, C, H, W] in [-1, 1] (what `latentlab sample` writes), quantised by
// io::to_pixels(); or uint8 [N, C, H, W] / [N, H, W, C] (C = 1 or 3).
LATENTLAB_API std::unique_ptr<ImageSource> array_images(const std::filesystem::path& file);
// A dataset's images (float in [-1, 1], quantised the same way). `description` names it in messages.
LATENTLAB_API std::unique_ptr<ImageSource> dataset_images(std::shared_ptr<Dataset> data,
                                                          std::string description);

struct FeaturePassOptions {
  std::int64_t batch_size = 50;
  std::int64_t limit = 0;      // use the first `limit` images; 0: all
  bool keep_features = false;  // for KID and precision/recall
  bool keep_logits = false;    // for the Inception Score
};

struct FeatureSet {
  FeatureStatistics statistics;
  torch::Tensor features;  // [N, D] float32 when kept
  torch::Tensor logits;    // [N, K] float32 when kept
  std::int64_t count = 0;
  // Where the set came from: {"source", "content_hash", "extractor", "count", "cache"}.
  nlohmann::json provenance;
};

// Extracts features of the first `limit` images (all when 0), batch by batch; memory stays flat unless
// features or logits are kept. Logs progress for long passes.
LATENTLAB_API FeatureSet extract_features(const ImageSource& images, FeatureExtractor& extractor,
                                          const FeaturePassOptions& options);

// extract_features(), cached in cache_dir/features/<key>.pt, where the key hashes the images' content,
// the extractor's fingerprint and the count. A cached file is reused when it holds what `options` asks
// for (features, logits), else recomputed and replaced.
LATENTLAB_API FeatureSet cached_features(const std::filesystem::path& cache_dir, const ImageSource& images,
                                         FeatureExtractor& extractor, const FeaturePassOptions& options);

// The default cache folder: $LATENTLAB_CACHE, else $XDG_CACHE_HOME/latentlab, else ~/.cache/latentlab.
LATENTLAB_API std::filesystem::path default_cache_dir();

}  // namespace latentlab::eval
