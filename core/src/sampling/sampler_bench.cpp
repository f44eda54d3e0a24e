#include "latentlab/sampling/sampler_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::sampling {
namespace {

// sigma' = sigma_t / alpha_t of schedule step t (0 at t = 0).
double sigma_ratio(const Schedule& schedule, std::int64_t t) {
  return t == 0 ? 0.0 : schedule.sigma(t) / schedule.alpha(t);
}

at::Generator seeded(std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return generator;
}

struct Run {
  SamplerResult result;
  std::int64_t calls = 0;
  std::int64_t first_t = -1, smallest_t = -1;  // of the eps calls
  double seconds = 0;
};

// Runs the sampler from z_T with a generator seeded `seed`, counting eps calls.
Run run_sampler(const Sampler& sampler, const Schedule& schedule, const AnalyticData& data,
                std::int64_t steps, const torch::Tensor& z_T, std::uint64_t seed) {
  Run run;
  const auto exact = data.eps_fn(schedule);
  const EpsFn counted = [&](const torch::Tensor& z_t, std::int64_t t) {
    ++run.calls;
    if (run.first_t < 0) run.first_t = t;
    run.smallest_t = run.smallest_t < 0 ? t : std::min(run.smallest_t, t);
    return exact(z_t, t);
  };
  auto generator = seeded(seed);
  const auto start = std::chrono::steady_clock::now();
  run.result = sampler.sample(SamplerInput{counted, schedule, steps, z_T, generator});
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

// The contract of a result, as a list of problems (empty when it holds).
std::vector<std::string> contract_problems(const Run& run, const torch::Tensor& z_T,
                                           const torch::Tensor& z_T_copy, const Schedule& schedule) {
  std::vector<std::string> problems;
  const auto& r = run.result;
  if (!r.z0.defined()) return {"z0 is undefined"};
  if (r.z0.sizes() != z_T.sizes()) {
    std::ostringstream out;
    out << "z0 has shape " << r.z0.sizes() << ", z_T " << z_T.sizes();
    problems.push_back(out.str());
  } else if (!torch::isfinite(r.z0).all().item<bool>()) {
    problems.push_back("z0 has non-finite values");
  }
  if (r.z0.scalar_type() != z_T.scalar_type()) problems.push_back("z0's dtype differs from z_T's");
  if (!torch::equal(z_T, z_T_copy)) problems.push_back("the sampler changed z_T in place");
  if (r.nfe != run.calls)
    problems.push_back("reported nfe " + std::to_string(r.nfe) + " but called eps " +
                       std::to_string(run.calls) + " times");
  if (r.start_t < 1 || r.start_t > schedule.num_steps())
    problems.push_back("start_t " + std::to_string(r.start_t) + " is outside [1, T]");
  if (r.end_t < 0 || r.end_t >= r.start_t)
    problems.push_back("end_t " + std::to_string(r.end_t) + " is not in [0, start_t)");
  // The times it reports are the times it used: start_t its first eps call, end_t 0 or its last time.
  if (run.calls > 0 && r.start_t != run.first_t)
    problems.push_back("start_t " + std::to_string(r.start_t) +
                       " but the first eps call was at t = " + std::to_string(run.first_t));
  if (run.calls > 0 && r.end_t != 0 && r.end_t != run.smallest_t)
    problems.push_back("end_t " + std::to_string(r.end_t) + " is neither 0 nor the smallest t called (" +
                       std::to_string(run.smallest_t) + ")");
  return problems;
}

CheckResult make_check(std::string name, bool passed, std::string detail) {
  return CheckResult{std::move(name), passed, std::move(detail)};
}

std::string sci(double value) {
  std::ostringstream out;
  out.precision(2);
  out << std::scientific << value;
  return out.str();
}

const char* const kContract =
    "contract: z0 like z_T and finite, z_T untouched, nfe = eps calls, start_t = the first time called, "
    "end_t = 0 or the last time called";

}  // namespace

bool SamplerBenchReport::passed() const {
  return std::all_of(checks.begin(), checks.end(), [](const CheckResult& c) { return c.passed; });
}

SamplerBenchReport bench_sampler(const Sampler& sampler, const std::string& sampler_name,
                                 const Schedule& schedule, const AnalyticData& data,
                                 const SamplerBenchOptions& options) {
  if (options.samples < 2) throw ConfigError("samplers check: --samples must be >= 2");
  SamplerBenchReport report;
  report.sampler = sampler_name;
  report.data = data.name();
  report.data_description = data.description();
  auto steps = options.steps;
  if (steps.empty()) {
    for (std::int64_t n : {10, 20, 40, 80, 160, 320})
      if (n < schedule.num_steps()) steps.push_back(n);
    steps.push_back(schedule.num_steps());
  }
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  for (auto n : steps)
    if (n < 1 || n > schedule.num_steps())
      throw ConfigError("samplers check: step budget " + std::to_string(n) +
                        " is outside [1, T = " + std::to_string(schedule.num_steps()) + "]");

  // Contract and determinism, on a small batch at the smallest budget.
  try {
    auto generator = seeded(options.seed);
    const auto z_T = schedule.alpha(schedule.num_steps()) *
                     data.sample(16, sigma_ratio(schedule, schedule.num_steps()), generator);
    const auto copy = z_T.clone();
    const auto first = run_sampler(sampler, schedule, data, steps.front(), z_T, options.seed + 1);
    const auto problems = contract_problems(first, z_T, copy, schedule);
    report.checks.push_back(make_check(kContract, problems.empty(), join(problems, "; ")));
    const auto again = run_sampler(sampler, schedule, data, steps.front(), z_T, options.seed + 1);
    const bool same = torch::equal(first.result.z0, again.result.z0);
    report.checks.push_back(make_check("deterministic: the same seed gives the same z0", same,
                                       same ? "" : "two runs with one seed differ"));
    const auto other = run_sampler(sampler, schedule, data, steps.front(), z_T, options.seed + 2);
    report.deterministic = torch::equal(first.result.z0, other.result.z0);
    if (!problems.empty() || !same) return report;
  } catch (const std::exception& e) {
    report.checks.push_back(
        make_check("contract: the sampler runs on [N, d] float64 latents", false, e.what()));
    return report;
  }

  const auto samples = report.deterministic ? std::min<std::int64_t>(options.samples, 1024) : options.samples;
  const auto n = static_cast<double>(samples);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    BenchRow row;
    row.steps = steps[i];
    try {
      // The first grid time is the sampler's own: ask it with a small batch, then start from q(z_t) there.
      auto probe_generator = seeded(options.seed);
      const auto probe = run_sampler(
          sampler, schedule, data, row.steps,
          data.sample(2, sigma_ratio(schedule, schedule.num_steps()), probe_generator), options.seed + 1);
      row.start_t = probe.first_t;
      if (row.start_t < 1) throw Error("the sampler never called eps");
      const double alpha_start = schedule.alpha(row.start_t);
      auto start_generator = seeded(options.seed + 100);
      const auto z_T =
          alpha_start * data.sample(samples, sigma_ratio(schedule, row.start_t), start_generator);
      const auto copy = z_T.clone();
      const auto run = run_sampler(sampler, schedule, data, row.steps, z_T, options.seed + 1);
      const auto problems = contract_problems(run, z_T, copy, schedule);
      if (!problems.empty()) throw Error(join(problems, "; "));
      row.nfe = run.calls;
      row.end_t = run.result.end_t;
      row.seconds = run.seconds;
      const auto z0 = run.result.z0.to(torch::kFloat64);
      const double sigma_end = sigma_ratio(schedule, row.end_t);
      if (report.deterministic) {
        const auto x_end = data.flow(z_T / alpha_start, sigma_ratio(schedule, row.start_t), sigma_end);
        const auto exact = data.denoise(x_end, sigma_end);
        row.error = ((z0 - exact).norm() / exact.norm()).item<double>();
        if (!report.rows.empty() && row.steps == 2 * report.rows.back().steps)
          row.order = std::log2(report.rows.back().error / row.error);
      } else {
        // What the sampler should produce: the data at end_t = 0, else the x0 estimate at end_t (whose
        // variance is smaller); a Monte Carlo reference adds its own sampling error.
        const auto truth = data.denoised_moments(sigma_end);
        const double inverse_n =
            1.0 / n + (truth.samples > 0 ? 1.0 / static_cast<double>(truth.samples) : 0.0);
        const auto mean_abs = (z0.mean(0) - truth.mean).abs();
        const auto variance_abs = (z0.var(0) - truth.variance).abs();
        row.mean_error = mean_abs.max().item<double>();
        row.mean_z = (mean_abs / (truth.variance * inverse_n).sqrt()).max().item<double>();
        row.variance_error = variance_abs.max().item<double>();
        row.variance_z =
            (variance_abs / ((truth.fourth - truth.variance.pow(2)) * inverse_n).sqrt()).max().item<double>();
      }
    } catch (const ConfigError& e) {
      report.notes.push_back("skipped " + std::to_string(row.steps) + " steps: " + e.what());
      continue;
    } catch (const std::exception& e) {
      report.checks.push_back(make_check("runs at " + std::to_string(row.steps) + " steps", false, e.what()));
      return report;
    }
    report.rows.push_back(row);
  }
  if (report.rows.empty()) {
    report.checks.push_back(make_check("runs at some step budget", false, join(report.notes, "; ")));
    return report;
  }

