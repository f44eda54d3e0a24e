#pragma once
// How a training run ended, for both trainers (the shared training loop, docs/architecture.md).
#include <cstdint>

#include "latentlab/error.hpp"
#include "latentlab/export.hpp"

namespace latentlab {

// Thrown when the loss or the gradient norm stops being finite.
class LATENTLAB_API DivergenceError : public Error {
 public:
  using Error::Error;
};

struct TrainOutcome {
  std::int64_t step = 0;     // the last completed step
  bool interrupted = false;  // stopped by the stop flag before `steps`
};

}  // namespace latentlab
