// Built-in schedules: the conformance suite for every registered schedule, and exact values against
// the reference LDM formulas (make_beta_schedule) for the defaults.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "conformance/schedule_conformance.hpp"
#include "latentlab/registry/registry.hpp"
#include "support/builtin_plugins.hpp"

using latentlab::Schedule;
using latentlab::registry::Registry;
using nlohmann::json;

namespace {

const Registry& builtin() {
  return latentlab::testing::builtin_plugins();
}

std::shared_ptr<Schedule> make(const std::string& name, const json& params = json::object()) {
  return builtin().create<Schedule>(name, params, "schedule");
}

// Parameter sets each schedule is checked with; a schedule with required parameters must appear here.
const std::map<std::string, std::vector<json>>& conformance_params() {
  static const std::map<std::string, std::vector<json>> table = {
      {"linear",
       {json::object(),
        {{"T", 1}},
        {{"T", 4000}, {"beta_start", 1e-4}, {"beta_end", 0.02}},
        {{"T", 1000000}}}},
      {"sqrt_linear",
       {json::object(),
        {{"T", 50}, {"beta_start", 0.1}, {"beta_end", 0.1}},
        {{"T", 1000000}, {"beta_start", 1e-4}, {"beta_end", 0.05}}}},
      {"cosine", {json::object(), {{"T", 10}}, {{"T", 2000}, {"s", 0.0}}}},
      {"custom", {{{"betas", {0.5}}}, {{"betas", {1e-4, 0.01, 0.3, 0.9}}}}},
  };
  return table;
}

double sqr(double x) {
  return x * x;
}

}  // namespace

TEST(Schedules, BuiltinLibraryLoads) {
  EXPECT_TRUE(builtin().failed().empty());
  EXPECT_EQ(builtin().names("schedule"),
            (std::vector<std::string>{"cosine", "custom", "linear", "sqrt_linear"}));
}

TEST(Schedules, EveryRegisteredSchedulePassesConformance) {
  for (const auto& name : builtin().names("schedule")) {
    const auto it = conformance_params().find(name);
    ASSERT_NE(it, conformance_params().end()) << "schedule '" << name << "' has no conformance parameters";
    for (const auto& params : it->second)
      latentlab::conformance::check_schedule(*make(name, params), name + " " + params.dump());
  }
}

TEST(Schedules, LinearMatchesLdmFormulaExactly) {
  // beta = linspace(sqrt(0.0015), sqrt(0.0195), 1000)^2; alpha_t^2 = prod (1 - beta).
  const auto schedule = make("linear");
  ASSERT_EQ(schedule->num_steps(), 1000);
  const double a = std::sqrt(0.0015), b = std::sqrt(0.0195);
  double alpha2 = 1.0;
  for (int t = 1; t <= 1000; ++t) {
    const double beta = sqr(a + (b - a) * (t - 1) / 999.0);
    alpha2 *= 1.0 - beta;
    ASSERT_NEAR(schedule->beta(t), beta, 1e-15) << t;
    ASSERT_NEAR(schedule->alpha(t), std::sqrt(alpha2), 1e-12 * std::sqrt(alpha2)) << t;
    ASSERT_NEAR(schedule->sigma(t), std::sqrt(1.0 - alpha2), 1e-12) << t;
  }
  EXPECT_NEAR(schedule->beta(1), 0.0015, 1e-16);
  EXPECT_NEAR(schedule->beta(1000), 0.0195, 1e-16);
  // A few values from the reference implementation (numpy float64 cumprod), to 12 digits.
  EXPECT_NEAR(schedule->alpha(1), std::sqrt(1 - 0.0015), 1e-15);
  EXPECT_NEAR(schedule->log_snr(1), std::log((1 - 0.0015) / 0.0015), 1e-12);
}

TEST(Schedules, SqrtLinearIsLinearInBeta) {
  const auto schedule = make("sqrt_linear", {{"T", 11}, {"beta_start", 0.01}, {"beta_end", 0.02}});
  for (int t = 1; t <= 11; ++t) EXPECT_NEAR(schedule->beta(t), 0.01 + 0.001 * (t - 1), 1e-16) << t;
}

