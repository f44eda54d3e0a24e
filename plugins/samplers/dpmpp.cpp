// `dpmpp_2m`: DPM-Solver++(2M) (Lu et al. 2022), data prediction, multistep, in log-SNR.
#include <cmath>
#include <memory>

#include "grid.hpp"

namespace latentlab::samplers {
namespace {

// With lambda_t = log(alpha_t / sigma_t) and h = lambda_s - lambda_t > 0 for the step t -> s:
//   z_s = (sigma_s / sigma_t) z_t - alpha_s expm1(-h) D
// where D = x0_hat_t on the first step (DPM-Solver++ 1, which is DDIM) and afterwards the
// second-order multistep combination D = (1 + 1/(2r)) x0_hat_t - 1/(2r) x0_hat_prev, r = h_prev / h.
// The step to t = 0 (lambda = inf) is first order, D = x0_hat_t ("lower order final"), so the result
// is the x0 estimate at the last grid time. 1 NFE per step.
class DpmSolverPP2M : public Sampler {
 public:
  explicit DpmSolverPP2M(const Params& params) : discretization_(discretization_param(params)) {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Grid grid(in.schedule, in.steps, discretization_);
    auto z = in.z_T;
    torch::Tensor previous_x0;
    double previous_h = 0;
    for (std::int64_t i = 0; i < grid.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const auto x0 = x0_estimate(in.schedule, z, in.eps(z, grid.times[k]), grid.times[k]);
      if (grid.is_final(i)) {
        z = x0;
        break;
      }
      const double h = grid.lambda[k + 1] - grid.lambda[k];
      torch::Tensor data_estimate = x0;
      if (previous_x0.defined()) {
        const double r = previous_h / h;
        data_estimate = (1.0 + 0.5 / r) * x0 - (0.5 / r) * previous_x0;
      }
      z = (grid.sigma[k + 1] / grid.sigma[k]) * z - grid.alpha[k + 1] * std::expm1(-h) * data_estimate;
      previous_x0 = x0;
      previous_h = h;
    }
    return SamplerResult{z, grid.size(), grid.times.front(), grid.last_time()};
  }

 private:
  Discretization discretization_;
};

}  // namespace

void register_dpmpp(Registrar& registrar) {
  ParamSchema schema;
  add_discretization(schema);
  registrar.add<Sampler>(
      "dpmpp_2m",
      "DPM-Solver++(2M): second-order multistep in log-SNR on the data prediction, first-order "
      "final step; 1 NFE per step",
      schema, [](const Params& params) { return std::make_unique<DpmSolverPP2M>(params); });
}

}  // namespace latentlab::samplers
