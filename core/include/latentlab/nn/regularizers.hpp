#pragma once
// The two regularisers of the first stage (Sec. 3.1): a diagonal Gaussian posterior with a KL penalty
// towards N(0, I), and a vector quantiser (van den Oord et al. 2017; taming's VectorQuantizer2).
#include <cstdint>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

// The reference DiagonalGaussianDistribution: moments [B, 2c, h, w] split into mean and log-variance,
// the latter clamped to [-30, 20].
struct LATENTLAB_API DiagonalGaussian {
  explicit DiagonalGaussian(const torch::Tensor& moments);
  torch::Tensor sample(at::Generator& generator) const;  // [B, c, h, w]
  torch::Tensor kl() const;                              // KL to N(0, I) per example: [B]
  torch::Tensor mean, logvar, std;
};

struct VectorQuantizerOptions {
  std::int64_t n_embed = 8192, embed_dim = 3;
  double beta = 0.25;
  bool legacy_loss = false;
  bool ema = false;
  double ema_decay = 0.99;
  std::int64_t restart_every = 0;
};

struct QuantizeResult {
  torch::Tensor quantized;   // z + sg[z_q - z]: [B, c, h, w]
  torch::Tensor loss;        // codebook + beta commitment (scalar)
  torch::Tensor indices;     // [B, h, w] int64
  torch::Tensor perplexity;  // exp(entropy of the batch's code frequencies)
  torch::Tensor usage;       // fraction of the codebook the batch used
};

// taming's VectorQuantizer2 (`quantize.embedding.weight`), plus EMA statistics (`cluster_size`,
// `embed_avg`) and restart counters (`usage`, `restart_step`) when those are enabled.
class LATENTLAB_API VectorQuantizerImpl : public torch::nn::Module {
 public:
  explicit VectorQuantizerImpl(const VectorQuantizerOptions& options);
  // z: [B, c, h, w]. In training mode also updates the codebook (EMA, restarts) from `generator`.
  QuantizeResult forward(const torch::Tensor& z, at::Generator& generator);
  torch::Tensor indices(const torch::Tensor& z);       // nearest code: [B, c, h, w] -> [B, h, w]
  torch::Tensor lookup(const torch::Tensor& indices);  // [B, h, w] -> [B, c, h, w]
  const VectorQuantizerOptions& options() const { return options_; }

 private:
  void update_codebook(const torch::Tensor& z, const torch::Tensor& flat_indices, const torch::Tensor& counts,
                       at::Generator& generator);

  VectorQuantizerOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::Tensor cluster_size_, embed_avg_, usage_, restart_step_;
};
TORCH_MODULE(VectorQuantizer);

// exp(entropy) of code frequencies: the number of equally used codes that would give them.
// counts: [K] -> scalar
LATENTLAB_API torch::Tensor perplexity(const torch::Tensor& counts);

}  // namespace latentlab::nn
