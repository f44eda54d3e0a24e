// Precision (docs/precision.md): the setting, autocast's guard, the UNet in bf16 and channels-last
// against float32, and the UNet's FLOP count (docs/benchmarks.md) against the products LibTorch runs.
#include <gtest/gtest.h>

#include <ATen/record_function.h>

#include <cstring>
#include <iostream>
#include <mutex>

#include "latentlab/error.hpp"
#include "latentlab/nn/attention.hpp"
#include "latentlab/nn/cpu_matmul.hpp"
#include "latentlab/nn/float32_norm.hpp"
#include "latentlab/nn/unet.hpp"
#include "latentlab/precision.hpp"
#include "latentlab/train/loss_scaler.hpp"

namespace latentlab {
namespace {

using nn::UNet;
using nn::UNetConfig;

UNetConfig cross_attention_unet() {
  return UNetConfig::from_json({{"in_channels", 4},
                                {"out_channels", 4},
                                {"model_channels", 32},
                                {"channel_mult", {1, 2}},
                                {"num_res_blocks", 1},
                                {"attention_resolutions", {1, 2}},
                                {"num_head_channels", 16},
                                {"context_dim", 24}},
                               "unet");
}

UNetConfig self_attention_unet() {
  return UNetConfig::from_json({{"in_channels", 3},
                                {"out_channels", 6},
                                {"model_channels", 32},
                                {"channel_mult", {1, 2, 2}},
                                {"num_res_blocks", 2},
                                {"attention_resolutions", {2, 4}},
                                {"num_heads", 2},
                                {"num_head_channels", -1},
                                {"use_scale_shift_norm", true},
                                {"resblock_updown", true}},
                               "unet");
}

// Zero-initialised output layers leave branches inert; random weights wake every one of them.
void perturb(UNet& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  for (auto& p : model->parameters()) p.add_(0.05 * torch::randn_like(p));
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm())
      .item<double>();
}

TEST(Precision, ParsesTheSettingAndNamesTheValidValues) {
  EXPECT_EQ(parse_precision("fp32"), Precision::fp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(parse_precision("fp16"), Precision::fp16);
  EXPECT_EQ(to_string(Precision::bf16), "bf16");
  EXPECT_EQ(compute_dtype(Precision::bf16), torch::kBFloat16);
  EXPECT_EQ(parse_precision_list("fp32,bf16"), (std::vector<Precision>{Precision::fp32, Precision::bf16}));
  try {
    parse_precision("bf61", "train.precision");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("train.precision"), std::string::npos) << what;
    EXPECT_NE(what.find("\"bf16\""), std::string::npos) << what;
  }
  EXPECT_THROW(parse_precision_list(","), ConfigError);
  EXPECT_THROW(check_precision(Precision::fp16, torch::Device(torch::kCPU)), ConfigError);
  EXPECT_NO_THROW(check_precision(Precision::bf16, torch::Device(torch::kCPU)));
}

// "auto" is bf16 exactly where the CPU multiplies bf16 natively (the flags /proc/cpuinfo lists), and
// says why; an unknown value names "auto" among the valid ones.
TEST(Precision, AutoIsBf16WhereTheCpuHasNativeBf16) {
  const torch::Device cpu(torch::kCPU);
  const auto expected = cpu_has_native_bf16() ? Precision::bf16 : Precision::fp32;
  EXPECT_EQ(auto_precision(cpu), expected);
  EXPECT_EQ(parse_precision_setting("auto", cpu), expected);
  EXPECT_EQ(parse_precision_setting("fp32", cpu), Precision::fp32);
  EXPECT_EQ(parse_precision_setting("bf16", cpu), Precision::bf16);
  const auto reason = auto_precision_reason(cpu);
  EXPECT_EQ(reason.rfind(to_string(expected) + " (", 0), 0u) << reason;
  if (cpu_has_native_bf16()) EXPECT_NE(reason.find(cpu_bf16_instructions()), std::string::npos) << reason;
  try {
    parse_precision_setting("autp", cpu, "--precision");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--precision: expected \"auto\", \"fp32\""), std::string::npos) << what;
    EXPECT_NE(what.find("did you mean \"auto\""), std::string::npos) << what;
  }
  // The plain parser, for settings that are already resolved, does not take "auto".
  EXPECT_THROW(parse_precision("auto"), ConfigError);
}

