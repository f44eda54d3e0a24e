#pragma once
// The built-in conditioners (docs/conditioning.md): `class`, `tokens`, `lowres` and `masked`.
#include <memory>

#include "latentlab/conditioner.hpp"
#include "latentlab/params.hpp"

namespace latentlab::conditioners {

ParamSchema class_schema();
std::unique_ptr<Conditioner> make_class(const Params& params);

ParamSchema tokens_schema();
std::unique_ptr<Conditioner> make_tokens(const Params& params);

ParamSchema lowres_schema();
std::unique_ptr<Conditioner> make_lowres(const Params& params);

ParamSchema masked_schema();
std::unique_ptr<Conditioner> make_masked(const Params& params);

// The rows of `drop` (undefined: none) as a [B] bool tensor on `device`.
torch::Tensor drop_rows(const torch::Tensor& drop, std::int64_t batch, torch::Device device);

}  // namespace latentlab::conditioners
