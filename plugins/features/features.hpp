#pragma once
// The built-in feature extractors, registered by register.cpp.
#include <memory>

#include "latentlab/feature_extractor.hpp"
#include "latentlab/params.hpp"

namespace latentlab::features {

ParamSchema inception_schema();
std::unique_ptr<FeatureExtractor> make_inception(const Params& params);
ParamSchema classifier_schema();
std::unique_ptr<FeatureExtractor> make_classifier(const Params& params);

// Environment variable naming the Inception weights file when `weights` is empty.
inline constexpr const char* kInceptionWeightsVariable = "LATENTLAB_INCEPTION_WEIGHTS";

}  // namespace latentlab::features
