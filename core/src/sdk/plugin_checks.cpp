#include "latentlab/plugin_checks.hpp"

#include "check_util.hpp"

#include <cmath>
#include <functional>

#include "latentlab/diffusion/objective.hpp"
#include "latentlab/error.hpp"
#include "latentlab/sampling/analytic.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

namespace {

using detail::check;

std::vector<DiscreteSchedule> test_schedules() {
  std::vector<DiscreteSchedule> schedules;
  for (const std::int64_t T : {1, 10, 1000}) {
    std::vector<double> betas;
    for (std::int64_t i = 0; i < T; ++i) {  // LDM's linear schedule: linear in sqrt(beta)
      const double f = T == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(T - 1);
      const double root = std::sqrt(0.0015) + f * (std::sqrt(0.0195) - std::sqrt(0.0015));
      betas.push_back(root * root);
    }
    schedules.emplace_back(betas);
  }
  return schedules;
}

}  // namespace

std::vector<CheckResult> check_weighting(const LossWeighting& weighting) {
  std::vector<CheckResult> results;
  const auto schedules = test_schedules();
  results.push_back(check("T weights, finite and >= 0, not all 0 (T = 1, 10, 1000)", [&]() -> std::string {
    for (const auto& schedule : schedules)
      check_weights(weighting.weights(schedule), schedule.num_steps(), "weights()");
    return std::string();
  }));
  results.push_back(check("weights() is deterministic", [&]() -> std::string {
    for (const auto& schedule : schedules)
      if (weighting.weights(schedule) != weighting.weights(schedule))
        return "two calls differ for T = " + std::to_string(schedule.num_steps());
    return std::string();
  }));
  results.push_back(check(std::string("t proposal (") + to_string(weighting.timestep_sampling()) +
                              ") is a distribution covering every t with w(t) > 0",
                          [&]() -> std::string {
                            for (const auto& schedule : schedules) {
                              const auto weights = weighting.weights(schedule);
                              TimestepSampler sampler(weighting.timestep_sampling(), weights, 1);
                              // Feed a history so that loss_history leaves its uniform warm-up.
                              const auto t = torch::arange(1, schedule.num_steps() + 1, torch::kLong);
                              sampler.observe(t, torch::tensor(weights, torch::kFloat64));
                              const auto p = sampler.proposal();
                              if (std::abs(p.sum().item<double>() - 1.0) > 1e-9)
                                return std::string("p(t) does not sum to 1");
                              for (std::size_t i = 0; i < weights.size(); ++i)
                                if (weights[i] > 0 && !(p[static_cast<std::int64_t>(i)].item<double>() > 0))
                                  return "p(" + std::to_string(i + 1) + ") = 0 but w(" +
                                         std::to_string(i + 1) +
                                         ") > 0 (T = " + std::to_string(schedule.num_steps()) + ")";
                            }
                            return std::string();
                          }));
  return results;
}

std::vector<CheckResult> check_dataset(const Dataset& dataset) {
  std::vector<CheckResult> results;
  const auto N = dataset.size();
  results.push_back(check("size, channels, resolution and classes are sensible", [&]() -> std::string {
    if (N < 1) return "size() is " + std::to_string(N);
    if (dataset.channels() < 1 || dataset.resolution() < 1)
      return "channels() " + std::to_string(dataset.channels()) + ", resolution() " +
             std::to_string(dataset.resolution());
    if (dataset.num_classes() < 0) return "num_classes() is negative";
    const auto names = dataset.class_names().size();
    if (names != 0 && static_cast<std::int64_t>(names) != dataset.num_classes())
      return std::to_string(names) + " class names for " + std::to_string(dataset.num_classes()) + " classes";
    return std::string();
  }));
  if (!results.back().passed) return results;

  std::vector<std::int64_t> indices = {0, N - 1};
  for (std::int64_t i = 1; i <= 6 && i < N - 1; ++i) indices.push_back(i * (N - 1) / 7);
  const std::int64_t C = dataset.channels(), R = dataset.resolution(),
                     B = static_cast<std::int64_t>(indices.size());
  Batch batch;
  results.push_back(check(
      "images [B, C, R, R] float32, finite, in [-1, 1]; labels [B] int64 in range", [&]() -> std::string {
        batch = dataset.get_batch(indices);
        if (!batch.images.defined() || batch.images.sizes() != torch::IntArrayRef({B, C, R, R}))
          return std::string("images have the wrong shape (expected [") + std::to_string(B) + ", " +
                 std::to_string(C) + ", " + std::to_string(R) + ", " + std::to_string(R) + "])";
        if (batch.images.scalar_type() != torch::kFloat32) return std::string("images are not float32");
        if (!torch::isfinite(batch.images).all().item<bool>()) return std::string("images have inf or nan");
        const double lo = batch.images.min().item<double>(), hi = batch.images.max().item<double>();
        if (lo < -1.0 || hi > 1.0)
          return "images span [" + format_number(lo) + ", " + format_number(hi) + "], not [-1, 1]";
        if (dataset.num_classes() == 0)
          return batch.labels.defined() ? std::string("labels given without classes") : "";
        if (!batch.labels.defined() || batch.labels.sizes() != torch::IntArrayRef({B}) ||
            batch.labels.scalar_type() != torch::kLong)
          return std::string("labels must be [B] int64");
        if (batch.labels.min().item<std::int64_t>() < 0 ||
            batch.labels.max().item<std::int64_t>() >= dataset.num_classes())
          return std::string("labels outside [0, num_classes)");
        return std::string();
      }));
  if (!results.back().passed) return results;
  results.push_back(
      check("same indices, same tensors; a batch equals its examples one by one", [&]() -> std::string {
        const auto again = dataset.get_batch(indices);
        if (!torch::equal(again.images, batch.images)) return std::string("a second get_batch differs");
        for (std::int64_t b = 0; b < B; ++b) {
          const auto single = dataset.get_batch({indices[static_cast<std::size_t>(b)]});
          if (!torch::equal(single.images[0], batch.images[b]))
            return "example " + std::to_string(indices[static_cast<std::size_t>(b)]) +
                   " differs alone and in a batch";
        }
        return std::string();
      }));
  results.push_back(check("an index outside [0, size()) is an error", [&]() -> std::string {
    for (const std::int64_t bad : {std::int64_t{-1}, N}) {
      try {
        dataset.get_batch({bad});
        return "get_batch({" + std::to_string(bad) + "}) did not throw";
      } catch (const std::exception&) {
      }
    }
    return std::string();
  }));
  return results;
}