TEST(LossScaler, ScalesUnscalesBacksOffAndGrows) {
  LossScaler off;
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.scale(), 1.0);
  const auto loss = torch::tensor(0.75);
  EXPECT_TRUE(torch::equal(off.scaled(loss), loss));

  LossScalerOptions options;
  options.init_scale = 8;
  options.growth_interval = 3;
  LossScaler scaler(options);
  EXPECT_EQ(scaler.scaled(loss).item<double>(), 6.0);
  auto w = torch::ones({4}, torch::requires_grad());
  auto v = torch::ones({2, 2}, torch::requires_grad());
  (scaler.scaled((w * 3).sum() + (v * 2).sum())).backward();
  EXPECT_TRUE(scaler.unscale({w, v, torch::zeros({3})}));  // a parameter without a gradient is passed over
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({4}, 3.0)));
  EXPECT_TRUE(torch::equal(v.grad(), torch::full({2, 2}, 2.0)));
  // Two finite steps, then the third grows the scale; an overflow halves it and restarts the count.
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 16.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  scaler.update(true);
  auto w_grad = w.grad(), v_grad = v.grad();
  v_grad.index_put_({0, 1}, std::numeric_limits<float>::infinity());
  EXPECT_FALSE(scaler.unscale({w, v}));
  w_grad.zero_();
  v_grad.zero_().index_put_({1, 0}, std::nan(""));
  EXPECT_FALSE(scaler.unscale({w, v}));
  scaler.update(false);
  EXPECT_EQ(scaler.scale(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // The state goes through a checkpoint.
  scaler.update(true);
  LossScaler restored(LossScalerOptions{});
  restored.load_state(scaler.state());
  EXPECT_EQ(restored.scale(), 8.0);
  EXPECT_EQ(restored.growth_tracker(), 1);
  EXPECT_THROW(restored.load_state(torch::zeros({3}, torch::kFloat64)), Error);
  options.backoff_factor = 1.5;
  EXPECT_THROW(LossScaler{options}, ConfigError);
}

TEST(Precision, AutocastGuardTurnsAutocastOnAndRestoresIt) {
  const torch::Device cpu(torch::kCPU);
  ASSERT_FALSE(autocast_enabled(cpu));
  const auto a = torch::randn({8, 8}), b = torch::randn({8, 8});
  {
    AutocastGuard fp32(cpu, Precision::fp32);
    EXPECT_FALSE(autocast_enabled(cpu));
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
  }
  {
    AutocastGuard outer(cpu, Precision::bf16);
    EXPECT_TRUE(autocast_enabled(cpu));
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastGuard inner(cpu, Precision::bf16);
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_TRUE(autocast_enabled(cpu));  // the inner guard restored the outer state
  }
  EXPECT_FALSE(autocast_enabled(cpu));
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
  // fp32 inside bf16 turns autocast off (what must stay float32 stays so), and bf16 comes back after.
  {
    AutocastGuard outer(cpu, Precision::bf16);
    {
      AutocastGuard inner(cpu, Precision::fp32);
      EXPECT_FALSE(autocast_enabled(cpu));
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
    }
    EXPECT_TRUE(autocast_enabled(cpu));
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(autocast_enabled(cpu));
}

// Autocast caches the bf16 copy of a weight; the outermost guard's end must drop it, or the next
// forward would read the weight as it was before the optimizer step.
TEST(Precision, AWeightUpdatedBetweenGuardsIsReadAfresh) {
  const torch::Device cpu(torch::kCPU);
  torch::manual_seed(0);
  const auto x = torch::randn({16, 32});
  auto weight = torch::randn({32, 32}).requires_grad_(true);
  {
    AutocastGuard autocast(cpu, Precision::bf16);
    torch::mm(x, weight);
  }
  {
    torch::NoGradGuard no_grad;
    weight.add_(1.0);
  }
  torch::Tensor y;
  {
    AutocastGuard autocast(cpu, Precision::bf16);
    y = torch::mm(x, weight);
  }
  const auto expected = torch::mm(x, weight.detach());
  EXPECT_LT(relative_error(y, expected), 1e-2);
}

// Under autocast the two-core float32 products (nn/cpu_matmul.hpp) step aside for LibTorch's bf16
// ones; gradients still reach float32 leaves as float32.
TEST(Precision, TwoCoreProductsStepAsideUnderAutocast) {
  const torch::Device cpu(torch::kCPU);
  torch::manual_seed(0);
  const auto x = torch::randn({2, 16, 32}).requires_grad_(true);
  const auto weight = torch::randn({24, 32}).requires_grad_(true);
  const auto bias = torch::randn({24}).requires_grad_(true);
  const auto k = torch::randn({2, 16, 32}).requires_grad_(true);
  torch::Tensor y, s;
  {
    AutocastGuard autocast(cpu, Precision::bf16);
    y = nn::linear(x, weight, bias);
    s = nn::batched_matmul(x, k, false, true, 0.5);
  }
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(s.scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative_error(y, torch::nn::functional::linear(x, weight, bias)), 1e-2);
  EXPECT_LT(relative_error(s, 0.5 * torch::matmul(x, k.transpose(1, 2))), 1e-2);
  (y.to(torch::kFloat32).sum() + s.to(torch::kFloat32).sum()).backward();
  for (const auto& leaf : {x, weight, bias, k}) {
    ASSERT_TRUE(leaf.grad().defined());
    EXPECT_EQ(leaf.grad().scalar_type(), torch::kFloat32);
  }
  {  // and outside autocast they are float32 again
    torch::NoGradGuard no_grad;
    EXPECT_EQ(nn::linear(x, weight, bias).scalar_type(), torch::kFloat32);
  }
}

// bf16 keeps 8 significant bits: each product's inputs are rounded to a relative 2^-9 = 0.2%, and the
// UNet's ~30 layers add such errors in quadrature (the residual paths and GroupNorms keep them from
// compounding). So the output's relative error should be near 1% and far below 5%, and, as proof that
// bf16 ran at all, above the 1e-4 that float32 reordering alone could give.
TEST(Precision, Bf16UNetMatchesFloat32WithinBf16Rounding) {
  for (const auto& config : {cross_attention_unet(), self_attention_unet()}) {
    torch::manual_seed(0);
    UNet model(config);
    perturb(model);
    model->eval();
    const auto x = torch::randn({4, config.in_channels, 8, 8});
    const auto t = torch::tensor({1, 250, 500, 1000});
    const auto context = config.context_dim ? torch::randn({4, 3, config.context_dim}) : torch::Tensor();
    torch::NoGradGuard no_grad;
    const auto reference = model->forward(x, t, context);
    torch::Tensor low;
    {
      AutocastGuard autocast(torch::Device(torch::kCPU), Precision::bf16);
      low = model->forward(x, t, context);
    }
    EXPECT_EQ(low.scalar_type(), torch::kBFloat16);
    const double error = relative_error(low, reference);
    std::cout << "bf16 UNet output, relative L2 error against float32: " << error << "\n";
    EXPECT_LT(error, 0.05) << config.to_json();
    EXPECT_GT(error, 1e-4) << "bf16 did not run: " << config.to_json();
  }
}

TEST(Precision, Bf16TrainingStepGivesFloat32GradientsToFloat32Weights) {
  torch::manual_seed(0);
  const auto config = cross_attention_unet();
  UNet model(config);
  perturb(model);
  const auto x = torch::randn({4, 4, 8, 8});
  const auto t = torch::tensor({1, 250, 500, 1000});
  const auto context = torch::randn({4, 3, 24});
  auto gradients = [&](Precision precision) {
    model->zero_grad();
    torch::Tensor out;
    {
      AutocastGuard autocast(torch::Device(torch::kCPU), precision);
      out = model->forward(x, t, context);
    }
    out.to(torch::kFloat32).pow(2).mean().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return grads;
  };
  const auto reference = gradients(Precision::fp32), low = gradients(Precision::bf16);
  ASSERT_EQ(reference.size(), low.size());
  torch::Tensor all_reference = torch::cat([&] {
    std::vector<torch::Tensor> flat;
    for (const auto& g : reference) flat.push_back(g.flatten());
    return flat;
  }());
  std::vector<torch::Tensor> flat_low;
  for (const auto& g : low) {
    EXPECT_EQ(g.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
    flat_low.push_back(g.flatten());
  }
  // The gradient as a whole agrees to bf16 rounding (backward doubles the products of forward).
  const double error = relative_error(torch::cat(flat_low), all_reference);
  std::cout << "bf16 UNet gradient, relative L2 error against float32: " << error << "\n";
  EXPECT_LT(error, 0.05);
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
}

TEST(Precision, ChannelsLastUNetMatchesContiguousInFloat32AndBf16) {
  for (const auto& config : {cross_attention_unet(), self_attention_unet()}) {
    torch::manual_seed(0);
    UNet model(config);
    perturb(model);
    const auto x = torch::randn({2, config.in_channels, 8, 8});
    const auto t = torch::tensor({3, 700});
    const auto context = config.context_dim ? torch::randn({2, 3, config.context_dim}) : torch::Tensor();
    torch::NoGradGuard no_grad;
    const auto reference = model->forward(x, t, context);
    for (auto& p : model->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    const auto out = model->forward(x.contiguous(torch::MemoryFormat::ChannelsLast), t, context);
    EXPECT_LT(relative_error(out, reference), 1e-5) << config.to_json();
    EXPECT_TRUE(out.is_contiguous(torch::MemoryFormat::ChannelsLast));  // the layout went all the way through
    // And in bf16, as `bench denoiser --precision bf16 --channels-last` runs it.
    torch::Tensor low;
    {
      AutocastGuard autocast(torch::Device(torch::kCPU), Precision::bf16);
      low = model->forward(x.contiguous(torch::MemoryFormat::ChannelsLast), t, context);
    }
    EXPECT_EQ(low.scalar_type(), torch::kBFloat16);
    EXPECT_LT(relative_error(low, reference), 0.05) << config.to_json();

    // The same through the UNet's own setting ("channels_last": true, docs/unet.md#memory-format): its
    // convolution weights are channels-last from construction (and stay so through .to and copied
    // weights), a contiguous input is converted, and the config round-trips.
    auto cl_config = config;
    cl_config.channels_last = true;
    EXPECT_EQ(UNetConfig::from_json(cl_config.to_json(), "unet").channels_last, true);
    EXPECT_FALSE(config.to_json().contains("channels_last"));  // contiguous UNets keep their old keys
    UNet cl(cl_config);
    cl->to(torch::kCPU);
    auto from = model->parameters();
    auto to = cl->parameters();
    ASSERT_EQ(from.size(), to.size());
    for (std::size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
    for (const auto& p : cl->parameters())
      if (p.dim() == 4) EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    const auto own = cl->forward(x, t, context);
    EXPECT_LT(relative_error(own, reference), 1e-5) << cl_config.to_json();
    EXPECT_TRUE(own.is_contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

// ---- FLOPs: the analytic count against every product LibTorch dispatches ----

std::mutex flop_mutex;
double counted_flops = 0;

double product(c10::IntArrayRef sizes) {
  double p = 1;
  for (const auto s : sizes) p *= static_cast<double>(s);
  return p;
}

// 2 per multiply-add of aten::convolution (input, weight, bias, stride, padding, ...), mm, addmm
// (bias, a, b), bmm and baddbmm; other ops count nothing.
std::unique_ptr<at::ObserverContext> count_flops(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  const auto inputs = fn.inputs();
  double flops = 0;
  if (name == "aten::convolution") {
    const auto in = inputs[0].toTensor().sizes(), weight = inputs[1].toTensor().sizes();
    const auto stride = inputs[3].toIntVector(), padding = inputs[4].toIntVector();
    double out_positions = 1;
    for (std::size_t d = 0; d < 2; ++d)
      out_positions *= static_cast<double>((in[d + 2] + 2 * padding[d] - weight[d + 2]) / stride[d] + 1);
    flops = 2 * static_cast<double>(in[0]) * out_positions * product(weight);
  } else if (name == "aten::mm" || name == "aten::bmm") {
    const auto a = inputs[0].toTensor().sizes(), b = inputs[1].toTensor().sizes();
    flops = 2 * product(a) * static_cast<double>(b.back());
  } else if (name == "aten::addmm" || name == "aten::baddbmm") {
    const auto a = inputs[1].toTensor().sizes(), b = inputs[2].toTensor().sizes();
    flops = 2 * product(a) * static_cast<double>(b.back());
  }
  if (flops > 0) {
    std::lock_guard<std::mutex> lock(flop_mutex);
    counted_flops += flops;
  }
  return nullptr;
}

TEST(Precision, UNetFlopCountEqualsTheProductsLibTorchRuns) {
  for (const auto& config : {cross_attention_unet(), self_attention_unet()}) {
    torch::manual_seed(0);
    UNet model(config);
    // float64: no two-core float32 path (nn/cpu_matmul.hpp), so every product goes through LibTorch.
    model->to(torch::kFloat64);
    const std::int64_t B = 3, H = 8, W = 16, M = 5;
    const auto x = torch::randn({B, config.in_channels, H, W}, torch::kFloat64);
    const auto t = torch::tensor({1, 2, 3});
    const auto context =
        config.context_dim ? torch::randn({B, M, config.context_dim}, torch::kFloat64) : torch::Tensor();
    counted_flops = 0;
    torch::NoGradGuard no_grad;
    const auto handle = at::addGlobalCallback(at::RecordFunctionCallback(count_flops).needsInputs(true));
    model->forward(x, t, context);
    at::removeCallback(handle);
    const double expected = static_cast<double>(B) * config.forward_flops(H, W, M);
    EXPECT_GT(counted_flops, 0);
    EXPECT_NEAR(counted_flops / expected, 1.0, 1e-9) << config.to_json();
  }
}

// Attention a block of queries at a time (the memory-bounded path, docs/unet.md#attention) computes
// softmax(q k^T s) v: in float64 (always blocked) to 1e-12 of the formula, in float32 to 1e-5, and under
// bf16 autocast within bf16's rounding.
TEST(Attention, BlocksOfQueriesGiveTheWholeProduct) {
  torch::manual_seed(4);
  const auto q = torch::randn({3, 50, 8}, torch::kFloat64), k = torch::randn({3, 40, 8}, torch::kFloat64),
             v = torch::randn({3, 40, 8}, torch::kFloat64);
  const double scale = 0.3;
  const auto formula = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(1, 2)) * scale, -1), v);
  // 7 query rows per block (3 x 40 float64 scores each): 8 blocks, the last of 1 row.
  const auto blocked = nn::scaled_dot_product_attention(q, k, v, scale, 3 * 40 * 8 * 7);
  EXPECT_LT((blocked - formula).abs().max().item<double>(), 1e-12);
  const auto whole = nn::scaled_dot_product_attention(q, k, v, scale);  // fits the default budget
  EXPECT_LT((whole - formula).abs().max().item<double>(), 1e-12);
  const auto qf = q.to(torch::kFloat32), kf = k.to(torch::kFloat32), vf = v.to(torch::kFloat32);
  const auto f32 = nn::scaled_dot_product_attention(qf, kf, vf, scale, 3 * 40 * 4 * 7);
  EXPECT_LT((f32.to(torch::kFloat64) - formula).abs().max().item<double>(), 1e-5);
  const AutocastGuard autocast(torch::kCPU, Precision::bf16);
  const auto reduced = nn::scaled_dot_product_attention(qf, kf, vf, scale, 3 * 40 * 4 * 7);
  const auto error = ((reduced.to(torch::kFloat64) - formula).norm() / formula.norm()).item<double>();
  EXPECT_LT(error, 0.02);  // inputs and products rounded to 8 bits
  EXPECT_GT(error, 1e-5);
}

// GroupNorm + SiLU (nn::group_norm_silu): float32 through LibTorch's GroupNorm; bf16 with float32
// statistics and one pass in bf16, in either memory format, within bf16's rounding of the float64
// formula, its gradients too.
TEST(GroupNormSilu, MatchesTheFormulaInEveryDtypeAndLayout) {
  torch::manual_seed(6);
  const std::int64_t N = 2, C = 64, G = 32;
  // An offset mean (3) against unit spread: the case where statistics in bf16 would lose the signal.
  const auto x64 = torch::randn({N, C, 6, 5}, torch::kFloat64) + 3.0;
  const auto weight = torch::rand({C}, torch::kFloat32) + 0.5, bias = torch::randn({C}, torch::kFloat32);
  const auto grouped = x64.view({N, G, -1});
  const auto normalized =
      ((grouped - grouped.mean(2, true)) / (grouped.var(2, false, true) + 1e-5).sqrt()).view_as(x64);
  const auto formula = torch::silu(normalized * weight.to(torch::kFloat64).view({1, C, 1, 1}) +
                                   bias.to(torch::kFloat64).view({1, C, 1, 1}));
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16})
    for (const bool channels_last : {false, true}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + (channels_last ? " channels-last" : " contiguous"));
      auto x = x64.to(dtype);
      if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      x.requires_grad_(true);
      const auto y = nn::group_norm_silu(x, G, weight, bias, 1e-5);
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous(), channels_last);
      const double error = ((y.to(torch::kFloat64) - formula).norm() / formula.norm()).item<double>();
      // float32: rounding of 24 bits; bf16: the input's own rounding (2^-9 of 3, i.e. 0.6% of the spread)
      // and the output's.
      EXPECT_LT(error, dtype == torch::kFloat32 ? 1e-5 : 0.02);
      // Gradients against float64 autograd of the same formula on the (rounded) input.
      y.to(torch::kFloat64).pow(2).sum().backward();
      auto x_ref = x.detach().to(torch::kFloat64).contiguous().requires_grad_(true);
      const auto reference =
          nn::group_norm_silu(x_ref, G, weight.to(torch::kFloat64), bias.to(torch::kFloat64), 1e-5);
      reference.pow(2).sum().backward();
      const double grad_error =
          ((x.grad().to(torch::kFloat64) - x_ref.grad()).norm() / x_ref.grad().norm()).item<double>();
      EXPECT_LT(grad_error, dtype == torch::kFloat32 ? 1e-4 : 0.05);
    }
  // Without silu it is GroupNorm alone.
  const auto plain =
      nn::group_norm_silu(x64, G, weight.to(torch::kFloat64), bias.to(torch::kFloat64), 1e-5, false);
  EXPECT_LT((torch::silu(plain) - formula).abs().max().item<double>(), 1e-10);
}

}  // namespace
}  // namespace latentlab
