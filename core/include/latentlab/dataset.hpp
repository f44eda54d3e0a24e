#pragma once
// Datasets: images with optional class labels, addressed by index (the host owns order and batching).
//
// Images are float32 in [-1, 1], shape [C, H, W] with H = W = resolution(); examples may have a class
// label and a caption (the conditioning data of docs/conditioning.md). Implementations decode
// lazily or up front as they like, but must check at construction everything that can be checked
// cheaply (files exist, headers parse, counts agree) so that bad input fails before training starts.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab {

// A batch of examples. labels is undefined when the dataset has no labels, captions empty when it has
// no captions.
struct Batch {
  torch::Tensor images;               // [B, C, H, W] float32 in [-1, 1]
  torch::Tensor labels;               // [B] int64 in [0, num_classes), or undefined
  std::vector<std::string> captions;  // B captions, or empty
};

class LATENTLAB_API Dataset {
 public:
  static constexpr const char* kKind = "dataset";
  virtual ~Dataset();

  virtual std::int64_t size() const = 0;
  virtual std::int64_t channels() const = 0;
  virtual std::int64_t resolution() const = 0;
  // Number of classes; 0 when the dataset has no labels.
  virtual std::int64_t num_classes() const = 0;
  // Class names for the labels (size num_classes()), when known; may be empty.
  virtual std::vector<std::string> class_names() const { return {}; }
  // Whether every example has a caption (get_batch then fills Batch::captions).
  virtual bool has_captions() const { return false; }
  // The caption of example `index`, when has_captions(); the default throws Error.
  virtual std::string caption(std::int64_t index) const;

  // The examples at `indices` (each in [0, size())), in that order. Throws Error naming the file and
  // the problem when an example cannot be read.
  virtual Batch get_batch(const std::vector<std::int64_t>& indices) const = 0;
};

}  // namespace latentlab
