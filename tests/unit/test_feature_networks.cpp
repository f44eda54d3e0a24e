// The feature extractors: the FID Inception v3 against the same network in Python's torch (the test
// makes the weights and expected outputs with tests/python/make_inception_fixture.py when Python's torch
// is installed), the offline classifier (trains, caches, reloads, reports accuracy), and the image
// sources `latentlab fid` reads.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/eval/classifier_training.hpp"
#include "latentlab/eval/feature_pass.hpp"
#include "latentlab/feature_extractor.hpp"
#include "latentlab/io/images.hpp"
#include "latentlab/nn/inception_v3.hpp"
#include "latentlab/plugin_checks.hpp"
#include "support/builtin_plugins.hpp"

namespace latentlab {
namespace {

namespace fs = std::filesystem;
using testing::make_builtin;

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("latentlab_features_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

torch::Tensor read_raw(const fs::path& file, std::vector<std::int64_t> shape, torch::ScalarType type) {
  std::ifstream in(file, std::ios::binary);
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes()));
  EXPECT_TRUE(in.good()) << "cannot read " << file;
  return tensor;
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max()).item<double>();
}

// ---- Inception v3 ----

TEST(FidInception, HasTheReferenceShapesAndIsDeterministic) {
  torch::manual_seed(0);
  nn::FidInceptionV3 net;
  net->eval();
  std::int64_t parameters = 0;
  for (const auto& p : net->parameters()) parameters += p.numel();
  EXPECT_EQ(parameters, 23850960);  // as the Python port (torchvision Inception v3 without aux, 1008 classes)
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 299, 299}) * 0.5;
  const auto a = net->forward(x), b = net->forward(x);
  EXPECT_EQ(a.pool.sizes(), (std::vector<std::int64_t>{2, 2048}));
  EXPECT_EQ(a.logits.sizes(), (std::vector<std::int64_t>{2, 1008}));
  EXPECT_TRUE(torch::equal(a.pool, b.pool));
  EXPECT_TRUE(torch::equal(a.logits, b.logits));
  EXPECT_THROW(net->forward(torch::zeros({1, 3, 224, 224})), Error);
}

// Runs the Python fixture script once for the suite; empty when Python's torch is missing.
class InceptionAgainstPython : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(temp_dir("inception_python_" + std::to_string(getpid())));
    const std::string python = "/usr/bin/python3";
    if (std::system((python + " -c 'import torch, numpy' 2>/dev/null").c_str()) != 0) return;
    const std::string command = python + " " + LATENTLAB_SOURCE_DIR +
                                "/tests/python/make_inception_fixture.py " + dir_->string() + " --legacy > " +
                                (*dir_ / "log.txt").string() + " 2>&1";
    available_ = std::system(command.c_str()) == 0;
    ASSERT_TRUE(available_) << "make_inception_fixture.py failed; see " << (*dir_ / "log.txt");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    if (!available_)
      GTEST_SKIP() << "Python's torch is not installed (apt-get install python3-torch), so the reference "
                      "Inception outputs cannot be made";
  }
  static fs::path* dir_;
  static bool available_;
};
fs::path* InceptionAgainstPython::dir_ = nullptr;
bool InceptionAgainstPython::available_ = false;

