#pragma once
// LPIPS (Zhang et al. 2018), the perceptual term of the stage-1 objective (Eq. 25), as the reference
// uses it (taming/modules/losses/lpips.py): VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3 and
// relu5_3, unit-normalised over channels, squared differences weighted per channel by the learned
// 1x1 `lin` layers, averaged over space and summed over layers. Names follow the reference
// (`net.slice1.0.weight`, `lin0.model.1.weight`), so its weights load by name.
//
// Nothing is downloaded: the weights come from files the user has (see load()).
#include <cstdint>
#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

class LATENTLAB_API LpipsImpl : public torch::nn::Module {
 public:
  // use_lin = false gives LPIPS's uncalibrated baseline (`lpips=False`): channels weighted equally.
  explicit LpipsImpl(bool use_lin = true);

  // Reads the weights from PyTorch files (torch.save format), merged in order, with keys in any of the
  // layouts researchers have: a reference LDM/taming checkpoint (`loss.perceptual_loss.net.slice1.0.weight`,
  // `loss.perceptual_loss.lin0.model.1.weight`), taming's `vgg.pth` (`lin0.model.1.weight`) together
  // with torchvision's `vgg16-397923af.pth` (`features.0.weight`), or a LatentLab export (`net.*`,
  // `lin*`). Throws Error naming the missing or mis-shaped keys and where to get the files. Freezes
  // the network (no gradients to its weights; gradients still flow to the inputs).
  void load(const std::vector<std::filesystem::path>& files);

  // x, y: [B, C, H, W] in [-1, 1], C = 1 (repeated to RGB) or 3 -> distance [B, 1, 1, 1]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);

  // The parameter names load() needs.
  std::vector<std::string> required_keys() const;

 private:
  std::vector<torch::Tensor> features(const torch::Tensor& x);

  bool use_lin_;
  std::vector<std::pair<std::int64_t, torch::nn::Conv2d>> convs_;  // (VGG16 feature index, layer)
  std::vector<torch::nn::Conv2d> lins_;
  torch::Tensor shift_, scale_;
};
TORCH_MODULE(Lpips);

}  // namespace latentlab::nn
