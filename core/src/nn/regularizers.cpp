#include "latentlab/nn/regularizers.hpp"

#include "latentlab/precision.hpp"
#include "latentlab/sampler.hpp"

namespace latentlab::nn {

DiagonalGaussian::DiagonalGaussian(const torch::Tensor& moments) {
  const auto halves = moments.chunk(2, 1);
  mean = halves[0];
  logvar = halves[1].clamp(-30.0, 20.0);
  std = torch::exp(0.5 * logvar);
}

torch::Tensor DiagonalGaussian::sample(at::Generator& generator) const {
  return mean + std * standard_normal(mean, generator);
}

torch::Tensor DiagonalGaussian::kl() const {
  // KL(N(mu, var) || N(0, I)) = 1/2 sum(mu^2 + var - 1 - log var), per example.
  return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum({1, 2, 3});
}

VectorQuantizerImpl::VectorQuantizerImpl(const VectorQuantizerOptions& options) : options_(options) {
  embedding_ = register_module("embedding", torch::nn::Embedding(options.n_embed, options.embed_dim));
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / static_cast<double>(options.n_embed);
  embedding_->weight.uniform_(-bound, bound);  // the reference's initialisation
  if (options.ema) {
    embedding_->weight.requires_grad_(false);  // updated by moving averages, not by the optimiser
    cluster_size_ = register_buffer("cluster_size", torch::zeros({options.n_embed}));
    embed_avg_ = register_buffer("embed_avg", embedding_->weight.clone());
  }
  if (options.restart_every > 0) {
    usage_ = register_buffer("usage", torch::zeros({options.n_embed}));
    restart_step_ = register_buffer("restart_step", torch::zeros({}, torch::kInt64));
  }
}

torch::Tensor VectorQuantizerImpl::indices(const torch::Tensor& z) {
  // z: [B, c, h, w] -> [B, h, w]; nearest code in Euclidean distance (no graph: argmin has no gradient).
  torch::NoGradGuard no_grad;
  const AutocastGuard fp32(z.device(), Precision::fp32);  // distances in float32 (docs/precision.md)
  const auto B = z.size(0), h = z.size(2), w = z.size(3);
  const auto flat = z.permute({0, 2, 3, 1}).reshape({-1, options_.embed_dim});  // [N, c]
  const auto& codes = embedding_->weight;                                       // [K, c]
  const auto distance = flat.pow(2).sum(1, true) + codes.pow(2).sum(1) - 2.0 * flat.matmul(codes.t());
  return distance.argmin(1).view({B, h, w});
}

torch::Tensor VectorQuantizerImpl::lookup(const torch::Tensor& indices) {
  // [B, h, w] -> [B, c, h, w]. index_select rather than embedding(): its backward does not keep the
  // codebook, which the EMA and restart updates change in place after the lookup.
  const auto B = indices.size(0), h = indices.size(1), w = indices.size(2);
  return embedding_->weight.index_select(0, indices.reshape({-1})).view({B, h, w, -1}).permute({0, 3, 1, 2});
}

QuantizeResult VectorQuantizerImpl::forward(const torch::Tensor& z, at::Generator& generator) {
  const AutocastGuard fp32(z.device(), Precision::fp32);  // the codebook and its losses in float32
  QuantizeResult out;
  out.indices = indices(z.detach());
  const auto K = options_.n_embed;
  const auto flat_indices = out.indices.reshape({-1});
  const auto counts = torch::bincount(flat_indices, {}, K).to(z.scalar_type());  // [K]
  const auto z_q = lookup(out.indices);
  // The codebook moves after this batch is quantised (EMA statistics, restarts), as in taming's EMA
  // quantiser; the losses below use the codes the batch saw.
  if (is_training()) update_codebook(z.detach(), flat_indices, counts, generator);
  // Commitment beta ||z - sg[e]||^2 and codebook ||sg[z] - e||^2 (van den Oord et al. 2017). The
  // reference's default `legacy` quantiser puts beta on the codebook term instead; `legacy_loss` does too.
  const auto commitment = (z - z_q.detach()).pow(2).mean();
  const auto codebook = (z.detach() - z_q).pow(2).mean();
  if (options_.ema)
    out.loss = options_.beta * commitment;  // the codebook follows moving averages instead
  else if (options_.legacy_loss)
    out.loss = commitment + options_.beta * codebook;
  else
    out.loss = codebook + options_.beta * commitment;
  out.quantized = z + (z_q - z).detach();  // straight-through: the decoder's gradient reaches the encoder
  out.perplexity = perplexity(counts).detach();
  out.usage = (counts > 0).to(torch::kFloat64).mean().detach();
  return out;
}

void VectorQuantizerImpl::update_codebook(const torch::Tensor& z, const torch::Tensor& flat_indices,
                                          const torch::Tensor& counts, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const auto K = options_.n_embed;
  auto& codes = embedding_->weight;
  const auto flat = z.permute({0, 2, 3, 1}).reshape({-1, options_.embed_dim});  // [N, c]
  if (options_.ema) {
    const double d = options_.ema_decay;
    const auto sums = torch::zeros_like(embed_avg_).index_add_(0, flat_indices, flat);  // [K, c]
    cluster_size_.mul_(d).add_(counts, 1.0 - d);
    embed_avg_.mul_(d).add_(sums, 1.0 - d);
    // Laplace smoothing keeps unused codes finite (Oord et al. 2017, Appendix A.1).
    const auto n = cluster_size_.sum();
    const auto smoothed = (cluster_size_ + 1e-5) / (n + static_cast<double>(K) * 1e-5) * n;
    codes.copy_(embed_avg_ / smoothed.unsqueeze(1));
  }
  if (options_.restart_every > 0) {
    usage_.add_(counts);
    restart_step_.add_(1);
    if (restart_step_.item<std::int64_t>() % options_.restart_every == 0) {
      // Codes no latent picked since the last check move onto random latents of this batch.
      const auto dead = (usage_ == 0).nonzero().view({-1});
      if (dead.numel() > 0) {
        const auto picks =
            torch::randint(flat.size(0), {dead.size(0)}, generator, torch::kInt64).to(flat.device());
        const auto fresh = flat.index_select(0, picks);
        codes.index_copy_(0, dead, fresh);
        if (options_.ema) {
          embed_avg_.index_copy_(0, dead, fresh);
          cluster_size_.index_fill_(0, dead, 1.0);
        }
      }
      usage_.zero_();
    }
  }
}

torch::Tensor perplexity(const torch::Tensor& counts) {
  const auto p = counts / counts.sum();
  return torch::exp(-(p * torch::log(p + 1e-10)).sum());
}

}  // namespace latentlab::nn
