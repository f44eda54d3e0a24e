#include "latentlab/io/atomic_file.hpp"

#include <torch/torch.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "latentlab/error.hpp"

namespace latentlab {

namespace {

// Flushes a file (or folder) to disk; false when that failed.
bool sync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced;
}

}  // namespace

void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path&)>& write) {
  const auto folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(folder);
  const auto temporary = folder / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()));
  try {
    write(temporary);
    if (!sync_path(temporary, O_RDONLY)) throw Error("flushing it to disk failed (disk full?)");
    std::filesystem::rename(temporary, path);
    sync_path(folder, O_RDONLY | O_DIRECTORY);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error("could not write " + path.string() + ": " + e.what());
  }
}

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  write_atomically(path, [&](const std::filesystem::path& temporary) {
    std::ofstream out(temporary);
    out << text;
    out.close();
    if (!out) throw Error("writing failed (disk full?)");
  });
}

void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  write_atomically(path,
                   [&](const std::filesystem::path& temporary) { archive.save_to(temporary.string()); });
}

}  // namespace latentlab
