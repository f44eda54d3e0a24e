// Built-in datasets (fashion-mnist, image-folder) through the registry: IDX parsing on small gzip files
// written here, the real Debian Fashion-MNIST when installed, and image folders of hand-made PNGs.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/registry/registry.hpp"
#include "support/builtin_plugins.hpp"

using latentlab::Batch;
using latentlab::ConfigError;
using latentlab::Dataset;
using latentlab::registry::Registry;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const Registry& builtin() {
  return latentlab::testing::builtin_plugins();
}

std::shared_ptr<Dataset> make(const std::string& name, const json& params) {
  return builtin().create<Dataset>(name, params, "data.params");
}

// The message of the exception of type E that `body` throws ("" and a test failure when none).
template <class E = latentlab::Error>
std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "nothing was thrown";
  return "";
}

// A fresh folder per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("latentlab_datasets_" + std::to_string(getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

using Bytes = std::vector<std::uint8_t>;

void write_file(const fs::path& file, const Bytes& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Bytes read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_gz(const fs::path& file, const Bytes& bytes) {
  gzFile out = gzopen(file.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(out), Z_OK);
}

void put_u32(Bytes& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

Bytes idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& payload) {
  Bytes out;
  put_u32(out, magic);
  for (auto d : dims) put_u32(out, d);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

constexpr int kPixels = 28 * 28;

// Image k: pixel p = (k * 37 + p) % 256, with pixel 0 = 0 and pixel 1 = 255 in every image.
Bytes test_images(int count) {
  Bytes pixels(static_cast<std::size_t>(count) * kPixels);
  for (int k = 0; k < count; ++k)
    for (int p = 0; p < kPixels; ++p) pixels[k * kPixels + p] = static_cast<std::uint8_t>((k * 37 + p) % 256);
  for (int k = 0; k < count; ++k) pixels[k * kPixels] = 0, pixels[k * kPixels + 1] = 255;
  return pixels;
}

// A Fashion-MNIST-like root with `train-*` files: 3 images labelled 3, 0, 9.
void write_fashion(const fs::path& root, const Bytes& images = idx(0x803, {3, 28, 28}, test_images(3)),
                   const Bytes& labels = idx(0x801, {3}, {3, 0, 9})) {
  write_gz(root / "train-images-idx3-ubyte.gz", images);
  write_gz(root / "train-labels-idx1-ubyte.gz", labels);
}

// A minimal PNG: 8-bit grey (channels 1), RGB (3) or RGBA (4), no filtering, pixels row-major HWC.
Bytes png(int width, int height, int channels, const Bytes& pixels) {
  auto chunk = [](Bytes& out, const std::string& type, const Bytes& data) {
    put_u32(out, static_cast<std::uint32_t>(data.size()));
    Bytes body(type.begin(), type.end());
    body.insert(body.end(), data.begin(), data.end());
    out.insert(out.end(), body.begin(), body.end());
    put_u32(out, static_cast<std::uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
  };
  Bytes raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), pixels.begin() + y * width * channels, pixels.begin() + (y + 1) * width * channels);
  }
  uLongf packed_size = compressBound(raw.size());
  Bytes packed(packed_size);
  compress(packed.data(), &packed_size, raw.data(), raw.size());
  packed.resize(packed_size);
  Bytes header;
  put_u32(header, width);
  put_u32(header, height);
  const std::uint8_t color_type = channels == 1 ? 0 : channels == 3 ? 2 : 6;
  header.insert(header.end(), {8, color_type, 0, 0, 0});
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  chunk(out, "IHDR", header);
  chunk(out, "IDAT", packed);
  chunk(out, "IEND", {});
  return out;
}

// A solid RGB image.
Bytes solid_png(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  Bytes pixels;
  for (int i = 0; i < width * height; ++i) pixels.insert(pixels.end(), {r, g, b});
  return png(width, height, 3, pixels);
}

float pixel_value(std::uint8_t byte) {
  return static_cast<float>(byte) / 127.5f - 1.0f;
}

}  // namespace

TEST(Datasets, BuiltinLibraryLoads) {
  EXPECT_TRUE(builtin().failed().empty());
  EXPECT_EQ(builtin().names("dataset"), (std::vector<std::string>{"fashion-mnist", "image-folder"}));
}

