#include "latentlab/registry/registry.hpp"

#include <dlfcn.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstring>

#include "elf_file.hpp"
#include "latentlab/io/sha256.hpp"
#include "latentlab/strings.hpp"
#include "probe.hpp"

namespace latentlab::registry {
namespace fs = std::filesystem;

namespace {

// Compares the ABI constant read from a plugin file with the host's. Returns "" when they match,
// else what differs and how to fix it.
std::string check_abi(const std::string& bytes) {
  PluginAbi abi{};
  std::uint64_t magic = 0;
  if (bytes.size() >= sizeof magic) std::memcpy(&magic, bytes.data(), sizeof magic);
  if (bytes.size() < 16 || magic != kPluginAbiMagic)
    return std::string("corrupt plugin: '") + LATENTLAB_PLUGIN_ABI_SYMBOL +
           "' does not start with the magic bytes";
  std::uint32_t api_version = 0, struct_size = 0;
  std::memcpy(&api_version, bytes.data() + offsetof(PluginAbi, api_version), sizeof api_version);
  std::memcpy(&struct_size, bytes.data() + offsetof(PluginAbi, struct_size), sizeof struct_size);
  if (api_version != LATENTLAB_SDK_API_VERSION)
    return "incompatible SDK API version (plugin: " + std::to_string(api_version) +
           ", host: " + std::to_string(LATENTLAB_SDK_API_VERSION) +
           "); rebuild the plugin against this LatentLab's SDK";
  if (struct_size != sizeof(PluginAbi) || bytes.size() < sizeof(PluginAbi))
    return "corrupt plugin ABI record (size " + std::to_string(struct_size) + ", expected " +
           std::to_string(sizeof(PluginAbi)) + "); rebuild the plugin against this LatentLab's SDK";
  std::memcpy(&abi, bytes.data(), sizeof abi);
  const std::string torch(abi.torch_version, strnlen(abi.torch_version, sizeof abi.torch_version));
  if (abi.torch_version_major != TORCH_VERSION_MAJOR || abi.torch_version_minor != TORCH_VERSION_MINOR)
    return "built against LibTorch " + torch +
           " but the host uses LibTorch " TORCH_VERSION
           "; major.minor must match: rebuild the plugin against the host's LibTorch";
  if (abi.cxx11_abi != _GLIBCXX_USE_CXX11_ABI)
    return "built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(abi.cxx11_abi) + " but the host uses " +
           std::to_string(_GLIBCXX_USE_CXX11_ABI) + "; rebuild the plugin with the host's LibTorch flags";
  if (abi.json_version_major != NLOHMANN_JSON_VERSION_MAJOR ||
      abi.json_version_minor != NLOHMANN_JSON_VERSION_MINOR)
    return "built against nlohmann_json " + std::to_string(abi.json_version_major) + "." +
           std::to_string(abi.json_version_minor) + " but the host uses " +
           std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_MINOR) +
           "; rebuild the plugin against the same nlohmann_json";
  return {};
}

}  // namespace

struct Registry::Handles {
  std::vector<boost::dll::shared_library> libraries;
};

Registry::Registry(RegistryOptions options) : options_(options), handles_(std::make_unique<Handles>()) {}
// The handles close here, but every library was opened with RTLD_NODELETE: its code stays mapped,
// so plugin objects that outlive the registry remain valid.
Registry::~Registry() = default;

void Registry::fail(const fs::path& file, std::string reason, std::string name,
                    std::vector<std::string> provides) {
  spdlog::debug("plugin library {} not loaded: {}", file.string(), reason);
  failed_.push_back({file, std::move(reason), std::move(name), std::move(provides)});
}

void Registry::load_directory(const fs::path& dir, bool must_exist) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (must_exist)
      fail(dir,
           "plugin folder does not exist or is not a folder; check --plugin-path / "
           "LATENTLAB_PLUGIN_PATH");
    return;
  }
  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(dir, ec))
    if (item.path().extension() == ".so") files.push_back(item.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) load_library(file);
}