TEST(Schedules, CosineMatchesNicholDhariwal) {
  const auto schedule = make("cosine");
  const double s = 0.008, pi = std::acos(-1.0);
  auto f = [&](double t) { return sqr(std::cos((t / 1000.0 + s) / (1 + s) * pi / 2)); };
  for (int t = 1; t < 1000; ++t) {
    const double beta = 1 - f(t) / f(t - 1);
    if (beta >= 0.999) continue;  // clipped steps (only at the very end)
    ASSERT_NEAR(schedule->beta(t), beta, 1e-13) << t;
  }
  EXPECT_DOUBLE_EQ(schedule->beta(1000), 0.999);  // f(T) = 0, so beta_T is clipped
  // Before clipping sets in, alpha_t^2 = f(t) / f(0).
  for (int t : {1, 10, 500, 900}) EXPECT_NEAR(sqr(schedule->alpha(t)), f(t) / f(0), 1e-12) << t;
}

TEST(Schedules, CustomUsesTheGivenBetas) {
  const auto schedule = make("custom", {{"betas", {0.1, 0.2, 0.3}}});
  ASSERT_EQ(schedule->num_steps(), 3);
  EXPECT_EQ(schedule->beta(2), 0.2);
  EXPECT_NEAR(sqr(schedule->alpha(3)), 0.9 * 0.8 * 0.7, 1e-15);
}

TEST(Schedules, BadParametersAreConfigErrors) {
  EXPECT_THROW(make("custom"), latentlab::ConfigError);                           // betas required
  EXPECT_THROW(make("custom", {{"betas", {0.1, 1.0}}}), latentlab::ConfigError);  // beta must be < 1
  try {
    make("linear", {{"beta_start", 0.1}, {"beta_end", 0.01}});
    FAIL();
  } catch (const latentlab::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("beta_start (0.1) must not exceed beta_end (0.01)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Schedules, SmallTimestepsKeepFullPrecision) {
  // sigma_1^2 = beta_1 exactly, with no cancellation in 1 - alpha^2.
  const auto schedule = make("custom", {{"betas", {1e-10, 0.5}}});
  EXPECT_NEAR(schedule->sigma2(1), 1e-10, 1e-24);
  EXPECT_NEAR(schedule->log_snr(1), std::log((1 - 1e-10) / 1e-10), 1e-9);
}

namespace {

// Schedules a plugin author might get wrong, to prove the checks can fail.
class LinearLogAlpha : public Schedule {
 public:
  explicit LinearLogAlpha(double at_zero = 0.0) : at_zero_(at_zero) {}
  std::int64_t num_steps() const override { return 20; }
  double log_alpha2(std::int64_t t) const override {
    check_t(t);
    return t == 0 ? at_zero_ : -0.1 * static_cast<double>(t);
  }

 private:
  double at_zero_;
};

class InconsistentBeta : public LinearLogAlpha {
 public:
  double beta(std::int64_t t) const override {
    check_t(t, 1);
    return 0.5;  // not 1 - alpha_t^2 / alpha_{t-1}^2
  }
};

class SnrGoesUp : public LinearLogAlpha {
 public:
  double log_alpha2(std::int64_t t) const override {
    check_t(t);
    return t == 0 ? 0.0 : t < 10 ? -0.1 * static_cast<double>(t) : -0.05 * static_cast<double>(t);
  }
};

bool check_passed(const std::vector<latentlab::CheckResult>& results, const std::string& prefix) {
  for (const auto& r : results)
    if (r.name.rfind(prefix, 0) == 0) return r.passed;
  ADD_FAILURE() << "no check named " << prefix;
  return false;
}

}  // namespace

TEST(ScheduleChecks, AConsistentScheduleOfOurOwnPasses) {
  for (const auto& r : latentlab::check_schedule(LinearLogAlpha()))
    EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
}

TEST(ScheduleChecks, DetectTheMistakesAPluginCanMake) {
  EXPECT_FALSE(check_passed(latentlab::check_schedule(LinearLogAlpha(-0.1)), "t = 0 is the data"));
  const auto inconsistent = latentlab::check_schedule(InconsistentBeta());
  EXPECT_FALSE(check_passed(inconsistent, "alpha_{t|t-1}^2 = 1 - beta_t"));
  const auto rising = latentlab::check_schedule(SnrGoesUp());
  EXPECT_FALSE(check_passed(rising, "SNR(t) strictly decreasing"));
  EXPECT_FALSE(check_passed(rising, "beta_t in (0, 1)"));
}

TEST(ScheduleChecks, InfiniteLogAlphaIsCaught) {
  class Infinite : public LinearLogAlpha {
   public:
    double log_alpha2(std::int64_t t) const override {
      check_t(t);
      return t == 20 ? -std::numeric_limits<double>::infinity() : LinearLogAlpha::log_alpha2(t);
    }
  };
  EXPECT_FALSE(check_passed(latentlab::check_schedule(Infinite()), "log alpha_t^2 finite"));
}
