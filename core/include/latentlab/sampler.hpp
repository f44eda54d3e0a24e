#pragma once
// Samplers: from noise z_T to an estimate of z_0, given only a noise-prediction function and the
// schedule (Rombach et al. 2022, Appendix B Eq. 11-12 for the ancestral step; docs/samplers.md for
// every built-in's formulas).
//
// A sampler never sees networks, conditioners or guiders: the host binds the model, its
// conditioning and the guider into one function eps_hat(z_t, t) and hands it over.
//
//   class MySampler : public latentlab::Sampler {
//     SamplerResult sample(const SamplerInput& in) const override {
//       const auto grid = latentlab::discretize(in.schedule.num_steps(), in.steps, Discretization::Uniform);
//       ...  // call in.eps(z, t) for t in grid, step with in.schedule's float64 alpha_t, sigma_t
//     }
//   };
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

// The noise prediction eps_hat(z_t, t) for the whole batch at one step t in 1..T.
// z_t: [B, ...] -> [B, ...] with z_t's shape, dtype and device.
using EpsFn = std::function<torch::Tensor(const torch::Tensor& z_t, std::int64_t t)>;

struct SamplerInput {
  const EpsFn& eps;
  const Schedule& schedule;
  // The step budget: how many grid times the sampler visits (its NFE per step is its own; see
  // docs/samplers.md). >= 1.
  std::int64_t steps;
  // The starting latents [B, ...], usually N(0, I); they also give the shape, dtype and device. The
  // sampler takes them to be z at its first grid time (SamplerResult::start_t).
  torch::Tensor z_T;
  // The source of every random draw the sampler makes (a CPU generator; draw with standard_normal()).
  at::Generator& generator;
};

struct SamplerResult {
  torch::Tensor z0;      // [B, ...] like z_T: the sampler's estimate of the data
  std::int64_t nfe = 0;  // calls of eps (each one evaluates the whole batch)
  // The grid time that z_T was taken to be at (the first time eps is called at).
  std::int64_t start_t = 0;
  // 0 when z0 is the state at t = 0 itself. > 0 when the sampler stopped at that grid time and
  // returned the x0 estimate there, z0 = (z_t - sigma_t eps_hat) / alpha_t: the usual last step, which
  // is what a step to t = 0 with sigma_0 = 0 computes. The bench compares with the exact answer of the
  // same kind.
  std::int64_t end_t = 0;
};

class LATENTLAB_API Sampler {
 public:
  static constexpr const char* kKind = "sampler";
  virtual ~Sampler();

  // Must be deterministic given in.generator's state, and must not change z_T.
  virtual SamplerResult sample(const SamplerInput& in) const = 0;
};

// How a step budget N becomes grid times in 1..T (descending; after the last one a sampler steps to
// t = 0). Schedule step t here is LDM's 0-based index t - 1 (docs/samplers.md has the table).
enum class Discretization {
  Uniform,   // LDM's DDIM "uniform": c = T / N, times 2, c + 2, 2c + 2, ... (0-based 1, c + 1, ...)
  Quad,      // LDM's "quad": (linspace(0, sqrt(0.8 T), N)^2 rounded down) + 2
  Linspace,  // round(linspace(1, T, N)): both ends included
  Trailing,  // round(T - i T / N), i = 0..N-1: starts at T, ends at T / N (Lin et al. 2023)
};

LATENTLAB_API const char* to_string(Discretization discretization);
// "uniform", "quad", "linspace" or "trailing"; throws ConfigError otherwise.
LATENTLAB_API Discretization discretization_from_string(const std::string& name);
LATENTLAB_API const std::vector<std::string>& discretization_names();

// N strictly decreasing times in [1, T]. Throws ConfigError when N < 1, N > T, or when the rule
// cannot give N distinct times (quad with N close to T), naming the largest N that works.
LATENTLAB_API std::vector<std::int64_t> discretize(std::int64_t num_steps, std::int64_t steps,
                                                   Discretization discretization);

// N(0, I) noise shaped like `like` (its dtype and device), drawn on the CPU from `generator` so that a
// seed gives the same numbers on every device.
LATENTLAB_API torch::Tensor standard_normal(const torch::Tensor& like, at::Generator& generator);

// x0_hat = (z_t - sigma_t eps_hat) / alpha_t, with alpha_t and sigma_t of schedule step t (t = 0 gives
// z_t itself). Coefficients in float64; the result has z_t's dtype.
LATENTLAB_API torch::Tensor x0_estimate(const Schedule& schedule, const torch::Tensor& z_t,
                                        const torch::Tensor& eps_hat, std::int64_t t);

}  // namespace latentlab
