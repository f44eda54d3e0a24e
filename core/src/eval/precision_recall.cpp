// Improved precision and recall (Kynkaanniemi et al. 2019): k-NN balls around each sample approximate
// the support of its distribution.
#include <algorithm>
#include <limits>
#include <string>

#include "latentlab/error.hpp"
#include "latentlab/eval/generative_metrics.hpp"

namespace latentlab::eval {
namespace {

// Rows of distances per block: at most `batch`, and few enough that a block stays under ~64 MB.
std::int64_t block_rows(std::int64_t batch, std::int64_t columns) {
  return std::max<std::int64_t>(1, std::min<std::int64_t>(batch, (std::int64_t{1} << 23) / columns));
}

// Euclidean distances [B, M] in float64 from rows x [B, D] to rows y [M, D] (squared norms
// precomputed in float64); x and y are cast to float64 a block at a time.
torch::Tensor distances(const torch::Tensor& x, const torch::Tensor& x_sq, const torch::Tensor& y,
                        const torch::Tensor& y_sq) {
  const auto x64 = x.to(torch::kFloat64);
  auto products = torch::empty({x.size(0), y.size(0)}, x64.options());
  constexpr std::int64_t kColumns = 8192;  // y cast to float64 in pieces: never a whole float64 copy
  for (std::int64_t start = 0; start < y.size(0); start += kColumns) {
    const std::int64_t count = std::min(kColumns, y.size(0) - start);
    products.narrow(1, start, count).copy_(x64.mm(y.narrow(0, start, count).to(torch::kFloat64).t()));
  }
  return (x_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2.0 * products).clamp_min(0.0).sqrt();
}

// Squared norms [N] in float64, row block by row block.
torch::Tensor squared_norms(const torch::Tensor& x) {
  auto norms = torch::empty({x.size(0)}, torch::TensorOptions().dtype(torch::kFloat64));
  for (std::int64_t start = 0; start < x.size(0); start += 8192) {
    const std::int64_t count = std::min<std::int64_t>(8192, x.size(0) - start);
    norms.narrow(0, start, count).copy_(x.narrow(0, start, count).to(torch::kFloat64).pow(2).sum(1));
  }
  return norms;
}

// The distance from each sample to its k-th nearest neighbour in its own set, itself excluded. [N]
torch::Tensor knn_radii(const torch::Tensor& x, const torch::Tensor& x_sq, std::int64_t k,
                        std::int64_t batch) {
  const std::int64_t n = x.size(0), rows = block_rows(batch, n);
  auto radii = torch::empty({n}, torch::TensorOptions().dtype(torch::kFloat64));
  for (std::int64_t start = 0; start < n; start += rows) {
    const std::int64_t count = std::min(rows, n - start);
    auto d = distances(x.narrow(0, start, count), x_sq.narrow(0, start, count), x, x_sq);
    d.diagonal(start, 0, 1).fill_(std::numeric_limits<double>::infinity());  // not its own neighbour
    radii.narrow(0, start, count).copy_(std::get<0>(d.kthvalue(k, 1)));
  }
  return radii;
}

// The fraction of `query` samples inside at least one ball (centre `support` row, radius `radii`).
double covered_fraction(const torch::Tensor& query, const torch::Tensor& support, const torch::Tensor& radii,
                        std::int64_t batch) {
  const auto q_sq = squared_norms(query), s_sq = squared_norms(support);
  const std::int64_t n = query.size(0), rows = block_rows(batch, support.size(0));
  std::int64_t covered = 0;
  for (std::int64_t start = 0; start < n; start += rows) {
    const std::int64_t count = std::min(rows, n - start);
    const auto d = distances(query.narrow(0, start, count), q_sq.narrow(0, start, count), support, s_sq);
    covered += d.le(radii.unsqueeze(0)).any(1).sum().item<std::int64_t>();
  }
  return static_cast<double>(covered) / static_cast<double>(n);
}

}  // namespace

PrecisionRecallResult precision_recall(const torch::Tensor& real, const torch::Tensor& fake, std::int64_t k,
                                       std::int64_t batch) {
  if (real.dim() != 2 || fake.dim() != 2 || real.size(1) != fake.size(1))
    throw Error("precision/recall needs two feature sets [N, D] of one width D");
  if (k < 1 || batch < 1) throw Error("precision/recall needs k >= 1 and batch >= 1");
  if (real.size(0) <= k || fake.size(0) <= k)
    throw Error("precision/recall with k = " + std::to_string(k) + " needs more than " + std::to_string(k) +
                " samples in each set, got " + std::to_string(real.size(0)) + " and " +
                std::to_string(fake.size(0)));
  // Kept in their dtype (float32 features: 400 MB for 50000 x 2048); blocks are cast to float64.
  const auto r = real.detach().to(torch::kCPU).contiguous();
  const auto f = fake.detach().to(torch::kCPU).contiguous();
  PrecisionRecallResult result;
  result.n_real = r.size(0);
  result.n_fake = f.size(0);
  result.k = k;
  const auto real_radii = knn_radii(r, squared_norms(r), k, batch);
  const auto fake_radii = knn_radii(f, squared_norms(f), k, batch);
  result.precision = covered_fraction(f, r, real_radii, batch);
  result.recall = covered_fraction(r, f, fake_radii, batch);
  return result;
}

}  // namespace latentlab::eval
