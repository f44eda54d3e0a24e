#pragma once
// Feature extractors: images -> feature vectors for FID, KID and precision/recall, and class logits
// for the Inception Score.
//
// Input is uint8 pixels, as torch-fidelity and the ADM evaluation suite take them: metrics are defined
// on 8-bit images, so samples in [-1, 1] are quantised first (round((x + 1) 127.5)). Each extractor
// does its own preprocessing (resizing, channel conversion, normalisation) and says what it does in
// fingerprint(), which keys cached reference statistics: two extractors with the same fingerprint must
// give the same features.
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab {

struct FeatureOutput {
  torch::Tensor features;  // [B, D] float32: Inception's pool3, a classifier's penultimate layer
  torch::Tensor logits;    // [B, K] float32 class logits for the Inception Score; undefined if none
};

class LATENTLAB_API FeatureExtractor {
 public:
  static constexpr const char* kKind = "features";
  virtual ~FeatureExtractor();

  // D: the width of `features`.
  virtual std::int64_t feature_dim() const = 0;
  // K: the number of logits; 0 when the extractor has none (no Inception Score).
  virtual std::int64_t num_logits() const = 0;
  // What determines the features, as a short stable text: the network, a hash of its weights, the
  // preprocessing. Cached statistics are keyed by it.
  virtual std::string fingerprint() const = 0;

  // images: [B, C, H, W] uint8, C = 1 or 3 (grey images are repeated to RGB where the network wants
  // RGB, and vice versa), any H and W -> features [B, D] (and logits [B, K]) on the CPU. Deterministic:
  // the network runs in eval mode without gradients.
  virtual FeatureOutput extract(const torch::Tensor& images) = 0;

  // Moves the network to `device` (inputs are moved there by extract()).
  virtual void to(const torch::Device& device) = 0;
};

}  // namespace latentlab
