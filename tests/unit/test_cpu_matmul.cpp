// The two-core matrix products against LibTorch's own, values and gradients.
#include <gtest/gtest.h>

#include "latentlab/nn/cpu_matmul.hpp"

namespace latentlab::nn {
namespace {

torch::Tensor op(const torch::Tensor& x, bool transpose) {
  return transpose ? x.transpose(1, 2) : x;
}

TEST(CpuMatmul, BatchedProductAndGradientsMatchLibTorch) {
  torch::manual_seed(0);
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      for (const std::int64_t N : {1, 3, 300}) {  // 300 matrices: split over the threads
        const std::int64_t m = 5, k = 7, n = 4;
        auto a = (ta ? torch::randn({N, k, m}) : torch::randn({N, m, k})).requires_grad_();
        auto b = (tb ? torch::randn({N, n, k}) : torch::randn({N, k, n})).requires_grad_();
        const auto weight = torch::randn({N, m, n});
        const auto ours = batched_matmul(a, b, ta, tb, 0.5);
        const auto [ga, gb] = [&] {
          (ours * weight).sum().backward();
          return std::make_pair(a.grad().clone(), b.grad().clone());
        }();
        a.grad().zero_();
        b.grad().zero_();
        const auto reference = 0.5 * torch::matmul(op(a, ta), op(b, tb));
        (reference * weight).sum().backward();
        EXPECT_TRUE(torch::allclose(ours, reference, 1e-5, 1e-5)) << ta << tb << N;
        EXPECT_TRUE(torch::allclose(ga, a.grad(), 1e-5, 1e-5)) << ta << tb << N;
        EXPECT_TRUE(torch::allclose(gb, b.grad(), 1e-5, 1e-5)) << ta << tb << N;
      }
    }
  }
}

TEST(CpuMatmul, LinearAndGradientsMatchLibTorch) {
  torch::manual_seed(1);
  for (const bool with_bias : {true, false}) {
    for (const std::int64_t rows : {1, 3, 2000}) {
      auto x = torch::randn({rows, 2, 6}).requires_grad_();
      auto weight = torch::randn({5, 6, 1}).requires_grad_();  // a 1x1 Conv1d weight
      auto bias = with_bias ? torch::randn({5}).requires_grad_() : torch::Tensor();
      const auto target = torch::randn({rows, 2, 5});
      const auto ours = nn::linear(x, weight, bias);
      EXPECT_EQ(ours.sizes(), (std::vector<std::int64_t>{rows, 2, 5}));
      (ours * target).sum().backward();
      const auto gx = x.grad().clone(), gw = weight.grad().clone();
      const auto gb = with_bias ? bias.grad().clone() : torch::Tensor();
      x.grad().zero_();
      weight.grad().zero_();
      if (with_bias) bias.grad().zero_();
      const auto reference = torch::nn::functional::linear(x, weight.flatten(1), bias);
      (reference * target).sum().backward();
      EXPECT_TRUE(torch::allclose(ours, reference, 1e-5, 1e-5));
      EXPECT_TRUE(torch::allclose(gx, x.grad(), 1e-5, 1e-5));
      EXPECT_TRUE(torch::allclose(gw, weight.grad(), 1e-4, 1e-4));
      if (with_bias) {
        EXPECT_TRUE(torch::allclose(gb, bias.grad(), 1e-4, 1e-4));
      }
    }
  }
}

TEST(CpuMatmul, OtherDtypesFallBack) {
  const auto a = torch::randn({2, 3, 4}, torch::kFloat64), b = torch::randn({2, 4, 5}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(batched_matmul(a, b), torch::bmm(a, b)));
  EXPECT_TRUE(torch::allclose(nn::linear(a, torch::ones({2, 4}, torch::kFloat64), torch::Tensor()),
                              a.sum(-1, true).expand({2, 3, 2})));
}

}  // namespace
}  // namespace latentlab::nn
