#include "latentlab/params.hpp"

#include <cmath>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {
namespace {

using nlohmann::json;

std::string describe_json_type(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    default:
      return "an unsupported value";
  }
}

// The value as the user wrote it, shortened for messages.
std::string show(const json& value) {
  if (value.is_number_float() && !std::isfinite(value.get<double>()))
    return std::isnan(value.get<double>()) ? "nan" : (value.get<double>() > 0 ? "inf" : "-inf");
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

[[noreturn]] void fail(const std::string& path, const std::string& what, const ParamSpec& spec) {
  throw ConfigError(path + ": " + what + "; allowed: " + spec.allowed() +
                    (spec.doc.empty() ? "" : " (" + spec.doc + ")"));
}

bool is_integral_number(const json& value) {
  if (value.is_number_integer() || value.is_number_unsigned()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15;
}

void check_range(const std::string& path, double value, const json& raw, const ParamSpec& spec) {
  if (!std::isfinite(value)) fail(path, show(raw) + " is not a finite number", spec);
  if (!spec.range.contains(value)) fail(path, show(raw) + " is out of range", spec);
}

json validate_one(const ParamSpec& spec, const json& value, const std::string& path) {
  switch (spec.type) {
    case ParamType::Int: {
      if (!is_integral_number(value))
        fail(path, "expected an integer, got " + show(value) + " (" + describe_json_type(value) + ")", spec);
      std::int64_t exact = 0;
      if (value.is_number_float()) {
        exact = static_cast<std::int64_t>(value.get<double>());
      } else if (value.is_number_unsigned()) {
        const auto u = value.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(INT64_MAX))
          fail(path, show(value) + " does not fit a 64-bit integer", spec);
        exact = static_cast<std::int64_t>(u);
      } else {
        exact = value.get<std::int64_t>();
      }
      check_range(path, static_cast<double>(exact), value, spec);
      return exact;
    }
    case ParamType::Float: {
      if (!value.is_number())
        fail(path, "expected a number, got " + show(value) + " (" + describe_json_type(value) + ")", spec);
      const double d = value.get<double>();
      check_range(path, d, value, spec);
      return d;
    }
    case ParamType::Bool:
      if (!value.is_boolean())
        fail(path, "expected true or false, got " + show(value) + " (" + describe_json_type(value) + ")",
             spec);
      return value;
    case ParamType::String:
      if (!value.is_string())
        fail(path, "expected a string, got " + show(value) + " (" + describe_json_type(value) + ")", spec);
      return value;
    case ParamType::Enum: {
      if (!value.is_string())
        fail(path, "expected one of the names, got " + show(value) + " (" + describe_json_type(value) + ")",
             spec);
      const auto s = value.get<std::string>();
      for (const auto& c : spec.choices)
        if (c == s) return value;
      fail(path, show(value) + " is not a valid choice" + did_you_mean(s, spec.choices), spec);
    }
    case ParamType::NumberList: {
      if (!value.is_array())
        fail(path, "expected a list of numbers, got " + show(value) + " (" + describe_json_type(value) + ")",
             spec);
      if (value.size() < spec.min_length)
        fail(path,
             "the list has " + std::to_string(value.size()) + " element(s), fewer than " +
                 std::to_string(spec.min_length),
             spec);
      json out = json::array();
      for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string element_path = path + "[" + std::to_string(i) + "]";
        const json& element = value[i];
        if (!element.is_number())
          fail(element_path,
               "expected a number, got " + show(element) + " (" + describe_json_type(element) + ")", spec);
        const double d = element.get<double>();
        check_range(element_path, d, element, spec);
        out.push_back(d);
      }
      return out;
    }
  }
  throw Error("internal: unknown parameter type");
}

}  // namespace

const char* to_string(ParamType type) {
  switch (type) {
    case ParamType::Int:
      return "int";
    case ParamType::Float:
      return "float";
    case ParamType::Bool:
      return "bool";
    case ParamType::String:
      return "string";
    case ParamType::Enum:
      return "enum";
    case ParamType::NumberList:
      return "list";
  }
  return "?";
}

