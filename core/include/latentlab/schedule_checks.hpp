#pragma once
// The conformance checks every Schedule must pass, built-in or a researcher's plugin. Run them with
// `latentlab schedule NAME --check`; the test suite runs them on every built-in schedule.
#include <cstdint>
#include <string>
#include <vector>

#include "latentlab/export.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

struct CheckResult {
  std::string name;  // what is checked, with the equation it comes from
  bool passed = false;
  std::string detail;  // the worst error found and where, or why it failed
};

// Checks, for t = 0..T and 500 random pairs s < t drawn from `seed`:
//  - alpha_0 = 1, sigma_0 = 0, SNR(0) infinite; log alpha_t^2 finite;
//  - alpha_t^2 + sigma_t^2 = 1 within 1e-12 (variance preserving, Eq. 4);
//  - beta_t in (0, 1) and alpha_{t|t-1}^2 = 1 - beta_t;
//  - SNR strictly decreasing, and SNR(t) = alpha_t^2 / sigma_t^2 (relative 1e-9);
//  - Eq. 6, alpha_{t|s} = alpha_t / alpha_s (relative); Eq. 7,
//    sigma^2_{t|s} = sigma_t^2 - alpha_{t|s}^2 sigma_s^2; and that transitions compose through any
//    s < u < t;
//  - timesteps outside [0, T] are errors.
// Tolerances of the identities computed from log alpha^2 are 1e-12 plus 4 ulp of the logs involved,
// which matters only at very large T; relative comparisons are skipped (and counted) where alpha
// underflows to 0.
LATENTLAB_API std::vector<CheckResult> check_schedule(const Schedule& schedule, std::uint64_t seed = 1234);

}  // namespace latentlab
