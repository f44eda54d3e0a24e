#include "latentlab/diffusion/forward_process.hpp"

#include <cmath>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

const char* to_string(Prediction prediction) {
  switch (prediction) {
    case Prediction::Eps:
      return "eps";
    case Prediction::X0:
      return "x0";
    case Prediction::V:
      return "v";
  }
  return "?";
}

Prediction prediction_from_string(const std::string& name) {
  if (name == "eps") return Prediction::Eps;
  if (name == "x0") return Prediction::X0;
  if (name == "v") return Prediction::V;
  throw ConfigError("prediction: expected eps, x0 or v, got '" + name + "'" +
                    did_you_mean(name, {"eps", "x0", "v"}));
}

namespace {

// Multiplies `x` by a float64 coefficient, keeping x's dtype.
torch::Tensor scaled(const torch::Tensor& coefficient, const torch::Tensor& x) {
  return x * coefficient.to(x.dtype());
}

}  // namespace

torch::Tensor eps_from_prediction(Prediction prediction, const torch::Tensor& output,
                                  const torch::Tensor& z_t, const torch::Tensor& alpha,
                                  const torch::Tensor& sigma) {
  switch (prediction) {
    case Prediction::Eps:
      return output;
    case Prediction::X0: {
      // Eq. 4 solved for eps: eps = (z_t - alpha_t z0_hat) / sigma_t (sigma_t > 0 for t >= 1).
      const auto inv_sigma = 1.0 / sigma;
      return scaled(inv_sigma, z_t) - scaled(alpha * inv_sigma, output);
    }
    case Prediction::V:
      // eps = sigma_t z_t + alpha_t v (alpha^2 + sigma^2 = 1).
      return scaled(sigma, z_t) + scaled(alpha, output);
  }
  throw Error("eps_from_prediction: unknown parameterisation");
}

torch::Tensor x0_from_prediction(Prediction prediction, const torch::Tensor& output, const torch::Tensor& z_t,
                                 const torch::Tensor& alpha, const torch::Tensor& sigma) {
  switch (prediction) {
    case Prediction::Eps: {
      // Eq. 14 solved for z0_hat: (z_t - sigma_t eps_hat) / alpha_t, alpha_t guarded.
      const auto inv_alpha = 1.0 / alpha.clamp_min(kMinAlpha);
      return scaled(inv_alpha, z_t) - scaled(sigma * inv_alpha, output);
    }
    case Prediction::X0:
      return output;
    case Prediction::V:
      // z0 = alpha_t z_t - sigma_t v.
      return scaled(alpha, z_t) - scaled(sigma, output);
  }
  throw Error("x0_from_prediction: unknown parameterisation");
}

torch::Tensor prediction_target(Prediction prediction, const torch::Tensor& z0, const torch::Tensor& eps,
                                const torch::Tensor& alpha, const torch::Tensor& sigma) {
  switch (prediction) {
    case Prediction::Eps:
      return eps;
    case Prediction::X0:
      return z0;
    case Prediction::V:
      return scaled(alpha, eps) - scaled(sigma, z0);
  }
  throw Error("prediction_target: unknown parameterisation");
}

ForwardProcess::ForwardProcess(const Schedule& schedule) : num_steps_(schedule.num_steps()) {
  const auto size = static_cast<std::size_t>(num_steps_ + 1);
  std::vector<double> alpha(size), sigma(size), snr(size);
  for (std::int64_t t = 0; t <= num_steps_; ++t) {
    const auto i = static_cast<std::size_t>(t);
    alpha[i] = schedule.alpha(t);
    sigma[i] = schedule.sigma(t);
    snr[i] = schedule.snr(t);
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  alpha_ = torch::tensor(alpha, options);
  sigma_ = torch::tensor(sigma, options);
  snr_ = torch::tensor(snr, options);
}

torch::Tensor ForwardProcess::gather(const torch::Tensor& table, const torch::Tensor& t,
                                     std::int64_t rank) const {
  if (t.dim() != 1) throw Error("t must have shape [B], got " + std::to_string(t.dim()) + " dimensions");
  if (t.numel() > 0) {
    const auto lo = t.min().item<std::int64_t>(), hi = t.max().item<std::int64_t>();
    if (lo < 0 || hi > num_steps_)
      throw Error("t out of range: got values in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                  "], the schedule has t = 0.." + std::to_string(num_steps_));
  }
  std::vector<std::int64_t> shape(static_cast<std::size_t>(rank), 1);
  shape[0] = t.size(0);
  // [T+1] -> [B] -> [B, 1, ..., 1]
  return table.index_select(0, t.to(torch::kCPU, torch::kLong)).view(shape).to(t.device());
}

torch::Tensor ForwardProcess::alpha(const torch::Tensor& t, std::int64_t rank) const {
  return gather(alpha_, t, rank);
}
torch::Tensor ForwardProcess::sigma(const torch::Tensor& t, std::int64_t rank) const {
  return gather(sigma_, t, rank);
}
torch::Tensor ForwardProcess::snr(const torch::Tensor& t, std::int64_t rank) const {
  return gather(snr_, t, rank);
}

torch::Tensor ForwardProcess::noise(const torch::Tensor& z0, const torch::Tensor& t,
                                    const torch::Tensor& eps) const {
  const auto rank = z0.dim();
  // t may live on the CPU while z0 is on a GPU: the coefficients follow z0.
  return noise(z0, eps, alpha(t, rank).to(z0.device()), sigma(t, rank).to(z0.device()));
}

torch::Tensor ForwardProcess::noise(const torch::Tensor& z0, const torch::Tensor& eps,
                                    const torch::Tensor& alpha, const torch::Tensor& sigma) {
  return scaled(alpha, z0) + scaled(sigma, eps);  // Eq. 4
}

}  // namespace latentlab
