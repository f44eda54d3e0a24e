// Built-in guiders: `none`, `cfg` (classifier-free guidance) and `posthoc` (Appendix C, Eq. 16-17).
#include <cmath>
#include <memory>

#include "latentlab/error.hpp"
#include "latentlab/guider.hpp"
#include "latentlab/plugin.hpp"
#include "posthoc.hpp"

namespace latentlab::guiders {
namespace {

void require_model(const GuidanceInputs& inputs, const std::string& guider) {
  if (!inputs.model || inputs.schedule == nullptr)
    throw ConfigError("guider '" + guider + "': the host passed no model or schedule");
}

// eps_hat = eps_theta(z_t, t, c).
class NoGuidance : public Guider {
 public:
  EpsFn guide(GuidanceInputs inputs) const override {
    require_model(inputs, "none");
    return [inputs](const torch::Tensor& z_t, std::int64_t t) { return inputs.model(z_t, t, inputs.cond); };
  }
};

// Classifier-free guidance (Ho & Salimans 2022): eps = eps_u + s (eps_c - eps_u), both from one
// forward pass on the batch [z_t; z_t] with conditioning [uncond; cond]. s = 1 is the conditional
// model, s = 0 the unconditional one. With rescale phi > 0 (Lin et al. 2023, Eq. 15-16) the guided
// eps is rescaled to eps_c's per-sample standard deviation and mixed: phi eps_rescaled + (1 - phi) eps.
class ClassifierFree : public Guider {
 public:
  explicit ClassifierFree(const Params& params)
      : scale_(params.get_float("scale")), rescale_(params.get_float("rescale")) {}

  EpsFn guide(GuidanceInputs inputs) const override {
    require_model(inputs, "cfg");
    if (inputs.cond.empty() || inputs.uncond.empty())
      throw ConfigError(
          "guider 'cfg' needs a conditional model and its unconditional input (the 'no conditioning' value "
          "of a model trained with conditioning dropout); this model has no unconditional input. Use "
          "--guider none, or --guider posthoc to steer an unconditional model");
    const auto both = concat_batches(inputs.uncond, inputs.cond);
    const double scale = scale_, rescale = rescale_;
    return [inputs, both, scale, rescale](const torch::Tensor& z_t, std::int64_t t) {
      const auto eps = inputs.model(torch::cat({z_t, z_t}), t, both);  // [2B, ...]
      const auto halves = eps.chunk(2);
      const auto& eps_u = halves[0];
      const auto& eps_c = halves[1];
      auto guided = eps_u + scale * (eps_c - eps_u);
      if (rescale > 0) {
        std::vector<std::int64_t> dims;
        for (std::int64_t d = 1; d < guided.dim(); ++d) dims.push_back(d);
        const auto std_c = eps_c.std(dims, true, true);
        const auto std_guided = guided.std(dims, true, true).clamp_min(1e-12);
        guided = rescale * guided * (std_c / std_guided) + (1.0 - rescale) * guided;
      }
      return guided;
    };
  }

 private:
  double scale_, rescale_;
};

void register_factories(Registrar& registrar) {
  registrar.add<Guider>("none", "no guidance: eps_hat = eps_theta(z_t, t, c)", ParamSchema(),
                        [](const Params&) { return std::make_unique<NoGuidance>(); });
  registrar.add<Guider>(
      "cfg", "classifier-free guidance eps_u + s (eps_c - eps_u) in one batched forward, optional rescale",
      ParamSchema()
          .number("scale", 1.0, "guidance scale s (1: the conditional model, 0: the unconditional one)",
                  Range::any())
          .number("rescale", 0.0, "guidance rescale phi (Lin et al. 2023); 0 is off",
                  Range::closed(0.0, 1.0)),
      [](const Params& params) { return std::make_unique<ClassifierFree>(params); });
  registrar.add<Guider>("posthoc",
                        "post-hoc image guidance (Appendix C, Eq. 16-17) through x0_hat, the decoder and a "
                        "transform: super-resolution (downsample), inpainting (mask) or identity",
                        posthoc_schema(), make_posthoc);
}

}  // namespace
}  // namespace latentlab::guiders

LATENTLAB_PLUGIN("latentlab-guiders", LATENTLAB_VERSION_STRING, latentlab::guiders::register_factories)
