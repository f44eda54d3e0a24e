#pragma once
// The plugin SDK: what a plugin library exports and how it registers its factories.
//
// A plugin library defines exactly one entry point with LATENTLAB_PLUGIN(name, version, fn). That
// exports two symbols: `latentlab_plugin_abi`, a constant the host reads from the file before loading
// it (SDK API version, LibTorch major.minor, C++ ABI, nlohmann_json version), and
// `latentlab_plugin_entry`, which returns the library's description (name, version and the register
// function). Only when the ABI matches does the host load the library and call `fn(registrar)`, which
// adds factories. There is no static-initialiser registration and libraries are never unloaded.
//
//   void register_factories(latentlab::Registrar& r) {
//     r.add<latentlab::Schedule>("my_schedule", "one-line description",
//                                latentlab::ParamSchema().integer("T", 1000, "steps", Range::at_least(1)),
//                                [](const latentlab::Params& p) { return std::make_unique<Mine>(p); });
//   }
//   LATENTLAB_PLUGIN("my-plugins", "0.1.0", register_factories)
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/version.h>
#include <nlohmann/json.hpp>

#include "latentlab/error.hpp"
#include "latentlab/export.hpp"
#include "latentlab/params.hpp"
#include "latentlab/sdk_version.hpp"

// Bumped whenever an SDK interface, PluginAbi or PluginDescription changes in a way that breaks plugins.
#define LATENTLAB_SDK_API_VERSION 2
#define LATENTLAB_PLUGIN_ENTRY_SYMBOL "latentlab_plugin_entry"
#define LATENTLAB_PLUGIN_ABI_SYMBOL "latentlab_plugin_abi"

namespace latentlab {

// "LLPLUGIN" read as a little-endian 64-bit number: the first bytes of every ABI record.
inline constexpr std::uint64_t kPluginAbiMagic = 0x4e4947554c504c4cULL;

// What a plugin was compiled against, as a constant in the library file (no pointers, so the host
// reads it without loading the library). `magic` and `api_version` stay first in every SDK version.
struct PluginAbi {
  std::uint64_t magic;        // kPluginAbiMagic
  std::uint32_t api_version;  // LATENTLAB_SDK_API_VERSION
  std::uint32_t struct_size;  // sizeof(PluginAbi)
  std::int32_t torch_version_major;
  std::int32_t torch_version_minor;
  std::int32_t cxx11_abi;  // _GLIBCXX_USE_CXX11_ABI: std::string layout
  std::int32_t json_version_major;
  std::int32_t json_version_minor;
  char torch_version[32];  // TORCH_VERSION, for messages
};

// The host reads this record from plugin files byte by byte: its layout is part of the SDK API.
static_assert(sizeof(PluginAbi) == 72, "PluginAbi layout changed: bump LATENTLAB_SDK_API_VERSION");
static_assert(offsetof(PluginAbi, api_version) == 8 && offsetof(PluginAbi, struct_size) == 12,
              "PluginAbi must start with magic, api_version, struct_size");

class Registrar;
using RegisterFn = void (*)(Registrar&);

// Returned by a library's entry point: its ABI record (SDK API and LibTorch versions, already checked
// by the host from the file) and who the library is.
struct PluginDescription {
  const PluginAbi* abi;  // the library's latentlab_plugin_abi
  const char* name;      // library name, e.g. "latentlab-schedules"
  const char* version;   // library version, e.g. "0.1.0"
  RegisterFn register_factories;
};

using PluginEntryFn = const PluginDescription*();

// The kinds of plugin the host knows. Each SDK interface names its kind in `kKind`.
LATENTLAB_API const std::vector<std::string>& plugin_kinds();

// One constructor a plugin offers: a kind ("schedule"), a name ("linear"), a one-line description,
// its parameter schema and a constructor taking validated parameters.
struct LATENTLAB_API FactoryInfo {
  std::string kind;
  std::string name;
  std::string description;
  ParamSchema schema;
  std::function<std::shared_ptr<void>(const Params&)> construct;
};

class LATENTLAB_API Registrar {
 public:
  template <class Interface>
  using Constructor = std::function<std::unique_ptr<Interface>(const Params&)>;

  // Registers a factory for an SDK interface (Schedule, ...). Names are lower-case letters, digits,
  // '_' and '-'. Throws Error on an invalid or repeated name.
  template <class Interface>
  void add(const std::string& name, const std::string& description, ParamSchema schema,
           Constructor<Interface> constructor) {
    add_erased(
        FactoryInfo{Interface::kKind, name, description, std::move(schema),
                    [constructor = std::move(constructor)](const Params& params) -> std::shared_ptr<void> {
                      return std::shared_ptr<Interface>(constructor(params));
                    }});
  }

  const std::vector<FactoryInfo>& factories() const { return factories_; }

 private:
  void add_erased(FactoryInfo info);
  std::vector<FactoryInfo> factories_;
};

}  // namespace latentlab

// Defines the library's ABI record and entry point with the given versions. Plugins use
// LATENTLAB_PLUGIN below; the registry's tests use this to make libraries with mismatched versions.
#define LATENTLAB_DETAIL_DEFINE_PLUGIN(API, TORCH_MAJOR, TORCH_MINOR, TORCH_STRING, NAME, VERSION,        \
                                       REGISTER_FN)                                                       \
  extern "C" __attribute__((visibility("default"))) const ::latentlab::PluginAbi latentlab_plugin_abi = { \
      ::latentlab::kPluginAbiMagic,                                                                       \
      API,                                                                                                \
      static_cast<std::uint32_t>(sizeof(::latentlab::PluginAbi)),                                         \
      TORCH_MAJOR,                                                                                        \
      TORCH_MINOR,                                                                                        \
      _GLIBCXX_USE_CXX11_ABI,                                                                             \
      NLOHMANN_JSON_VERSION_MAJOR,                                                                        \
      NLOHMANN_JSON_VERSION_MINOR,                                                                        \
      TORCH_STRING};                                                                                      \
  extern "C" __attribute__((visibility("default"))) const ::latentlab::PluginDescription*                 \
  latentlab_plugin_entry() {                                                                              \
    static const ::latentlab::PluginDescription description{&latentlab_plugin_abi, NAME, VERSION,         \
                                                            REGISTER_FN};                                 \
    return &description;                                                                                  \
  }

// Defines the library's ABI record and entry point. Use once per plugin library, at namespace scope.
#define LATENTLAB_PLUGIN(NAME, VERSION, REGISTER_FN)                                                  \
  LATENTLAB_DETAIL_DEFINE_PLUGIN(LATENTLAB_SDK_API_VERSION, TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, \
                                 TORCH_VERSION, NAME, VERSION, REGISTER_FN)
