// Image and array files: the PNG grid and .npy files `latentlab sample` writes.
#include <gtest/gtest.h>

#include <fstream>

#include "latentlab/error.hpp"
#include "latentlab/io/images.hpp"

namespace latentlab {
namespace {

std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("latentlab_images_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(Npy, RoundTripsEveryDtypeWithAnAlignedHeader) {
  const auto dir = temp_dir("npy");
  for (const auto& tensor :
       {torch::arange(24, torch::kFloat32).view({2, 3, 4}) - 7.5, torch::linspace(-1, 1, 5, torch::kFloat64),
        torch::arange(6, torch::kInt64).view({3, 2}), torch::arange(7, torch::kUInt8)}) {
    const auto path = dir / "a.npy";
    io::write_npy(path, tensor);
    EXPECT_TRUE(torch::equal(io::read_npy(path), tensor));
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    ASSERT_EQ(bytes.compare(0, 6, "\x93NUMPY"), 0);
    const std::size_t header = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9])
                                                                          << 8;
    EXPECT_EQ((10 + header) % 64, 0u);  // NumPy aligns the data to 64 bytes
    EXPECT_EQ(bytes.size(), 10 + header + tensor.nbytes());
    EXPECT_NE(bytes.find("'fortran_order': False"), std::string::npos);
  }
  // A 1-d shape is written as (5,), like NumPy.
  io::write_npy(dir / "b.npy", torch::zeros({5}));
  std::ifstream in(dir / "b.npy", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(bytes.find("'shape': (5,)"), std::string::npos);
}

TEST(Npy, CorruptFilesAreClearErrors) {
  const auto dir = temp_dir("npy_bad");
  EXPECT_THROW(io::read_npy(dir / "missing.npy"), Error);
  std::ofstream(dir / "text.npy") << "not an array";
  try {
    io::read_npy(dir / "text.npy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no NumPy magic"), std::string::npos) << e.what();
  }
  io::write_npy(dir / "cut.npy", torch::zeros({100}));
  std::filesystem::resize_file(dir / "cut.npy", 200);
  EXPECT_THROW(io::read_npy(dir / "cut.npy"), Error);
}

TEST(PngGrid, WritesAReadableGrid) {
  const auto dir = temp_dir("png");
  // Three 4x4 RGB images: black, white, mid-grey; 2 columns, 2-pixel borders -> 14 x 14.
  auto images =
      torch::stack({torch::full({3, 4, 4}, -1.0), torch::full({3, 4, 4}, 1.0), torch::zeros({3, 4, 4})});
  io::write_png_grid(dir / "grid.png", images, 2);
  const auto back = io::read_image(dir / "grid.png", 3);
  ASSERT_EQ(back.sizes(), (std::vector<std::int64_t>{1, 3, 14, 14}));
  EXPECT_FLOAT_EQ(back[0][0][2][2].item<float>(), -1.0f);            // first image
  EXPECT_FLOAT_EQ(back[0][1][2][8].item<float>(), 1.0f);             // second image
  EXPECT_NEAR(back[0][2][8][2].item<float>(), 0.0f, 1.0f / 127.5f);  // third image: 127.5 rounds to 128
  EXPECT_THROW(io::read_image(dir / "missing.png", 3), Error);
  std::ofstream(dir / "bad.png") << "not a png";
  EXPECT_THROW(io::read_image(dir / "bad.png", 1), Error);
}

}  // namespace
}  // namespace latentlab
