#pragma once
#include <memory>

#include "latentlab/autoencoder.hpp"
#include "latentlab/params.hpp"

namespace latentlab::autoencoders {

ParamSchema vq_schema();
std::unique_ptr<Autoencoder> make_vq(const Params& params);

}  // namespace latentlab::autoencoders
