// The FID Inception v3 (see the header). Layer shapes follow the 2015-12-05 TensorFlow graph; every
// block's forward states its shapes for the 299 x 299 input.
#include "latentlab/nn/inception_v3.hpp"

#include <vector>

#include "latentlab/error.hpp"
#include "latentlab/io/torch_file.hpp"
#include "latentlab/nn/state_dict.hpp"

namespace latentlab::nn {
namespace {

using Pair = torch::ExpandingArray<2>;

// conv (no bias) -> batch norm (eps 1e-3) -> ReLU; names `conv`, `bn` as in the checkpoint.
class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(std::int64_t in, std::int64_t out, Pair kernel, std::int64_t stride = 1, Pair padding = 0)
      : conv(register_module(
            "conv",
            torch::nn::Conv2d(
                torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(1e-3)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(bn->forward(conv->forward(x))); }

  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
};
TORCH_MODULE(BasicConv2d);

// A factorised (kh x kw) convolution that keeps the size: padding (kh / 2, kw / 2).
BasicConv2d factorised(std::int64_t in, std::int64_t out, std::int64_t kh, std::int64_t kw) {
  return BasicConv2d(std::make_shared<BasicConv2dImpl>(in, out, Pair({kh, kw}), 1, Pair({kh / 2, kw / 2})));
}

// 3x3 average pool, stride 1, padding 1, dividing by the count of real pixels (the TF graph's).
torch::Tensor average_pool_3x3(const torch::Tensor& x) {
  return torch::avg_pool2d(x, 3, 1, 1, /*ceil_mode=*/false, /*count_include_pad=*/false);
}

class InceptionAImpl : public torch::nn::Module {
 public:
  InceptionAImpl(std::int64_t in, std::int64_t pool_features)
      : branch1x1(register_module("branch1x1", BasicConv2d(in, 64, 1))),
        branch5x5_1(register_module("branch5x5_1", BasicConv2d(in, 48, 1))),
        branch5x5_2(register_module("branch5x5_2", BasicConv2d(48, 64, 5, 1, 2))),
        branch3x3dbl_1(register_module("branch3x3dbl_1", BasicConv2d(in, 64, 1))),
        branch3x3dbl_2(register_module("branch3x3dbl_2", BasicConv2d(64, 96, 3, 1, 1))),
        branch3x3dbl_3(register_module("branch3x3dbl_3", BasicConv2d(96, 96, 3, 1, 1))),
        branch_pool(register_module("branch_pool", BasicConv2d(in, pool_features, 1))) {}
  // x: [B, in, 35, 35] -> [B, 224 + pool_features, 35, 35]
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({branch1x1(x), branch5x5_2(branch5x5_1(x)),
                       branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), branch_pool(average_pool_3x3(x))},
                      1);
  }
  BasicConv2d branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3,
      branch_pool;
};
TORCH_MODULE(InceptionA);

class InceptionBImpl : public torch::nn::Module {
 public:
  explicit InceptionBImpl(std::int64_t in)
      : branch3x3(register_module("branch3x3", BasicConv2d(in, 384, 3, 2))),
        branch3x3dbl_1(register_module("branch3x3dbl_1", BasicConv2d(in, 64, 1))),
        branch3x3dbl_2(register_module("branch3x3dbl_2", BasicConv2d(64, 96, 3, 1, 1))),
        branch3x3dbl_3(register_module("branch3x3dbl_3", BasicConv2d(96, 96, 3, 2))) {}
  // x: [B, 288, 35, 35] -> [B, 768, 17, 17]
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat(
        {branch3x3(x), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), torch::max_pool2d(x, 3, 2)}, 1);
  }
  BasicConv2d branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;
};
TORCH_MODULE(InceptionB);

class InceptionCImpl : public torch::nn::Module {
 public:
  InceptionCImpl(std::int64_t in, std::int64_t c7)
      : branch1x1(register_module("branch1x1", BasicConv2d(in, 192, 1))),
        branch7x7_1(register_module("branch7x7_1", BasicConv2d(in, c7, 1))),
        branch7x7_2(register_module("branch7x7_2", factorised(c7, c7, 1, 7))),
        branch7x7_3(register_module("branch7x7_3", factorised(c7, 192, 7, 1))),
        branch7x7dbl_1(register_module("branch7x7dbl_1", BasicConv2d(in, c7, 1))),
        branch7x7dbl_2(register_module("branch7x7dbl_2", factorised(c7, c7, 7, 1))),
        branch7x7dbl_3(register_module("branch7x7dbl_3", factorised(c7, c7, 1, 7))),
        branch7x7dbl_4(register_module("branch7x7dbl_4", factorised(c7, c7, 7, 1))),
        branch7x7dbl_5(register_module("branch7x7dbl_5", factorised(c7, 192, 1, 7))),
        branch_pool(register_module("branch_pool", BasicConv2d(in, 192, 1))) {}
  // x: [B, 768, 17, 17] -> [B, 768, 17, 17]
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
    const auto b7dbl = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
    return torch::cat({branch1x1(x), b7, b7dbl, branch_pool(average_pool_3x3(x))}, 1);
  }
  BasicConv2d branch1x1, branch7x7_1, branch7x7_2, branch7x7_3, branch7x7dbl_1, branch7x7dbl_2,
      branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;
};
TORCH_MODULE(InceptionC);

