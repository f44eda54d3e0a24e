// `edges`: an out-of-tree conditioner for the docs (docs/plugins.md). The image's Sobel gradient
// magnitude, averaged over channels, brought to the latent grid and concatenated to z_t: a model that
// draws images to match a sketch of their edges. No parameters to train; zeros are "no edges given".
#include <latentlab/conditioner.hpp>
#include <latentlab/error.hpp>
#include <latentlab/plugin.hpp>

namespace {

namespace F = torch::nn::functional;

class EdgeMap : public latentlab::Conditioner {
 public:
  explicit EdgeMap(const latentlab::Params& params) : gain_(params.get_float("gain")) {}

  latentlab::ConditionerOutput output() const override { return latentlab::ConditionerOutput::Map; }
  latentlab::ConditionSource source() const override { return latentlab::ConditionSource::Images; }

  void setup(const latentlab::ConditionerSetup& setup) override { latent_size_ = setup.latent_size; }
  std::int64_t width() const override { return 1; }

  torch::Tensor encode(const latentlab::ConditionInputs& in) override {
    if (!in.images.defined()) throw latentlab::Error("conditioner 'edges' needs the images");
    torch::NoGradGuard no_grad;
    const auto grey = in.images.mean(1, true);  // [B, 1, H, W]
    const auto sobel =
        torch::tensor({-1.0F, 0.0F, 1.0F, -2.0F, 0.0F, 2.0F, -1.0F, 0.0F, 1.0F}, grey.options())
            .view({1, 1, 3, 3});
    const auto padded = F::pad(grey, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
    const auto gx = F::conv2d(padded, sobel), gy = F::conv2d(padded, sobel.transpose(2, 3));
    auto edges = (gx.pow(2) + gy.pow(2)).sqrt() * gain_;
    edges = F::adaptive_avg_pool2d(edges, F::AdaptiveAvgPool2dFuncOptions({latent_size_, latent_size_}));
    if (in.drop.defined())  // the unconditional value: no edges
      edges = edges * in.drop.logical_not().to(edges.dtype()).view({-1, 1, 1, 1}).to(edges.device());
    return edges;
  }

  torch::nn::Module& module() override { return module_; }

 private:
  double gain_;
  std::int64_t latent_size_ = 0;
  torch::nn::Module module_;  // no parameters
};

void register_factories(latentlab::Registrar& registrar) {
  registrar.add<latentlab::Conditioner>(
      "edges", "the image's Sobel edge map on the latent grid, for concatenation (edges-to-image)",
      latentlab::ParamSchema().number("gain", 0.5, "scale of the gradient magnitude",
                                      latentlab::Range::above(0)),
      [](const latentlab::Params& p) { return std::make_unique<EdgeMap>(p); });
}

}  // namespace

LATENTLAB_PLUGIN("edge-conditioner", "1.0.0", register_factories)
