// The forward process, parameterisations, Eq. 13/15 and the ELBO yardstick, against direct formulas.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "latentlab/diffusion/elbo.hpp"
#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/diffusion/objective.hpp"
#include "latentlab/error.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {
namespace {

// LDM's default schedule (linear in sqrt(beta)) built directly, T steps.
DiscreteSchedule ldm_linear(std::int64_t T = 1000, double b0 = 0.0015, double b1 = 0.0195) {
  std::vector<double> betas;
  for (std::int64_t i = 0; i < T; ++i) {
    const double s =
        std::sqrt(b0) + (std::sqrt(b1) - std::sqrt(b0)) * static_cast<double>(i) / static_cast<double>(T - 1);
    betas.push_back(s * s);
  }
  return DiscreteSchedule(betas);
}

at::Generator seeded(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

TEST(ForwardProcess, MomentsOfZtMatchAlphaAndSigma) {
  const auto schedule = ldm_linear();
  const ForwardProcess process(schedule);
  auto gen = seeded(1);
  for (const std::int64_t step : {1, 250, 999}) {
    const auto z0 = torch::full({400, 1, 16, 16}, 0.7);
    const auto t = torch::full({400}, step, torch::kLong);
    const auto z_t = process.noise(z0, t, torch::randn(z0.sizes(), gen, z0.options())).to(torch::kFloat64);
    const double n = static_cast<double>(z_t.numel());
    const double alpha = schedule.alpha(step), sigma = schedule.sigma(step);
    // mean alpha * 0.7 within 5 standard errors; variance sigma^2 within 5 standard errors (2 sigma^4 / n).
    EXPECT_NEAR(z_t.mean().item<double>(), alpha * 0.7, 5 * sigma / std::sqrt(n)) << "t = " << step;
    EXPECT_NEAR(z_t.var().item<double>(), sigma * sigma, 5 * sigma * sigma * std::sqrt(2.0 / n))
        << "t = " << step;
  }
}

TEST(ForwardProcess, BuffersAreFloat64AndBroadcast) {
  const ForwardProcess process(ldm_linear());
  const auto alpha = process.alpha(torch::tensor({1, 10, 1000}, torch::kLong));
  EXPECT_EQ(alpha.scalar_type(), torch::kFloat64);
  EXPECT_EQ(alpha.sizes(), (std::vector<std::int64_t>{3, 1, 1, 1}));
  EXPECT_THROW(process.alpha(torch::tensor({1001}, torch::kLong)), Error);
}

TEST(Parameterisations, ConversionsAreConsistent) {
  const ForwardProcess process(ldm_linear());
  auto gen = seeded(2);
  const auto z0 = torch::randn({8, 3, 4, 4}, gen, torch::kFloat64);
  const auto eps = torch::randn({8, 3, 4, 4}, gen, torch::kFloat64);
  const auto t = torch::tensor({1, 2, 10, 100, 400, 700, 900, 1000}, torch::kLong);
  const auto alpha = process.alpha(t), sigma = process.sigma(t);
  const auto z_t = process.noise(z0, t, eps);
  for (const auto p : {Prediction::Eps, Prediction::X0, Prediction::V}) {
    const auto target = prediction_target(p, z0, eps, alpha, sigma);
    EXPECT_TRUE(torch::allclose(eps_from_prediction(p, target, z_t, alpha, sigma), eps, 1e-9, 1e-9))
        << to_string(p);
    EXPECT_TRUE(torch::allclose(x0_from_prediction(p, target, z_t, alpha, sigma), z0, 1e-6, 1e-6))
        << to_string(p);
  }
}

TEST(Parameterisations, X0FromEpsIsGuardedWhereAlphaVanishes) {
  const auto z_t = torch::ones({1, 1, 2, 2});
  const auto out = x0_from_prediction(Prediction::Eps, torch::zeros({1, 1, 2, 2}), z_t,
                                      torch::zeros({1, 1, 1, 1}, torch::kFloat64),
                                      torch::ones({1, 1, 1, 1}, torch::kFloat64));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

TEST(Elbo, Eq15IdentityHolds) {
  // ||z0 - z0_hat||^2 = ||eps - eps_hat||^2 / SNR(t) for z0_hat from eps_hat (Eq. 14/15).
  const auto schedule = ldm_linear();
  const ForwardProcess process(schedule);
  auto gen = seeded(3);
  const auto z0 = torch::randn({6, 2, 3, 3}, gen, torch::kFloat64);
  const auto eps = torch::randn({6, 2, 3, 3}, gen, torch::kFloat64);
  const auto eps_hat = eps + 0.3 * torch::randn({6, 2, 3, 3}, gen, torch::kFloat64);
  const auto t = torch::tensor({1, 5, 50, 300, 800, 1000}, torch::kLong);
  const auto z_t = process.noise(z0, t, eps);
  const auto z0_hat = x0_from_prediction(Prediction::Eps, eps_hat, z_t, process.alpha(t), process.sigma(t));
  const auto lhs = (z0 - z0_hat).pow(2).flatten(1).sum(1);
  const auto rhs = (eps - eps_hat).pow(2).flatten(1).sum(1) / process.snr(t, 1);
  EXPECT_TRUE(torch::allclose(lhs, rhs, 1e-9, 1e-12));
}

// KL(q(z_{t-1}|z_t,z_0) || p(z_{t-1}|z_t)) from the means and variances of Eq. 11-12.
double direct_kl(const Schedule& schedule, std::int64_t t, const torch::Tensor& z0,
                 const torch::Tensor& z0_hat, const torch::Tensor& z_t) {
  const std::int64_t s = t - 1;
  const double a_ts = schedule.alpha_ts(t, s), s2_ts = schedule.sigma2_ts(t, s);
  const double s2_t = schedule.sigma2(t), s2_s = schedule.sigma2(s), a_s = schedule.alpha(s);
  const double variance = s2_ts * s2_s / s2_t;  // Eq. 11, shared by p (Eq. 12)
  const auto mean_q = a_ts * s2_s / s2_t * z_t + a_s * s2_ts / s2_t * z0;
  const auto mean_p = a_ts * s2_s / s2_t * z_t + a_s * s2_ts / s2_t * z0_hat;
  return ((mean_q - mean_p).pow(2).sum() / (2 * variance)).item<double>();
}

TEST(Elbo, WeightEqualsDirectGaussianKl) {
  for (const auto& schedule : {ldm_linear(), ldm_linear(50, 1e-4, 0.05)}) {
    const ForwardProcess process(schedule);
    const auto weights = elbo_weights(schedule);
    auto gen = seeded(4);
    for (const std::int64_t t : {2L, 3L, schedule.num_steps() / 2, schedule.num_steps()}) {
      const auto z0 = torch::randn({1, 2, 4, 4}, gen, torch::kFloat64);
      const auto eps = torch::randn({1, 2, 4, 4}, gen, torch::kFloat64);
      const auto eps_hat = eps + 0.2 * torch::randn({1, 2, 4, 4}, gen, torch::kFloat64);
      const auto steps = torch::tensor({t}, torch::kLong);
      const auto z_t = process.noise(z0, steps, eps);
      const auto z0_hat =
          x0_from_prediction(Prediction::Eps, eps_hat, z_t, process.alpha(steps), process.sigma(steps));
      const double kl = direct_kl(schedule, t, z0, z0_hat, z_t);
      const double weighted =
          weights[static_cast<std::size_t>(t - 1)] * (eps - eps_hat).pow(2).sum().item<double>();
      EXPECT_NEAR(weighted / kl, 1.0, 1e-9) << "t = " << t << " of T = " << schedule.num_steps();
    }
  }
}

TEST(Elbo, DecoderTermIsTheGaussianLikelihood) {
  const auto schedule = ldm_linear();
  // -log N(z0; z0_hat, 1/SNR(1)) per dim with z0 - z0_hat = (eps_hat - eps)/sqrt(SNR(1)) and error e:
  // 1/2 ln(2 pi / SNR(1)) + e^2/2.
  const double e = 0.37;
  const double variance = 1.0 / schedule.snr(1), diff = e / std::sqrt(schedule.snr(1));
  const double nll = 0.5 * std::log(2 * M_PI * variance) + diff * diff / (2 * variance);
  EXPECT_NEAR(elbo_decoder_constant(schedule) + elbo_weights(schedule)[0] * e * e, nll, 1e-12);
}

TEST(Elbo, EstimateOfAZeroModelMatchesTheClosedForm) {
  // A model that predicts eps_hat = 0 has mse_t = E[eps^2] = 1 at every t, so the bound is
  // prior + sum_{t>=2} w(t) + decoder constant + 1/2, all known.
  const auto schedule = ldm_linear(200);
  const ForwardProcess process(schedule);
  auto gen = seeded(5);
  const auto z0 = torch::zeros({64, 1, 8, 8});
  const DenoiserFn zero = [](const torch::Tensor& z_t, const torch::Tensor&) {
    return torch::zeros_like(z_t);
  };
  const auto estimate = estimate_elbo(zero, process, Prediction::Eps, z0, 8, 32, gen);
  const auto weights = elbo_weights(schedule);
  double diffusion = 0;
  for (std::size_t i = 1; i < weights.size(); ++i) diffusion += weights[i];
  const double ln2 = std::log(2.0);
  const double s2 = schedule.sigma2(200);
  EXPECT_NEAR(estimate.prior_bpd, 0.5 * (s2 - 1 - std::log(s2)) / ln2, 1e-9);
  EXPECT_NEAR(estimate.decoder_bpd, (elbo_decoder_constant(schedule) + 0.5) / ln2, 0.02);
  EXPECT_NEAR(estimate.diffusion_bpd / (diffusion / ln2), 1.0, 0.05);
  EXPECT_NEAR(estimate.loss_simple, 1.0, 0.02);
  EXPECT_NEAR(estimate.total_bpd, estimate.prior_bpd + estimate.diffusion_bpd + estimate.decoder_bpd, 1e-12);
}

// The importance-sampled objective has the uniform objective's expectation: sum_t w(t) f(t) / T.
double sampled_mean(TimestepSampler& sampler, const std::vector<double>& w, const std::vector<double>& f,
                    std::int64_t draws, at::Generator& gen, double* standard_error) {
  const auto t = sampler.sample(draws, gen);
  const auto wt = torch::tensor(w, torch::kFloat64).index_select(0, t - 1);
  const auto ft = torch::tensor(f, torch::kFloat64).index_select(0, t - 1);
  const auto values = wt * ft * sampler.importance(t);
  *standard_error = values.std().item<double>() / std::sqrt(static_cast<double>(draws));
  return values.mean().item<double>();
}

TEST(TimestepSampling, ImportanceSamplingKeepsTheExpectation) {
  const std::int64_t T = 100;
  std::vector<double> w(T), f(T);
  double exact = 0;
  for (std::int64_t i = 0; i < T; ++i) {
    w[i] = 1.0 / (1.0 + static_cast<double>(i));  // ELBO-like: large at small t
    f[i] = 0.2 + std::sin(0.1 * static_cast<double>(i)) * 0.1;
    exact += w[i] * f[i] / T;
  }
  auto gen = seeded(6);
  double uniform_se = 0;
  for (const auto mode :
       {TimestepSampling::Uniform, TimestepSampling::Weights, TimestepSampling::LossHistory}) {
    TimestepSampler sampler(mode, w, /*warmup=*/2);
    if (mode == TimestepSampling::LossHistory) {  // feed it a history so that it leaves the uniform warm-up
      for (int round = 0; round < 3; ++round) {
        const auto t = torch::arange(1, T + 1, torch::kLong);
        const auto wt = torch::tensor(w, torch::kFloat64), ft = torch::tensor(f, torch::kFloat64);
        sampler.observe(t, wt * ft);
      }
      EXPECT_FALSE(torch::allclose(sampler.proposal(), torch::full({T}, 1.0 / T, torch::kFloat64)));
    }
    double se = 0;
    const double mean = sampled_mean(sampler, w, f, 200000, gen, &se);
    EXPECT_NEAR(mean, exact, 5 * se) << to_string(mode);
    if (mode == TimestepSampling::Uniform)
      uniform_se = se;
    else
      EXPECT_LT(se, uniform_se) << to_string(mode) << " should reduce the variance";
  }
}

TEST(TimestepSampling, StateRoundTrips) {
  TimestepSampler a(TimestepSampling::LossHistory, std::vector<double>(5, 1.0), 1);
  a.observe(torch::tensor({1, 2, 3, 4, 5}, torch::kLong),
            torch::tensor({1.0, 2.0, 3.0, 4.0, 5.0}, torch::kFloat64));
  TimestepSampler b(TimestepSampling::LossHistory, std::vector<double>(5, 1.0), 1);
  b.load_state(a.state());
  EXPECT_TRUE(torch::equal(a.proposal(), b.proposal()));
  TimestepSampler other(TimestepSampling::LossHistory, std::vector<double>(6, 1.0), 1);
  EXPECT_THROW(other.load_state(a.state()), Error);
}

}  // namespace
}  // namespace latentlab
