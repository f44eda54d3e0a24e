#pragma once
// SHA-256 (FIPS 180-4), for content hashes: cache keys of trained feature networks and reference
// statistics, and identifying weight files (hub file names carry their hash's first 8 hex digits).
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "latentlab/export.hpp"

namespace latentlab::io {

class LATENTLAB_API Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& text) { update(text.data(), text.size()); }
  // The digest as 64 lower-case hex digits. The hasher is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);

  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  // bytes
};

// The SHA-256 of a file's bytes (hex). Throws Error naming the file when it cannot be read.
LATENTLAB_API std::string sha256_file(const std::filesystem::path& path);

}  // namespace latentlab::io
