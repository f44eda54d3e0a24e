#pragma once
// Stage 1 (Sec. 3.1): a perceptual-compression autoencoder. E maps an image x [B, C, H, W] to a latent
// z [B, c, H/f, W/f]; D maps it back. f is the downsampling factor the paper sweeps (Sec. 4.1).
//
// The autoencoder owns its networks and its regulariser (KL or VQ); the rest of the stage-1 objective
// (Eq. 25: reconstruction, perceptual term, patch discriminator) lives in the host's trainer, so every
// autoencoder is trained with the same loss machinery. Module and parameter names follow the reference
// LDM state-dict keys (`encoder.*`, `decoder.*`, `quant_conv.*`, `post_quant_conv.*`,
// `quantize.embedding.weight`), so reference checkpoints load by name.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab {

// What one training pass through the autoencoder gives the stage-1 loss.
struct AutoencoderOutput {
  torch::Tensor reconstruction;  // x_hat [B, C, H, W]
  // The regularisation term L_reg of Eq. 25, already weighted by the autoencoder's own weight
  // (kl_weight for KL, 1 for VQ's codebook + commitment loss); a scalar, 0 when there is none.
  torch::Tensor regularizer;
  // Scalars to log, detached: "kl" (KL per example), "codebook_loss", "perplexity", "codebook_usage".
  std::vector<std::pair<std::string, torch::Tensor>> logs;
};

class LATENTLAB_API Autoencoder {
 public:
  static constexpr const char* kKind = "autoencoder";
  virtual ~Autoencoder();

  // f: H / h of the latent.
  virtual std::int64_t downsampling_factor() const = 0;
  // c: the latent's channels.
  virtual std::int64_t latent_channels() const = 0;
  // C: the image channels it encodes and decodes.
  virtual std::int64_t image_channels() const = 0;
  // "kl", "vq" or "none": which regulariser, and so which reference loss conventions apply.
  virtual std::string regularizer() const = 0;

  // x: [B, C, H, W] in [-1, 1], H and W divisible by f -> z: [B, c, H/f, W/f], the latent stage 2 sees
  // (before rescaling). KL: a posterior sample drawn from `generator` (the reference's choice) or the
  // posterior mean, as configured; VQ: the pre-quantisation latent, or its quantisation when configured
  // to quantise at encode time (decode quantises either way).
  virtual torch::Tensor encode(const torch::Tensor& x, at::Generator& generator) = 0;
  // The deterministic latent of x: KL the posterior's mode (its mean), VQ what encode gives (it draws
  // nothing). What a conditioner that encodes images with the first stage uses (inpainting's masked
  // image), as the reference's cond_stage encoding takes the mode. Default: encode with a CPU
  // generator seeded 0: deterministic, and right for an autoencoder that draws nothing; one with a
  // posterior (or that draws on the device) overrides it, as `kl` does.
  virtual torch::Tensor encode_mode(const torch::Tensor& x);
  // z: [B, c, h, w] -> x_hat: [B, C, h f, w f]. VQ quantises z first.
  virtual torch::Tensor decode(const torch::Tensor& z) = 0;
  // The deterministic reconstruction D(E(x)) used for reconstruction metrics: KL decodes the posterior
  // mean, VQ the quantised latent. x: [B, C, H, W] -> [B, C, H, W].
  virtual torch::Tensor reconstruct(const torch::Tensor& x) = 0;
  // The training pass: encode (KL: a posterior sample drawn from `generator`; VQ: quantised with
  // straight-through gradients), decode, and the regulariser. x: [B, C, H, W].
  virtual AutoencoderOutput forward(const torch::Tensor& x, at::Generator& generator) = 0;
  // VQ: the codebook index of every latent position, x: [B, C, H, W] -> [B, H/f, W/f] int64, and the
  // codebook size; others: undefined and 0.
  virtual torch::Tensor code_indices(const torch::Tensor& x) {
    (void)x;
    return {};
  }
  virtual std::int64_t codebook_size() const { return 0; }

  // The networks: parameters, buffers, train()/eval(), to(device), save()/load().
  virtual torch::nn::Module& module() = 0;
  // The decoder's last layer weight (`decoder.conv_out.weight`), for the adaptive GAN weight of
  // Eq. 25; undefined when there is none (nothing to train).
  virtual torch::Tensor last_layer() = 0;
};

}  // namespace latentlab
