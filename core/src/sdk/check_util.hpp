#pragma once
// Running one conformance check (private to the core library).
#include <functional>
#include <string>

#include "latentlab/schedule_checks.hpp"

namespace latentlab::detail {

// Runs `body`, which returns "" when the check passes or what went wrong; exceptions fail it.
inline CheckResult check(const std::string& name, const std::function<std::string()>& body) {
  CheckResult result{name, false, ""};
  try {
    result.detail = body();
    result.passed = result.detail.empty();
    if (result.passed) result.detail = "ok";
  } catch (const std::exception& e) {
    result.detail = std::string("threw: ") + e.what();
  }
  return result;
}

}  // namespace latentlab::detail
