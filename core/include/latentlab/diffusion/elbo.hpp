#pragma once
// The variational bound on the likelihood of latents (Rombach et al. 2022, Appendix B Eq. 10-15),
// the yardstick logged for every run whatever weighting it trained with.
//
//   -log p(z_0) <= KL(q(z_T|z_0) || N(0, I))                          prior term
//                + sum_{t=2}^{T} KL(q(z_{t-1}|z_t,z_0) || p(z_{t-1}|z_t))   Eq. 13 terms
//                - log p(z_0|z_1)                                     decoder term (t = 1)
//
// Eq. 13 with Eq. 15: the KL at step t is 1/2 (SNR(t-1)/SNR(t) - 1) ||eps - eps_hat||^2.
// SNR(0) is infinite, so t = 1 uses a Gaussian decoder p(z_0|z_1) = N(z0_hat, 1/SNR(1) I): its
// variance is the one z0_hat's error has when eps_hat errs by unit variance, and the term becomes
// 1/2 ln(2 pi / SNR(1)) + 1/2 (eps - eps_hat)^2 per dimension. This is a density of continuous
// latents, not a likelihood of discrete pixels: values can be negative.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/diffusion/objective.hpp"
#include "latentlab/export.hpp"

namespace latentlab {

// w_elbo(t) for t = 1..T: the weight on the per-dimension mean squared eps error such that
// sum_t w(t) mse_t is the t >= 1 part of the bound per dimension (in nats), without the decoder's
// constant: 1/2 (SNR(t-1)/SNR(t) - 1) for t >= 2 and 1/2 at t = 1.
LATENTLAB_API std::vector<double> elbo_weights(const Schedule& schedule);

// The decoder term's constant per dimension: 1/2 ln(2 pi / SNR(1)).
LATENTLAB_API double elbo_decoder_constant(const Schedule& schedule);

// The bound, per latent dimension, in bits (each term divided by D ln 2).
struct ElboEstimate {
  double prior_bpd = 0;      // KL(q(z_T|z_0) || N(0, I)), exact
  double diffusion_bpd = 0;  // sum over t = 2..T of the Eq. 13 terms, stratified estimate
  double decoder_bpd = 0;    // t = 1, one eps draw per sample
  double total_bpd = 0;      // the three summed
  double loss_simple = 0;    // Eq. 2 on the same draws, an unbiased estimate of E_{t~U(1..T)} mse_t
  std::int64_t samples = 0;
};

// Estimates the bound on held-out latents z0 [N, C, H, W]. For each sample, t = 2..T is split into
// `strata` equal ranges and one t is drawn in each (an unbiased, stratified estimate of the sum);
// t = 1 is always evaluated. `batch_size` bounds the model's batch. Draws come from `generator`, so a
// fixed seed gives comparable estimates across checkpoints. Runs without gradients.
LATENTLAB_API ElboEstimate estimate_elbo(const DenoiserFn& model, const ForwardProcess& process,
                                         Prediction prediction, const torch::Tensor& z0, std::int64_t strata,
                                         std::int64_t batch_size, at::Generator& generator);

}  // namespace latentlab
