// Samplers: the discretisations, the analytic data, the bench, and every built-in sampler proved on it
// (docs/samplers.md). Latents are float64 so that the discretisation error is what is measured.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "latentlab/error.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/sampling/analytic.hpp"
#include "latentlab/sampling/sampler_bench.hpp"
#include "support/builtin_plugins.hpp"

namespace latentlab {
namespace {

using sampling::GaussianData;
using sampling::SamplerBenchOptions;
using testing::make_builtin;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

std::shared_ptr<Schedule> linear_schedule() {
  return make_builtin<Schedule>("linear");
}

std::shared_ptr<Sampler> sampler(const std::string& name,
                                 const nlohmann::json& params = nlohmann::json::object()) {
  return make_builtin<Sampler>(name, params);
}

SamplerResult run(const Sampler& s, const Schedule& schedule, const EpsFn& eps, std::int64_t steps,
                  const torch::Tensor& z_T, std::uint64_t seed = 7) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return s.sample(SamplerInput{eps, schedule, steps, z_T, generator});
}

// ---- discretisations ----

TEST(Discretize, UniformIsLdmsDdimGrid) {
  // LDM make_ddim_timesteps(uniform, 10, 1000): 0-based 1, 101, ..., 901 -> schedule steps 2..902.
  const auto times = discretize(1000, 10, Discretization::Uniform);
  ASSERT_EQ(times.size(), 10u);
  EXPECT_EQ(times.front(), 902);
  EXPECT_EQ(times.back(), 2);
  EXPECT_EQ(times[1], 802);
  // N = T: every step (LDM would index past its table).
  const auto all = discretize(1000, 1000, Discretization::Uniform);
  EXPECT_EQ(all.front(), 1000);
  EXPECT_EQ(all.back(), 1);
}

TEST(Discretize, QuadLinspaceTrailing) {
  const auto quad = discretize(1000, 10, Discretization::Quad);
  EXPECT_EQ(quad.back(), 2);
  EXPECT_EQ(quad.front(), 802);  // floor(0.8 T) + 2
  const auto linspace = discretize(1000, 10, Discretization::Linspace);
  EXPECT_EQ(linspace.front(), 1000);
  EXPECT_EQ(linspace.back(), 1);
  const auto trailing = discretize(1000, 10, Discretization::Trailing);
  EXPECT_EQ(trailing.front(), 1000);
  EXPECT_EQ(trailing.back(), 100);
  for (auto d :
       {Discretization::Uniform, Discretization::Quad, Discretization::Linspace, Discretization::Trailing}) {
    for (std::int64_t n : {1, 2, 7, d == Discretization::Quad ? 9 : 50}) {
      const auto t = discretize(100, n, d);
      ASSERT_EQ(static_cast<std::int64_t>(t.size()), n) << to_string(d);
      for (std::size_t i = 0; i < t.size(); ++i) {
        EXPECT_GE(t[i], 1);
        EXPECT_LE(t[i], 100);
        if (i > 0) {
          EXPECT_LT(t[i], t[i - 1]) << to_string(d) << " n=" << n;
        }
      }
    }
  }
}

TEST(Discretize, MatchesNumpyRoundingOfLdmAndDiffusers) {
  // Values from numpy's arithmetic (linspace as i * step with the last point exact; round half to even).
  const auto contains = [](const std::vector<std::int64_t>& times, std::int64_t t) {
    return std::find(times.begin(), times.end(), t) != times.end();
  };
  const auto linspace = discretize(1000, 7, Discretization::Linspace);  // diffusers 0-based 166, 832
  EXPECT_EQ(linspace, (std::vector<std::int64_t>{1000, 833, 667, 501, 334, 167, 1}));
  const auto trailing = discretize(1000, 16, Discretization::Trailing);  // 0-based 311, 61
  EXPECT_TRUE(contains(trailing, 312) && contains(trailing, 62));
  const auto quad = discretize(1000, 16, Discretization::Quad);  // LDM: 31.999... truncates to 31 -> 513
  EXPECT_TRUE(contains(quad, 513));
  EXPECT_EQ(discretize(1000, 1, Discretization::Quad), (std::vector<std::int64_t>{2}));
}

TEST(Discretize, ErrorsNameTheFix) {
  EXPECT_THROW(discretize(1000, 0, Discretization::Uniform), ConfigError);
  try {
    discretize(100, 101, Discretization::Linspace);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("use at most 100"), std::string::npos) << e.what();
  }
  try {
    discretize(1000, 600, Discretization::Quad);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("repeated times"), std::string::npos) << e.what();
  }
  EXPECT_THROW(discretization_from_string("uniformm"), ConfigError);
}

