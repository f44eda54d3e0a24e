// An example schedule plugin, built outside the LatentLab tree (see docs/plugins.md).
//
// `logsnr_linear`: log SNR falls linearly from lambda_max at t = 1 to lambda_min at t = T. For a
// variance-preserving process alpha_t^2 = sigmoid(lambda_t), so log alpha_t^2 = -softplus(-lambda_t).
// It implements latentlab::Schedule directly (T and log alpha_t^2); betas, SNR and the transition
// quantities of Eq. 6-7 come from the base class.
#include <cmath>
#include <memory>

#include <latentlab/plugin.hpp>
#include <latentlab/schedule.hpp>
#include <latentlab/strings.hpp>

namespace {

class LogSnrLinear final : public latentlab::Schedule {
 public:
  explicit LogSnrLinear(const latentlab::Params& params)
      : steps_(params.get_int("T")),
        lambda_max_(params.get_float("lambda_max")),
        lambda_min_(params.get_float("lambda_min")) {
    if (!(lambda_min_ < lambda_max_))
      throw latentlab::ConfigError("lambda_min (" + latentlab::format_number(lambda_min_) +
                                   ") must be below lambda_max (" + latentlab::format_number(lambda_max_) +
                                   ")");
  }

  std::int64_t num_steps() const override { return steps_; }

  double log_alpha2(std::int64_t t) const override {
    check_t(t);
    if (t == 0) return 0.0;  // the data: alpha_0 = 1
    const double fraction = steps_ == 1 ? 0.0 : static_cast<double>(t - 1) / static_cast<double>(steps_ - 1);
    const double lambda = lambda_max_ + fraction * (lambda_min_ - lambda_max_);
    // -softplus(-lambda), written to stay accurate for large |lambda|.
    return lambda > 0 ? -std::log1p(std::exp(-lambda)) : lambda - std::log1p(std::exp(lambda));
  }

 private:
  std::int64_t steps_;
  double lambda_max_, lambda_min_;
};

void register_factories(latentlab::Registrar& registrar) {
  registrar.add<latentlab::Schedule>(
      "logsnr_linear", "log SNR linear in t, from lambda_max (t = 1) to lambda_min (t = T)",
      latentlab::ParamSchema()
          .integer("T", 1000, "number of diffusion steps", latentlab::Range::closed(1, 1000000))
          .number("lambda_max", 10.0, "log SNR at t = 1", latentlab::Range::closed(-30, 30))
          .number("lambda_min", -10.0, "log SNR at t = T", latentlab::Range::closed(-30, 30)),
      [](const latentlab::Params& params) { return std::make_unique<LogSnrLinear>(params); });
}

}  // namespace

LATENTLAB_PLUGIN("logsnr-schedule-example", "1.0.0", register_factories)
