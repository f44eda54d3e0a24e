#pragma once
// Sample-quality metrics on feature vectors: FID (Heusel et al. 2017), KID (Binkowski et al. 2018),
// Inception Score (Salimans et al. 2016) and precision/recall (Kynkaanniemi et al. 2019), with the
// conventions of torch-fidelity, which the paper used (Sec. E.3). All arithmetic is float64 on the CPU;
// every result carries the sample counts it came from. docs/metrics.md explains each one.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/eval/feature_stats.hpp"
#include "latentlab/export.hpp"

namespace latentlab::eval {

// How tr sqrt(Sigma_1 Sigma_2) is computed.
enum class TraceSqrtMethod {
  // The default: with Sigma_1 = L L^T (Cholesky), Sigma_1 Sigma_2 = L (L^T Sigma_2 L) L^-1 has the
  // eigenvalues of the symmetric PSD matrix L^T Sigma_2 L, which a symmetric eigensolver gives. When
  // Sigma_1 is singular, R Sigma_2 R with R = Sigma_1^(1/2) (from its eigendecomposition) replaces it.
  kSymmetric,
  // The eigenvalues of the non-symmetric product Sigma_1 Sigma_2 from a general eigensolver, each
  // given its principal complex square root; the real part of their sum. Slower; an independent check.
  kEigenvalues,
};

// tr sqrt(Sigma_1 Sigma_2) for symmetric PSD sigma_1, sigma_2 [D, D] (float64 on the CPU).
LATENTLAB_API double trace_sqrt_product(const torch::Tensor& sigma_1, const torch::Tensor& sigma_2,
                                        TraceSqrtMethod method = TraceSqrtMethod::kSymmetric);

// ||mu_1 - mu_2||^2 + tr(Sigma_1 + Sigma_2 - 2 sqrt(Sigma_1 Sigma_2)), the Frechet distance of two
// Gaussians. mu: [D], sigma: [D, D].
LATENTLAB_API double frechet_distance(const torch::Tensor& mu_1, const torch::Tensor& sigma_1,
                                      const torch::Tensor& mu_2, const torch::Tensor& sigma_2,
                                      TraceSqrtMethod method = TraceSqrtMethod::kSymmetric);

struct FidResult {
  double fid = 0;
  std::int64_t n_a = 0, n_b = 0;
  // Set when a covariance came from no more samples than feature dimensions: it is then singular, FID
  // is biased upwards and not comparable with FIDs from other sample counts.
  std::vector<std::string> warnings;
};
LATENTLAB_API FidResult fid(const FeatureStatistics& a, const FeatureStatistics& b,
                            TraceSqrtMethod method = TraceSqrtMethod::kSymmetric);

struct KidOptions {
  std::int64_t subsets = 100;
  std::int64_t subset_size = 1000;  // capped at min(n_a, n_b)
  std::int64_t degree = 3;          // polynomial kernel (gamma x.y + coef0)^degree
  double gamma = 0;                 // 0: 1 / D
  double coef0 = 1;
  // Subsets are drawn as torch-fidelity draws them: numpy.random.RandomState(seed), then per subset
  // choice(N_a, m, replace=False) and choice(N_b, m, replace=False) (numpy_random.hpp).
  std::uint32_t seed = 2020;
};
struct KidResult {
  double mean = 0, std = 0;  // over the subsets; std divides by the number of subsets (numpy.std)
  std::int64_t n_a = 0, n_b = 0, subset_size = 0, subsets = 0;
};
// Kernel Inception Distance: the unbiased estimator of MMD^2 with a polynomial kernel, averaged over
// random subsets. a: [N_a, D], b: [N_b, D].
LATENTLAB_API KidResult kid(const torch::Tensor& a, const torch::Tensor& b, const KidOptions& options = {});

struct InceptionScoreOptions {
  std::int64_t splits = 10;
  bool shuffle = true;        // torch-fidelity shuffles the samples before splitting them
  std::uint32_t seed = 2020;  // numpy.random.RandomState(seed).permutation(N)
};
struct InceptionScoreResult {
  double mean = 0, std = 0;  // over the splits (numpy.std)
  std::int64_t n = 0, splits = 0;
};
// exp(E_x KL(p(y|x) || p(y))) on each of `splits` splits, rows [s N / splits, (s + 1) N / splits) of
// the (shuffled) samples, p(y|x) = softmax(logits) in float64. logits: [N, K], N >= splits.
LATENTLAB_API InceptionScoreResult inception_score(const torch::Tensor& logits,
                                                   const InceptionScoreOptions& options = {});

struct PrecisionRecallResult {
  double precision = 0, recall = 0;
  std::int64_t n_real = 0, n_fake = 0, k = 0;
};
// Improved precision and recall: a sample of one set is covered when it lies within the distance from
// some sample of the other set to that sample's k-th nearest neighbour (itself excluded). Precision is
// the fraction of fake samples covered by the real manifold, recall the fraction of real samples
// covered by the fake one. Distances are computed in blocks of `batch` rows, in float64.
LATENTLAB_API PrecisionRecallResult precision_recall(const torch::Tensor& real, const torch::Tensor& fake,
                                                     std::int64_t k = 3, std::int64_t batch = 1024);

}  // namespace latentlab::eval