// ---- analytic data ----

TEST(AnalyticData, MixtureEpsIsTheScoreOfTheNoisyDensity) {
  // E[eps | x] = -sigma' grad log p_sigma'(x), checked with autograd on the mixture's log-density.
  const auto data = sampling::make_analytic_data("mixture");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  for (double sigma : {0.05, 0.7, 4.0}) {
    const auto x = data->sample(32, sigma, generator).requires_grad_(true);
    auto* mixture = dynamic_cast<sampling::MixtureData*>(data.get());
    ASSERT_NE(mixture, nullptr);
    // Independent log-density: sum_k w_k N(x; mu_k, (s_k^2 + sigma^2) I).
    const std::vector<double> w = {0.5, 0.3, 0.2}, s = {0.3, 0.5, 0.4};
    auto means = torch::zeros({3, 16}, kF64);
    means.index_put_({0, torch::indexing::Slice(0, 8)}, 1.0);
    means.index_put_({1, torch::indexing::Slice(8, 16)}, -1.0);
    means.index_put_({2}, torch::linspace(-0.5, 0.5, 16, kF64));
    std::vector<torch::Tensor> terms;
    for (int k = 0; k < 3; ++k) {
      const double v = s[k] * s[k] + sigma * sigma;
      terms.push_back(std::log(w[k]) - 8.0 * std::log(2 * M_PI * v) - (x - means[k]).pow(2).sum(1) / (2 * v));
    }
    const auto log_p = torch::logsumexp(torch::stack(terms, 1), 1).sum();
    const auto score = torch::autograd::grad({log_p}, {x})[0];
    const auto eps = data->eps(x.detach(), sigma);
    EXPECT_TRUE(torch::allclose(eps, -sigma * score, 1e-10, 1e-10)) << "sigma' = " << sigma;
  }
}

TEST(AnalyticData, Rk4FlowMatchesTheGaussianClosedForm) {
  // The base-class RK4 integrator (what the mixture uses) against the Gaussian's exact flow.
  const GaussianData gaussian(torch::linspace(-1, 1, 16, kF64), 0.5);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto x = gaussian.sample(64, 14.0, generator);
  for (double to : {0.055, 0.0}) {
    const auto exact = gaussian.flow(x, 14.0, to);
    const auto numeric = gaussian.sampling::AnalyticData::flow(x, 14.0, to);
    EXPECT_LT(((numeric - exact).norm() / exact.norm()).item<double>(), 1e-9) << "to " << to;
  }
}

TEST(AnalyticData, X0EstimateMomentsClosedFormMatchMonteCarlo) {
  // What a stochastic sampler ending with an x0 estimate at sigma' should produce: the Gaussian's closed
  // form s^4 / (s^2 + sigma'^2) against the base class's Monte Carlo.
  const GaussianData gaussian(torch::linspace(-1, 1, 16, kF64), 0.5);
  for (double sigma : {0.0, 0.16, 1.0}) {
    const auto exact = gaussian.denoised_moments(sigma);
    const auto monte_carlo = gaussian.sampling::AnalyticData::denoised_moments(sigma);
    EXPECT_EQ(exact.samples, 0);
    EXPECT_TRUE(torch::allclose(monte_carlo.mean, exact.mean, 0, 0.01)) << sigma;
    EXPECT_TRUE(torch::allclose(monte_carlo.variance, exact.variance, 0.02, 0)) << sigma;
    EXPECT_TRUE(torch::allclose(monte_carlo.fourth, exact.fourth, 0.05, 0)) << sigma;
  }
  EXPECT_NEAR(gaussian.denoised_moments(1.0).variance[0].item<double>(), 0.0625 / 1.25, 1e-15);
}

