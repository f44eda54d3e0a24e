#include "latentlab/sampling/analytic.hpp"

#include <cmath>
#include <numeric>
#include <sstream>

#include "latentlab/error.hpp"
#include "latentlab/strings.hpp"

namespace latentlab::sampling {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// One classical RK4 step of dx/du = f(x, u).
template <class F>
torch::Tensor rk4_step(const F& f, const torch::Tensor& x, double u, double h) {
  const auto k1 = f(x, u);
  const auto k2 = f(x + 0.5 * h * k1, u + 0.5 * h);
  const auto k3 = f(x + 0.5 * h * k2, u + 0.5 * h);
  const auto k4 = f(x + h * k3, u + h);
  return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
}

std::string shape_of(const torch::Tensor& x) {
  std::ostringstream out;
  out << x.sizes();
  return out.str();
}

}  // namespace

AnalyticData::~AnalyticData() = default;

torch::Tensor AnalyticData::denoise(const torch::Tensor& x, double sigma_ratio) const {
  if (sigma_ratio == 0) return x;
  return x - sigma_ratio * eps(x, sigma_ratio);
}

torch::Tensor AnalyticData::flow(const torch::Tensor& x, double sigma_from, double sigma_to) const {
  if (sigma_to > sigma_from) throw Error("flow: sigma_to must not exceed sigma_from");
  if (sigma_to == sigma_from) return x;
  // In u = log sigma' the ODE dx/du = sigma' eps(x, sigma') is smooth down to small sigma'; below
  // kLinear it continues in sigma' itself, which reaches 0.
  constexpr double kLinear = 1e-3;
  constexpr int kStepsPerUnit = 64;  // RK4 in u; the tests check it against the Gaussian's closed form
  auto state = x.to(torch::kFloat64);
  const double u_end = std::log(std::max(sigma_to, kLinear));
  double u = std::log(sigma_from);
  if (u > u_end) {
    const int n = std::max(1, static_cast<int>(std::ceil((u - u_end) * kStepsPerUnit)));
    const double h = (u_end - u) / n;
    const auto f = [this](const torch::Tensor& state_x, double log_sigma) {
      const double sigma = std::exp(log_sigma);
      return sigma * eps(state_x, sigma);
    };
    for (int i = 0; i < n; ++i, u += h) state = rk4_step(f, state, u, h);
  }
  const double sigma_now = std::min(sigma_from, std::exp(u_end));
  if (sigma_to < sigma_now) {
    const int n = 64;
    const double h = (sigma_to - sigma_now) / n;
    const auto f = [this](const torch::Tensor& state_x, double sigma) {
      return sigma > 0 ? eps(state_x, sigma) : torch::zeros_like(state_x);
    };
    double s = sigma_now;
    for (int i = 0; i < n; ++i, s += h) state = rk4_step(f, state, s, h);
  }
  return state;
}

AnalyticData::Moments AnalyticData::denoised_moments(double sigma_ratio) const {
  if (sigma_ratio == 0) return Moments{mean(), variance(), fourth_moment(), 0};
  constexpr std::int64_t kSamples = 1 << 18;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0x5eed);
  const auto x0 = denoise(sample(kSamples, sigma_ratio, generator), sigma_ratio);
  const auto m = x0.mean(0);
  return Moments{m, x0.var(0), (x0 - m).pow(4).mean(0), kSamples};
}

EpsFn AnalyticData::eps_fn(const Schedule& schedule) const {
  return [this, &schedule](const torch::Tensor& z_t, std::int64_t t) {
    if (t < 1 || t > schedule.num_steps())
      throw Error("the sampler called eps_hat at t = " + std::to_string(t) + ", outside [1, " +
                  std::to_string(schedule.num_steps()) + "]");
    if (z_t.dim() != 2 || z_t.size(1) != dim())
      throw Error("the sampler called eps_hat with shape " + shape_of(z_t) + "; the analytic data has [N, " +
                  std::to_string(dim()) + "]");
    const double alpha = schedule.alpha(t);
    const double sigma_ratio = schedule.sigma(t) / alpha;
    return eps(z_t.to(torch::kFloat64) / alpha, sigma_ratio).to(z_t.scalar_type());
  };
}

