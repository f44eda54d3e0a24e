// Post-hoc guidance steers an unconditional (or conditional) model towards images x whose transform
// T(x) matches an observation y, with the Gaussian likelihood of Eq. 17
//     log p(y | z_t) = -1/2 ||y - T(D(z0_hat(z_t)))||^2 / variance
// and the guided prediction of Eq. 16
//     eps_hat = eps_theta(z_t, t) - s sigma_t grad_{z_t} log p(y | z_t),     sigma_t = sqrt(1 - alpha_t^2).
// The paper prints Eq. 16 with a plus. With eps-prediction the score is grad log p(z_t) = -eps / sigma_t,
// so the guided score -eps_hat / sigma_t = grad log p(z_t) + s grad log p(y | z_t) needs the minus
// sign: it is the one that raises log p(y | z_t) (Dhariwal & Nichol 2021, Eq. 14; the tests check it).
#include "posthoc.hpp"

#include <cmath>
#include <sstream>

#include "latentlab/error.hpp"

namespace latentlab::guiders {
namespace {

enum class Transform { Downsample, Mask, Identity };

std::string shape_of(const torch::Tensor& x) {
  std::ostringstream out;
  out << x.sizes();
  return out.str();
}

class PostHoc : public Guider {
 public:
  explicit PostHoc(const Params& params)
      : scale_(params.get_float("scale")),
        factor_(params.get_int("factor")),
        variance_(params.get_float("variance")),
        max_grad_rms_(params.get_float("max_grad_rms")),
        through_model_(params.get_bool("through_model")) {
    const auto name = params.get_string("transform");
    transform_ = name == "downsample" ? Transform::Downsample
                 : name == "mask"     ? Transform::Mask
                                      : Transform::Identity;
  }

  EpsFn guide(GuidanceInputs inputs) const override {
    if (!inputs.model || inputs.schedule == nullptr)
      throw ConfigError("guider 'posthoc': the host passed no model or schedule");
    if (!inputs.target.defined())
      throw ConfigError("guider 'posthoc' needs the observation y (`latentlab sample --target IMAGE`): " +
                        std::string(transform_ == Transform::Downsample
                                        ? "the low-resolution image to super-resolve"
                                    : transform_ == Transform::Mask ? "the image whose known pixels are kept"
                                                                    : "the image to move towards"));
    if (transform_ == Transform::Mask && !inputs.mask.defined())
      throw ConfigError(
          "guider 'posthoc' with transform 'mask' needs a mask (`--mask IMAGE`, white = known)");
    if (!inputs.decode) inputs.decode = [](const torch::Tensor& z) { return z; };
    return [self = *this, inputs](const torch::Tensor& z_t, std::int64_t t) {
      return self.guided(inputs, z_t, t);
    };
  }

 private:
  torch::Tensor transform(const torch::Tensor& x, const torch::Tensor& mask) const {
    switch (transform_) {
      case Transform::Downsample:
        if (x.dim() != 4 || x.size(2) % factor_ != 0 || x.size(3) % factor_ != 0)
          throw ConfigError("guider 'posthoc': downsampling by factor " + std::to_string(factor_) +
                            " needs decoded images [B, C, H, W] with H and W divisible by it; got " +
                            shape_of(x));
        return torch::avg_pool2d(x, {factor_, factor_});  // area downsampling
      case Transform::Mask:
        return x * mask.to(x.device(), x.scalar_type());
      case Transform::Identity:
        return x;
    }
    return x;
  }

  torch::Tensor guided(const GuidanceInputs& inputs, const torch::Tensor& z_t, std::int64_t t) const {
    const double sigma = inputs.schedule->sigma(t);
    // The gradient path runs in float32 (float64 when the latents are): these gradients can be large.
    const auto dtype = z_t.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    torch::Tensor eps, gradient;
    {
      torch::AutoGradMode enable_grad(true);
      const auto z = z_t.detach().to(dtype).requires_grad_(true);
      if (through_model_) {
        eps = inputs.model(z, t, inputs.cond).to(dtype);
      } else {
        torch::NoGradGuard constant;
        eps = inputs.model(z_t, t, inputs.cond).to(dtype);
      }
      const auto x0_hat = x0_estimate(*inputs.schedule, z, eps, t);  // Eq. 4 solved for z_0
      const auto observed = transform(inputs.decode(x0_hat), inputs.mask);
      auto target = inputs.target.to(observed.device(), dtype);
      if (transform_ == Transform::Mask) target = target * inputs.mask.to(observed.device(), dtype);
      if (target.dim() != observed.dim() || (target.size(0) != observed.size(0) && target.size(0) != 1) ||
          !std::equal(target.sizes().begin() + 1, target.sizes().end(), observed.sizes().begin() + 1))
        throw ConfigError("guider 'posthoc': the target y has shape " + shape_of(target) +
                          " but T(D(z0_hat)) has " + shape_of(observed) +
                          "; give y at the transformed size ([1 or B, C, H/" +
                          std::to_string(transform_ == Transform::Downsample ? factor_ : 1) + ", W/...])");
      // Eq. 17, summed over the batch: each sample's gradient is that of its own log-likelihood.
      const auto log_p = -0.5 * (target - observed).pow(2).sum() / variance_;
      gradient = torch::autograd::grad({log_p}, {z})[0];
    }
    auto guidance = sigma * gradient;  // sigma_t grad log p(y | z_t), in units of eps
    if (max_grad_rms_ > 0) {
      std::vector<std::int64_t> dims;
      for (std::int64_t d = 1; d < guidance.dim(); ++d) dims.push_back(d);
      const auto rms = guidance.pow(2).mean(dims, true).sqrt();
      guidance = guidance * (max_grad_rms_ / rms.clamp_min(max_grad_rms_));  // scale down only above the cap
    }
    return (eps.detach() - scale_ * guidance).to(z_t.scalar_type());  // Eq. 16, with the minus sign
  }

  double scale_;
  std::int64_t factor_;
  double variance_, max_grad_rms_;
  bool through_model_;
  Transform transform_ = Transform::Downsample;
};

}  // namespace

ParamSchema posthoc_schema() {
  return ParamSchema()
      .number("scale", 1.0, "guidance scale s of Eq. 16", Range::at_least(0.0))
      .choice("transform", "downsample", {"downsample", "mask", "identity"},
              "T: area downsampling by `factor` (y a low-resolution image: super-resolution), a mask (y the "
              "known pixels: inpainting), or the identity")
      .integer("factor", 4, "downsampling factor k of the `downsample` transform", Range::at_least(1))
      .number("variance", 1.0, "variance of the Gaussian likelihood of Eq. 17", Range::above(0.0))
      .number("max_grad_rms", 1.0,
              "clip each sample's guidance term sigma_t grad log p to this root-mean-square (0: no clipping)",
              Range::at_least(0.0))
      .boolean(
          "through_model", true,
          "differentiate through eps_theta in z0_hat (exact); false treats eps_theta as constant (cheaper)");
}

std::unique_ptr<Guider> make_posthoc(const Params& params) {
  return std::make_unique<PostHoc>(params);
}

}  // namespace latentlab::guiders
