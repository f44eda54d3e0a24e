// Sample-quality metrics (FID, KID, IS, precision/recall), their streaming statistics, and the pieces
// that make them agree with torch-fidelity: NumPy's RandomState draws and the TF1 resize.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "latentlab/error.hpp"
#include "latentlab/eval/feature_stats.hpp"
#include "latentlab/eval/generative_metrics.hpp"
#include "latentlab/eval/numpy_random.hpp"
#include "latentlab/io/sha256.hpp"
#include "latentlab/nn/inception_v3.hpp"

namespace latentlab::eval {
namespace {

torch::Tensor gaussian(std::int64_t n, std::int64_t d, std::uint64_t seed, double shift = 0.0,
                       double scale = 1.0) {
  auto generator = at::detail::createCPUGenerator(seed);
  return torch::randn({n, d}, generator, torch::TensorOptions().dtype(torch::kFloat64)) * scale + shift;
}

// A random SPD matrix of rank `rank` (rank < d: singular).
torch::Tensor random_psd(std::int64_t d, std::int64_t rank, std::uint64_t seed) {
  const auto factor = gaussian(d, rank, seed);
  return factor.mm(factor.t()) / static_cast<double>(rank);
}

TEST(FeatureStatistics, StreamingEqualsTheWholeBatchInFloat64) {
  const auto x = gaussian(1000, 16, 1, 1e4, 3.0);  // a large offset: the uncentred sums would lose digits
  FeatureStatistics stats;
  for (std::int64_t start = 0, size = 1; start < 1000; start += size, size = size * 2 + 1)
    stats.add(x.narrow(0, start, std::min<std::int64_t>(size, 1000 - start)));
  const auto centred = x - x.mean(0);
  const auto covariance = centred.t().mm(centred) / 999.0;
  EXPECT_EQ(stats.count(), 1000);
  EXPECT_LT((stats.mean() - x.mean(0)).abs().max().item<double>(), 1e-9);
  EXPECT_LT((stats.covariance() - covariance).abs().max().item<double>(), 1e-9);
}

TEST(FeatureStatistics, RejectsWidthChangesAndTooFewSamples) {
  FeatureStatistics stats;
  stats.add(torch::zeros({1, 4}));
  EXPECT_THROW(stats.covariance(), Error);  // one sample has no covariance
  EXPECT_THROW(stats.add(torch::zeros({2, 5})), Error);
}

TEST(Fid, OfASetWithItselfIsZero) {
  FeatureStatistics stats;
  stats.add(gaussian(500, 64, 2, 0.5, 2.0));
  const auto result = fid(stats, stats);
  const double trace = stats.covariance().trace().item<double>();
  EXPECT_LT(std::abs(result.fid), 1e-6 * trace);
  EXPECT_EQ(result.n_a, 500);
  EXPECT_TRUE(result.warnings.empty());
}

TEST(Fid, OfTwoDiagonalGaussiansEqualsTheClosedForm) {
  // FID = |mu_1 - mu_2|^2 + sum_i (s1_i + s2_i - 2 sqrt(s1_i s2_i)) for diagonal covariances.
  const auto s1 = torch::linspace(0.5, 3.0, 32, torch::kFloat64),
             s2 = torch::linspace(2.0, 0.1, 32, torch::kFloat64);
  const auto mu1 = torch::linspace(-1, 1, 32, torch::kFloat64), mu2 = torch::zeros({32}, torch::kFloat64);
  const double expected =
      (mu1 - mu2).pow(2).sum().item<double>() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum().item<double>();
  for (auto method : {TraceSqrtMethod::kSymmetric, TraceSqrtMethod::kEigenvalues}) {
    const auto a = FeatureStatistics::from_moments(mu1, torch::diag(s1), 100);
    const auto b = FeatureStatistics::from_moments(mu2, torch::diag(s2), 100);
    EXPECT_NEAR(fid(a, b, method).fid, expected, 1e-10 * expected);
  }
}

TEST(Fid, TraceSqrtMethodsAgreeOnRandomPairsIncludingRankDeficientOnes) {
  const std::int64_t d = 48;
  for (const auto& [rank_1, rank_2] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{200, 200}, {20, 200}, {200, 10}, {30, 25}}) {
    const auto s1 = random_psd(d, rank_1, 10 + rank_1), s2 = random_psd(d, rank_2, 20 + rank_2);
    const double symmetric = trace_sqrt_product(s1, s2, TraceSqrtMethod::kSymmetric);
    const double general = trace_sqrt_product(s1, s2, TraceSqrtMethod::kEigenvalues);
    EXPECT_NEAR(symmetric, general, 1e-6 * std::abs(general)) << "ranks " << rank_1 << ", " << rank_2;
  }
  // A commuting pair has a known answer: tr sqrt(S1 S2) = sum sqrt(eigenvalue products).
  const auto q = std::get<0>(torch::linalg_qr(gaussian(d, d, 3)));
  const auto e1 = torch::linspace(0.1, 4.0, d, torch::kFloat64),
             e2 = torch::linspace(3.0, 0.0, d, torch::kFloat64);
  const auto s1 = q.mm(torch::diag(e1)).mm(q.t()), s2 = q.mm(torch::diag(e2)).mm(q.t());
  // (e2 ends at 0: the square root turns rounding of that eigenvalue into ~sqrt(eps) absolute error.)
  const double exact = (e1 * e2).sqrt().sum().item<double>();
  EXPECT_NEAR(trace_sqrt_product(s1, s2), exact, 1e-8 * exact);
}

TEST(Fid, WarnsWhenACovarianceHasFewerSamplesThanDimensions) {
  FeatureStatistics small, large;
  small.add(gaussian(20, 32, 4));
  large.add(gaussian(200, 32, 5));
  const auto result = fid(small, large);
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_NE(result.warnings[0].find("biased"), std::string::npos);
  EXPECT_NE(result.warnings[0].find("20 samples for 32"), std::string::npos);
  EXPECT_TRUE(std::isfinite(result.fid));
}

TEST(NumpyRandomState, DrawsWhatNumpyDraws) {
  // Values printed by numpy 1.24: RandomState(2020).permutation(1000)[:8], RandomState(7).permutation(12),
  // and torch-fidelity's KID draws rs = RandomState(2020); rs.choice(50, 10, False); rs.choice(30, 10,
  // False).
  NumpyRandomState a(2020);
  const auto p = a.permutation(1000);
  EXPECT_EQ(std::vector<std::int64_t>(p.begin(), p.begin() + 8),
            (std::vector<std::int64_t>{725, 986, 815, 656, 469, 76, 668, 286}));
  EXPECT_EQ(NumpyRandomState(7).permutation(12),
            (std::vector<std::int64_t>{7, 10, 2, 5, 0, 1, 11, 8, 3, 6, 9, 4}));
  NumpyRandomState b(2020);
  auto first = b.permutation(50), second = b.permutation(30);
  first.resize(10);
  second.resize(10);
  EXPECT_EQ(first, (std::vector<std::int64_t>{25, 13, 26, 37, 41, 19, 12, 0, 16, 45}));
  EXPECT_EQ(second, (std::vector<std::int64_t>{9, 13, 2, 20, 23, 17, 7, 1, 22, 25}));
}

TEST(Kid, IsTheUnbiasedMmdWithThePolynomialKernel) {
  // One subset of all samples: the estimator written out term by term.
  const auto x = gaussian(7, 5, 6), y = gaussian(7, 5, 7, 0.3);
  KidOptions options;
  options.subsets = 1;
  options.subset_size = 7;
  const auto k = [](const torch::Tensor& a, const torch::Tensor& b) {
    return std::pow(a.dot(b).item<double>() / 5.0 + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j) {
      if (i != j) xx += k(x[i], x[j]), yy += k(y[i], y[j]);
      xy += k(x[i], y[j]);
    }
  const double expected = (xx + yy) / 42.0 - 2.0 * xy / 49.0;
  const auto result = kid(x, y, options);
  EXPECT_NEAR(result.mean, expected, 1e-12 * std::abs(expected));
  EXPECT_EQ(result.std, 0.0);
  EXPECT_EQ(result.subset_size, 7);
}

TEST(Kid, IsNearZeroForOneDistributionAndPositiveForTwo) {
  const auto a = gaussian(1500, 16, 8), b = gaussian(1500, 16, 9), shifted = gaussian(1500, 16, 10, 0.5);
  const auto same = kid(a, b);
  EXPECT_EQ(same.subsets, 100);
  EXPECT_EQ(same.subset_size, 1000);
  EXPECT_LT(std::abs(same.mean), same.std);  // unbiased: zero within its spread
  const auto different = kid(a, shifted);
  EXPECT_GT(different.mean, 10 * different.std);
  const auto small = kid(a.narrow(0, 0, 300), b);
  EXPECT_EQ(small.subset_size, 300);  // capped at the smaller set
}

TEST(InceptionScore, IsOneForUniformAndTheClassCountForDistinctOneHots) {
  const auto uniform = torch::zeros({100, 10});
  const auto flat = inception_score(uniform);
  EXPECT_NEAR(flat.mean, 1.0, 1e-12);
  EXPECT_NEAR(flat.std, 0.0, 1e-12);
  // Sample i is certainly class i % 10: each split of 10 samples (unshuffled) holds every class once.
  auto one_hot = torch::full({100, 10}, -1e4);
  for (int i = 0; i < 100; ++i) one_hot[i][i % 10] = 0.0;
  InceptionScoreOptions in_order;
  in_order.shuffle = false;
  const auto sharp = inception_score(one_hot, in_order);
  EXPECT_NEAR(sharp.mean, 10.0, 1e-9);
  EXPECT_EQ(sharp.n, 100);
  EXPECT_EQ(sharp.splits, 10);
  // Shuffled (torch-fidelity's default) splits are the rows of RandomState(2020).permutation(100).
  const auto shuffled = inception_score(one_hot);
  const auto order = NumpyRandomState(2020).permutation(100);
  const auto permuted = one_hot.index_select(0, torch::tensor(order, torch::kInt64));
  EXPECT_NEAR(shuffled.mean, inception_score(permuted, in_order).mean, 1e-12);
  EXPECT_LT(shuffled.mean, 10.0);
  EXPECT_THROW(inception_score(torch::zeros({5, 10})), Error);  // fewer samples than splits
}

TEST(PrecisionRecall, CountsSamplesInsideTheOtherSetsKnnBalls) {
  // Real points 0..9 on a line (k = 1: every radius is 1). Fakes: five near the first reals, five far.
  auto real = torch::zeros({10, 2}, torch::kFloat64), fake = torch::zeros({10, 2}, torch::kFloat64);
  for (int i = 0; i < 10; ++i) real[i][0] = i;
  for (int i = 0; i < 5; ++i) fake[i][0] = 0.2 + i, fake[5 + i][0] = 100.0 + i;
  const auto result = precision_recall(real, fake, 1);
  EXPECT_DOUBLE_EQ(result.precision, 0.5);  // the five near fakes
  EXPECT_DOUBLE_EQ(result.recall, 0.6);     // reals 0..5 lie within 1 of a near fake
  EXPECT_EQ(result.n_real, 10);
  // Identical sets cover each other, whatever the block size.
  const auto x = gaussian(300, 8, 11);
  const auto same = precision_recall(x, x, 3, 7);
  EXPECT_DOUBLE_EQ(same.precision, 1.0);
  EXPECT_DOUBLE_EQ(same.recall, 1.0);
  const auto far = precision_recall(x, gaussian(300, 8, 12, 50.0), 3);
  EXPECT_DOUBLE_EQ(far.precision, 0.0);
  EXPECT_DOUBLE_EQ(far.recall, 0.0);
}

TEST(Sha256, MatchesTheStandardTestVectors) {
  const auto digest = [](const std::string& text) {
    io::Sha256 hasher;
    hasher.update(text);
    return hasher.hex_digest();
  };
  EXPECT_EQ(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  io::Sha256 pieces;  // a million 'a's, fed in uneven pieces
  const std::string block(997, 'a');
  std::size_t fed = 0;
  while (fed + block.size() <= 1000000) pieces.update(block), fed += block.size();
  pieces.update(std::string(1000000 - fed, 'a'));
  EXPECT_EQ(pieces.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(InceptionPreprocess, Tf1ResizeMatchesHandComputedValues) {
  // [[0, 1, 2], [3, 4, 5]] to 3 x 4: source rows 0, 2/3, 4/3 (clamped to row 1), columns 0, 3/4, 3/2, 9/4.
  const auto image = torch::arange(6, torch::kFloat32).view({1, 1, 2, 3});
  const auto expected =
      torch::tensor({0.0, 0.75, 1.5, 2.0, 2.0, 2.75, 3.5, 4.0, 3.0, 3.75, 4.5, 5.0}).view({1, 1, 3, 4});
  EXPECT_LT((nn::resize_bilinear_tf1(image, 3, 4) - expected).abs().max().item<double>(), 1e-6);
  // Same size: the identity. torch-fidelity input: (x - 128) / 128 of the resized pixels.
  const auto pixels = torch::randint(0, 256, {1, 3, 299, 299}).to(torch::kUInt8);
  EXPECT_TRUE(torch::allclose(nn::resize_bilinear_tf1(pixels.to(torch::kFloat32), 299, 299),
                              pixels.to(torch::kFloat32)));
  const auto input = nn::inception_input(pixels, nn::InceptionPreprocess::kTorchFidelity);
  EXPECT_TRUE(torch::allclose(input, (pixels.to(torch::kFloat32) - 128) / 128));
  const auto fid_input = nn::inception_input(pixels, nn::InceptionPreprocess::kPytorchFid);
  EXPECT_TRUE(torch::allclose(fid_input, pixels.to(torch::kFloat32) / 255 * 2 - 1, 1e-6, 1e-6));
  EXPECT_THROW(nn::parse_inception_preprocess("tf2"), ConfigError);
}

}  // namespace
}  // namespace latentlab::eval
