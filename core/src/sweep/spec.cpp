#include "latentlab/sweep/spec.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <variant>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::sweep {

namespace {

using nlohmann::json;
using Token = std::variant<std::string, std::size_t>;  // an object key or an array index

struct Found {
  Axis axis;
  std::vector<Token> tokens;
};

std::string path_text(const std::vector<Token>& tokens) {
  std::string out;
  for (const auto& token : tokens) {
    if (const auto* key = std::get_if<std::string>(&token))
      out += (out.empty() ? "" : ".") + *key;
    else
      out += "[" + std::to_string(std::get<std::size_t>(token)) + "]";
  }
  return out;
}

// The last object key of a path: "eval[0].steps" -> "steps", "seeds" -> "seeds".
std::string last_key(const std::vector<Token>& tokens) {
  for (auto it = tokens.rbegin(); it != tokens.rend(); ++it)
    if (const auto* key = std::get_if<std::string>(&*it)) return *key;
  return "value";
}

// Sets the value at `tokens`; null at an object key leaves the key out (a parameter only some trials
// have, e.g. a VQ codebook size beside a KL autoencoder).
void set_at(json& root, const std::vector<Token>& tokens, const json& value) {
  if (value.is_null() && !tokens.empty() && std::holds_alternative<std::string>(tokens.back())) {
    json* parent = &root;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      if (const auto* key = std::get_if<std::string>(&tokens[i]))
        parent = &(*parent)[*key];
      else
        parent = &(*parent)[std::get<std::size_t>(tokens[i])];
    }
    parent->erase(std::get<std::string>(tokens.back()));
    return;
  }
  json* node = &root;
  for (const auto& token : tokens) {
    if (const auto* key = std::get_if<std::string>(&token))
      node = &(*node)[*key];
    else
      node = &(*node)[std::get<std::size_t>(token)];
  }
  *node = value;
}

// Finds the axes under `node`, in document order; collects problems in `errors`.
void find_axes(const SpecJson& node, std::vector<Token>& tokens, std::vector<Found>& found,
               std::vector<std::string>& errors) {
  const auto where = path_text(tokens);
  if (node.is_object()) {
    const bool grid = node.contains("$grid"), zip = node.contains("$zip");
    if (grid || zip) {
      Found axis;
      axis.tokens = tokens;
      axis.axis.path = where;
      axis.axis.name = last_key(tokens);
      const std::vector<std::string> allowed = grid ? std::vector<std::string>{"$grid", "$name"}
                                                    : std::vector<std::string>{"$zip", "values", "$name"};
      for (const auto& item : node.items())
        if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
          errors.push_back(where + "." + item.key() + ": not a key of a " + (grid ? "$grid" : "$zip") +
                           " axis" + did_you_mean(item.key(), allowed) + "; allowed: " + join(allowed));
      if (grid && zip) errors.push_back(where + ": an axis is either $grid or $zip, not both");
      if (node.contains("$name")) {
        if (!node.at("$name").is_string() || node.at("$name").get<std::string>().empty())
          errors.push_back(where + ".$name: expected a short name (a non-empty string), got " +
                           node.at("$name").dump());
        else
          axis.axis.name = node.at("$name").get<std::string>();
      }
      if (zip && (!node.at("$zip").is_string() || node.at("$zip").get<std::string>().empty()))
        errors.push_back(where + ".$zip: expected the group's name (a non-empty string), got " +
                         node.at("$zip").dump());
      else if (zip)
        axis.axis.zip = node.at("$zip").get<std::string>();
      const auto* values =
          grid ? &node.at("$grid") : (node.contains("values") ? &node.at("values") : nullptr);
      const auto values_path = where + (grid ? ".$grid" : ".values");
      if (!values)
        errors.push_back(where + ": a $zip axis needs \"values\": [...]");
      else if (!values->is_array() || values->empty())
        errors.push_back(values_path + ": expected a non-empty list of values, got " + values->dump());
      else
        for (const auto& value : *values) {
          if (value.is_object() && (value.contains("$grid") || value.contains("$zip")))
            errors.push_back(values_path + ": axes do not nest; write the combinations out, or use $zip");
          axis.axis.values.push_back(json::parse(value.dump()));
        }
      found.push_back(std::move(axis));
      return;
    }
    for (const auto& item : node.items()) {
      if (!item.key().empty() && item.key()[0] == '$') {
        errors.push_back((where.empty() ? "" : where + ".") + item.key() +
                         ": unknown axis keyword; an axis is {\"$grid\": [...]} or {\"$zip\": \"group\", "
                         "\"values\": [...]}, each with an optional \"$name\"");
        continue;
      }
      if (tokens.empty() && (item.key() == "exclude" || item.key() == "seeds")) continue;
      tokens.emplace_back(item.key());
      find_axes(item.value(), tokens, found, errors);
      tokens.pop_back();
    }
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      tokens.emplace_back(i);
      find_axes(node[i], tokens, found, errors);
      tokens.pop_back();
    }
  }
}