TEST_F(InceptionAgainstPython, LoadsTheTorchSaveFileAndGivesPythonsFeaturesDirectlyAndAsAPlugin) {
  const auto images = read_raw(*dir_ / "images.u8", {2, 3, 40, 56}, torch::kUInt8);
  nn::FidInceptionV3 net;
  net->load(*dir_ / "inception.pth");  // legacy pickle format, num_batches_tracked included
  net->eval();
  torch::NoGradGuard no_grad;
  for (const auto& [mode, tag] : {std::pair{nn::InceptionPreprocess::kTorchFidelity, "torch_fidelity"},
                                  std::pair{nn::InceptionPreprocess::kPytorchFid, "pytorch_fid"}}) {
    const std::string prefix = (*dir_ / tag).string();
    const auto input = nn::inception_input(images, mode);
    const auto want_input = read_raw(prefix + "_resized.f32", {2, 3, 299, 299}, torch::kFloat32);
    EXPECT_LT((input - want_input).abs().max().item<double>(), 2e-6) << tag;
    const auto out = net->forward(input);
    EXPECT_LT(relative_error(out.pool, read_raw(prefix + "_pool.f32", {2, 2048}, torch::kFloat32)), 1e-4)
        << tag;
    EXPECT_LT(relative_error(out.logits, read_raw(prefix + "_logits.f32", {2, 1008}, torch::kFloat32)), 1e-4)
        << tag;
    EXPECT_LT(relative_error(out.logits_unbiased,
                             read_raw(prefix + "_logits_unbiased.f32", {2, 1008}, torch::kFloat32)),
              1e-4)
        << tag;
  }
  // Through the plugin: pool features and the unbiased logits (torch-fidelity's IS input).
  auto extractor =
      make_builtin<FeatureExtractor>("inception-v3-fid", {{"weights", (*dir_ / "inception.pth").string()}});
  EXPECT_EQ(extractor->feature_dim(), 2048);
  EXPECT_EQ(extractor->num_logits(), 1008);
  EXPECT_NE(extractor->fingerprint().find("preprocess=torch-fidelity"), std::string::npos);
  const auto out = extractor->extract(images);
  EXPECT_LT(
      relative_error(out.features, read_raw(*dir_ / "torch_fidelity_pool.f32", {2, 2048}, torch::kFloat32)),
      1e-4);
  EXPECT_LT(relative_error(out.logits, read_raw(*dir_ / "torch_fidelity_logits_unbiased.f32", {2, 1008},
                                                torch::kFloat32)),
            1e-4);
  // Grey images are repeated to RGB.
  const auto grey = images.narrow(1, 0, 1);
  EXPECT_TRUE(torch::allclose(extractor->extract(grey).features,
                              extractor->extract(grey.expand({-1, 3, -1, -1})).features));
  for (const auto& result : check_feature_extractor(*extractor))
    EXPECT_TRUE(result.passed) << result.name << ": " << result.detail;
  auto pytorch_fid = make_builtin<FeatureExtractor>(
      "inception-v3-fid", {{"weights", (*dir_ / "inception.pth").string()}, {"preprocess", "pytorch-fid"}});
  EXPECT_NE(pytorch_fid->fingerprint(), extractor->fingerprint());
  // The small TF1 case the script computes in Python.
  const auto small = read_raw(*dir_ / "tf1_small.f32", {1, 1, 3, 4}, torch::kFloat32);
  EXPECT_LT((nn::resize_bilinear_tf1(torch::arange(6, torch::kFloat32).view({1, 1, 2, 3}), 3, 4) - small)
                .abs()
                .max()
                .item<double>(),
            1e-6);
}

TEST(FidInception, MissingWeightsSayWhereToGetThemAndHowToPassThem) {
  unsetenv("LATENTLAB_INCEPTION_WEIGHTS");
  try {
    make_builtin<FeatureExtractor>("inception-v3-fid");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("pt_inception-2015-12-05-6726825d.pth"), std::string::npos) << message;
    EXPECT_NE(message.find("--weights"), std::string::npos) << message;
    EXPECT_NE(message.find("LATENTLAB_INCEPTION_WEIGHTS"), std::string::npos) << message;
  }
  EXPECT_THROW(make_builtin<FeatureExtractor>("inception-v3-fid", {{"weights", "/no/such/file.pth"}}), Error);
  // A file that is not the network's state dict names what is missing.
  const auto dir = temp_dir("not_inception");
  torch::serialize::OutputArchive archive;
  archive.write("x", torch::zeros({1}));
  archive.save_to((dir / "bad.pth").string());
  nn::FidInceptionV3 net;
  EXPECT_THROW(net->load(dir / "bad.pth"), Error);
}

// ---- the classifier ----