  const auto& last = report.rows.back();
  if (report.deterministic) {
    report.checks.push_back(make_check(
        "accurate: relative error at " + std::to_string(last.steps) + " steps <= " + sci(options.tolerance),
        last.error <= options.tolerance, "relative error " + sci(last.error)));
    // Converging: more steps help, unless the error is already at the reference's own accuracy.
    const auto& first = report.rows.front();
    const bool converging = report.rows.size() < 2 || last.error < 1e-9 || last.error < 0.5 * first.error;
    report.checks.push_back(make_check("converges: the error falls with more steps", converging,
                                       sci(first.error) + " at " + std::to_string(first.steps) + " steps, " +
                                           sci(last.error) + " at " + std::to_string(last.steps)));
  } else {
    const std::string at = " at " + std::to_string(last.steps) + " steps";
    report.checks.push_back(make_check(
        "sample mean within " + format_number(options.z_bound) + " standard errors of the exact mean" + at,
        last.mean_z <= options.z_bound,
        "worst dimension " + format_number(last.mean_z) + " standard errors (" + sci(last.mean_error) + ")"));
    report.checks.push_back(make_check("sample variance within " + format_number(options.z_bound) +
                                           " standard errors of the exact variance" + at,
                                       last.variance_z <= options.z_bound,
                                       "worst dimension " + format_number(last.variance_z) +
                                           " standard errors (" + sci(last.variance_error) + ")"));
  }
  return report;
}

}  // namespace latentlab::sampling
