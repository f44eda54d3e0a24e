#include <cstdlib>
#include <sstream>

#include "latentlab/registry/registry.hpp"

#ifndef LATENTLAB_PLUGIN_DIR_FROM_BIN
#error "LATENTLAB_PLUGIN_DIR_FROM_BIN must be defined by the build"
#endif

namespace latentlab::registry {
namespace fs = std::filesystem;

fs::path builtin_plugin_dir() {
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) return {};
  return (exe.parent_path() / LATENTLAB_PLUGIN_DIR_FROM_BIN).lexically_normal();
}

std::vector<fs::path> env_plugin_dirs() {
  std::vector<fs::path> dirs;
  const char* value = std::getenv("LATENTLAB_PLUGIN_PATH");
  if (!value) return dirs;
  std::stringstream stream(value);
  std::string item;
  while (std::getline(stream, item, ':'))
    if (!item.empty()) dirs.emplace_back(item);
  return dirs;
}

void load_standard_locations(Registry& registry, const std::vector<fs::path>& extra_dirs) {
  const fs::path builtin = builtin_plugin_dir();
  if (!builtin.empty()) registry.load_directory(builtin, true);
  for (const auto& dir : env_plugin_dirs()) registry.load_directory(dir, true);
  for (const auto& dir : extra_dirs) {
    std::error_code ec;
    if (fs::is_regular_file(dir, ec))
      registry.load_library(dir);  // a single .so is accepted too
    else
      registry.load_directory(dir, true);
  }
}

}  // namespace latentlab::registry
