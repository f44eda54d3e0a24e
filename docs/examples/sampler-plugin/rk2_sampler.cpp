// `rk2`: a two-stage Runge-Kutta method on the probability-flow ODE dx/dsigma' = eps_hat, written in
// x = z_t / alpha_t and sigma' = sigma_t / alpha_t. Each step from t to s evaluates eps_hat at t and at
// the schedule step m halfway between them, and combines the two with the weights that make a
// two-stage method second order for any position c of m in the step (b2 = 1 / (2c), b1 = 1 - b2).
// The step to t = 0 is an Euler step, i.e. the x0 estimate. 2 NFE per step, 1 on the last.
#include <latentlab/plugin.hpp>
#include <latentlab/sampler.hpp>

#include <memory>

namespace {

using namespace latentlab;

class Rk2 : public Sampler {
 public:
  explicit Rk2(const Params& params)
      : discretization_(discretization_from_string(params.get_string("discretization"))) {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Schedule& schedule = in.schedule;
    auto times = discretize(schedule.num_steps(), in.steps, discretization_);  // descending, in [1, T]
    const auto sigma_ratio = [&](std::int64_t t) {
      return t == 0 ? 0.0 : schedule.sigma(t) / schedule.alpha(t);
    };
    auto x = in.z_T / schedule.alpha(times.front());
    std::int64_t nfe = 0;
    for (std::size_t i = 0; i < times.size(); ++i) {
      const std::int64_t t = times[i], s = i + 1 < times.size() ? times[i + 1] : 0;
      const double h = sigma_ratio(s) - sigma_ratio(t);
      const auto d1 = in.eps(schedule.alpha(t) * x, t);
      ++nfe;
      const std::int64_t m = (t + s) / 2;
      if (s == 0 || m == t || m == s) {  // last step, or no schedule step in between: Euler
        x = x + h * d1;
        continue;
      }
      const double c = (sigma_ratio(m) - sigma_ratio(t)) / h;
      const auto d2 = in.eps(schedule.alpha(m) * (x + c * h * d1), m);
      ++nfe;
      const double b2 = 1.0 / (2.0 * c);
      x = x + h * ((1.0 - b2) * d1 + b2 * d2);
    }
    // The last step gave the x0 estimate at the last grid time (see SamplerResult::end_t).
    return SamplerResult{x, nfe, times.front(), times.back()};
  }

 private:
  Discretization discretization_;
};

void register_factories(Registrar& registrar) {
  registrar.add<Sampler>("rk2",
                         "two-stage second-order Runge-Kutta on the probability-flow ODE; 2 NFE per step",
                         ParamSchema().choice("discretization", "linspace", discretization_names(),
                                              "which times the budget visits"),
                         [](const Params& params) { return std::make_unique<Rk2>(params); });
}

}  // namespace

LATENTLAB_PLUGIN("rk2-sampler", "1.0.0", register_factories)
