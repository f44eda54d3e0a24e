#include "latentlab/nn/state_dict.hpp"

#include <map>
#include <set>

#include "latentlab/strings.hpp"

namespace latentlab::nn {

std::string shape_text(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

NamedTensors state_dict(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

std::string StateDictReport::summary(std::size_t limit) const {
  std::string out;
  const auto list = [&](const char* title, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    std::vector<std::string> shown(keys.begin(),
                                   keys.begin() + static_cast<std::ptrdiff_t>(std::min(limit, keys.size())));
    if (keys.size() > limit) shown.push_back("... (" + std::to_string(keys.size() - limit) + " more)");
    out += std::string(out.empty() ? "" : "\n") + title + " (" + std::to_string(keys.size()) +
           "): " + join(shown);
  };
  list("mis-shaped keys", mismatched);
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  return out;
}

StateDictReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors) {
  StateDictReport report;
  std::map<std::string, torch::Tensor> targets;
  for (auto& [key, tensor] : state_dict(module)) targets[key] = tensor;
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [key, tensor] : tensors) {
    const auto at = targets.find(key);
    if (at == targets.end()) {
      report.unexpected.push_back(key);
      continue;
    }
    seen.insert(key);
    if (at->second.sizes() != tensor.sizes()) {
      report.mismatched.push_back(key + ": " + shape_text(tensor.sizes()) + " in the file, " +
                                  shape_text(at->second.sizes()) + " in the model");
      continue;
    }
    at->second.copy_(tensor.to(at->second.device(), at->second.scalar_type()));
    ++report.loaded;
  }
  for (const auto& [key, tensor] : state_dict(module))
    if (!seen.count(key)) report.missing.push_back(key);
  return report;
}

}  // namespace latentlab::nn