TEST(Datasets, UnknownParameterNamesTheClosestKey) {
  const std::string message = error_of<ConfigError>([] { make("fashion-mnist", {{"resolutoin", 32}}); });
  EXPECT_NE(message.find("resolutoin"), std::string::npos) << message;
  EXPECT_NE(message.find("\"resolution\""), std::string::npos) << message;
}

// ---- fashion-mnist on small IDX files ----

using FashionMnistIdx = TempDirTest;

TEST_F(FashionMnistIdx, ReadsPixelsAndLabelsExactly) {
  write_fashion(dir_);
  const auto ds = make("fashion-mnist", {{"root", dir_.string()}, {"resolution", 28}});
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->channels(), 1);
  EXPECT_EQ(ds->resolution(), 28);
  EXPECT_EQ(ds->num_classes(), 10);
  const auto names = ds->class_names();
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "T-shirt/top");
  EXPECT_EQ(names[9], "Ankle boot");

  const Batch batch = ds->get_batch({2, 0, 1});
  ASSERT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(batch.images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(batch.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(std::vector<std::int64_t>(batch.labels.data_ptr<std::int64_t>(),
                                      batch.labels.data_ptr<std::int64_t>() + 3),
            (std::vector<std::int64_t>{9, 3, 0}));
  const Bytes pixels = test_images(3);
  const int order[] = {2, 0, 1};
  const torch::Tensor flat = batch.images.reshape({3, kPixels});
  const auto images = flat.accessor<float, 2>();
  for (int b = 0; b < 3; ++b)
    for (int p = 0; p < kPixels; ++p)
      ASSERT_EQ(images[b][p], pixel_value(pixels[order[b] * kPixels + p])) << "image " << b << " pixel " << p;
  EXPECT_EQ(images[0][0], -1.0f);  // byte 0
  EXPECT_EQ(images[0][1], 1.0f);   // byte 255
}

TEST_F(FashionMnistIdx, PadsToTheCentreWithBackground) {
  write_fashion(dir_);
  const auto native = make("fashion-mnist", {{"root", dir_.string()}, {"resolution", 28}});
  const auto padded = make("fashion-mnist", {{"root", dir_.string()}});  // default: 32, pad
  const torch::Tensor image = padded->get_batch({1}).images;             // [1, 1, 32, 32]
  ASSERT_EQ(image.sizes(), (std::vector<std::int64_t>{1, 1, 32, 32}));
  EXPECT_TRUE(torch::equal(image.slice(2, 2, 30).slice(3, 2, 30), native->get_batch({1}).images));
  torch::Tensor border = torch::ones({32, 32}, torch::kBool);
  border.slice(0, 2, 30).slice(1, 2, 30).fill_(false);
  EXPECT_TRUE(image[0][0].masked_select(border).eq(-1.0f).all().item<bool>());
  EXPECT_EQ(image.masked_select(border.expand({1, 1, 32, 32})).numel(), 32 * 32 - 28 * 28);

  // An odd margin: the extra pixel goes right and bottom.
  const auto odd = make("fashion-mnist", {{"root", dir_.string()}, {"resolution", 29}});
  EXPECT_TRUE(torch::equal(odd->get_batch({1}).images.slice(2, 0, 28).slice(3, 0, 28),
                           native->get_batch({1}).images));
}

TEST_F(FashionMnistIdx, ResizesAndRepeatsChannels) {
  write_fashion(dir_);
  for (const int resolution : {16, 56}) {
    const auto ds =
        make("fashion-mnist",
             {{"root", dir_.string()}, {"resolution", resolution}, {"fit", "resize"}, {"channels", 3}});
    EXPECT_EQ(ds->channels(), 3);
    const torch::Tensor images = ds->get_batch({0, 1}).images;
    ASSERT_EQ(images.sizes(), (std::vector<std::int64_t>{2, 3, resolution, resolution}));
    EXPECT_TRUE(torch::equal(images[0][0], images[0][2]));
    EXPECT_GE(images.min().item<float>(), -1.0f);
    EXPECT_LE(images.max().item<float>(), 1.0f);
  }
  // Shrinking by 2 averages 2 x 2 blocks (area interpolation).
  const auto native = make("fashion-mnist", {{"root", dir_.string()}, {"resolution", 28}});
  const auto half = make("fashion-mnist", {{"root", dir_.string()}, {"resolution", 14}, {"fit", "resize"}});
  const torch::Tensor expected = torch::avg_pool2d(native->get_batch({2}).images, 2);
  EXPECT_TRUE(torch::allclose(half->get_batch({2}).images, expected, 1e-6, 1e-6));
}

TEST_F(FashionMnistIdx, LimitKeepsTheFirstExamples) {
  write_fashion(dir_);
  const auto ds = make("fashion-mnist", {{"root", dir_.string()}, {"limit", 2}});
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->get_batch({1}).labels.item<std::int64_t>(), 0);
  EXPECT_EQ(make("fashion-mnist", {{"root", dir_.string()}, {"limit", 100}})->size(), 3);
}

