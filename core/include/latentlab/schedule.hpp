#pragma once
// Noise schedules: the forward process q(z_t | z_0) = N(alpha_t z_0, sigma_t^2 I)
// (Rombach et al. 2022, Appendix B Eq. 4), for discrete times t = 0..T, all in float64.
//
// Implementations provide T and log(alpha_t^2); everything else follows. The schedules here are
// variance preserving: sigma_t^2 = 1 - alpha_t^2. t = 0 is the data: alpha_0 = 1, sigma_0 = 0.
#include <cstdint>
#include <vector>

#include "latentlab/export.hpp"

namespace latentlab {

class LATENTLAB_API Schedule {
 public:
  static constexpr const char* kKind = "schedule";
  virtual ~Schedule();

  // Number of diffusion steps T.
  virtual std::int64_t num_steps() const = 0;
  // log alpha_t^2 for t in [0, T]; 0 at t = 0 and strictly decreasing.
  virtual double log_alpha2(std::int64_t t) const = 0;

  // beta_t = 1 - alpha_{t|t-1}^2, t in [1, T].
  virtual double beta(std::int64_t t) const;
  double alpha(std::int64_t t) const;
  double sigma(std::int64_t t) const;
  double sigma2(std::int64_t t) const;  // 1 - alpha_t^2, computed without cancellation
  // SNR(t) = alpha_t^2 / sigma_t^2 (infinite at t = 0).
  double snr(std::int64_t t) const;
  double log_snr(std::int64_t t) const;
  // Eq. 6: alpha_{t|s} = alpha_t / alpha_s, for s < t.
  double alpha_ts(std::int64_t t, std::int64_t s) const;
  // Eq. 7: sigma^2_{t|s} = sigma_t^2 - alpha_{t|s}^2 sigma_s^2, for s < t.
  double sigma2_ts(std::int64_t t, std::int64_t s) const;

 protected:
  // Throws Error naming the valid range when t is outside [lo, T].
  void check_t(std::int64_t t, std::int64_t lo = 0) const;
};

// A schedule defined by its betas (t = 1..T), as in DDPM and LDM. alpha_t^2 = prod_{s<=t} (1 - beta_s),
// accumulated as a sum of log1p(-beta_s) so that small-t values keep full precision.
class LATENTLAB_API DiscreteSchedule : public Schedule {
 public:
  // Each beta must lie in (0, 1). Throws ConfigError otherwise.
  explicit DiscreteSchedule(const std::vector<double>& betas);
  ~DiscreteSchedule() override;

  std::int64_t num_steps() const override;
  double log_alpha2(std::int64_t t) const override;
  double beta(std::int64_t t) const override;  // exactly the beta given

 private:
  std::vector<double> betas_;       // index t - 1
  std::vector<double> log_alpha2_;  // index t = 0..T
};

}  // namespace latentlab
