// The built-in weighting plugins, loaded through the registry, against their formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "latentlab/diffusion/elbo.hpp"
#include "latentlab/plugin_checks.hpp"
#include "latentlab/weighting.hpp"
#include "support/builtin_plugins.hpp"

namespace latentlab {
namespace {

class Weightings : public ::testing::Test {
 protected:
  std::shared_ptr<LossWeighting> make(const std::string& name,
                                      const nlohmann::json& params = nlohmann::json::object()) {
    return testing::make_builtin<LossWeighting>(name, params, "weighting.params");
  }
  const DiscreteSchedule schedule_{std::vector<double>(100, 0.02)};
};

TEST_F(Weightings, AllFourAreRegistered) {
  const auto names = testing::builtin_plugins().names(LossWeighting::kKind);
  for (const char* name : {"unweighted", "elbo", "min_snr", "x0"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
}

TEST_F(Weightings, WeightsFollowTheirFormulas) {
  const auto unweighted = make("unweighted")->weights(schedule_);
  const auto elbo = make("elbo")->weights(schedule_);
  const auto min_snr = make("min_snr", {{"gamma", 2.0}})->weights(schedule_);
  const auto x0 = make("x0")->weights(schedule_);
  ASSERT_EQ(elbo.size(), 100u);
  EXPECT_EQ(elbo, elbo_weights(schedule_));
  EXPECT_DOUBLE_EQ(elbo[0], 0.5);
  for (std::int64_t t = 1; t <= 100; ++t) {
    const auto i = static_cast<std::size_t>(t - 1);
    const double snr = schedule_.snr(t);
    EXPECT_EQ(unweighted[i], 1.0);
    EXPECT_DOUBLE_EQ(min_snr[i], std::min(snr, 2.0) / snr);
    EXPECT_DOUBLE_EQ(x0[i], 1.0 / snr);
    if (t >= 2) {
      EXPECT_NEAR(elbo[i], 0.5 * (schedule_.snr(t - 1) / snr - 1), 1e-12 * elbo[i] + 1e-15);
    }
  }
}

TEST_F(Weightings, TimestepSamplingIsAParameter) {
  EXPECT_EQ(make("elbo")->timestep_sampling(), TimestepSampling::Uniform);
  EXPECT_EQ(make("elbo", {{"t_sampling", "loss_history"}})->timestep_sampling(),
            TimestepSampling::LossHistory);
  EXPECT_EQ(make("unweighted", {{"t_sampling", "weights"}})->timestep_sampling(), TimestepSampling::Weights);
  try {
    make("elbo", {{"t_sampling", "importance"}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("loss_history"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make("min_snr", {{"gamma", 0}}), ConfigError);
}

TEST_F(Weightings, EveryBuiltinPassesTheConformanceChecks) {
  for (const auto& name : testing::builtin_plugins().names(LossWeighting::kKind))
    for (const char* sampling : {"uniform", "weights", "loss_history"})
      for (const auto& result : check_weighting(*make(name, {{"t_sampling", sampling}})))
        EXPECT_TRUE(result.passed) << name << " " << sampling << ": " << result.name << ": " << result.detail;
}

// Broken plugins fail the checks, each with the reason.
class NegativeWeighting : public LossWeighting {
 public:
  std::vector<double> weights(const Schedule& s) const override {
    std::vector<double> w(static_cast<std::size_t>(s.num_steps()), 1.0);
    w.back() = -1.0;
    return w;
  }
};

class ShortDataset : public Dataset {
 public:
  std::int64_t size() const override { return 4; }
  std::int64_t channels() const override { return 1; }
  std::int64_t resolution() const override { return 2; }
  std::int64_t num_classes() const override { return 0; }
  Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    return {
        torch::full({static_cast<std::int64_t>(indices.size()), 1, 2, 2}, 2.0f), {}, {}};  // out of [-1, 1]
  }
};

TEST(PluginChecks, BrokenPluginsFailWithTheReason) {
  const auto weighting = check_weighting(NegativeWeighting());
  EXPECT_FALSE(weighting[0].passed);
  EXPECT_NE(weighting[0].detail.find("weight -1"), std::string::npos) << weighting[0].detail;
  const auto dataset = check_dataset(ShortDataset());
  ASSERT_GE(dataset.size(), 2u);
  EXPECT_TRUE(dataset[0].passed);
  EXPECT_FALSE(dataset[1].passed);
  EXPECT_NE(dataset[1].detail.find("not [-1, 1]"), std::string::npos) << dataset[1].detail;
}

}  // namespace
}  // namespace latentlab
