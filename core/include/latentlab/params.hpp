#pragma once
// Plugin parameter schemas and validated parameter values.
//
// A plugin declares its parameters once, as a ParamSchema; the host validates the JSON a user gave
// (spec file or --set) against it before anything runs. Validation fills in defaults and rejects
// unknown keys (suggesting the closest valid one), wrong types and out-of-range values, with errors
// that name the JSON path, the bad value and what is allowed.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "latentlab/export.hpp"

namespace latentlab {

enum class ParamType { Int, Float, Bool, String, Enum, NumberList };

LATENTLAB_API const char* to_string(ParamType type);

// An interval for numbers (and for every element of a number list). Bounds are optional.
struct LATENTLAB_API Range {
  std::optional<double> lo, hi;
  bool lo_open = false, hi_open = false;

  static Range any() { return {}; }
  static Range closed(double lo, double hi) { return {lo, hi, false, false}; }
  static Range open(double lo, double hi) { return {lo, hi, true, true}; }
  static Range at_least(double lo) { return {lo, std::nullopt, false, false}; }
  static Range above(double lo) { return {lo, std::nullopt, true, false}; }

  bool contains(double value) const;
  // "[1, 100000]", "(0, 1)", "> 0", "any"; bounds printed as integers when `integer`.
  std::string to_string(bool integer = false) const;
};

struct LATENTLAB_API ParamSpec {
  std::string name;
  ParamType type = ParamType::Float;
  nlohmann::json default_value;      // null: the parameter is required
  Range range;                       // Int, Float, NumberList elements
  std::vector<std::string> choices;  // Enum
  std::size_t min_length = 0;        // NumberList
  std::string doc;

  bool required() const { return default_value.is_null(); }
  // What a valid value looks like, for error messages and `plugins show`.
  std::string allowed() const;
};

// Validated parameters with every default filled in. Each accessor checks that the stored value has
// its type (an int parameter is read with get_int, a float one with get_float, ...).
class LATENTLAB_API Params {
 public:
  Params() = default;
  explicit Params(nlohmann::json values) : values_(std::move(values)) {}

  std::int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  std::string get_string(const std::string& name) const;  // String and Enum
  std::vector<double> get_numbers(const std::string& name) const;

  // The resolved values, as stored in results (defaults included).
  const nlohmann::json& json() const { return values_; }

 private:
  using value_t = nlohmann::json::value_t;
  const nlohmann::json& at(const std::string& name, value_t type, const char* what) const;
  nlohmann::json values_ = nlohmann::json::object();
};

class LATENTLAB_API ParamSchema {
 public:
  // Builders; each returns *this so a schema reads as one expression.
  ParamSchema& integer(const std::string& name, std::optional<std::int64_t> default_value,
                       const std::string& doc, Range range = Range::any());
  ParamSchema& number(const std::string& name, std::optional<double> default_value, const std::string& doc,
                      Range range = Range::any());
  ParamSchema& boolean(const std::string& name, bool default_value, const std::string& doc);
  ParamSchema& string(const std::string& name, std::optional<std::string> default_value,
                      const std::string& doc);
  ParamSchema& choice(const std::string& name, const std::string& default_value,
                      std::vector<std::string> choices, const std::string& doc);
  ParamSchema& number_list(const std::string& name, std::optional<std::vector<double>> default_value,
                           const std::string& doc, Range element_range = Range::any(),
                           std::size_t min_length = 0);

  // Checks `given` (an object, or null for "all defaults") and returns the resolved parameters.
  // `path` names where `given` sits in the user's input, e.g. "schedule.params"; `owner` names the
  // plugin, e.g. "schedule 'linear'". Throws ConfigError.
  Params validate(const nlohmann::json& given, const std::string& path, const std::string& owner) const;

  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ParamSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;
  nlohmann::json to_json() const;  // machine-readable schema (for `plugins show --format json`)

 private:
  ParamSchema& add(ParamSpec spec);
  std::vector<ParamSpec> specs_;
};

}  // namespace latentlab
