#include "latentlab/nn/cpu_matmul.hpp"

#include <dlfcn.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "latentlab/precision.hpp"

namespace latentlab::nn {

namespace {

// cblas_sgemm from the process's BLAS (OpenBLAS through libblas.so.3), looked up once.
using SgemmFn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

SgemmFn sgemm() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(::dlsym(RTLD_DEFAULT, "cblas_sgemm"));
  return fn;
}

bool sgemm_applies(const torch::Tensor& a, const torch::Tensor& b) {
  return sgemm() && a.device().is_cpu() && b.device().is_cpu() && a.scalar_type() == torch::kFloat32 &&
         b.scalar_type() == torch::kFloat32;
}

// Under CPU autocast the products go to LibTorch, which casts them to the autocast dtype (bf16). The
// backward passes of the functions below only run where the forward took this path.
bool fast_path(const torch::Tensor& a, const torch::Tensor& b) {
  return sgemm_applies(a, b) && !autocast_enabled(a.device());
}

torch::Tensor op(const torch::Tensor& x, bool transpose) {
  return transpose ? x.transpose(-2, -1) : x;
}

// Work per task: about this many multiply-adds, so small problems stay on one thread.
constexpr std::int64_t kGrainFlops = 1 << 18;

// C = alpha op(A) op(B) for row-major contiguous matrices, the rows of C split over the threads.
// A is [m, k] (or [k, m] when ta), B is [k, n] (or [n, k] when tb).
void gemm_rows(const float* A, const float* B, float* C, std::int64_t m, std::int64_t n, std::int64_t k,
               bool ta, bool tb, float alpha, float beta) {
  const int lda = static_cast<int>(ta ? m : k), ldb = static_cast<int>(tb ? k : n);
  const std::int64_t grain = std::max<std::int64_t>(1, kGrainFlops / std::max<std::int64_t>(1, n * k));
  at::parallel_for(0, m, grain, [&](std::int64_t begin, std::int64_t end) {
    const float* a = ta ? A + begin : A + begin * lda;  // rows of op(A): columns of A when transposed
    sgemm()(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(end - begin),
            static_cast<int>(n), static_cast<int>(k), alpha, a, lda, B, ldb, beta, C + begin * n,
            static_cast<int>(n));
  });
}

// ---- batched products ----

torch::Tensor batched_product(const torch::Tensor& a_in, const torch::Tensor& b_in, bool ta, bool tb,
                              double alpha) {
  if (!sgemm_applies(a_in, b_in)) {
    auto c = torch::matmul(op(a_in, ta), op(b_in, tb));
    return alpha == 1.0 ? c : c * alpha;
  }
  const auto a = a_in.contiguous(), b = b_in.contiguous();
  const auto N = a.size(0);
  const auto m = ta ? a.size(2) : a.size(1), k = ta ? a.size(1) : a.size(2);
  const auto n = tb ? b.size(1) : b.size(2);
  TORCH_CHECK(b.size(0) == N && (tb ? b.size(2) : b.size(1)) == k, "batched_matmul: shapes ", a.sizes(),
              " and ", b.sizes(), " do not multiply");
  auto c = torch::empty({N, m, n}, a.options());
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  const auto a_size = a.size(1) * a.size(2), b_size = b.size(1) * b.size(2), c_size = m * n;
  const auto lda = static_cast<int>(a.size(2)), ldb = static_cast<int>(b.size(2));
  const std::int64_t grain = std::max<std::int64_t>(1, kGrainFlops / std::max<std::int64_t>(1, m * n * k));
  at::parallel_for(0, N, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i)
      sgemm()(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha), pa + i * a_size, lda,
              pb + i * b_size, ldb, 0.0f, pc + i * c_size, static_cast<int>(n));
  });
  return c;
}