// ---- Gaussian ----

GaussianData::GaussianData(torch::Tensor mu, double s) : mu_(mu.to(torch::kFloat64).contiguous()), s_(s) {
  if (mu_.dim() != 1 || s <= 0) throw Error("GaussianData: mu must be [d] and s > 0");
}

std::string GaussianData::description() const {
  std::ostringstream out;
  out << "N(mu, " << s_ << "^2 I) in d = " << dim() << ", mu in [" << mu_.min().item<double>() << ", "
      << mu_.max().item<double>() << "]";
  return out.str();
}

torch::Tensor GaussianData::eps(const torch::Tensor& x, double sigma_ratio) const {
  return sigma_ratio * (x - mu_) / (s_ * s_ + sigma_ratio * sigma_ratio);
}

torch::Tensor GaussianData::sample(std::int64_t n, double sigma_ratio, at::Generator& generator) const {
  const double spread = std::sqrt(s_ * s_ + sigma_ratio * sigma_ratio);
  return mu_ + spread * at::randn({n, dim()}, generator, kF64);
}

torch::Tensor GaussianData::variance() const {
  return torch::full({dim()}, s_ * s_, kF64);
}

torch::Tensor GaussianData::fourth_moment() const {
  return torch::full({dim()}, 3.0 * std::pow(s_, 4), kF64);
}

torch::Tensor GaussianData::flow(const torch::Tensor& x, double sigma_from, double sigma_to) const {
  // (x - mu) / sqrt(s^2 + sigma'^2) is constant along the ODE: (z_t - alpha_t mu) / v_t in x units.
  const double ratio = std::sqrt((s_ * s_ + sigma_to * sigma_to) / (s_ * s_ + sigma_from * sigma_from));
  return mu_ + ratio * (x.to(torch::kFloat64) - mu_);
}

AnalyticData::Moments GaussianData::denoised_moments(double sigma_ratio) const {
  const double shrink = s_ * s_ / (s_ * s_ + sigma_ratio * sigma_ratio);
  const double variance = shrink * s_ * s_;
  return Moments{mu_, torch::full({dim()}, variance, kF64),
                 torch::full({dim()}, 3.0 * variance * variance, kF64), 0};
}

// ---- mixture ----

MixtureData::MixtureData(torch::Tensor means, std::vector<double> weights, std::vector<double> scales)
    : means_(means.to(torch::kFloat64).contiguous()),
      weights_(std::move(weights)),
      scales_(std::move(scales)) {
  const auto k = static_cast<std::size_t>(means_.size(0));
  if (means_.dim() != 2 || weights_.size() != k || scales_.size() != k)
    throw Error("MixtureData: means [K, d], K weights and K scales");
  const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (auto& w : weights_) w /= total;
}

std::string MixtureData::description() const {
  std::ostringstream out;
  out << means_.size(0) << " isotropic Gaussians in d = " << dim() << ", weights";
  for (double w : weights_) out << " " << w;
  out << ", scales";
  for (double s : scales_) out << " " << s;
  return out.str();
}

