#pragma once
#include <memory>

#include "latentlab/autoencoder.hpp"
#include "latentlab/params.hpp"

namespace latentlab::autoencoders {

ParamSchema kl_schema();
std::unique_ptr<Autoencoder> make_kl(const Params& params);

}  // namespace latentlab::autoencoders
