#include "latentlab/diffusion/objective.hpp"

#include <cmath>
#include <string>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab {

const char* to_string(TimestepSampling sampling) {
  switch (sampling) {
    case TimestepSampling::Uniform:
      return "uniform";
    case TimestepSampling::Weights:
      return "weights";
    case TimestepSampling::LossHistory:
      return "loss_history";
  }
  return "?";
}

TimestepSampling timestep_sampling_from_string(const std::string& name) {
  if (name == "uniform") return TimestepSampling::Uniform;
  if (name == "weights") return TimestepSampling::Weights;
  if (name == "loss_history") return TimestepSampling::LossHistory;
  throw ConfigError("t_sampling: expected uniform, weights or loss_history, got '" + name + "'" +
                    did_you_mean(name, {"uniform", "weights", "loss_history"}));
}

void check_weights(const std::vector<double>& weights, std::int64_t num_steps, const std::string& owner) {
  if (static_cast<std::int64_t>(weights.size()) != num_steps)
    throw Error(owner + " returned " + std::to_string(weights.size()) + " weights for a schedule with T = " +
                std::to_string(num_steps) + "; it must return one per t = 1..T");
  double total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(weights[i]) || weights[i] < 0)
      throw Error(owner + " returned weight " + format_number(weights[i]) +
                  " at t = " + std::to_string(i + 1) + "; weights must be finite and >= 0");
    total += weights[i];
  }
  if (total <= 0) throw Error(owner + " returned only zero weights: the objective would be identically 0");
}

namespace {
constexpr double kHistoryDecay = 0.9;
}

TimestepSampler::TimestepSampler(TimestepSampling mode, std::vector<double> weights, std::int64_t warmup,
                                 double uniform_mix)
    : mode_(mode),
      weights_(torch::tensor(weights, torch::kFloat64)),
      mean_square_(torch::zeros({static_cast<std::int64_t>(weights.size())}, torch::kFloat64)),
      counts_(torch::zeros({static_cast<std::int64_t>(weights.size())}, torch::kLong)),
      warmup_(warmup),
      uniform_mix_(uniform_mix) {}

torch::Tensor TimestepSampler::proposal() const {
  const auto T = weights_.size(0);
  const auto uniform = torch::full({T}, 1.0 / static_cast<double>(T), torch::kFloat64);
  switch (mode_) {
    case TimestepSampling::Uniform:
      return uniform;
    case TimestepSampling::Weights:
      // t with w(t) = 0 contribute nothing to the objective, so p(t) = 0 there keeps it unbiased.
      return weights_ / weights_.sum();
    case TimestepSampling::LossHistory: {
      if (counts_.min().item<std::int64_t>() < warmup_) return uniform;
      const auto root_mean_square = mean_square_.sqrt();
      const double total = root_mean_square.sum().item<double>();
      if (!(total > 0) || !std::isfinite(total)) return uniform;
      // A little uniform mass keeps every p(t) > 0, so 1/(T p(t)) stays bounded.
      return (1.0 - uniform_mix_) * root_mean_square / total + uniform_mix_ * uniform;
    }
  }
  return uniform;
}

torch::Tensor TimestepSampler::sample(std::int64_t batch, at::Generator& generator) const {
  const auto T = weights_.size(0);
  if (mode_ == TimestepSampling::Uniform)
    return torch::randint(1, T + 1, {batch}, generator, torch::TensorOptions().dtype(torch::kLong));
  return torch::multinomial(proposal(), batch, /*replacement=*/true, generator) + 1;
}

TimestepSampler::Draw TimestepSampler::draw(std::int64_t batch, at::Generator& generator) const {
  if (mode_ == TimestepSampling::Uniform) {
    const auto t = torch::randint(1, weights_.size(0) + 1, {batch}, generator,
                                  torch::TensorOptions().dtype(torch::kLong));
    return {t, torch::ones({batch}, torch::kFloat64)};
  }
  const auto p = proposal();  // [T]
  const auto t = torch::multinomial(p, batch, /*replacement=*/true, generator) + 1;
  return {t, 1.0 / (static_cast<double>(weights_.size(0)) * p.index_select(0, t - 1))};
}

torch::Tensor TimestepSampler::importance(const torch::Tensor& t) const {
  const auto T = static_cast<double>(weights_.size(0));
  const auto p = proposal().index_select(0, t.to(torch::kCPU, torch::kLong) - 1);  // [B]
  return 1.0 / (T * p);
}