TEST(AnalyticData, MomentsMatchSamples) {
  const auto data = sampling::make_analytic_data("mixture");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto x = data->sample(200000, 0.0, generator);
  EXPECT_TRUE(torch::allclose(x.mean(0), data->mean(), 0, 0.01));
  EXPECT_TRUE(torch::allclose(x.var(0), data->variance(), 0.02, 0));
  EXPECT_TRUE(torch::allclose((x - data->mean()).pow(4).mean(0), data->fourth_moment(), 0.05, 0));
}

// ---- the samplers on the Gaussian ----

TEST(Samplers, DdimIsTheExactEulerProductAndCloseToTheFlowAt1000Steps) {
  // On N(mu, s^2 I), DDIM's step multiplies x - mu by 1 + (sigma'_s - sigma'_t) sigma'_t / (s^2 +
  // sigma'_t^2), and its last step gives mu + (x - mu) s^2 / (s^2 + sigma'^2). Computed here with scalars.
  const auto schedule = linear_schedule();
  const double s = 0.5;
  const GaussianData gaussian(torch::linspace(-1, 1, 16, kF64), s);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto z_T =
      gaussian.sample(256, schedule->sigma(1000) / schedule->alpha(1000), generator) * schedule->alpha(1000);
  const auto result = run(*sampler("ddim"), *schedule, gaussian.eps_fn(*schedule), 1000, z_T);
  EXPECT_EQ(result.nfe, 1000);
  EXPECT_EQ(result.start_t, 1000);
  EXPECT_EQ(result.end_t, 1);
  const auto ratio = [&](std::int64_t t) { return schedule->sigma(t) / schedule->alpha(t); };
  double factor = 1.0;
  for (std::int64_t t = 1000; t > 1; --t)
    factor *= 1.0 + (ratio(t - 1) - ratio(t)) * ratio(t) / (s * s + ratio(t) * ratio(t));
  factor *= s * s / (s * s + ratio(1) * ratio(1));
  const auto mu = gaussian.mean();
  const auto expected = mu + factor * (z_T / schedule->alpha(1000) - mu);
  EXPECT_TRUE(torch::allclose(result.z0, expected, 1e-10, 1e-10));
  // Against the exact probability-flow solution (x0 estimate at t = 1): 2.5e-3 relative, the first-order
  // discretisation error of 1000 DDIM steps on LDM's schedule (docs/samplers.md).
  const auto x_end = gaussian.flow(z_T / schedule->alpha(1000), ratio(1000), ratio(1));
  const auto exact = gaussian.denoise(x_end, ratio(1));
  const double error = ((result.z0 - exact).norm() / exact.norm()).item<double>();
  EXPECT_LT(error, 3e-3);
  EXPECT_GT(error, 1e-3);
}

sampling::SamplerBenchReport bench(const std::string& name, const nlohmann::json& params,
                                   std::vector<std::int64_t> steps, const std::string& data = "gaussian",
                                   std::int64_t samples = 1024) {
  SamplerBenchOptions options;
  options.steps = std::move(steps);
  options.samples = samples;
  return sampling::bench_sampler(*sampler(name, params), name, *linear_schedule(),
                                 *sampling::make_analytic_data(data), options);
}

