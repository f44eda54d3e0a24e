#pragma once
// Conditioners: the domain-specific encoder tau_theta of Sec. 3.3. A conditioner turns what an
// example is conditioned on (a class label, a caption, a low-resolution image, a masked image) into
// what the denoiser reads: tokens [B, M, d] for cross-attention (K and V of Eq. 3's attention) or
// maps [B, C', h, w] concatenated to z_t. Each has an explicit unconditional value, which condition
// dropout trains and classifier-free guidance uses (docs/conditioning.md).
//
// The host owns data, order and devices: it fills ConditionInputs from each batch, decides which
// examples are dropped, and trains the conditioner's module() jointly with the UNet (Eq. 3) unless
// the spec freezes it. A conditioner is built, then set up once for its data, then used from one
// thread at a time.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab {

// What one batch is conditioned on. Every field is batch-first and may be empty; a conditioner reads
// the ones its needs() name.
struct ConditionInputs {
  torch::Tensor labels;               // [B] int64 class labels
  std::vector<std::string> captions;  // B captions
  torch::Tensor images;               // [B, C, H, W] in [-1, 1]: the full-resolution images
  torch::Tensor masks;                // [B, 1, H, W]: 1 where the image is to be generated (inpainting)
  // [B] bool: examples whose condition is replaced by the unconditional value (condition dropout, the
  // unconditional half of classifier-free guidance). Undefined: none.
  torch::Tensor drop;

  // B, from whichever field is given (0 when none is).
  LATENTLAB_API std::int64_t batch_size() const;
  // Rows [start, end) of every field.
  LATENTLAB_API ConditionInputs slice(std::int64_t start, std::int64_t end) const;
};

// What a conditioner reads of a batch.
enum class ConditionSource { Labels, Captions, Images };

// What a conditioner produces, and so how the UNet takes it.
enum class ConditionerOutput {
  Tokens,  // [B, M, d]: cross-attention (the UNet's context_dim is d)
  Map,     // [B, C', h, w] on the latent grid: concatenated to z_t (the UNet's in_channels grow by C')
};

LATENTLAB_API std::string to_string(ConditionerOutput output);
LATENTLAB_API std::string to_string(ConditionSource source);

// What the host tells a conditioner about its data before it builds its networks.
struct ConditionerSetup {
  std::int64_t image_channels = 0;
  std::int64_t resolution = 0;       // image side H = W
  std::int64_t latent_channels = 0;  // z_0's channels (the images' in pixel space)
  std::int64_t latent_size = 0;      // z_0's side h = H / f
  std::int64_t num_classes = 0;      // of the data's labels (0: it has none)
  std::vector<std::string> class_names;
  // The training captions, from which a tokenizer builds its vocabulary (empty without captions).
  std::vector<std::string> captions;
  // The first stage as stage 2 sees it: x [B, C, H, W] -> rescaled z [B, c, h, w] (the identity in
  // pixel space), for conditioners that condition on latents (inpainting). Not differentiable.
  std::function<torch::Tensor(const torch::Tensor&)> encode;
};

class LATENTLAB_API Conditioner {
 public:
  static constexpr const char* kKind = "conditioner";
  virtual ~Conditioner();

  virtual ConditionerOutput output() const = 0;
  virtual ConditionSource source() const = 0;
  // The task metrics the eval stage records for samples conditioned this way: "class" (the classifier's
  // accuracy on the requested class), "text" (the same for the class a caption names),
  // "super_resolution" (PSNR and SSIM against the high-resolution images), "inpainting" (PSNR and SSIM
  // within the mask), or empty (FID and the other distribution metrics only).
  virtual std::string task() const { return {}; }

  // Builds the networks for this data (the vocabulary of the captions, the class table). Called once
  // before anything below except load_state(). Throws ConfigError naming the parameter when the data
  // lacks what it needs (no labels, no captions, an image side the factor does not divide).
  virtual void setup(const ConditionerSetup& setup) = 0;

  // Tokens: d, the width of each token (the UNet's context_dim). Map: C', its channels.
  virtual std::int64_t width() const = 0;
  // Tokens: M, the number of tokens per example. Map: 0.
  virtual std::int64_t tokens() const { return 0; }

  // Draws what the conditioner derives from the batch itself with `generator` (the masked
  // conditioner's masks), into `inputs`, so the host sees them too (the inpainting metrics need the
  // masks). Default: nothing.
  virtual void complete(ConditionInputs& inputs, at::Generator& generator) const {
    (void)inputs;
    (void)generator;
  }

  // Tokens [B, M, d] or maps [B, C', h, w] on the device of module() (the inputs may be on the CPU).
  // Rows with inputs.drop set get the unconditional value. Differentiable in module()'s parameters.
  virtual torch::Tensor encode(const ConditionInputs& inputs) = 0;

  // The trainable networks; a conditioner without parameters returns an empty module.
  virtual torch::nn::Module& module() = 0;

  // What the conditioner needs besides module()'s tensors to be rebuilt (the vocabulary), as text
  // stored in the denoiser's files. Default: nothing.
  virtual std::string state() const { return {}; }
  // Restores state() of a trained conditioner; called before setup(), which then keeps it (the
  // vocabulary it was trained with, not one built anew). Throws Error when the text does not parse.
  virtual void load_state(const std::string& state) { (void)state; }
};

}  // namespace latentlab
