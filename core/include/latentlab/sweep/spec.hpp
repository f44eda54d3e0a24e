#pragma once
// A sweep spec and its expansion into trials (docs/spec.md). Any value in the spec may be an axis:
//   {"$grid": [v1, v2, ...], "$name": "short"}              a Cartesian factor,
//   {"$zip": "group", "values": [v1, ...], "$name": "short"} axes of one group advance together,
// and "seeds": [s, ...] is one more axis. "exclude": [{"path or name": value, ...}, ...] drops the
// trials that match every pair of one entry. The order of trials is the product of the axes in the
// order they appear in the spec, the last axis fastest; the same spec gives the same trials.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace latentlab::sweep {

// The spec keeps the order its author wrote the axes in.
using SpecJson = nlohmann::ordered_json;

struct Axis {
  std::string path;  // where it sits in the spec: "denoiser.weighting", "eval[0].steps"
  std::string name;  // short name for tables: $name, or the last component of the path
  std::string zip;   // its $zip group, "" for a grid axis
  std::vector<nlohmann::json> values;
};

struct Trial {
  std::size_t index = 0;
  std::string id;         // from the axis values: "f=4,weighting=elbo,seed=0" (file-name safe)
  nlohmann::json values;  // {axis name: value}
  nlohmann::json config;  // the spec with every axis replaced by its value, "seed" set
};

struct Expansion {
  std::string name;  // the sweep's name (results/<name>/)
  std::vector<Axis> axes;
  std::vector<Trial> trials;
};

// Expands `spec`. Every problem of the spec's form is collected and thrown at once as a ConfigError,
// one line per problem, each naming its JSON path.
Expansion expand(const SpecJson& spec);

// A value as a table cell and in trial ids: strings as they are, numbers as JSON writes them, other
// values as their JSON.
std::string value_text(const nlohmann::json& value);

}  // namespace latentlab::sweep
