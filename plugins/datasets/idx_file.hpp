#pragma once
// Reading IDX files (the MNIST / Fashion-MNIST array format), gzip-compressed or not.
//
// Layout: a 4-byte magic 0x00 0x00 <type> <rank>, then `rank` big-endian uint32 dimensions, then the
// elements in row-major order. Only unsigned bytes (type 0x08) are supported: images have magic
// 0x00000803 (rank 3: count, rows, cols), labels 0x00000801 (rank 1: count).
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

namespace latentlab::datasets {

// Reads a whole ubyte IDX file of rank `expected_rank` into a uint8 tensor shaped like its header.
// The file may be gzip-compressed (zlib reads plain files too). Throws Error naming the file for a
// wrong magic, an unreadable stream, or a payload that is shorter or longer than the header says;
// `fix` (e.g. "reinstall the package") is appended to those messages.
torch::Tensor read_idx_ubyte(const std::filesystem::path& file, int expected_rank, const std::string& fix);

}  // namespace latentlab::datasets
