#pragma once
// The conformance suite every Schedule passes (built-in or a researcher's plugin):
//  - alpha_t^2 + sigma_t^2 = 1 within 1e-12 (variance preserving, Eq. 4),
//  - SNR strictly decreasing in t, infinite at t = 0,
//  - Eq. 6-7: alpha_{t|s} = alpha_t / alpha_s, sigma^2_{t|s} = sigma_t^2 - alpha_{t|s}^2 sigma_s^2, and
//    transitions compose (s < u < t), for random s < t,
//  - alpha_{t|t-1}^2 = 1 - beta_t, beta_t in (0, 1),
//  - timesteps outside [0, T] are errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "latentlab/error.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab::conformance {

inline void check_schedule(const Schedule& schedule, const std::string& label) {
  SCOPED_TRACE(label);
  const std::int64_t T = schedule.num_steps();
  ASSERT_GE(T, 1);
  EXPECT_DOUBLE_EQ(schedule.alpha(0), 1.0);
  EXPECT_EQ(schedule.sigma(0), 0.0);
  EXPECT_TRUE(std::isinf(schedule.log_snr(0)));

  for (std::int64_t t = 0; t <= T; ++t) {
    const double alpha = schedule.alpha(t), sigma = schedule.sigma(t);
    ASSERT_NEAR(alpha * alpha + sigma * sigma, 1.0, 1e-12) << "t = " << t;
    ASSERT_TRUE(std::isfinite(schedule.log_alpha2(t))) << "t = " << t;
    if (t == 0) continue;
    const double beta = schedule.beta(t);
    ASSERT_GT(beta, 0.0) << "t = " << t;
    ASSERT_LT(beta, 1.0) << "t = " << t;
    const double alpha_step = schedule.alpha_ts(t, t - 1);
    ASSERT_NEAR(alpha_step * alpha_step, 1.0 - beta, 1e-12) << "t = " << t;
    ASSERT_LT(schedule.log_snr(t), schedule.log_snr(t - 1)) << "SNR not strictly decreasing at t = " << t;
    ASSERT_NEAR(schedule.snr(t), alpha * alpha / (sigma * sigma), 1e-9 * schedule.snr(t)) << "t = " << t;
  }

  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<std::int64_t> draw(0, T);
  for (int trial = 0; trial < 500; ++trial) {
    std::int64_t s = draw(rng), t = draw(rng);
    if (s > t) std::swap(s, t);
    const double alpha_ts = schedule.alpha_ts(t, s);
    ASSERT_NEAR(alpha_ts, schedule.alpha(t) / schedule.alpha(s), 1e-12 * alpha_ts)
        << "Eq. 6, s=" << s << " t=" << t;
    const double expected_sigma2 = schedule.sigma2(t) - alpha_ts * alpha_ts * schedule.sigma2(s);
    ASSERT_NEAR(schedule.sigma2_ts(t, s), expected_sigma2, 1e-12) << "Eq. 7, s=" << s << " t=" << t;
    if (t - s >= 2) {
      const std::int64_t u = s + 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(t - s - 1));
      ASSERT_NEAR(alpha_ts, schedule.alpha_ts(t, u) * schedule.alpha_ts(u, s), 1e-12 * alpha_ts);
      const double a_tu = schedule.alpha_ts(t, u);
      ASSERT_NEAR(schedule.sigma2_ts(t, s), a_tu * a_tu * schedule.sigma2_ts(u, s) + schedule.sigma2_ts(t, u),
                  1e-12);
    }
  }

  EXPECT_THROW(schedule.alpha(T + 1), Error);
  EXPECT_THROW(schedule.alpha(-1), Error);
  EXPECT_THROW(schedule.beta(0), Error);
  EXPECT_THROW(schedule.alpha_ts(1, 2), Error);
}

}  // namespace latentlab::conformance
