#include "latentlab/schedule_checks.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {
namespace {

// Tracks the worst error relative to its tolerance, and where it occurred.
struct Worst {
  double ratio = 0.0, error = 0.0, tolerance = 0.0;
  std::string where;
  std::int64_t skipped = 0;  // comparisons not made because a quantity underflows to 0
  void see(double e, double tol, const std::string& at) {
    const double r = e / tol;
    if (!(r <= ratio)) {  // also catches NaN
      ratio = r;
      error = e;
      tolerance = tol;
      where = at;
    }
  }
  CheckResult result(std::string name) const {
    std::ostringstream detail;
    detail << "max error " << error;
    if (!where.empty()) detail << " at " << where << " (tolerance there " << tolerance << ")";
    if (skipped > 0) detail << "; " << skipped << " comparisons skipped where alpha underflows to 0";
    return {std::move(name), ratio <= 1.0, detail.str()};
  }
};

// Tolerance for quantities computed from differences of log alpha^2 values: 1e-12, widened by the
// rounding of those logs, which at large T (log alpha_T^2 in the thousands) exceeds 1e-12 by itself.
double log_tolerance(double log_a, double log_b) {
  return 1e-12 + 4.0 * std::numeric_limits<double>::epsilon() * (std::fabs(log_a) + std::fabs(log_b));
}

// Whether x is a normal double, so that a relative comparison with it means something.
bool representable(double x) {
  return std::isnormal(x) && x > 1e-290;
}

std::string at_t(std::int64_t t) {
  return "t = " + std::to_string(t);
}
std::string at_st(std::int64_t s, std::int64_t t) {
  return "s = " + std::to_string(s) + ", t = " + std::to_string(t);
}

bool throws(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace

std::vector<CheckResult> check_schedule(const Schedule& schedule, std::uint64_t seed) {
  std::vector<CheckResult> results;
  const std::int64_t T = schedule.num_steps();
  if (T < 1) return {{"T >= 1", false, "num_steps() is " + std::to_string(T)}};

  const bool endpoint_ok = schedule.alpha(0) == 1.0 && schedule.sigma(0) == 0.0 &&
                           std::isinf(schedule.log_snr(0)) && schedule.log_snr(0) > 0;
  results.push_back({"t = 0 is the data: alpha_0 = 1, sigma_0 = 0, SNR(0) = inf", endpoint_ok,
                     "alpha_0 = " + format_number(schedule.alpha(0)) +
                         ", sigma_0 = " + format_number(schedule.sigma(0)) +
                         ", log SNR(0) = " + format_number(schedule.log_snr(0))});

  Worst unit_variance, one_step, snr_ratio;
  std::string beta_problem, snr_problem, finite_problem;
  for (std::int64_t t = 0; t <= T; ++t) {
    const double log_alpha2 = schedule.log_alpha2(t);
    if (!std::isfinite(log_alpha2) && finite_problem.empty())
      finite_problem = "log alpha^2 = " + format_number(log_alpha2) + " at " + at_t(t);
    const double alpha = schedule.alpha(t), sigma = schedule.sigma(t);
    unit_variance.see(std::fabs(alpha * alpha + sigma * sigma - 1.0), 1e-12, at_t(t));
    if (t == 0) continue;
    const double beta = schedule.beta(t);
    if (!(beta > 0.0 && beta < 1.0) && beta_problem.empty())
      beta_problem = "beta = " + format_number(beta) + " at " + at_t(t);
    const double alpha_step = schedule.alpha_ts(t, t - 1);
    one_step.see(std::fabs(alpha_step * alpha_step - (1.0 - beta)),
                 log_tolerance(log_alpha2, schedule.log_alpha2(t - 1)), at_t(t));
    if (!(schedule.log_snr(t) < schedule.log_snr(t - 1)) && snr_problem.empty())
      snr_problem = "log SNR " + format_number(schedule.log_snr(t)) + " at " + at_t(t) + " is not below " +
                    format_number(schedule.log_snr(t - 1)) + " at t - 1";
    const double snr = schedule.snr(t);
    if (representable(alpha * alpha) && representable(snr))
      snr_ratio.see(std::fabs(snr - alpha * alpha / (sigma * sigma)) / snr, 1e-9, at_t(t));
    else
      ++snr_ratio.skipped;
  }
  results.push_back({"log alpha_t^2 finite for t in [0, T]", finite_problem.empty(),
                     finite_problem.empty() ? "all t" : finite_problem});
  results.push_back(unit_variance.result("alpha_t^2 + sigma_t^2 = 1 (Eq. 4, variance preserving)"));
  results.push_back(
      {"beta_t in (0, 1)", beta_problem.empty(), beta_problem.empty() ? "all t" : beta_problem});
  results.push_back(one_step.result("alpha_{t|t-1}^2 = 1 - beta_t"));
  results.push_back(
      {"SNR(t) strictly decreasing", snr_problem.empty(), snr_problem.empty() ? "all t" : snr_problem});
  results.push_back(snr_ratio.result("SNR(t) = alpha_t^2 / sigma_t^2 (relative)"));

  Worst eq6, eq7, compose_alpha, compose_sigma;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> draw(0, T);
  for (int trial = 0; trial < 500; ++trial) {
    std::int64_t s = draw(rng), t = draw(rng);
    if (s > t) std::swap(s, t);
    const double log_t = schedule.log_alpha2(t), log_s = schedule.log_alpha2(s);
    const double tolerance = log_tolerance(log_t, log_s);
    const double alpha_ts = schedule.alpha_ts(t, s);
    if (representable(alpha_ts) && representable(schedule.alpha(t)))
      eq6.see(std::fabs(alpha_ts - schedule.alpha(t) / schedule.alpha(s)) / alpha_ts, tolerance, at_st(s, t));
    else
      ++eq6.skipped;
    eq7.see(
        std::fabs(schedule.sigma2_ts(t, s) - (schedule.sigma2(t) - alpha_ts * alpha_ts * schedule.sigma2(s))),
        tolerance, at_st(s, t));
    if (t - s >= 2) {
      const std::int64_t u = std::uniform_int_distribution<std::int64_t>(s + 1, t - 1)(rng);
      const double a_tu = schedule.alpha_ts(t, u), a_us = schedule.alpha_ts(u, s);
      if (representable(alpha_ts) && representable(a_tu * a_us))
        compose_alpha.see(std::fabs(alpha_ts - a_tu * a_us) / alpha_ts, tolerance, at_st(s, t));
      else
        ++compose_alpha.skipped;
      compose_sigma.see(std::fabs(schedule.sigma2_ts(t, s) -
                                  (a_tu * a_tu * schedule.sigma2_ts(u, s) + schedule.sigma2_ts(t, u))),
                        tolerance, at_st(s, t));
    }
  }
  results.push_back(eq6.result("Eq. 6: alpha_{t|s} = alpha_t / alpha_s (relative)"));
  results.push_back(eq7.result("Eq. 7: sigma^2_{t|s} = sigma_t^2 - alpha_{t|s}^2 sigma_s^2"));
  results.push_back(compose_alpha.result("alpha_{t|s} = alpha_{t|u} alpha_{u|s} for s < u < t (relative)"));
  results.push_back(
      compose_sigma.result("sigma^2_{t|s} = alpha_{t|u}^2 sigma^2_{u|s} + sigma^2_{t|u} for s < u < t"));

  const bool rejects = throws([&] { schedule.alpha(T + 1); }) && throws([&] { schedule.alpha(-1); }) &&
                       throws([&] { schedule.beta(0); }) &&
                       (T < 2 || throws([&] { schedule.alpha_ts(1, 2); }));
  results.push_back({"timesteps outside [0, T] (and s > t) are errors", rejects,
                     rejects ? "alpha(T+1), alpha(-1), beta(0), alpha_ts(1, 2) throw"
                             : "a call did not throw latentlab::Error"});
  return results;
}

}  // namespace latentlab
