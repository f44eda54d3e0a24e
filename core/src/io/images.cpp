#include "latentlab/io/images.hpp"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/io/atomic_file.hpp"

namespace latentlab::io {
namespace {

// NumPy's dtype strings for the tensors we write.
const char* npy_descr(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return "<f4";
    case torch::kFloat64:
      return "<f8";
    case torch::kInt64:
      return "<i8";
    case torch::kUInt8:
      return "|u1";
    default:
      return nullptr;
  }
}

}  // namespace

torch::Tensor to_pixels(const torch::Tensor& images) {
  const auto levels = ((images.detach().to(torch::kCPU, torch::kFloat32) + 1.0) * 127.5).clamp(0.0, 255.0);
  return (levels + 1e-3).floor().clamp_max(255.0).to(torch::kUInt8);
}

torch::Tensor read_image_u8(const std::filesystem::path& path, std::int64_t channels) {
  if (channels != 1 && channels != 3) throw Error("read_image: channels must be 1 or 3");
  if (!std::filesystem::exists(path)) throw Error("image file " + path.string() + " does not exist");
  int width = 0, height = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.string().c_str(), &width, &height, &file_channels, static_cast<int>(channels)),
      stbi_image_free);
  if (!pixels)
    throw Error(path.string() + " could not be decoded as an image (stb_image: " +
                std::string(stbi_failure_reason() ? stbi_failure_reason() : "unknown") +
                "); use PNG, JPEG, BMP, GIF or TGA");
  return torch::from_blob(pixels.get(), {height, width, channels}, torch::kUInt8).permute({2, 0, 1}).clone();
}

ImageFileInfo image_file_info(const std::filesystem::path& path) {
  int width = 0, height = 0, channels = 0;
  if (!stbi_info(path.string().c_str(), &width, &height, &channels))
    throw Error(path.string() + " is not an image stb_image reads (PNG, JPEG, BMP, GIF or TGA)");
  return {channels <= 2 ? 1 : 3, height, width};
}

torch::Tensor read_image(const std::filesystem::path& path, std::int64_t channels) {
  return read_image_u8(path, channels).unsqueeze(0).to(torch::kFloat32).div(127.5).sub(1.0);
}

void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, std::int64_t columns,
                    std::int64_t border) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3))
    throw Error("write_png_grid: expected images [N, 1 or 3, H, W]");
  const auto n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (columns <= 0) columns = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(std::sqrt(n))));
  const auto rows = (n + columns - 1) / columns;
  const auto height = rows * (h + border) + border, width = columns * (w + border) + border;
  auto canvas = torch::zeros({height, width, c}, torch::kUInt8);
  const auto pixels = to_pixels(images).permute({0, 2, 3, 1});  // [N, H, W, C]
  using torch::indexing::Slice;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto top = border + (i / columns) * (h + border), left = border + (i % columns) * (w + border);
    canvas.index_put_({Slice(top, top + h), Slice(left, left + w)}, pixels[i]);
  }
  canvas = canvas.contiguous();
  write_atomically(path, [&](const std::filesystem::path& temporary) {
    if (!stbi_write_png(temporary.string().c_str(), static_cast<int>(width), static_cast<int>(height),
                        static_cast<int>(c), canvas.data_ptr<std::uint8_t>(), static_cast<int>(width * c)))
      throw Error("could not write " + path.string() + " (stb_image_write failed; is the disk full?)");
  });
}

