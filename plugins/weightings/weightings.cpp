// Built-in loss weightings (Rombach et al. 2022, Eq. 2 and Appendix B Eq. 13-15). Each gives w(t),
// the weight on the per-sample mean squared eps error at step t (see latentlab/weighting.hpp), and
// takes `t_sampling` to choose how the trainer draws t.
#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include "latentlab/diffusion/elbo.hpp"
#include "latentlab/plugin.hpp"
#include "latentlab/weighting.hpp"

namespace latentlab::weightings {
namespace {

ParamSchema with_t_sampling(ParamSchema schema) {
  return schema.choice("t_sampling", "uniform", {"uniform", "weights", "loss_history"},
                       "how t is drawn: uniformly, proportional to w(t), or proportional to a running "
                       "sqrt(E[(w mse)^2]) per t (Nichol & Dhariwal 2021); the 1/(T p(t)) correction keeps "
                       "the objective's expectation");
}

// A weighting: its weights as a function of the schedule, and the chosen t sampling.
class Weighting : public LossWeighting {
 public:
  using WeightsFn = std::function<std::vector<double>(const Schedule&)>;
  Weighting(const Params& params, WeightsFn weights)
      : sampling_(timestep_sampling_from_string(params.get_string("t_sampling"))),
        weights_(std::move(weights)) {}

  std::vector<double> weights(const Schedule& schedule) const override { return weights_(schedule); }
  TimestepSampling timestep_sampling() const override { return sampling_; }

 private:
  TimestepSampling sampling_;
  WeightsFn weights_;
};

// w(t) = weight(schedule, t) for t = 1..T.
template <class WeightAt>
Weighting::WeightsFn per_step(WeightAt weight) {
  return [weight](const Schedule& schedule) {
    std::vector<double> w(static_cast<std::size_t>(schedule.num_steps()));
    for (std::int64_t t = 1; t <= schedule.num_steps(); ++t)
      w[static_cast<std::size_t>(t - 1)] = weight(schedule, t);
    return w;
  };
}

void register_factories(Registrar& registrar) {
  registrar.add<LossWeighting>("unweighted",
                               "Eq. 2: the plain mean of (eps - eps_hat)^2, what LDM trains with (w = 1)",
                               with_t_sampling(ParamSchema()), [](const Params& params) {
                                 return std::make_unique<Weighting>(
                                     params, per_step([](const Schedule&, std::int64_t) { return 1.0; }));
                               });
  registrar.add<LossWeighting>(
      "elbo",
      "the true variational bound, Eq. 13 with Eq. 15: w = 1/2 (SNR(t-1)/SNR(t) - 1), Gaussian decoder "
      "(w = 1/2) at t = 1",
      with_t_sampling(ParamSchema()),
      [](const Params& params) { return std::make_unique<Weighting>(params, elbo_weights); });
  registrar.add<LossWeighting>(
      "min_snr", "Min-SNR-gamma (Hang et al. 2023) on the eps loss: w = min(SNR(t), gamma) / SNR(t)",
      with_t_sampling(ParamSchema().number("gamma", 5.0, "the SNR cap", Range::above(0))),
      [](const Params& params) {
        const double gamma = params.get_float("gamma");
        return std::make_unique<Weighting>(params, per_step([gamma](const Schedule& s, std::int64_t t) {
                                             return std::min(s.snr(t), gamma) / s.snr(t);
                                           }));
      });
  registrar.add<LossWeighting>(
      "x0", "the left side of Eq. 15: ||z_0 - z0_hat||^2 = ||eps - eps_hat||^2 / SNR(t), i.e. w = 1/SNR(t)",
      with_t_sampling(ParamSchema()), [](const Params& params) {
        return std::make_unique<Weighting>(
            params, per_step([](const Schedule& s, std::int64_t t) { return 1.0 / s.snr(t); }));
      });
}

}  // namespace
}  // namespace latentlab::weightings

LATENTLAB_PLUGIN("latentlab-weightings", LATENTLAB_VERSION_STRING, latentlab::weightings::register_factories)
