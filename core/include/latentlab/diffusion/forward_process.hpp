#pragma once
// The forward process on latents and the denoiser's parameterisations (Rombach et al. 2022,
// Appendix B). Schedule values are kept in float64 and gathered per sample as [B, 1, ..., 1].
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "latentlab/export.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

// What the network predicts. The loss is always on eps (Eq. 2); the others are converted.
enum class Prediction {
  Eps,  // eps_hat, the paper's parameterisation
  X0,   // z0_hat
  V,    // v_hat = alpha_t eps - sigma_t z_0 (Salimans & Ho 2022), for variance-preserving schedules
};

LATENTLAB_API const char* to_string(Prediction prediction);
// "eps", "x0" or "v"; throws ConfigError otherwise.
LATENTLAB_API Prediction prediction_from_string(const std::string& name);

// x0_hat = (z_t - sigma_t eps_hat) / alpha_t divides by alpha_t; it is clamped from below to this so
// that a schedule reaching alpha_T = 0 gives large finite values, never inf or nan.
inline constexpr double kMinAlpha = 1e-6;

// Conversions between parameterisations. alpha and sigma broadcast against z_t (e.g. [B, 1, 1, 1]);
// the coefficients are formed in float64 and the result has z_t's dtype.
LATENTLAB_API torch::Tensor eps_from_prediction(Prediction prediction, const torch::Tensor& output,
                                                const torch::Tensor& z_t, const torch::Tensor& alpha,
                                                const torch::Tensor& sigma);
LATENTLAB_API torch::Tensor x0_from_prediction(Prediction prediction, const torch::Tensor& output,
                                               const torch::Tensor& z_t, const torch::Tensor& alpha,
                                               const torch::Tensor& sigma);
// The regression target of a parameterisation given the true z_0 and eps.
LATENTLAB_API torch::Tensor prediction_target(Prediction prediction, const torch::Tensor& z0,
                                              const torch::Tensor& eps, const torch::Tensor& alpha,
                                              const torch::Tensor& sigma);

// q(z_t | z_0) of a schedule as float64 lookup tables over t = 0..T.
class LATENTLAB_API ForwardProcess {
 public:
  explicit ForwardProcess(const Schedule& schedule);

  std::int64_t num_steps() const { return num_steps_; }

  // Per-sample values for t: [B] int64 in [0, T]; the result is float64 with shape [B, 1, ..., 1] of
  // rank `rank` (4 for images), on t's device.
  torch::Tensor alpha(const torch::Tensor& t, std::int64_t rank = 4) const;
  torch::Tensor sigma(const torch::Tensor& t, std::int64_t rank = 4) const;
  // SNR(t) = alpha_t^2 / sigma_t^2 (inf at t = 0).
  torch::Tensor snr(const torch::Tensor& t, std::int64_t rank = 4) const;

  // Eq. 4 on latents: z_t = alpha_t z_0 + sigma_t eps, in z0's dtype.
  // z0, eps: [B, C, H, W]; t: [B] in [1, T], on any device (the CPU avoids a GPU sync for the range
  // check) -> [B, C, H, W] on z0's device
  torch::Tensor noise(const torch::Tensor& z0, const torch::Tensor& t, const torch::Tensor& eps) const;
  // The same with alpha_t and sigma_t already gathered ([B, 1, 1, 1], on z0's device).
  static torch::Tensor noise(const torch::Tensor& z0, const torch::Tensor& eps, const torch::Tensor& alpha,
                             const torch::Tensor& sigma);

  // The whole tables, [T + 1] float64 on the CPU.
  const torch::Tensor& alphas() const { return alpha_; }
  const torch::Tensor& sigmas() const { return sigma_; }
  const torch::Tensor& snrs() const { return snr_; }

 private:
  torch::Tensor gather(const torch::Tensor& table, const torch::Tensor& t, std::int64_t rank) const;

  std::int64_t num_steps_;
  torch::Tensor alpha_, sigma_, snr_;
};

}  // namespace latentlab
