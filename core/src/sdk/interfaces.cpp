// Out-of-line destructors: one home for each SDK interface's vtable and type information, so that
// the host and every plugin share them.
#include <ATen/CPUGeneratorImpl.h>

#include "latentlab/autoencoder.hpp"
#include "latentlab/conditioner.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/error.hpp"
#include "latentlab/feature_extractor.hpp"
#include "latentlab/weighting.hpp"

namespace latentlab {

Autoencoder::~Autoencoder() = default;
torch::Tensor Autoencoder::encode_mode(const torch::Tensor& x) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  return encode(x, generator);
}
Dataset::~Dataset() = default;
std::string Dataset::caption(std::int64_t index) const {
  throw Error("example " + std::to_string(index) + ": this dataset has no captions");
}
FeatureExtractor::~FeatureExtractor() = default;
LossWeighting::~LossWeighting() = default;

}  // namespace latentlab