torch::Tensor MixtureData::eps(const torch::Tensor& x, double sigma_ratio) const {
  // x: [N, d]. Per component k, v_k = s_k^2 + sigma'^2 and
  //   log r_k = log w_k - d/2 log v_k - ||x - mu_k||^2 / (2 v_k) + const,
  //   E[eps | x] = sigma' sum_k r_k (x - mu_k) / v_k = sigma' (x sum_k r_k / v_k - (r / v) @ mu).
  const double d = static_cast<double>(dim());
  std::vector<double> inverse_v(weights_.size()), log_prior(weights_.size());
  for (std::size_t k = 0; k < weights_.size(); ++k) {
    const double v = scales_[k] * scales_[k] + sigma_ratio * sigma_ratio;
    inverse_v[k] = 1.0 / v;
    log_prior[k] = std::log(weights_[k]) - 0.5 * d * std::log(v);
  }
  const auto inv_v = torch::tensor(inverse_v, kF64);                         // [K]
  const auto squared = x.pow(2).sum(1, true) - 2.0 * x.matmul(means_.t()) +  // [N, K]
                       means_.pow(2).sum(1).unsqueeze(0);
  const auto responsibilities = torch::softmax(torch::tensor(log_prior, kF64) - 0.5 * squared * inv_v, 1);
  const auto weighted = responsibilities * inv_v;                              // [N, K]
  return sigma_ratio * (x * weighted.sum(1, true) - weighted.matmul(means_));  // [N, d]
}

torch::Tensor MixtureData::sample(std::int64_t n, double sigma_ratio, at::Generator& generator) const {
  const auto K = static_cast<std::int64_t>(weights_.size());
  const auto probabilities = torch::tensor(weights_, kF64);
  const auto component = at::multinomial(probabilities, n, true, generator);  // [n]
  auto spread = torch::empty({K}, kF64);
  for (std::int64_t k = 0; k < K; ++k)
    spread[k] = std::sqrt(scales_[k] * scales_[k] + sigma_ratio * sigma_ratio);
  const auto noise = at::randn({n, dim()}, generator, kF64);
  return means_.index_select(0, component) + spread.index_select(0, component).unsqueeze(1) * noise;
}

torch::Tensor MixtureData::mean() const {
  return (torch::tensor(weights_, kF64).unsqueeze(1) * means_).sum(0);
}

torch::Tensor MixtureData::variance() const {
  const auto m = mean();
  auto total = torch::zeros({dim()}, kF64);
  for (std::size_t k = 0; k < weights_.size(); ++k)
    total += weights_[k] * (scales_[k] * scales_[k] + (means_[static_cast<std::int64_t>(k)] - m).pow(2));
  return total;
}

torch::Tensor MixtureData::fourth_moment() const {
  // E[(d + s Z)^4] = d^4 + 6 d^2 s^2 + 3 s^4 per component, d = mu_k - mean.
  const auto m = mean();
  auto total = torch::zeros({dim()}, kF64);
  for (std::size_t k = 0; k < weights_.size(); ++k) {
    const auto d = means_[static_cast<std::int64_t>(k)] - m;
    const double s2 = scales_[k] * scales_[k];
    total += weights_[k] * (d.pow(4) + 6.0 * d.pow(2) * s2 + 3.0 * s2 * s2);
  }
  return total;
}

// ---- the bench's data ----

const std::vector<std::string>& analytic_data_names() {
  static const std::vector<std::string> names = {"gaussian", "mixture"};
  return names;
}

std::unique_ptr<AnalyticData> make_analytic_data(const std::string& name) {
  constexpr std::int64_t d = 16;
  if (name == "gaussian") return std::make_unique<GaussianData>(torch::linspace(-1.0, 1.0, d, kF64), 0.5);
  if (name == "mixture") {
    // Three components on different axes pairs, so that the responsibilities matter along the flow.
    auto means = torch::zeros({3, d}, kF64);
    means.index_put_({0, torch::indexing::Slice(0, d / 2)}, 1.0);
    means.index_put_({1, torch::indexing::Slice(d / 2, d)}, -1.0);
    means.index_put_({2}, torch::linspace(-0.5, 0.5, d, kF64));
    return std::make_unique<MixtureData>(means, std::vector<double>{0.5, 0.3, 0.2},
                                         std::vector<double>{0.3, 0.5, 0.4});
  }
  throw ConfigError("analytic data: expected one of " + join(analytic_data_names()) + ", got '" + name + "'" +
                    did_you_mean(name, analytic_data_names()));
}

}  // namespace latentlab::sampling
