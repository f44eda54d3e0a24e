#pragma once
// Numbers in JSON reports.
#include <cmath>

#include <nlohmann/json.hpp>

namespace latentlab {

// A number for a JSON report: null for NaN and inf, which JSON cannot spell.
inline nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
}

}  // namespace latentlab
