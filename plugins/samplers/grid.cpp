#include "grid.hpp"

#include <cmath>
#include <limits>

#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/plugin.hpp"

namespace latentlab::samplers {

Grid::Grid(const Schedule& schedule, std::int64_t steps, Discretization discretization)
    : schedule(schedule), times(discretize(schedule.num_steps(), steps, discretization)) {
  times.push_back(0);
  for (const auto t : times) {
    alpha.push_back(schedule.alpha(t));
    sigma.push_back(schedule.sigma(t));
    sigma_ratio.push_back(t == 0 ? 0.0 : sigma.back() / std::max(alpha.back(), kMinAlpha));
    lambda.push_back(t == 0 ? std::numeric_limits<double>::infinity() : 0.5 * schedule.log_snr(t));
  }
}

ParamSchema& add_discretization(ParamSchema& schema) {
  return schema.choice("discretization", "uniform", discretization_names(),
                       "which times the step budget visits: uniform (LDM's DDIM grid), quad (LDM), "
                       "linspace (1..T) or trailing (from T down)");
}

Discretization discretization_param(const Params& params) {
  return discretization_from_string(params.get_string("discretization"));
}

torch::Tensor ddim_step(const Grid& grid, std::int64_t i, const torch::Tensor& z_t,
                        const torch::Tensor& eps_hat) {
  const auto s = static_cast<std::size_t>(i) + 1;
  const auto x0 = x0_estimate(grid.schedule, z_t, eps_hat, grid.times[s - 1]);
  if (grid.times[s] == 0) return x0;
  return grid.alpha[s] * x0 + grid.sigma[s] * eps_hat;
}

}  // namespace latentlab::samplers

namespace {

void register_factories(latentlab::Registrar& registrar) {
  latentlab::samplers::register_ddim_family(registrar);
  latentlab::samplers::register_plms(registrar);
  latentlab::samplers::register_dpmpp(registrar);
  latentlab::samplers::register_karras(registrar);
}

}  // namespace

LATENTLAB_PLUGIN("latentlab-samplers", LATENTLAB_VERSION_STRING, register_factories)
