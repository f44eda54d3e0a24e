// `euler`, `heun` and `euler_ancestral`: Karras et al. (2022) samplers in x = z_t / alpha_t and
// sigma' = sigma_t / alpha_t, where the probability-flow ODE reads dx/dsigma' = eps_hat and
// z_t = alpha_t x (k-diffusion's samplers, on the schedule's own times).
#include <cmath>
#include <memory>

#include "grid.hpp"
#include "latentlab/diffusion/forward_process.hpp"

namespace latentlab::samplers {
namespace {

// Euler: x_s = x_t + (sigma'_s - sigma'_t) eps_hat. Algebraically the same as DDIM with eta = 0.
// Heun (Karras Alg. 1): the Euler step, eps_hat at its end, and the trapezoidal rule with both; the
// step to sigma' = 0 stays Euler. 2 NFE per step, 1 on the last.
class KarrasOde : public Sampler {
 public:
  KarrasOde(const Params& params, bool heun) : discretization_(discretization_param(params)), heun_(heun) {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Grid grid(in.schedule, in.steps, discretization_);
    auto x = in.z_T / std::max(grid.alpha[0], kMinAlpha);  // as sigma_ratio is guarded
    std::int64_t nfe = 0;
    for (std::size_t k = 0; k + 1 < grid.times.size(); ++k) {
      const double dsigma = grid.sigma_ratio[k + 1] - grid.sigma_ratio[k];
      const auto d = in.eps(grid.alpha[k] * x, grid.times[k]);
      ++nfe;
      auto x_next = x + dsigma * d;
      if (heun_ && grid.times[k + 1] != 0) {
        const auto d_next = in.eps(grid.alpha[k + 1] * x_next, grid.times[k + 1]);
        ++nfe;
        x_next = x + dsigma * 0.5 * (d + d_next);
      }
      x = x_next;
    }
    return SamplerResult{x, nfe, grid.times.front(), grid.last_time()};
  }

 private:
  Discretization discretization_;
  bool heun_;
};

// Euler ancestral: a step down to sigma_down, then fresh noise of size sigma_up, with
//   sigma_up = min(sigma'_s, eta sqrt(sigma'_s^2 (sigma'_t^2 - sigma'_s^2) / sigma'_t^2)),
//   sigma_down = sqrt(sigma'_s^2 - sigma_up^2)
// (k-diffusion's get_ancestral_step). At eta = 1 this is the ancestral step of `ddpm`'s posterior
// variance written in x. 1 NFE per step.
class EulerAncestral : public Sampler {
 public:
  explicit EulerAncestral(const Params& params)
      : discretization_(discretization_param(params)),
        eta_(params.get_float("eta")),
        s_noise_(params.get_float("s_noise")) {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Grid grid(in.schedule, in.steps, discretization_);
    auto x = in.z_T / std::max(grid.alpha[0], kMinAlpha);  // as sigma_ratio is guarded
    for (std::size_t k = 0; k + 1 < grid.times.size(); ++k) {
      const double from = grid.sigma_ratio[k], to = grid.sigma_ratio[k + 1];
      const auto d = in.eps(grid.alpha[k] * x, grid.times[k]);
      const double up = std::min(to, eta_ * std::sqrt(to * to * (from * from - to * to) / (from * from)));
      const double down = std::sqrt(to * to - up * up);
      x = x + (down - from) * d;
      if (up > 0) x = x + s_noise_ * up * standard_normal(x, in.generator);
    }
    return SamplerResult{x, grid.size(), grid.times.front(), grid.last_time()};
  }

 private:
  Discretization discretization_;
  double eta_, s_noise_;
};

}  // namespace

void register_karras(Registrar& registrar) {
  ParamSchema ode_schema;
  add_discretization(ode_schema);
  registrar.add<Sampler>("euler",
                         "Euler on the probability-flow ODE in sigma_t/alpha_t (Karras et al. 2022); equals "
                         "ddim at eta 0; 1 NFE per step",
                         ode_schema,
                         [](const Params& params) { return std::make_unique<KarrasOde>(params, false); });
  registrar.add<Sampler>(
      "heun",
      "Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1); "
      "2 NFE per step, 1 on the last",
      ode_schema, [](const Params& params) { return std::make_unique<KarrasOde>(params, true); });
  ParamSchema ancestral_schema;
  add_discretization(ancestral_schema)
      .number("eta", 1.0, "share of each step's variance that is fresh noise (1: ancestral, 0: euler)",
              Range::closed(0.0, 1.0))
      .number("s_noise", 1.0, "scale of the fresh noise (Karras's S_noise)", Range::at_least(0.0));
  registrar.add<Sampler>("euler_ancestral",
                         "Euler ancestral in sigma_t/alpha_t (k-diffusion); eta 1 matches ddpm's posterior "
                         "variance; 1 NFE per step",
                         ancestral_schema,
                         [](const Params& params) { return std::make_unique<EulerAncestral>(params); });
}

}  // namespace latentlab::samplers
