#pragma once
// The built-in plugin libraries, loaded once per test process (the registry never unloads them), and
// a shorthand to create one plugin from them. Needs LATENTLAB_BUILTIN_PLUGIN_DIR.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "latentlab/registry/registry.hpp"

namespace latentlab::testing {

inline const registry::Registry& builtin_plugins() {
  static const registry::Registry* registry = [] {
    auto* r = new registry::Registry();
    r->load_directory(LATENTLAB_BUILTIN_PLUGIN_DIR, true);
    return r;
  }();
  return *registry;
}

template <class Interface>
std::shared_ptr<Interface> make_builtin(const std::string& name,
                                        const nlohmann::json& params = nlohmann::json::object(),
                                        const std::string& path = "params") {
  return builtin_plugins().create<Interface>(name, params, path).object;
}

}  // namespace latentlab::testing