void write_npy(const std::filesystem::path& path, const torch::Tensor& array) {
  const auto data = array.detach().to(torch::kCPU).contiguous();
  const char* descr = npy_descr(data.scalar_type());
  if (descr == nullptr)
    throw Error("write_npy: unsupported dtype " + std::string(c10::toString(data.scalar_type())));
  std::ostringstream shape;
  shape << "(";
  // As NumPy writes it: (6, 1, 8, 8), (5,), ().
  for (std::int64_t d = 0; d < data.dim(); ++d) shape << (d > 0 ? ", " : "") << data.size(d);
  if (data.dim() == 1) shape << ",";
  shape << ")";
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape.str() + ", }";
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to a multiple of 64
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  write_atomically(path, [&](const std::filesystem::path& temporary) {
    std::ofstream out(temporary, std::ios::binary);
    const unsigned char preamble[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(reinterpret_cast<const char*>(preamble), 8);
    const auto length = static_cast<std::uint16_t>(header.size());
    const unsigned char length_bytes[2] = {static_cast<unsigned char>(length & 0xff),
                                           static_cast<unsigned char>(length >> 8)};
    out.write(reinterpret_cast<const char*>(length_bytes), 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(static_cast<const char*>(data.data_ptr()), static_cast<std::streamsize>(data.nbytes()));
    if (!out) throw Error("could not write " + path.string() + " (is the disk full?)");
  });
}

NpyReader::NpyReader(const std::filesystem::path& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("array file " + path.string() + " does not exist or cannot be read");
  const auto fail = [&](const std::string& why) {
    return Error(path.string() + " is not a .npy array LatentLab reads: " + why);
  };
  unsigned char preamble[10];
  if (!in.read(reinterpret_cast<char*>(preamble), 10) || std::memcmp(preamble, "\x93NUMPY", 6) != 0)
    throw fail("no NumPy magic at the start");
  std::size_t length = preamble[8] | (preamble[9] << 8);
  std::size_t header_start = 10;
  if (preamble[6] >= 2) {  // format 2.0/3.0: a 4-byte header length
    unsigned char more[2];
    if (!in.read(reinterpret_cast<char*>(more), 2)) throw fail("truncated header");
    length |= static_cast<std::size_t>(more[0]) << 16 | static_cast<std::size_t>(more[1]) << 24;
    header_start = 12;
  }
  std::string header(length, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(length))) throw fail("truncated header");
  data_offset_ = static_cast<std::int64_t>(header_start + length);
  std::smatch match;
  if (!std::regex_search(header, match, std::regex("'descr':\\s*'([^']*)'")))
    throw fail("no 'descr' in the header");
  const std::string descr = match[1];
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw fail("Fortran order is not supported");
  if (!std::regex_search(header, match, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw fail("no 'shape' in the header");
  std::stringstream dims(match[1].str());
  for (std::string item; std::getline(dims, item, ',');)
    if (item.find_first_not_of(" ") != std::string::npos) shape_.push_back(std::stoll(item));
  if (descr == "<f4")
    dtype_ = torch::kFloat32;
  else if (descr == "<f8")
    dtype_ = torch::kFloat64;
  else if (descr == "<i8")
    dtype_ = torch::kInt64;
  else if (descr == "|u1" || descr == "<u1")
    dtype_ = torch::kUInt8;
  else
    throw fail("dtype '" + descr + "' (supported: float32, float64, int64, uint8)");
  std::int64_t bytes = static_cast<std::int64_t>(c10::elementSize(dtype_));
  for (auto d : shape_) bytes *= d;
  if (static_cast<std::int64_t>(std::filesystem::file_size(path)) < data_offset_ + bytes)
    throw fail("the data is shorter than its shape says (truncated file?)");
}

torch::Tensor NpyReader::read_rows(std::int64_t start, std::int64_t count) const {
  if (shape_.empty()) throw Error(path_.string() + " holds a scalar, not rows");
  if (start < 0 || count < 0 || start + count > shape_[0])
    throw Error("rows [" + std::to_string(start) + ", " + std::to_string(start + count) + ") are outside " +
                path_.string() + " (" + std::to_string(shape_[0]) + " rows)");
  std::vector<std::int64_t> shape = shape_;
  shape[0] = count;
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype_));
  const std::int64_t row_bytes = count > 0 ? static_cast<std::int64_t>(tensor.nbytes()) / count : 0;
  std::ifstream in(path_, std::ios::binary);
  in.seekg(data_offset_ + start * row_bytes);
  if (!in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes())))
    throw Error("reading rows of " + path_.string() + " failed (truncated file?)");
  return tensor;
}

torch::Tensor NpyReader::read_all() const {
  auto tensor = torch::empty(shape_, torch::TensorOptions().dtype(dtype_));
  std::ifstream in(path_, std::ios::binary);
  in.seekg(data_offset_);
  if (!in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes())))
    throw Error("reading " + path_.string() + " failed (truncated file?)");
  return tensor;
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  return NpyReader(path).read_all();
}

}  // namespace latentlab::io