void TimestepSampler::observe(const torch::Tensor& t, const torch::Tensor& weighted_loss) {
  if (mode_ != TimestepSampling::LossHistory) return;
  const auto steps = t.to(torch::kCPU, torch::kLong);
  const auto losses = weighted_loss.detach().to(torch::kCPU, torch::kFloat64);
  auto square = mean_square_.accessor<double, 1>();
  auto count = counts_.accessor<std::int64_t, 1>();
  const auto step = steps.accessor<std::int64_t, 1>();
  const auto loss = losses.accessor<double, 1>();
  for (std::int64_t b = 0; b < steps.size(0); ++b) {
    const auto i = step[b] - 1;
    const double l2 = loss[b] * loss[b];
    square[i] = count[i] == 0 ? l2 : kHistoryDecay * square[i] + (1.0 - kHistoryDecay) * l2;
    ++count[i];
  }
}

std::vector<torch::Tensor> TimestepSampler::state() const {
  return {mean_square_.clone(), counts_.clone()};
}

void TimestepSampler::load_state(const std::vector<torch::Tensor>& state) {
  if (state.size() != 2 || state[0].sizes() != mean_square_.sizes() || state[1].sizes() != counts_.sizes())
    throw Error("timestep sampler state does not match this schedule (different T?)");
  mean_square_ = state[0].to(torch::kFloat64).clone();
  counts_ = state[1].to(torch::kLong).clone();
}

DenoisingObjective::DenoisingObjective(const Schedule& schedule, const LossWeighting& weighting,
                                       Prediction prediction)
    : DenoisingObjective(schedule, weighting.timestep_sampling(), weighting.weights(schedule), prediction) {}

DenoisingObjective::DenoisingObjective(const Schedule& schedule, TimestepSampling sampling,
                                       const std::vector<double>& weights, Prediction prediction)
    : process_(schedule),
      prediction_(prediction),
      weights_((check_weights(weights, schedule.num_steps(), "the loss weighting"),
                torch::tensor(weights, torch::kFloat64))),
      sampler_(sampling, weights) {}

ObjectiveTerms DenoisingObjective::compute(const DenoiserFn& model, const torch::Tensor& z0,
                                           at::Generator& generator) {
  const auto batch = z0.size(0);
  ObjectiveTerms terms;
  const auto draw = sampler_.draw(batch, generator);  // t [B] on the CPU, 1/(T p(t)) [B]
  terms.t = draw.t;
  // eps from the CPU generator whatever z0's device: the same draws on CPU and GPU.
  const auto eps = torch::randn(z0.sizes(), generator, z0.options().device(torch::kCPU)).to(z0.device());
  const auto alpha = process_.alpha(terms.t, z0.dim()).to(z0.device());  // [B, 1, 1, 1] f64
  const auto sigma = process_.sigma(terms.t, z0.dim()).to(z0.device());
  const auto z_t = ForwardProcess::noise(z0, eps, alpha, sigma);                     // Eq. 4
  const auto output = model(z_t, terms.t.to(z0.device()));                           // [B, C, H, W]
  const auto eps_hat = eps_from_prediction(prediction_, output, z_t, alpha, sigma);  // [B, C, H, W]
  const auto mse = (eps - eps_hat).pow(2).flatten(1).mean(1);                        // [B]
  const auto importance = draw.importance.to(mse.device(), mse.scalar_type());
  // w(t) / (T p(t)): the weighting and the importance correction, one factor per sample.
  const auto weight = weights_.index_select(0, terms.t - 1).to(mse.device(), mse.scalar_type());
  terms.loss = (weight * importance * mse).mean();
  terms.mse = mse.detach();
  // Eq. 2 estimates the uniform mean over t: the same importance correction, without w(t).
  terms.loss_simple = (importance * terms.mse).mean();
  return terms;
}

void DenoisingObjective::observe(const ObjectiveTerms& terms) {
  if (!sampler_.observes()) return;  // no device-to-host copy unless the proposal learns from losses
  const auto w = weights_.index_select(0, terms.t.to(torch::kCPU) - 1);
  sampler_.observe(terms.t, w * terms.mse.to(torch::kCPU, torch::kFloat64));
}

}  // namespace latentlab