bool Range::contains(double value) const {
  if (lo && (lo_open ? !(value > *lo) : !(value >= *lo))) return false;
  if (hi && (hi_open ? !(value < *hi) : !(value <= *hi))) return false;
  return true;
}

std::string Range::to_string(bool integer) const {
  const auto number = [integer](double v) {
    return integer && std::fabs(v) < 9.0e15 ? std::to_string(static_cast<long long>(v)) : format_number(v);
  };
  if (lo && hi)
    return std::string(lo_open ? "(" : "[") + number(*lo) + ", " + number(*hi) + (hi_open ? ")" : "]");
  if (lo) return std::string(lo_open ? "> " : ">= ") + number(*lo);
  if (hi) return std::string(hi_open ? "< " : "<= ") + number(*hi);
  return "any";
}

std::string ParamSpec::allowed() const {
  // "in [a, b]" for intervals, ">= a" for half-bounded ones.
  const bool bounded = range.lo || range.hi;
  const std::string where = !bounded                 ? std::string()
                            : (range.lo && range.hi) ? " in " + range.to_string(type == ParamType::Int)
                                                     : " " + range.to_string(type == ParamType::Int);
  switch (type) {
    case ParamType::Int:
      return "an integer" + where;
    case ParamType::Float:
      return "a number" + where;
    case ParamType::Bool:
      return "true or false";
    case ParamType::String:
      return "a string";
    case ParamType::Enum:
      return "one of " + join(choices);
    case ParamType::NumberList: {
      std::string text = "a list of numbers";
      if (min_length > 0) text += " (at least " + std::to_string(min_length) + ")";
      if (bounded) text += ", each" + where;
      return text;
    }
  }
  return "?";
}

std::int64_t Params::get_int(const std::string& name) const {
  return at(name, value_t::number_integer, "an integer").get<std::int64_t>();
}
double Params::get_float(const std::string& name) const {
  return at(name, value_t::number_float, "a number").get<double>();
}
bool Params::get_bool(const std::string& name) const {
  return at(name, value_t::boolean, "a boolean").get<bool>();
}
std::string Params::get_string(const std::string& name) const {
  return at(name, value_t::string, "a string").get<std::string>();
}
std::vector<double> Params::get_numbers(const std::string& name) const {
  return at(name, value_t::array, "a list of numbers").get<std::vector<double>>();
}

const nlohmann::json& Params::at(const std::string& name, value_t type, const char* what) const {
  const auto it = values_.find(name);
  if (it == values_.end())
    throw Error("internal: parameter \"" + name +
                "\" is not in the plugin's schema (a plugin read a parameter it did not declare)");
  // Validated floats are stored as doubles and ints as integers; read them as declared.
  const bool ok = it->type() == type || (type == value_t::number_integer && it->is_number_unsigned()) ||
                  (type == value_t::number_float && it->is_number());
  if (!ok)
    throw Error("internal: parameter \"" + name + "\" was read as " + what + " but holds " + it->dump() +
                " (the plugin's accessor does not match its schema)");
  return *it;
}

ParamSchema& ParamSchema::add(ParamSpec spec) {
  if (find(spec.name)) throw Error("parameter \"" + spec.name + "\" is declared twice");
  if (!spec.default_value.is_null()) {
    // A default must itself be valid: a plugin author's mistake is caught at registration.
    spec.default_value = validate_one(spec, spec.default_value, "default of " + spec.name);
  }
  specs_.push_back(std::move(spec));
  return *this;
}

namespace {

// A spec with the common fields set; `default_value` null means "required".
template <class T>
ParamSpec make_spec(const std::string& name, ParamType type, const std::optional<T>& default_value,
                    const std::string& doc, Range range = Range::any()) {
  ParamSpec spec;
  spec.name = name;
  spec.type = type;
  if (default_value) spec.default_value = *default_value;
  spec.range = range;
  spec.doc = doc;
  return spec;
}

}  // namespace

ParamSchema& ParamSchema::integer(const std::string& name, std::optional<std::int64_t> default_value,
                                  const std::string& doc, Range range) {
  return add(make_spec(name, ParamType::Int, default_value, doc, range));
}

