#pragma once
// NumPy's legacy RandomState (MT19937 seeded with an integer) as far as torch-fidelity uses it:
// `permutation(n)` and `choice(n, m, replace=False)` (= permutation(n)[:m]). With it, the Inception
// Score's shuffle and KID's subsets are the very ones torch-fidelity draws (its seed is 2020), so the
// numbers agree to float rounding rather than only in distribution.
#include <array>
#include <cstdint>
#include <vector>

#include "latentlab/export.hpp"

namespace latentlab::eval {

class LATENTLAB_API NumpyRandomState {
 public:
  // numpy.random.RandomState(seed) for 0 <= seed < 2^32.
  explicit NumpyRandomState(std::uint32_t seed);
  // The next 32 random bits (MT19937 genrand_int32).
  std::uint32_t next_uint32();
  // A uniform integer in [0, max], by masked rejection as NumPy's legacy random_interval.
  std::uint64_t random_interval(std::uint64_t max);
  // RandomState.permutation(n): a Fisher-Yates shuffle of 0..n-1 from the last element down.
  std::vector<std::int64_t> permutation(std::int64_t n);

 private:
  std::array<std::uint32_t, 624> state_{};
  std::size_t next_ = 624;
};

}  // namespace latentlab::eval
