// `inception-v3-fid`: the FID Inception v3 with the weights researchers already have.
#include <cstdlib>
#include <filesystem>

#include "features.hpp"
#include "latentlab/error.hpp"
#include "latentlab/io/sha256.hpp"
#include "latentlab/nn/inception_v3.hpp"

namespace latentlab::features {
namespace {

namespace fs = std::filesystem;

// Bumped whenever the code between pixels and features changes (preprocessing, network), so that
// statistics cached by an earlier version are never reused.
constexpr const char* kCodeVersion = "v1";

std::string where_to_get() {
  return std::string(
             "the FID Inception weights are pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
             "(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
             "pt_inception-2015-12-05-6726825d.pth) or torch-fidelity's "
             "weights-inception-2015-12-05-6726825d.pth (https://github.com/toshas/torch-fidelity/"
             "releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth); copy one to this "
             "machine and pass it with --weights FILE, the `weights` parameter, or the ") +
         kInceptionWeightsVariable + " environment variable; without them, use --features classifier";
}

fs::path weights_path(const Params& params) {
  std::string path = params.get_string("weights");
  if (path.empty())
    if (const char* env = std::getenv(kInceptionWeightsVariable); env && *env) path = env;
  if (path.empty()) throw ConfigError("no Inception weights given; " + where_to_get());
  if (!fs::is_regular_file(path))
    throw ConfigError("Inception weights file " + path + " does not exist; " + where_to_get());
  return path;
}

class InceptionFeatures final : public FeatureExtractor {
 public:
  explicit InceptionFeatures(const Params& params)
      : mode_(nn::parse_inception_preprocess(params.get_string("preprocess"))) {
    const auto path = weights_path(params);
    weights_hash_ = io::sha256_file(path);
    net_->load(path);
    net_->eval();
  }
  std::int64_t feature_dim() const override { return 2048; }
  std::int64_t num_logits() const override { return 1008; }
  std::string fingerprint() const override {
    return std::string("inception-v3-fid/") + kCodeVersion +
           "/weights-sha256=" + weights_hash_.substr(0, 16) + "/preprocess=" + nn::to_string(mode_);
  }
  FeatureOutput extract(const torch::Tensor& images) override {
    if (images.dim() != 4 || images.scalar_type() != torch::kUInt8 ||
        (images.size(1) != 1 && images.size(1) != 3))
      throw Error("inception-v3-fid takes uint8 images [B, 1 or 3, H, W]");
    torch::NoGradGuard no_grad;
    auto rgb = images.size(1) == 1 ? images.expand({-1, 3, -1, -1}) : images;
    const auto out = net_->forward(nn::inception_input(rgb.to(device_), mode_));
    // torch-fidelity's Inception Score uses the logits without the fc bias ("logits_unbiased").
    return {out.pool.to(torch::kCPU), out.logits_unbiased.to(torch::kCPU)};
  }
  void to(const torch::Device& device) override {
    device_ = device;
    net_->to(device);
  }

 private:
  nn::InceptionPreprocess mode_;
  nn::FidInceptionV3 net_;
  std::string weights_hash_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace

ParamSchema inception_schema() {
  return ParamSchema()
      .string("weights", "",
              std::string("the weights file (pytorch-fid's pt_inception-2015-12-05-6726825d.pth or "
                          "torch-fidelity's weights-inception-2015-12-05-6726825d.pth); empty: $") +
                  kInceptionWeightsVariable)
      .choice("preprocess", "torch-fidelity", {"torch-fidelity", "pytorch-fid"},
              "torch-fidelity: TF1 bilinear resize of uint8 pixels, (x - 128) / 128 (the paper's numbers); "
              "pytorch-fid: PyTorch bilinear resize of x / 255, then 2x - 1");
}

std::unique_ptr<FeatureExtractor> make_inception(const Params& params) {
  return std::make_unique<InceptionFeatures>(params);
}

}  // namespace latentlab::features