TEST(Samplers, EmpiricalOrdersOnTheGaussian) {
  // linspace grids start at T and end at t = 1 for every budget, so doublings refine one path.
  const nlohmann::json linspace = {{"discretization", "linspace"}};
  for (const auto& name : {"ddim", "euler"}) {
    const auto report = bench(name, linspace, {40, 80, 160});
    ASSERT_TRUE(report.deterministic) << name;
    for (std::size_t i = 1; i < report.rows.size(); ++i) {
      EXPECT_NEAR(report.rows[i].order, 1.0, 0.15) << name << " at " << report.rows[i].steps;
    }
  }
  const auto heun = bench("heun", linspace, {40, 80, 160});
  ASSERT_TRUE(heun.passed());
  ASSERT_EQ(heun.rows.size(), 3u);
  for (std::size_t i = 1; i < heun.rows.size(); ++i) EXPECT_NEAR(heun.rows[i].order, 2.0, 0.2);
  EXPECT_EQ(heun.rows[0].nfe, 79);  // 2 per step, 1 on the last
  // DPM-Solver++(2M) tends to order 2 as the steps shrink (1.73 at 160 -> 320).
  const auto dpm = bench("dpmpp_2m", linspace, {80, 160, 320});
  ASSERT_TRUE(dpm.passed());
  EXPECT_GT(dpm.rows[2].order, 1.6);
  EXPECT_GT(dpm.rows[2].order, dpm.rows[1].order);
}

TEST(Samplers, DpmSolverBeatsDdimAt20Steps) {
  for (const auto& data : {"gaussian", "mixture"}) {
    const auto ddim = bench("ddim", nlohmann::json::object(), {20}, data);
    const auto dpm = bench("dpmpp_2m", nlohmann::json::object(), {20}, data);
    EXPECT_LT(dpm.rows[0].error, 0.8 * ddim.rows[0].error) << data;
  }
}

TEST(Samplers, StochasticSamplersMatchTheDataMomentsAtTSteps) {
  for (const auto& [name, params] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"ddpm", nlohmann::json::object()},
                                                           {"ddpm", {{"variance", "upper"}}},
                                                           {"euler_ancestral", nlohmann::json::object()},
                                                           {"ddim", {{"eta", 1.0}}}}) {
    const auto report = bench(name, params, {1000}, "gaussian", 8192);
    EXPECT_FALSE(report.deterministic) << name;
    EXPECT_TRUE(report.passed()) << name << " " << params.dump() << ": " << report.checks.back().detail;
  }
}

TEST(Samplers, EverySamplerPassesTheBenchAndIsDeterministicUnderASeed) {
  for (const auto& entry : testing::builtin_plugins().entries()) {
    if (entry.info.kind != Sampler::kKind) continue;
    const auto report = bench(entry.info.name, nlohmann::json::object(), {10, 1000}, "mixture", 4096);
    EXPECT_TRUE(report.passed()) << entry.info.name;
    for (const auto& check : report.checks)
      EXPECT_TRUE(check.passed) << entry.info.name << ": " << check.name;
  }
}

TEST(Samplers, EquivalentFormulationsAgree) {
  const auto schedule = linear_schedule();
  const auto data = sampling::make_analytic_data("mixture");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto z_T = data->sample(64, 14.6, generator) * schedule->alpha(1000);
  const auto eps = data->eps_fn(*schedule);
  // Euler in sigma_t/alpha_t is DDIM at eta 0.
  EXPECT_TRUE(torch::allclose(run(*sampler("euler"), *schedule, eps, 25, z_T).z0,
                              run(*sampler("ddim"), *schedule, eps, 25, z_T).z0, 1e-10, 1e-10));
  // DDIM at eta 1, ddpm with the posterior variance and Euler ancestral at eta 1 are one ancestral step.
  const auto ddpm = run(*sampler("ddpm"), *schedule, eps, 25, z_T, 11).z0;
  EXPECT_TRUE(torch::allclose(run(*sampler("ddim", {{"eta", 1.0}}), *schedule, eps, 25, z_T, 11).z0, ddpm,
                              1e-9, 1e-9));
  EXPECT_TRUE(
      torch::allclose(run(*sampler("euler_ancestral"), *schedule, eps, 25, z_T, 11).z0, ddpm, 1e-9, 1e-9));
}

// ---- Eq. 11-12 ----

