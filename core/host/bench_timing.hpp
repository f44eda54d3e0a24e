#pragma once
// Timing for the `bench` commands: medians of repeated rounds.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace latentlab::host {

// Median seconds per call of `fn` over `repeats` rounds, each running at least `min_seconds`.
template <class Fn>
double median_seconds_per_call(Fn&& fn, int repeats, double min_seconds) {
  std::vector<double> per_call;
  for (int r = 0; r < repeats; ++r) {
    std::int64_t calls = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      fn();
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < min_seconds);
    per_call.push_back(elapsed / static_cast<double>(calls));
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace latentlab::host
