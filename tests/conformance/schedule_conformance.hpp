#pragma once
// GoogleTest wrapper around latentlab::check_schedule (core/include/latentlab/schedule_checks.hpp),
// the conformance suite every Schedule passes.
#include <gtest/gtest.h>

#include "latentlab/schedule_checks.hpp"

namespace latentlab::conformance {

inline void check_schedule(const Schedule& schedule, const std::string& label) {
  SCOPED_TRACE(label);
  const auto results = latentlab::check_schedule(schedule);
  EXPECT_GE(results.size(), 11u);
  for (const auto& result : results) EXPECT_TRUE(result.passed) << result.name << ": " << result.detail;
}

}  // namespace latentlab::conformance
