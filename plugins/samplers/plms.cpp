// `plms`: pseudo linear multistep (Liu et al. 2022, PNDM), as LDM's PLMSSampler runs it.
#include <deque>
#include <memory>

#include "grid.hpp"

namespace latentlab::samplers {
namespace {

// Each step combines the current eps_hat with up to three earlier ones by the Adams-Bashforth
// weights (4th order once three are stored) and takes a DDIM step with the combination:
//   1 earlier:  (3 e_t - e_1) / 2
//   2 earlier:  (23 e_t - 16 e_1 + 5 e_2) / 12
//   3 earlier:  (55 e_t - 59 e_1 + 37 e_2 - 9 e_3) / 24
// The first step warms up as LDM does: a DDIM step to the next time, eps_hat there, and the mean of
// both (a Heun step; 2 NFE). When that next time is t = 0 (one step only) it is a plain DDIM step.
// The last step goes to t = 0 with the combined eps_hat, so the result is the state at t = 0.
class Plms : public Sampler {
 public:
  explicit Plms(const Params& params) : discretization_(discretization_param(params)) {}

  SamplerResult sample(const SamplerInput& in) const override {
    const Grid grid(in.schedule, in.steps, discretization_);
    auto z = in.z_T;
    std::deque<torch::Tensor> previous;  // newest first
    std::int64_t nfe = 0;
    for (std::int64_t i = 0; i < grid.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const auto eps_t = in.eps(z, grid.times[k]);
      ++nfe;
      torch::Tensor combined;
      if (previous.empty()) {
        combined = eps_t;
        if (!grid.is_final(i)) {
          const auto z_next = ddim_step(grid, i, z, eps_t);
          combined = 0.5 * (eps_t + in.eps(z_next, grid.times[k + 1]));
          ++nfe;
        }
      } else if (previous.size() == 1) {
        combined = (3.0 * eps_t - previous[0]) / 2.0;
      } else if (previous.size() == 2) {
        combined = (23.0 * eps_t - 16.0 * previous[0] + 5.0 * previous[1]) / 12.0;
      } else {
        combined = (55.0 * eps_t - 59.0 * previous[0] + 37.0 * previous[1] - 9.0 * previous[2]) / 24.0;
      }
      z = ddim_step(grid, i, z, combined);
      previous.push_front(eps_t);
      if (previous.size() > 3) previous.pop_back();
    }
    // With one step the result is the x0 estimate at that time; otherwise a multistep step to t = 0.
    return SamplerResult{z, nfe, grid.times.front(), grid.size() == 1 ? grid.last_time() : 0};
  }

 private:
  Discretization discretization_;
};

}  // namespace

void register_plms(Registrar& registrar) {
  ParamSchema schema;
  add_discretization(schema);
  registrar.add<Sampler>(
      "plms",
      "pseudo linear multistep (PNDM) as in LDM: 4th-order Adams-Bashforth on eps_hat with a "
      "Heun warm-up; N + 1 NFE for N >= 2 steps",
      schema, [](const Params& params) { return std::make_unique<Plms>(params); });
}

}  // namespace latentlab::samplers