// c = alpha op(a) op(b). With A = op(a), B = op(b): dA = alpha g B^T and dB = alpha A^T g, transposed
// back where op transposed.
struct BatchedMatmul : public torch::autograd::Function<BatchedMatmul> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b, bool ta, bool tb, double alpha) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["ta"] = ta;
    ctx->saved_data["tb"] = tb;
    ctx->saved_data["alpha"] = alpha;
    return batched_product(a, b, ta, tb, alpha);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &a = saved[0], &b = saved[1];
    const bool ta = ctx->saved_data["ta"].toBool(), tb = ctx->saved_data["tb"].toBool();
    const double alpha = ctx->saved_data["alpha"].toDouble();
    const auto& g = grads[0];
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0))
      da = ta ? batched_product(b, g, tb, true, alpha) : batched_product(g, b, false, !tb, alpha);
    if (ctx->needs_input_grad(1))
      db = tb ? batched_product(g, a, true, ta, alpha) : batched_product(a, g, !ta, false, alpha);
    return {da, db, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// ---- linear ----

// x2d [M, in] -> [M, out] = x2d W^T + bias
// An empty (0-element) bias means none: autograd functions take no undefined tensors in LibTorch 1.13.
torch::Tensor linear_forward(const torch::Tensor& x2d, const torch::Tensor& weight,
                             const torch::Tensor& bias) {
  const auto M = x2d.size(0), in = x2d.size(1), out = weight.size(0);
  const bool has_bias = bias.defined() && bias.numel() > 0;
  auto y = has_bias ? bias.unsqueeze(0).expand({M, out}).contiguous() : torch::empty({M, out}, x2d.options());
  gemm_rows(x2d.data_ptr<float>(), weight.data_ptr<float>(), y.data_ptr<float>(), M, out, in, false, true,
            1.0f, has_bias ? 1.0f : 0.0f);
  return y;
}

struct Linear : public torch::autograd::Function<Linear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x2d,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    ctx->save_for_backward({x2d, weight});
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    return linear_forward(x2d, weight, bias);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x2d = saved[0], &weight = saved[1];
    const auto g = grads[0].contiguous();  // [M, out]
    const auto M = x2d.size(0), in = x2d.size(1), out = weight.size(0);
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {  // [M, in] = g W
      dx = torch::empty({M, in}, g.options());
      gemm_rows(g.data_ptr<float>(), weight.data_ptr<float>(), dx.data_ptr<float>(), M, in, out, false, false,
                1.0f, 0.0f);
    }
    if (ctx->needs_input_grad(1)) {  // [out, in] = g^T x, rows split over `out`
      dw = torch::empty({out, in}, g.options());
      gemm_rows(g.data_ptr<float>(), x2d.data_ptr<float>(), dw.data_ptr<float>(), out, in, M, true, false,
                1.0f, 0.0f);
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, bool transpose_a,
                             bool transpose_b, double alpha) {
  if (!fast_path(a, b)) {
    auto c = torch::matmul(op(a, transpose_a), op(b, transpose_b));
    return alpha == 1.0 ? c : c * alpha;
  }
  RECORD_FUNCTION("latentlab::bmm", c10::ArrayRef<const c10::IValue>{});  // for profiles (bench --profile)
  if (!torch::GradMode::is_enabled() || !(a.requires_grad() || b.requires_grad()))
    return batched_product(a, b, transpose_a, transpose_b, alpha);
  return BatchedMatmul::apply(a, b, transpose_a, transpose_b, alpha);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight_in, const torch::Tensor& bias) {
  const auto weight = weight_in.flatten(1);  // [out, in] (Conv1d/Conv2d 1x1 weights have trailing 1s)
  if (!fast_path(x, weight) || (bias.defined() && bias.scalar_type() != torch::kFloat32))
    return torch::nn::functional::linear(x, weight, bias);
  RECORD_FUNCTION("latentlab::linear", c10::ArrayRef<const c10::IValue>{});  // for profiles (bench --profile)
  auto shape = x.sizes().vec();
  shape.back() = weight.size(0);
  const auto x2d = x.reshape({-1, x.size(-1)}).contiguous();  // [M, in]
  const auto w = weight.contiguous();
  const bool grad = torch::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  const auto y = grad ? Linear::apply(x2d, w, bias.defined() ? bias : torch::empty({0}, x2d.options()))
                      : linear_forward(x2d, w, bias);
  return y.view(shape);  // [..., out]
}

}  // namespace latentlab::nn
