// The image conditioners, concatenated to z_t (Sec. 3.3, the paper's super-resolution and inpainting
// models, Sec. 4.4-4.5):
//   `lowres`: the image downsampled by k (antialiased bicubic), resized to the latent grid;
//   `masked`: the latent of the masked image E(x * (1 - m)) and the mask at latent resolution.
// Neither has parameters; the unconditional value is zeros (no image, no mask).
#include <functional>
#include <string>
#include <vector>

#include "conditioners.hpp"
#include "latentlab/conditioning/masks.hpp"
#include "latentlab/error.hpp"

namespace latentlab::conditioners {
namespace {

namespace F = torch::nn::functional;

torch::Tensor resize(const torch::Tensor& x, std::int64_t side, bool antialias) {
  if (x.size(-1) == side && x.size(-2) == side) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<std::int64_t>{side, side})
                               .mode(torch::kBicubic)
                               .align_corners(false)
                               .antialias(antialias));
}

torch::Tensor zero_dropped(torch::Tensor map, const torch::Tensor& drop) {
  if (!drop.defined()) return map;
  const auto keep = drop_rows(drop, map.size(0), map.device()).logical_not().to(map.dtype());
  return map * keep.view({-1, 1, 1, 1});
}

class LowResolution final : public Conditioner {
 public:
  explicit LowResolution(const Params& params) : factor_(params.get_int("factor")) {}

  ConditionerOutput output() const override { return ConditionerOutput::Map; }
  ConditionSource source() const override { return ConditionSource::Images; }
  std::string task() const override { return "super_resolution"; }

  void setup(const ConditionerSetup& setup) override {
    if (setup.resolution % factor_)
      throw ConfigError("factor: " + std::to_string(factor_) + " does not divide the image side " +
                        std::to_string(setup.resolution));
    channels_ = setup.image_channels;
    latent_size_ = setup.latent_size;
    resolution_ = setup.resolution;
  }

  std::int64_t width() const override { return channels_; }

  torch::Tensor encode(const ConditionInputs& inputs) override {
    if (channels_ == 0) throw Error("conditioner 'lowres': encode before setup");
    if (!inputs.images.defined()) throw Error("conditioner 'lowres' needs the images; the batch has none");
    if (inputs.images.size(-1) != resolution_)
      throw Error("conditioner 'lowres': images of side " + std::to_string(inputs.images.size(-1)) +
                  ", set up for " + std::to_string(resolution_));
    torch::NoGradGuard no_grad;
    const auto side = resolution_ / factor_;
    const auto low = resize(inputs.images, side, true).clamp(-1.0, 1.0);
    // Up to the latent grid (k > f), or down to it, antialiased again (k < f); clipped after bicubic's
    // overshoot.
    return zero_dropped(resize(low, latent_size_, latent_size_ < side).clamp(-1.0, 1.0), inputs.drop);
  }

  torch::nn::Module& module() override { return module_; }

 private:
  std::int64_t factor_, channels_ = 0, latent_size_ = 0, resolution_ = 0;
  torch::nn::Module module_;
};

class MaskedImage final : public Conditioner {
 public:
  explicit MaskedImage(const Params& params) : shape_(mask_shape_from_string(params.get_string("masks"))) {}

  ConditionerOutput output() const override { return ConditionerOutput::Map; }
  ConditionSource source() const override { return ConditionSource::Images; }
  std::string task() const override { return "inpainting"; }

  void setup(const ConditionerSetup& setup) override {
    if (!setup.encode) throw Error("conditioner 'masked': the host gave no first-stage encoder");
    if (setup.latent_size == 0 || setup.resolution % setup.latent_size)
      throw Error("conditioner 'masked': the latent side must divide the image side");
    encode_ = setup.encode;
    latent_channels_ = setup.latent_channels;
    factor_ = setup.resolution / setup.latent_size;
    resolution_ = setup.resolution;
  }

  std::int64_t width() const override { return latent_channels_ + 1; }

  void complete(ConditionInputs& inputs, at::Generator& generator) const override {
    if (inputs.masks.defined() || !inputs.images.defined()) return;
    inputs.masks =
        make_masks(shape_, inputs.images.size(0), inputs.images.size(2), inputs.images.size(3), generator)
            .to(inputs.images.device());
  }

  torch::Tensor encode(const ConditionInputs& inputs) override {
    if (!encode_) throw Error("conditioner 'masked': encode before setup");
    if (!inputs.images.defined() || !inputs.masks.defined())
      throw Error(
          "conditioner 'masked' needs the images and their masks; the host draws masks with complete()");
    if (inputs.images.size(-1) != resolution_)
      throw Error("conditioner 'masked': images of side " + std::to_string(inputs.images.size(-1)) +
                  ", set up for " + std::to_string(resolution_));
    torch::NoGradGuard no_grad;
    const auto masks = inputs.masks.to(inputs.images.device(), inputs.images.dtype());
    // Masked pixels become 0, the middle of [-1, 1].
    const auto z = encode_(inputs.images * (1.0 - masks));
    // A latent cell is to be generated when any of its f x f pixels is.
    const auto cells = factor_ == 1 ? masks : F::max_pool2d(masks, F::MaxPool2dFuncOptions(factor_));
    return zero_dropped(torch::cat({z, cells.to(z.dtype())}, 1), inputs.drop);
  }

  torch::nn::Module& module() override { return module_; }

 private:
  MaskShape shape_;
  std::function<torch::Tensor(const torch::Tensor&)> encode_;
  std::int64_t latent_channels_ = 0, factor_ = 1, resolution_ = 0;
  torch::nn::Module module_;
};

}  // namespace

ParamSchema lowres_schema() {
  return ParamSchema().integer("factor", 4, "k: the downsampling factor of the low-resolution input",
                               Range::at_least(1));
}

std::unique_ptr<Conditioner> make_lowres(const Params& params) {
  return std::make_unique<LowResolution>(params);
}

ParamSchema masked_schema() {
  return ParamSchema().choice("masks", "mixed", {"boxes", "strokes", "mixed"},
                              "the masks drawn for training and evaluation: rectangles, brush strokes, or "
                              "either with equal probability");
}

std::unique_ptr<Conditioner> make_masked(const Params& params) {
  return std::make_unique<MaskedImage>(params);
}

}  // namespace latentlab::conditioners
