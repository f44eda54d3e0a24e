// Built-in noise schedules, with the names and formulas of the reference LDM code
// (ldm/modules/diffusionmodules/util.py, make_beta_schedule). All arithmetic in float64.
#include <cmath>
#include <memory>
#include <vector>

#include "latentlab/plugin.hpp"
#include "latentlab/schedule.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::schedules {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Evenly spaced values from `first` to `last` inclusive, with torch.linspace's CPU formula (the first
// half forwards from `first`, the second half backwards from `last`), so that betas agree with the
// reference LDM code to within an ulp.
std::vector<double> linspace(double first, double last, std::int64_t count) {
  std::vector<double> out(static_cast<std::size_t>(count));
  if (count == 1) {
    out[0] = first;
    return out;
  }
  const double step = (last - first) / static_cast<double>(count - 1);
  const std::int64_t halfway = count / 2;
  for (std::int64_t i = 0; i < count; ++i)
    out[static_cast<std::size_t>(i)] = i < halfway ? first + step * static_cast<double>(i)
                                                   : last - step * static_cast<double>(count - i - 1);
  return out;
}

void check_ordered(const Params& params) {
  const double start = params.get_float("beta_start"), end = params.get_float("beta_end");
  if (start > end)
    throw ConfigError("beta_start (" + format_number(start) + ") must not exceed beta_end (" +
                      format_number(end) + ")");
}

// `linear`: linear in sqrt(beta), LDM's default: beta = linspace(sqrt(b0), sqrt(b1), T)^2.
std::vector<double> linear_betas(const Params& params) {
  check_ordered(params);
  auto betas = linspace(std::sqrt(params.get_float("beta_start")), std::sqrt(params.get_float("beta_end")),
                        params.get_int("T"));
  for (auto& b : betas) b = b * b;
  return betas;
}

// `sqrt_linear`: linear in beta (DDPM's original schedule): beta = linspace(b0, b1, T).
std::vector<double> sqrt_linear_betas(const Params& params) {
  check_ordered(params);
  return linspace(params.get_float("beta_start"), params.get_float("beta_end"), params.get_int("T"));
}

// `cosine` (Nichol & Dhariwal 2021): alpha_bar(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2),
// beta_t = 1 - alpha_bar(t)/alpha_bar(t-1), clipped to [0, max_beta].
std::vector<double> cosine_betas(const Params& params) {
  const std::int64_t T = params.get_int("T");
  const double s = params.get_float("s"), max_beta = params.get_float("max_beta");
  auto f = [&](std::int64_t t) {
    const double c = std::cos((static_cast<double>(t) / static_cast<double>(T) + s) / (1.0 + s) * kPi / 2.0);
    return c * c;
  };
  std::vector<double> betas(static_cast<std::size_t>(T));
  for (std::int64_t t = 1; t <= T; ++t) {
    const double beta = 1.0 - f(t) / f(t - 1);  // f(0) cancels in the ratio alpha_bar(t)/alpha_bar(t-1)
    betas[static_cast<std::size_t>(t - 1)] = std::min(std::max(beta, 0.0), max_beta);
  }
  return betas;
}

ParamSchema linear_schema(double beta_start, double beta_end) {
  return ParamSchema()
      .integer("T", 1000, "number of diffusion steps", Range::closed(1, 1000000))
      .number("beta_start", beta_start, "beta at t = 1", Range::open(0, 1))
      .number("beta_end", beta_end, "beta at t = T", Range::open(0, 1));
}

template <class BetasFn>
Registrar::Constructor<Schedule> from_betas(BetasFn betas_fn) {
  return [betas_fn](const Params& params) { return std::make_unique<DiscreteSchedule>(betas_fn(params)); };
}

void register_factories(Registrar& registrar) {
  registrar.add<Schedule>("linear", "LDM's default: beta = linspace(sqrt(beta_start), sqrt(beta_end), T)^2",
                          linear_schema(0.0015, 0.0195), from_betas(linear_betas));
  registrar.add<Schedule>("sqrt_linear", "linear in beta: beta = linspace(beta_start, beta_end, T)",
                          linear_schema(0.0015, 0.0195), from_betas(sqrt_linear_betas));
  registrar.add<Schedule>(
      "cosine", "Nichol & Dhariwal (2021): alpha_t^2 = cos^2((t/T + s)/(1 + s) pi/2), betas clipped",
      ParamSchema()
          .integer("T", 1000, "number of diffusion steps", Range::closed(1, 1000000))
          .number("s", 0.008, "offset that keeps beta_1 from vanishing", Range::closed(0, 1))
          .number("max_beta", 0.999, "upper clip for beta, avoids the singularity at t = T",
                  Range::open(0, 1)),
      from_betas(cosine_betas));
  registrar.add<Schedule>(
      "custom", "an explicit list of betas for t = 1..T",
      ParamSchema().number_list("betas", std::nullopt, "beta_t for t = 1..T (T = length of the list)",
                                Range::open(0, 1), 1),
      from_betas([](const Params& params) { return params.get_numbers("betas"); }));
}

}  // namespace
}  // namespace latentlab::schedules

LATENTLAB_PLUGIN("latentlab-schedules", LATENTLAB_VERSION_STRING, latentlab::schedules::register_factories)
