// KID (Binkowski et al. 2018): the unbiased MMD^2 estimate with the kernel k(x, y) = (gamma x.y + coef0)^d,
// averaged over random subsets (torch-fidelity's defaults: 100 subsets of 1000, d = 3, gamma = 1 / D,
// coef0 = 1).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/eval/numpy_random.hpp"

namespace latentlab::eval {
namespace {

// x, y: [m, D] float64 -> MMD^2_u = sum_{i != j} (k(x_i, x_j) + k(y_i, y_j)) / (m (m - 1))
//                                  - 2 sum_{i, j} k(x_i, y_j) / m^2
double unbiased_mmd2(const torch::Tensor& x, const torch::Tensor& y, const KidOptions& o, double gamma) {
  const auto kernel = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return (a.mm(b.t()) * gamma + o.coef0).pow(static_cast<double>(o.degree));
  };
  const auto k_xx = kernel(x, x), k_yy = kernel(y, y), k_xy = kernel(x, y);
  const double m = static_cast<double>(x.size(0));
  const double within =
      (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()).item<double>() / (m * (m - 1));
  return within - 2.0 * k_xy.sum().item<double>() / (m * m);
}

}  // namespace

KidResult kid(const torch::Tensor& a, const torch::Tensor& b, const KidOptions& options) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1))
    throw Error("KID needs two feature sets [N, D] of one width D");
  if (options.subsets < 1 || options.subset_size < 2 || options.degree < 1)
    throw Error("KID needs subsets >= 1, subset_size >= 2 and degree >= 1");
  KidResult result;
  result.n_a = a.size(0);
  result.n_b = b.size(0);
  result.subsets = options.subsets;
  result.subset_size = std::min({options.subset_size, result.n_a, result.n_b});
  if (result.subset_size < 2)
    throw Error("KID needs at least 2 samples in each set, got " + std::to_string(result.n_a) + " and " +
                std::to_string(result.n_b));
  // Subsets are cast to float64 one at a time: no float64 copy of whole sets of 50000 x 2048.
  const auto x = a.detach().to(torch::kCPU), y = b.detach().to(torch::kCPU);
  const double gamma = options.gamma > 0 ? options.gamma : 1.0 / static_cast<double>(a.size(1));
  // torch-fidelity's draws: one RandomState, choice(n_a, m) then choice(n_b, m) per subset.
  NumpyRandomState random(options.seed);
  const auto subset = [&](std::int64_t n) {
    auto order = random.permutation(n);
    order.resize(static_cast<std::size_t>(result.subset_size));
    return torch::tensor(order, torch::TensorOptions().dtype(torch::kInt64));
  };
  std::vector<double> values;
  values.reserve(options.subsets);
  for (std::int64_t s = 0; s < options.subsets; ++s) {
    const auto pick_a = subset(result.n_a);
    const auto pick_b = subset(result.n_b);
    values.push_back(unbiased_mmd2(x.index_select(0, pick_a).to(torch::kFloat64),
                                   y.index_select(0, pick_b).to(torch::kFloat64), options, gamma));
  }
  double sum = 0;
  for (double v : values) sum += v;
  result.mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - result.mean) * (v - result.mean);
  result.std = std::sqrt(squares / static_cast<double>(values.size()));
  return result;
}

}  // namespace latentlab::eval
