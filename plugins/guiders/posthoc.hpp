#pragma once
// `posthoc`: post-hoc image guidance (Rombach et al. 2022, Appendix C, Eq. 16-17).
#include <memory>

#include "latentlab/guider.hpp"
#include "latentlab/params.hpp"

namespace latentlab::guiders {

ParamSchema posthoc_schema();
std::unique_ptr<Guider> make_posthoc(const Params& params);

}  // namespace latentlab::guiders
