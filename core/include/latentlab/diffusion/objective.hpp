#pragma once
// The stage-2 training objective (Eq. 2 and its reweightings) and how t is drawn for it.
#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "latentlab/diffusion/forward_process.hpp"
#include "latentlab/export.hpp"
#include "latentlab/weighting.hpp"

namespace latentlab {

// The network as the objective sees it: the raw output (in the model's parameterisation) for noisy
// latents z_t [B, C, H, W] at steps t [B] int64 in 1..T.
using DenoiserFn = std::function<torch::Tensor(const torch::Tensor& z_t, const torch::Tensor& t)>;

// Draws t in 1..T from a proposal p(t) and returns the importance weights 1/(T p(t)) that keep the
// objective's expectation equal to the uniform one. For LossHistory it keeps, per t, a running mean
// of the squared weighted loss (decay 0.9, about the last 10 values, as Nichol & Dhariwal 2021 keep a
// history of 10) and stays uniform until every t has been seen `warmup` times.
class LATENTLAB_API TimestepSampler {
 public:
  TimestepSampler(TimestepSampling mode, std::vector<double> weights, std::int64_t warmup = 10,
                  double uniform_mix = 1e-3);

  // p(t) for t = 1..T (element t - 1), float64 [T].
  torch::Tensor proposal() const;
  // t: [B] int64 in 1..T, drawn from `generator`.
  torch::Tensor sample(std::int64_t batch, at::Generator& generator) const;
  // 1/(T p(t)) for t: [B] -> [B] float64.
  torch::Tensor importance(const torch::Tensor& t) const;
  // Both at once, from one proposal (what the training step uses): t [B] int64, importance [B] float64.
  struct Draw {
    torch::Tensor t, importance;
  };
  Draw draw(std::int64_t batch, at::Generator& generator) const;
  // Whether observe() uses the losses (only LossHistory does).
  bool observes() const { return mode_ == TimestepSampling::LossHistory; }
  // Records the weighted per-sample losses w(t) mse_t ([B]) at t ([B]); used by LossHistory.
  void observe(const torch::Tensor& t, const torch::Tensor& weighted_loss);

  // State for exact resumption: {loss-square history [T], counts [T]}.
  std::vector<torch::Tensor> state() const;
  void load_state(const std::vector<torch::Tensor>& state);

 private:
  TimestepSampling mode_;
  torch::Tensor weights_;      // [T] float64
  torch::Tensor mean_square_;  // [T] float64, LossHistory
  torch::Tensor counts_;       // [T] int64, LossHistory
  std::int64_t warmup_;
  double uniform_mix_;
};

// One evaluation of the objective on a batch.
struct ObjectiveTerms {
  torch::Tensor loss;         // scalar: mean over the batch of w(t)/(T p(t)) mse_t (backpropagate this)
  torch::Tensor loss_simple;  // scalar, detached: Eq. 2 on the same draws (mean of mse_t / (T p(t)))
  torch::Tensor t;            // [B] the steps drawn
  torch::Tensor mse;          // [B] detached per-sample mean squared eps error
};

class LATENTLAB_API DenoisingObjective {
 public:
  DenoisingObjective(const Schedule& schedule, const LossWeighting& weighting, Prediction prediction);

  // Draws t and eps from `generator` (a CPU generator; the draws are moved to z0's device), forms z_t
  // (Eq. 4), runs the model and returns the weighted eps loss. z0: [B, C, H, W] on any device.
  ObjectiveTerms compute(const DenoiserFn& model, const torch::Tensor& z0, at::Generator& generator);
  // Feeds the drawn losses back to an adaptive proposal (call after compute, once per batch).
  void observe(const ObjectiveTerms& terms);

  const ForwardProcess& process() const { return process_; }
  Prediction prediction() const { return prediction_; }
  TimestepSampler& sampler() { return sampler_; }
  const TimestepSampler& sampler() const { return sampler_; }

 private:
  DenoisingObjective(const Schedule& schedule, TimestepSampling sampling, const std::vector<double>& weights,
                     Prediction prediction);

  ForwardProcess process_;
  Prediction prediction_;
  torch::Tensor weights_;  // [T] float64, w(t) at t - 1
  TimestepSampler sampler_;
};

// Checks that a weighting returned T finite, non-negative weights; throws Error naming the plugin.
LATENTLAB_API void check_weights(const std::vector<double>& weights, std::int64_t num_steps,
                                 const std::string& owner);

}  // namespace latentlab
