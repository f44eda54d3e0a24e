#pragma once
// The plugin registry: finds plugin libraries, checks each before trusting it, loads the good ones
// and keeps the reasons for the rest, and creates plugin objects by kind and name.
//
// Checks, in order, for every candidate file: it is an ELF shared library that exports
// `latentlab_plugin_abi` and `latentlab_plugin_entry`; the ABI constant read from the file (nothing
// of the library runs yet) has the host's SDK API version, LibTorch major.minor, C++ ABI and
// nlohmann_json version; loading it and running its register function in a throwaway child process
// neither crashes nor hangs; it loads in-process with every symbol resolved; its register function
// succeeds; and no kind+name it registers is already provided by another library. A library that
// fails any check contributes nothing, and the reason is kept. Libraries are never unloaded.
//
// The probe forks: load plugins while the process has one thread (as the host does, before any
// compute), or a probe may deadlock on a lock another thread held and be reported as hung.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/plugin.hpp"

namespace latentlab::registry {

// A library that passed every check.
struct LoadedLibrary {
  std::filesystem::path path;
  std::string name;
  std::string version;
  std::string torch_version;
  std::vector<std::string> provides;  // "kind/name"
};

// A library that did not: where it is, and why.
struct FailedLibrary {
  std::filesystem::path path;
  std::string reason;
  std::string name;                   // from its description, when it could be read
  std::vector<std::string> provides;  // "kind/name" it tried to register, when known
};

// A registered factory and the library that provided it.
struct Entry {
  FactoryInfo info;
  std::filesystem::path library;
  std::string library_version;
};

// A plugin object the registry created, with the parameters it was created with (validated once, every
// default filled in: what results record) and the library it came from (for provenance). Used like the object
// itself: `instance->sample(...)`, `*instance`.
template <class Interface>
struct Instance {
  std::shared_ptr<Interface> object;
  std::string name;
  nlohmann::json params;
  std::filesystem::path library;  // the library that provided it
  std::string library_version;

  Interface* operator->() const { return object.get(); }
  Interface& operator*() const { return *object; }
  operator std::shared_ptr<Interface>() const { return object; }  // NOLINT: used as the object
  // {"name", "params", "library", "library_version"}: what a result file records of the plugin.
  nlohmann::json to_json() const {
    return {{"name", name},
            {"params", params},
            {"library", library.filename().string()},
            {"library_version", library_version}};
  }
};

struct RegistryOptions {
  // Load each library in a forked child first (see probe_in_child); off only for debugging a plugin.
  bool probe = true;
  std::chrono::milliseconds probe_timeout{60000};
};

class Registry {
 public:
  explicit Registry(RegistryOptions options = {});
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads every `*.so` in `dir` (not recursive), in name order. A missing folder is recorded as a
  // failure when `must_exist`, else ignored.
  void load_directory(const std::filesystem::path& dir, bool must_exist);
  // Checks and loads one library file. Returns true when it was loaded; false when it failed (the
  // reason is in failed()) or was already loaded.
  bool load_library(const std::filesystem::path& file);

  const std::vector<LoadedLibrary>& loaded() const { return loaded_; }
  const std::vector<FailedLibrary>& failed() const { return failed_; }
  const std::vector<Entry>& entries() const { return entries_; }

  // The factory for kind/name. Throws ConfigError naming the available names, the closest one and
  // any library that failed to load (and might have provided it).
  const Entry& find(const std::string& kind, const std::string& name) const;
  std::vector<std::string> names(const std::string& kind) const;
  // For an error about a missing plugin: the libraries that failed to load and might have provided
  // kind/name (an empty kind matches any kind), one per line with the reason; "" when none.
  std::string failed_notes(const std::string& kind, const std::string& name) const;

  // `params` validated against kind/name's schema with every default filled in, as a JSON object,
  // without constructing the plugin (a sweep validates every trial's plugins before any runs; create()
  // returns the same with the object). Throws ConfigError naming `path`.
  nlohmann::json resolved_params(const std::string& kind, const std::string& name,
                                 const nlohmann::json& params, const std::string& path) const;

  // The SHA-256 (hex) of a loaded library's file, read once per library: stage keys change when a
  // plugin is rebuilt, even without a version bump.
  std::string library_sha256(const std::filesystem::path& library) const { return file_sha256(library); }

  // The SHA-256 (hex) of a file, read again only when its size or modification time changed: stage
  // keys hash the weights files they read (Inception, LPIPS, a reference checkpoint: hundreds of MB)
  // once per stage, and a sweep keys thousands of stages. Thread-safe. Throws Error naming the file
  // when it cannot be read.
  std::string file_sha256(const std::filesystem::path& file) const;

  // Validates `params` against the factory's schema once (errors name `path`) and constructs the
  // plugin; the instance carries the resolved parameters. A constructor that throws becomes an Error
  // naming the plugin and its library.
  template <class Interface>
  Instance<Interface> create(const std::string& name, const nlohmann::json& params,
                             const std::string& path) const {
    auto erased = create_erased(Interface::kKind, name, params, path);
    return {std::static_pointer_cast<Interface>(std::move(erased.object)), name, std::move(erased.params),
            std::move(erased.library), std::move(erased.library_version)};
  }

 private:
  struct Erased {
    std::shared_ptr<void> object;
    nlohmann::json params;
    std::filesystem::path library;
    std::string library_version;
  };
  Erased create_erased(const std::string& kind, const std::string& name, const nlohmann::json& params,
                       const std::string& path) const;
  // find() for a plugin whose parameters are at `path` ("weighting.params"): an unknown name's error
  // starts with where it was asked for ("weighting: no weighting plugin named ...").
  const Entry& find_at(const std::string& kind, const std::string& name, const std::string& path) const;
  void fail(const std::filesystem::path& file, std::string reason, std::string name = {},
            std::vector<std::string> provides = {});

  RegistryOptions options_;
  struct Handles;  // the Boost.DLL library handles, kept for the process lifetime
  std::unique_ptr<Handles> handles_;
  std::vector<LoadedLibrary> loaded_;
  std::vector<FailedLibrary> failed_;
  std::vector<Entry> entries_;
  // file_sha256's: (absolute path, size, modification time) -> SHA-256
  mutable std::mutex hashes_mutex_;
  mutable std::map<std::tuple<std::string, std::uintmax_t, std::filesystem::file_time_type>, std::string>
      hashes_;
};

// ---- where plugins are looked for ----

// The built-in plugin folder: <folder of the running executable>/<LATENTLAB_PLUGIN_DIR_FROM_BIN>.
std::filesystem::path builtin_plugin_dir();
// Folders in LATENTLAB_PLUGIN_PATH (colon-separated; empty entries skipped).
std::vector<std::filesystem::path> env_plugin_dirs();

// Loads the built-in folder, then LATENTLAB_PLUGIN_PATH, then `extra_dirs` (--plugin-path), in that
// order; the first library to provide a kind+name keeps it.
void load_standard_locations(Registry& registry, const std::vector<std::filesystem::path>& extra_dirs);

}  // namespace latentlab::registry
