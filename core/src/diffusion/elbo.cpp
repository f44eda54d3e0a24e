#include "latentlab/diffusion/elbo.hpp"

#include <algorithm>
#include <cmath>

#include "latentlab/error.hpp"

namespace latentlab {

namespace {
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kTwoPi = 6.28318530717958647693;
}  // namespace

std::vector<double> elbo_weights(const Schedule& schedule) {
  const std::int64_t T = schedule.num_steps();
  std::vector<double> weights(static_cast<std::size_t>(T));
  weights[0] = 0.5;  // the Gaussian decoder at t = 1
  for (std::int64_t t = 2; t <= T; ++t) {
    // 1/2 (SNR(t-1)/SNR(t) - 1) = 1/2 expm1(log SNR(t-1) - log SNR(t)), exact for small steps.
    weights[static_cast<std::size_t>(t - 1)] =
        0.5 * std::expm1(schedule.log_snr(t - 1) - schedule.log_snr(t));
  }
  return weights;
}

double elbo_decoder_constant(const Schedule& schedule) {
  return 0.5 * (std::log(kTwoPi) - schedule.log_snr(1));
}

ElboEstimate estimate_elbo(const DenoiserFn& model, const ForwardProcess& process, Prediction prediction,
                           const torch::Tensor& z0, std::int64_t strata, std::int64_t batch_size,
                           at::Generator& generator) {
  if (z0.dim() < 2 || z0.size(0) == 0) throw Error("estimate_elbo: needs at least one held-out sample");
  if (strata < 1 || batch_size < 1) throw Error("estimate_elbo: strata and batch_size must be >= 1");
  torch::NoGradGuard no_grad;
  const std::int64_t T = process.num_steps();
  const std::int64_t N = z0.size(0);
  const auto snr = process.snrs();  // [T+1] float64
  const double log_snr_1 = std::log(snr[1].item<double>());
  const double decoder_constant = 0.5 * (std::log(kTwoPi) - log_snr_1);

  // The strata of t = 2..T: [first, first + size), as equal as integers allow.
  const std::int64_t span = T - 1;
  const std::int64_t K = std::min(strata, std::max<std::int64_t>(span, 0));
  std::vector<std::int64_t> first(static_cast<std::size_t>(K)), size(static_cast<std::size_t>(K));
  for (std::int64_t k = 0; k < K; ++k) {
    const std::int64_t lo = 2 + span * k / K, hi = 2 + span * (k + 1) / K;
    first[static_cast<std::size_t>(k)] = lo;
    size[static_cast<std::size_t>(k)] = hi - lo;
  }

  // The model's mse at steps t for a batch of latents; float64 [B].
  auto mse_at = [&](const torch::Tensor& x0, const torch::Tensor& t) {
    // Drawn on the CPU generator (the same numbers on any device), then moved.
    const auto eps = torch::randn(x0.sizes(), generator, x0.options().device(torch::kCPU)).to(x0.device());
    const auto alpha = process.alpha(t, x0.dim()).to(x0.device());
    const auto sigma = process.sigma(t, x0.dim()).to(x0.device());
    const auto z_t = ForwardProcess::noise(x0, eps, alpha, sigma);  // Eq. 4
    const auto eps_hat = eps_from_prediction(prediction, model(z_t, t.to(x0.device())), z_t, alpha, sigma);
    return (eps - eps_hat).pow(2).flatten(1).mean(1).to(torch::kCPU, torch::kFloat64);
  };

  double prior = 0, diffusion = 0, decoder = 0, simple = 0;
  const double alpha_T2 = std::pow(process.alphas()[T].item<double>(), 2);
  const double sigma_T2 = std::pow(process.sigmas()[T].item<double>(), 2);
  for (std::int64_t start = 0; start < N; start += batch_size) {
    const auto x0 = z0.slice(0, start, std::min(N, start + batch_size));  // [B, C, H, W]
    const auto B = x0.size(0);
    // KL(N(alpha_T z0, sigma_T^2) || N(0, 1)) per dimension, averaged over dimensions.
    const auto z2 = x0.to(torch::kFloat64).pow(2).flatten(1).mean(1);  // [B]
    prior += (0.5 * (alpha_T2 * z2 + sigma_T2 - 1.0 - std::log(sigma_T2))).sum().template item<double>();

    const auto ones = torch::ones({B}, torch::kLong);
    const auto mse_1 = mse_at(x0, ones);
    decoder += (decoder_constant + 0.5 * mse_1).sum().item<double>();
    simple += mse_1.sum().item<double>();
    for (std::int64_t k = 0; k < K; ++k) {
      const auto i = static_cast<std::size_t>(k);
      const auto t = torch::randint(first[i], first[i] + size[i], {B}, generator, torch::kLong);  // [B]
      const auto mse_t = mse_at(x0, t);
      const auto snr_t = snr.index_select(0, t), snr_prev = snr.index_select(0, t - 1);
      const auto weight = 0.5 * torch::expm1(snr_prev.log() - snr_t.log());  // Eq. 13 with Eq. 15
      diffusion += static_cast<double>(size[i]) * (weight * mse_t).sum().item<double>();
      simple += static_cast<double>(size[i]) * mse_t.sum().item<double>();
    }
  }
  ElboEstimate estimate;
  estimate.samples = N;
  const double n = static_cast<double>(N);
  estimate.prior_bpd = prior / n / kLn2;
  estimate.diffusion_bpd = diffusion / n / kLn2;
  estimate.decoder_bpd = decoder / n / kLn2;
  estimate.total_bpd = estimate.prior_bpd + estimate.diffusion_bpd + estimate.decoder_bpd;
  estimate.loss_simple = simple / n / static_cast<double>(T);
  return estimate;
}

}  // namespace latentlab
