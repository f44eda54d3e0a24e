#include "idx_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "latentlab/error.hpp"

namespace latentlab::datasets {
namespace {

constexpr std::uint32_t kUbyteType = 0x08;
constexpr std::size_t kChunk = std::size_t{1} << 24;       // bytes per gzread call (it takes an int)
constexpr std::size_t kReserveCap = std::size_t{1} << 28;  // never trust a header for more up front

struct GzClose {
  void operator()(gzFile_s* in) const { gzclose(in); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

std::string hex32(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", value);
  return text;
}

class IdxReader {
 public:
  IdxReader(const std::filesystem::path& file, std::string fix) : file_(file), fix_(std::move(fix)) {
    in_.reset(gzopen(file.c_str(), "rb"));
    if (!in_) fail("cannot be opened (" + std::string(std::strerror(errno)) + ")");
    gzbuffer(in_.get(), 1 << 20);
  }

  // Reads up to `size` bytes into `out`; fewer only at the end of the stream.
  std::size_t read(std::uint8_t* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const auto want = static_cast<unsigned>(std::min(size - done, kChunk));
      const int got = gzread(in_.get(), out + done, want);
      if (got < 0) fail("cannot be read (zlib: " + zlib_error() + ")");
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

  // Bytes left before the end of the stream (reads them).
  std::size_t count_rest() {
    std::vector<std::uint8_t> scratch(1 << 16);
    std::size_t total = 0;
    for (std::size_t got; (got = read(scratch.data(), scratch.size())) > 0;) total += got;
    return total;
  }

  // " (zlib: unexpected end of file)" when the compressed stream itself was cut short, else "".
  std::string stream_note() {
    int code = Z_OK;
    gzerror(in_.get(), &code);
    return code == Z_OK ? "" : " (zlib: " + zlib_error() + ")";
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(file_.string() + " " + problem + "; " + fix_);
  }

 private:
  std::string zlib_error() {
    int code = Z_OK;
    const char* message = gzerror(in_.get(), &code);
    std::string text = message && *message ? message : "error " + std::to_string(code);
    const std::string own_prefix = file_.string() + ": ";  // zlib repeats the path
    return text.rfind(own_prefix, 0) == 0 ? text.substr(own_prefix.size()) : text;
  }

  std::filesystem::path file_;
  std::string fix_;
  GzFile in_;
};

std::uint32_t big_endian_u32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

}  // namespace

torch::Tensor read_idx_ubyte(const std::filesystem::path& file, int expected_rank, const std::string& fix) {
  IdxReader reader(file, fix);
  const std::uint32_t expected_magic = (kUbyteType << 8) | static_cast<std::uint32_t>(expected_rank);

  std::uint8_t magic_bytes[4];
  const std::size_t magic_read = reader.read(magic_bytes, 4);
  if (magic_read < 4)
    reader.fail("is not an IDX file: it holds " + std::to_string(magic_read) +
                " bytes, fewer than the 4-byte magic number" + reader.stream_note());
  const std::uint32_t magic = big_endian_u32(magic_bytes);
  if (magic != expected_magic)
    reader.fail("has IDX magic number " + hex32(magic) + ", expected " + hex32(expected_magic) +
                " (unsigned bytes, " + std::to_string(expected_rank) + " dimension" +
                (expected_rank == 1 ? "" : "s") + ")");

  std::vector<std::uint8_t> dim_bytes(4 * static_cast<std::size_t>(expected_rank));
  if (reader.read(dim_bytes.data(), dim_bytes.size()) < dim_bytes.size())
    reader.fail("is truncated: it ends inside its header (" + std::to_string(expected_rank) +
                " dimensions expected)" + reader.stream_note());
  std::vector<std::int64_t> sizes;
  std::string shape;  // "60000 x 28 x 28"
  std::uint64_t expected_bytes = 1;
  for (int d = 0; d < expected_rank; ++d) {
    const std::uint32_t size = big_endian_u32(dim_bytes.data() + 4 * d);
    sizes.push_back(size);
    shape += (d ? " x " : "") + std::to_string(size);
    if (size != 0 && expected_bytes > std::numeric_limits<std::int64_t>::max() / size)
      reader.fail("has an impossible header: dimensions " + shape + " overflow 64 bits");
    expected_bytes *= size;
  }

  // Read in chunks rather than trusting the header with one huge allocation.
  auto data = std::make_unique<std::vector<std::uint8_t>>();
  data->reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected_bytes, kReserveCap)));
  while (data->size() < expected_bytes) {
    const std::size_t old_size = data->size();
    const std::size_t want = std::min<std::size_t>(expected_bytes - old_size, kChunk);
    data->resize(old_size + want);
    const std::size_t got = reader.read(data->data() + old_size, want);
    data->resize(old_size + got);
    if (got < want) break;
  }
  if (data->size() < expected_bytes)
    reader.fail("is truncated: its header promises " + shape + " = " + std::to_string(expected_bytes) +
                " bytes of data, but only " + std::to_string(data->size()) + " are there" +
                reader.stream_note());
  if (const std::size_t extra = reader.count_rest(); extra > 0)
    reader.fail("is malformed: its header promises " + shape + " = " + std::to_string(expected_bytes) +
                " bytes of data, but " + std::to_string(extra) + " more bytes follow them");

  // Hand the buffer to the tensor without copying it.
  auto* owned = data.release();
  return torch::from_blob(
      owned->data(), sizes, [owned](void*) { delete owned; }, torch::kUInt8);
}

}  // namespace latentlab::datasets
