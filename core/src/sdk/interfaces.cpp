// Out-of-line destructors: one home for each SDK interface's vtable and type information, so that
// the host and every plugin share them.
#include "latentlab/autoencoder.hpp"
#include "latentlab/dataset.hpp"
#include "latentlab/feature_extractor.hpp"
#include "latentlab/weighting.hpp"

namespace latentlab {

Autoencoder::~Autoencoder() = default;
Dataset::~Dataset() = default;
FeatureExtractor::~FeatureExtractor() = default;
LossWeighting::~LossWeighting() = default;

}  // namespace latentlab
