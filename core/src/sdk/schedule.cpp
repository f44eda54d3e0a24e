#include "latentlab/schedule.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

Schedule::~Schedule() = default;

void Schedule::check_t(std::int64_t t, std::int64_t lo) const {
  if (t < lo || t > num_steps())
    throw Error("timestep " + std::to_string(t) + " is outside [" + std::to_string(lo) + ", " +
                std::to_string(num_steps()) + "] of this schedule");
}

double Schedule::beta(std::int64_t t) const {
  check_t(t, 1);
  return sigma2_ts(t, t - 1);
}

double Schedule::alpha(std::int64_t t) const {
  check_t(t);
  return std::exp(0.5 * log_alpha2(t));
}

double Schedule::sigma2(std::int64_t t) const {
  check_t(t);
  return 0.0 - std::expm1(log_alpha2(t));  // 0.0 - : +0 rather than -0 at t = 0
}

double Schedule::sigma(std::int64_t t) const {
  return std::sqrt(sigma2(t));
}

double Schedule::snr(std::int64_t t) const {
  return std::exp(log_snr(t));
}

double Schedule::log_snr(std::int64_t t) const {
  check_t(t);
  if (t == 0) return std::numeric_limits<double>::infinity();
  const double la2 = log_alpha2(t);
  return la2 - std::log(-std::expm1(la2));
}

double Schedule::alpha_ts(std::int64_t t, std::int64_t s) const {
  check_t(t);
  check_t(s);
  if (s > t)
    throw Error("alpha_{t|s} needs s <= t, got s = " + std::to_string(s) + ", t = " + std::to_string(t));
  return std::exp(0.5 * (log_alpha2(t) - log_alpha2(s)));
}

double Schedule::sigma2_ts(std::int64_t t, std::int64_t s) const {
  check_t(t);
  check_t(s);
  if (s > t)
    throw Error("sigma^2_{t|s} needs s <= t, got s = " + std::to_string(s) + ", t = " + std::to_string(t));
  // For variance-preserving schedules Eq. 7 reduces to 1 - alpha_{t|s}^2.
  return 0.0 - std::expm1(log_alpha2(t) - log_alpha2(s));
}

DiscreteSchedule::DiscreteSchedule(const std::vector<double>& betas) : betas_(betas) {
  if (betas.empty()) throw ConfigError("a schedule needs at least one beta (T >= 1)");
  log_alpha2_.reserve(betas.size() + 1);
  log_alpha2_.push_back(0.0);
  for (std::size_t i = 0; i < betas.size(); ++i) {
    const double beta = betas[i];
    if (!(beta > 0.0 && beta < 1.0))
      throw ConfigError("beta at t = " + std::to_string(i + 1) + " is " + format_number(beta) +
                        "; every beta must lie in (0, 1)");
    log_alpha2_.push_back(log_alpha2_.back() + std::log1p(-beta));
  }
}

DiscreteSchedule::~DiscreteSchedule() = default;

double DiscreteSchedule::beta(std::int64_t t) const {
  check_t(t, 1);
  return betas_[static_cast<std::size_t>(t - 1)];
}

std::int64_t DiscreteSchedule::num_steps() const {
  return static_cast<std::int64_t>(log_alpha2_.size()) - 1;
}

double DiscreteSchedule::log_alpha2(std::int64_t t) const {
  check_t(t);
  return log_alpha2_[static_cast<std::size_t>(t)];
}

}  // namespace latentlab
