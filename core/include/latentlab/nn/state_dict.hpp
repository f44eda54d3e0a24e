#pragma once
// Loading a flat state dict (dotted key -> tensor, as PyTorch's `state_dict()`) into a module by name,
// with a report of what did not fit, the way `load_state_dict(strict=False)` reports it.
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct LATENTLAB_API StateDictReport {
  std::size_t loaded = 0;
  std::vector<std::string> missing;     // the module's keys the state dict lacks
  std::vector<std::string> unexpected;  // the state dict's keys the module lacks
  std::vector<std::string> mismatched;  // "key: [file shape] in the file, [module shape] in the model"

  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // One paragraph per non-empty list, each naming up to `limit` keys.
  std::string summary(std::size_t limit = 8) const;
};

// "[3, 64, 3, 3]"
LATENTLAB_API std::string shape_text(c10::IntArrayRef sizes);

// Copies each tensor whose key names a parameter or buffer of `module` (converted to its dtype and
// device); mismatched shapes are reported and left untouched.
LATENTLAB_API StateDictReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors);

// The module's parameters and buffers by dotted name, in registration order.
LATENTLAB_API NamedTensors state_dict(const torch::nn::Module& module);

}  // namespace latentlab::nn
