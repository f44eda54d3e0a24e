// Guiders: classifier-free guidance and post-hoc guidance (Appendix C, Eq. 16-17) on models whose
// predictions are known.
#include <gtest/gtest.h>

#include "latentlab/error.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/sampling/analytic.hpp"
#include "support/builtin_plugins.hpp"

namespace latentlab {
namespace {

using testing::make_builtin;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// ---- classifier-free guidance ----

struct CountingModel {
  int calls = 0;
  std::int64_t last_batch = 0;
  // eps = 0.1 z + y (the label as a number), so conditional and unconditional predictions differ.
  ModelFn fn() {
    return [this](const torch::Tensor& z, std::int64_t, const Conditioning& cond) {
      ++calls;
      last_batch = z.size(0);
      return 0.1 * z + cond.y.to(z.dtype()).view({-1, 1, 1, 1}) * (1.0 + z.abs());
    };
  }
};

GuidanceInputs cfg_inputs(CountingModel& model, const Schedule& schedule) {
  GuidanceInputs inputs;
  inputs.model = model.fn();
  inputs.schedule = &schedule;
  inputs.cond.y = torch::tensor({3, 5}, torch::kInt64);
  inputs.uncond.y = torch::tensor({0, 0}, torch::kInt64);
  return inputs;
}

TEST(Cfg, ScaleOneIsConditionalZeroIsUnconditional) {
  const auto schedule = make_builtin<Schedule>("linear");
  CountingModel model;
  const auto inputs = cfg_inputs(model, *schedule);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto z = at::randn({2, 1, 4, 4}, generator, kF64);
  const auto eps_c = model.fn()(z, 10, inputs.cond), eps_u = model.fn()(z, 10, inputs.uncond);
  model.calls = 0;
  const auto at = [&](double scale) {
    return make_builtin<Guider>("cfg", {{"scale", scale}})->guide(inputs)(z, 10);
  };
  EXPECT_TRUE(torch::allclose(at(1.0), eps_c, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(at(0.0), eps_u, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(at(2.5), eps_u + 2.5 * (eps_c - eps_u), 1e-12, 1e-12));
  EXPECT_EQ(model.calls, 3);  // one batched forward per evaluation
  EXPECT_EQ(model.last_batch, 4);
}

TEST(Cfg, RescaleMatchesTheConditionalStd) {
  const auto schedule = make_builtin<Schedule>("linear");
  CountingModel model;
  const auto inputs = cfg_inputs(model, *schedule);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto z = at::randn({2, 1, 4, 4}, generator, kF64);
  const auto eps_c = model.fn()(z, 10, inputs.cond);
  const auto guided = make_builtin<Guider>("cfg", {{"scale", 4.0}, {"rescale", 1.0}})->guide(inputs)(z, 10);
  EXPECT_TRUE(torch::allclose(guided.std({1, 2, 3}), eps_c.std({1, 2, 3}), 1e-9, 1e-9));
}

TEST(Cfg, NeedsConditioning) {
  const auto schedule = make_builtin<Schedule>("linear");
  CountingModel model;
  GuidanceInputs inputs;
  inputs.model = model.fn();
  inputs.schedule = schedule.get();
  try {
    make_builtin<Guider>("cfg")->guide(inputs);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("conditional model"), std::string::npos) << e.what();
  }
}

// ---- post-hoc guidance ----

// Images [B, 1, 8, 8] from N(0, I) in 64 dimensions, with the exact eps_hat, a linear decoder and
// 2x downsampling: the set-up of the test.
struct PostHocSetup {
  std::shared_ptr<Schedule> schedule = make_builtin<Schedule>("linear");
  sampling::GaussianData data{torch::zeros({64}, kF64), 1.0};
  torch::Tensor y = torch::linspace(-0.8, 0.8, 16, kF64).view({1, 1, 4, 4});

  ModelFn model() const {
    return [this](const torch::Tensor& z, std::int64_t t, const Conditioning&) {
      const double alpha = schedule->alpha(t), ratio = schedule->sigma(t) / alpha;
      return data.eps(z.flatten(1) / alpha, ratio).view_as(z);  // differentiable in z
    };
  }
  static torch::Tensor decode(const torch::Tensor& z) { return 0.5 * z + 0.1; }
  static torch::Tensor observe(const torch::Tensor& x) { return torch::avg_pool2d(x, {2, 2}); }

  GuidanceInputs inputs() const {
    GuidanceInputs in;
    in.model = model();
    in.schedule = schedule.get();
    in.decode = decode;
    in.target = y;
    return in;
  }
  // Samples with ddim (30 steps) from a fixed z_T; returns ||y - T(D(z0))|| per sample, [B].
  torch::Tensor residuals(const Guider& guider, torch::Tensor* z0_out = nullptr) const {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
    const auto z_T = at::randn({64, 1, 8, 8}, generator, kF64);
    const auto eps = guider.guide(inputs());
    const auto result =
        make_builtin<Sampler>("ddim")->sample(SamplerInput{eps, *schedule, 30, z_T, generator});
    if (z0_out != nullptr) *z0_out = result.z0;
    return (y - observe(decode(result.z0))).flatten(1).norm(2, 1);
  }
};

TEST(PostHoc, GuidedSamplesMatchTheObservationBetter) {
  const PostHocSetup setup;
  torch::Tensor unguided_z0, guided_z0;
  const auto unguided = setup.residuals(*make_builtin<Guider>("none"), &unguided_z0);
  for (const bool through_model : {true, false}) {
    const auto guided = setup.residuals(
        *make_builtin<Guider>(
            "posthoc", {{"scale", 2.0}, {"factor", 2}, {"variance", 0.05}, {"through_model", through_model}}),
        &guided_z0);
    // Exact gradients (through eps_theta) steer much better than treating eps_theta as constant, whose
    // gradient through x0_hat = z_t / alpha_t overshoots at high noise and is clipped.
    EXPECT_LT(guided.mean().item<double>(), (through_model ? 0.25 : 0.75) * unguided.mean().item<double>())
        << through_model;
    // The mean observation moves towards y.
    const auto before = PostHocSetup::observe(PostHocSetup::decode(unguided_z0)).mean(0);
    const auto after = PostHocSetup::observe(PostHocSetup::decode(guided_z0)).mean(0);
    EXPECT_GT(((after - before) * (setup.y[0] - before)).sum().item<double>(), 0.0);
  }
}

TEST(PostHoc, TheSignRaisesTheLikelihood) {
  // One evaluation: the x0 estimate from the guided eps has a higher log p(y | z_t) than the unguided
  // one. The paper's printed plus sign would lower it.
  const PostHocSetup setup;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(8);
  const auto z = at::randn({4, 1, 8, 8}, generator, kF64);
  for (const std::int64_t t : {50, 400, 900}) {
    const double alpha = setup.schedule->alpha(t), sigma = setup.schedule->sigma(t);
    const auto log_p = [&](const torch::Tensor& eps) {
      const auto x0 = (z - sigma * eps) / alpha;
      return -0.5 * (setup.y - PostHocSetup::observe(PostHocSetup::decode(x0))).pow(2).sum().item<double>();
    };
    const auto plain = setup.model()(z, t, {});
    const auto guided =
        make_builtin<Guider>("posthoc", {{"scale", 0.05}, {"factor", 2}, {"max_grad_rms", 0.0}})
            ->guide(setup.inputs())(z, t);
    EXPECT_GT(log_p(guided), log_p(plain)) << "t = " << t;
    EXPECT_LT(log_p(plain + (guided - plain) * -1.0), log_p(plain)) << "t = " << t;
  }
}

TEST(PostHoc, ClipsTheGuidanceTerm) {
  const PostHocSetup setup;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto z = at::randn({4, 1, 8, 8}, generator, kF64);
  const auto plain = setup.model()(z, 900, {});
  const auto guided =
      make_builtin<Guider>("posthoc",
                           {{"scale", 1.0}, {"factor", 2}, {"variance", 1e-4}, {"max_grad_rms", 0.5}})
          ->guide(setup.inputs())(z, 900);
  const auto rms = (guided - plain).pow(2).mean({1, 2, 3}).sqrt();
  EXPECT_TRUE(torch::allclose(rms, torch::full_like(rms, 0.5), 1e-9, 1e-9)) << rms;
}

TEST(PostHoc, MaskAndIdentityTransforms) {
  PostHocSetup setup;
  auto inputs = setup.inputs();
  inputs.target = torch::full({1, 1, 8, 8}, 0.7, kF64);
  inputs.mask = torch::zeros({1, 1, 8, 8});
  inputs.mask.index_put_({0, 0, torch::indexing::Slice(0, 4)}, 1.0);  // the top half is known
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto z = at::randn({2, 1, 8, 8}, generator, kF64);
  const auto plain = setup.model()(z, 500, {});
  const auto guided =
      make_builtin<Guider>("posthoc", {{"transform", "mask"}, {"max_grad_rms", 0.0}})->guide(inputs)(z, 500);
  using torch::indexing::Slice;
  // The unknown half gets no guidance (the decoder is pointwise here).
  EXPECT_TRUE(torch::allclose(guided.index({Slice(), Slice(), Slice(4, 8)}),
                              plain.index({Slice(), Slice(), Slice(4, 8)})));
  EXPECT_FALSE(torch::allclose(guided.index({Slice(), Slice(), Slice(0, 4)}),
                               plain.index({Slice(), Slice(), Slice(0, 4)})));
  inputs.mask = torch::Tensor();
  EXPECT_NO_THROW(make_builtin<Guider>("posthoc", {{"transform", "identity"}})->guide(inputs)(z, 500));
}

TEST(PostHoc, ClearErrors) {
  PostHocSetup setup;
  auto inputs = setup.inputs();
  inputs.target = torch::Tensor();
  EXPECT_THROW(make_builtin<Guider>("posthoc")->guide(inputs), ConfigError);
  inputs = setup.inputs();
  EXPECT_THROW(make_builtin<Guider>("posthoc", {{"transform", "mask"}})->guide(inputs), ConfigError);
  // y at the wrong size for factor 4 (8x8 -> 2x2, y is 4x4).
  const auto z = torch::zeros({1, 1, 8, 8}, kF64);
  try {
    make_builtin<Guider>("posthoc", {{"factor", 4}})->guide(inputs)(z, 10);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1, 4, 4]"), std::string::npos) << e.what();
  }
}

// ---- the guider conformance checks ----

TEST(GuiderChecks, EveryBuiltinPasses) {
  for (const auto& entry : testing::builtin_plugins().entries()) {
    if (entry.info.kind != Guider::kKind) continue;
    for (const auto& check : check_guider(*make_builtin<Guider>(entry.info.name)))
      EXPECT_TRUE(check.passed) << entry.info.name << ": " << check.name << ": " << check.detail;
  }
  // posthoc's other transforms too.
  for (const auto& transform : {"mask", "identity"})
    for (const auto& check : check_guider(*make_builtin<Guider>("posthoc", {{"transform", transform}})))
      EXPECT_TRUE(check.passed) << transform << ": " << check.name << ": " << check.detail;
}

// Drops the batch's second half: the wrong shape.
class HalfBatchGuider : public Guider {
 public:
  EpsFn guide(GuidanceInputs inputs) const override {
    return [inputs](const torch::Tensor& z, std::int64_t t) {
      return inputs.model(z, t, inputs.cond).slice(0, 0, z.size(0) / 2);
    };
  }
};

TEST(GuiderChecks, FailBrokenGuiders) {
  const auto results = check_guider(HalfBatchGuider());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].passed);
  EXPECT_FALSE(results[1].passed);
  EXPECT_NE(results[1].detail.find("shape"), std::string::npos) << results[1].detail;
}

}  // namespace
}  // namespace latentlab
