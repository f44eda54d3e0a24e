// Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), mean and std over splits.
#include <cmath>
#include <string>
#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/eval/numpy_random.hpp"

namespace latentlab::eval {

InceptionScoreResult inception_score(const torch::Tensor& logits, const InceptionScoreOptions& options) {
  const std::int64_t splits = options.splits;
  if (logits.dim() != 2 || logits.size(1) < 2)
    throw Error("the Inception Score needs logits [N, K] with K >= 2 classes");
  if (splits < 1 || logits.size(0) < splits)
    throw Error("the Inception Score needs at least one sample per split: " + std::to_string(logits.size(0)) +
                " samples for " + std::to_string(splits) + " splits");
  InceptionScoreResult result;
  result.n = logits.size(0);
  result.splits = splits;
  auto log_p = torch::log_softmax(logits.detach().to(torch::kCPU, torch::kFloat64), 1);  // [N, K]
  if (options.shuffle) {  // torch-fidelity: RandomState(2020).permutation(N) before splitting
    NumpyRandomState random(options.seed);
    log_p = log_p.index_select(0, torch::tensor(random.permutation(result.n), torch::kInt64));
  }
  std::vector<double> scores;
  for (std::int64_t s = 0; s < splits; ++s) {  // rows [s N / splits, (s + 1) N / splits)
    const std::int64_t start = s * result.n / splits, size = (s + 1) * result.n / splits - start;
    const auto part = log_p.narrow(0, start, size);
    const auto log_marginal = torch::logsumexp(part, 0) - std::log(static_cast<double>(size));  // log p(y)
    const auto kl = (part.exp() * (part - log_marginal)).sum(1);                                // [n]
    scores.push_back(std::exp(kl.mean().item<double>()));
  }
  double sum = 0;
  for (double v : scores) sum += v;
  result.mean = sum / static_cast<double>(splits);
  double squares = 0;
  for (double v : scores) squares += (v - result.mean) * (v - result.mean);
  result.std = std::sqrt(squares / static_cast<double>(splits));
  return result;
}

}  // namespace latentlab::eval