class InceptionDImpl : public torch::nn::Module {
 public:
  explicit InceptionDImpl(std::int64_t in)
      : branch3x3_1(register_module("branch3x3_1", BasicConv2d(in, 192, 1))),
        branch3x3_2(register_module("branch3x3_2", BasicConv2d(192, 320, 3, 2))),
        branch7x7x3_1(register_module("branch7x7x3_1", BasicConv2d(in, 192, 1))),
        branch7x7x3_2(register_module("branch7x7x3_2", factorised(192, 192, 1, 7))),
        branch7x7x3_3(register_module("branch7x7x3_3", factorised(192, 192, 7, 1))),
        branch7x7x3_4(register_module("branch7x7x3_4", BasicConv2d(192, 192, 3, 2))) {}
  // x: [B, 768, 17, 17] -> [B, 1280, 8, 8]
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat(
        {branch3x3_2(branch3x3_1(x)), branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x)))),
         torch::max_pool2d(x, 3, 2)},
        1);
  }
  BasicConv2d branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;
};
TORCH_MODULE(InceptionD);

class InceptionEImpl : public torch::nn::Module {
 public:
  // max_pool: the last block's pooling branch (Mixed_7c) takes a max; the first (Mixed_7b) an average.
  InceptionEImpl(std::int64_t in, bool max_pool)
      : max_pool_(max_pool),
        branch1x1(register_module("branch1x1", BasicConv2d(in, 320, 1))),
        branch3x3_1(register_module("branch3x3_1", BasicConv2d(in, 384, 1))),
        branch3x3_2a(register_module("branch3x3_2a", factorised(384, 384, 1, 3))),
        branch3x3_2b(register_module("branch3x3_2b", factorised(384, 384, 3, 1))),
        branch3x3dbl_1(register_module("branch3x3dbl_1", BasicConv2d(in, 448, 1))),
        branch3x3dbl_2(register_module("branch3x3dbl_2", BasicConv2d(448, 384, 3, 1, 1))),
        branch3x3dbl_3a(register_module("branch3x3dbl_3a", factorised(384, 384, 1, 3))),
        branch3x3dbl_3b(register_module("branch3x3dbl_3b", factorised(384, 384, 3, 1))),
        branch_pool(register_module("branch_pool", BasicConv2d(in, 192, 1))) {}
  // x: [B, in, 8, 8] -> [B, 2048, 8, 8]
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b3 = branch3x3_1(x);
    const auto b3dbl = branch3x3dbl_2(branch3x3dbl_1(x));
    const auto pooled = max_pool_ ? torch::max_pool2d(x, 3, 1, 1) : average_pool_3x3(x);
    return torch::cat({branch1x1(x), branch3x3_2a(b3), branch3x3_2b(b3), branch3x3dbl_3a(b3dbl),
                       branch3x3dbl_3b(b3dbl), branch_pool(pooled)},
                      1);
  }
  bool max_pool_;
  BasicConv2d branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b, branch3x3dbl_1, branch3x3dbl_2,
      branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;
};
TORCH_MODULE(InceptionE);

// One axis of the TF1 resize: for output i, the source pixels floor(i * in / out) and the next (clamped),
// and the weight of the next.
struct AxisTaps {
  torch::Tensor lower, upper, weight;
};
AxisTaps tf1_taps(std::int64_t in, std::int64_t out, const torch::TensorOptions& options) {
  // In float32 as TensorFlow (and torch-fidelity) compute it: scale = in / out, source = i * scale.
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const auto source = torch::arange(out, torch::TensorOptions().dtype(torch::kFloat32)) * scale;
  const auto lower = source.floor().to(torch::kInt64).clamp_max(in - 1);
  return {lower.to(options.device()), (lower + 1).clamp_max(in - 1).to(options.device()),
          (source - lower.to(torch::kFloat32)).to(options)};
}

}  // namespace

InceptionPreprocess parse_inception_preprocess(const std::string& name) {
  if (name == "torch-fidelity") return InceptionPreprocess::kTorchFidelity;
  if (name == "pytorch-fid") return InceptionPreprocess::kPytorchFid;
  throw ConfigError("unknown Inception preprocessing '" + name +
                    "'; choose torch-fidelity (TF1 resize of uint8 pixels, as the paper's numbers) or "
                    "pytorch-fid (PyTorch bilinear resize of [0, 1] pixels)");
}

std::string to_string(InceptionPreprocess mode) {
  return mode == InceptionPreprocess::kTorchFidelity ? "torch-fidelity" : "pytorch-fid";
}

