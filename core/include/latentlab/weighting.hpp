#pragma once
// Loss weightings for the stage-2 objective (Rombach et al. 2022, Eq. 2 and Appendix B Eq. 13-15).
//
// The denoiser is trained on
//     L = E_{t ~ p(t)} [ w(t) / (T p(t)) * mse_t ],   mse_t = mean over latent dims of (eps - eps_hat)^2,
// which equals E_{t ~ U{1..T}} [ w(t) mse_t ] whatever the proposal p(t) is (importance sampling only
// changes the variance). w = 1 and uniform p is Eq. 2, what LDM trains with. A weighting plugin gives
// w(t) and says how t should be drawn; the host does the drawing and the 1/(T p(t)) correction.
#include <string>
#include <vector>

#include "latentlab/export.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

// How the trainer draws t in 1..T.
enum class TimestepSampling {
  Uniform,      // p(t) = 1/T
  Weights,      // p(t) proportional to w(t)
  LossHistory,  // p(t) proportional to sqrt(E[(w(t) mse_t)^2]), estimated online (Nichol & Dhariwal 2021)
};

LATENTLAB_API const char* to_string(TimestepSampling sampling);
// "uniform", "weights" or "loss_history"; throws ConfigError otherwise.
LATENTLAB_API TimestepSampling timestep_sampling_from_string(const std::string& name);

class LATENTLAB_API LossWeighting {
 public:
  static constexpr const char* kKind = "weighting";
  virtual ~LossWeighting();

  // w(t) for t = 1..T (element t - 1): the weight on the per-sample mean squared eps error. Every
  // weight must be finite and >= 0. Called once per schedule.
  virtual std::vector<double> weights(const Schedule& schedule) const = 0;
  // How t is drawn. The default is uniform.
  virtual TimestepSampling timestep_sampling() const { return TimestepSampling::Uniform; }
};

}  // namespace latentlab
