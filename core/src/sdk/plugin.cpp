#include "latentlab/plugin.hpp"

#include <algorithm>
#include <cctype>

#include "latentlab/strings.hpp"

namespace latentlab {

const std::vector<std::string>& plugin_kinds() {
  // DESIGN.md's plugin kinds; an interface's kKind must be one of these.
  static const std::vector<std::string> kinds = {"autoencoder", "conditioner", "schedule", "weighting",
                                                 "sampler",     "guider",      "dataset",  "features"};
  return kinds;
}

void Registrar::add_erased(FactoryInfo info) {
  const auto& kinds = plugin_kinds();
  if (std::find(kinds.begin(), kinds.end(), info.kind) == kinds.end())
    throw Error("cannot register '" + info.name + "': unknown plugin kind '" + info.kind +
                "'; known kinds: " + join(kinds));
  const bool valid_name = !info.name.empty() && std::all_of(info.name.begin(), info.name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_' || c == '-';
  });
  if (!valid_name)
    throw Error("cannot register " + info.kind + " '" + info.name +
                "': names use lower-case letters, digits, '_' and '-' only");
  if (!info.construct) throw Error("cannot register " + info.kind + " '" + info.name + "': no constructor");
  for (const auto& existing : factories_)
    if (existing.kind == info.kind && existing.name == info.name)
      throw Error("cannot register " + info.kind + " '" + info.name + "' twice in the same library");
  factories_.push_back(std::move(info));
}

}  // namespace latentlab