// File-name safe: letters, digits and . _ = + - stay, everything else becomes '-'.
std::string file_safe(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '=' ||
                      c == '+' || c == '-' || c == ',';
    out += keep ? c : '-';
  }
  return out;
}

// A value in a trial id: lists as 1+2+4, no brackets or quotes.
std::string id_text(const json& value) {
  if (value.is_array()) {
    std::vector<std::string> items;
    for (const auto& item : value) items.push_back(id_text(item));
    return join(items, "+");
  }
  std::string out;
  for (const char c : value_text(value))
    if (c != '"' && c != '[' && c != ']' && c != '{' && c != '}' && c != ' ') out += c == ',' ? '+' : c;
  return out;
}

}  // namespace

std::string value_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("name") && value.at("name").is_string())
    return value.at("name").get<std::string>();  // a plugin choice is named by its plugin
  return value.dump();
}

Expansion expand(const SpecJson& spec) {
  std::vector<std::string> errors;
  Expansion out;
  if (!spec.is_object()) throw ConfigError("the spec: expected a JSON object, got " + spec.dump());
  if (!spec.contains("name") || !spec.at("name").is_string() || spec.at("name").get<std::string>().empty() ||
      spec.at("name").get<std::string>() != file_safe(spec.at("name").get<std::string>()))
    errors.push_back(
        "name: expected the sweep's name (letters, digits, . _ = + -; it names the results "
        "folder), got " +
        (spec.contains("name") ? spec.at("name").dump() : std::string("nothing")));
  else
    out.name = spec.at("name").get<std::string>();

  std::vector<Found> found;
  std::vector<Token> tokens;
  find_axes(spec, tokens, found, errors);

  // Seeds: one more axis, the last (fastest), so a configuration's seeds are neighbours.
  if (spec.contains("seeds")) {
    const auto& seeds = spec.at("seeds");
    Found axis;
    axis.axis.path = "seeds";
    axis.axis.name = "seed";
    bool good = seeds.is_array() && !seeds.empty();
    for (const auto& seed : seeds) good = good && seed.is_number_integer() && seed.get<std::int64_t>() >= 0;
    if (!good)
      errors.push_back("seeds: expected a non-empty list of non-negative integers, got " + seeds.dump());
    else
      for (const auto& seed : seeds) axis.axis.values.push_back(seed.get<std::int64_t>());
    if (spec.contains("seed")) errors.push_back("seed: give either \"seed\" or \"seeds\", not both");
    found.push_back(std::move(axis));
  } else if (spec.contains("seed") &&
             (!spec.at("seed").is_number_integer() || spec.at("seed").get<std::int64_t>() < 0)) {
    errors.push_back("seed: expected a non-negative integer, got " + spec.at("seed").dump());
  }

  // Short names must tell the axes apart in tables.
  std::map<std::string, std::string> names;
  for (const auto& f : found) {
    const auto [it, fresh] = names.emplace(f.axis.name, f.axis.path);
    if (!fresh)
      errors.push_back(f.axis.path + ": axis name '" + f.axis.name + "' is already the name of " +
                       it->second + "; give one of them a \"$name\"");
  }
  // Factors: each grid axis, each zip group (its axes advance together), in order of appearance.
  std::vector<std::vector<std::size_t>> factors;
  std::map<std::string, std::size_t> group_factor;
  for (std::size_t i = 0; i < found.size(); ++i) {
    const auto& zip = found[i].axis.zip;
    if (zip.empty()) {
      factors.push_back({i});
      continue;
    }
    const auto [it, fresh] = group_factor.emplace(zip, factors.size());
    if (fresh) {
      factors.push_back({i});
    } else {
      const auto& first = found[factors[it->second].front()].axis;
      if (first.values.size() != found[i].axis.values.size())
        errors.push_back(found[i].axis.path + ": $zip group '" + zip +
                         "' advances together, but this axis has " +
                         std::to_string(found[i].axis.values.size()) + " values and " + first.path + " has " +
                         std::to_string(first.values.size()));
      factors[it->second].push_back(i);
    }
  }

  // Exclusions: each entry names axes (by short name or path) and values; a trial matching all is dropped.
  std::vector<std::vector<std::pair<std::size_t, json>>> excludes;
  if (spec.contains("exclude")) {
    const auto& list = spec.at("exclude");
    if (!list.is_array())
      errors.push_back("exclude: expected a list of {axis: value, ...} objects, got " + list.dump());
    std::vector<std::string> known;
    for (const auto& f : found)
      for (const auto& name : {f.axis.name, f.axis.path})
        if (std::find(known.begin(), known.end(), name) == known.end()) known.push_back(name);
    for (std::size_t e = 0; list.is_array() && e < list.size(); ++e) {
      const auto where = "exclude[" + std::to_string(e) + "]";
      if (!list[e].is_object() || list[e].empty()) {
        errors.push_back(where + ": expected an object {axis: value, ...}, got " + list[e].dump());
        continue;
      }
      std::vector<std::pair<std::size_t, json>> entry;
      for (const auto& item : list[e].items()) {
        const auto it = std::find_if(found.begin(), found.end(), [&](const Found& f) {
          return f.axis.name == item.key() || f.axis.path == item.key();
        });
        if (it == found.end()) {
          errors.push_back(where + "." + item.key() + ": no axis of that name or path" +
                           did_you_mean(item.key(), known) + "; axes: " + join(known));
          continue;
        }
        const auto value = json::parse(item.value().dump());
        if (std::find(it->axis.values.begin(), it->axis.values.end(), value) == it->axis.values.end())
          errors.push_back(where + "." + item.key() + ": " + value.dump() +
                           " is not one of the axis's values");
        entry.emplace_back(static_cast<std::size_t>(it - found.begin()), value);
      }
      excludes.push_back(std::move(entry));
    }
  }
  if (!errors.empty()) {
    std::string message =
        std::to_string(errors.size()) + (errors.size() == 1 ? " problem" : " problems") + " in the spec:";
    for (const auto& e : errors) message += "\n  " + e;
    throw ConfigError(message);
  }

  for (const auto& f : found) out.axes.push_back(f.axis);
  // The base config: the spec without its sweep keys, as plain (key-sorted) JSON.
  json base = json::parse(spec.dump());
  base.erase("seeds");
  base.erase("exclude");
  if (!base.contains("seed")) base["seed"] = 0;

  std::vector<std::size_t> choice(found.size(), 0);  // value index of each axis
  std::map<std::string, std::size_t> ids;
  const auto total = [&] {
    std::size_t n = 1;
    for (const auto& factor : factors) n *= found[factor.front()].axis.values.size();
    return n;
  }();
  for (std::size_t n = 0; n < total; ++n) {
    // Mixed-radix digits, the last factor fastest.
    std::size_t rest = n;
    for (std::size_t k = factors.size(); k-- > 0;) {
      const auto size = found[factors[k].front()].axis.values.size();
      for (const auto axis : factors[k]) choice[axis] = rest % size;
      rest /= size;
    }
    bool excluded = false;
    for (const auto& entry : excludes) {
      bool all = true;
      for (const auto& [axis, value] : entry) all = all && found[axis].axis.values[choice[axis]] == value;
      excluded = excluded || all;
    }
    if (excluded) continue;
    Trial trial;
    trial.index = out.trials.size();
    trial.config = base;
    trial.values = json::object();
    std::vector<std::string> parts;
    for (std::size_t a = 0; a < found.size(); ++a) {
      const auto& value = found[a].axis.values[choice[a]];
      if (found[a].axis.path == "seeds")
        trial.config["seed"] = value;
      else
        set_at(trial.config, found[a].tokens, value);
      trial.values[found[a].axis.name] = value;
      // In the id, a $zip group is named by its first axis (the others follow from it).
      const auto& zip = found[a].axis.zip;
      if (zip.empty() || factors[group_factor.at(zip)].front() == a)
        parts.push_back(found[a].axis.name + "=" + id_text(value));
    }
    auto id = parts.empty() ? std::string("trial") : file_safe(join(parts, ","));
    if (id.size() > 120) id = "trial-" + std::to_string(trial.index);
    if (const auto count = ids[id]++; count > 0) id += "-" + std::to_string(count);
    trial.id = id;
    out.trials.push_back(std::move(trial));
  }
  return out;
}

}  // namespace latentlab::sweep