TEST(FeatureClassifier, TrainsCachesReloadsAndReportsAccuracy) {
  const auto cache = temp_dir("classifier_cache");
  auto train = make_builtin<Dataset>("fashion-mnist", {{"split", "train"}, {"limit", 2000}});
  auto test = make_builtin<Dataset>("fashion-mnist", {{"split", "test"}, {"limit", 500}});
  eval::ClassifierTrainingConfig config;
  config.steps = 60;
  config.batch_size = 64;
  config.width = 8;
  config.feature_dim = 32;
  const nlohmann::json description = {{"dataset", "fashion-mnist"}};
  const auto path = eval::cached_feature_classifier(cache, *train, *test, description, config, torch::kCPU);
  ASSERT_TRUE(fs::exists(path));
  const auto written = fs::last_write_time(path);
  nn::FeatureClassifier network{nullptr};
  const auto info = eval::read_classifier_file(path, &network);
  EXPECT_GT(info.accuracy, 0.4);  // chance is 0.1; 60 steps on 2000 images reach ~0.65
  EXPECT_LE(info.accuracy, 1.0);
  EXPECT_EQ(info.test_images, 500);
  EXPECT_EQ(info.network.feature_dim, 32);
  EXPECT_EQ(info.training.at("steps"), 60);
  EXPECT_DOUBLE_EQ(eval::classifier_accuracy(network, *test, 100, torch::kCPU), info.accuracy);
  // The same data and config: the cached file, untouched. Another config: another file.
  EXPECT_EQ(eval::cached_feature_classifier(cache, *train, *test, description, config, torch::kCPU), path);
  EXPECT_EQ(fs::last_write_time(path), written);
  config.seed = 1;
  EXPECT_NE(eval::cached_feature_classifier(cache, *train, *test, description, config, torch::kCPU), path);

  auto extractor = make_builtin<FeatureExtractor>("classifier", {{"weights", path.string()}});
  EXPECT_EQ(extractor->feature_dim(), 32);
  EXPECT_EQ(extractor->num_logits(), 10);
  const auto batch = test->get_batch({0, 1, 2, 3});
  const auto pixels = io::to_pixels(batch.images);
  const auto out = extractor->extract(pixels);
  EXPECT_EQ(out.features.sizes(), (std::vector<std::int64_t>{4, 32}));
  EXPECT_TRUE(torch::equal(out.features, extractor->extract(pixels).features));  // deterministic
  // RGB and other sizes are converted: a grey image repeated to RGB gives the grey image's features.
  EXPECT_TRUE(torch::allclose(extractor->extract(pixels.expand({-1, 3, -1, -1}).contiguous()).features,
                              out.features, 1e-4, 1e-4));
  EXPECT_EQ(extractor->extract(torch::zeros({2, 3, 64, 48}, torch::kUInt8)).features.size(0), 2);
  for (const auto& result : check_feature_extractor(*extractor))
    EXPECT_TRUE(result.passed) << result.name << ": " << result.detail;
  EXPECT_THROW(make_builtin<FeatureExtractor>("classifier"), Error);  // no weights: the host trains them
  EXPECT_THROW(eval::read_classifier_file(cache / "missing.pt"), ConfigError);
  fs::remove_all(cache);
}

// ---- image sources and the feature pass ----

TEST(ImageSources, ReadFoldersArraysAndDatasetsAsUint8) {
  const auto dir = temp_dir("sources");
  const auto images = torch::rand({5, 3, 16, 16}) * 2 - 1;
  fs::create_directories(dir / "folder");
  for (int i = 0; i < 5; ++i)
    io::write_png_grid(dir / "folder" / ("img" + std::to_string(i) + ".png"), images[i].unsqueeze(0), 1, 0);
  io::write_npy(dir / "samples.npy", images);
  const auto folder = eval::folder_images(dir / "folder");
  const auto array = eval::array_images(dir / "samples.npy");
  EXPECT_EQ(folder->size(), 5);
  EXPECT_EQ(array->size(), 5);
  EXPECT_TRUE(torch::equal(folder->read(1, 3), array->read(1, 3)));  // PNG quantises as the array does
  EXPECT_EQ(array->read(0, 5).scalar_type(), torch::kUInt8);
  EXPECT_EQ(folder->content_hash().size(), 64u);
  // uint8 NHWC arrays (ADM's format) are read too.
  io::write_npy(dir / "nhwc.npy", array->read(0, 5).permute({0, 2, 3, 1}).contiguous());
  EXPECT_TRUE(torch::equal(eval::array_images(dir / "nhwc.npy")->read(0, 5), array->read(0, 5)));
  // Bad input fails at once, naming the problem.
  io::write_npy(dir / "flat.npy", torch::zeros({4, 7}));
  EXPECT_THROW(eval::array_images(dir / "flat.npy"), ConfigError);
  EXPECT_THROW(eval::folder_images(dir / "nothing"), ConfigError);
  fs::create_directories(dir / "empty");
  EXPECT_THROW(eval::folder_images(dir / "empty"), ConfigError);
  io::write_png_grid(dir / "folder" / "z_big.png", torch::zeros({1, 3, 20, 20}), 1, 0);
  EXPECT_THROW(eval::folder_images(dir / "folder"), ConfigError);  // sizes differ: found from the headers
  fs::remove_all(dir);
}

