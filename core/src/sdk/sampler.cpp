#include "latentlab/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

Sampler::~Sampler() = default;

const std::vector<std::string>& discretization_names() {
  static const std::vector<std::string> names = {"uniform", "quad", "linspace", "trailing"};
  return names;
}

const char* to_string(Discretization discretization) {
  return discretization_names()[static_cast<std::size_t>(discretization)].c_str();
}

Discretization discretization_from_string(const std::string& name) {
  const auto& names = discretization_names();
  const auto found = std::find(names.begin(), names.end(), name);
  if (found == names.end())
    throw ConfigError("discretization: expected one of " + join(names) + ", got '" + name + "'" +
                      did_you_mean(name, names));
  return static_cast<Discretization>(found - names.begin());
}

namespace {

// Times in ascending order, before the checks.
std::vector<std::int64_t> ascending_times(std::int64_t num_steps, std::int64_t steps,
                                          Discretization discretization) {
  const auto T = static_cast<double>(num_steps);
  const auto N = static_cast<double>(steps);
  std::vector<std::int64_t> times(static_cast<std::size_t>(steps));
  for (std::int64_t i = 0; i < steps; ++i) {
    const auto k = static_cast<double>(i);
    std::int64_t t = 0;
    switch (discretization) {
      case Discretization::Uniform: {
        // LDM make_ddim_timesteps: range(0, T, c) + 1 as 0-based indices, i.e. schedule step + 2.
        const std::int64_t c = num_steps / steps;
        t = i * c + 2;
        break;
      }
      case Discretization::Quad: {
        // numpy.linspace(0, sqrt(0.8 T), N): i * step with the step computed first, the last point
        // exact; then squared and truncated, as LDM's astype(int) does.
        const double stop = std::sqrt(0.8 * T);
        const double root = N == 1 ? 0.0 : i == steps - 1 ? stop : k * (stop / (N - 1));
        t = static_cast<std::int64_t>(root * root) + 2;
        break;
      }
      case Discretization::Linspace: {
        // diffusers: numpy.linspace(0, T - 1, N).round() as 0-based indices (round half to even).
        const double index = i == steps - 1 ? T - 1 : k * (N == 1 ? 0.0 : (T - 1) / (N - 1));
        t = N == 1 ? num_steps : static_cast<std::int64_t>(std::nearbyint(index)) + 1;
        break;
      }
      case Discretization::Trailing: {
        // diffusers: numpy.round(numpy.arange(T, 0, -T / N)) - 1 as 0-based indices; ascending here.
        const double step = T / N;
        t = static_cast<std::int64_t>(std::nearbyint(T + (N - 1 - k) * -step));
        break;
      }
    }
    times[static_cast<std::size_t>(i)] = t;
  }
  // The +2 of uniform and quad reaches T + 1 when c = 1 (N = T) or for tiny T; shift those grids down
  // by one, which is the grid 1..T for N = T (LDM itself indexes past its table there).
  if (times.back() > num_steps)
    for (auto& t : times) t -= times.back() - num_steps;
  return times;
}

}  // namespace

std::vector<std::int64_t> discretize(std::int64_t num_steps, std::int64_t steps,
                                     Discretization discretization) {
  const std::string what = std::string("discretization '") + to_string(discretization) + "'";
  if (steps < 1) throw ConfigError("steps: must be >= 1, got " + std::to_string(steps));
  if (steps > num_steps)
    throw ConfigError("steps: " + std::to_string(steps) + " sampling steps on a schedule with T = " +
                      std::to_string(num_steps) + "; use at most " + std::to_string(num_steps));
  auto times = ascending_times(num_steps, steps, discretization);
  const bool distinct =
      std::adjacent_find(times.begin(), times.end(), [](auto a, auto b) { return a >= b; }) == times.end();
  if (!distinct || times.front() < 1) {
    // Name the largest budget that works, so the message says what to do.
    std::int64_t largest = steps - 1;
    while (largest > 1) {
      const auto smaller = ascending_times(num_steps, largest, discretization);
      if (smaller.front() >= 1 && std::adjacent_find(smaller.begin(), smaller.end(),
                                                     [](auto a, auto b) { return a >= b; }) == smaller.end())
        break;
      --largest;
    }
    throw ConfigError(what + " gives repeated times for " + std::to_string(steps) +
                      " steps with T = " + std::to_string(num_steps) + "; use at most " +
                      std::to_string(largest) + " steps, or discretization 'linspace' or 'trailing'");
  }
  std::reverse(times.begin(), times.end());
  return times;
}

torch::Tensor standard_normal(const torch::Tensor& like, at::Generator& generator) {
  const auto dtype = like.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto noise = at::randn(like.sizes(), generator, torch::TensorOptions().dtype(dtype));
  return noise.to(like.device(), like.scalar_type());
}

torch::Tensor x0_estimate(const Schedule& schedule, const torch::Tensor& z_t, const torch::Tensor& eps_hat,
                          std::int64_t t) {
  if (t == 0) return z_t;
  // Eq. 4 solved for z_0; alpha_t guarded as in x0_from_prediction.
  const double alpha = std::max(schedule.alpha(t), kMinAlpha);
  return (z_t - schedule.sigma(t) * eps_hat) / alpha;
}

}  // namespace latentlab