ParamSchema& ParamSchema::number(const std::string& name, std::optional<double> default_value,
                                 const std::string& doc, Range range) {
  return add(make_spec(name, ParamType::Float, default_value, doc, range));
}

ParamSchema& ParamSchema::boolean(const std::string& name, bool default_value, const std::string& doc) {
  return add(make_spec(name, ParamType::Bool, std::optional<bool>(default_value), doc));
}

ParamSchema& ParamSchema::string(const std::string& name, std::optional<std::string> default_value,
                                 const std::string& doc) {
  return add(make_spec(name, ParamType::String, default_value, doc));
}

ParamSchema& ParamSchema::choice(const std::string& name, const std::string& default_value,
                                 std::vector<std::string> choices, const std::string& doc) {
  if (choices.empty()) throw Error("parameter \"" + name + "\" declares no choices");
  ParamSpec spec = make_spec(name, ParamType::Enum, std::optional<std::string>(default_value), doc);
  spec.choices = std::move(choices);
  return add(std::move(spec));
}

ParamSchema& ParamSchema::number_list(const std::string& name,
                                      std::optional<std::vector<double>> default_value,
                                      const std::string& doc, Range element_range, std::size_t min_length) {
  ParamSpec spec = make_spec(name, ParamType::NumberList, default_value, doc, element_range);
  spec.min_length = min_length;
  return add(std::move(spec));
}

const ParamSpec* ParamSchema::find(const std::string& name) const {
  for (const auto& spec : specs_)
    if (spec.name == name) return &spec;
  return nullptr;
}

std::vector<std::string> ParamSchema::names() const {
  std::vector<std::string> out;
  for (const auto& spec : specs_) out.push_back(spec.name);
  return out;
}

Params ParamSchema::validate(const nlohmann::json& given, const std::string& path,
                             const std::string& owner) const {
  if (!given.is_null() && !given.is_object())
    throw ConfigError(path + ": expected an object of parameters for " + owner + ", got " + show(given) +
                      " (" + describe_json_type(given) + ")");
  const json empty = json::object();
  const json& values = given.is_null() ? empty : given;

  // Every problem of the object at once: unknown keys, missing required ones, bad values.
  std::vector<std::string> problems;
  for (const auto& item : values.items()) {
    if (find(item.key())) continue;
    const auto valid = names();
    problems.push_back(path + "." + item.key() + ": unknown parameter \"" + item.key() + "\" for " + owner +
                       did_you_mean(item.key(), valid) +
                       "; valid parameters: " + (valid.empty() ? std::string("none") : join(valid)));
  }

  json resolved = json::object();
  for (const auto& spec : specs_) {
    const auto it = values.find(spec.name);
    const std::string param_path = path + "." + spec.name;
    if (it == values.end()) {
      if (spec.required())
        problems.push_back(param_path + ": required parameter of " + owner + " is missing; expected " +
                           spec.allowed() + (spec.doc.empty() ? "" : " (" + spec.doc + ")"));
      resolved[spec.name] = spec.default_value;
    } else {
      try {
        resolved[spec.name] = validate_one(spec, *it, param_path);
      } catch (const ConfigError& e) {
        problems.push_back(e.what());
      }
    }
  }
  if (problems.size() == 1) throw ConfigError(problems.front());
  if (!problems.empty()) throw ConfigErrors(std::move(problems));
  return Params(std::move(resolved));
}

nlohmann::json ParamSchema::to_json() const {
  json out = json::array();
  for (const auto& spec : specs_) {
    json entry = {
        {"name", spec.name},           {"type", to_string(spec.type)}, {"default", spec.default_value},
        {"required", spec.required()}, {"allowed", spec.allowed()},    {"doc", spec.doc}};
    if (spec.range.lo) entry["min"] = *spec.range.lo;
    if (spec.range.hi) entry["max"] = *spec.range.hi;
    if (!spec.choices.empty()) entry["choices"] = spec.choices;
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace latentlab