TEST(Samplers, DdpmStepIsTheGaussianPosterior) {
  // With eps_hat = c at t = T and 0 at s, the run returns z_s / alpha_s: one ancestral step from a known
  // z_T with x0_hat = (z_T - sigma_T c) / alpha_T. Its moments must be those of q(z_s | z_t, x0_hat),
  // computed here by Gaussian conditioning: z_s = alpha_s x0 + sigma_s e1, z_t = alpha_{t|s} z_s +
  // sigma_{t|s} e2, so 1/var = 1/sigma_s^2 + alpha_{t|s}^2/sigma^2_{t|s} and
  // mean = var (alpha_s x0 / sigma_s^2 + alpha_{t|s} z_t / sigma^2_{t|s}).
  const auto schedule = linear_schedule();
  const std::int64_t t = 1000, s = 500;  // trailing grid with 2 steps: 1000, 500
  const double c = 0.3, z_t = 0.2;
  const EpsFn eps = [&](const torch::Tensor& z, std::int64_t step) {
    return step == t ? torch::full_like(z, c) : torch::zeros_like(z);
  };
  const auto z_T = torch::full({400000, 1}, z_t, kF64);
  const double x0 = (z_t - schedule->sigma(t) * c) / schedule->alpha(t);
  const double a_ts = schedule->alpha(t) / schedule->alpha(s);
  const double s2_ts = schedule->sigma2(t) - a_ts * a_ts * schedule->sigma2(s);
  const double variance = 1.0 / (1.0 / schedule->sigma2(s) + a_ts * a_ts / s2_ts);
  const double mean = variance * (schedule->alpha(s) * x0 / schedule->sigma2(s) + a_ts * z_t / s2_ts);
  for (const auto& choice : {"posterior", "upper"}) {
    const auto result =
        run(*sampler("ddpm", {{"discretization", "trailing"}, {"variance", choice}}), *schedule, eps, 2, z_T);
    const auto z_s = result.z0 * schedule->alpha(s);
    const double n = static_cast<double>(z_T.size(0));
    const double expected_variance = std::string(choice) == "upper" ? s2_ts : variance;
    EXPECT_NEAR(z_s.mean().item<double>(), mean, 5 * std::sqrt(expected_variance / n)) << choice;
    EXPECT_NEAR(z_s.var().item<double>(), expected_variance, 5 * expected_variance * std::sqrt(2.0 / n))
        << choice;
  }
}

TEST(Samplers, NoiseComesFromTheGivenGenerator) {
  const auto schedule = linear_schedule();
  const auto data = sampling::make_analytic_data("gaussian");
  const auto z_T = torch::zeros({8, 16}, kF64);
  const auto eps = data->eps_fn(*schedule);
  const auto a = run(*sampler("ddpm"), *schedule, eps, 10, z_T, 1).z0;
  EXPECT_TRUE(torch::equal(a, run(*sampler("ddpm"), *schedule, eps, 10, z_T, 1).z0));
  EXPECT_FALSE(torch::equal(a, run(*sampler("ddpm"), *schedule, eps, 10, z_T, 2).z0));
  // float32 latents stay float32.
  EXPECT_EQ(run(*sampler("ddpm"), *schedule, eps, 10, z_T.to(torch::kFloat32), 1).z0.scalar_type(),
            torch::kFloat32);
}

// ---- the bench catches broken samplers ----

// Ancestral steps with twice the posterior variance: too much noise.
class TooNoisySampler : public Sampler {
 public:
  SamplerResult sample(const SamplerInput& in) const override {
    const auto grid = discretize(in.schedule.num_steps(), in.steps, Discretization::Uniform);
    auto z = in.z_T;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const auto t = grid[i];
      const auto x0 = (z - in.schedule.sigma(t) * in.eps(z, t)) / in.schedule.alpha(t);
      if (i + 1 == grid.size()) {
        z = x0;
        break;
      }
      const auto s = grid[i + 1];
      const double variance =
          2.0 * in.schedule.sigma2_ts(t, s) * in.schedule.sigma2(s) / in.schedule.sigma2(t);
      z = in.schedule.alpha_ts(t, s) * in.schedule.sigma2(s) / in.schedule.sigma2(t) * z +
          in.schedule.alpha(s) * in.schedule.sigma2_ts(t, s) / in.schedule.sigma2(t) * x0 +
          std::sqrt(variance) * standard_normal(z, in.generator);
    }
    return SamplerResult{z, static_cast<std::int64_t>(grid.size()), grid.front(), grid.back()};
  }
};

