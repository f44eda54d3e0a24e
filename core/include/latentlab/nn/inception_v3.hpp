#pragma once
// The FID Inception v3: the network of TensorFlow's 2015-12-05 Inception graph as pytorch-fid and
// torch-fidelity port it, with the graph's quirks that plain torchvision Inception v3 lacks:
// - the pooling branch of the A, C and first E blocks averages without counting padding;
// - the pooling branch of the last E block (Mixed_7c) takes a 3x3 max, not an average;
// - batch norm with eps 1e-3; 1008 classes.
// Module names equal the keys of pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (and of
// torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`), so the file loads by name.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab::nn {

// How uint8 images become the network's [-1, 1] input of 299 x 299.
enum class InceptionPreprocess {
  // torch-fidelity (the paper's numbers): float pixels in [0, 255], TensorFlow 1.x bilinear resize
  // (source coordinate = output coordinate * in / out, no half-pixel offset), then (x - 128) / 128.
  kTorchFidelity,
  // pytorch-fid: x / 255, PyTorch bilinear resize with align_corners = false, then 2 x - 1.
  kPytorchFid,
};
// "torch-fidelity" / "pytorch-fid" <-> enum; parse throws ConfigError naming the choices.
LATENTLAB_API InceptionPreprocess parse_inception_preprocess(const std::string& name);
LATENTLAB_API std::string to_string(InceptionPreprocess mode);

// TensorFlow 1.x `resize_bilinear` with align_corners = false and half_pixel_centers = false: output
// pixel i samples the input at i * in / out, between floor() and the next pixel (clamped at the edge).
// x: [B, C, H, W] float -> [B, C, height, width]
LATENTLAB_API torch::Tensor resize_bilinear_tf1(const torch::Tensor& x, std::int64_t height,
                                                std::int64_t width);

// images: [B, 3, H, W] uint8 -> [B, 3, 299, 299] float32 network input.
LATENTLAB_API torch::Tensor inception_input(const torch::Tensor& images, InceptionPreprocess mode);

struct InceptionOutput {
  torch::Tensor pool;             // [B, 2048] pool3 features (FID, KID, precision/recall)
  torch::Tensor logits;           // [B, 1008] fc(pool)
  torch::Tensor logits_unbiased;  // [B, 1008] pool fc.weight^T, what torch-fidelity's IS uses
};

class LATENTLAB_API FidInceptionV3Impl : public torch::nn::Module {
 public:
  FidInceptionV3Impl();
  // x: [B, 3, 299, 299] from inception_input() -> pool3 features and logits.
  InceptionOutput forward(const torch::Tensor& x);
  // Loads a torch.save'd state dict (either file above; extra AuxLogits.* keys are ignored). Throws
  // Error naming missing or mis-shaped keys.
  void load(const std::filesystem::path& file);

 private:
  // The layers up to pool3, in order (registered under their checkpoint names), and the classifier.
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> stages_;
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(FidInceptionV3);

}  // namespace latentlab::nn
