// The built-in datasets library: registers every dataset with the host.
#include "common.hpp"
#include "latentlab/plugin.hpp"

namespace latentlab::datasets {
namespace {

void register_factories(Registrar& registrar) {
  registrar.add<Dataset>("fashion-mnist",
                         "Fashion-MNIST: 28 x 28 grey clothing images in 10 classes (Debian's "
                         "dataset-fashion-mnist)",
                         fashion_mnist_schema(), make_fashion_mnist);
  registrar.add<Dataset>("image-folder",
                         "image files (PNG, JPEG, BMP, GIF, TGA) under a folder, optionally labelled by "
                         "sub-folder",
                         image_folder_schema(), make_image_folder);
}

}  // namespace
}  // namespace latentlab::datasets

LATENTLAB_PLUGIN("latentlab-datasets", LATENTLAB_VERSION_STRING, latentlab::datasets::register_factories)