torch::Tensor resize_bilinear_tf1(const torch::Tensor& x, std::int64_t height, std::int64_t width) {
  if (x.dim() != 4 || !x.is_floating_point())
    throw Error("resize_bilinear_tf1 takes float images [B, C, H, W]");
  const auto rows = tf1_taps(x.size(2), height, x.options());
  const auto cols = tf1_taps(x.size(3), width, x.options());
  // Along the width first, then the height, each as a + (b - a) w: TensorFlow's order of operations.
  const auto left = x.index_select(3, cols.lower), right = x.index_select(3, cols.upper);
  const auto horizontal = left + (right - left) * cols.weight.view({1, 1, 1, width});  // [B, C, H, width]
  const auto top = horizontal.index_select(2, rows.lower), bottom = horizontal.index_select(2, rows.upper);
  return top + (bottom - top) * rows.weight.view({1, 1, height, 1});
}

torch::Tensor inception_input(const torch::Tensor& images, InceptionPreprocess mode) {
  if (images.dim() != 4 || images.size(1) != 3 || images.scalar_type() != torch::kUInt8)
    throw Error("the FID Inception takes uint8 RGB images [B, 3, H, W]");
  const auto pixels = images.to(torch::kFloat32);
  if (mode == InceptionPreprocess::kTorchFidelity)
    return (resize_bilinear_tf1(pixels, 299, 299) - 128.0) / 128.0;
  namespace F = torch::nn::functional;
  const auto resized = F::interpolate(pixels / 255.0, F::InterpolateFuncOptions()
                                                          .size(std::vector<std::int64_t>{299, 299})
                                                          .mode(torch::kBilinear)
                                                          .align_corners(false));
  return 2.0 * resized - 1.0;
}

FidInceptionV3Impl::FidInceptionV3Impl() {
  const auto add = [this](const char* name, auto layer) {
    register_module(name, layer);
    stages_.emplace_back([layer](const torch::Tensor& h) mutable { return layer->forward(h); });
  };
  const auto max_pool = [this] {
    stages_.emplace_back([](const torch::Tensor& h) { return torch::max_pool2d(h, 3, 2); });
  };
  add("Conv2d_1a_3x3", BasicConv2d(3, 32, 3, 2));      // [B, 32, 149, 149]
  add("Conv2d_2a_3x3", BasicConv2d(32, 32, 3));        // [B, 32, 147, 147]
  add("Conv2d_2b_3x3", BasicConv2d(32, 64, 3, 1, 1));  // [B, 64, 147, 147]
  max_pool();                                          // [B, 64, 73, 73]
  add("Conv2d_3b_1x1", BasicConv2d(64, 80, 1));        // [B, 80, 73, 73]
  add("Conv2d_4a_3x3", BasicConv2d(80, 192, 3));       // [B, 192, 71, 71]
  max_pool();                                          // [B, 192, 35, 35]
  add("Mixed_5b", InceptionA(192, 32));                // [B, 256, 35, 35]
  add("Mixed_5c", InceptionA(256, 64));                // [B, 288, 35, 35]
  add("Mixed_5d", InceptionA(288, 64));                // [B, 288, 35, 35]
  add("Mixed_6a", InceptionB(288));                    // [B, 768, 17, 17]
  add("Mixed_6b", InceptionC(768, 128));               // [B, 768, 17, 17]
  add("Mixed_6c", InceptionC(768, 160));
  add("Mixed_6d", InceptionC(768, 160));
  add("Mixed_6e", InceptionC(768, 192));
  add("Mixed_7a", InceptionD(768));          // [B, 1280, 8, 8]
  add("Mixed_7b", InceptionE(1280, false));  // [B, 2048, 8, 8]
  add("Mixed_7c", InceptionE(2048, true));   // [B, 2048, 8, 8]
  fc_ = register_module("fc", torch::nn::Linear(2048, 1008));
}

InceptionOutput FidInceptionV3Impl::forward(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != 3 || x.size(2) != 299 || x.size(3) != 299)
    throw Error("the FID Inception takes [B, 3, 299, 299]; prepare images with inception_input()");
  auto h = x;
  for (auto& stage : stages_) h = stage(h);  // [B, 2048, 8, 8]
  InceptionOutput out;
  out.pool = h.mean({2, 3});                           // [B, 2048]
  out.logits_unbiased = out.pool.mm(fc_->weight.t());  // [B, 1008]
  out.logits = out.logits_unbiased + fc_->bias;
  return out;
}

void FidInceptionV3Impl::load(const std::filesystem::path& file) {
  NamedTensors tensors;
  for (auto& [key, tensor] : io::read_torch_state_dict(file))
    if (key.rfind("AuxLogits.", 0) != 0) tensors.emplace_back(key, tensor);
  auto report = load_state_dict(*this, tensors);
  // Batch-norm num_batches_tracked counters are not weights: files have them or not.
  const auto without_counters = [](const std::vector<std::string>& keys) {
    std::vector<std::string> kept;
    for (const auto& key : keys)
      if (key.find("num_batches_tracked") == std::string::npos) kept.push_back(key);
    return kept;
  };
  report.unexpected = without_counters(report.unexpected);
  report.missing = without_counters(report.missing);
  if (!report.complete())
    throw Error(file.string() +
                " is not the FID Inception v3 state dict (pytorch-fid's "
                "pt_inception-2015-12-05-6726825d.pth or torch-fidelity's "
                "weights-inception-2015-12-05-6726825d.pth):\n" +
                report.summary());
}

}  // namespace latentlab::nn
