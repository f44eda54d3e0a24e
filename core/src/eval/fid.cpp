// FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to two feature sets.
#include <cmath>
#include <string>

#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/threads.hpp"

namespace latentlab::eval {
namespace {

torch::Tensor as_matrix(const torch::Tensor& m, const char* name) {
  if (m.dim() != 2 || m.size(0) != m.size(1))
    throw Error(std::string(name) + " must be a square matrix [D, D]");
  return m.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

// LAPACK's eigensolvers call BLAS, which LatentLab keeps single-threaded during training
// (threads.hpp); give it the intra-op threads for the duration of one decomposition.
class BlasThreadsForLapack {
 public:
  BlasThreadsForLapack() : previous_(openblas_threads()) {
    if (previous_ > 0) set_openblas_threads(torch::get_num_threads());
  }
  ~BlasThreadsForLapack() {
    if (previous_ > 0) set_openblas_threads(previous_);
  }
  BlasThreadsForLapack(const BlasThreadsForLapack&) = delete;
  BlasThreadsForLapack& operator=(const BlasThreadsForLapack&) = delete;

 private:
  int previous_;
};

double sum_sqrt_clamped(const torch::Tensor& eigenvalues) {
  // Eigenvalues of a PSD matrix, of which rounding makes a few slightly negative.
  return eigenvalues.clamp_min(0.0).sqrt().sum().item<double>();
}

double trace_sqrt_symmetric(const torch::Tensor& s1, const torch::Tensor& s2) {
  // Sigma_1 Sigma_2 = L (L^T Sigma_2 L) L^{-1}: same eigenvalues as the symmetric PSD L^T Sigma_2 L.
  const auto factor = torch::linalg_cholesky_ex(s1);
  if (std::get<1>(factor).item<std::int64_t>() == 0) {
    const auto& lower = std::get<0>(factor);
    const auto inner = lower.t().mm(s2).mm(lower);
    return sum_sqrt_clamped(torch::linalg_eigvalsh(0.5 * (inner + inner.t())));
  }
  // Sigma_1 singular (fewer samples than dimensions): R = Sigma_1^(1/2) from its eigendecomposition;
  // R Sigma_2 R has the eigenvalues of Sigma_1 Sigma_2 as well.
  const auto [values, vectors] = torch::linalg_eigh(s1);
  const auto root = (vectors * values.clamp_min(0.0).sqrt()).mm(vectors.t());
  const auto inner = root.mm(s2).mm(root);
  return sum_sqrt_clamped(torch::linalg_eigvalsh(0.5 * (inner + inner.t())));
}

double trace_sqrt_eigenvalues(const torch::Tensor& s1, const torch::Tensor& s2) {
  const auto eigenvalues = torch::linalg_eigvals(s1.mm(s2));  // complex128 [D]
  return torch::real(torch::sqrt(eigenvalues).sum()).item<double>();
}

}  // namespace

double trace_sqrt_product(const torch::Tensor& sigma_1, const torch::Tensor& sigma_2,
                          TraceSqrtMethod method) {
  const auto s1 = as_matrix(sigma_1, "Sigma_1"), s2 = as_matrix(sigma_2, "Sigma_2");
  if (s1.sizes() != s2.sizes())
    throw Error("covariances of different sizes: " + std::to_string(s1.size(0)) + " and " +
                std::to_string(s2.size(0)) + " features (were they made by different feature extractors?)");
  BlasThreadsForLapack threads;
  return method == TraceSqrtMethod::kSymmetric ? trace_sqrt_symmetric(s1, s2)
                                               : trace_sqrt_eigenvalues(s1, s2);
}

double frechet_distance(const torch::Tensor& mu_1, const torch::Tensor& sigma_1, const torch::Tensor& mu_2,
                        const torch::Tensor& sigma_2, TraceSqrtMethod method) {
  const auto m1 = mu_1.to(torch::kCPU, torch::kFloat64), m2 = mu_2.to(torch::kCPU, torch::kFloat64);
  if (m1.dim() != 1 || m1.sizes() != m2.sizes() || m1.size(0) != sigma_1.size(0))
    throw Error("FID needs two means [D] that match their covariances [D, D]");
  const auto s1 = as_matrix(sigma_1, "Sigma_1"), s2 = as_matrix(sigma_2, "Sigma_2");
  const double mean_term = (m1 - m2).pow(2).sum().item<double>();
  const double traces = s1.trace().item<double>() + s2.trace().item<double>();
  return mean_term + traces - 2.0 * trace_sqrt_product(s1, s2, method);
}

FidResult fid(const FeatureStatistics& a, const FeatureStatistics& b, TraceSqrtMethod method) {
  FidResult result;
  result.n_a = a.count();
  result.n_b = b.count();
  for (const auto* stats : {&a, &b})
    if (stats->count() <= stats->dim())
      result.warnings.push_back(
          "a covariance comes from " + std::to_string(stats->count()) + " samples for " +
          std::to_string(stats->dim()) +
          " feature dimensions, so it is singular: FID is biased upwards and not comparable with FIDs "
          "from other sample counts (the paper uses 50000 samples; use more than " +
          std::to_string(stats->dim()) + ")");
  result.fid = frechet_distance(a.mean(), a.covariance(), b.mean(), b.covariance(), method);
  return result;
}

}  // namespace latentlab::eval
