#pragma once
// A plugin named in a config, with the parameters the user gave (validated by the registry, which
// fills in the defaults: Registry::create and Registry::resolved_params).
#include <string>

#include <nlohmann/json.hpp>

namespace latentlab {

struct PluginChoice {
  std::string name;
  nlohmann::json params = nlohmann::json::object();

  nlohmann::json to_json() const { return {{"name", name}, {"params", params}}; }
};

}  // namespace latentlab
