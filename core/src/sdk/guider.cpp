#include "latentlab/guider.hpp"

#include "latentlab/error.hpp"

namespace latentlab {

Guider::~Guider() = default;

Conditioning concat_batches(const Conditioning& a, const Conditioning& b) {
  const auto cat = [](const torch::Tensor& x, const torch::Tensor& y, const char* what) {
    if (x.defined() != y.defined())
      throw Error(std::string("cannot batch conditioning: '") + what + "' is given for only one of the two");
    return x.defined() ? torch::cat({x, y}) : torch::Tensor();
  };
  return Conditioning{cat(a.context, b.context, "context"), cat(a.concat, b.concat, "concat"),
                      cat(a.y, b.y, "y")};
}

}  // namespace latentlab
