#pragma once
// Writing files so that a crash never leaves a half-written one under the final name.
#include <filesystem>
#include <functional>
#include <string>

#include "latentlab/export.hpp"

// Declared here so that code writing plain files does not compile LibTorch's headers.
namespace torch::serialize {
class OutputArchive;
}

namespace latentlab {

// Writes `path` by calling `write(temporary)` on a temporary name in the same folder, flushing it to
// disk, then renaming it over `path`. The old file stays intact until the rename.
LATENTLAB_API void write_atomically(const std::filesystem::path& path,
                                    const std::function<void(const std::filesystem::path&)>& write);

// Writes `text` to `path` atomically; throws Error when it cannot (disk full, ...).
LATENTLAB_API void write_text_atomically(const std::filesystem::path& path, const std::string& text);

// Saves `archive` to `path` atomically.
LATENTLAB_API void save_archive_atomically(torch::serialize::OutputArchive& archive,
                                           const std::filesystem::path& path);

}  // namespace latentlab
