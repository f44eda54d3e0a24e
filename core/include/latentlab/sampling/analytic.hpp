#pragma once
// Data whose optimal noise prediction E[eps | z_t] is known in closed form, so that samplers can be
// checked without training anything (`latentlab samplers check`, docs/samplers.md).
//
// Everything is written in the variance-exploding variables x = z_t / alpha_t and
// sigma' = sigma_t / alpha_t: z_t = alpha_t (z_0 + sigma' eps), so E[eps | z_t] depends on z_t only
// through x and sigma', and the probability-flow ODE is dx/dsigma' = E[eps | x] (Song et al. 2021,
// Karras et al. 2022). Tensors are [N, d], float64.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab::sampling {

class LATENTLAB_API AnalyticData {
 public:
  virtual ~AnalyticData();
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  virtual std::int64_t dim() const = 0;

  // E[eps | x] at noise level sigma' > 0. x: [N, d] -> [N, d]
  virtual torch::Tensor eps(const torch::Tensor& x, double sigma_ratio) const = 0;
  // Draws N samples of x = z_0 + sigma' eps (sigma' = 0: the data). -> [N, d]
  virtual torch::Tensor sample(std::int64_t n, double sigma_ratio, at::Generator& generator) const = 0;
  // The data's per-dimension mean and variance, [d], and fourth central moment (for the confidence
  // bound of a sample variance).
  virtual torch::Tensor mean() const = 0;
  virtual torch::Tensor variance() const = 0;
  virtual torch::Tensor fourth_moment() const = 0;
  // The probability-flow ODE solution from x at sigma_from to sigma_to (<= sigma_from; 0 allowed).
  // The base class integrates with classical RK4 in log sigma' (and in sigma' below 1e-3).
  virtual torch::Tensor flow(const torch::Tensor& x, double sigma_from, double sigma_to) const;

  // Per-dimension mean, variance and fourth central moment of the x0 estimate E[z_0 | x] for
  // x ~ q at sigma' (what a sampler that ends with an x0 estimate there should produce); sigma' = 0
  // gives the data's own. `samples` is 0 when exact, else the Monte Carlo sample count behind them.
  struct Moments {
    torch::Tensor mean, variance, fourth;  // [d]
    std::int64_t samples = 0;
  };
  // The base class uses 2^18 samples from a fixed seed; the Gaussian's are closed form.
  virtual Moments denoised_moments(double sigma_ratio) const;

  // E[z_0 | x] = x - sigma' E[eps | x] (sigma' = 0: x itself).
  torch::Tensor denoise(const torch::Tensor& x, double sigma_ratio) const;
  // The sampler's view: eps_hat(z_t, t) on schedule steps, with z_t [N, d] (any float dtype).
  EpsFn eps_fn(const Schedule& schedule) const;
};

// N(mu, s^2 I). E[eps | z_t] = sigma_t (z_t - alpha_t mu) / (alpha_t^2 s^2 + sigma_t^2); along the
// probability-flow ODE (z_t - alpha_t mu) / v_t is constant, v_t = sqrt(alpha_t^2 s^2 + sigma_t^2),
// which `flow` uses (exact).
class LATENTLAB_API GaussianData : public AnalyticData {
 public:
  GaussianData(torch::Tensor mu, double s);
  std::string name() const override { return "gaussian"; }
  std::string description() const override;
  std::int64_t dim() const override { return mu_.size(0); }
  torch::Tensor eps(const torch::Tensor& x, double sigma_ratio) const override;
  torch::Tensor sample(std::int64_t n, double sigma_ratio, at::Generator& generator) const override;
  torch::Tensor mean() const override { return mu_; }
  torch::Tensor variance() const override;
  torch::Tensor fourth_moment() const override;
  torch::Tensor flow(const torch::Tensor& x, double sigma_from, double sigma_to) const override;
  // E[z_0 | x] = mu + s^2 / (s^2 + sigma'^2) (x - mu): Gaussian with variance s^4 / (s^2 + sigma'^2).
  Moments denoised_moments(double sigma_ratio) const override;

 private:
  torch::Tensor mu_;  // [d]
  double s_;
};

// sum_k w_k N(mu_k, s_k^2 I). E[eps | x] = sum_k r_k(x) sigma' (x - mu_k) / (s_k^2 + sigma'^2) with the
// posterior responsibilities r_k(x) of the components at noise level sigma'.
class LATENTLAB_API MixtureData : public AnalyticData {
 public:
  // means [K, d], weights [K] (normalised here), scales [K].
  MixtureData(torch::Tensor means, std::vector<double> weights, std::vector<double> scales);
  std::string name() const override { return "mixture"; }
  std::string description() const override;
  std::int64_t dim() const override { return means_.size(1); }
  torch::Tensor eps(const torch::Tensor& x, double sigma_ratio) const override;
  torch::Tensor sample(std::int64_t n, double sigma_ratio, at::Generator& generator) const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  torch::Tensor fourth_moment() const override;

 private:
  torch::Tensor means_;                   // [K, d]
  std::vector<double> weights_, scales_;  // [K]
};

// The bench's data sets: "gaussian" (d = 16, mu spread over [-1, 1], s = 0.5) and "mixture" (three
// components in d = 16, well separated, unequal weights and widths).
LATENTLAB_API std::unique_ptr<AnalyticData> make_analytic_data(const std::string& name);
LATENTLAB_API const std::vector<std::string>& analytic_data_names();

}  // namespace latentlab::sampling