// A fixed linear "network": features are the channel means (grey repeated to RGB), logits their negatives.
class MeanFeatures final : public FeatureExtractor {
 public:
  std::int64_t feature_dim() const override { return 3; }
  std::int64_t num_logits() const override { return 3; }
  std::string fingerprint() const override { return "test-mean"; }
  FeatureOutput extract(const torch::Tensor& images) override {
    ++calls;
    const auto rgb = images.size(1) == 1 ? images.expand({-1, 3, -1, -1}) : images;
    const auto f = rgb.to(torch::kFloat32).mean({2, 3});
    return {f, -f};
  }
  void to(const torch::Device&) override {}
  int calls = 0;
};

// Features that depend on the rest of the batch (batch statistics in eval mode, say).
class BatchDependentFeatures final : public FeatureExtractor {
 public:
  std::int64_t feature_dim() const override { return 3; }
  std::int64_t num_logits() const override { return 0; }
  std::string fingerprint() const override { return "test-batch-dependent"; }
  FeatureOutput extract(const torch::Tensor& images) override {
    const auto f = images.to(torch::kFloat32).mean({2, 3}).narrow(1, 0, 1).expand({-1, 3});
    return {f - f.mean(0, true), {}};
  }
  void to(const torch::Device&) override {}
};

TEST(FeatureExtractorChecks, PassAWellBehavedExtractorAndCatchABatchDependentOne) {
  MeanFeatures good;
  for (const auto& result : check_feature_extractor(good))
    EXPECT_TRUE(result.passed) << result.name << ": " << result.detail;
  BatchDependentFeatures bad;
  const auto results = check_feature_extractor(bad);
  ASSERT_GE(results.size(), 3u);
  EXPECT_FALSE(results[2].passed);
  EXPECT_NE(results[2].detail.find("batch"), std::string::npos);
}

TEST(FeaturePass, StreamsStatisticsAndCachesByContent) {
  const auto dir = temp_dir("pass");
  io::write_npy(dir / "a.npy", torch::rand({23, 3, 8, 8}) * 2 - 1);
  const auto source = eval::array_images(dir / "a.npy");
  MeanFeatures extractor;
  eval::FeaturePassOptions options;
  options.batch_size = 5;
  options.keep_features = true;
  const auto set = eval::extract_features(*source, extractor, options);
  EXPECT_EQ(set.count, 23);
  EXPECT_EQ(extractor.calls, 5);
  const auto all = source->read(0, 23).to(torch::kFloat64).mean({2, 3});
  EXPECT_LT((set.statistics.mean() - all.mean(0)).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(set.logits.defined());
  options.limit = 10;
  EXPECT_EQ(eval::extract_features(*source, extractor, options).count, 10);
  options.limit = 24;
  EXPECT_THROW(eval::extract_features(*source, extractor, options), ConfigError);
  options.limit = 0;
  // Cached: the second pass reads the file; asking for logits it lacks recomputes.
  extractor.calls = 0;
  const auto first = eval::cached_features(dir / "cache", *source, extractor, options);
  const auto second = eval::cached_features(dir / "cache", *source, extractor, options);
  EXPECT_EQ(extractor.calls, 5);
  EXPECT_TRUE(torch::allclose(first.statistics.covariance(), second.statistics.covariance()));
  EXPECT_TRUE(torch::equal(first.features, second.features));
  EXPECT_TRUE(second.provenance.contains("cache"));
  options.keep_logits = true;
  EXPECT_TRUE(eval::cached_features(dir / "cache", *source, extractor, options).logits.defined());
  EXPECT_EQ(extractor.calls, 10);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace latentlab
