// The built-in feature extractors: the FID Inception v3 and LatentLab's own Fashion-MNIST classifier.
#include "features.hpp"
#include "latentlab/plugin.hpp"

namespace latentlab::features {
namespace {

void register_factories(Registrar& registrar) {
  registrar.add<FeatureExtractor>(
      "inception-v3-fid",
      "the FID Inception v3 of pytorch-fid and torch-fidelity (2048-d pool3 features, 1008 logits); weights "
      "from a file you provide",
      inception_schema(), make_inception);
  registrar.add<FeatureExtractor>(
      "classifier",
      "a small CNN LatentLab trains on a labelled dataset (Fashion-MNIST by default) and caches; "
      "penultimate features, class logits",
      classifier_schema(), make_classifier);
}

}  // namespace
}  // namespace latentlab::features

LATENTLAB_PLUGIN("latentlab-features", LATENTLAB_VERSION_STRING, latentlab::features::register_factories)
