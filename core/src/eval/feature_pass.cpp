#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/eval/feature_pass.hpp"
#include "latentlab/io/sha256.hpp"
#include "latentlab/strings.hpp"
#include "latentlab/io/atomic_file.hpp"

namespace latentlab::eval {
namespace {

constexpr const char* kKind = "latentlab-features";
constexpr std::int64_t kFormat = 1;

std::int64_t images_to_use(const ImageSource& images, const FeaturePassOptions& options) {
  if (options.limit < 0) throw ConfigError("the number of images must be >= 0 (0: all)");
  if (options.limit > images.size())
    throw ConfigError(images.describe() + " has fewer images than the " + std::to_string(options.limit) +
                      " asked for; ask for at most " + std::to_string(images.size()) + " or 0 (all)");
  return options.limit == 0 ? images.size() : options.limit;
}

void write_feature_file(const std::filesystem::path& path, const FeatureSet& set) {
  torch::serialize::OutputArchive archive;
  archive.write("kind", c10::IValue(std::string(kKind)));
  archive.write("format", c10::IValue(kFormat));
  archive.write("provenance", c10::IValue(set.provenance.dump()));
  archive.write("count", c10::IValue(set.count));
  archive.write("mean", set.statistics.mean());
  archive.write("covariance", set.statistics.covariance());
  if (set.features.defined()) archive.write("features", set.features);
  if (set.logits.defined()) archive.write("logits", set.logits);
  std::filesystem::create_directories(path.parent_path());
  save_archive_atomically(archive, path);
}

// The cached set at `path` (features and logits when the file has them), or nothing when there is no
// readable file.
std::optional<FeatureSet> read_feature_file(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    c10::IValue value;
    if (!archive.try_read("kind", value) || value.toStringRef() != kKind) return std::nullopt;
    if (!archive.try_read("format", value) || value.toInt() != kFormat) return std::nullopt;
    FeatureSet set;
    archive.read("provenance", value);
    set.provenance = nlohmann::json::parse(value.toStringRef());
    archive.read("count", value);
    set.count = value.toInt();
    torch::Tensor mean, covariance;
    archive.read("mean", mean);
    archive.read("covariance", covariance);
    set.statistics = FeatureStatistics::from_moments(mean, covariance, set.count);
    archive.try_read("features", set.features);
    archive.try_read("logits", set.logits);
    return set;
  } catch (const std::exception& e) {
    spdlog::warn("ignoring unreadable cached features {} ({}); recomputing them", path.string(),
                 first_line(e.what()));
    return std::nullopt;
  }
}

}  // namespace

FeatureSet extract_features(const ImageSource& images, FeatureExtractor& extractor,
                            const FeaturePassOptions& options) {
  if (options.batch_size < 1) throw ConfigError("the feature batch size must be >= 1");
  const std::int64_t total = images_to_use(images, options);
  if (options.keep_logits && extractor.num_logits() == 0)
    throw ConfigError("the Inception Score needs class logits, and this feature extractor has none");
  FeatureSet set;
  set.count = total;
  const auto started = std::chrono::steady_clock::now();
  auto last_log = started;
  for (std::int64_t start = 0; start < total; start += options.batch_size) {
    const std::int64_t count = std::min(options.batch_size, total - start);
    const auto out = extractor.extract(images.read(start, count));
    if (out.features.dim() != 2 || out.features.size(0) != count ||
        out.features.size(1) != extractor.feature_dim())
      throw Error("the feature extractor returned features of the wrong shape (" +
                  std::to_string(out.features.dim()) + " dimensions; expected [" + std::to_string(count) +
                  ", " + std::to_string(extractor.feature_dim()) + "])");
    set.statistics.add(out.features);
    // Kept features and logits go straight into tensors of the final size (no concatenation copy).
    if (options.keep_features) {
      if (!set.features.defined()) set.features = torch::empty({total, extractor.feature_dim()});
      set.features.narrow(0, start, count).copy_(out.features);
    }
    if (options.keep_logits) {
      if (!out.logits.defined() || out.logits.dim() != 2 || out.logits.size(0) != count ||
          out.logits.size(1) != extractor.num_logits())
        throw Error("the feature extractor returned no logits, or logits of the wrong shape (expected [" +
                    std::to_string(count) + ", " + std::to_string(extractor.num_logits()) + "])");
      if (!set.logits.defined()) set.logits = torch::empty({total, extractor.num_logits()});
      set.logits.narrow(0, start, count).copy_(out.logits);
    }
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_log).count() > 10.0) {
      const double seconds = std::chrono::duration<double>(now - started).count();
      const double rate = static_cast<double>(start + count) / seconds;
      spdlog::info("features: {}/{} images of {}  {:.1f} images/s  ETA {:.0f}s", start + count, total,
                   images.describe(), rate, static_cast<double>(total - start - count) / rate);
      last_log = now;
    }
  }
  set.provenance = {{"source", images.describe()}, {"extractor", extractor.fingerprint()}, {"count", total}};
  return set;
}

FeatureSet cached_features(const std::filesystem::path& cache_dir, const ImageSource& images,
                           FeatureExtractor& extractor, const FeaturePassOptions& options) {
  const std::int64_t total = images_to_use(images, options);
  const auto content = images.content_hash();
  io::Sha256 key;
  key.update(std::string(kKind) + "/" + std::to_string(kFormat) + "\n" + content + "\n" +
             extractor.fingerprint() + "\n" + std::to_string(total));
  const auto path = cache_dir / "features" / (key.hex_digest().substr(0, 24) + ".pt");
  auto cached = read_feature_file(path);
  FeaturePassOptions pass = options;
  if (cached) {
    if ((!options.keep_features || cached->features.defined()) &&
        (!options.keep_logits || cached->logits.defined())) {
      spdlog::info("using cached features of {} ({})", images.describe(), path.string());
      cached->provenance["source"] = images.describe();  // the file may have been written from another path
      cached->provenance["cache"] = path.string();
      if (!options.keep_features) cached->features = torch::Tensor();
      if (!options.keep_logits) cached->logits = torch::Tensor();
      return *cached;
    }
    // Recomputed with what the file held as well, so that runs asking for different metrics do not
    // keep replacing each other's features and logits.
    pass.keep_features = pass.keep_features || cached->features.defined();
    pass.keep_logits = pass.keep_logits || cached->logits.defined();
    cached.reset();
  }
  // Only what was asked for is kept (and cached): 50000 Inception features take 400 MB.
  auto set = extract_features(images, extractor, pass);
  set.provenance["content_hash"] = content;
  try {
    write_feature_file(path, set);
    set.provenance["cache"] = path.string();
  } catch (const std::exception& e) {  // a full disk or read-only cache must not lose the pass
    spdlog::warn("could not cache the features of {} in {} ({}); going on without the cache",
                 images.describe(), path.string(), first_line(e.what()));
  }
  if (!options.keep_features) set.features = torch::Tensor();
  if (!options.keep_logits) set.logits = torch::Tensor();
  return set;
}

std::filesystem::path default_cache_dir() {
  if (const char* dir = std::getenv("LATENTLAB_CACHE"); dir && *dir) return dir;
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir && *dir)
    return std::filesystem::path(dir) / "latentlab";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".cache" / "latentlab";
  throw ConfigError("no cache folder: set LATENTLAB_CACHE (or HOME) or pass --cache DIR");
}

}  // namespace latentlab::eval
