#pragma once
// What every built-in sampler shares: the grid of times it visits with their float64 alpha_t, sigma_t,
// and the pieces of the DDIM step (docs/samplers.md).
#include <cstdint>
#include <memory>
#include <vector>

#include "latentlab/plugin.hpp"
#include "latentlab/sampler.hpp"

namespace latentlab::samplers {

// The times t_0 > t_1 > ... > t_{N-1} of the discretisation, then t_N = 0 (the data), with their
// schedule values. Index i runs over 0..N.
struct Grid {
  Grid(const Schedule& schedule, std::int64_t steps, Discretization discretization);

  std::int64_t size() const { return static_cast<std::int64_t>(times.size()) - 1; }  // N steps
  std::int64_t last_time() const { return times[times.size() - 2]; }                 // t_{N-1}
  bool is_final(std::int64_t i) const { return times[static_cast<std::size_t>(i) + 1] == 0; }

  const Schedule& schedule;
  std::vector<std::int64_t> times;
  std::vector<double> alpha, sigma;
  std::vector<double> sigma_ratio;  // sigma_t / alpha_t (alpha guarded by kMinAlpha), 0 at t = 0
  std::vector<double> lambda;       // log(alpha_t / sigma_t), +inf at t = 0
};

// The `discretization` parameter every built-in sampler takes.
ParamSchema& add_discretization(ParamSchema& schema);
Discretization discretization_param(const Params& params);

// The deterministic DDIM step (Song et al. 2021, Eq. 12 with sigma = 0) from grid index i to i + 1
// with noise prediction eps_hat: z_s = alpha_s x0_hat + sigma_s eps_hat.
torch::Tensor ddim_step(const Grid& grid, std::int64_t i, const torch::Tensor& z_t,
                        const torch::Tensor& eps_hat);

// The built-ins' factories (one file each).
void register_ddim_family(Registrar& registrar);  // ddpm, ddim
void register_plms(Registrar& registrar);
void register_dpmpp(Registrar& registrar);
void register_karras(Registrar& registrar);  // euler, heun, euler_ancestral

}  // namespace latentlab::samplers