TEST_F(FashionMnistIdx, ReadsUncompressedFilesToo) {
  write_file(dir_ / "train-images-idx3-ubyte", idx(0x803, {3, 28, 28}, test_images(3)));
  write_file(dir_ / "train-labels-idx1-ubyte", idx(0x801, {3}, {3, 0, 9}));
  EXPECT_EQ(make("fashion-mnist", {{"root", dir_.string()}})->size(), 3);
}

TEST_F(FashionMnistIdx, OutOfRangeIndexIsAnError) {
  write_fashion(dir_);
  const auto ds = make("fashion-mnist", {{"root", dir_.string()}});
  std::string message = error_of([&] { ds->get_batch({0, 3}); });
  EXPECT_NE(message.find("index 3"), std::string::npos) << message;
  EXPECT_NE(message.find("0..2"), std::string::npos) << message;
  message = error_of([&] { ds->get_batch({-1}); });
  EXPECT_NE(message.find("index -1"), std::string::npos) << message;
  EXPECT_EQ(ds->get_batch({}).images.size(0), 0);
}

TEST_F(FashionMnistIdx, TruncatedImagesNameTheFileAndTheFix) {
  Bytes short_payload = test_images(3);
  short_payload.resize(short_payload.size() - 100);
  write_fashion(dir_, idx(0x803, {3, 28, 28}, short_payload));
  const std::string message = error_of([&] { make("fashion-mnist", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("train-images-idx3-ubyte.gz is truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("3 x 28 x 28 = 2352"), std::string::npos) << message;
  EXPECT_NE(message.find("only 2252"), std::string::npos) << message;
  EXPECT_NE(message.find("apt-get install --reinstall dataset-fashion-mnist"), std::string::npos) << message;
}

TEST_F(FashionMnistIdx, CutGzipStreamIsTruncated) {
  write_fashion(dir_);
  const fs::path file = dir_ / "train-images-idx3-ubyte.gz";
  Bytes gz = read_file(file);
  gz.resize(gz.size() / 2);
  write_file(file, gz);
  const std::string message = error_of([&] { make("fashion-mnist", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("train-images-idx3-ubyte.gz is truncated"), std::string::npos) << message;
}

TEST_F(FashionMnistIdx, TrailingBytesAreAnError) {
  Bytes long_payload = test_images(3);
  long_payload.resize(long_payload.size() + 5);
  write_fashion(dir_, idx(0x803, {3, 28, 28}, long_payload));
  const std::string message = error_of([&] { make("fashion-mnist", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("5 more bytes"), std::string::npos) << message;
}

TEST_F(FashionMnistIdx, WrongMagicIsAnError) {
  write_fashion(dir_, idx(0x801, {3, 28, 28}, test_images(3)));
  const std::string message = error_of([&] { make("fashion-mnist", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("train-images-idx3-ubyte.gz has IDX magic number 0x00000801, expected 0x00000803"),
            std::string::npos)
      << message;
}

TEST_F(FashionMnistIdx, ImageAndLabelCountsMustAgree) {
  write_fashion(dir_, idx(0x803, {3, 28, 28}, test_images(3)), idx(0x801, {2}, {1, 2}));
  const std::string message = error_of([&] { make("fashion-mnist", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("holds 3 images"), std::string::npos) << message;
  EXPECT_NE(message.find("holds 2 labels"), std::string::npos) << message;
}

TEST_F(FashionMnistIdx, LabelsMustBeClasses) {
  write_fashion(dir_, idx(0x803, {3, 28, 28}, test_images(3)), idx(0x801, {3}, {1, 10, 2}));
  const std::string message = error_of([&] { make("fashion-mnist", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("label 10 at index 1"), std::string::npos) << message;
}

TEST_F(FashionMnistIdx, MissingDataNamesThePathAndTheFix) {
  std::string message = error_of<ConfigError>([&] {
    make("fashion-mnist", {{"root", (dir_ / "nowhere").string()}});
  });
  EXPECT_NE(message.find("nowhere does not exist"), std::string::npos) << message;
  EXPECT_NE(message.find("apt-get install dataset-fashion-mnist"), std::string::npos) << message;

  write_fashion(dir_);  // train only: the test split is missing
  message = error_of<ConfigError>([&] {
    make("fashion-mnist", {{"root", dir_.string()}, {"split", "test"}});
  });
  EXPECT_NE(message.find((dir_ / "t10k-images-idx3-ubyte.gz").string() + " is missing"), std::string::npos)
      << message;
  EXPECT_NE(message.find("apt-get install dataset-fashion-mnist"), std::string::npos) << message;
}

TEST_F(FashionMnistIdx, ParameterCombinationsAreChecked) {
  write_fashion(dir_);
  std::string message = error_of<ConfigError>([&] {
    make("fashion-mnist", {{"root", dir_.string()}, {"resolution", 16}});
  });
  EXPECT_NE(message.find("set `fit` to \"resize\""), std::string::npos) << message;
  message = error_of<ConfigError>([&] { make("fashion-mnist", {{"root", dir_.string()}, {"channels", 2}}); });
  EXPECT_NE(message.find("channels is 2"), std::string::npos) << message;
}

// ---- fashion-mnist: the real Debian data ----

const char* const kDebianRoot = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnistDebian, SplitsHaveTheirSizesAndBalancedLabels) {
  if (!fs::is_directory(kDebianRoot))
    GTEST_SKIP() << kDebianRoot << " missing (apt-get install dataset-fashion-mnist)";
  EXPECT_EQ(make("fashion-mnist", json::object())->size(), 60000);
  const auto test = make("fashion-mnist", {{"split", "test"}, {"resolution", 28}});
  ASSERT_EQ(test->size(), 10000);
  std::vector<std::int64_t> all(10000);
  for (std::int64_t i = 0; i < 10000; ++i) all[i] = i;
  const Batch batch = test->get_batch(all);
  EXPECT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(batch.labels.min().item<std::int64_t>(), 0);
  EXPECT_EQ(batch.labels.max().item<std::int64_t>(), 9);
  EXPECT_TRUE(torch::bincount(batch.labels).eq(1000).all().item<bool>());  // 1000 per class
  EXPECT_EQ(batch.images.min().item<float>(), -1.0f);
  EXPECT_EQ(batch.images.max().item<float>(), 1.0f);
}

TEST(FashionMnistDebian, LimitChannelsAndResize) {
  if (!fs::is_directory(kDebianRoot))
    GTEST_SKIP() << kDebianRoot << " missing (apt-get install dataset-fashion-mnist)";
  const auto padded = make("fashion-mnist", {{"limit", 100}});
  EXPECT_EQ(padded->size(), 100);
  EXPECT_EQ(padded->get_batch({0, 99, 5}).images.sizes(), (std::vector<std::int64_t>{3, 1, 32, 32}));
  const auto small =
      make("fashion-mnist", {{"limit", 100}, {"channels", 3}, {"fit", "resize"}, {"resolution", 16}});
  const Batch batch = small->get_batch({0, 1, 2, 3});
  EXPECT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{4, 3, 16, 16}));
  EXPECT_GE(batch.images.min().item<float>(), -1.0f);
  EXPECT_LE(batch.images.max().item<float>(), 1.0f);
  EXPECT_TRUE(batch.labels.ge(0).logical_and(batch.labels.lt(10)).all().item<bool>());
  EXPECT_TRUE(torch::equal(batch.labels, padded->get_batch({0, 1, 2, 3}).labels));
}

// ---- image-folder ----

using ImageFolder = TempDirTest;

// root/cat/{a,b}.png, root/dog/sub/C.PNG and a text file that must be ignored.
void write_pets(const fs::path& root) {
  write_file(root / "cat" / "b.png", solid_png(5, 3, 255, 0, 0));
  write_file(root / "cat" / "a.png", solid_png(4, 4, 0, 255, 0));
  write_file(root / "dog" / "sub" / "C.PNG", solid_png(2, 6, 0, 0, 255));
  write_file(root / "dog" / "notes.txt", {'h', 'i'});
}

TEST_F(ImageFolder, FindsImagesRecursivelyAndLabelsBySubFolder) {
  write_pets(dir_);
  const auto ds = make("image-folder", {{"root", dir_.string()}, {"labels", true}, {"resolution", 8}});
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->num_classes(), 2);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"cat", "dog"}));
  const Batch batch = ds->get_batch({0, 1, 2});  // cat/a, cat/b, dog/sub/C
  ASSERT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{3, 3, 8, 8}));
  EXPECT_TRUE(torch::equal(batch.labels, torch::tensor({0, 0, 1}, torch::kInt64)));
  // Solid colours survive cropping and resizing: green, red, blue.
  const torch::Tensor colours = batch.images.mean({2, 3});  // [3, 3]
  EXPECT_TRUE(torch::allclose(
      colours, torch::tensor({{-1.f, 1.f, -1.f}, {1.f, -1.f, -1.f}, {-1.f, -1.f, 1.f}}), 1e-6, 1e-6))
      << colours;
}

TEST_F(ImageFolder, WithoutLabelsThereAreNone) {
  write_pets(dir_);
  write_file(dir_ / "top.png", solid_png(3, 3, 1, 2, 3));
  const auto ds = make("image-folder", {{"root", dir_.string()}});
  EXPECT_EQ(ds->size(), 4);
  EXPECT_EQ(ds->num_classes(), 0);
  EXPECT_TRUE(ds->class_names().empty());
  const Batch batch = ds->get_batch({3});
  EXPECT_FALSE(batch.labels.defined());
  EXPECT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{1, 3, 64, 64}));  // default resolution
}

TEST_F(ImageFolder, CentreCropsThenResizes) {
  // 6 wide x 2 high, grey: columns 0, 50, 100, 150, 200, 250; the centre square is columns 2..3.
  Bytes pixels;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 6; ++x) pixels.push_back(static_cast<std::uint8_t>(50 * x));
  write_file(dir_ / "wide.png", png(6, 2, 1, pixels));
  const auto native = make("image-folder", {{"root", dir_.string()}, {"channels", 1}, {"resolution", 2}});
  const torch::Tensor image = native->get_batch({0}).images;  // [1, 1, 2, 2]
  const float left = pixel_value(100), right = pixel_value(150);
  EXPECT_TRUE(torch::equal(image, torch::tensor({left, right, left, right}).reshape({1, 1, 2, 2}))) << image;

  const auto shrunk = make("image-folder", {{"root", dir_.string()}, {"channels", 1}, {"resolution", 1}});
  EXPECT_FLOAT_EQ(shrunk->get_batch({0}).images.item<float>(), (left + right) / 2);  // area: the mean

  const auto enlarged = make("image-folder", {{"root", dir_.string()}, {"channels", 3}, {"resolution", 7}});
  const torch::Tensor big = enlarged->get_batch({0}).images;
  ASSERT_EQ(big.sizes(), (std::vector<std::int64_t>{1, 3, 7, 7}));
  EXPECT_FLOAT_EQ(big.min().item<float>(), left);  // bilinear stays within the crop's values
  EXPECT_FLOAT_EQ(big.max().item<float>(), right);
  EXPECT_TRUE(torch::equal(big[0][0], big[0][1]));  // grey file, RGB output
}

TEST_F(ImageFolder, OrderIsDeterministic) {
  for (const char* name : {"b.png", "a.png", "c/z.png", "B.png", "c/a.png"})
    write_file(dir_ / name, solid_png(2, 2, static_cast<std::uint8_t>(name[0]), 0, 0));
  const auto first = make("image-folder", {{"root", dir_.string()}, {"resolution", 2}});
  const auto second = make("image-folder", {{"root", dir_.string()}, {"resolution", 2}});
  const std::vector<std::int64_t> all = {0, 1, 2, 3, 4};
  EXPECT_TRUE(torch::equal(first->get_batch(all).images, second->get_batch(all).images));
  // Sorted by path: B.png, a.png, b.png, c/a.png, c/z.png.
  const torch::Tensor red = first->get_batch(all).images.select(1, 0).select(1, 0).select(1, 0);  // [5]
  EXPECT_TRUE(torch::equal(red, torch::tensor({pixel_value('B'), pixel_value('a'), pixel_value('b'),
                                               pixel_value('c'), pixel_value('c')})));
  EXPECT_TRUE(torch::equal(first->get_batch({4, 0}).images[1], first->get_batch({0}).images[0]));
}

TEST_F(ImageFolder, CorruptImageFailsAtConstruction) {
  write_pets(dir_);
  write_file(dir_ / "cat" / "broken.png", {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g', 0, 1, 2, 3, 4});
  const std::string message = error_of([&] { make("image-folder", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find((dir_ / "cat" / "broken.png").string() + " is not a readable image (stb_image: "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("remove or replace it"), std::string::npos) << message;
}

TEST_F(ImageFolder, TruncatedImageFailsWhenDecoded) {
  Bytes noise;
  for (int i = 0; i < 64 * 64 * 3; ++i) noise.push_back(static_cast<std::uint8_t>((i * 7919) % 251));
  Bytes bytes = png(64, 64, 3, noise);
  bytes.resize(bytes.size() / 2);  // the header survives, the pixel data does not
  write_file(dir_ / "half.png", bytes);
  write_file(dir_ / "whole.png", solid_png(2, 2, 0, 0, 0));
  const auto ds = make("image-folder", {{"root", dir_.string()}});
  EXPECT_EQ(ds->get_batch({1}).images.size(0), 1);
  const std::string message = error_of([&] { ds->get_batch({1, 0}); });
  EXPECT_NE(message.find((dir_ / "half.png").string() + " could not be decoded (stb_image: "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("remove or replace the file"), std::string::npos) << message;
}

TEST_F(ImageFolder, LabelsNeedSubFolders) {
  write_pets(dir_);
  write_file(dir_ / "stray.png", solid_png(2, 2, 0, 0, 0));
  const std::string message = error_of<ConfigError>([&] {
    make("image-folder", {{"root", dir_.string()}, {"labels", true}});
  });
  EXPECT_NE(message.find((dir_ / "stray.png").string() + " is directly under root"), std::string::npos)
      << message;
}

TEST_F(ImageFolder, EmptyOrMissingRootIsAConfigError) {
  write_file(dir_ / "readme.txt", {'x'});
  std::string message = error_of<ConfigError>([&] { make("image-folder", {{"root", dir_.string()}}); });
  EXPECT_NE(message.find("no images under"), std::string::npos) << message;
  EXPECT_NE(message.find(".png"), std::string::npos) << message;
  message = error_of<ConfigError>([&] { make("image-folder", {{"root", (dir_ / "nowhere").string()}}); });
  EXPECT_NE(message.find("nowhere does not exist"), std::string::npos) << message;
  message = error_of<ConfigError>([&] { make("image-folder", {{"root", (dir_ / "readme.txt").string()}}); });
  EXPECT_NE(message.find("is not a folder"), std::string::npos) << message;
  message = error_of<ConfigError>([&] { make("image-folder", json::object()); });
  EXPECT_NE(message.find("root"), std::string::npos) << message;
}

// ---- conformance: every built-in dataset passes the checks of `latentlab plugins check` ----

namespace latentlab {
namespace {

void expect_conformant(const Dataset& dataset, const std::string& what) {
  for (const auto& result : check_dataset(dataset))
    EXPECT_TRUE(result.passed) << what << ": " << result.name << ": " << result.detail;
}

TEST_F(FashionMnistIdx, PassesTheDatasetConformanceChecks) {
  write_fashion(dir_);
  expect_conformant(*make("fashion-mnist", {{"root", dir_.string()}}), "fashion-mnist, pad");
  expect_conformant(*make("fashion-mnist",
                          {{"root", dir_.string()}, {"fit", "resize"}, {"resolution", 12}, {"channels", 3}}),
                    "fashion-mnist, resize, 3 channels");
}

TEST_F(ImageFolder, PassesTheDatasetConformanceChecks) {
  write_pets(dir_);
  expect_conformant(*make("image-folder", {{"root", dir_.string()}, {"labels", true}, {"resolution", 8}}),
                    "labels");
  expect_conformant(*make("image-folder", {{"root", dir_.string()}, {"channels", 1}, {"resolution", 5}}),
                    "grey");
}

}  // namespace
}  // namespace latentlab
