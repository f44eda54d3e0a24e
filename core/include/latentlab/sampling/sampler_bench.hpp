#pragma once
// The analytic test bench every sampler passes (`latentlab samplers check`, docs/samplers.md).
//
// For each step budget the sampler runs on analytic data (analytic.hpp) with the exact eps_hat. Its
// start z_T is drawn from the exact marginal q(z_t) at the sampler's first grid time, so that:
//  - a deterministic sampler's output is compared with the exact probability-flow solution from the
//    same z_T to its end time (closed form for the Gaussian, fine RK4 for the mixture), or with the
//    exact x0 estimate there when it ends with one (SamplerResult::end_t); successive step doublings
//    give the empirical convergence order log2(e_N / e_2N);
//  - a stochastic sampler's sample mean and variance per dimension are compared with the data's (or,
//    when it ends with an x0 estimate at end_t > 0, with those of that estimate, whose variance is
//    smaller), in standard errors of the sample count (variance: sqrt((m4 - s^4) / n));
//  - on every run: the contract (shape, dtype, finite, z_T untouched, nfe = the eps calls made,
//    start_t = the first time called, end_t = 0 or the smallest time called).
// Latents are float64 [N, d], so rounding does not hide the discretisation error.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "latentlab/export.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/sampling/analytic.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/schedule_checks.hpp"

namespace latentlab::sampling {

struct SamplerBenchOptions {
  // Step budgets; empty: 10, 20, 40, 80, 160, 320 (those <= T) and T itself, where a correct
  // stochastic sampler comes closest to the data distribution.
  std::vector<std::int64_t> steps;
  // N for stochastic samplers' moments; deterministic ones use the first min(N, 1024) of the same
  // starts (their error is an average over many dimensions already, and the mixture's reference costs
  // an RK4 solve per sample).
  std::int64_t samples = 8192;
  std::uint64_t seed = 0;
  // A deterministic sampler passes when its relative error at the largest budget is below this and
  // still falls with more steps.
  double tolerance = 1e-2;
  // A stochastic sampler passes when, at the largest budget, every dimension's mean and variance lie
  // within this many standard errors of the truth.
  double z_bound = 4.0;
};

struct BenchRow {
  static constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
  std::int64_t steps = 0, nfe = 0, start_t = 0, end_t = 0;
  double seconds = 0;
  // deterministic: ||z0 - exact|| / ||exact|| over all samples, and log2(e_{N/2} / e_N) when the
  // previous budget was N/2
  double error = kNan, order = kNan;
  // stochastic: the largest |sample mean - mean| over dimensions and the largest such error in
  // standard errors; the same for the variance
  double mean_error = kNan, mean_z = kNan, variance_error = kNan, variance_z = kNan;
};

struct LATENTLAB_API SamplerBenchReport {
  std::string sampler;
  std::string data, data_description;
  bool deterministic = true;  // the same z_T with two seeds gave the same z0
  std::vector<BenchRow> rows;
  std::vector<CheckResult> checks;
  // Budgets skipped because the sampler's configuration cannot take them (it threw ConfigError, e.g.
  // `quad` beyond its largest N), with its message.
  std::vector<std::string> notes;

  bool passed() const;
};

// Runs the bench. Errors thrown by the sampler become failed checks (the report says which).
LATENTLAB_API SamplerBenchReport bench_sampler(const Sampler& sampler, const std::string& sampler_name,
                                               const Schedule& schedule, const AnalyticData& data,
                                               const SamplerBenchOptions& options = {});

}  // namespace latentlab::sampling
