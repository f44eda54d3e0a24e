#pragma once
// Guiders: they wrap the model's noise prediction into the eps_hat(z_t, t) a sampler calls
// (classifier-free guidance, post-hoc guidance of Appendix C Eq. 16-17; docs/samplers.md).
//
// The host builds GuidanceInputs from the model, the conditioning, the decoder and the guidance
// target; the guider returns the function the sampler gets. A guider is built once per `sample` call
// and may be used from one thread at a time.
#include <cstdint>
#include <functional>

#include <torch/torch.h>

#include "latentlab/export.hpp"
#include "latentlab/sampler.hpp"
#include "latentlab/schedule.hpp"

namespace latentlab {

// What the denoiser is conditioned on; every tensor is batch-first and may be undefined.
struct Conditioning {
  torch::Tensor context;  // [B, M, d] cross-attention tokens
  torch::Tensor concat;   // [B, C', H, W] channels concatenated to z_t
  torch::Tensor y;        // [B] int64 class labels

  bool empty() const { return !context.defined() && !concat.defined() && !y.defined(); }
};

// Both along the batch: [a; b]. Tensors defined in one must be defined in the other.
LATENTLAB_API Conditioning concat_batches(const Conditioning& a, const Conditioning& b);

// The model's noise prediction: z_t [B, C, H, W] at step t (1..T) with conditioning of batch B ->
// eps_hat [B, C, H, W]. Differentiable in z_t when called with grad mode on.
using ModelFn =
    std::function<torch::Tensor(const torch::Tensor& z_t, std::int64_t t, const Conditioning& cond)>;
// The first-stage decoder D: z [B, C, h, w] -> x [B, 3, H, W], differentiable (the identity in pixel
// space).
using DecoderFn = std::function<torch::Tensor(const torch::Tensor& z)>;

struct GuidanceInputs {
  ModelFn model;
  const Schedule* schedule = nullptr;
  Conditioning cond;    // the conditioning of the samples
  Conditioning uncond;  // the "no conditioning" value with the same batch (classifier-free guidance)
  DecoderFn decode;     // for guidance in image space
  // Post-hoc guidance: y and, for the `mask` transform, which pixels are known (1) -- [B or 1, ...].
  torch::Tensor target;
  torch::Tensor mask;
};

class LATENTLAB_API Guider {
 public:
  static constexpr const char* kKind = "guider";
  virtual ~Guider();

  // Throws ConfigError when the inputs lack what this guider needs (a target, an unconditional
  // value, ...), before any sampling starts.
  virtual EpsFn guide(GuidanceInputs inputs) const = 0;
};

}  // namespace latentlab
