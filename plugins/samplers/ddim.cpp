// `ddpm` (ancestral sampling, Appendix B Eq. 11-12) and `ddim` (Song et al. 2021).
#include <cmath>
#include <memory>

#include "grid.hpp"
#include "latentlab/error.hpp"

namespace latentlab::samplers {
namespace {

// Ancestral sampling with p(z_s | z_t) = q(z_s | z_t, x0_hat(z_t, t)) on any strided grid s < t:
//   mean     = alpha_{t|s} sigma_s^2 / sigma_t^2 z_t + alpha_s sigma^2_{t|s} / sigma_t^2 x0_hat   (Eq. 12)
//   variance = sigma^2_{t|s} sigma_s^2 / sigma_t^2 (the posterior's, Eq. 11) or sigma^2_{t|s} (the
//              upper bound, DDPM's "fixedlarge")
// The step to t = 0 returns x0_hat without noise.
class Ddpm : public Sampler {
 public:
  explicit Ddpm(const Params& params)
      : discretization_(discretization_param(params)), upper_(params.get_string("variance") == "upper") {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Grid grid(in.schedule, in.steps, discretization_);
    auto z = in.z_T;
    for (std::int64_t i = 0; i < grid.size(); ++i) {
      const auto t = grid.times[static_cast<std::size_t>(i)], s = grid.times[static_cast<std::size_t>(i) + 1];
      const auto x0 = x0_estimate(in.schedule, z, in.eps(z, t), t);
      if (s == 0) {
        z = x0;
        break;
      }
      const auto moments = step_moments(in.schedule, t, s);
      z = moments.z_coefficient * z + moments.x0_coefficient * x0 +
          std::sqrt(moments.variance) * standard_normal(z, in.generator);
    }
    return SamplerResult{z, grid.size(), grid.times.front(), grid.last_time()};
  }

  struct Moments {
    double z_coefficient, x0_coefficient, variance;
  };
  Moments step_moments(const Schedule& schedule, std::int64_t t, std::int64_t s) const {
    const double sigma2_t = schedule.sigma2(t), sigma2_s = schedule.sigma2(s);
    const double sigma2_ts = schedule.sigma2_ts(t, s);  // Eq. 7
    return Moments{schedule.alpha_ts(t, s) * sigma2_s / sigma2_t, schedule.alpha(s) * sigma2_ts / sigma2_t,
                   upper_ ? sigma2_ts : sigma2_ts * sigma2_s / sigma2_t};
  }

 private:
  Discretization discretization_;
  bool upper_;
};

// DDIM: z_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c xi, with
// c^2 = eta^2 sigma^2_{t|s} sigma_s^2 / sigma_t^2 (Song et al. 2021, Eq. 16). eta = 0 is deterministic
// (the probability-flow ODE's Euler step in sigma_t/alpha_t); eta = 1 is the ancestral step above.
class Ddim : public Sampler {
 public:
  explicit Ddim(const Params& params)
      : discretization_(discretization_param(params)), eta_(params.get_float("eta")) {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Grid grid(in.schedule, in.steps, discretization_);
    auto z = in.z_T;
    for (std::int64_t i = 0; i < grid.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const auto t = grid.times[k], s = grid.times[k + 1];
      const auto eps_hat = in.eps(z, t);
      if (eta_ == 0 || s == 0) {
        z = ddim_step(grid, i, z, eps_hat);
        continue;
      }
      const double c2 = eta_ * eta_ * in.schedule.sigma2_ts(t, s) * grid.sigma[k + 1] * grid.sigma[k + 1] /
                        (grid.sigma[k] * grid.sigma[k]);
      const auto x0 = x0_estimate(in.schedule, z, eps_hat, t);
      z = grid.alpha[k + 1] * x0 +
          std::sqrt(std::max(0.0, grid.sigma[k + 1] * grid.sigma[k + 1] - c2)) * eps_hat +
          std::sqrt(c2) * standard_normal(z, in.generator);
    }
    return SamplerResult{z, grid.size(), grid.times.front(), grid.last_time()};
  }

 private:
  Discretization discretization_;
  double eta_;
};

}  // namespace

void register_ddim_family(Registrar& registrar) {
  ParamSchema ddpm_schema;
  add_discretization(ddpm_schema)
      .choice("variance", "posterior", {"posterior", "upper"},
              "the reverse step's variance: the posterior's sigma^2_{t|s} sigma_s^2 / sigma_t^2 (Eq. 11) or "
              "the upper bound sigma^2_{t|s}");
  registrar.add<Sampler>("ddpm",
                         "ancestral sampling with the exact reverse step of Eq. 11-12 on any strided grid; "
                         "1 NFE per step",
                         ddpm_schema, [](const Params& params) { return std::make_unique<Ddpm>(params); });
  ParamSchema ddim_schema;
  add_discretization(ddim_schema)
      .number("eta", 0.0, "stochasticity: 0 deterministic (the probability-flow ODE), 1 the ancestral step",
              Range::closed(0.0, 1.0));
  registrar.add<Sampler>("ddim", "DDIM (Song et al. 2021); deterministic at eta = 0; 1 NFE per step",
                         ddim_schema, [](const Params& params) { return std::make_unique<Ddim>(params); });
}

}  // namespace latentlab::samplers