// Calls eps twice per step but reports one.
class MiscountingSampler : public Sampler {
 public:
  SamplerResult sample(const SamplerInput& in) const override {
    auto z = in.z_T;
    in.eps(z, in.schedule.num_steps());
    const auto x0 = x0_estimate(in.schedule, z, in.eps(z, in.schedule.num_steps()), in.schedule.num_steps());
    return SamplerResult{x0, 1, in.schedule.num_steps(), in.schedule.num_steps()};
  }
};

// Honest DDIM at small budgets; at large ones it makes one call and claims to have stopped just
// below its start, where the x0 estimate is trivially close to "exact".
class ShortcutSampler : public Sampler {
 public:
  SamplerResult sample(const SamplerInput& in) const override {
    if (in.steps < 100) return ddim_->sample(in);
    const auto t = in.schedule.num_steps();
    return SamplerResult{x0_estimate(in.schedule, in.z_T, in.eps(in.z_T, t), t), 1, t, t - 1};
  }
  std::shared_ptr<Sampler> ddim_ = make_builtin<Sampler>("ddim");
};

// Sign error in the noise prediction.
class WrongSignSampler : public Sampler {
 public:
  SamplerResult sample(const SamplerInput& in) const override {
    const auto grid = discretize(in.schedule.num_steps(), in.steps, Discretization::Uniform);
    auto z = in.z_T;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const auto eps = -in.eps(z, grid[i]);
      const auto x0 = (z - in.schedule.sigma(grid[i]) * eps) / in.schedule.alpha(grid[i]);
      z = i + 1 < grid.size() ? in.schedule.alpha(grid[i + 1]) * x0 + in.schedule.sigma(grid[i + 1]) * eps
                              : x0;
    }
    return SamplerResult{z, static_cast<std::int64_t>(grid.size()), grid.front(), grid.back()};
  }
};

TEST(SamplerBench, SkipsBudgetsTheConfigurationCannotTake) {
  // quad on T = 1000 gives distinct times up to 29 steps: 40 is skipped with the sampler's message.
  const auto report = bench("ddim", {{"discretization", "quad"}}, {10, 20, 40});
  ASSERT_EQ(report.rows.size(), 2u);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("skipped 40 steps"), std::string::npos) << report.notes[0];
  EXPECT_NE(report.notes[0].find("use at most 29"), std::string::npos) << report.notes[0];
  EXPECT_NEAR(report.rows[1].order, 1.0, 0.3);
}

TEST(SamplerBench, FailsBrokenSamplers) {
  SamplerBenchOptions options;
  options.steps = {80, 160, 320};
  options.samples = 4096;
  const auto schedule = linear_schedule();
  const auto data = sampling::make_analytic_data("gaussian");
  const auto too_noisy = sampling::bench_sampler(TooNoisySampler(), "too-noisy", *schedule, *data, options);
  EXPECT_FALSE(too_noisy.deterministic);
  EXPECT_FALSE(too_noisy.passed());
  const auto miscounting =
      sampling::bench_sampler(MiscountingSampler(), "miscounting", *schedule, *data, options);
  ASSERT_FALSE(miscounting.checks.empty());
  EXPECT_FALSE(miscounting.checks.front().passed);
  EXPECT_NE(miscounting.checks.front().detail.find("reported nfe 1 but called eps 2 times"),
            std::string::npos);
  const auto shortcut = sampling::bench_sampler(ShortcutSampler(), "shortcut", *schedule, *data, options);
  EXPECT_FALSE(shortcut.passed());
  EXPECT_NE(shortcut.checks.back().detail.find("neither 0 nor the smallest t called"), std::string::npos)
      << shortcut.checks.back().detail;
  EXPECT_FALSE(sampling::bench_sampler(WrongSignSampler(), "wrong-sign", *schedule, *data, options).passed());
}

}  // namespace
}  // namespace latentlab