bool Registry::load_library(const fs::path& file_given) {
  std::error_code ec;
  const fs::path file = fs::weakly_canonical(fs::absolute(file_given), ec);
  const auto same_file = [&](const fs::path& p) { return p == file; };
  if (std::any_of(loaded_.begin(), loaded_.end(), [&](const auto& l) { return same_file(l.path); }) ||
      std::any_of(failed_.begin(), failed_.end(), [&](const auto& f) { return same_file(f.path); }))
    return false;  // already seen (the same folder listed twice, or a symlink)

  if (!fs::is_regular_file(file, ec)) {
    fail(file, "not a regular file");
    return false;
  }

  // 1. Read what it was built against from the file itself; nothing of it runs before this passes.
  try {
    const ElfFile elf(file);
    if (!elf.exports(LATENTLAB_PLUGIN_ENTRY_SYMBOL)) {
      fail(file, std::string("not a LatentLab plugin: it does not export '") + LATENTLAB_PLUGIN_ENTRY_SYMBOL +
                     "' (define it with LATENTLAB_PLUGIN(...) from <latentlab/plugin.hpp>)");
      return false;
    }
    if (!elf.exports(LATENTLAB_PLUGIN_ABI_SYMBOL)) {
      fail(file, std::string("it exports '") + LATENTLAB_PLUGIN_ENTRY_SYMBOL + "' but not '" +
                     LATENTLAB_PLUGIN_ABI_SYMBOL +
                     "': built with an older LatentLab SDK, or the entry point was written by hand; "
                     "rebuild it with LATENTLAB_PLUGIN(...) from this LatentLab's <latentlab/plugin.hpp>");
      return false;
    }
    const auto abi_bytes = elf.object_bytes(LATENTLAB_PLUGIN_ABI_SYMBOL, 16);
    if (!abi_bytes) {
      fail(file,
           std::string("corrupt plugin: '") + LATENTLAB_PLUGIN_ABI_SYMBOL + "' has no readable contents");
      return false;
    }
    if (const std::string mismatch = check_abi(*abi_bytes); !mismatch.empty()) {
      fail(file, mismatch);
      return false;
    }
  } catch (const std::exception& e) {
    fail(file, std::string("not a shared library (") + e.what() + ")");
    return false;
  }

  // 2. Load it in a throwaway child process first: a library that crashes, aborts or hangs while
  // loading is reported instead of taking the host down.
  if (options_.probe) {
    if (std::string crash = probe_in_child(file, options_.probe_timeout); !crash.empty()) {
      fail(file, std::move(crash));
      return false;
    }
  }

  // 3. Load it. RTLD_NOW: a missing symbol is reported here, not as a crash later. RTLD_NODELETE:
  // never unloaded.
  const auto mode = static_cast<boost::dll::load_mode::type>(RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  boost::dll::fs::error_code load_error;
  boost::dll::shared_library library(file, mode, load_error);
  if (load_error || !library.is_loaded()) {
    // Boost's error code loses the loader's message; ask the loader again for it.
    std::string why = load_error.message();
    if (void* h = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      ::dlclose(h);
    } else if (const char* text = ::dlerror()) {
      why = text;
    }
    fail(file, "the dynamic loader refused it: " + why +
                   " (often a dependency that is not installed, or a plugin built against another "
                   "LatentLab or LibTorch)");
    return false;
  }

  // 4. Read and check its description before calling anything else in it.
  const PluginDescription* description = nullptr;
  try {
    auto& entry = library.get<PluginEntryFn>(LATENTLAB_PLUGIN_ENTRY_SYMBOL);
    description = entry();
  } catch (const std::exception& e) {
    fail(file, std::string("its entry point failed: ") + e.what());
    return false;
  } catch (...) {
    fail(file, "its entry point threw a non-standard exception");
    return false;
  }
  if (!description) {
    fail(file, "its entry point returned no description");
    return false;
  }
  // Its versions were checked from the file (step 1); the description adds who it is.
  const std::string name = description->name ? description->name : "";
  const std::string torch_version =
      description->abi
          ? std::string(description->abi->torch_version,
                        strnlen(description->abi->torch_version, sizeof description->abi->torch_version))
          : "?";
  if (!description->register_factories) {
    fail(file, "its description has no register function", name);
    return false;
  }

  // 5. Let it register into a staging registrar; nothing reaches the catalogue unless all is well.
  Registrar staging;
  try {
    description->register_factories(staging);
  } catch (const std::exception& e) {
    fail(file, std::string("its register function failed: ") + e.what(), name);
    return false;
  } catch (...) {
    fail(file, "its register function threw a non-standard exception", name);
    return false;
  }
  std::vector<std::string> provides;
  for (const auto& info : staging.factories()) provides.push_back(info.kind + "/" + info.name);

  // 6. No kind+name may come from two libraries.
  for (const auto& info : staging.factories()) {
    for (const auto& existing : entries_) {
      if (existing.info.kind == info.kind && existing.info.name == info.name) {
        fail(file,
             "it registers " + info.kind + " '" + info.name + "', which " + existing.library.string() +
                 " already provides; rename the plugin in one of the two libraries or remove one",
             name, provides);
        return false;
      }
    }
  }

  for (const auto& info : staging.factories())
    entries_.push_back({info, file, description->version ? description->version : ""});
  loaded_.push_back({file, name, description->version ? description->version : "", torch_version, provides});
  handles_->libraries.push_back(std::move(library));
  spdlog::debug("loaded plugin library {} ({} {}): {}", file.string(), name, loaded_.back().version,
                join(provides));
  return true;
}

std::vector<std::string> Registry::names(const std::string& kind) const {
  std::vector<std::string> out;
  for (const auto& entry : entries_)
    if (entry.info.kind == kind) out.push_back(entry.info.name);
  std::sort(out.begin(), out.end());
  return out;
}

const Entry& Registry::find(const std::string& kind, const std::string& name) const {
  for (const auto& entry : entries_)
    if (entry.info.kind == kind && entry.info.name == name) return entry;

  const auto available = names(kind);
  std::string message = "no " + kind + " plugin named '" + name + "'" + did_you_mean(name, available) +
                        "; available " + kind +
                        " plugins: " + (available.empty() ? std::string("none") : join(available));
  const std::string notes = failed_notes(kind, name);
  if (!notes.empty())
    message += ". Plugin libraries that failed to load:\n" + notes;
  else
    message += ". Run `latentlab plugins list` to see what is loaded, or add --plugin-path DIR";
  throw ConfigError(message);
}

std::string Registry::failed_notes(const std::string& kind, const std::string& name) const {
  // A library that failed may be the one that would have provided it: say why it failed. Those known
  // to provide this name come first; those whose contents are unknown follow.
  std::vector<std::string> notes;
  for (const auto& failure : failed_) {
    const bool provides_it =
        std::any_of(failure.provides.begin(), failure.provides.end(), [&](const auto& p) {
          return kind.empty() ? p.substr(p.find('/') + 1) == name : p == kind + "/" + name;
        });
    if (provides_it)
      notes.insert(notes.begin(),
                   "  " + failure.path.string() + " provides it but was not loaded: " + failure.reason);
    else if (failure.provides.empty())
      notes.push_back("  " + failure.path.string() + " was not loaded: " + failure.reason);
  }
  return join(notes, "\n");
}

const Entry& Registry::find_at(const std::string& kind, const std::string& name,
                               const std::string& path) const {
  try {
    return find(kind, name);
  } catch (const ConfigError& e) {
    // "weighting.params" is where the parameters are; the name stands beside them, at "weighting".
    const std::string suffix = ".params";
    if (path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
      throw ConfigError(path.substr(0, path.size() - suffix.size()) + ": " + e.what());
    throw;
  }
}

nlohmann::json Registry::resolved_params(const std::string& kind, const std::string& name,
                                         const nlohmann::json& params, const std::string& path) const {
  return find_at(kind, name, path).info.schema.validate(params, path, kind + " '" + name + "'").json();
}

std::string Registry::file_sha256(const std::filesystem::path& file) const {
  std::error_code size_error, time_error;
  const auto size = std::filesystem::file_size(file, size_error);
  const auto time = std::filesystem::last_write_time(file, time_error);
  if (size_error || time_error) return io::sha256_file(file);  // which names the file it cannot read
  const auto stamp = std::make_tuple(std::filesystem::absolute(file).lexically_normal().string(), size, time);
  {
    std::lock_guard<std::mutex> lock(hashes_mutex_);
    if (const auto found = hashes_.find(stamp); found != hashes_.end()) return found->second;
  }
  auto digest = io::sha256_file(file);  // outside the lock: other files are hashed meanwhile
  std::lock_guard<std::mutex> lock(hashes_mutex_);
  hashes_.emplace(stamp, digest);
  return digest;
}

Registry::Erased Registry::create_erased(const std::string& kind, const std::string& name,
                                         const nlohmann::json& params, const std::string& path) const {
  const Entry& entry = find_at(kind, name, path);
  const std::string owner = kind + " '" + name + "'";
  const Params resolved = entry.info.schema.validate(params, path, owner);
  try {
    auto object = entry.info.construct(resolved);
    if (!object) throw Error("its constructor returned nothing");
    return {std::move(object), resolved.json(), entry.library, entry.library_version};
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + owner + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(owner + " (from " + entry.library.string() + ") could not be created: " + e.what());
  } catch (...) {
    throw Error(owner + " (from " + entry.library.string() +
                ") could not be created: a non-standard exception was thrown");
  }
}

}  // namespace latentlab::registry