std::vector<CheckResult> check_guider(const Guider& guider) {
  std::vector<CheckResult> results;
  const auto schedule = std::move(test_schedules()[2]);  // T = 1000
  const sampling::GaussianData data(torch::zeros({64}, torch::kFloat64), 1.0);
  GuidanceInputs inputs;
  inputs.schedule = &schedule;
  // eps of N(0, I) images plus a class-dependent shift, so conditional and unconditional differ.
  inputs.model = [&](const torch::Tensor& z, std::int64_t t, const Conditioning& cond) {
    if (!cond.y.defined() || cond.y.size(0) != z.size(0))
      throw Error("the guider called the model with a conditioning batch that does not match z_t's");
    const double alpha = schedule.alpha(t);
    const auto eps = data.eps(z.to(torch::kFloat64).flatten(1) / alpha, schedule.sigma(t) / alpha).view_as(z);
    return (eps + 0.1 * cond.y.to(torch::kFloat64).view({-1, 1, 1, 1})).to(z.scalar_type());
  };
  inputs.cond.y = torch::tensor({1, 2}, torch::kInt64);
  inputs.uncond.y = torch::tensor({0, 0}, torch::kInt64);
  inputs.decode = [](const torch::Tensor& z) { return z; };
  inputs.mask = torch::zeros({1, 1, 8, 8});
  inputs.mask.index_put_({0, 0, torch::indexing::Slice(0, 4)}, 1.0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(11);
  const auto image =
      at::randn({1, 1, 8, 8}, generator, torch::TensorOptions().dtype(torch::kFloat64)).clamp(-1, 1);

  EpsFn eps;
  results.push_back(
      check("accepts a model, conditioning, decoder, mask and an observation y", [&]() -> std::string {
        std::string last_error;
        for (const std::int64_t factor : {1, 2, 4, 8}) {
          inputs.target = torch::avg_pool2d(image, {factor, factor});
          try {
            eps = guider.guide(inputs);
            eps(torch::zeros({2, 1, 8, 8}, torch::kFloat64), 500);
            return "";
          } catch (const ConfigError& e) {
            last_error = e.what();
          }
        }
        eps = nullptr;
        return "no y size from 8x8 to 1x1 fits: " + last_error;
      }));
  if (!eps) return results;

  results.push_back(check(
      "eps_hat like z_t (float32 and float64), finite, z_t untouched, t = 1, T/2, T", [&]() -> std::string {
        for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
          const auto z = at::randn({2, 1, 8, 8}, generator, torch::TensorOptions().dtype(dtype));
          const auto copy = z.clone();
          for (const std::int64_t t : {std::int64_t{1}, std::int64_t{500}, std::int64_t{1000}}) {
            torch::NoGradGuard no_grad;  // as `latentlab sample` calls it
            const auto out = eps(z, t);
            if (!out.defined() || out.sizes() != z.sizes())
              return "eps_hat's shape differs from z_t's at t = " + std::to_string(t);
            if (out.scalar_type() != dtype) return "eps_hat's dtype differs from z_t's";
            if (!torch::isfinite(out).all().item<bool>())
              return "eps_hat is not finite at t = " + std::to_string(t);
            if (!torch::equal(z, copy)) return "the guider changed z_t in place";
          }
        }
        return "";
      }));
  results.push_back(check("the same inputs give the same eps_hat", [&]() -> std::string {
    const auto z = at::randn({2, 1, 8, 8}, generator, torch::TensorOptions().dtype(torch::kFloat64));
    torch::NoGradGuard no_grad;
    return torch::equal(eps(z, 300), eps(z, 300)) ? "" : "two calls with the same z_t and t differ";
  }));
  return results;
}

}  // namespace latentlab
